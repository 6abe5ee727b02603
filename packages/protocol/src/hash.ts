/**
 * SHA-256, synchronous and portable (`@noble/hashes`). For small inputs (Merkle nodes, records) a
 * synchronous hash is far faster than `crypto.subtle.digest`, which costs a promise per call.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

/**
 * SHA-256 of `data`.
 *
 * @example
 * ```ts
 * toHex(sha256(new Uint8Array())) // 'e3b0c442…b855'
 * ```
 */
export function sha256(data: Uint8Array): Uint8Array {
  return nobleSha256(data);
}

/** An incremental SHA-256, for streamed inputs. */
export interface Sha256Stream {
  update(data: Uint8Array): Sha256Stream;
  digest(): Uint8Array;
}

/**
 * Starts an incremental SHA-256.
 *
 * @example
 * ```ts
 * const h = createSha256(); for await (const c of chunks) h.update(c); const digest = h.digest();
 * ```
 */
export function createSha256(): Sha256Stream {
  return nobleSha256.create();
}

/**
 * From this size on, the platform's native digest (`crypto.subtle`) costs less than the portable
 * one despite its promise: tensors of real models hash 20–40× faster (bench/gateway.ts).
 */
const NATIVE_DIGEST_BYTES = 4 * 1024;

/**
 * SHA-256 of `data`, by the platform's WebCrypto for large inputs (tensors, payloads) and by the
 * portable code for small ones or where there is no WebCrypto. The same digest either way.
 *
 * @example
 * ```ts
 * const digest = toHex(await sha256Async(encodeTensors(tensors)));
 * ```
 */
export async function sha256Async(data: Uint8Array): Promise<Uint8Array> {
  const subtle = (globalThis as { crypto?: { subtle?: SubtleCrypto } }).crypto?.subtle;
  if (data.length < NATIVE_DIGEST_BYTES || subtle === undefined) return sha256(data);
  return new Uint8Array(await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>));
}
