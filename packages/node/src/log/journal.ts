/**
 * The checkpoint journal (`checkpoints`, node-log.ts): one frame per committed batch, u32 BE length
 * ‖ the batch's signed checkpoint note, appended in place; the newest complete frame is the commit
 * point. This module writes frames and finds, at open, the newest complete one and the one before
 * it (the one-round commit rule of node-log.ts may drop the newest).
 */
import { corrupt } from './log-errors.js';

/** The checkpoint journal, its compaction temp file, and the convenience copy of the checkpoint. */
export const JOURNAL = 'checkpoints';
export const JOURNAL_NEW = 'checkpoints.new';
export const CHECKPOINT = 'checkpoint';
/** Largest journal frame body: a signed note is ~200 bytes; anything larger is damage. */
const MAX_NOTE = 4096;

/** A journal frame: u32 BE length ‖ the note's bytes. */
export function frameOf(note: string): Buffer {
  const body = Buffer.from(note, 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** A journal frame: its note, and the byte offset where it ends (−1: not in the journal yet). */
export interface Frame {
  readonly note: string;
  readonly end: number;
}

/**
 * The newest complete frame of the journal `buf`, and the one before it (if any). What follows
 * the newest may only be the torn tail of one frame (a crash while appending it): fewer than 4
 * bytes, a plausible length with its bytes incomplete, or a frame holding zeros (blocks that never
 * reached the disk; a note is text and has no NUL), then zeros (space written ahead,
 * `JOURNAL_AHEAD`). Anything else there is damage: `LOG_CORRUPT`.
 */
export function newestFrames(buf: Buffer): { newest: Frame; previous: Frame | undefined } {
  let p = 0;
  let last: { start: number; end: number } | undefined;
  let before: { start: number; end: number } | undefined;
  for (;;) {
    if (p + 4 > buf.length) break;
    const n = buf.readUInt32BE(p);
    if (n === 0 || n > MAX_NOTE || p + 4 + n > buf.length) break;
    if (buf.subarray(p + 4, p + 4 + n).includes(0)) break;
    before = last;
    last = { start: p, end: p + 4 + n };
    p += 4 + n;
  }
  // The tail without the zeros that end the file (space written ahead, or blocks never written).
  let z = buf.length;
  while (z > p && buf[z - 1] === 0) z--;
  if (z - p >= 4) {
    const n = buf.readUInt32BE(p);
    const torn = n > 0 && n <= MAX_NOTE && z - p <= 4 + n;
    if (!torn) corrupt('the checkpoint journal is damaged before its end', { at: p, length: buf.length });
  }
  if (last === undefined) corrupt('the checkpoint journal holds no complete checkpoint', { length: buf.length });
  const frame = (f: { start: number; end: number }): Frame => ({
    note: buf.toString('utf8', f.start + 4, f.end),
    end: f.end,
  });
  return { newest: frame(last), previous: before === undefined ? undefined : frame(before) };
}
