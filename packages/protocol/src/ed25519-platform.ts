/**
 * Ed25519 verification by the platform: WebCrypto's `crypto.subtle` (Node 20+, current browsers),
 * native code about 5–10× faster than the portable `@noble/curves` verifier that
 * `createEd25519Verifier` uses. WebCrypto is asynchronous, so it cannot sit behind the
 * synchronous `NoteVerifier`: it is used ahead of verification, to fill a `VerifyCache`
 * (`primeVerifyCache` in `verify.ts`), and the portable verifier stays the
 * fallback where the platform lacks Ed25519 and the reference the tests compare against.
 *
 * It must never accept what the portable verifier refuses (strict RFC 8032 §5.1.7 with noble's
 * extra refusal of small-order keys), or two verifiers of one receipt could disagree. WebCrypto
 * implementations (OpenSSL in Node, BoringSSL in Chromium) check the cofactorless equation
 * [S]B = R + [k]A by re-encoding R' = [S]B − [k]A and comparing bytes with R, so a non-canonical
 * R never passes, and every signature they accept satisfies the cofactored equation noble checks.
 * What is left is checked here before the platform is asked: the public key is decoded strictly
 * and must not be of small order (once per key, with noble), and S < L (RFC 8032 §5.1.7 step 1;
 * not every implementation checks it). A refusal here only means "not confirmed": the caller
 * then verifies with the portable code, whose answer is final.
 */
import { ed25519 } from '@noble/curves/ed25519.js';

/** Checks one signature asynchronously; resolves `true` only for a valid one. */
export type AsyncSignatureCheck = (message: Uint8Array, signature: Uint8Array) => Promise<boolean>;

// The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian.
const L = Uint8Array.from([
  0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0x10,
]);

/** S (the signature's second half, little-endian) is below L. */
function scalarIsCanonical(signature: Uint8Array): boolean {
  for (let i = 31; i >= 0; i--) {
    const s = signature[32 + i] as number;
    const l = L[i] as number;
    if (s !== l) return s < l;
  }
  return false; // S = L
}

/** The key the portable verifier would use at all: strictly decoded, not of small order. */
function keyIsUsable(publicKey: Uint8Array): boolean {
  try {
    return publicKey.length === 32 && !ed25519.Point.fromBytes(publicKey, false).isSmallOrder();
  } catch {
    return false;
  }
}

const refuseAll: AsyncSignatureCheck = async () => false;

/**
 * A platform's own Ed25519 verification for one raw public key: a check of one signature, or
 * `undefined` where the platform has none. It needs none of the guards above: the check that
 * {@link createPlatformEd25519Check} makes of it adds them. Any backend given must compute the
 * cofactorless equation with R compared as bytes, as OpenSSL and BoringSSL do (see above).
 */
export type Ed25519Platform = (
  publicKey: Uint8Array,
) => Promise<((message: Uint8Array, signature: Uint8Array) => boolean | Promise<boolean>) | undefined>;

/**
 * WebCrypto's Ed25519 (`crypto.subtle`, asynchronous), the default platform: present in Node 20+
 * and current browsers. Node's own synchronous `node:crypto` costs less per check (no job on the
 * thread pool): a Node process may give that instead (`@verity/node/fast-crypto`).
 *
 * @example
 * ```ts
 * const check = await createPlatformEd25519Check(publicKey, webCryptoEd25519);
 * ```
 */
export const webCryptoEd25519: Ed25519Platform = async (publicKey) => {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (subtle === undefined) return undefined;
  let key: CryptoKey;
  try {
    key = await subtle.importKey('raw', publicKey as Uint8Array<ArrayBuffer>, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    return undefined; // no Ed25519 in this WebCrypto
  }
  return (message, signature) =>
    subtle
      .verify('Ed25519', key, signature as Uint8Array<ArrayBuffer>, message as Uint8Array<ArrayBuffer>)
      .catch(() => false);
};

/**
 * An Ed25519 signature check by the platform for `publicKey` (WebCrypto unless `platform` names
 * another), or `undefined` where the platform has no Ed25519 (then use `createEd25519Verifier`).
 * A key the portable verifier could never accept gives a check that refuses everything.
 *
 * @example
 * ```ts
 * const check = await createPlatformEd25519Check(verifierPublicKey(logKey));
 * if (check && (await check(message, signature))) console.log('valid');
 * ```
 */
export async function createPlatformEd25519Check(
  publicKey: Uint8Array,
  platform: Ed25519Platform = webCryptoEd25519,
): Promise<AsyncSignatureCheck | undefined> {
  // A key the portable verifier refuses is never handed to the platform (which might accept it).
  if (!keyIsUsable(publicKey)) return refuseAll;
  const check = await platform(publicKey).catch(() => undefined);
  if (check === undefined) return undefined;
  return async (message, signature) => {
    if (signature.length !== 64 || !scalarIsCanonical(signature)) return false;
    try {
      return (await check(message, signature)) === true;
    } catch {
      return false;
    }
  };
}
