/**
 * The journal (`checkpoints`, node-log.ts): one frame per committed batch, appended in place; the
 * newest complete frame is the commit point, and the journal is the only file fsynced per batch.
 * Two kinds of frame:
 *
 * - **write-ahead frame** (written by every batch): u32 BE `0x80000000 | L` ‖ L bytes:
 *   u64 BE `at` ‖ u32 BE note length ‖ the batch's signed checkpoint note ‖ the batch's records
 *   exactly as they go to `records` at byte `at` (u32 BE length ‖ record bytes, each) ‖ SHA-256 of
 *   everything before it in the frame (32 bytes). The digest tells a whole frame from a torn one
 *   whatever bytes a crash left (records hold zeros and any other byte, unlike notes).
 * - **note frame**: u32 BE n (1…4096) ‖ a signed checkpoint note of n bytes, holding no records:
 *   those of its size are durable in `records` itself. It starts a journal (new log, migration,
 *   compaction after a sync point) and is every frame of a journal written by an older version.
 *
 * This module builds frames and reads the journal at open.
 */
import { parseCheckpoint } from '@verity/protocol';
import { sha256 } from './fast-hash.js';
import { corrupt } from './log-errors.js';
import { MAX_RECORD, MIN_RECORD } from './records-file.js';

/** The journal, its compaction temp file, and the convenience copy of the checkpoint. */
export const JOURNAL = 'checkpoints';
export const JOURNAL_NEW = 'checkpoints.new';
export const CHECKPOINT = 'checkpoint';
/** Largest note: a signed note is ~200 bytes; anything larger is damage. */
const MAX_NOTE = 4096;
/** The length word's flag marking a write-ahead frame (a note frame's length is ≤ MAX_NOTE). */
const WAL_FLAG = 0x80000000;
const DIGEST = 32;
/** The smallest write-ahead frame after its length word: at, note length, a 1-byte note, digest. */
const MIN_WAL = 8 + 4 + 1 + DIGEST;

/** A note frame: u32 BE length ‖ the note's bytes. */
export function frameOf(note: string): Buffer {
  const body = Buffer.from(note, 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/**
 * A write-ahead frame for a batch whose signed note is `note` and whose records, `recordsLength`
 * bytes in all, go to `records` at byte `at`. Returns the frame and the part of it where the
 * caller writes the records (the same bytes then go to `records`); {@link sealFrame} then writes
 * the digest.
 */
export function walFrame(note: string, at: number, recordsLength: number): { frame: Buffer; records: Buffer } {
  const noteLength = Buffer.byteLength(note, 'utf8');
  const length = 8 + 4 + noteLength + recordsLength + DIGEST;
  if (length > 0x7fffffff) throw new RangeError('a batch of more than 2 GiB does not fit a journal frame');
  const frame = Buffer.allocUnsafe(4 + length);
  frame.writeUInt32BE((WAL_FLAG | length) >>> 0, 0);
  frame.writeUInt32BE(Math.floor(at / 2 ** 32), 4);
  frame.writeUInt32BE(at >>> 0, 8);
  frame.writeUInt32BE(noteLength, 12);
  frame.write(note, 16, 'utf8');
  const start = 16 + noteLength;
  return { frame, records: frame.subarray(start, start + recordsLength) };
}

/** Writes the digest of a frame made by {@link walFrame} once its records are in place. */
export function sealFrame(frame: Buffer): void {
  const end = frame.length - DIGEST;
  sha256(frame.subarray(0, end)).copy(frame, end);
}

/** A journal frame: its note, where it ends, and (write-ahead frames) its records and their place. */
export interface Frame {
  readonly note: string;
  /** Byte offset in the journal where the frame ends (−1: not in the journal yet). */
  readonly end: number;
  /** A write-ahead frame's records (u32 BE length ‖ bytes, each), and their byte offset in `records`. */
  readonly records?: { readonly at: number; readonly bytes: Buffer; readonly count: number };
}

/** The tree size of a frame's note, unverified (the newest frame's note is verified at open). */
export function frameSize(frame: Frame): number {
  const note = frame.note;
  const text = note.slice(0, note.indexOf('\n\n') + 1);
  try {
    return parseCheckpoint(text).size;
  } catch (e) {
    corrupt('a checkpoint journal frame holds no checkpoint', { end: frame.end }, e);
  }
}

/** A whole write-ahead frame at `p` (digest checked), or undefined if it is torn or incomplete. */
function walAt(buf: Buffer, p: number): Frame | undefined {
  const length = buf.readUInt32BE(p) & ~WAL_FLAG;
  const end = p + 4 + length;
  if (length < MIN_WAL || end > buf.length) return undefined;
  if (!sha256(buf.subarray(p, end - DIGEST)).equals(buf.subarray(end - DIGEST, end))) return undefined;
  // Whole (the digest matches): anything inconsistent inside it now is damage, not a crash.
  const at = buf.readUInt32BE(p + 4) * 2 ** 32 + buf.readUInt32BE(p + 8);
  const noteLength = buf.readUInt32BE(p + 12);
  const recordsStart = p + 16 + noteLength;
  if (noteLength === 0 || noteLength > MAX_NOTE || recordsStart > end - DIGEST) {
    corrupt('a checkpoint journal frame is malformed', { at: p });
  }
  const bytes = buf.subarray(recordsStart, end - DIGEST);
  let count = 0;
  for (let q = 0; q < bytes.length; count++) {
    const n = q + 4 <= bytes.length ? bytes.readUInt32BE(q) : -1;
    if (n < MIN_RECORD || n > MAX_RECORD || q + 4 + n > bytes.length) {
      corrupt('a checkpoint journal frame holds a malformed record', { at: p });
    }
    q += 4 + n;
  }
  if (count === 0) corrupt('a checkpoint journal frame holds no record', { at: p });
  return { note: buf.toString('utf8', p + 16, recordsStart), end, records: { at, bytes, count } };
}

/**
 * Where in `buf`, after byte `from` and before `to`, a whole write-ahead frame starts (its digest
 * matches), or −1. Only the torn tail is searched, at open, and cheaply: a frame's first byte is
 * `0x80 | length >>> 24`, and its length fits in the file, so only a few byte values can start one
 * (just 0x80 below 16 MiB); each is found by `indexOf`, and its note length is tested before any
 * digest.
 */
function laterFrame(buf: Buffer, from: number, to: number): number {
  // A frame's length word starts with the flag: none starts in the zeros that end the file (`to`).
  for (let hi = 0; hi <= Math.min(0x7f, Math.floor(buf.length / 2 ** 24)); hi++) {
    for (let q = buf.indexOf(0x80 | hi, from + 1); q >= 0 && q < to; q = buf.indexOf(0x80 | hi, q + 1)) {
      if (q + 4 + MIN_WAL > buf.length) break;
      const end = q + 4 + ((buf.readUInt32BE(q) & ~WAL_FLAG) >>> 0);
      if (end - q - 4 < MIN_WAL || end > buf.length) continue;
      const noteLength = buf.readUInt32BE(q + 12);
      if (noteLength === 0 || noteLength > MAX_NOTE || q + 16 + noteLength > end - DIGEST) continue;
      if (sha256(buf.subarray(q, end - DIGEST)).equals(buf.subarray(end - DIGEST, end))) return q;
    }
  }
  return -1;
}

/**
 * The complete frames of the journal `buf`, oldest first (at least one). What follows the newest
 * may only be the torn tail of one frame (a crash while appending it): fewer than 4 bytes, a
 * plausible length with its bytes incomplete, a note frame holding zeros (blocks that never
 * reached the disk; a note is text and has no NUL), or a write-ahead frame whose digest does not
 * match, then zeros (space written ahead, `JOURNAL_AHEAD`). Anything else there is damage:
 * `LOG_CORRUPT`, and so is a whole write-ahead frame anywhere in that tail: a batch's frame is
 * written only once the one before it is durable, so a torn frame is never followed by a whole
 * one, and such a tail is an acknowledged frame whose length word was damaged (taking it for torn
 * would drop every frame after it, and the node would sign their sizes again: a fork).
 */
export function readFrames(buf: Buffer): Frame[] {
  const frames: Frame[] = [];
  let p = 0;
  for (;;) {
    if (p + 4 > buf.length) break;
    const n = buf.readUInt32BE(p);
    if (n & WAL_FLAG) {
      const frame = walAt(buf, p);
      if (frame === undefined) break;
      frames.push(frame);
      p = frame.end;
      continue;
    }
    if (n === 0 || n > MAX_NOTE || p + 4 + n > buf.length) break;
    if (buf.subarray(p + 4, p + 4 + n).includes(0)) break;
    frames.push({ note: buf.toString('utf8', p + 4, p + 4 + n), end: p + 4 + n });
    p += 4 + n;
  }
  // The tail without the zeros that end the file (space written ahead, or blocks never written).
  let z = buf.length;
  while (z > p && buf[z - 1] === 0) z--;
  if (z - p >= 4) {
    const n = buf.readUInt32BE(p);
    const length = n & WAL_FLAG ? (n & ~WAL_FLAG) >>> 0 : n;
    const plausible = n & WAL_FLAG ? length >= MIN_WAL : n > 0 && n <= MAX_NOTE;
    if (!plausible || z - p > 4 + length) {
      corrupt('the checkpoint journal is damaged before its end', { at: p, length: buf.length });
    }
    const later = laterFrame(buf, p, z);
    if (later >= 0) {
      corrupt('the checkpoint journal holds a whole frame after a torn one', { at: p, frame: later });
    }
  }
  if (frames.length === 0) corrupt('the checkpoint journal holds no complete checkpoint', { length: buf.length });
  return frames;
}
