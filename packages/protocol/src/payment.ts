/**
 * Payments (docs/protocol.md §17): the x402 v2 HTTP transport's messages as Verity reads and
 * writes them, the EIP-3009 authorizations they carry (EIP-712 digests, signer recovery), and the
 * payment evidence a receipt carries so that a verifier checks the record's payment commitment.
 *
 * x402 v2 (coinbase/x402, `specs/transports-v2/http.md`): a paid route answers 402 with a
 * `PAYMENT-REQUIRED` header (base64 of the JSON {@link PaymentRequired}); the client retries with a
 * `PAYMENT-SIGNATURE` header (base64 of the JSON {@link PaymentPayload}); the answer carries a
 * `PAYMENT-RESPONSE` header (base64 of the JSON {@link SettleResponse}). Amounts are decimal
 * strings of the token's atomic units; networks are CAIP-2 ids `eip155:<chainId>`.
 *
 * Schemes: `exact` is x402's exact EVM scheme (an EIP-3009 `TransferWithAuthorization` from the
 * payer to `payTo` for the price). `metered` is Verity's: an EIP-3009 `ReceiveWithAuthorization`
 * for a maximum to the `MeteredSettlement` contract, whose nonce `keccak256(abi.encode(payee,
 * salt))` binds the payee; the payee settles the amount used and the rest returns to the payer.
 *
 * @packageDocumentation
 */
import { concatBytes, fromBase64, fromHex, fromUtf8, toBase64, toHex, utf8 } from './bytes.js';
import { fail, VerityError } from './errors.js';
import { keccak256, parseAddress, recoverSigner } from './eth.js';

/** The x402 protocol version of every message this module reads or writes. */
export const X402_VERSION = 2;

/** The HTTP headers of the x402 v2 transport. */
export const PAYMENT_HEADERS = {
  required: 'PAYMENT-REQUIRED',
  signature: 'PAYMENT-SIGNATURE',
  response: 'PAYMENT-RESPONSE',
} as const;

/** Payment schemes: x402 `exact` (fixed price) and Verity's `metered` (language models). */
export const PAYMENT_SCHEMES = ['exact', 'metered'] as const;
export type PaymentScheme = (typeof PAYMENT_SCHEMES)[number];

/**
 * An EIP-3009 authorization as x402 carries it: addresses as `0x` hex, integers as decimal
 * strings, the nonce as `0x` and 64 hex digits.
 */
export interface TransferAuthorization {
  readonly from: string;
  readonly to: string;
  readonly value: string;
  /** Unix seconds: valid strictly after. */
  readonly validAfter: string;
  /** Unix seconds: valid strictly before. */
  readonly validBefore: string;
  readonly nonce: string;
}

/** The EIP-712 domain of an EIP-3009 token (its `name()`, `version()`, chain and address). */
export interface TokenDomain {
  readonly name: string;
  readonly version: string;
  readonly chainId: number;
  readonly verifyingContract: string;
}

/** What x402 `extra` carries for the EVM schemes: the token's EIP-712 name and version, and for `metered` the rest. */
export interface PaymentExtra {
  readonly name: string;
  readonly version: string;
  /** `metered`: the MeteredSettlement contract (the authorization's `to`). */
  readonly settlement?: string;
  /** `metered`: price per prompt token and per generated token, atomic units. */
  readonly pricePerInputToken?: string;
  readonly pricePerOutputToken?: string;
}

/** One accepted way to pay (x402 v2 `PaymentRequirements`). `amount` is the price, or for `metered` the maximum. */
export interface PaymentRequirements {
  readonly scheme: PaymentScheme;
  readonly network: string;
  /** The token's address. */
  readonly asset: string;
  readonly amount: string;
  /** The node's account: who is paid. */
  readonly payTo: string;
  readonly maxTimeoutSeconds: number;
  readonly extra: PaymentExtra;
}

/** The resource a payment is for (x402 v2 `ResourceInfo`). */
export interface PaymentResource {
  readonly url: string;
  readonly description?: string;
  readonly mimeType?: string;
}

/** The body of the `PAYMENT-REQUIRED` header (x402 v2 `PaymentRequired`). */
export interface PaymentRequired {
  readonly x402Version: 2;
  /** Why the request was not served: an error code (`PAYMENT_REQUIRED`, `PAYMENT_UNDERPAID`…). */
  readonly error?: string;
  readonly resource: PaymentResource;
  readonly accepts: readonly PaymentRequirements[];
}

/** The scheme payload of a payment: the authorization, its signature and (`metered`) the salt. */
export interface PaymentAuthorizationPayload {
  /**
   * The payer's signature, `0x` hex: 65-byte ECDSA r ‖ s ‖ v for an account with a key; for a
   * contract wallet (ERC-1271) whatever its `isValidSignature` takes, 1 to
   * {@link MAX_PAYMENT_SIGNATURE} bytes.
   */
  readonly signature: string;
  readonly authorization: TransferAuthorization;
  /** `metered`: the 32-byte salt the nonce is derived from (`0x` hex). */
  readonly salt?: string;
}

/** The body of the `PAYMENT-SIGNATURE` header (x402 v2 `PaymentPayload`). */
export interface PaymentPayload {
  readonly x402Version: 2;
  readonly resource?: PaymentResource;
  /** The requirements the client chose (one of `accepts`). */
  readonly accepted: PaymentRequirements;
  readonly payload: PaymentAuthorizationPayload;
}

/** The body of the `PAYMENT-RESPONSE` header (x402 v2 `SettleResponse`). */
export interface SettleResponse {
  readonly success: boolean;
  readonly errorReason?: string;
  readonly payer?: string;
  /** Transaction hash of the settlement (`0x` hex); empty when none was made. */
  readonly transaction: string;
  readonly network: string;
  /** Atomic units charged (for `metered`, at most the authorized maximum). */
  readonly amount?: string;
}

/**
 * The payment a receipt carries next to a paid record: everything a verifier needs to recompute
 * the record's `payment.digest` and to check who paid whom on which chain and token.
 */
export interface ReceiptPayment {
  readonly scheme: PaymentScheme;
  readonly network: string;
  readonly asset: string;
  /** The token's EIP-712 domain name and version. */
  readonly name: string;
  readonly version: string;
  readonly authorization: TransferAuthorization;
  readonly signature: string;
  /** `metered`: the salt binding the payee into the nonce. */
  readonly salt?: string;
}

/** The record's payment commitment (docs/protocol.md §5): the authorization's EIP-712 digest and the amount charged. */
export interface PaymentCommitment {
  /** Lower-case hex, 64 digits, no `0x`. */
  readonly digest: string;
  /** Atomic units charged, decimal string. */
  readonly amount: string;
}

const UINT = /^(0|[1-9][0-9]{0,77})$/;
const MAX_UINT256 = (1n << 256n) - 1n;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;
/**
 * The longest payer signature accepted, in bytes: a contract wallet's (ERC-1271) may be of any
 * length (a passkey's WebAuthn assertion, several owners' signatures); 4 KiB bounds what a node
 * stores and a receipt carries, and fits a {@link MAX_PAYMENT_HEADER} header.
 */
export const MAX_PAYMENT_SIGNATURE = 4096;
const SIGNATURE = new RegExp(`^0x(?:[0-9a-fA-F]{2}){1,${MAX_PAYMENT_SIGNATURE}}$`);
const NETWORK = /^eip155:([1-9][0-9]{0,15})$/;
const DIGEST = /^[0-9a-f]{64}$/;

type Code = 'PAYMENT_INVALID' | 'RECEIPT_MALFORMED';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** True for a decimal string of a uint256. */
export function isAtomicAmount(v: unknown): v is string {
  return typeof v === 'string' && UINT.test(v) && BigInt(v) <= MAX_UINT256;
}

function amount(v: unknown, field: string, code: Code): string {
  if (!isAtomicAmount(v)) fail(code, `${field} must be a decimal string of a uint256`, { field });
  return v;
}

function address(v: unknown, field: string, code: Code): string {
  try {
    return parseAddress(v as string);
  } catch (cause) {
    throw new VerityError(code, `${field} is not an address`, { cause, details: { field } });
  }
}

function text(v: unknown, field: string, code: Code, max = 256): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) fail(code, `${field} must be a string`, { field });
  return v;
}

/**
 * The chain id of a CAIP-2 `eip155:<chainId>` network id. Throws `PAYMENT_INVALID`.
 *
 * @example
 * ```ts
 * chainIdOfNetwork('eip155:31337') // 31337
 * ```
 */
export function chainIdOfNetwork(network: string): number {
  const m = typeof network === 'string' ? NETWORK.exec(network) : null;
  const id = m ? Number(m[1]) : Number.NaN;
  if (!Number.isSafeInteger(id)) fail('PAYMENT_INVALID', 'network must be eip155:<chainId>', { network });
  return id;
}

/** Validates an untrusted EIP-3009 authorization (x402's form). */
export function parseAuthorization(
  v: unknown,
  at = 'authorization',
  code: Code = 'PAYMENT_INVALID',
): TransferAuthorization {
  if (!isObject(v)) fail(code, `${at} must be an object`, { field: at });
  if (typeof v.nonce !== 'string' || !BYTES32.test(v.nonce)) fail(code, `${at}.nonce must be 32 bytes of 0x hex`);
  return {
    from: address(v.from, `${at}.from`, code),
    to: address(v.to, `${at}.to`, code),
    value: amount(v.value, `${at}.value`, code),
    validAfter: amount(v.validAfter, `${at}.validAfter`, code),
    validBefore: amount(v.validBefore, `${at}.validBefore`, code),
    nonce: v.nonce.toLowerCase(),
  };
}

const u256 = (v: bigint | string | number): Uint8Array => fromHex(BigInt(v).toString(16).padStart(64, '0'));
const word = (addr: string): Uint8Array => concatBytes(new Uint8Array(12), fromHex(addr.slice(2)));

const DOMAIN_TYPEHASH = keccak256(
  utf8('EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)'),
);
const AUTH_FIELDS = '(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)';
const TYPEHASH = {
  transfer: keccak256(utf8(`TransferWithAuthorization${AUTH_FIELDS}`)),
  receive: keccak256(utf8(`ReceiveWithAuthorization${AUTH_FIELDS}`)),
};

/** Which EIP-3009 call an authorization is for: `transfer` (x402 exact) or `receive` (metered). */
export type AuthorizationKind = keyof typeof TYPEHASH;

/** The authorization kind of a scheme: `exact` → `transfer`, `metered` → `receive`. */
export function authorizationKind(scheme: PaymentScheme): AuthorizationKind {
  return scheme === 'metered' ? 'receive' : 'transfer';
}

/**
 * The EIP-712 digest an EIP-3009 authorization is signed over (`hashTypedData` with primary type
 * `TransferWithAuthorization` or `ReceiveWithAuthorization`, EIP-3009 "Specification").
 *
 * @example
 * ```ts
 * const digest = authorizationDigest({ name: 'Verity Test USD', version: '1', chainId: 31337, verifyingContract: token }, auth, 'transfer');
 * ```
 */
export function authorizationDigest(
  domain: TokenDomain,
  authorization: TransferAuthorization,
  kind: AuthorizationKind,
): Uint8Array {
  const a = parseAuthorization(authorization, 'authorization', 'PAYMENT_INVALID');
  const separator = keccak256(
    concatBytes(
      DOMAIN_TYPEHASH,
      keccak256(utf8(domain.name)),
      keccak256(utf8(domain.version)),
      u256(domain.chainId),
      word(parseAddress(domain.verifyingContract)),
    ),
  );
  const struct = keccak256(
    concatBytes(
      TYPEHASH[kind],
      word(a.from),
      word(a.to),
      u256(a.value),
      u256(a.validAfter),
      u256(a.validBefore),
      fromHex(a.nonce.slice(2)),
    ),
  );
  return keccak256(concatBytes(Uint8Array.of(0x19, 0x01), separator, struct));
}

/**
 * The metered scheme's nonce: `keccak256(abi.encode(payee, salt))`, so that only `payee` can
 * settle the authorization through MeteredSettlement. Returns `0x` hex.
 *
 * @example
 * ```ts
 * meteredNonce(nodeAddress, salt) === payload.authorization.nonce
 * ```
 */
export function meteredNonce(payee: string, salt: string): string {
  if (typeof salt !== 'string' || !BYTES32.test(salt)) fail('PAYMENT_INVALID', 'salt must be 32 bytes of 0x hex');
  return `0x${toHex(keccak256(concatBytes(word(parseAddress(payee)), fromHex(salt.slice(2)))))}`;
}

/**
 * Who signed an authorization: the address recovered from `signature` over its EIP-712 digest.
 * Throws `PAYMENT_SIGNATURE_INVALID` for a malformed signature (a well-formed one by another key
 * recovers another address: compare with `authorization.from`).
 */
export function authorizationSigner(digest: Uint8Array, signature: string): string {
  try {
    return recoverSigner(digest, signature);
  } catch (cause) {
    throw new VerityError('PAYMENT_SIGNATURE_INVALID', 'the payment signature is malformed', { cause });
  }
}

/**
 * Encodes an x402 header value: base64 (RFC 4648 §4) of the UTF-8 JSON, as `@x402/core`'s
 * `encodePaymentSignatureHeader` and its siblings do.
 *
 * @example
 * ```ts
 * headers.set(PAYMENT_HEADERS.signature, encodePaymentHeader(payload));
 * ```
 */
export function encodePaymentHeader(value: PaymentRequired | PaymentPayload | SettleResponse): string {
  return toBase64(utf8(JSON.stringify(value)));
}

/** Most bytes of a payment header value this module decodes (a hostile header costs bounded work). */
export const MAX_PAYMENT_HEADER = 16 * 1024;

/**
 * Decodes an x402 header value to its JSON. Throws `PAYMENT_INVALID` for anything that is not
 * base64 of a JSON object.
 */
export function decodePaymentHeader(header: string): Record<string, unknown> {
  if (typeof header !== 'string' || header.length === 0 || header.length > MAX_PAYMENT_HEADER) {
    fail('PAYMENT_INVALID', 'a payment header is base64 of at most 16 KiB');
  }
  let value: unknown;
  try {
    value = JSON.parse(fromUtf8(fromBase64(header.trim())));
  } catch (cause) {
    throw new VerityError('PAYMENT_INVALID', 'the payment header is not base64 of a JSON object', { cause });
  }
  if (!isObject(value)) fail('PAYMENT_INVALID', 'the payment header is not base64 of a JSON object');
  return value;
}

function parseExtra(v: unknown, at: string, scheme: PaymentScheme): PaymentExtra {
  if (!isObject(v)) fail('PAYMENT_INVALID', `${at} must be an object`, { field: at });
  const base = {
    name: text(v.name, `${at}.name`, 'PAYMENT_INVALID'),
    version: text(v.version, `${at}.version`, 'PAYMENT_INVALID'),
  };
  if (scheme !== 'metered') return base;
  return {
    ...base,
    settlement: address(v.settlement, `${at}.settlement`, 'PAYMENT_INVALID'),
    pricePerInputToken: amount(v.pricePerInputToken, `${at}.pricePerInputToken`, 'PAYMENT_INVALID'),
    pricePerOutputToken: amount(v.pricePerOutputToken, `${at}.pricePerOutputToken`, 'PAYMENT_INVALID'),
  };
}

/** Validates untrusted x402 v2 `PaymentRequirements` with a scheme this module knows. Throws `PAYMENT_INVALID`. */
export function parsePaymentRequirements(v: unknown, at = 'accepted'): PaymentRequirements {
  if (!isObject(v)) fail('PAYMENT_INVALID', `${at} must be an object`, { field: at });
  if (!PAYMENT_SCHEMES.includes(v.scheme as PaymentScheme)) {
    fail('PAYMENT_INVALID', `${at}.scheme must be one of ${PAYMENT_SCHEMES.join(', ')}`, { field: `${at}.scheme` });
  }
  const scheme = v.scheme as PaymentScheme;
  const network = text(v.network, `${at}.network`, 'PAYMENT_INVALID', 32);
  chainIdOfNetwork(network);
  const t = v.maxTimeoutSeconds;
  if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 1) {
    fail('PAYMENT_INVALID', `${at}.maxTimeoutSeconds must be a positive integer`, { field: `${at}.maxTimeoutSeconds` });
  }
  return {
    scheme,
    network,
    asset: address(v.asset, `${at}.asset`, 'PAYMENT_INVALID'),
    amount: amount(v.amount, `${at}.amount`, 'PAYMENT_INVALID'),
    payTo: address(v.payTo, `${at}.payTo`, 'PAYMENT_INVALID'),
    maxTimeoutSeconds: t,
    extra: parseExtra(v.extra, `${at}.extra`, scheme),
  };
}

function parseResource(v: unknown): PaymentResource | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v) || typeof v.url !== 'string') fail('PAYMENT_INVALID', 'resource must be { url }');
  return {
    url: v.url,
    ...(typeof v.description === 'string' ? { description: v.description } : {}),
    ...(typeof v.mimeType === 'string' ? { mimeType: v.mimeType } : {}),
  };
}

/**
 * Validates an untrusted x402 v2 `PaymentPayload` (the decoded `PAYMENT-SIGNATURE`): version 2, a
 * known scheme, an EIP-3009 authorization with a signature (1 to {@link MAX_PAYMENT_SIGNATURE}
 * bytes: 65 for an account with a key, any for a contract wallet), and (`metered`) a salt.
 * Unknown members (x402 `extensions`) are ignored. Throws `PAYMENT_INVALID`.
 *
 * @example
 * ```ts
 * const payment = parsePaymentPayload(decodePaymentHeader(request.headers.get('payment-signature')));
 * ```
 */
export function parsePaymentPayload(v: unknown): PaymentPayload {
  if (!isObject(v)) fail('PAYMENT_INVALID', 'payment payload must be an object');
  if (v.x402Version !== X402_VERSION) fail('PAYMENT_INVALID', 'x402Version must be 2', { x402Version: v.x402Version });
  const accepted = parsePaymentRequirements(v.accepted);
  const p = v.payload;
  if (!isObject(p)) fail('PAYMENT_INVALID', 'payload must be an object', { field: 'payload' });
  if (typeof p.signature !== 'string' || !SIGNATURE.test(p.signature)) {
    fail('PAYMENT_INVALID', `payload.signature must be 1 to ${MAX_PAYMENT_SIGNATURE} bytes of 0x hex`, {
      field: 'payload.signature',
    });
  }
  const authorization = parseAuthorization(p.authorization, 'payload.authorization');
  let salt: string | undefined;
  if (accepted.scheme === 'metered') {
    if (typeof p.salt !== 'string' || !BYTES32.test(p.salt)) {
      fail('PAYMENT_INVALID', 'payload.salt must be 32 bytes of 0x hex (scheme metered)', { field: 'payload.salt' });
    }
    salt = p.salt.toLowerCase();
  }
  const resource = parseResource(v.resource);
  return {
    x402Version: X402_VERSION,
    ...(resource === undefined ? {} : { resource }),
    accepted,
    payload: {
      signature: p.signature.toLowerCase(),
      authorization,
      ...(salt === undefined ? {} : { salt }),
    },
  };
}

/** Validates an untrusted x402 v2 `PaymentRequired` (the decoded `PAYMENT-REQUIRED`); requirements of unknown schemes are dropped. */
export function parsePaymentRequired(v: unknown): PaymentRequired {
  if (!isObject(v)) fail('PAYMENT_INVALID', 'payment required must be an object');
  if (v.x402Version !== X402_VERSION) fail('PAYMENT_INVALID', 'x402Version must be 2', { x402Version: v.x402Version });
  if (!Array.isArray(v.accepts) || v.accepts.length > 16) fail('PAYMENT_INVALID', 'accepts must be an array');
  const accepts = v.accepts
    .filter((a) => isObject(a) && PAYMENT_SCHEMES.includes(a.scheme as PaymentScheme))
    .map((a, i) => parsePaymentRequirements(a, `accepts[${i}]`));
  const resource = parseResource(v.resource) ?? { url: '' };
  return {
    x402Version: X402_VERSION,
    ...(typeof v.error === 'string' ? { error: v.error } : {}),
    resource,
    accepts,
  };
}

/** Validates an untrusted x402 v2 `SettleResponse` (the decoded `PAYMENT-RESPONSE`). */
export function parseSettleResponse(v: unknown): SettleResponse {
  if (!isObject(v) || typeof v.success !== 'boolean') fail('PAYMENT_INVALID', 'settle response must be { success }');
  if (typeof v.transaction !== 'string' || typeof v.network !== 'string') {
    fail('PAYMENT_INVALID', 'settle response needs transaction and network');
  }
  return {
    success: v.success,
    ...(typeof v.errorReason === 'string' ? { errorReason: v.errorReason } : {}),
    ...(typeof v.payer === 'string' ? { payer: v.payer } : {}),
    transaction: v.transaction,
    network: v.network,
    ...(isAtomicAmount(v.amount) ? { amount: v.amount } : {}),
  };
}

/** The token domain a payment was signed under. */
export function paymentDomain(p: { network: string; asset: string; name: string; version: string }): TokenDomain {
  return { name: p.name, version: p.version, chainId: chainIdOfNetwork(p.network), verifyingContract: p.asset };
}

/** The {@link ReceiptPayment} of a verified payment payload: what the node puts in the receipt. */
export function receiptPaymentOf(payment: PaymentPayload): ReceiptPayment {
  const { accepted, payload } = payment;
  return {
    scheme: accepted.scheme,
    network: accepted.network,
    asset: accepted.asset,
    name: accepted.extra.name,
    version: accepted.extra.version,
    authorization: payload.authorization,
    signature: payload.signature,
    ...(payload.salt === undefined ? {} : { salt: payload.salt }),
  };
}

/** The record digest of a payment: its authorization's EIP-712 digest, lower-case hex. */
export function paymentDigest(payment: ReceiptPayment): string {
  return toHex(authorizationDigest(paymentDomain(payment), payment.authorization, authorizationKind(payment.scheme)));
}

/** Validates the `payment` member of an untrusted receipt. Throws `RECEIPT_MALFORMED`. */
export function parseReceiptPayment(v: unknown, at = 'receipt.payment'): ReceiptPayment {
  const code = 'RECEIPT_MALFORMED';
  if (!isObject(v)) fail(code, `${at} must be an object`, { field: at });
  for (const k of Object.keys(v)) {
    if (!['scheme', 'network', 'asset', 'name', 'version', 'authorization', 'signature', 'salt'].includes(k)) {
      fail(code, `${at}: unknown field "${k}"`, { field: `${at}.${k}` });
    }
  }
  if (!PAYMENT_SCHEMES.includes(v.scheme as PaymentScheme))
    fail(code, `${at}.scheme is unknown`, { field: `${at}.scheme` });
  const scheme = v.scheme as PaymentScheme;
  if (typeof v.network !== 'string' || !NETWORK.test(v.network)) fail(code, `${at}.network must be eip155:<chainId>`);
  if (typeof v.signature !== 'string' || !SIGNATURE.test(v.signature))
    fail(code, `${at}.signature must be 1 to ${MAX_PAYMENT_SIGNATURE} bytes of 0x hex`);
  if ((scheme === 'metered') !== (v.salt !== undefined)) fail(code, `${at}.salt is carried by scheme metered only`);
  if (v.salt !== undefined && (typeof v.salt !== 'string' || !BYTES32.test(v.salt)))
    fail(code, `${at}.salt must be 32 bytes of 0x hex`);
  return {
    scheme,
    network: v.network,
    asset: address(v.asset, `${at}.asset`, code),
    name: text(v.name, `${at}.name`, code),
    version: text(v.version, `${at}.version`, code),
    authorization: parseAuthorization(v.authorization, `${at}.authorization`, code),
    signature: v.signature.toLowerCase(),
    ...(v.salt === undefined ? {} : { salt: (v.salt as string).toLowerCase() }),
  };
}

/** Validates a record's `payment` commitment. Throws `RECORD_INVALID`. */
export function parsePaymentCommitment(v: unknown): PaymentCommitment {
  if (!isObject(v)) fail('RECORD_INVALID', 'record.payment: must be an object', { field: 'payment' });
  for (const k of Object.keys(v)) {
    if (k !== 'digest' && k !== 'amount')
      fail('RECORD_INVALID', `record.payment.${k}: unknown field`, { field: `payment.${k}` });
  }
  if (typeof v.digest !== 'string' || !DIGEST.test(v.digest)) {
    fail('RECORD_INVALID', 'record.payment.digest: must be 64 lower-case hex characters', { field: 'payment.digest' });
  }
  if (!isAtomicAmount(v.amount)) {
    fail('RECORD_INVALID', 'record.payment.amount: must be a decimal string of a uint256', { field: 'payment.amount' });
  }
  return { digest: v.digest, amount: v.amount };
}

/** What a verifier expects of payments, when it cares: the chain and token it accepts. */
export interface PaymentPolicy {
  /** CAIP-2 network id, e.g. `eip155:8453`. */
  readonly network?: string;
  /** The token's address. */
  readonly asset?: string;
  /**
   * Payer signatures the chain vouched for: each payer (a contract wallet) answered ERC-1271's
   * magic value to `isValidSignature(digest, signature)`, as a verifier with the chain found
   * ({@link contractSignatureOf} says what to ask). A receipt whose signature does not recover to
   * its payer passes only when listed here (`PAYMENT_SIGNATURE_NEEDS_CHAIN` otherwise).
   */
  readonly vouched?: readonly ContractSignature[];
}

/** A payer signature only the chain can judge: `from` (a contract wallet?) is asked about `signature` over `digest`. */
export interface ContractSignature {
  /** The payer, checksum-free lower-case `0x` address as receipts carry it. */
  readonly from: string;
  /** The authorization's EIP-712 digest, `0x` and 64 lower-case hex digits. */
  readonly digest: string;
  /** The signature, lower-case `0x` hex. */
  readonly signature: string;
}

/** The address `signature` recovers to over `digest`, or undefined when it is no ECDSA signature. */
function ecdsaSigner(digest: Uint8Array, signature: string): string | undefined {
  try {
    return authorizationSigner(digest, signature);
  } catch {
    return undefined; // not 65 bytes, or no point: a contract wallet's signature, or garbage
  }
}

/**
 * What to ask the chain about a receipt's payment (docs/protocol.md §17.4), or undefined when
 * ECDSA decides it (the signature recovers to `authorization.from`). Otherwise only the payer's
 * code can say: a contract wallet (ERC-1271) vouches for its own signatures with
 * `isValidSignature(digest, signature)`; an account without code, or a wallet that does not
 * answer the magic value, never signed it (`PAYMENT_SIGNATURE_INVALID`).
 *
 * @example
 * ```ts
 * const ask = contractSignatureOf(receipt.payment);
 * if (ask && (await erc1271Valid(publicClient, ask.from, ask.digest, ask.signature))) vouched.push(ask);
 * ```
 */
export function contractSignatureOf(payment: ReceiptPayment): ContractSignature | undefined {
  const digest = authorizationDigest(paymentDomain(payment), payment.authorization, authorizationKind(payment.scheme));
  const from = payment.authorization.from.toLowerCase();
  if (ecdsaSigner(digest, payment.signature)?.toLowerCase() === from) return undefined;
  return { from, digest: `0x${toHex(digest)}`, signature: payment.signature.toLowerCase() };
}

/**
 * Checks a receipt's payment against its record (docs/protocol.md §9.2 step 4a): the carried
 * authorization hashes to the record's `payment.digest` under the carried token domain, its
 * payee is the record's node (`exact`: `to` is the node; `metered`: the nonce is
 * `meteredNonce(node, salt)`), the amount charged is at most the authorized value, (under
 * `policy`) the chain and token are the expected ones, and last the signature recovers to its
 * `from` or is one the chain vouched for (`policy.vouched`, a contract wallet's: ERC-1271).
 * Throws `RECEIPT_PAYMENT_MISMATCH`, `PAYMENT_WRONG_NETWORK` or `PAYMENT_SIGNATURE_NEEDS_CHAIN`
 * (the signature does not recover to the payer: a wallet's or a forgery, offline one cannot tell).
 *
 * @example
 * ```ts
 * checkRecordPayment(receipt.record, receipt.payment, { network: 'eip155:31337' });
 * ```
 */
export function checkRecordPayment(
  record: { readonly node: string; readonly payment?: PaymentCommitment },
  payment: ReceiptPayment | undefined,
  policy: PaymentPolicy = {},
): void {
  const commitment = record.payment;
  if (commitment === undefined && payment === undefined) return;
  const mismatch = (message: string, details: Record<string, unknown> = {}): never =>
    fail('RECEIPT_PAYMENT_MISMATCH', message, details);
  if (commitment === undefined) throw mismatch('the receipt carries a payment that its record does not commit to');
  if (payment === undefined) throw mismatch('the record commits to a payment that the receipt does not carry');
  const digest = authorizationDigest(paymentDomain(payment), payment.authorization, authorizationKind(payment.scheme));
  if (toHex(digest) !== commitment.digest) {
    mismatch('the carried authorization does not hash to the record payment digest', {
      expected: commitment.digest,
      actual: toHex(digest),
    });
  }
  const { authorization: a } = payment;
  if (payment.scheme === 'exact' && a.to !== record.node) {
    mismatch('the authorization pays another account than the node', { to: a.to, node: record.node });
  }
  if (payment.scheme === 'metered' && meteredNonce(record.node, payment.salt as string) !== a.nonce) {
    mismatch('the metered authorization is not bound to the node (nonce ≠ keccak256(node, salt))');
  }
  if (BigInt(commitment.amount) > BigInt(a.value)) {
    mismatch('the record charges more than the authorization allows', { amount: commitment.amount, value: a.value });
  }
  if (policy.network !== undefined && policy.network !== payment.network) {
    fail('PAYMENT_WRONG_NETWORK', 'the payment is on another chain than expected', {
      expected: policy.network,
      actual: payment.network,
    });
  }
  if (policy.asset !== undefined && parseAddress(policy.asset) !== payment.asset) {
    fail('PAYMENT_WRONG_NETWORK', 'the payment is in another token than expected', {
      expected: policy.asset,
      actual: payment.asset,
    });
  }
  // Last: everything decidable offline was decided. A signature that does not recover to the
  // payer is a contract wallet's (ERC-1271) or a forgery; only the payer's code on the chain can say.
  const from = a.from.toLowerCase();
  if (ecdsaSigner(digest, payment.signature)?.toLowerCase() !== from) {
    const signature = payment.signature.toLowerCase();
    const hex = `0x${toHex(digest)}`;
    const vouched = policy.vouched?.some(
      (v) => v.from.toLowerCase() === from && v.digest.toLowerCase() === hex && v.signature.toLowerCase() === signature,
    );
    if (vouched !== true) {
      fail(
        'PAYMENT_SIGNATURE_NEEDS_CHAIN',
        "the payment signature does not recover to its payer: only the payer's contract (ERC-1271) on the chain can vouch for it",
        { from: a.from, digest: hex },
      );
    }
  }
}

/** A receipt as a quorum's charge limit reads it: its node, its commitment and its payment. */
export interface PaidReceipt {
  readonly record: { readonly node: string; readonly payment?: PaymentCommitment };
  readonly payment?: ReceiptPayment;
}

/**
 * What a quorum's coordinator may charge its caller (docs/protocol.md §17.5). `members`: what the
 * member receipts it paid (payer = the coordinator's node, same chain and token) charged, in all.
 * `limit`: the value the caller authorized less what those members left unspent of what the
 * coordinator authorized them — so the caller gets back every unit those members did not use. It
 * does not bound the coordinator's own share by its own maximum: the quote is not committed, so a
 * quoted member left out of the receipts is not accounted for (§17.5). Undefined when
 * `coordinator` carries no payment.
 *
 * @example
 * ```ts
 * const { limit, members } = quorumCharges(coordinatorReceipt, memberReceipts) ?? {};
 * ```
 */
export function quorumCharges(
  coordinator: PaidReceipt,
  members: readonly PaidReceipt[],
): { readonly limit: bigint; readonly members: bigint } | undefined {
  const own = coordinator.payment;
  if (own === undefined) return undefined;
  const node = coordinator.record.node.toLowerCase();
  let limit = BigInt(own.authorization.value);
  let charged = 0n;
  for (const m of members) {
    const p = m.payment;
    const amount = m.record.payment?.amount;
    if (p === undefined || amount === undefined || p.authorization.from.toLowerCase() !== node) continue;
    if (p.network !== own.network || p.asset.toLowerCase() !== own.asset.toLowerCase()) continue;
    limit -= BigInt(p.authorization.value) - BigInt(amount);
    charged += BigInt(amount);
  }
  return { limit, members: charged };
}
