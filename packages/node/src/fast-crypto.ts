/**
 * Node fast paths for the protocol's signing (docs/design.md §4 keeps `node:crypto` out of the portable
 * core): an Ed25519 note signer on `node:crypto`, several times faster than the pure-JS one and
 * byte-identical to it (Ed25519 signatures are deterministic, RFC 8032 §5.1.6); verifiers on it.
 * A leaf module with its own entry (`@verity/node/fast-crypto`): a process that only verifies
 * (`verity gateway`) loads it without the node.
 */
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import {
  type Ed25519Platform,
  fromBase64,
  type NoteSigner,
  type NoteVerifier,
  parseSignerKey,
  parseVerifierKey,
  verifierPublicKey,
} from '@verity/protocol';

// SPKI wrapping of a raw Ed25519 public key (RFC 8410 §4): a fixed 12-byte prefix, then the key.
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The raw 32-byte Ed25519 public key of a C2SP verifier key (`name+keyid+base64(0x01 ‖ key)`),
 * validated by the protocol's parser first (the form the chain registry stores).
 *
 * @example
 * ```ts
 * verifierKeyBytes('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW').length; // 32
 * ```
 */
export function verifierKeyBytes(verifierKey: string): Uint8Array {
  return verifierPublicKey(verifierKey);
}

/**
 * A note verifier for a C2SP verifier key (`name+keyid+base64(0x01 ‖ key)`) on `node:crypto`
 * (about 15× faster than the portable one, same answers: strict RFC 8032 verification).
 *
 * @example
 * ```ts
 * verifyReceipt(receipt, { nodes: [{ address, logKey, verifier: createFastVerifier(logKey) }] });
 * ```
 */
export function createFastVerifier(verifierKey: string): NoteVerifier {
  const reference = parseVerifierKey(verifierKey);
  const key = publicKeyObject(verifierKeyBytes(verifierKey));
  return {
    name: reference.name,
    keyId: reference.keyId,
    verify: (message, signature) => signature.length === 64 && verify(null, message, key, signature),
  };
}

/** A raw 32-byte Ed25519 public key as a `node:crypto` key object. */
function publicKeyObject(raw: Uint8Array) {
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/**
 * Ed25519 on `node:crypto` (OpenSSL, synchronous) as the protocol's platform verifier: the same
 * library as Node's WebCrypto, without its job on the thread pool and its promise per check
 * (bench/gateway.ts). `primeVerifyCache` wraps it with the protocol's strict-RFC 8032 guards.
 *
 * @example
 * ```ts
 * const cache = createVerifyCache(1024, { ed25519: nodeEd25519 });
 * ```
 */
export const nodeEd25519: Ed25519Platform = async (publicKey) => {
  const key = publicKeyObject(publicKey);
  return (message, signature) => signature.length === 64 && verify(null, message, key, signature);
};

// PKCS #8 wrapping of a raw Ed25519 seed (RFC 8410 §7): a fixed 16-byte prefix, then the seed.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/**
 * A note signer for a C2SP signer key (`PRIVATE+KEY+name+keyid+base64(0x01 ‖ seed)`), on
 * `node:crypto`. Validates the key with the protocol's parser first.
 *
 * @example
 * ```ts
 * const signer = createFastSigner(keys.logSignerKey);
 * const note = signCheckpoint(checkpoint, signer);
 * ```
 */
export function createFastSigner(signerKey: string): NoteSigner {
  const reference = parseSignerKey(signerKey);
  // PRIVATE+KEY+<name>+<keyid>+<base64>: names hold no '+', key IDs are 8 hex digits, base64 may.
  const rest = signerKey.slice('PRIVATE+KEY+'.length);
  const seed = fromBase64(rest.slice(rest.indexOf('+') + 10)).subarray(1);
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return {
    name: reference.name,
    keyId: reference.keyId,
    sign: (message) => new Uint8Array(sign(null, message, key)),
  };
}
