/**
 * The `records` and `offsets` files of the log (node-log.ts): `records` holds u32 BE length ‖
 * record bytes (docs/protocol.md §5.2) per record, durable through the sync point and written
 * back from the journal above it; `offsets` the u64 BE offset of each, derived. This module reads records and entry bundles from them, and at open cuts them back
 * to a checkpoint, rebuilds what is derived above the sync point and replays the records into the
 * tree and the requestId index, checked against the signed roots (node-log.ts, "At open").
 */
import fs from 'node:fs';
import { leafHash } from './fast-hash.js';
import { readAt, writeAtSync } from './files.js';
import type { HashStore } from './hash-store.js';
import { corrupt } from './log-errors.js';
import { RequestIdIndex } from './request-index.js';

/** Smallest and largest encoded record (docs/protocol.md §5.2; entry bundles need ≤ 65535). */
export const MIN_RECORD = 137;
export const MAX_RECORD = 0xffff;
/** Offset of the requestId length byte in an encoded record (§5.2). */
export const REQUEST_ID_AT = 131;
/** Records per replay step at open (a multiple of 256, so low tree levels are trimmed between steps). */
const REPLAY_GROUP = 16384;

/** A u64 BE (below 2^53) at `at`. */
export function u64(buf: Buffer, at: number): number {
  return buf.readUInt32BE(at) * 2 ** 32 + buf.readUInt32BE(at + 4);
}

export function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / 2 ** 32), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

/** Where the records are: the two files, the committed size, and where its records end. */
export interface RecordFiles {
  readonly recordsFd: number;
  readonly offsetsFd: number;
  readonly size: number;
  readonly recordsEnd: number;
}

/** The bytes of committed record `index` (without its length prefix). */
export function recordAt(files: RecordFiles, index: number): Buffer {
  const size = files.size;
  const hasNext = index + 1 < size;
  const offs = readAt(files.offsetsFd, index * 8, hasNext ? 16 : 8);
  if (offs.length !== (hasNext ? 16 : 8)) corrupt('the offsets file is truncated', { index });
  const start = u64(offs, 0);
  const end = hasNext ? u64(offs, 8) : files.recordsEnd;
  const buf =
    end - start >= 4 + MIN_RECORD && end - start <= 4 + MAX_RECORD
      ? readAt(files.recordsFd, start, end - start)
      : undefined;
  if (buf === undefined || buf.length !== end - start || buf.readUInt32BE(0) !== end - start - 4) {
    corrupt('the records file does not match the offsets file', { index });
  }
  return buf.subarray(4);
}

/** The requestId of an encoded record. */
export function requestIdOf(rec: Buffer): string {
  const n = rec[REQUEST_ID_AT] as number;
  return rec.toString('latin1', REQUEST_ID_AT + 1, REQUEST_ID_AT + 1 + n);
}

/**
 * C2SP tlog-tiles entry bundle of committed records `first … first + w − 1` (all committed):
 * u16 BE length ‖ record bytes each.
 */
export function entryBundleAt(files: RecordFiles, first: number, w: number): Buffer {
  const size = files.size;
  const hasNext = first + w < size;
  const n = hasNext ? w + 1 : w;
  const offs = readAt(files.offsetsFd, first * 8, n * 8);
  if (offs.length !== n * 8) corrupt('the offsets file is truncated', { index: first });
  const start = u64(offs, 0);
  const end = hasNext ? u64(offs, w * 8) : files.recordsEnd;
  const data = readAt(files.recordsFd, start, end - start);
  if (data.length !== end - start || data.length < 4 * w) corrupt('the records file is truncated', { index: first });
  // Each entry shrinks from u32 ‖ bytes to u16 ‖ bytes.
  const out = Buffer.allocUnsafe(data.length - 2 * w);
  let p = 0;
  let q = 0;
  for (let i = 0; i < w; i++) {
    const len = p + 4 <= data.length ? data.readUInt32BE(p) : -1;
    if (len < MIN_RECORD || len > MAX_RECORD || p + 4 + len > data.length) {
      corrupt('the records file does not match the offsets file', { index: first + i });
    }
    out.writeUInt16BE(len, q);
    data.copy(out, q + 2, p + 4, p + 4 + len);
    p += 4 + len;
    q += 2 + len;
  }
  if (p !== data.length) corrupt('the records file does not match the offsets file', { index: first });
  return out;
}

/**
 * Writes the offsets of records `first … size − 1` (derived data above the sync point), read from
 * the records' length prefixes starting at byte `start` of `records`; returns where record `size`
 * would start. `LOG_CORRUPT` when the records file ends early or holds an impossible length: those
 * records were durable before their checkpoint was written.
 */
function rebuildOffsets(offsetsFd: number, recordsFd: number, first: number, size: number, start: number): number {
  const CHUNK = 1 << 20;
  /** Bytes of `records` from file offset `bufAt` on. */
  let buf = Buffer.alloc(0);
  let bufAt = start;
  let pos = start;
  /** Makes bytes [pos, end) of the file available in `buf`. */
  const ensure = (end: number, index: number): void => {
    if (end - bufAt <= buf.length) return;
    const more = readAt(recordsFd, bufAt + buf.length, Math.max(CHUNK, end - bufAt - buf.length));
    buf = Buffer.concat([buf.subarray(pos - bufAt), more]);
    bufAt = pos;
    if (end - bufAt > buf.length) corrupt('the records file is shorter than the checkpoint', { index });
  };
  for (let i = first; i < size; ) {
    const n = Math.min(REPLAY_GROUP, size - i);
    const offsets = Buffer.allocUnsafe(n * 8);
    for (let j = 0; j < n; j++) {
      ensure(pos + 4, i + j);
      const len = buf.readUInt32BE(pos - bufAt);
      if (len < MIN_RECORD || len > MAX_RECORD) corrupt('a record has an impossible length', { index: i + j });
      ensure(pos + 4 + len, i + j);
      writeU64(offsets, pos, j * 8);
      pos += 4 + len;
    }
    writeAtSync(offsetsFd, offsets, i * 8);
    i += n;
  }
  return pos;
}

/**
 * Replays the committed records: rebuilds the tree and the requestId index, checking the level
 * files through record `durable` and rewriting them above it (see the durability rule).
 */
function replay(
  store: HashStore,
  index: RequestIdIndex,
  offsetsFd: number,
  recordsFd: number,
  size: number,
  recordsEnd: number,
  durable: number,
): void {
  for (let first = 0; first < size; first += REPLAY_GROUP) {
    const n = Math.min(REPLAY_GROUP, size - first);
    const hasNext = first + n < size;
    const offs = readAt(offsetsFd, first * 8, (hasNext ? n + 1 : n) * 8);
    const start = u64(offs, 0);
    const end = hasNext ? u64(offs, n * 8) : recordsEnd;
    if (end < start || end - start > n * (4 + MAX_RECORD))
      corrupt('the offsets file is inconsistent', { index: first });
    const data = readAt(recordsFd, start, end - start);
    if (data.length !== end - start) corrupt('the records file is truncated', { index: first });
    let p = 0;
    for (let i = 0; i < n; i++) {
      if (u64(offs, i * 8) !== start + p) corrupt('the offsets file does not match the records', { index: first + i });
      const len = p + 4 <= data.length ? data.readUInt32BE(p) : -1;
      if (len < MIN_RECORD || len > MAX_RECORD || p + 4 + len > data.length) {
        corrupt('a record has an impossible length', { index: first + i });
      }
      const rec = data.subarray(p + 4, p + 4 + len);
      const idLength = rec[REQUEST_ID_AT] as number;
      if (idLength === 0 || idLength > 64 || REQUEST_ID_AT + 1 + idLength > len) {
        corrupt('a record has an impossible requestId', { index: first + i });
      }
      store.append(leafHash(rec));
      index.insert(rec.toString('latin1', REQUEST_ID_AT + 1, REQUEST_ID_AT + 1 + idLength), first + i);
      p += 4 + len;
    }
    if (p !== data.length) corrupt('the records file does not match the offsets file', { index: first });
    store.verifyPending(durable);
    store.commit();
  }
}

/**
 * Where the first `durable` records end in `records`, read from the files (durable through the
 * sync point `durable`). `LOG_CORRUPT` when they are shorter than that.
 */
export function recordsEndAt(recordsFd: number, offsetsFd: number, durable: number): number {
  if (durable === 0) return 0;
  const offsetsLength = fs.fstatSync(offsetsFd).size;
  if (offsetsLength < durable * 8) {
    corrupt('the offsets file is shorter than the checkpoint', { size: durable, offsetsLength });
  }
  const last = u64(readAt(offsetsFd, (durable - 1) * 8, 8), 0);
  const header = readAt(recordsFd, last, 4);
  if (header.length !== 4) corrupt('the records file is shorter than the checkpoint', { size: durable });
  const recordsEnd = last + 4 + header.readUInt32BE(0);
  const recordsLength = fs.fstatSync(recordsFd).size;
  if (recordsLength < recordsEnd) {
    corrupt('the records file is shorter than the checkpoint', { size: durable, recordsLength });
  }
  return recordsEnd;
}

/**
 * Cuts the data files back to the checkpoint of `size` records and `rootHash`, rebuilds the
 * offsets above the sync point `durable`, replays the records into `store` (rebuilding the
 * requestId index) and checks them against the signed roots: that of the checkpoint, and that of
 * the copy (`durableRoot`, at `durable`). `LOG_CORRUPT` when the files do not back them.
 */
export function loadRecords(
  store: HashStore,
  recordsFd: number,
  offsetsFd: number,
  size: number,
  rootHash: Uint8Array,
  durable: number,
  durableRoot: Uint8Array | undefined,
): { recordsEnd: number; index: RequestIdIndex } {
  // Cut every file back to the checkpointed size: what lies beyond was never acknowledged.
  let recordsEnd = recordsEndAt(recordsFd, offsetsFd, durable);
  // Records durable … size − 1 are on disk (written back from the journal's write-ahead frames, or
  // fsynced with their note frame by an older version); their offsets may not be: recompute them
  // from the length prefixes.
  if (size > durable) recordsEnd = rebuildOffsets(offsetsFd, recordsFd, durable, size, recordsEnd);
  store.openFiles(size, durable);
  const index = new RequestIdIndex(size);
  replay(store, index, offsetsFd, recordsFd, size, recordsEnd, durable);
  if (!Buffer.from(store.root(size)).equals(rootHash)) {
    corrupt("the records' tree head differs from the checkpoint's", { size });
  }
  if (durableRoot !== undefined && durable > 0 && !Buffer.from(store.root(durable)).equals(durableRoot)) {
    corrupt("the checkpoint copy's tree head differs from the records'", { size: durable });
  }
  // Only now, with the records checked against the signed root, is anything beyond them cut.
  fs.ftruncateSync(recordsFd, recordsEnd);
  fs.ftruncateSync(offsetsFd, size * 8);
  return { recordsEnd, index };
}
