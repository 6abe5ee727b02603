/**
 * RFC 6962 §2.1 leaf and interior hashes on `node:crypto` — the Node fast path that docs/design.md §4 (docs/architecture.md §1) keeps
 * out of the portable core. One-shot `crypto.hash` (Node ≥ 20.12) is about 2× faster than `@noble/hashes` for the
 * 65-byte interior nodes that dominate appends and the open-time rescan; tests check it against
 * the protocol's `hashLeaf`/`hashChildren`.
 */
import { hash } from 'node:crypto';

const scratch = Buffer.alloc(65);
scratch[0] = 0x01;

/** SHA-256 of bytes that already are `0x00 ‖ data` (see `encodeLeafData`). */
export function sha256(data: Uint8Array): Buffer {
  return hash('sha256', data, 'buffer');
}

/** SHA-256(0x00 ‖ data): the leaf hash of RFC 6962 §2.1. */
export function leafHash(data: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(data.length + 1);
  buf[0] = 0x00;
  buf.set(data, 1);
  return hash('sha256', buf, 'buffer');
}

/** Interior hash of two adjacent 32-byte hashes `buf[offset..offset+64)` (left ‖ right). */
export function pairHash(buf: Buffer, offset: number): Buffer {
  buf.copy(scratch, 1, offset, offset + 64);
  return hash('sha256', scratch, 'buffer');
}
