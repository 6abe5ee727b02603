/**
 * Simulated crashes (files holding bytes beyond the checkpoint, torn tails of the data files and
 * of the checkpoint journal, a batch that died before its checkpoint, leftover temp files) reopen
 * to the checkpointed state and carry on consistently; damaged files or checkpoints are
 * `LOG_CORRUPT`, each as a named fixture. Also: migration from a journal-less directory.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type Checkpoint,
  createEd25519Signer,
  createVerifyCache,
  fromHex,
  openCheckpoint,
  parseVerifierKey,
  signCheckpoint,
  verifyConsistency,
  verifyReceipt,
} from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NodeLog, openLog } from './index.js';
import { sealFrame, walFrame } from './journal.js';
import { codeOf, makeRecord, ORIGIN, signer, TRUST, VERIFIER_KEY } from './test-support/log-fixtures.js';

const root = fs.mkdtempSync(join(tmpdir(), 'verity-log-crash-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const verifier = parseVerifierKey(VERIFIER_KEY);
const cache = createVerifyCache();
const openCp = (note: string): Checkpoint => openCheckpoint(note, [verifier], ORIGIN).checkpoint;

/** A closed log of 600 records (levels 0–9), copied fresh for every case. */
const SIZE = 600;
const template = join(root, 'template');
beforeAll(async () => {
  const log = await openLog({ dir: template, signer, fsync: false });
  await Promise.all(Array.from({ length: SIZE }, (_, i) => log.append(makeRecord(i))));
  await log.close();
});

function copy(): string {
  const dir = join(root, `case-${dirs++}`);
  fs.cpSync(template, dir, { recursive: true });
  return dir;
}

const append = (dir: string, file: string, bytes: Uint8Array) => fs.appendFileSync(join(dir, file), bytes);
const cpPath = (dir: string) => join(dir, 'checkpoint');
const jPath = (dir: string) => join(dir, 'checkpoints');

/** A journal frame: u32 BE length ‖ bytes. */
function frame(body: string | Uint8Array): Buffer {
  const b = Buffer.from(body);
  const out = Buffer.alloc(4 + b.length);
  out.writeUInt32BE(b.length, 0);
  b.copy(out, 4);
  return out;
}

/** A write-ahead frame (journal.ts) of `note` and records `records` that go to `records` at `at`. */
function walOf(note: string, at: number, records: Uint8Array): Buffer {
  const built = walFrame(note, at, records.length);
  built.records.set(records);
  sealFrame(built.frame);
  return built.frame;
}

/** A journal frame as read here (independently of journal.ts): its bytes, note, and records if any. */
interface RawFrame {
  readonly bytes: Buffer;
  readonly note: Buffer;
  readonly wal?: { readonly at: number; readonly records: Buffer };
}

/** The journal's complete frames (a frame's length fits in the file; digests are not checked). */
function rawFrames(dir: string): RawFrame[] {
  const buf = fs.readFileSync(jPath(dir));
  const out: RawFrame[] = [];
  for (let p = 0; p + 4 <= buf.length; ) {
    const word = buf.readUInt32BE(p);
    const wal = word >= 0x80000000;
    const n = wal ? word - 0x80000000 : word;
    if (n === 0 || p + 4 + n > buf.length) break;
    const bytes = buf.subarray(p, p + 4 + n);
    if (wal) {
      const noteLength = bytes.readUInt32BE(12);
      out.push({
        bytes,
        note: bytes.subarray(16, 16 + noteLength),
        wal: { at: Number(bytes.readBigUInt64BE(4)), records: bytes.subarray(16 + noteLength, bytes.length - 32) },
      });
    } else out.push({ bytes, note: bytes.subarray(4) });
    p += 4 + n;
  }
  return out;
}

/** The notes of the journal's complete frames. */
const journalFrames = (dir: string): Buffer[] => rawFrames(dir).map((f) => f.note);

/**
 * Rewrites the journal as a log before write-ahead frames kept it (`records` fsynced with each
 * batch, the journal holding note frames only): the same notes, without their records.
 */
function oldFormat(dir: string): string {
  fs.writeFileSync(jPath(dir), Buffer.concat(journalFrames(dir).map(frame)));
  return dir;
}

const newestNote = (dir: string): string => (journalFrames(dir).at(-1) as Buffer).toString('utf8');
/** A plausible next note (the torn frame of a batch that died). */
const NEXT_NOTE = signCheckpoint(
  { origin: ORIGIN, size: SIZE + 5, rootHash: new Uint8Array(32), extensions: [] },
  signer,
);
const lengths = (dir: string) =>
  Object.fromEntries(
    fs
      .readdirSync(dir)
      .filter((f) => f !== 'lock')
      .map((f) => [f, fs.statSync(join(dir, f)).size]),
  );

/** Reopens a crashed copy: same checkpoint, then appends a batch that extends it. */
async function expectRecovers(dir: string): Promise<NodeLog> {
  const note = fs.readFileSync(join(dir, 'checkpoint'), 'utf8');
  const log = await openLog({ dir, signer });
  expect(log.size).toBe(SIZE);
  expect(log.checkpoint()).toBe(note);
  const old = openCp(note);
  const receipts = await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(makeRecord(SIZE + i))));
  expect(receipts[0]?.leafIndex).toBe(SIZE);
  for (const r of [...receipts, log.receiptByIndex(0), log.receiptByIndex(SIZE - 1)]) {
    const result = verifyReceipt(r, TRUST, { cache });
    expect(result.ok ? 'ok' : result.code).toBe('ok');
  }
  const next = openCp(log.checkpoint());
  verifyConsistency(old.size, next.size, log.consistencyProof(old.size).map(fromHex), old.rootHash, next.rootHash);
  return log;
}

describe('crash recovery', () => {
  it('cuts bytes written beyond the checkpoint from every file', async () => {
    const dir = copy();
    const clean = lengths(template);
    const garbage = new Uint8Array(1000).fill(0xab);
    for (const f of ['records', 'offsets', 'level-0', 'level-3', 'level-9']) append(dir, f, garbage);
    append(dir, 'level-12', garbage); // a level the checkpointed tree does not reach yet
    const log = await openLog({ dir, signer, fsync: false });
    expect(log.size).toBe(SIZE);
    await log.close();
    const after = lengths(dir);
    expect(after['level-12']).toBe(0);
    delete after['level-12'];
    expect(after).toEqual(clean);
    await (await expectRecovers(dir)).close();
  });

  it('cuts a torn record tail (length prefix and half a record, with its offset and half a hash)', async () => {
    const dir = copy();
    const recordsLength = fs.statSync(join(dir, 'records')).size;
    const offset = Buffer.alloc(8);
    offset.writeUInt32BE(recordsLength, 4);
    const torn = Buffer.alloc(4 + 90);
    torn.writeUInt32BE(190, 0);
    append(dir, 'records', torn);
    append(dir, 'offsets', offset);
    append(dir, 'level-0', new Uint8Array(17));
    await (await expectRecovers(dir)).close();
  });

  it.each(['checkpoint', 'offsets'])('leaves nothing of a batch that failed at its %s write', async (failing) => {
    const dir = copy();
    const clean = lengths(template);
    let die = true;
    const log = await openLog({
      dir,
      signer,
      beforeWrite: (file) => {
        if (die && file === failing) throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      },
    });
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => log.append(makeRecord(1000 + i))));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    die = false;
    // A failure after the frame was written: close cuts the frame and the records back.
    await log.close();
    expect(lengths(dir)).toEqual(clean);
    await (await expectRecovers(dir)).close();
  });

  it('drops a whole newest note frame whose records never reached the disk (a log before write-ahead frames)', async () => {
    const dir = oldFormat(copy());
    append(dir, 'checkpoints', frame(NEXT_NOTE));
    await (await expectRecovers(dir)).close();
  });

  it('opens a log written before write-ahead frames (fixture made by the code before them), and carries on', async () => {
    const dir = join(root, `case-${dirs++}`);
    fs.cpSync(fileURLToPath(new URL('./test-support/v1-log', import.meta.url)), dir, { recursive: true });
    const notes = journalFrames(dir).map((f) => f.toString('utf8'));
    expect(notes.map((n) => openCp(n).size)).toEqual([0, 5, 12, 21]);
    const log = await openLog({ dir, signer });
    expect(log.size).toBe(21);
    expect(log.checkpoint()).toBe(notes[3]);
    for (const i of [0, 11, 20]) {
      const r = log.receiptByRequestId(`v1-${i}`);
      expect(r.leafIndex).toBe(i);
      expect(verifyReceipt(r, TRUST, { cache }).ok).toBe(true);
    }
    const more = await Promise.all(Array.from({ length: 4 }, (_, i) => log.append(makeRecord(21 + i, 'v1'))));
    await log.close();
    // The old note frames stay; the new batch is a write-ahead frame after them.
    const frames = rawFrames(dir);
    expect(frames.slice(0, 4).map((f) => f.note.toString('utf8'))).toEqual(notes);
    expect(frames.slice(0, 4).every((f) => f.wal === undefined)).toBe(true);
    expect(frames[4]?.wal).toBeDefined();
    // Power loss after the new batch: `records` lost it, the journal has it.
    fs.truncateSync(join(dir, 'records'), (frames[4]?.wal?.at as number) + 10);
    fs.rmSync(cpPath(dir));
    const again = await openLog({ dir, signer });
    expect(again.size).toBe(25);
    expect(again.checkpoint()).toBe(more[3]?.checkpoint);
    expect(verifyReceipt(again.receiptByRequestId('v1-24'), TRUST, { cache }).ok).toBe(true);
    const next = await again.append(makeRecord(25, 'v1'));
    verifyConsistency(
      21,
      26,
      again.consistencyProof(21).map(fromHex),
      openCp(notes[3] as string).rootHash,
      openCp(next.checkpoint).rootHash,
    );
    await again.close();
  });

  it('ignores half-written checkpoint.tmp, checkpoints.tmp and checkpoints.new', async () => {
    const dir = copy();
    for (const f of ['checkpoint.tmp', 'checkpoints.tmp', 'checkpoints.new']) {
      fs.writeFileSync(join(dir, f), 'log-test.verity.local/log\n6');
    }
    await (await expectRecovers(dir)).close();
    for (const f of ['checkpoint.tmp', 'checkpoints.tmp', 'checkpoints.new']) {
      expect(fs.existsSync(join(dir, f))).toBe(false);
    }
  });

  it.each([
    ['a partial length prefix', Buffer.from([0, 0])],
    ['a length prefix alone', frame(NEXT_NOTE).subarray(0, 4)],
    ['half a frame', frame(NEXT_NOTE).subarray(0, 60)],
    ['a whole frame of zeros (blocks that never reached the disk)', Buffer.alloc(frame(NEXT_NOTE).length)],
    ['a frame whose second half is zeros', Buffer.concat([frame(NEXT_NOTE).subarray(0, 60), Buffer.alloc(100)])],
  ])('cuts a torn journal frame: %s', async (_, tail) => {
    const dir = copy();
    const before = fs.statSync(jPath(dir)).size;
    append(dir, 'checkpoints', tail);
    // The torn frame's batch wrote its data too.
    append(dir, 'offsets', new Uint8Array(8 * 5));
    const log = await expectRecovers(dir);
    await log.close();
    const frames = journalFrames(dir);
    expect(frames.slice(0, 2).map((f) => f.toString())).toEqual(journalFrames(template).map((f) => f.toString()));
    expect(fs.statSync(jPath(dir)).size).toBeGreaterThan(before);
  });

  it('takes zeros after the newest frame and after the records for space written ahead, of any length', async () => {
    const dir = copy();
    append(dir, 'checkpoints', Buffer.alloc(200_000));
    append(dir, 'records', Buffer.alloc(300_000));
    await (await expectRecovers(dir)).close();
    const torn = copy();
    append(torn, 'checkpoints', Buffer.concat([frame(NEXT_NOTE).subarray(0, 60), Buffer.alloc(65_536)]));
    append(torn, 'records', Buffer.alloc(300_000));
    await (await expectRecovers(torn)).close();
  });

  it('ignores a stale checkpoint copy: the journal is authoritative', async () => {
    const dir = copy();
    // A copy from before the last batch (written at most once a second).
    fs.writeFileSync(cpPath(dir), journalFrames(dir)[0] as Buffer);
    const log = await openLog({ dir, signer });
    expect(log.size).toBe(SIZE);
    const note = log.checkpoint();
    expect(note).toBe(newestNote(dir));
    await log.close();
    // Close rewrites the copy.
    expect(fs.readFileSync(cpPath(dir), 'utf8')).toBe(note);
  });

  it('migrates a directory with a checkpoint but no journal (an older version)', async () => {
    const dir = copy();
    fs.rmSync(jPath(dir));
    // …left by a crash mid-batch: bytes beyond its checkpoint.
    append(dir, 'records', new Uint8Array(300).fill(1));
    append(dir, 'offsets', new Uint8Array(8).fill(1));
    const note = fs.readFileSync(cpPath(dir), 'utf8');
    const log = await expectRecovers(dir);
    await log.close();
    const frames = journalFrames(dir);
    expect(frames[0]?.toString()).toBe(note);
    expect(newestNote(dir)).toBe(fs.readFileSync(cpPath(dir), 'utf8'));
  });

  it('does not migrate from a checkpoint copy that does not verify', async () => {
    const dir = copy();
    const forged = signCheckpoint(readCp(dir), otherSigner);
    fs.rmSync(jPath(dir));
    fs.writeFileSync(cpPath(dir), forged);
    expect(await codeOf(() => openLog({ dir, signer }))).toBe('LOG_CORRUPT');
    expect(fs.existsSync(jPath(dir))).toBe(false);
  });

  it('takes over the lock of a process that is gone', async () => {
    const dir = copy();
    fs.writeFileSync(join(dir, 'lock'), '2147483646\n'); // no such pid
    await (await expectRecovers(dir)).close();
  });
});

/**
 * The durability rule of node-log.ts: `records` and the journal are fsynced per batch, `offsets`
 * and the level files only at sync points (before each `checkpoint` copy). A power loss can leave
 * the derived files in any state above the copy's size; open recomputes them from the records.
 */
describe('derived files above the sync point', () => {
  /** Template grown to 1100 records (level-10 appears), with the copy set back to the template's (600). */
  const GROWN = 1100;
  const grownTemplate = join(root, 'grown');
  let grownFiles: Record<string, Buffer>;
  beforeAll(async () => {
    fs.cpSync(template, grownTemplate, { recursive: true });
    const log = await openLog({ dir: grownTemplate, signer, fsync: false });
    for (let i = SIZE; i < GROWN; i += 125) {
      await Promise.all(Array.from({ length: 125 }, (_, j) => log.append(makeRecord(i + j))));
    }
    await log.close();
    fs.copyFileSync(cpPath(template), cpPath(grownTemplate));
    grownFiles = Object.fromEntries(
      fs
        .readdirSync(grownTemplate)
        .filter((f) => f === 'records' || f === 'offsets' || f.startsWith('level-'))
        .map((f) => [f, fs.readFileSync(join(grownTemplate, f))]),
    );
  });

  function grown(): string {
    const dir = join(root, `case-${dirs++}`);
    fs.cpSync(grownTemplate, dir, { recursive: true });
    return dir;
  }

  /** Bytes of a derived file that the sync point at SIZE made durable. */
  const durableBytes = (file: string) =>
    file === 'records'
      ? recordAt(SIZE)
      : file === 'offsets'
        ? SIZE * 8
        : Math.floor(SIZE / 2 ** Number(file.slice(6))) * 32;

  /** Every derived file's bytes above the sync point replaced by `fill(length)` (not `records`). */
  function damageAbove(dir: string, fill: (length: number) => Buffer): void {
    for (const [f, bytes] of Object.entries(grownFiles)) {
      if (f === 'records') continue;
      const keep = durableBytes(f);
      fs.writeFileSync(join(dir, f), Buffer.concat([bytes.subarray(0, keep), fill(bytes.length - keep)]));
    }
  }

  async function expectRebuilt(dir: string): Promise<void> {
    const note = newestNote(dir);
    const log = await openLog({ dir, signer });
    expect(log.size).toBe(GROWN);
    expect(log.checkpoint()).toBe(note);
    for (const i of [0, SIZE - 1, SIZE, 777, 1024, GROWN - 1]) {
      const r = log.receiptByRequestId(`req-${i}`);
      expect(r.leafIndex).toBe(i);
      const result = verifyReceipt(r, TRUST, { cache });
      expect(result.ok ? 'ok' : result.code).toBe('ok');
    }
    const more = await log.append(makeRecord(GROWN));
    expect(more.leafIndex).toBe(GROWN);
    verifyConsistency(
      GROWN,
      GROWN + 1,
      log.consistencyProof(GROWN).map(fromHex),
      openCp(note).rootHash,
      openCp(more.checkpoint).rootHash,
    );
    await log.close();
    // The derived files hold exactly what they would have, had they been fsynced with every batch.
    for (const [f, bytes] of Object.entries(grownFiles)) {
      expect(fs.readFileSync(join(dir, f)).subarray(0, bytes.length).equals(bytes), f).toBe(true);
    }
    // Close made the new size a sync point.
    expect(openCp(fs.readFileSync(cpPath(dir), 'utf8')).size).toBe(GROWN + 1);
  }

  it('rebuilds offsets and level hashes that never reached the disk (files cut at the sync point)', async () => {
    const dir = grown();
    damageAbove(dir, () => Buffer.alloc(0));
    fs.rmSync(join(dir, 'level-10')); // created after the sync point
    await expectRebuilt(dir);
  });

  it('rebuilds derived blocks that read back as zeros or as stale bytes', async () => {
    const zeros = grown();
    damageAbove(zeros, (n) => Buffer.alloc(n));
    await expectRebuilt(zeros);
    const stale = grown();
    damageAbove(stale, (n) => Buffer.alloc(n, 0xab));
    await expectRebuilt(stale);
  });

  it('rebuilds everything when there is no usable sync point (copy missing or not verifying)', async () => {
    const missing = grown();
    fs.rmSync(cpPath(missing));
    await expectRebuilt(missing);
    const forged = grown();
    fs.writeFileSync(cpPath(forged), signCheckpoint(openCp(fs.readFileSync(cpPath(template), 'utf8')), otherSigner));
    damageAbove(forged, () => Buffer.alloc(0));
    await expectRebuilt(forged);
  });

  it('still refuses derived data damaged below the sync point', async () => {
    const dir = grown();
    flip(dir, 'level-0', 10 * 32);
    expect(await codeOf(() => openLog({ dir, signer }))).toBe('LOG_CORRUPT');
    const cut = grown();
    fs.truncateSync(join(cut, 'level-2'), 32 * 10);
    expect(await codeOf(() => openLog({ dir: cut, signer }))).toBe('LOG_CORRUPT');
  });

  /** Byte offset in `records` of record `index`'s length prefix, in the grown template. */
  const recordAt = (index: number) => {
    const offsets = grownFiles.offsets as Buffer;
    return offsets.readUInt32BE(index * 8) * 2 ** 32 + offsets.readUInt32BE(index * 8 + 4);
  };
  /** The grown template's batches were 125 records: frames at 725, 850, 975 and 1100. */
  const PREVIOUS = GROWN - 125;

  /** Opens a log whose newest batch tore: it is back at the previous frame, and extends it. */
  async function expectDropped(dir: string): Promise<void> {
    const frames = journalFrames(dir)
      .map((f) => f.toString('utf8'))
      .filter((n) => openCp(n).size <= PREVIOUS);
    const previous = frames.at(-1) as string;
    expect(openCp(previous).size).toBe(PREVIOUS);
    const log = await openLog({ dir, signer });
    expect(log.size).toBe(PREVIOUS);
    expect(log.checkpoint()).toBe(previous);
    // The dropped frame is gone from the journal, so no later open can take it up again.
    expect(journalFrames(dir).map((f) => f.toString('utf8'))).toEqual(frames);
    const r = log.receiptByRequestId(`req-${PREVIOUS - 1}`);
    expect(verifyReceipt(r, TRUST, { cache }).ok).toBe(true);
    expect(log.hasRequestId(`req-${PREVIOUS}`)).toBe(false);
    const more = await Promise.all(Array.from({ length: 3 }, (_, i) => log.append(makeRecord(5000 + i))));
    expect(more[0]?.leafIndex).toBe(PREVIOUS);
    const next = openCp(log.checkpoint());
    verifyConsistency(
      PREVIOUS,
      next.size,
      log.consistencyProof(PREVIOUS).map(fromHex),
      openCp(previous).rootHash,
      next.rootHash,
    );
    const last = log.checkpoint();
    await log.close();
    const reopened = await openLog({ dir, signer });
    expect(reopened.checkpoint()).toBe(last);
    await reopened.close();
  }

  /** `records` of `dir` with its bytes from `at` on replaced by `fill(length)`. */
  function damageRecords(dir: string, at: number, fill: (length: number) => Buffer): void {
    const bytes = fs.readFileSync(join(dir, 'records'));
    fs.writeFileSync(join(dir, 'records'), Buffer.concat([bytes.subarray(0, at), fill(bytes.length - at)]));
  }

  /** Power-loss states of `records` above the sync point: cut short, zeros, other bytes, one flipped byte. */
  const RECORDS_DAMAGE: [string, (dir: string) => void][] = [
    ['cut short', (d) => fs.truncateSync(join(d, 'records'), fs.statSync(join(d, 'records')).size - 100)],
    ['cut at the sync point', (d) => fs.truncateSync(join(d, 'records'), recordAt(SIZE))],
    ['zeros from mid-batch on', (d) => damageRecords(d, recordAt(PREVIOUS + 60), (n) => Buffer.alloc(n))],
    ['stale bytes above the sync point', (d) => damageRecords(d, recordAt(SIZE), (n) => Buffer.alloc(n, 0xab))],
    ['one byte flipped in the newest batch', (d) => flip(d, 'records', fs.statSync(join(d, 'records')).size - 50)],
    ['one byte flipped in an older batch', (d) => flip(d, 'records', recordAt(PREVIOUS - 10) + 20)],
  ];

  it.each(RECORDS_DAMAGE)(
    'recovers records %s from the write-ahead frames (one fsync per batch)',
    async (_, damage) => {
      // Only the journal is fsynced per batch: after a power loss `records` may hold anything above
      // the sync point, and its batches are in the journal's frames.
      const dir = grown();
      damageAbove(dir, () => Buffer.alloc(0));
      damage(dir);
      await expectRebuilt(dir);
    },
  );

  it('drops a torn newest write-ahead frame (cut, zeros, a changed byte): it was never acknowledged', async () => {
    const frames = rawFrames(grownTemplate);
    const last = frames.at(-1) as RawFrame;
    const start = fs.statSync(jPath(grownTemplate)).size - last.bytes.length;
    const tails: Buffer[] = [
      last.bytes.subarray(0, 4),
      last.bytes.subarray(0, 300),
      last.bytes.subarray(0, last.bytes.length - 1),
      Buffer.concat([last.bytes.subarray(0, 300), Buffer.alloc(last.bytes.length - 300)]),
      Buffer.concat([last.bytes.subarray(0, 300), Buffer.alloc(last.bytes.length - 300), Buffer.alloc(70_000)]),
      (() => {
        const b = Buffer.from(last.bytes);
        b[b.length - 100] = (b[b.length - 100] as number) ^ 1;
        return b;
      })(),
    ];
    for (const tail of tails) {
      const dir = grown();
      fs.truncateSync(jPath(dir), start);
      append(dir, 'checkpoints', tail);
      // Whatever of the batch reached `records` and the derived files goes too.
      await expectDropped(dir);
    }
  });

  it('refuses journal damage that is not one torn newest frame', async () => {
    // A whole frame before the newest changed: the tail is more than one torn frame.
    const frames = rawFrames(grownTemplate);
    const middle = grown();
    flip(middle, 'checkpoints', (frames[0] as RawFrame).bytes.length + (frames[1] as RawFrame).bytes.length + 400);
    expect(await codeOf(() => openLog({ dir: middle, signer }))).toBe('LOG_CORRUPT');
    // A frame left out: the frames no longer follow each other.
    const gap = grown();
    fs.writeFileSync(jPath(gap), Buffer.concat(frames.filter((_, i) => i !== 2).map((f) => f.bytes)));
    expect(await codeOf(() => openLog({ dir: gap, signer }))).toBe('LOG_CORRUPT');
    // A whole frame (its digest matches) whose records are not those its note signs.
    const forged = grown();
    const last = frames.at(-1) as RawFrame;
    const records = Buffer.from(last.wal?.records as Buffer);
    records[300] = (records[300] as number) ^ 1;
    fs.writeFileSync(
      jPath(forged),
      Buffer.concat([
        ...frames.slice(0, -1).map((f) => f.bytes),
        walOf(last.note.toString('utf8'), last.wal?.at as number, records),
      ]),
    );
    expect(await codeOf(() => openLog({ dir: forged, signer }))).toBe('LOG_CORRUPT');
    // Records damaged below the sync point, where the journal no longer holds them.
    const below = grown();
    flip(below, 'records', recordAt(SIZE - 10) + 20);
    expect(await codeOf(() => openLog({ dir: below, signer }))).toBe('LOG_CORRUPT');
  });

  /** `dir`'s journal with the length word of frame `i` pointing `past` bytes beyond the end of the file. */
  function lengthPastEnd(dir: string, i: number, past: number): void {
    const buf = fs.readFileSync(jPath(dir));
    const start = rawFrames(dir)
      .slice(0, i)
      .reduce((n, f) => n + f.bytes.length, 0);
    buf.writeUInt32BE(0x80000000 + (buf.length - start - 4 + past), start);
    fs.writeFileSync(jPath(dir), buf);
  }

  it('refuses an acknowledged frame whose length word points past the end while whole frames follow it', async () => {
    // Read as a torn tail, the damaged frame and every frame after it would be dropped, and the
    // node would sign sizes 850 (or 975) on again: a fork of what it acknowledged.
    const frames = rawFrames(grownTemplate);
    expect(frames.map((f) => openCp(f.note.toString('utf8')).size)).toEqual([0, SIZE, 725, 850, 975, GROWN]);
    for (const i of [3, 4]) {
      for (const past of [1, 100_000]) {
        const dir = grown();
        lengthPastEnd(dir, i, past);
        const before = lengths(dir);
        expect(await codeOf(() => openLog({ dir, signer }))).toBe('LOG_CORRUPT');
        expect(lengths(dir)).toEqual(before);
      }
    }
    // Also when the file ends with space written ahead (zeros).
    const ahead = grown();
    append(ahead, 'checkpoints', Buffer.alloc(70_000));
    lengthPastEnd(ahead, 3, 1);
    expect(await codeOf(() => openLog({ dir: ahead, signer }))).toBe('LOG_CORRUPT');
  });

  it('still drops a torn newest frame whose length word points past the end (nothing whole follows it)', async () => {
    const frames = rawFrames(grownTemplate);
    const last = frames.at(-1) as RawFrame;
    const start = fs.statSync(jPath(grownTemplate)).size - last.bytes.length;
    // Cut mid-frame, then space written ahead.
    const torn = grown();
    fs.truncateSync(jPath(torn), start + 300);
    append(torn, 'checkpoints', Buffer.alloc(70_000));
    await expectDropped(torn);
    // The newest frame whole but its length word one byte too long: the same bytes as a frame
    // torn before its digest's end, which no reader can tell apart (it is dropped).
    const long = grown();
    lengthPastEnd(long, frames.length - 1, 1);
    await expectDropped(long);
  });

  /** `dir`'s journal with the records of every frame above the sync point placed `delta` bytes from where they were. */
  function shiftFrames(dir: string, delta: number): void {
    const frames = rawFrames(dir);
    const bytes = frames.map((f) =>
      f.wal === undefined || openCp(f.note.toString('utf8')).size <= SIZE
        ? f.bytes
        : walOf(f.note.toString('utf8'), f.wal.at + delta, f.wal.records),
    );
    fs.writeFileSync(jPath(dir), Buffer.concat(bytes));
  }

  it("refuses write-ahead frames that do not start where the sync point's records end, before writing any", async () => {
    // The frames follow each other and their digests match; only where the first one starts is wrong.
    for (const delta of [1_000_000, 8, -1000]) {
      const dir = grown();
      shiftFrames(dir, delta);
      const records = fs.readFileSync(join(dir, 'records'));
      expect(await codeOf(() => openLog({ dir, signer }))).toBe('LOG_CORRUPT');
      // Nothing was written back: least of all over the records below the sync point.
      expect(fs.readFileSync(join(dir, 'records')).equals(records)).toBe(true);
    }
    // Unshifted, the same frames open.
    const dir = grown();
    shiftFrames(dir, 0);
    await expectRebuilt(dir);
  });

  it('drops the newest note frame when its records did not reach the disk (a log before write-ahead frames)', async () => {
    // Such a log fsynced records and frame together: after a power loss the frame may be whole
    // while the records it covers are cut short, read back as zeros, or as other bytes.
    const cut = oldFormat(grown());
    damageAbove(cut, () => Buffer.alloc(0));
    fs.truncateSync(join(cut, 'records'), fs.statSync(join(cut, 'records')).size - 100);
    await expectDropped(cut);
    const zeros = oldFormat(grown());
    damageRecords(zeros, recordAt(PREVIOUS + 60), (n) => Buffer.alloc(n));
    await expectDropped(zeros);
    const torn = oldFormat(grown());
    flip(torn, 'records', fs.statSync(join(torn, 'records')).size - 50);
    await expectDropped(torn);
    const missing = oldFormat(grown());
    damageAbove(missing, () => Buffer.alloc(0));
    fs.truncateSync(join(missing, 'records'), recordAt(PREVIOUS));
    await expectDropped(missing);
  });

  it('refuses records missing under any note frame but the newest (they were durable before the next frame)', async () => {
    const dir = oldFormat(grown());
    damageAbove(dir, () => Buffer.alloc(0));
    fs.truncateSync(join(dir, 'records'), recordAt(PREVIOUS - 10));
    expect(await codeOf(() => openLog({ dir, signer }))).toBe('LOG_CORRUPT');
    const flipped = oldFormat(grown());
    flip(flipped, 'records', recordAt(PREVIOUS - 10) + 20);
    expect(await codeOf(() => openLog({ dir: flipped, signer }))).toBe('LOG_CORRUPT');
  });

  it('refuses damaged records once the copy says they were durable, or under a note frame alone', async () => {
    // The copy is a sync point: `records` was fsynced through its size before it was written.
    const copied = grown();
    fs.writeFileSync(cpPath(copied), newestNote(copied));
    flip(copied, 'records', fs.statSync(join(copied, 'records')).size - 50);
    expect(await codeOf(() => openLog({ dir: copied, signer }))).toBe('LOG_CORRUPT');
    // A compacted journal holds one note frame, written after a sync point at its size.
    const alone = grown();
    fs.writeFileSync(jPath(alone), frame(newestNote(alone)));
    flip(alone, 'records', fs.statSync(join(alone, 'records')).size - 50);
    expect(await codeOf(() => openLog({ dir: alone, signer }))).toBe('LOG_CORRUPT');
  });

  it('compacts only behind a sync point: the journal keeps every batch since its note frame', async () => {
    const dir = join(root, `case-${dirs++}`);
    const log = await openLog({ dir, signer, fsync: false, journalLimit: 6000 });
    let n = 0;
    // Past a few compactions, and with batches after the last one.
    while (n < 30 || rawFrames(dir).length < 3) await log.append(makeRecord(n++));
    const note = log.checkpoint();
    await log.close();
    const frames = rawFrames(dir);
    expect(frames[0]?.wal).toBeUndefined();
    const base = openCp(frames[0]?.note.toString('utf8') as string).size;
    expect(base).toBeGreaterThan(0);
    expect(frames.slice(1).every((f) => f.wal !== undefined)).toBe(true);
    // Power loss with no usable copy: `records` holds the note frame's records (made durable
    // before the compaction), the journal every later batch.
    fs.rmSync(cpPath(dir));
    fs.truncateSync(join(dir, 'records'), (frames[1]?.wal?.at as number) + 7);
    fs.truncateSync(join(dir, 'offsets'), 0);
    const again = await openLog({ dir, signer });
    expect(again.size).toBe(n);
    expect(again.checkpoint()).toBe(note);
    expect(verifyReceipt(again.receiptByRequestId(`req-${n - 1}`), TRUST, { cache }).ok).toBe(true);
    await again.close();
  });
});

const otherSigner = createEd25519Signer(ORIGIN, new Uint8Array(32).fill(9));
const readCp = (dir: string) => openCp(newestNote(dir));

/** Replaces the newest frame of the journal with one of the same kind and records holding `note`. */
function setNewest(dir: string, note: string | Uint8Array): void {
  const frames = rawFrames(dir);
  const last = frames.at(-1) as RawFrame;
  const text = Buffer.from(note).toString('utf8');
  const replaced = last.wal === undefined ? frame(text) : walOf(text, last.wal.at, last.wal.records);
  fs.writeFileSync(jPath(dir), Buffer.concat([...frames.slice(0, -1).map((f) => f.bytes), replaced]));
}

function flip(dir: string, file: string, at: number): void {
  const path = join(dir, file);
  const bytes = fs.readFileSync(path);
  bytes[at] = (bytes[at] as number) ^ 0x01;
  fs.writeFileSync(path, bytes);
}

/** Damaged logs: each must refuse to open with LOG_CORRUPT. */
const CORRUPTIONS: { name: string; damage: (dir: string) => void }[] = [
  // A leaf hash no longer matches its record.
  { name: 'level-0: one bit of leaf 5 flipped', damage: (d) => flip(d, 'level-0', 5 * 32 + 3) },
  // An interior hash no longer matches its children.
  { name: 'level-1: one bit of node 100 flipped', damage: (d) => flip(d, 'level-1', 100 * 32) },
  // The in-memory upper levels are rebuilt, but their files must still match.
  { name: 'level-9: its only hash flipped', damage: (d) => flip(d, 'level-9', 31) },
  // Acknowledged hashes are missing.
  { name: 'level-3: cut below the checkpoint', damage: (d) => fs.truncateSync(join(d, 'level-3'), 32 * 10) },
  { name: 'level-2: deleted', damage: (d) => fs.rmSync(join(d, 'level-2')) },
  // A record's bytes changed: its leaf hash differs from level-0 (and from the signed root).
  { name: 'records: one byte of record 0 flipped', damage: (d) => flip(d, 'records', 4 + 40) },
  { name: 'records: a length prefix changed', damage: (d) => flip(d, 'records', 2) },
  { name: 'records: cut below the checkpoint', damage: (d) => fs.truncateSync(join(d, 'records'), 5000) },
  { name: 'offsets: an offset changed', damage: (d) => flip(d, 'offsets', 8 * 10 + 7) },
  { name: 'offsets: cut below the checkpoint', damage: (d) => fs.truncateSync(join(d, 'offsets'), 8 * 100) },
  // The newest journal frame is complete but does not verify: damage, never a reason to fall back
  // to the older frame (whose data is all present too), which would drop acknowledged records.
  {
    name: 'checkpoints: a signature byte of the newest frame changed',
    damage: (d) => {
      const note = newestNote(d);
      const i = note.length - 10;
      setNewest(d, note.slice(0, i) + (note[i] === 'A' ? 'B' : 'A') + note.slice(i + 1));
    },
  },
  {
    name: 'checkpoints: tree size of the newest frame edited (the signature no longer covers it)',
    damage: (d) => setNewest(d, newestNote(d).replace(`\n${SIZE}\n`, '\n599\n')),
  },
  {
    name: 'checkpoints: newest frame signed by another key',
    damage: (d) => setNewest(d, signCheckpoint(readCp(d), otherSigner)),
  },
  {
    name: 'checkpoints: newest frame of another origin',
    damage: (d) =>
      setNewest(
        d,
        signCheckpoint({ ...readCp(d), origin: 'other.log' }, createEd25519Signer('other.log', new Uint8Array(32))),
      ),
  },
  {
    name: 'checkpoints: newest frame validly signed, but for another root (a forked tree)',
    damage: (d) => setNewest(d, signCheckpoint({ ...readCp(d), rootHash: new Uint8Array(32) }, signer)),
  },
  {
    // Frames are written only once their data is durable: missing data is damage, not a crash.
    name: 'checkpoints: newest frame validly signed, larger than the data',
    damage: (d) => setNewest(d, signCheckpoint({ ...readCp(d), size: SIZE + 5 }, signer)),
  },
  { name: 'checkpoints: newest frame not a note', damage: (d) => setNewest(d, 'hello') },
  {
    name: 'checkpoints: a frame length changed (the tail is more than one torn frame)',
    damage: (d) => flip(d, 'checkpoints', 0),
  },
  {
    name: 'checkpoints: garbage after the newest frame',
    damage: (d) => append(d, 'checkpoints', Buffer.alloc(9000, 1)),
  },
  { name: 'checkpoints: emptied', damage: (d) => fs.writeFileSync(jPath(d), '') },
  // The copy is written only for committed notes, and marks the derived files durable through its size.
  {
    name: 'checkpoint: a valid copy ahead of the journal (acknowledged frames lost)',
    damage: (d) => fs.writeFileSync(cpPath(d), signCheckpoint({ ...readCp(d), size: SIZE + 5 }, signer)),
  },
  {
    name: 'checkpoint: a valid copy of an earlier size with another root (a forked tree)',
    damage: (d) =>
      fs.writeFileSync(
        cpPath(d),
        signCheckpoint({ ...readCp(d), size: SIZE - 100, rootHash: new Uint8Array(32) }, signer),
      ),
  },
  // Data without any checkpoint: a new log writes its empty checkpoint before any data.
  {
    name: 'checkpoints and checkpoint: deleted',
    damage: (d) => {
      fs.rmSync(cpPath(d));
      fs.rmSync(jPath(d));
    },
  },
];

describe('corruption is LOG_CORRUPT', () => {
  it.each(CORRUPTIONS)('$name', async ({ damage }) => {
    const dir = copy();
    damage(dir);
    expect(await codeOf(() => openLog({ dir, signer }))).toBe('LOG_CORRUPT');
    // The failed open released the directory.
    expect(fs.existsSync(join(dir, 'lock'))).toBe(false);
  });

  it('opens the undamaged template', async () => {
    const log = await openLog({ dir: copy(), signer });
    expect(log.size).toBe(SIZE);
    await log.close();
  });

  it('checks the stored checkpoint with an explicit verifier too', async () => {
    const dir = copy();
    const log = await openLog({ dir, signer, verifier });
    await log.close();
    const wrong = parseVerifierKey(
      (await import('@verity/protocol')).generateNoteKey(ORIGIN, new Uint8Array(32).fill(9)).verifierKey,
    );
    expect(await codeOf(() => openLog({ dir, signer, verifier: wrong }))).toBe('LOG_CORRUPT');
  });
});
