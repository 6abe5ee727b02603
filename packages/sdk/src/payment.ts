/**
 * Paying for answers (issue 15; docs/api.md "Payments"): a fetch that answers a node's HTTP 402
 * with a signed payment, as the x402 v2 HTTP transport has it, up to a budget the caller sets.
 *
 * The wire: a paid route answers 402 with `PAYMENT-REQUIRED` (base64 JSON `PaymentRequired`,
 * `accepts` listing what the node takes); the client retries the same request once with
 * `PAYMENT-SIGNATURE` (base64 JSON `PaymentPayload`); the answer carries `PAYMENT-RESPONSE` (the
 * settlement). Two schemes:
 * - `exact` (fixed prices, ONNX): the standard x402 exact/EVM scheme, an EIP-3009
 *   TransferWithAuthorization from the payer to the node for the price. Signed by `@x402/evm`'s
 *   own exact client.
 * - `metered` (language models): an EIP-3009 ReceiveWithAuthorization from the payer to the
 *   `MeteredSettlement` contract for the maximum the node asks, its nonce
 *   keccak256(abi.encode(payee, salt)) binding the payee; the node settles the tokens it served
 *   and the rest goes back to the payer in the same transaction.
 *
 * What `@x402/*` gives here: the header codec and the scheme registry (`x402HTTPClient`,
 * `x402Client` from `@x402/core/client`) and the exact scheme's signer (`ExactEvmScheme`).
 * What it does not: `@x402/fetch`'s `wrapFetchWithPayment` turns every failure into a plain
 * `Error` with text (our callers compare codes), has no budget across requests (its spend
 * controls cap one payment in USD for the assets it knows, which a local test token is not), and
 * does not hand back the payment it made, which the SDK needs to check the receipt commits to it.
 * So the loop below is ours, the pieces are theirs.
 *
 * Against a dishonest node (or anyone between it and us), nothing here takes the node's word:
 * the token and chain paid in are the caller's (`assets`, `networks`) or the chain deployment's,
 * never whatever the 402 names (`PAYMENT_ASSET_NOT_PINNED`, nothing signed); a charge the node
 * claims above what was authorized is refused (`PAYMENT_OVERCHARGED`); a client's metered maximum
 * goes back to the budget only once the record commits to the charge (and, with a chain, once the
 * chain's `MeteredSettled` moved that much): {@link answerPayment}. A bare {@link payingFetch}
 * checks no record, so its budget takes the node's settlement (its last) as the charge, bounded by
 * the maximum signed; with a chain, the authorization must have been used on the token
 * ({@link checkPaymentSettled}).
 */
import {
  authorizationUsed,
  erc1271Valid,
  meteredNonce,
  meteredSettlementAbi,
  randomBytes32,
  signTransferAuthorization,
  type TransferAuthorization,
  transferAuthorizationDigest,
} from '@verity/contracts';
import {
  type ContractSignature,
  contractSignatureOf,
  type ErrorCode,
  isVerityError,
  type PaymentPolicy,
  type TransferAuthorization as ProtocolAuthorization,
  parseReceiptPayment,
  type VerifyResult,
  VerityError,
} from '@verity/protocol';
import type { x402Client, x402HTTPClient } from '@x402/core/client';
import type {
  PaymentPayload,
  PaymentRequired,
  PaymentRequirements,
  SchemeNetworkClient,
  SettleResponse,
} from '@x402/core/types';
import {
  type Address,
  getAddress,
  type Hex,
  isAddress,
  isHex,
  type LocalAccount,
  type PublicClient,
  parseEventLogs,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { sseSplitter } from './sse.js';

/** How a client pays (see {@link createPayer}). */
export interface PaymentOptions {
  /** The paying account: a viem `LocalAccount`, or its private key (0x-prefixed hex). */
  readonly account: LocalAccount | Hex;
  /**
   * The most this payer spends in all, in the token's atomic units (a stablecoin of 6 decimals:
   * 1000000 = one unit). A metered request counts its authorized maximum until its receipt says
   * what was charged.
   */
  readonly budget: bigint | string | number;
  /** The most one request may cost (atomic units; a metered request: its maximum). Default: no cap beyond the budget. */
  readonly maxPrice?: bigint | string | number;
  /**
   * Networks paid on, e.g. `['eip155:31337']`. Default: with `createClient({ chain })`, the
   * chain's. Without a chain, give it: a payer pays only on networks pinned here or by a chain.
   */
  readonly networks?: readonly string[];
  /**
   * Tokens paid with (addresses), on the `networks` above. The budget counts one token's atomic
   * units, so a node must not choose the token: default, with `createClient({ chain })`, the
   * deployment's `payments.token`. Without a chain, give it: a 402 naming a token (or network)
   * not pinned here or by a chain is `PAYMENT_ASSET_NOT_PINNED`, nothing signed.
   */
  readonly assets?: readonly string[];
  /**
   * `MeteredSettlement` contracts a metered maximum may be authorized to (addresses). Default: with
   * `createClient({ chain })`, the deployment's `payments.meteredSettlement`; else any the node
   * names (a contract of the node's own could keep the whole maximum, which the budget counts).
   */
  readonly settlements?: readonly string[];
}

/** The tokens and networks a payer may pay with, as a chain deployment pins them (see {@link Payer.wrap}). */
export interface AssetPin {
  readonly networks?: readonly string[] | undefined;
  readonly assets?: readonly string[] | undefined;
  readonly settlements?: readonly string[] | undefined;
}

/** One payment this client signed. */
export interface PaymentMade {
  readonly scheme: 'exact' | 'metered';
  /** `eip155:<chainId>`. */
  readonly network: string;
  /** The token. */
  readonly asset: Address;
  /** The node paid (`payTo`). */
  readonly payTo: Address;
  readonly payer: Address;
  /** What was authorized: the price (`exact`) or the maximum (`metered`), atomic units. */
  readonly authorized: bigint;
  /** The EIP-712 digest of the authorization signed (lower-case hex): what a paid record commits to. */
  readonly digest: Hex;
  /** The payload sent (`PAYMENT-SIGNATURE`, decoded). */
  readonly payload: PaymentPayload;
  /** The node's settlement answer (`PAYMENT-RESPONSE`), when the answer carried one. */
  settlement?: SettleResponse;
  /** What the node's settlement says it charged (metered; its word, at most `authorized`). */
  claimed?: bigint;
  /** What the budget counts as charged, once it learned it (see {@link Payer.charged}). */
  charged?: bigint;
}

/**
 * How a wrapped fetch gives a metered maximum's rest back to the budget (see {@link Payer.wrap}):
 * `'settlement'` (default, {@link payingFetch}): on the node's settlement, its word; `'checked'`
 * (a client): only once {@link answerPayment} (or {@link settledPayment}) checked the record, and
 * with a chain the chain, agree on the charge.
 */
export type RefundOn = 'settlement' | 'checked';

/** A paying account with its budget: hand it to `createClient({ payment })` or {@link payingFetch}. */
export interface Payer {
  readonly address: Address;
  readonly budget: bigint;
  readonly maxPrice: bigint | undefined;
  /** Atomic units spent or held for requests in flight (metered: the maximum until charged). */
  spent(): bigint;
  /** `budget − spent()`. */
  remaining(): bigint;
  /** Every payment made, oldest first. */
  readonly payments: readonly PaymentMade[];
  /**
   * Wraps a fetch so that it pays (see {@link payingFetch}). `pin`: the networks and tokens to pay
   * with where the payer's own options name none (a client passes its chain deployment's).
   * `refund`: when a metered maximum's rest goes back to the budget ({@link RefundOn}).
   */
  wrap(fetch?: typeof globalThis.fetch, pin?: AssetPin, refund?: RefundOn): typeof globalThis.fetch;
  /** A metered payment's actual charge is known (from its receipt): the rest of its maximum is free again. */
  charged(payment: PaymentMade, amount: bigint): void;
}

const PAYMENT_SIGNATURE = 'PAYMENT-SIGNATURE';

/** The payment each paid response was made with (a response object is the key; no other state). */
const PAID = new WeakMap<Response, PaymentMade>();

/**
 * The payment a response was bought with, if it was.
 *
 * @example
 * ```ts
 * const response = await payer.wrap()(url, init);
 * console.log(paymentOf(response)?.digest);
 * ```
 */
export function paymentOf(response: Response): PaymentMade | undefined {
  return PAID.get(response);
}

function atomic(name: string, value: bigint | string | number): bigint {
  try {
    const v = BigInt(value);
    if (v < 0n) throw new Error('negative');
    return v;
  } catch (cause) {
    throw new VerityError('CONFIG_INVALID', `payment: ${name} must be a whole number of atomic units`, { cause });
  }
}

/** An EIP-3009 authorization as it travels in a payload (decimal strings): the protocol's type. */
export type WireAuthorization = ProtocolAuthorization;

function chainIdOf(network: string): number {
  const m = /^eip155:([1-9][0-9]{0,15})$/.exec(network);
  if (!m) throw new VerityError('PAYMENT_INVALID', `not an EVM network: ${network}`);
  return Number(m[1]);
}

function domainOf(requirements: PaymentRequirements) {
  const extra = requirements.extra ?? {};
  if (typeof extra.name !== 'string' || typeof extra.version !== 'string') {
    throw new VerityError('PAYMENT_INVALID', 'the requirements name no EIP-712 domain (extra.name, extra.version)');
  }
  return {
    name: extra.name,
    version: extra.version,
    chainId: chainIdOf(requirements.network),
    verifyingContract: getAddress(requirements.asset),
  };
}

/** An authorization as it travels (decimal strings) in the form the contracts package signs and hashes. */
function authorizationOf(auth: WireAuthorization): TransferAuthorization {
  return {
    from: getAddress(auth.from),
    to: getAddress(auth.to),
    value: BigInt(auth.value),
    validAfter: BigInt(auth.validAfter),
    validBefore: BigInt(auth.validBefore),
    nonce: auth.nonce as Hex,
  };
}

/**
 * The `metered` scheme's client side (an x402 `SchemeNetworkClient`): a ReceiveWithAuthorization
 * to the settlement contract for the maximum the node asks (`amount`), nonce bound to the payee.
 * Payload: `{ authorization, salt, signature }`.
 */
export class MeteredEvmScheme implements SchemeNetworkClient {
  readonly scheme = 'metered';
  constructor(private readonly signer: LocalAccount) {}

  async createPaymentPayload(x402Version: number, requirements: PaymentRequirements) {
    const settlement = requirements.extra?.settlement;
    if (typeof settlement !== 'string' || !isAddress(settlement)) {
      throw new VerityError('PAYMENT_INVALID', 'metered requirements name no settlement contract (extra.settlement)');
    }
    const domain = domainOf(requirements);
    const salt = randomBytes32();
    const authorization: WireAuthorization = {
      from: this.signer.address,
      to: getAddress(settlement),
      value: requirements.amount,
      validAfter: '0',
      validBefore: String(Math.floor(Date.now() / 1000) + requirements.maxTimeoutSeconds),
      nonce: meteredNonce(getAddress(requirements.payTo), salt),
    };
    const signature = await signTransferAuthorization(this.signer, domain, authorizationOf(authorization), 'receive');
    return { x402Version, payload: { authorization, salt, signature } };
  }
}

/** What one accepted requirement costs us at most, or undefined when we cannot pay it at all. */
function costOf(r: PaymentRequirements) {
  if (r.scheme !== 'exact' && r.scheme !== 'metered') return undefined;
  if (typeof r.network !== 'string' || !NETWORK.test(r.network)) return undefined;
  if (typeof r.asset !== 'string' || !isAddress(r.asset) || typeof r.payTo !== 'string' || !isAddress(r.payTo))
    return undefined;
  // An exact EIP-3009 payment only (x402 exact's Permit2 variant needs a proxy we do not deploy).
  if (r.scheme === 'exact' && (r.extra?.assetTransferMethod ?? 'eip3009') !== 'eip3009') return undefined;
  if (typeof r.amount !== 'string' || !/^(0|[1-9][0-9]{0,77})$/.test(r.amount)) return undefined;
  if (!Number.isSafeInteger(r.maxTimeoutSeconds) || r.maxTimeoutSeconds <= 0) return undefined;
  return BigInt(r.amount);
}

const NETWORK = /^eip155:[1-9][0-9]{0,15}$/;

/** True when `r` is on a network and in a token that `pin` names (addresses compared case-blind). */
function isPinned(r: PaymentRequirements, pin: { networks: readonly string[]; assets: readonly string[] }): boolean {
  return pin.networks.includes(r.network) && pin.assets.some((a) => a.toLowerCase() === r.asset.toLowerCase());
}

/**
 * True unless `r` is metered and names a settlement contract outside `settlements`. A metered
 * maximum goes to that contract, which alone decides what reaches the payee and what comes back,
 * so one the node names is never taken on its word: without a pin (the payer's `settlements`, or
 * its chain's deployment) a metered price is not payable.
 */
function isSettlementPinned(r: PaymentRequirements, settlements: readonly string[] | undefined): boolean {
  if (r.scheme !== 'metered') return true;
  if (settlements === undefined) return false;
  const named = r.extra?.settlement;
  return typeof named === 'string' && settlements.some((a) => a.toLowerCase() === named.toLowerCase());
}

/** The option's list, checked: `eip155:<id>` networks, token addresses (`CONFIG_INVALID` otherwise). */
function pinList(
  name: 'networks' | 'assets' | 'settlements',
  list: readonly string[] | undefined,
): readonly string[] | undefined {
  if (list === undefined) return undefined;
  const ok = name === 'networks' ? (v: unknown) => typeof v === 'string' && NETWORK.test(v) : isAddress;
  if (!Array.isArray(list) || !list.every((v) => ok(v as string))) {
    throw new VerityError(
      'CONFIG_INVALID',
      name === 'networks'
        ? 'payment: networks must be CAIP-2 EVM ids (eip155:<chainId>)'
        : `payment: ${name} must be contract addresses (0x…)`,
    );
  }
  return list;
}

function fail(code: ErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerityError(code, message, { details, ...(cause === undefined ? {} : { cause }) });
}

/**
 * A payer: an account and a budget. Requests made through its {@link Payer.wrap | wrapped fetch}
 * pay a node's 402 by themselves, never more than `maxPrice` for one request nor `budget` in all
 * (concurrent requests included: the price is held before the payment is signed, and given back
 * when the node refuses the payment).
 *
 * @example
 * ```ts
 * const payer = createPayer({ account: '0x…key', budget: 1_000_000n, maxPrice: 20_000n });
 * const res = await payer.wrap()('http://127.0.0.1:8700/v1/infer', { method: 'POST', body, headers });
 * console.log(payer.spent(), payer.payments[0]?.digest);
 * ```
 */
export function createPayer(options: PaymentOptions): Payer {
  const account = typeof options.account === 'string' ? privateKeyToAccount(options.account) : options.account;
  if (typeof account?.signTypedData !== 'function' || !isAddress(account.address)) {
    throw new VerityError('CONFIG_INVALID', 'payment: account must be a viem LocalAccount or a private key');
  }
  const budget = atomic('budget', options.budget);
  const maxPrice = options.maxPrice === undefined ? undefined : atomic('maxPrice', options.maxPrice);
  const own: AssetPin = {
    networks: pinList('networks', options.networks),
    assets: pinList('assets', options.assets),
    settlements: pinList('settlements', options.settlements),
  };
  // x402's registry signs: its exact EVM client for `exact`, ours for `metered`. Spend controls
  // off: they know mainnet USDC's and the like, not a configured token; the budget below rules.
  // Loaded on the first 402: a client that never pays (the explorer's pages) does not carry them.
  let x402: Promise<{ client: x402Client; http: x402HTTPClient }> | undefined;
  const load = () => {
    x402 ??= Promise.all([import('@x402/core/client'), import('@x402/evm/exact/client')]).then(([core, evm]) => {
      const client = new core.x402Client()
        .register('eip155:*', new evm.ExactEvmScheme(account))
        .register('eip155:*', new MeteredEvmScheme(account))
        .setSpendControls(false);
      return { client, http: new core.x402HTTPClient(client) };
    });
    return x402;
  };
  let spent = 0n;
  const payments: PaymentMade[] = [];

  const pay = async (required: PaymentRequired, x402: x402Client, defaults: AssetPin): Promise<PaymentMade> => {
    const options402 = Array.isArray(required.accepts) ? required.accepts : [];
    const accepts = () => options402.map((r) => ({ scheme: r?.scheme, network: r?.network, asset: r?.asset }));
    const payable = options402
      .map((r) => ({ r, cost: costOf(r) }))
      .filter((x): x is { r: PaymentRequirements; cost: bigint } => x.cost !== undefined);
    if (payable.length === 0) {
      fail('PAYMENT_REQUIRED', 'the node asks for a payment this client cannot make (scheme or its form)', {
        accepts: accepts(),
      });
    }
    // The token is the caller's choice, never the node's: the budget counts one token's units, so
    // the same number of units of a dearer token (or the same address on another chain) is refused.
    const networks = own.networks ?? defaults.networks;
    const assets = own.assets ?? defaults.assets;
    if (networks === undefined || assets === undefined) {
      fail(
        'PAYMENT_ASSET_NOT_PINNED',
        'the payer pins no token to pay with: give payment `assets` and `networks`, or a client `chain` whose deployment names its token',
        { accepts: accepts() },
      );
    }
    // A metered maximum goes only to a pinned settlement contract (the payer's, or its chain's).
    const settlements = own.settlements ?? defaults.settlements;
    const pinned = payable.filter(({ r }) => isPinned(r, { networks, assets }) && isSettlementPinned(r, settlements));
    if (pinned.length === 0) {
      fail(
        'PAYMENT_ASSET_NOT_PINNED',
        'the node asks to be paid in a token, on a chain or through a settlement contract this payer did not pin',
        { accepts: accepts(), networks, assets, ...(settlements === undefined ? {} : { settlements }) },
      );
    }
    // The cheapest we may pay; none within the caps is refused before anything is signed.
    pinned.sort((a, b) => (a.cost < b.cost ? -1 : a.cost > b.cost ? 1 : 0));
    const { r, cost } = pinned[0] as { r: PaymentRequirements; cost: bigint };
    if (maxPrice !== undefined && cost > maxPrice) {
      fail('PAYMENT_OVER_BUDGET', `the node asks ${cost}, above the ${maxPrice} allowed per request`, {
        price: cost.toString(),
        maxPrice: maxPrice.toString(),
      });
    }
    if (spent + cost > budget) {
      fail('PAYMENT_OVER_BUDGET', `the node asks ${cost}, above the ${budget - spent} left of the budget`, {
        price: cost.toString(),
        remaining: (budget - spent).toString(),
        budget: budget.toString(),
      });
    }
    spent += cost; // held before signing: concurrent requests cannot overspend
    try {
      const payload = await x402.createPaymentPayload({ ...required, accepts: [r] });
      const auth = (payload.payload as { authorization?: WireAuthorization }).authorization;
      if (auth === undefined) fail('PAYMENT_INVALID', 'the signed payload has no authorization');
      const made: PaymentMade = {
        scheme: r.scheme as 'exact' | 'metered',
        network: r.network,
        asset: getAddress(r.asset),
        payTo: getAddress(r.payTo),
        payer: account.address,
        authorized: cost,
        digest: transferAuthorizationDigest(
          domainOf(r),
          authorizationOf(auth),
          r.scheme === 'exact' ? 'transfer' : 'receive',
        ).toLowerCase() as Hex,
        payload,
      };
      return made;
    } catch (e) {
      spent -= cost;
      if (e instanceof VerityError) throw e;
      return fail('PAYMENT_INVALID', `cannot sign the payment the node asks for: ${(e as Error).message}`, {}, e);
    }
  };

  const payer: Payer = {
    address: account.address,
    budget,
    maxPrice,
    spent: () => spent,
    remaining: () => budget - spent,
    payments,
    charged(payment, amount) {
      if (payment.charged !== undefined || amount > payment.authorized || amount < 0n) return;
      payment.charged = amount;
      spent -= payment.authorized - amount;
    },
    wrap(base = globalThis.fetch, pin = {}, refund = 'settlement') {
      const f = base.bind(globalThis);
      return async (input, init) => {
        // A Request's body can be read once: keep a copy for the paid retry.
        const retryInput = input instanceof Request ? input.clone() : input;
        const first = await f(input, init);
        if (first.status !== 402) return first;
        const headers = new Headers(input instanceof Request ? input.headers : undefined);
        new Headers(init?.headers).forEach((v, k) => {
          headers.set(k, v);
        });
        // A request that already carried a payment, or a streamed body that cannot go twice: the 402 is the answer.
        if (headers.has(PAYMENT_SIGNATURE) || init?.body instanceof ReadableStream) return first;
        const { client, http } = await load();
        let required: PaymentRequired;
        try {
          required = http.getPaymentRequiredResponse((name) => first.headers.get(name));
        } catch {
          return first; // a 402 without x402's header (an old node, a proxy): the caller reads its body
        }
        if (required.x402Version !== 2) return first;
        await first.body?.cancel().catch(() => undefined);
        const made = await pay(required, client, pin);
        for (const [k, v] of Object.entries(http.encodePaymentSignatureHeader(made.payload))) headers.set(k, v);
        let second: Response;
        try {
          second = await f(retryInput, { ...init, headers });
        } catch (e) {
          // Unknown whether the node took it: the price stays held (the payer may still keep it).
          payments.push(made);
          throw e;
        }
        if (second.status === 402) {
          spent -= made.authorized; // refused: nothing was taken
          return second;
        }
        payments.push(made);
        let settle: SettleResponse | undefined;
        try {
          settle = http.getPaymentSettleResponse((name) => second.headers.get(name));
        } catch {
          // No settlement header: a streamed answer settles after its tokens (below), else the receipt tells.
        }
        // The node's word: refused above the maximum; the budget takes it only when `refund` says so.
        const onWord = () => {
          if (refund === 'settlement' && made.scheme === 'metered' && made.claimed !== undefined) {
            payer.charged(made, made.claimed);
          }
        };
        if (settle !== undefined) {
          try {
            claimedBy(made, settle);
          } catch (e) {
            await second.body?.cancel().catch(() => undefined);
            throw e;
          }
          onWord();
        }
        const answer =
          settle === undefined ? watchStreamedSettlement(second, (s) => claimedBy(made, s), onWord) : second;
        PAID.set(answer, made);
        return answer;
      };
    },
  };
  return payer;
}

/**
 * The node's settlement of `made` (its `PAYMENT-RESPONSE`, or a stream's `verity.payment`): what it
 * says it charged (`made.claimed`). More than was authorized is `PAYMENT_OVERCHARGED` (the chain
 * would not move it: a node that says so lies about something). Only the node's word: the budget
 * takes it as the charge in a bare {@link payingFetch} (so an `openai` client is not held at every
 * request's maximum), a client only once the record (and its chain) agree ({@link answerPayment}).
 */
function claimedBy(made: PaymentMade, settle: SettleResponse): void {
  made.settlement = settle;
  delete made.claimed;
  const claimed: unknown = settle.amount;
  if (claimed === undefined) return;
  if (typeof claimed !== 'string' || !/^(0|[1-9][0-9]{0,77})$/.test(claimed)) {
    fail('RESPONSE_INVALID', 'the node’s settlement names no valid amount', { amount: claimed });
  }
  const amount = BigInt(claimed);
  if (amount > made.authorized) {
    fail('PAYMENT_OVERCHARGED', `the node says it charged ${amount}, above the ${made.authorized} authorized`, {
      authorized: made.authorized.toString(),
      amount: claimed,
      digest: made.digest,
    });
  }
  made.claimed = amount;
}

/**
 * A streamed paid answer (server-sent events) carries its settlement in its last event's
 * `verity.payment`, after the tokens: the bytes pass on as they are, each such event is read as
 * {@link claimedBy} reads a header (an overcharge errors the stream there; a later one replaces an
 * earlier), and `onEnd` runs once the stream ended whole, so the last settlement is the one taken.
 */
function watchStreamedSettlement(
  response: Response,
  onSettle: (s: SettleResponse) => void,
  onEnd: () => void,
): Response {
  if (response.body === null || !(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
    return response;
  }
  const split = sseSplitter();
  const watched = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(bytes, controller) {
        for (const data of split(bytes)) {
          if (!data.includes('"verity"')) continue;
          let settle: unknown;
          try {
            settle = (JSON.parse(data) as { verity?: { payment?: unknown } } | null)?.verity?.payment;
          } catch {
            continue; // not JSON: the reader of the stream reports it
          }
          if (typeof settle !== 'object' || settle === null) continue;
          onSettle(settle as SettleResponse); // throws: the stream errors with its code
        }
        controller.enqueue(bytes);
      },
      flush() {
        onEnd();
      },
    }),
  );
  const answer = new Response(watched, {
    status: response.status,
    statusText: response.statusText,
    headers: response.headers,
  });
  // Callers (the `openai` client among them) may read where the answer came from.
  Object.defineProperty(answer, 'url', { value: response.url });
  return answer;
}

/**
 * A fetch that pays: for the official `openai` client or any other HTTP client. Give it a
 * {@link Payer} (to share one budget across clients) or payment options.
 *
 * @example
 * ```ts
 * import OpenAI from 'openai';
 * const openai = new OpenAI({
 *   baseURL: 'http://127.0.0.1:8700/v1',
 *   apiKey: 'unused',
 *   fetch: payingFetch({ account: payerKey, budget: 1_000_000n }),
 * });
 * ```
 */
export function payingFetch(
  payment: Payer | PaymentOptions,
  fetch: typeof globalThis.fetch = globalThis.fetch,
): typeof globalThis.fetch {
  const payer = 'wrap' in payment ? payment : createPayer(payment);
  return payer.wrap(fetch);
}

/**
 * Checks that a verified record commits to the payment this client made for it: the record's
 * `payment.digest` is the digest of the authorization signed, and its `payment.amount` is the
 * price (`exact`) or at most the maximum (`metered`). A paid answer whose record does not is
 * `PAYMENT_NOT_COMMITTED`. Returns the amount charged.
 *
 * @example
 * ```ts
 * const charged = checkPaymentCommitment(paymentOf(response)!, record);
 * ```
 */
export function checkPaymentCommitment(made: PaymentMade, record: unknown): bigint {
  const p = (record as { payment?: { digest?: unknown; amount?: unknown } } | null)?.payment;
  if (p === undefined || p === null) {
    fail('PAYMENT_NOT_COMMITTED', 'the answer was paid for but its record commits to no payment', {
      digest: made.digest,
    });
  }
  // The record's digest is bare lower-case hex (docs/protocol.md §5); ours is viem's 0x form.
  if (typeof p.digest !== 'string' || p.digest.replace(/^0x/, '').toLowerCase() !== made.digest.slice(2)) {
    fail('PAYMENT_NOT_COMMITTED', 'the record commits to another payment than the one made', {
      expected: made.digest,
      actual: p.digest,
    });
  }
  if (typeof p.amount !== 'string' || !/^(0|[1-9][0-9]*)$/.test(p.amount)) {
    fail('PAYMENT_NOT_COMMITTED', 'the record commits to no valid amount', { actual: p.amount });
  }
  const amount = BigInt(p.amount);
  if (made.scheme === 'exact' ? amount !== made.authorized : amount > made.authorized) {
    fail('PAYMENT_NOT_COMMITTED', `the record charges ${amount}, not what was authorized (${made.authorized})`, {
      authorized: made.authorized.toString(),
      amount: p.amount,
    });
  }
  return amount;
}

/** A payment whose record was checked to commit to it. */
export interface VerifiedPayment {
  readonly scheme: 'exact' | 'metered';
  readonly network: string;
  readonly asset: Address;
  readonly payer: Address;
  readonly payTo: Address;
  /** Atomic units authorized (`metered`: the maximum). */
  readonly authorized: string;
  /** Atomic units charged, as the record commits. */
  readonly amount: string;
  /** The authorization's EIP-712 digest, as the record commits. */
  readonly digest: Hex;
  /** The settlement transaction, when the node's answer named it (`PAYMENT-RESPONSE`). */
  readonly transaction?: string;
}

/**
 * A verified answer's payment: none when it was not paid for; else the record must commit to it
 * ({@link checkPaymentCommitment}), and the payer's budget learns what was charged.
 */
export function settledPayment(
  payer: Payer | undefined,
  made: PaymentMade | undefined,
  record: unknown,
): VerifiedPayment | undefined {
  if (made === undefined) return undefined;
  const amount = checkPaymentCommitment(made, record);
  // A metered charge the node's settlement already named: its record must say the same.
  if (made.claimed !== undefined && made.claimed !== amount) {
    fail('PAYMENT_NOT_COMMITTED', `the record charges ${amount}, the node's settlement said ${made.claimed}`, {
      settlement: made.claimed.toString(),
      amount: amount.toString(),
    });
  }
  payer?.charged(made, amount);
  const transaction = made.settlement?.transaction;
  return {
    scheme: made.scheme,
    network: made.network,
    asset: made.asset,
    payer: made.payer,
    payTo: made.payTo,
    authorized: made.authorized.toString(),
    amount: amount.toString(),
    digest: made.digest,
    ...(typeof transaction === 'string' && transaction !== '' ? { transaction } : {}),
  };
}

/** What a settlement check reads: the chain (its id and a client) where the token lives. */
export interface SettlementChain {
  readonly publicClient: PublicClient;
  readonly deployment: { readonly chainId: number; readonly payments?: { readonly token: string } | undefined };
}

/**
 * What a verifier on `chain` expects of a receipt's payment (the protocol's `payment` option):
 * on that chain, and in its deployment's token when it names one. The token matters to the
 * settlement check too: `authorizationState` is read on the payment's token, so a node must not
 * name a contract of its own that says "used" to anything.
 *
 * @example
 * ```ts
 * verifyBundle(bundle, trust, { payment: chainPaymentPolicy(client.chain) });
 * ```
 */
export function chainPaymentPolicy(chain: SettlementChain): PaymentPolicy {
  const token = chain.deployment.payments?.token;
  return { network: `eip155:${chain.deployment.chainId}`, ...(token === undefined ? {} : { asset: token }) };
}

/**
 * Checks on the chain that a payment was settled, not only authorized: its EIP-3009 nonce is used
 * on its token (`authorizationState(from, nonce)`; for `metered` the nonce is
 * `meteredNonce(payee, salt)`, used when `MeteredSettlement` took the maximum). A receipt proves
 * that the payer signed what its record commits to; only the chain says the node submitted it.
 * A payment on another chain than `chain`, or in another token than its deployment names, is
 * `PAYMENT_WRONG_NETWORK` (it cannot be checked here: a token of the node's own could say "used"
 * to anything); an unused nonce is `PAYMENT_NOT_SETTLED`. The node settles before it answers (docs/protocol.md
 * §17.3; a stream: before its receipt event), so an answer in hand is settled or never will be
 * by that node. A nonce the payer cancelled (EIP-3009 `cancelAuthorization`) reads as used: the
 * check guards the payer against the node, not the node against the payer.
 *
 * @example
 * ```ts
 * await checkPaymentSettled(client.chain, receipt.payment);
 * ```
 */
export async function checkPaymentSettled(
  chain: SettlementChain,
  payment: {
    readonly network: string;
    readonly asset: string;
    readonly authorization: { readonly from: string; readonly nonce: string };
  },
): Promise<void> {
  const network = `eip155:${chain.deployment.chainId}`;
  if (payment.network !== network) {
    fail('PAYMENT_WRONG_NETWORK', 'the payment is on another chain than the one it is checked on', {
      expected: network,
      actual: payment.network,
    });
  }
  const { from, nonce } = payment.authorization;
  if (!isAddress(payment.asset) || !isAddress(from) || !/^0x[0-9a-fA-F]{64}$/.test(nonce)) {
    fail('PAYMENT_INVALID', 'the payment names no token, payer or nonce to look up');
  }
  // `authorizationState` is asked of the payment's token: one the node deployed could say "used"
  // to anything, so where the deployment names its token, only that token is asked.
  const token = chain.deployment.payments?.token;
  if (token !== undefined && token.toLowerCase() !== payment.asset.toLowerCase()) {
    fail('PAYMENT_WRONG_NETWORK', 'the payment is in another token than the deployment’s', {
      expected: token,
      actual: payment.asset,
    });
  }
  const used = await authorizationUsed(chain.publicClient, getAddress(payment.asset), getAddress(from), nonce as Hex);
  if (!used) {
    fail('PAYMENT_NOT_SETTLED', 'the payment authorization was never used on its token: committed to, not settled', {
      network,
      asset: payment.asset,
      from,
      nonce,
    });
  }
}

/**
 * Asks the chain about the payment signatures of `receipts` that do not recover to their payer
 * (docs/protocol.md §17.4; offline such a receipt is `PAYMENT_SIGNATURE_NEEDS_CHAIN`): each payer
 * on `chain` is asked ERC-1271 `isValidSignature(digest, signature)` (`erc1271Valid`: only the
 * magic value counts). Returns what they vouched for, to pass as the verify options'
 * `payment.vouched`. A payer that does not vouch (an account without code, a wallet that says
 * no) throws `PAYMENT_SIGNATURE_INVALID` (`details.receipt`: its index). A quorum bundle's
 * `dissent` receipts are asked about too (the verifier checks their payments as the receipts'):
 * one whose payer does not vouch throws with `details.dissent`, its index. Payments on other
 * chains are not asked about (they stay `PAYMENT_SIGNATURE_NEEDS_CHAIN`).
 *
 * @example
 * ```ts
 * const vouched = await askPayers(client.chain, bundle.receipts, bundle.quorum?.dissent);
 * verifyBundle(bundle, trust, { payment: { ...chainPaymentPolicy(client.chain), vouched } });
 * ```
 */
export async function askPayers(
  chain: SettlementChain,
  receipts: readonly unknown[],
  dissent: readonly unknown[] = [],
): Promise<ContractSignature[]> {
  const network = `eip155:${chain.deployment.chainId}`;
  const vouched: ContractSignature[] = [];
  const all = [
    ...receipts.map((value, i) => ({ value, at: { receipt: i } })),
    ...dissent.map((value, i) => ({ value, at: { dissent: i } })),
  ];
  for (const { value, at } of all) {
    let ask: ContractSignature | undefined;
    try {
      const payment = parseReceiptPayment((value as { payment?: unknown } | null)?.payment);
      if (payment.network !== network) continue; // another chain: not ours to ask
      ask = contractSignatureOf(payment);
    } catch {
      continue; // no payment, or a malformed one: verification says so
    }
    if (ask === undefined) continue; // ECDSA decided
    if (!(await erc1271Valid(chain.publicClient, ask.from as Address, ask.digest as Hex, ask.signature as Hex))) {
      fail(
        'PAYMENT_SIGNATURE_INVALID',
        "the payment signature is not its payer's: the payer has no code, or its isValidSignature (ERC-1271) does not vouch for it",
        { ...at, from: ask.from, digest: ask.digest },
      );
    }
    vouched.push(ask);
  }
  return vouched;
}

/**
 * Verifies with the payers' word on the chain: `run` verifies under a payment policy (`policy`,
 * then with {@link askPayers}' answers added as `vouched` when the first run failed with
 * `PAYMENT_SIGNATURE_NEEDS_CHAIN` and `chain` is at hand), so every check after the payment's
 * runs too. A payer that does not vouch: `PAYMENT_SIGNATURE_INVALID` for its receipt. `dissent`:
 * a quorum bundle's dissent receipts, whose payers are asked too. Without a chain the first
 * result stands.
 *
 * @example
 * ```ts
 * const result = await verifyWithPayers(client.chain, [receipt], (payment) => verifyReceipt(receipt, trust, { payment }));
 * ```
 */
export async function verifyWithPayers(
  chain: SettlementChain | undefined,
  receipts: readonly unknown[],
  run: (payment: PaymentPolicy) => VerifyResult | Promise<VerifyResult>,
  policy: PaymentPolicy = {},
  dissent: readonly unknown[] = [],
): Promise<VerifyResult> {
  const first = await run(policy);
  // A dissent's contract-wallet payment fails its bundle as QUORUM_DISSENT_INVALID, caused by it.
  const undecided = (r: VerifyResult) =>
    !r.ok &&
    (r.code === 'PAYMENT_SIGNATURE_NEEDS_CHAIN' ||
      (r.code === 'QUORUM_DISSENT_INVALID' && r.error.details.causeCode === 'PAYMENT_SIGNATURE_NEEDS_CHAIN'));
  if (first.ok || !undecided(first) || chain === undefined) return first;
  let vouched: ContractSignature[];
  try {
    vouched = await askPayers(chain, receipts, dissent);
  } catch (error) {
    if (!isVerityError(error)) throw error;
    const receipt = error.details.receipt;
    return { ok: false, code: error.code, error, ...(typeof receipt === 'number' ? { receipt } : {}) };
  }
  return vouched.length === 0 ? first : run({ ...policy, vouched: [...(policy.vouched ?? []), ...vouched] });
}

/** The authorization a payment made carries (its payer and nonce, as the token knows them). */
function authorizationOfMade(made: PaymentMade): WireAuthorization {
  return (made.payload.payload as unknown as { authorization: WireAuthorization }).authorization;
}

/**
 * What the settlement transaction the node named charged for a metered payment: its
 * `MeteredSettled` event for this payer and nonce. A transaction with no such event does not
 * settle this payment (`PAYMENT_NOT_COMMITTED`: the node named another one).
 */
async function meteredCharge(chain: SettlementChain, made: PaymentMade, transaction: Hex): Promise<bigint> {
  const auth = authorizationOfMade(made);
  const receipt = await chain.publicClient.getTransactionReceipt({ hash: transaction }).catch((cause: unknown) => {
    throw new VerityError('PAYMENT_NOT_COMMITTED', 'the settlement transaction the node named is not on the chain', {
      details: { transaction },
      cause,
    });
  });
  const settled = parseEventLogs({ abi: meteredSettlementAbi, logs: receipt.logs, eventName: 'MeteredSettled' }).find(
    (e) =>
      e.address.toLowerCase() === auth.to.toLowerCase() &&
      e.args.from.toLowerCase() === auth.from.toLowerCase() &&
      e.args.nonce.toLowerCase() === auth.nonce.toLowerCase(),
  );
  if (settled === undefined) {
    fail('PAYMENT_NOT_COMMITTED', 'the settlement transaction the node named does not settle this payment', {
      transaction,
    });
  }
  return settled.args.amount;
}

/**
 * A verified answer's payment ({@link settledPayment}) and, when the client has a chain and paid
 * on it, that the node settled it ({@link checkPaymentSettled}; `PAYMENT_NOT_SETTLED`) and, for
 * `metered`, that the settlement transaction it named charged what the record says
 * (`PAYMENT_NOT_COMMITTED` otherwise: a record of 100 over a charge of 5000 would hide the cost).
 *
 * @example
 * ```ts
 * const payment = await answerPayment(client.payer, client.chain, paymentOf(response), record);
 * ```
 */
export async function answerPayment(
  payer: Payer | undefined,
  chain: SettlementChain | undefined,
  made: PaymentMade | undefined,
  record: unknown,
): Promise<VerifiedPayment | undefined> {
  // Paid on another chain than the client's (the caller pinned it): that chain is not at hand.
  if (made !== undefined && chain !== undefined && made.network === `eip155:${chain.deployment.chainId}`) {
    const amount = checkPaymentCommitment(made, record); // before the budget learns the charge
    await checkPaymentSettled(chain, {
      network: made.network,
      asset: made.asset,
      authorization: authorizationOfMade(made),
    });
    if (made.scheme === 'metered') {
      // The charge the chain moved, from the transaction the node named (it always names one).
      const transaction = made.settlement?.transaction;
      if (typeof transaction !== 'string' || !isHex(transaction) || transaction.length !== 66) {
        fail('PAYMENT_NOT_COMMITTED', 'the node named no settlement transaction for a metered payment', {
          digest: made.digest,
        });
      }
      const charged = await meteredCharge(chain, made, transaction);
      if (charged !== amount) {
        fail('PAYMENT_NOT_COMMITTED', `the record charges ${amount}, the settlement on chain ${charged}`, {
          amount: amount.toString(),
          settled: charged.toString(),
          transaction,
        });
      }
    }
  }
  return settledPayment(payer, made, record);
}
