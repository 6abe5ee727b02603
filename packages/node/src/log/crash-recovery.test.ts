/**
 * Simulated crashes (files holding bytes beyond the checkpoint, torn tails, a batch that died
 * before its checkpoint) reopen to the checkpointed state and carry on consistently; damaged
 * files or checkpoints are `LOG_CORRUPT`, each as a named fixture.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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

  it('recovers from a batch that wrote its data but died before its checkpoint', async () => {
    const dir = copy();
    let die = true;
    const log = await openLog({
      dir,
      signer,
      beforeWrite: (file) => {
        if (die && file === 'checkpoint') throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
      },
    });
    const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => log.append(makeRecord(1000 + i))));
    expect(results.every((r) => r.status === 'rejected')).toBe(true);
    die = false;
    await log.close();
    // Files now hold 40 unacknowledged records beyond the checkpoint.
    expect(fs.statSync(join(dir, 'offsets')).size).toBe((SIZE + 40) * 8);
    await (await expectRecovers(dir)).close();
  });

  it('ignores a half-written checkpoint.tmp', async () => {
    const dir = copy();
    fs.writeFileSync(join(dir, 'checkpoint.tmp'), 'log-test.verity.local/log\n6');
    await (await expectRecovers(dir)).close();
    expect(fs.existsSync(join(dir, 'checkpoint.tmp'))).toBe(false);
  });

  it('takes over the lock of a process that is gone', async () => {
    const dir = copy();
    fs.writeFileSync(join(dir, 'lock'), '2147483646\n'); // no such pid
    await (await expectRecovers(dir)).close();
  });
});

const otherSigner = createEd25519Signer(ORIGIN, new Uint8Array(32).fill(9));
const cpPath = (dir: string) => join(dir, 'checkpoint');
const readCp = (dir: string) => openCp(fs.readFileSync(cpPath(dir), 'utf8'));

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
  // The checkpoint's signature no longer verifies.
  {
    name: 'checkpoint: a signature byte changed',
    damage: (d) => {
      const note = fs.readFileSync(cpPath(d), 'utf8');
      const i = note.length - 10;
      fs.writeFileSync(cpPath(d), note.slice(0, i) + (note[i] === 'A' ? 'B' : 'A') + note.slice(i + 1));
    },
  },
  {
    name: 'checkpoint: tree size edited (the signature no longer covers it)',
    damage: (d) => fs.writeFileSync(cpPath(d), fs.readFileSync(cpPath(d), 'utf8').replace(`\n${SIZE}\n`, '\n599\n')),
  },
  {
    name: 'checkpoint: signed by another key',
    damage: (d) => fs.writeFileSync(cpPath(d), signCheckpoint(readCp(d), otherSigner)),
  },
  {
    name: 'checkpoint: of another origin',
    damage: (d) =>
      fs.writeFileSync(
        cpPath(d),
        signCheckpoint({ ...readCp(d), origin: 'other.log' }, createEd25519Signer('other.log', new Uint8Array(32))),
      ),
  },
  {
    name: 'checkpoint: validly signed, but for another root (a forked tree)',
    damage: (d) => fs.writeFileSync(cpPath(d), signCheckpoint({ ...readCp(d), rootHash: new Uint8Array(32) }, signer)),
  },
  {
    name: 'checkpoint: validly signed, larger than the data',
    damage: (d) => fs.writeFileSync(cpPath(d), signCheckpoint({ ...readCp(d), size: SIZE + 5 }, signer)),
  },
  { name: 'checkpoint: not a note', damage: (d) => fs.writeFileSync(cpPath(d), 'hello') },
  // Data without any checkpoint: a new log writes its empty checkpoint before any data.
  { name: 'checkpoint: deleted', damage: (d) => fs.rmSync(cpPath(d)) },
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
