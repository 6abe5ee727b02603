/**
 * Deterministic pseudo-random file content for tests, identical to kubo's test helper
 * `DeterministicRandomReaderBytes(size, seed)` (kubo test/cli/testutils/random_deterministic.go):
 * the ChaCha20 keystream (RFC 8439, 96-bit zero nonce, block counter from 0) under the key
 * SHA-256(UTF-8 seed). With it, tests can rebuild the exact files whose CIDs kubo's own tests pin
 * (kubo test/cli/cid_profiles_test.go) and compare against `ipfs add` output without running kubo.
 */
import { utf8 } from '../bytes.js';
import { sha256 } from '../hash.js';

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/** One 64-byte ChaCha20 block (RFC 8439 §2.3) for `key` (8 words), `counter`, zero nonce. */
function chachaBlock(key: Uint32Array, counter: number, out: Uint8Array): void {
  // "expand 32-byte k", key, counter, nonce (zero).
  const s = new Uint32Array(16);
  s[0] = 0x61707865;
  s[1] = 0x3320646e;
  s[2] = 0x79622d32;
  s[3] = 0x6b206574;
  s.set(key, 4);
  s[12] = counter >>> 0;
  const x = s.slice();
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[a] = (x[a]! + x[b]!) | 0;
    x[d] = rotl(x[d]! ^ x[a]!, 16);
    x[c] = (x[c]! + x[d]!) | 0;
    x[b] = rotl(x[b]! ^ x[c]!, 12);
    x[a] = (x[a]! + x[b]!) | 0;
    x[d] = rotl(x[d]! ^ x[a]!, 8);
    x[c] = (x[c]! + x[d]!) | 0;
    x[b] = rotl(x[b]! ^ x[c]!, 7);
  };
  for (let i = 0; i < 10; i++) {
    qr(0, 4, 8, 12);
    qr(1, 5, 9, 13);
    qr(2, 6, 10, 14);
    qr(3, 7, 11, 15);
    qr(0, 5, 10, 15);
    qr(1, 6, 11, 12);
    qr(2, 7, 8, 13);
    qr(3, 4, 9, 14);
  }
  const view = new DataView(out.buffer, out.byteOffset, 64);
  for (let i = 0; i < 16; i++) view.setUint32(i * 4, (x[i]! + s[i]!) >>> 0, true);
}

/** The ChaCha20 key kubo derives from a seed string: SHA-256 of its UTF-8 bytes, as LE words. */
function seedKey(seed: string): Uint32Array {
  const k = sha256(utf8(seed));
  const view = new DataView(k.buffer, k.byteOffset, 32);
  const words = new Uint32Array(8);
  for (let i = 0; i < 8; i++) words[i] = view.getUint32(i * 4, true);
  return words;
}

/**
 * Yields `size` deterministic bytes for `seed` in pieces of at most `pieceSize` bytes, holding only
 * one piece in memory.
 */
export function* deterministicPieces(size: number, seed: string, pieceSize = 1 << 20): Generator<Uint8Array> {
  const key = seedKey(seed);
  const block = new Uint8Array(64);
  let counter = 0;
  let blockPos = 64; // bytes of `block` already used
  let remaining = size;
  while (remaining > 0) {
    const piece = new Uint8Array(Math.min(pieceSize, remaining));
    for (let o = 0; o < piece.length; ) {
      if (blockPos === 64) {
        chachaBlock(key, counter++, block);
        blockPos = 0;
      }
      const n = Math.min(64 - blockPos, piece.length - o);
      piece.set(block.subarray(blockPos, blockPos + n), o);
      blockPos += n;
      o += n;
    }
    remaining -= piece.length;
    yield piece;
  }
}

/** `size` deterministic bytes for `seed`, in one array. */
export function deterministicBytes(size: number, seed: string): Uint8Array {
  const out = new Uint8Array(size);
  let o = 0;
  for (const piece of deterministicPieces(size, seed)) {
    out.set(piece, o);
    o += piece.length;
  }
  return out;
}
