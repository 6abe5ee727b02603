/**
 * Ethereum accounts, as far as Verity needs them: publisher and node addresses (EIP-55) and
 * `personal_sign` signatures (EIP-191) that wallets make and that a contract checks with
 * `ecrecover`. secp256k1 and Keccak-256 come from `@noble/curves` and `@noble/hashes`.
 *
 * Strings only ever mean text: a message given as a string is signed as its UTF-8 bytes, even if
 * it looks like hex (web3.js would hex-decode it). Give a `Uint8Array` to sign bytes.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { concatBytes, fromHex, toHex, utf8 } from './bytes.js';
import { fail } from './errors.js';

/** Order of the secp256k1 group. */
const N = secp256k1.Point.Fn.ORDER;
const HALF_N = N >> 1n;

/**
 * Keccak-256 (the original Keccak padding, not SHA3-256), Ethereum's hash.
 *
 * @example
 * ```ts
 * toHex(keccak256(new Uint8Array())); // 'c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470'
 * ```
 */
export function keccak256(data: Uint8Array): Uint8Array {
  return keccak_256(data);
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${toHex(bytes)}`);
}

/** A 32-byte secret key from bytes or hex; anything else is `INVALID_ARGUMENT` (a caller bug). */
function secretKey(privateKey: Uint8Array | string): Uint8Array {
  let key: Uint8Array | undefined;
  if (privateKey instanceof Uint8Array) key = privateKey;
  else if (typeof privateKey === 'string' && /^(0x)?[0-9a-fA-F]{64}$/.test(privateKey)) key = fromHex(privateKey);
  if (key === undefined || key.length !== 32 || !secp256k1.utils.isValidSecretKey(key)) {
    return fail('INVALID_ARGUMENT', 'a private key is 32 bytes (or 64 hex digits) in 1..n-1 of secp256k1');
  }
  return key;
}

/**
 * Recently checksummed addresses. A verifier sees the same few node addresses over and over, and
 * the Keccak-256 behind each checksum is the most expensive step of parsing a record.
 */
const checksumCache = new Map<string, string>();
const CHECKSUM_CACHE_SIZE = 1024;

/**
 * The EIP-55 form of a 20-byte address: hex digit i is upper case when nibble i of
 * Keccak-256(lower-case hex, as ASCII) is 8 or more (EIP-55 "Specification").
 */
function checksum(address: Uint8Array): string {
  const lower = toHex(address);
  const cached = checksumCache.get(lower);
  if (cached !== undefined) return cached;
  const hash = toHex(keccak256(utf8(lower)));
  let out = '0x';
  for (let i = 0; i < 40; i++) {
    const c = lower[i] as string;
    out += Number.parseInt(hash[i] as string, 16) >= 8 ? c.toUpperCase() : c;
  }
  if (checksumCache.size >= CHECKSUM_CACHE_SIZE) checksumCache.delete(checksumCache.keys().next().value as string);
  checksumCache.set(lower, out);
  return out;
}

function addressBytes(text: string): Uint8Array {
  if (typeof text !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(text)) {
    return fail('ENCODING_INVALID', 'an address is 0x followed by 40 hex digits');
  }
  return fromHex(text);
}

/**
 * The EIP-55 checksummed text of an address given as 20 bytes or as `0x` + 40 hex digits in any
 * case. It normalizes and does not check an existing checksum: use {@link parseAddress} for input
 * typed by a person.
 *
 * @example
 * ```ts
 * toChecksumAddress('0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359'); // '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359'
 * ```
 */
export function toChecksumAddress(address: string | Uint8Array): string {
  if (address instanceof Uint8Array) {
    if (address.length !== 20) fail('ENCODING_INVALID', 'an address is 20 bytes');
    return checksum(address);
  }
  return checksum(addressBytes(address));
}

/**
 * Parses address text and returns its EIP-55 form. All-lower-case and all-upper-case hex carry no
 * checksum and are accepted; mixed case must be the exact EIP-55 checksum, so a mistyped address
 * fails (EIP-55 "Rationale"). Anything else throws `ENCODING_INVALID`.
 *
 * @example
 * ```ts
 * parseAddress('0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed'); // '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'
 * parseAddress('0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'); // throws: bad checksum
 * ```
 */
export function parseAddress(text: string): string {
  const bytes = addressBytes(text);
  const canonical = checksum(bytes);
  const digits = text.slice(2);
  const mixed = digits !== digits.toLowerCase() && digits !== digits.toUpperCase();
  if (mixed && text !== canonical) {
    fail('ENCODING_INVALID', 'address checksum (EIP-55) does not match', { expected: canonical });
  }
  return canonical;
}

/**
 * True when `value` is address text that {@link parseAddress} accepts.
 *
 * @example
 * ```ts
 * isAddress('0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb'); // true
 * ```
 */
export function isAddress(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    parseAddress(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The address of a public key: the last 20 bytes of Keccak-256 of the uncompressed point (x ‖ y,
 * without the 0x04 prefix), EIP-55 checksummed. Accepts SEC 1 compressed (33 bytes) or
 * uncompressed (65 bytes) points, or the bare 64-byte x ‖ y, as bytes or hex.
 *
 * @example
 * ```ts
 * addressFromPublicKey(secp256k1.getPublicKey(key)); // same as addressFromPrivateKey(key)
 * ```
 */
export function addressFromPublicKey(publicKey: Uint8Array | string): string {
  let bytes: Uint8Array;
  try {
    bytes = publicKey instanceof Uint8Array ? publicKey : fromHex(publicKey);
    if (bytes.length === 64) bytes = concatBytes(Uint8Array.of(4), bytes);
    bytes = secp256k1.Point.fromBytes(bytes).toBytes(false);
  } catch (cause) {
    return fail('ENCODING_INVALID', 'not a secp256k1 public key', { cause: String(cause) });
  }
  return checksum(keccak256(bytes.subarray(1)).subarray(12));
}

/**
 * The address that a private key (32 bytes, or 64 hex digits with or without `0x`) controls.
 *
 * @example
 * ```ts
 * addressFromPrivateKey('0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318');
 * // '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23'
 * ```
 */
export function addressFromPrivateKey(privateKey: Uint8Array | string): string {
  return addressFromPublicKey(secp256k1.getPublicKey(secretKey(privateKey), false));
}

function messageBytes(message: Uint8Array | string): Uint8Array {
  if (message instanceof Uint8Array) return message;
  if (typeof message === 'string') return utf8(message);
  return fail('INVALID_ARGUMENT', 'a message is a string or a Uint8Array');
}

/**
 * The EIP-191 version 0x45 hash that `personal_sign` signs:
 * `keccak256("\x19Ethereum Signed Message:\n" ‖ decimal byte length ‖ message)`.
 *
 * @example
 * ```ts
 * toHex(personalMessageHash('Some data'));
 * // '1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655'
 * ```
 */
export function personalMessageHash(message: Uint8Array | string): Uint8Array {
  const body = messageBytes(message);
  return keccak256(concatBytes(utf8(`\x19Ethereum Signed Message:\n${body.length}`), body));
}

/**
 * Signs `message` the way `personal_sign` / `eth_sign` wallets do (EIP-191): deterministic ECDSA
 * (RFC 6979) over {@link personalMessageHash}, low-s (EIP-2). Returns 65 bytes as `0x` hex:
 * r (32) ‖ s (32) ‖ v, with v = 27 + recovery id, the layout `ecrecover` and wallets use.
 *
 * @example
 * ```ts
 * personalSign('Some data', '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318');
 * // '0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c'
 * ```
 */
export function personalSign(message: Uint8Array | string, privateKey: Uint8Array | string): string {
  const hash = personalMessageHash(message);
  // noble's "recovered" format is recovery id ‖ r ‖ s.
  const sig = secp256k1.sign(hash, secretKey(privateKey), { prehash: false, lowS: true, format: 'recovered' });
  return `0x${toHex(sig.subarray(1))}${toHex(Uint8Array.of(27 + (sig[0] as number)))}`;
}

/**
 * The EIP-55 address whose key made `signature` over `message` with {@link personalSign}.
 *
 * Only the one canonical encoding of a signature is accepted, so that a signature cannot be
 * altered into another valid one (malleability): exactly 65 bytes (bytes or `0x` + 130 hex), v is
 * 27 or 28, r and s in 1..n−1, and s ≤ n/2 (EIP-2). Anything else, or a signature from which no
 * key can be recovered, throws `ENCODING_INVALID`. A well-formed signature by another key or over
 * another message recovers to a different address: compare the result with the expected signer.
 *
 * @example
 * ```ts
 * recoverPersonalSigner('Some data', signature) === expectedAddress;
 * ```
 */
export function recoverPersonalSigner(message: Uint8Array | string, signature: Uint8Array | string): string {
  return recoverSigner(personalMessageHash(message), signature);
}

/**
 * The EIP-55 address whose key signed the 32-byte `hash` (an EIP-191 message hash, an EIP-712
 * typed-data digest): `ecrecover` with the same strictness as {@link recoverPersonalSigner}
 * (65 bytes r ‖ s ‖ v, v 27 or 28, low s). Throws `ENCODING_INVALID` for a malformed signature.
 *
 * @example
 * ```ts
 * recoverSigner(authorizationDigest(domain, authorization, 'transfer'), signature) === authorization.from;
 * ```
 */
export function recoverSigner(hash: Uint8Array, signature: Uint8Array | string): string {
  if (!(hash instanceof Uint8Array) || hash.length !== 32) fail('INVALID_ARGUMENT', 'the signed hash is 32 bytes');
  let bytes: Uint8Array | undefined;
  if (signature instanceof Uint8Array) bytes = signature;
  else if (typeof signature === 'string' && /^0x[0-9a-fA-F]{130}$/.test(signature)) bytes = fromHex(signature);
  if (bytes === undefined || bytes.length !== 65) {
    return fail('ENCODING_INVALID', 'a signature is 65 bytes: 0x followed by 130 hex digits');
  }
  const r = bytesToBigInt(bytes.subarray(0, 32));
  const s = bytesToBigInt(bytes.subarray(32, 64));
  const v = bytes[64] as number;
  if (v !== 27 && v !== 28) fail('ENCODING_INVALID', 'signature v must be 27 or 28', { v });
  if (r <= 0n || r >= N || s <= 0n || s >= N) fail('ENCODING_INVALID', 'signature r or s out of range');
  if (s > HALF_N) fail('ENCODING_INVALID', 'signature s is in the upper half of the order (EIP-2 forbids it)');
  let publicKey: Uint8Array;
  try {
    publicKey = new secp256k1.Signature(r, s, v - 27).recoverPublicKey(hash).toBytes(false);
  } catch (cause) {
    // r is not the x coordinate of any curve point for this recovery id.
    return fail('ENCODING_INVALID', 'no public key recovers from this signature', { cause: String(cause) });
  }
  return addressFromPublicKey(publicKey);
}
