/**
 * x402 on the node (docs/api.md "Payments"): the node is its own facilitator. For a priced model
 * it answers 402 with what it accepts; it verifies the `PAYMENT-SIGNATURE` of a retry (signature,
 * amount, validity window, chain, token and payee, nonce unused, balance), records the payment in
 * the record it logs, journals the accepted payment and the answer (durable) before it settles,
 * settles on chain from its own account, and answers with `PAYMENT-RESPONSE`.
 *
 * Verification is local where it can be (the EIP-712 digest under the node's own token domain,
 * never the one the client names) and asks the chain last (nonce state, balance), so that a
 * malformed or mis-signed payment costs no RPC call.
 *
 * Idempotency by payment id (the authorization's digest): the same payment retried for the same
 * request gets the journaled answer and no second settlement; for another request,
 * `PAYMENT_REPLAYED`. The chain's EIP-3009 nonce makes a second settlement impossible anyway.
 */
import {
  authorizationDigest,
  authorizationKind,
  authorizationSigner,
  decodePaymentHeader,
  fail,
  isVerityError,
  meteredNonce,
  type PaymentCommitment,
  type PaymentPayload,
  type PaymentRequired,
  type PaymentRequirements,
  type PaymentScheme,
  parsePaymentPayload,
  type ReceiptPayment,
  receiptPaymentOf,
  type SettleResponse,
  sha256,
  type TokenDomain,
  toHex,
  utf8,
  VerityError,
  X402_VERSION,
} from '@verity/protocol';
import type { ModelPrice, PaymentSettings } from '../config.js';
import type { JournalEntry, PaymentJournal, StoredAnswer } from './journal.js';

/** What the node needs of the chain to be paid: reads, and settlements from its own account. */
export interface PaymentSettler {
  /** CAIP-2 network id, `eip155:<chainId>`. */
  readonly network: string;
  /** The node's account: who is paid. */
  readonly payee: string;
  /** The token's EIP-712 domain (read from the token). */
  readonly domain: TokenDomain;
  /** MeteredSettlement, when the node takes metered payments. */
  readonly meteredSettlement?: string;
  /** Whether `from` has used (or cancelled) `nonce` on the token. */
  used(from: string, nonce: string): Promise<boolean>;
  /**
   * What the chain's events say became of `payment`'s authorization: `paid` (the money moved to
   * the payee under it), `cancelled` (the payer burnt the nonce), or `unknown`.
   */
  outcome(payment: ReceiptPayment): Promise<PaymentOutcome>;
  balance(owner: string): Promise<bigint>;
  /**
   * Whether the contract account `signer` (a contract wallet) says `signature` over `digest` is its
   * own (ERC-1271; `digest` is 0x hex), as the token will ask it; false for an account without code.
   */
  signedByContract(signer: string, digest: string, signature: string): Promise<boolean>;
  /**
   * Settles `amount` of the payment; resolves with the mined transaction's hash. Settlements
   * requested while one is in flight may share a transaction (each still resolves or fails alone).
   */
  settle(payment: ReceiptPayment, amount: bigint): Promise<string>;
}

/** What became of an authorization on chain (see {@link PaymentSettler.outcome}). */
export type PaymentOutcome = 'paid' | 'cancelled' | 'unknown';

/** The model a request is for, as prices name it. */
export interface PricedModel {
  /** Manifest CID. */
  readonly cid: string;
  readonly name?: string;
  readonly version?: string;
}

/** A payment verified for one request, not yet journaled or settled. */
export interface VerifiedPayment {
  readonly id: string;
  readonly requestKey: string;
  readonly payload: PaymentPayload;
  readonly receipt: ReceiptPayment;
  /** The authorized value (for `metered`, the maximum). */
  readonly value: bigint;
  /** What the node asked for (its 402 again, should the settlement fail). */
  readonly required: PaymentRequired;
}

/** The outcome of checking a request's payment header. */
export type PaymentCheck =
  | { readonly kind: 'free' }
  /** A retry of a payment already accepted for this very request: its answer, as it went out. */
  | { readonly kind: 'replay'; readonly answer: StoredAnswer; readonly response: SettleResponse }
  | { readonly kind: 'paid'; readonly payment: VerifiedPayment };

/** Margin before `validBefore` within which a payment is refused as expiring (x402's exact facilitator uses 6 s). */
export const VALIDITY_MARGIN_SECONDS = 6;

/** The price of a model under `settings`, or undefined when it is free. */
export function priceOf(settings: PaymentSettings | undefined, model: PricedModel): ModelPrice | undefined {
  if (settings === undefined) return undefined;
  return (
    settings.prices[model.cid] ??
    (model.name !== undefined && model.version !== undefined
      ? settings.prices[`${model.name}@${model.version}`]
      : undefined)
  );
}

/** A model's price as `/v1/models` shows it: atomic units of `asset` on `network`, paid to `payTo`. */
export interface PriceView {
  readonly scheme: PaymentScheme;
  /** `exact`: per request. */
  readonly request?: string;
  /** `metered`: per prompt token and per generated token. */
  readonly inputToken?: string;
  readonly outputToken?: string;
  /** Known once the node's chain is read (absent while it starts). */
  readonly asset?: string;
  readonly network?: string;
  readonly payTo?: string;
}

/** The {@link PriceView} of `model` on a node with `settings` (and, once started, its settler). */
export function priceView(
  settings: PaymentSettings | undefined,
  service: PaymentService | undefined,
  model: PricedModel,
): PriceView | undefined {
  const price = priceOf(settings, model);
  if (price === undefined) return undefined;
  const where =
    service === undefined
      ? {}
      : {
          asset: service.settler.domain.verifyingContract,
          network: service.settler.network,
          payTo: service.settler.payee,
        };
  return 'request' in price
    ? { scheme: 'exact', request: price.request, ...where }
    : { scheme: 'metered', inputToken: price.inputToken, outputToken: price.outputToken, ...where };
}

/**
 * A 402 error: `code`, with the x402 `PaymentRequired` in `details.paymentRequired`, which the
 * error handler also sends as the `PAYMENT-REQUIRED` header (api/server.ts).
 */
export function paymentError(code: VerityError['code'], message: string, required: PaymentRequired, cause?: unknown) {
  return new VerityError(code, message, {
    details: { paymentRequired: { ...required, error: code } },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The digest of a request a payment pays for: route and body bytes. */
export function requestKeyOf(route: string, body: Uint8Array | string): string {
  const b = typeof body === 'string' ? utf8(body) : body;
  const r = utf8(`${route}\n`);
  const all = new Uint8Array(r.length + b.length);
  all.set(r);
  all.set(b, r.length);
  return toHex(sha256(all));
}

/** The payment service of a node. */
export interface PaymentService {
  readonly settings: PaymentSettings;
  readonly settler: PaymentSettler;
  /** The requirements for a request of `model` (undefined: free); `maxAmount` for a metered price. */
  requirements(model: PricedModel, options?: { maxAmount?: bigint; amount?: bigint }): PaymentRequirements | undefined;
  /** The x402 `PaymentRequired` for `requirements` at `url`. */
  required(requirements: PaymentRequirements, url: string, description?: string): PaymentRequired;
  /**
   * Checks the `PAYMENT-SIGNATURE` header of a request for `requirements` (none: free). Throws a
   * 402 `VerityError` (`PAYMENT_REQUIRED`, `PAYMENT_INVALID`, …) whose `details.paymentRequired`
   * is the header to send back.
   */
  check(
    header: string | undefined,
    requirements: PaymentRequirements | undefined,
    url: string,
    requestKey: string,
  ): Promise<PaymentCheck>;
  /** The record's commitment for a payment charging `amount`. */
  commitment(payment: VerifiedPayment, amount: bigint): PaymentCommitment;
  /**
   * Journals the payment and its answer (durable), then settles `amount` on chain. Resolves with
   * the `PAYMENT-RESPONSE`; a settlement that fails is a 402 `PAYMENT_SETTLEMENT_FAILED`.
   */
  settle(payment: VerifiedPayment, amount: bigint, answer: StoredAnswer): Promise<SettleResponse>;
  /** Settles what the journal holds as accepted (a crash before its settlement); expired ones are let go. */
  recover(): Promise<{ settled: number; expired: number; failed: number }>;
  /** Lets go of a verified payment whose request failed before an answer (nothing is charged). */
  release(payment: VerifiedPayment): void;
  /** The payment the node accepted under `id` (a paid record's `payment.digest`), for its receipt. */
  payment(id: string): ReceiptPayment | undefined;
  close(): Promise<void>;
}

/**
 * Creates the payment service over a settler (the chain) and a journal.
 *
 * @example
 * ```ts
 * const payments = createPaymentService(config.payments, settler, journal);
 * ```
 */
export function createPaymentService(
  settings: PaymentSettings,
  settler: PaymentSettler,
  journal: PaymentJournal,
  clock: () => number = () => Date.now(),
): PaymentService {
  const { network, payee, domain } = settler;
  // Payments being verified or settled now, by id: a concurrent second use is a replay.
  const inFlight = new Map<string, string>();

  const requirements = (
    model: PricedModel,
    options: { maxAmount?: bigint; amount?: bigint } = {},
  ): PaymentRequirements | undefined => {
    const price = priceOf(settings, model);
    if (price === undefined) return undefined;
    const base = {
      network,
      asset: domain.verifyingContract,
      payTo: payee,
      maxTimeoutSeconds: settings.maxTimeoutSeconds,
    };
    if ('request' in price) {
      // `amount`: a quorum's price (the node's own plus its members', api/quorum-payments.ts).
      const amount = options.amount === undefined ? price.request : options.amount.toString();
      return { scheme: 'exact', ...base, amount, extra: { name: domain.name, version: domain.version } };
    }
    if (settler.meteredSettlement === undefined) {
      return fail('CONFIG_INVALID', 'a per-token price needs payments.meteredSettlement', { model: model.cid });
    }
    return {
      scheme: 'metered',
      ...base,
      amount: (options.maxAmount ?? 0n).toString(),
      extra: {
        name: domain.name,
        version: domain.version,
        settlement: settler.meteredSettlement,
        pricePerInputToken: price.inputToken,
        pricePerOutputToken: price.outputToken,
      },
    };
  };

  const required = (r: PaymentRequirements, url: string, description?: string): PaymentRequired => ({
    x402Version: X402_VERSION,
    resource: { url, ...(description === undefined ? {} : { description }) },
    accepts: [r],
  });

  const responseOf = (e: JournalEntry): SettleResponse => ({
    success: e.state === 'settled',
    ...(e.state === 'failed' ? { errorReason: e.code ?? 'PAYMENT_SETTLEMENT_FAILED' } : {}),
    payer: e.payment.authorization.from,
    transaction: e.transaction ?? '',
    network,
    amount: e.amount,
  });

  async function settleEntry(e: JournalEntry): Promise<void> {
    const { from, nonce, validBefore } = e.payment.authorization;
    try {
      const tx = await settler.settle(e.payment, BigInt(e.amount));
      await journal.settled(e.id, tx);
    } catch (cause) {
      // Settled meanwhile (a crash after the transaction was mined, before the journal said so)?
      // Only the chain's evidence that the money moved to this node says so: the nonce's state is
      // true for a nonce the payer cancelled too (after the check, before the settlement), which
      // paid nothing — an answer for free if it counted.
      let outcome: PaymentOutcome = 'unknown';
      let unreadable = false;
      if (await settler.used(from, nonce).catch(() => false)) {
        try {
          outcome = await settler.outcome(e.payment);
        } catch {
          unreadable = true; // the chain could not say: the payment stays accepted, for a retry
        }
      }
      if (outcome === 'paid') {
        await journal.settled(e.id, '');
        return;
      }
      if (outcome === 'cancelled') await journal.failed(e.id, 'PAYMENT_SETTLEMENT_FAILED');
      else if (BigInt(validBefore) <= BigInt(Math.floor(clock() / 1000))) await journal.expired(e.id);
      // A refused transaction (a revert: the payer moved the funds, cancelled the nonce) never
      // settles; a chain that is down leaves the payment accepted, for a retry or the next start.
      else if (!unreadable && !isVerityError(cause, 'CHAIN_UNAVAILABLE')) {
        await journal.failed(e.id, 'PAYMENT_SETTLEMENT_FAILED');
      }
      throw new VerityError('PAYMENT_SETTLEMENT_FAILED', 'the payment could not be settled on chain', { cause });
    }
  }

  return {
    settings,
    settler,
    requirements,
    required,

    async check(header, reqs, url, requestKey) {
      if (reqs === undefined) return { kind: 'free' };
      const need = required(reqs, url);
      const refuse = (code: VerityError['code'], message: string, cause?: unknown): never => {
        throw paymentError(code, message, need, cause);
      };
      if (header === undefined || header === '') return refuse('PAYMENT_REQUIRED', 'this model is paid: pay with x402');
      let payload: PaymentPayload;
      try {
        payload = parsePaymentPayload(decodePaymentHeader(header));
      } catch (cause) {
        return refuse('PAYMENT_INVALID', 'the PAYMENT-SIGNATURE header is malformed', cause);
      }
      const { accepted, payload: p } = payload;
      const a = p.authorization;
      if (accepted.scheme !== reqs.scheme) refuse('PAYMENT_INVALID', `this model takes scheme ${reqs.scheme}`);
      if (accepted.network !== network) refuse('PAYMENT_WRONG_NETWORK', `this node is paid on ${network}`);
      if (accepted.asset !== reqs.asset) refuse('PAYMENT_WRONG_NETWORK', `this node is paid in token ${reqs.asset}`);
      if (accepted.payTo !== payee) refuse('PAYMENT_WRONG_NETWORK', `this node is paid at ${payee}`);
      if (reqs.scheme === 'exact' && a.to !== payee)
        refuse('PAYMENT_WRONG_NETWORK', 'the authorization pays someone else');
      if (reqs.scheme === 'metered') {
        if (a.to !== reqs.extra.settlement)
          refuse('PAYMENT_WRONG_NETWORK', 'the authorization is not to the settlement contract');
        if (meteredNonce(payee, p.salt as string) !== a.nonce) {
          refuse('PAYMENT_WRONG_NETWORK', 'the authorization nonce is not bound to this node (keccak256(payee, salt))');
        }
      }
      // The digest under this node's own token domain: a signature for another chain or token
      // recovers another address.
      const digest = authorizationDigest(domain, a, authorizationKind(accepted.scheme as PaymentScheme));
      const id = toHex(digest);
      const value = BigInt(a.value);
      // A new payment (not a retry of one this node took, which gets its answer even once its
      // window closed) is refused on what is checked locally — amount, validity window — before
      // its signature may cost a call to the chain (a contract wallet's ERC-1271 check).
      if (journal.get(id) === undefined && !inFlight.has(id)) {
        if (value < BigInt(reqs.amount)) {
          refuse('PAYMENT_UNDERPAID', `the authorization is for ${a.value}, the price is ${reqs.amount}`);
        }
        const now = BigInt(Math.floor(clock() / 1000));
        if (BigInt(a.validAfter) >= now) refuse('PAYMENT_EXPIRED', 'the authorization is not valid yet');
        if (BigInt(a.validBefore) <= now + BigInt(VALIDITY_MARGIN_SECONDS)) {
          refuse('PAYMENT_EXPIRED', 'the authorization has expired (or expires within seconds)');
        }
      }
      let signer: string | undefined;
      try {
        signer = authorizationSigner(digest, p.signature);
      } catch {
        signer = undefined; // not an ECDSA signature: perhaps a contract wallet's
      }
      // A payer with code (a contract wallet) signs as its ERC-1271 `isValidSignature` says, which
      // is what the token asks too (ECDSA first, as the token does). An account without code has
      // signed only what recovers to it.
      if (signer !== a.from && !(await settler.signedByContract(a.from, `0x${id}`, p.signature))) {
        refuse('PAYMENT_SIGNATURE_INVALID', 'the authorization was not signed by its payer');
      }
      // A retry of a payment this node already took: the same request gets its answer again.
      const known = journal.get(id);
      if (known !== undefined || inFlight.has(id)) {
        const key = known?.requestKey ?? inFlight.get(id);
        if (key !== requestKey) refuse('PAYMENT_REPLAYED', 'this payment already paid for another request');
        if (known === undefined) refuse('PAYMENT_REPLAYED', 'this payment is being used by a request in flight');
        const entry = known as JournalEntry;
        if (entry.state === 'accepted') {
          try {
            await settleEntry(entry);
          } catch (cause) {
            refuse('PAYMENT_SETTLEMENT_FAILED', 'the payment could not be settled on chain', cause);
          }
        }
        if (entry.state !== 'settled')
          refuse('PAYMENT_SETTLEMENT_FAILED', 'this payment did not settle; the answer is withheld');
        return { kind: 'replay', answer: entry.answer, response: responseOf(entry) };
      }
      inFlight.set(id, requestKey);
      try {
        const [used, balance] = await Promise.all([settler.used(a.from, a.nonce), settler.balance(a.from)]);
        if (used) refuse('PAYMENT_REPLAYED', 'the authorization nonce was already used on chain');
        if (balance < value)
          refuse('PAYMENT_INSUFFICIENT_FUNDS', `the payer holds ${balance}, the authorization is for ${value}`);
      } catch (e) {
        inFlight.delete(id);
        throw e;
      }
      return {
        kind: 'paid',
        payment: { id, requestKey, payload, receipt: receiptPaymentOf(payload), value, required: need },
      };
    },

    commitment(payment, amount) {
      if (amount > payment.value) fail('INVALID_ARGUMENT', 'a charge above the authorized value');
      return { digest: payment.id, amount: amount.toString() };
    },

    async settle(payment, amount, answer) {
      try {
        const entry = await journal.accept({
          id: payment.id,
          requestKey: payment.requestKey,
          payment: payment.receipt,
          amount: amount.toString(),
          answer,
        });
        try {
          await settleEntry(entry);
        } catch (cause) {
          throw paymentError(
            'PAYMENT_SETTLEMENT_FAILED',
            'the payment could not be settled on chain',
            payment.required,
            cause,
          );
        }
        return responseOf(entry);
      } finally {
        inFlight.delete(payment.id);
      }
    },

    async recover() {
      const out = { settled: 0, expired: 0, failed: 0 };
      // All at once: the settler puts them in as few transactions as it can.
      const pending = journal.pending();
      await Promise.all(pending.map((e) => settleEntry(e).catch(() => undefined)));
      for (const e of pending) {
        if (e.state === 'settled') out.settled++;
        else if (e.state === 'expired') out.expired++;
        else out.failed++;
      }
      return out;
    },

    release(payment) {
      inFlight.delete(payment.id);
    },

    payment: (id) => journal.get(id)?.payment,

    close: () => journal.close(),
  };
}
