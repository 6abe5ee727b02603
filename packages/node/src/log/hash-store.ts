/**
 * The log's Merkle tree: one append-only file per tree level (`level-<L>`, 32-byte hashes of the
 * complete subtrees at that level, level 0 = leaf hashes), plus the part of it kept in memory.
 *
 * Why this layout: every hash an RFC 9162 proof or a C2SP tlog tile needs is a complete subtree,
 * `MTH(D[i·2^l : (i+1)·2^l])`, which sits at a fixed offset `32·i` of file `level-l`: one `pread`
 * per proof hash, no rehashing, and a tile at tile level L is a plain byte range of `level-8L`.
 * Files only grow, so a batch appends a contiguous byte range to each level it touches and a
 * crash can only leave extra bytes at the ends, which the next open truncates.
 *
 * Memory: levels ≥ {@link MEMORY_LEVEL} are held whole (2·32/256 ≈ 0.25 bytes per leaf, ≤ 0.5
 * with buffer slack), so the upper half of any proof never touches the disk. Below that only the
 * last, incomplete 256-leaf block is held (≤ 510 hashes) plus the batch being written: a new
 * leaf's low siblings all lie in its own 256-leaf block, so receipts for a batch are computed from
 * memory alone. Older low-level hashes are read from the files (8 `pread`s per proof at most).
 *
 * Hashes of incomplete ranges `[start, size)` (the right edge, RFC 6962's non-power-of-two
 * splits) are memoised per tree size: every proof against one checkpoint shares the same ≤ log2(n)
 * of them, so a batch of receipts costs one right-edge computation, not one per receipt.
 */
import fs from 'node:fs';
import { join } from 'node:path';
import { consistencyProofFromReader, EMPTY_ROOT, type MerkleHashReader, VerityError } from '@verity/protocol';
import { pairHash } from './fast-hash.js';
import { openReadWrite, readAt, truncateFd, writeAtSync } from './files.js';

/** Tree levels at or above this one are held in memory in full (= the tile height, 8). */
export const MEMORY_LEVEL = 8;
const HASH = 32;
/** Leaves per block whose low levels stay in memory: 2^MEMORY_LEVEL. */
const BLOCK = 2 ** MEMORY_LEVEL;
const MEMO_SIZES = 4;

interface Level {
  /** Hashes `[start, count)` of this level, 32 bytes each. */
  buf: Buffer;
  /** Index of the first hash held in `buf`. */
  start: number;
  /** Hashes at this level in the tree, committed or not: ⌊size / 2^level⌋. */
  count: number;
  /** Hashes covered by the last commit (written to the file). */
  committed: number;
  fd: number | undefined;
}

interface MemoEntry {
  readonly hash: Uint8Array;
  hex?: string;
}

/** A pending byte range of one level file. */
export interface LevelWrite {
  readonly level: number;
  readonly fd: number;
  readonly position: number;
  readonly bytes: Buffer;
}

function corrupt(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerityError('LOG_CORRUPT', message, cause === undefined ? { details } : { details, cause });
}

function outOfRange(message: string, details: Record<string, unknown>): never {
  throw new VerityError('MERKLE_INDEX_OUT_OF_RANGE', message, { details });
}

/** 2^k for the largest k with 2^k ≤ n (n ≥ 1), exact up to 2^53. */
function floorPow2(n: number): number {
  if (n < 0x80000000) return 1 << (31 - Math.clz32(n));
  let p = 0x80000000;
  while (p * 2 <= n) p *= 2;
  return p;
}

function log2Exact(p: number): number {
  if (p < 2 ** 32) return 31 - Math.clz32(p);
  let l = 32;
  for (let q = 2 ** 32; q < p; q *= 2) l++;
  return l;
}

/** The in-memory and on-disk complete-subtree hashes of the log's tree. */
export class HashStore implements MerkleHashReader {
  private readonly levels: Level[] = [];
  private readonly memos = new Map<number, Map<number, MemoEntry>>();
  private created = false;

  constructor(private readonly dir: string) {}

  /** Leaves in the tree, including those not yet committed. */
  get size(): number {
    return this.levels[0]?.count ?? 0;
  }

  /** Leaves covered by the last commit. */
  get committedSize(): number {
    return this.levels[0]?.committed ?? 0;
  }

  /** Whether a level file was created since the last commit (the directory then needs an fsync). */
  get createdFiles(): boolean {
    return this.created;
  }

  /**
   * Opens the level files of a log whose checkpoint covers `size` leaves and whose level files were
   * last made durable (a sync point) through `durable` ≤ `size` leaves: each must hold at least
   * ⌊durable / 2^l⌋ hashes (else `LOG_CORRUPT`: durable data is missing); hashes beyond ⌊size / 2^l⌋
   * were never covered by a checkpoint and are cut off. Those in between may be missing or stale
   * (derived data written after the sync point): the replay rewrites them. The tree itself starts
   * empty: the caller replays the records through {@link append} and {@link verifyPending}.
   */
  openFiles(size: number, durable: number = size): void {
    const onDisk = new Set<number>();
    for (const name of fs.readdirSync(this.dir)) {
      const m = /^level-(0|[1-9][0-9]?)$/.exec(name);
      if (m) onDisk.add(Number(m[1]));
    }
    for (let l = 0; l < 64; l++) {
      const expected = Math.floor(size / 2 ** l);
      const required = Math.floor(durable / 2 ** l);
      if (!onDisk.has(l)) {
        if (required > 0) corrupt(`level file level-${l} is missing`, { level: l, expected: required });
        // Not yet durable: created when the replay rewrites it.
        continue;
      }
      const fd = openReadWrite(join(this.dir, `level-${l}`));
      this.level(l).fd = fd;
      const length = fs.fstatSync(fd).size;
      if (length < required * HASH) {
        corrupt(`level file level-${l} is shorter than the checkpoint requires`, {
          level: l,
          length,
          expected: required * HASH,
        });
      }
      if (length > expected * HASH) fs.ftruncateSync(fd, expected * HASH);
    }
  }

  /** The level files open now (to fsync them at a sync point). */
  openFds(): number[] {
    const out: number[] = [];
    for (const L of this.levels) if (L.fd !== undefined) out.push(L.fd);
    return out;
  }

  private level(l: number): Level {
    while (this.levels.length <= l) {
      this.levels.push({ buf: Buffer.allocUnsafe(HASH * 64), start: 0, count: 0, committed: 0, fd: undefined });
    }
    return this.levels[l] as Level;
  }

  private push(l: number, hash: Uint8Array): void {
    const L = this.level(l);
    const used = (L.count - L.start) * HASH;
    if (used + HASH > L.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(L.buf.length * 2, used + HASH));
      L.buf.copy(next, 0, 0, used);
      L.buf = next;
    }
    L.buf.set(hash, used);
    L.count++;
  }

  /** Appends a leaf hash, completing every subtree it closes (amortised one interior hash). */
  append(leafHash: Uint8Array): void {
    let idx = this.size;
    this.push(0, leafHash);
    let l = 0;
    while (idx % 2 === 1) {
      const L = this.levels[l] as Level;
      // The left sibling is in memory: a pair at level l < 8 lies in one 256-leaf block, and the
      // block of a new leaf is never trimmed (commit keeps the last incomplete block).
      const h = pairHash(L.buf, (idx - 1 - L.start) * HASH);
      idx = (idx - 1) / 2;
      l++;
      this.push(l, h);
    }
  }

  /** The byte ranges appended since the last commit, one per level that grew. */
  pending(): LevelWrite[] {
    const out: LevelWrite[] = [];
    for (let l = 0; l < this.levels.length; l++) {
      const L = this.levels[l] as Level;
      if (L.count === L.committed) continue;
      out.push({
        level: l,
        fd: this.fdFor(l),
        position: L.committed * HASH,
        bytes: L.buf.subarray((L.committed - L.start) * HASH, (L.count - L.start) * HASH),
      });
    }
    return out;
  }

  private fdFor(l: number): number {
    const L = this.level(l);
    if (L.fd === undefined) {
      const path = join(this.dir, `level-${l}`);
      if (!fs.existsSync(path)) this.created = true;
      L.fd = openReadWrite(path);
    }
    return L.fd;
  }

  /**
   * Checks the pending hashes (recomputed from the records) against the level files' bytes, for
   * the first `durable` leaves (the files must match there: `LOG_CORRUPT` otherwise), and writes
   * the hashes beyond them to the files (derived data that may not have reached the disk).
   */
  verifyPending(durable: number = Number.MAX_SAFE_INTEGER): void {
    for (const w of this.pending()) {
      const first = w.position / HASH;
      const durableEnd = Math.min(w.bytes.length, Math.max(0, Math.floor(durable / 2 ** w.level) - first) * HASH);
      if (durableEnd > 0) {
        const expected = w.bytes.subarray(0, durableEnd);
        const onDisk = readAt(w.fd, w.position, durableEnd);
        if (!onDisk.equals(expected)) {
          let i = 0;
          while (i < onDisk.length && onDisk[i] === expected[i]) i++;
          corrupt(`level file level-${w.level} does not match the hashes of the records`, {
            level: w.level,
            index: Math.floor((w.position + i) / HASH),
          });
        }
      }
      if (durableEnd < w.bytes.length) writeAtSync(w.fd, w.bytes.subarray(durableEnd), w.position + durableEnd);
    }
  }

  /** Marks everything appended as committed and drops low-level hashes no new leaf can need. */
  commit(): void {
    const size = this.size;
    const base = Math.floor(size / BLOCK) * BLOCK;
    for (let l = 0; l < this.levels.length; l++) {
      const L = this.levels[l] as Level;
      L.committed = L.count;
      if (l >= MEMORY_LEVEL) continue;
      const start = base / 2 ** l;
      if (start > L.start) {
        L.buf.copy(L.buf, 0, (start - L.start) * HASH, (L.count - L.start) * HASH);
        L.start = start;
        // A big batch (or the open-time replay) may have grown the buffer; give the memory back.
        if (L.buf.length > HASH * 4 * BLOCK) {
          const next = Buffer.allocUnsafe(HASH * 2 * BLOCK);
          L.buf.copy(next, 0, 0, (L.count - L.start) * HASH);
          L.buf = next;
        }
      }
    }
    this.created = false;
  }

  /** Forgets everything appended since the last commit. */
  rollback(): void {
    for (const L of this.levels) L.count = L.committed;
    this.memos.clear();
  }

  /** Cuts every level file back to its committed length (after a failed batch). */
  async truncateFiles(): Promise<void> {
    // allSettled: no truncate may still be in flight when the caller moves on.
    const results = await Promise.allSettled(
      this.levels.map((L) => (L.fd === undefined ? undefined : truncateFd(L.fd, L.committed * HASH))),
    );
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }

  close(): void {
    for (const L of this.levels) {
      if (L.fd !== undefined) fs.closeSync(L.fd);
      L.fd = undefined;
    }
  }

  /** `MTH(D[index·2^level : (index+1)·2^level])`, from memory or the level file. */
  subtree(level: number, index: number): Uint8Array {
    const L = this.levels[level];
    if (L === undefined || !Number.isSafeInteger(index) || index < 0 || index >= L.count) {
      outOfRange('no such complete subtree', { level, index });
    }
    if (index >= L.start) {
      const o = (index - L.start) * HASH;
      return L.buf.subarray(o, o + HASH);
    }
    return this.readFile(level, L, index, 1);
  }

  private subtreeHex(level: number, index: number): string {
    const L = this.levels[level] as Level;
    if (index >= L.start) {
      const o = (index - L.start) * HASH;
      return L.buf.toString('hex', o, o + HASH);
    }
    return this.readFile(level, L, index, 1).toString('hex');
  }

  private readFile(level: number, L: Level, index: number, count: number): Buffer {
    if (L.fd === undefined) corrupt(`level file level-${level} is not open`, { level });
    const buf = readAt(L.fd, index * HASH, count * HASH);
    if (buf.length !== count * HASH) corrupt(`level file level-${level} is truncated`, { level, index });
    return buf;
  }

  /** `count` consecutive hashes of one level starting at `start` (a copy), e.g. a tile. */
  readHashes(level: number, start: number, count: number): Buffer {
    const L = this.levels[level];
    if (L === undefined || start + count > L.count) outOfRange('hashes beyond the tree', { level, start, count });
    const out = Buffer.allocUnsafe(count * HASH);
    const fromFile = Math.max(0, Math.min(count, L.start - start));
    if (fromFile > 0) this.readFile(level, L, start, fromFile).copy(out, 0);
    if (fromFile < count) {
      L.buf.copy(out, fromFile * HASH, (start + fromFile - L.start) * HASH, (start + count - L.start) * HASH);
    }
    return out;
  }

  /** MTH(D[start:end]) for a range of the RFC 6962 recursion; non-perfect ranges are memoised per `end`. */
  private range(start: number, end: number): MemoEntry | Uint8Array {
    const n = end - start;
    const p = floorPow2(n);
    if (p === n) return this.subtree(log2Exact(n), start / n);
    let memo = this.memos.get(end);
    if (memo === undefined) {
      if (this.memos.size >= MEMO_SIZES) this.memos.delete(this.memos.keys().next().value as number);
      memo = new Map();
      this.memos.set(end, memo);
    }
    const hit = memo.get(start);
    if (hit) return hit;
    // k = the largest power of two < n; n is not a power of two here, so k = p.
    const scratch = Buffer.allocUnsafe(2 * HASH);
    scratch.set(this.rangeHash(start, start + p), 0);
    scratch.set(this.rangeHash(start + p, end), HASH);
    const entry: MemoEntry = { hash: pairHash(scratch, 0) };
    memo.set(start, entry);
    return entry;
  }

  private rangeHash(start: number, end: number): Uint8Array {
    const r = this.range(start, end);
    return r instanceof Uint8Array ? r : r.hash;
  }

  private rangeHex(start: number, end: number): string {
    const n = end - start;
    const p = floorPow2(n);
    if (p === n) return this.subtreeHex(log2Exact(n), start / n);
    const entry = this.range(start, end) as MemoEntry;
    if (entry.hex === undefined) entry.hex = Buffer.from(entry.hash).toString('hex');
    return entry.hex;
  }

  private assertSize(size: number): void {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) {
      outOfRange('tree size beyond the log', { size, treeSize: this.size });
    }
  }

  /** The RFC 6962 tree head of the first `size` leaves. */
  root(size: number): Uint8Array {
    this.assertSize(size);
    // A copy: a perfect-size root is a view into a level buffer that later commits rewrite.
    return Uint8Array.from(size === 0 ? EMPTY_ROOT : this.rangeHash(0, size));
  }

  /** RFC 9162 §2.1.3.1 PATH(index, D[size]), leaf side first, as hex. */
  inclusionProofHex(index: number, size: number): string[] {
    return this.inclusionProofsHex(index, 1, size)[0] as string[];
  }

  /**
   * The inclusion proofs of leaves `first … first+count−1` in the tree of `size`. Neighbouring
   * leaves share most of their path, so each sibling hash is read and hex-encoded once and its
   * string shared by every proof that contains it (a batch of 4096 receipts needs ~8 K hex
   * conversions instead of ~80 K).
   */
  inclusionProofsHex(first: number, count: number, size: number): string[][] {
    this.assertSize(size);
    const last = first + count - 1;
    if (!Number.isSafeInteger(first) || first < 0 || count < 1 || last >= size) {
      outOfRange('leaf index is not below the tree size', { index: count === 1 ? first : [first, last], size });
    }
    const out: string[][] = [];
    // The previous proof's sibling ranges and hex, by depth from the root.
    const prevStart: number[] = [];
    const prevEnd: number[] = [];
    const prevHex: string[] = [];
    for (let index = first; index <= last; index++) {
      const proof: string[] = [];
      let start = 0;
      let end = size;
      for (let depth = 0; end - start > 1; depth++) {
        const k = floorPow2(end - start - 1);
        let s: number;
        let e: number;
        if (index < start + k) {
          s = start + k;
          e = end;
          end = s;
        } else {
          s = start;
          e = start + k;
          start = e;
        }
        let hex: string;
        if (prevStart[depth] === s && prevEnd[depth] === e) {
          hex = prevHex[depth] as string;
        } else {
          hex = this.rangeHex(s, e);
          prevStart[depth] = s;
          prevEnd[depth] = e;
          prevHex[depth] = hex;
        }
        proof.push(hex);
      }
      out.push(proof.reverse());
    }
    return out;
  }

  /** RFC 9162 §2.1.4.1 PROOF(size1, D[size2]) as hex. */
  consistencyProofHex(size1: number, size2: number): string[] {
    this.assertSize(size2);
    return consistencyProofFromReader(this, size1, size2).map((h) => Buffer.from(h).toString('hex'));
  }
}
