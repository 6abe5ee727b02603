/**
 * A quorum for a priced model (docs/api.md "Payments", docs/protocol.md §17): the caller pays the
 * coordinator the quorum price — the coordinator's own price plus the price of each member it
 * will ask (the first k ranked nodes other than itself, each read from the member's own 402)
 * — and the coordinator pays each member its price from its own account
 * (an EIP-3009 authorization signed with the node's key, sent as the member call's
 * `PAYMENT-SIGNATURE`). A member settles only when it answers (its record commits to the payment
 * it got); one that refuses is not paid and is skipped like any member that does not answer. A
 * replacement member (after a skip) is paid at most the largest quoted member price.
 *
 * A language model priced per token (`metered`): each price above is a maximum — the 402 of the
 * member call itself (its own context × its input price + max_tokens × its output price) — and
 * the coordinator pays each member a metered authorization of its maximum, so the member settles
 * only the tokens it used. The caller authorizes the sum of maxima and is charged
 * {@link quorumCharge}: the coordinator's own tokens plus what its members' receipts charged,
 * never more than the caller's maximum less what the members left unspent (the rest returns to
 * the caller in the same settlement).
 */

import { meteredNonce, randomBytes32, signTransferAuthorization } from '@verity/contracts';
import {
  decodePaymentHeader,
  encodePaymentHeader,
  fail,
  PAYMENT_HEADERS,
  type PaymentPayload,
  type PaymentRequirements,
  parsePaymentRequired,
  paymentDigest,
  quorumCharges,
  type ReceiptPayment,
  type RegistryNode,
  receiptPaymentOf,
  VerityError,
} from '@verity/protocol';
import type { Address, Hex } from 'viem';
import { type LocalAccount, privateKeyToAccount } from 'viem/accounts';
import type { NodeContext } from '../context.js';
import { type PricedModel, priceOf } from '../payments/index.js';
import { peerFetch } from '../peers/url-policy.js';
import { type MemberAnswer, type MemberPayment, quorumOrder } from './quorum.js';

/** What a quorum of a priced model costs and how its members are paid. */
export interface QuorumQuote {
  /** The quorum price: this node's price plus its members'. */
  readonly total: bigint;
  /** The block whose registry ranked the members (the run uses the same). */
  readonly block: number;
  /**
   * The headers that pay `node` and the digest of the payment they carry, which its receipt must
   * commit to (none for a free member); throws `PAYMENT_OVER_BUDGET` above the quote.
   */
  payMember(node: RegistryNode): Promise<MemberPayment>;
}

/** How a member is asked its price: an unpaid call that a priced member answers with its 402 and a free one refuses. */
export interface PriceProbe {
  readonly path: string;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * The probe of an ONNX model: `POST /v1/infer` with the model's CID and an empty input. A priced
 * member answers 402 (after fetching the model from its peers if it lacked it); a free one
 * refuses the empty input: nothing runs, nothing is logged.
 */
function onnxProbe(model: PricedModel): PriceProbe {
  return { path: '/v1/infer', body: JSON.stringify({ model: model.cid, input: {} }) };
}

/**
 * A member's price for `model` as x402 requirements of `scheme` in this node's token (and, for
 * `metered`, through this node's settlement contract), or undefined (free, unknown, or not payable
 * here): the `PAYMENT-REQUIRED` of the unpaid `probe`.
 */
async function memberPrice(
  ctx: NodeContext,
  node: RegistryNode,
  probe: PriceProbe,
  scheme: 'exact' | 'metered',
): Promise<PaymentRequirements | undefined> {
  const service = ctx.payments;
  if (service === undefined) return undefined;
  try {
    const r = await peerFetch(
      `${node.endpoint.replace(/\/+$/, '')}${probe.path}`,
      {
        method: 'POST',
        headers: { ...probe.headers, 'content-type': 'application/json' },
        body: probe.body,
        signal: AbortSignal.timeout(ctx.config.executor.timeoutMs),
      },
      ctx.config.peers,
    );
    await r.arrayBuffer().catch(() => undefined);
    const header = r.headers.get(PAYMENT_HEADERS.required);
    if (r.status !== 402 || header === null) return undefined;
    const req = parsePaymentRequired(decodePaymentHeader(header)).accepts[0];
    const { domain, network, meteredSettlement } = service.settler;
    if (req?.scheme !== scheme || req.asset !== domain.verifyingContract || req.network !== network) return undefined;
    // A member's own settlement contract could keep the whole maximum: only this deployment's.
    if (scheme === 'metered' && (meteredSettlement === undefined || req.extra.settlement !== meteredSettlement)) {
      return undefined;
    }
    return req;
  } catch {
    return undefined;
  }
}

/**
 * The `PAYMENT-SIGNATURE` header of this node paying `req`: x402 exact (TransferWithAuthorization
 * to the member), or metered (ReceiveWithAuthorization of the maximum to the settlement contract,
 * nonce bound to the member by a fresh salt).
 */
async function paymentHeader(
  ctx: NodeContext,
  account: LocalAccount,
  req: PaymentRequirements,
): Promise<MemberPayment> {
  const domain = (ctx.payments as NonNullable<NodeContext['payments']>).settler.domain;
  const now = BigInt(Math.floor(Date.now() / 1000));
  const metered = req.scheme === 'metered';
  const salt = randomBytes32();
  const auth = {
    from: account.address,
    to: (metered ? req.extra.settlement : req.payTo) as Address,
    value: BigInt(req.amount),
    validAfter: now - 600n,
    validBefore: now + BigInt(req.maxTimeoutSeconds),
    nonce: metered ? meteredNonce(req.payTo as Address, salt) : randomBytes32(),
  };
  const signature = await signTransferAuthorization(
    account,
    { ...domain, verifyingContract: domain.verifyingContract as Address },
    auth,
    metered ? 'receive' : 'transfer',
  );
  const payload = {
    x402Version: 2,
    accepted: req,
    payload: {
      signature,
      ...(metered ? { salt } : {}),
      authorization: {
        from: auth.from,
        to: auth.to,
        value: auth.value.toString(),
        validAfter: auth.validAfter.toString(),
        validBefore: auth.validBefore.toString(),
        nonce: auth.nonce,
      },
    },
  } as PaymentPayload;
  return {
    headers: { [PAYMENT_HEADERS.signature]: encodePaymentHeader(payload) },
    digest: paymentDigest(receiptPaymentOf(payload)),
  };
}

/**
 * The quote of a quorum request for `model` (undefined: the model is free here). Ranks as the
 * run will (same nonce, same block) and reads the prices of the first k members other than this
 * node. A per-token price needs `llm`: the member call to probe (the body every member runs) and
 * this node's own maximum for it.
 */
export async function quorumQuote(
  ctx: NodeContext,
  params: {
    readonly model: PricedModel;
    readonly clientNonce: string | undefined;
    readonly block?: number;
    readonly k: number;
    readonly llm?: { readonly probe: PriceProbe; readonly ownMaximum: bigint | undefined };
  },
): Promise<QuorumQuote | undefined> {
  const own = priceOf(ctx.config.payments, params.model);
  if (own === undefined) return undefined;
  const scheme = 'request' in own ? 'exact' : 'metered';
  const ownAmount = 'request' in own ? BigInt(own.request) : params.llm?.ownMaximum;
  if (ownAmount === undefined || (scheme === 'metered') !== (params.llm !== undefined)) {
    return fail(
      'INVALID_ARGUMENT',
      'mode quorum is offered for per-request prices (ONNX) and per-token prices (OpenAI routes)',
    );
  }
  if (ctx.payments === undefined) return fail('CHAIN_UNAVAILABLE', 'payments are not ready yet: retry shortly');
  const { snapshot, order } = await quorumOrder(ctx, params);
  const self = ctx.keys.address.toLowerCase();
  const ranked = order.slice(0, params.k);
  // The caller's payment must be committed to by a record of this node, so this node must be one
  // of the k it asks: refused before anything is paid, naming the nodes that may coordinate.
  if (!ranked.some((n) => n.address.toLowerCase() === self)) {
    return fail('QUORUM_PAID_COORDINATOR', 'a paid quorum must be coordinated by one of its first k ranked nodes', {
      ranked: ranked.map((n) => n.address),
      block: Number(snapshot.block.number),
    });
  }
  const probe = params.llm?.probe ?? onnxProbe(params.model);
  const members = ranked.filter((n) => n.address.toLowerCase() !== self);
  const prices = new Map<string, PaymentRequirements | undefined>();
  await Promise.all(
    members.map(async (n) => prices.set(n.address.toLowerCase(), await memberPrice(ctx, n, probe, scheme))),
  );
  let total = ownAmount;
  let cap = 0n;
  for (const r of prices.values()) {
    if (r === undefined) continue;
    total += BigInt(r.amount);
    if (BigInt(r.amount) > cap) cap = BigInt(r.amount);
  }
  // The float (docs/protocol.md §17.5): this node pays its members before the caller's payment
  // settles. Without their maxima in its account they would refuse it after it ran its own part:
  // refused before the caller pays anything.
  const float = total - ownAmount;
  if (float > 0n) {
    const holds = await ctx.payments.settler.balance(ctx.keys.address);
    if (holds < float) {
      fail('QUORUM_UNAVAILABLE', 'this node cannot pay its members now: its balance is below their prices', {
        need: float.toString(),
        holds: holds.toString(),
      });
    }
  }
  const account = privateKeyToAccount(ctx.keys.accountKey as Hex);
  return {
    total,
    block: snapshot.block.number,
    async payMember(node) {
      const key = node.address.toLowerCase();
      const req = prices.has(key) ? prices.get(key) : await memberPrice(ctx, node, probe, scheme);
      if (req === undefined) return {};
      if (BigInt(req.amount) > cap) {
        throw new VerityError('PAYMENT_OVER_BUDGET', `member ${node.address} asks more than the quorum price covers`);
      }
      return paymentHeader(ctx, account, req);
    },
  };
}

/**
 * What a metered quorum charges its caller (docs/protocol.md §17.5): this node's `own` charge
 * plus what the members it paid in the bundle charged (their records commit to it), at most the
 * caller's maximum less what those members left unspent (`quorumCharges`, the bound a verifier
 * checks as `QUORUM_CHARGE_EXCESS`). A member this node paid whose receipt is not in the bundle
 * is this node's cost, not the caller's.
 */
export function quorumCharge(
  ctx: NodeContext,
  own: bigint,
  caller: ReceiptPayment,
  members: readonly MemberAnswer[],
): bigint {
  const charges = quorumCharges(
    { record: { node: ctx.keys.address }, payment: caller },
    members.map((m) => ({
      record: m.record,
      ...(m.receipt.payment === undefined ? {} : { payment: m.receipt.payment }),
    })),
  ) as { limit: bigint; members: bigint };
  const total = own + charges.members;
  const charged = total < charges.limit ? total : charges.limit;
  return charged > 0n ? charged : 0n;
}
