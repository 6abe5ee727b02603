/**
 * requestId → leaf index, in 8 bytes per slot instead of a `Map<string, number>`.
 *
 * A `Map` costs ~80–100 bytes per entry here (the key string plus V8's table) and V8 caps a Map at
 * 2^24 entries, so it would stop a log at 16.7 M records. This open-addressing table keeps only a
 * 32-bit hash of the requestId and the leaf index (two `Uint32Array`s, load ≤ 0.7: 11–23 bytes
 * per record). The key strings themselves stay on disk, in the records: a lookup returns the
 * candidates whose hash matches and the caller confirms each against the record it reads back,
 * so hash collisions cost one extra read, never a wrong answer.
 */
import { VerityError } from '@verity/protocol';

const EMPTY = 0;
const MAX_LOAD = 0.7;

/** FNV-1a over UTF-16 code units, then murmur3's finaliser so every bit depends on every char. */
export function requestIdHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  h >>>= 0;
  return h === EMPTY ? 1 : h;
}

/** The largest leaf index the table can hold (indices are stored as u32). */
export const MAX_INDEXED = 2 ** 32 - 1;

export class RequestIdIndex {
  private hashes: Uint32Array;
  private values: Uint32Array;
  private mask: number;
  private count = 0;

  constructor(capacity = 1024) {
    let c = 16;
    while (c < capacity / MAX_LOAD) c *= 2;
    this.hashes = new Uint32Array(c);
    this.values = new Uint32Array(c);
    this.mask = c - 1;
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the table. */
  get byteLength(): number {
    return this.hashes.byteLength + this.values.byteLength;
  }

  /** Adds `id → index` (the caller has checked that `id` is new). */
  insert(id: string, index: number): void {
    if (index > MAX_INDEXED) {
      throw new VerityError('INTERNAL', 'leaf index beyond the request index range', { details: { index } });
    }
    if (this.count + 1 > (this.mask + 1) * MAX_LOAD) this.grow();
    this.place(requestIdHash(id), index);
    this.count++;
  }

  /**
   * The index of `id`, or -1: each slot whose hash matches is offered to `confirm` (which reads
   * the record back and compares its requestId) until one is confirmed.
   */
  find(id: string, confirm: (index: number) => boolean): number {
    const h = requestIdHash(id);
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const s = this.hashes[i] as number;
      if (s === EMPTY) return -1;
      if (s === h && confirm(this.values[i] as number)) return this.values[i] as number;
    }
  }

  private place(h: number, index: number): void {
    let i = h & this.mask;
    while (this.hashes[i] !== EMPTY) i = (i + 1) & this.mask;
    this.hashes[i] = h;
    this.values[i] = index;
  }

  private grow(): void {
    const { hashes, values } = this;
    const c = hashes.length * 2;
    this.hashes = new Uint32Array(c);
    this.values = new Uint32Array(c);
    this.mask = c - 1;
    for (let i = 0; i < hashes.length; i++) {
      const h = hashes[i] as number;
      if (h !== EMPTY) this.place(h, values[i] as number);
    }
  }
}
