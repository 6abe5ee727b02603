import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Checkpoint,
  createMemoryTree,
  createVerifyCache,
  encodeRecord,
  fromHex,
  hashLeaf,
  type MemoryTree,
  openCheckpoint,
  parseVerifierKey,
  type Receipt,
  recordLeafHash,
  toHex,
  verifyConsistency,
  verifyReceipt,
} from '@verity/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { type NodeLog, openLog, parseTilePath, tilePath } from './index.js';
import { readFrames } from './journal.js';
import { codeOf, makeRecord, ORIGIN, signer, TRUST, VERIFIER_KEY } from './test-support/log-fixtures.js';

const root = fs.mkdtempSync(join(tmpdir(), 'verity-log-test-'));
let dirs = 0;
const newDir = () => join(root, `log-${dirs++}`);
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const verifier = parseVerifierKey(VERIFIER_KEY);
const cache = createVerifyCache();
const openCp = (note: string): Checkpoint => openCheckpoint(note, [verifier], ORIGIN).checkpoint;

function expectVerifies(receipt: Receipt): void {
  const result = verifyReceipt(receipt, TRUST, { cache });
  expect(result.ok ? 'ok' : result.code).toBe('ok');
}

/** Checks that the tree of checkpoint `b` extends that of checkpoint `a`, with the log's proof. */
function expectConsistent(log: NodeLog, a: Checkpoint, b: Checkpoint): void {
  verifyConsistency(a.size, b.size, log.consistencyProof(a.size, b.size).map(fromHex), a.rootHash, b.rootHash);
}

/** Appends records [from, to) in batches of the given sizes (cycled), mirroring them in `tree`. */
async function fill(log: NodeLog, tree: MemoryTree, from: number, to: number, batches: number[]): Promise<void> {
  let i = from;
  for (let b = 0; i < to; b++) {
    const n = Math.min(batches[b % batches.length] as number, to - i);
    const receipts = await Promise.all(Array.from({ length: n }, (_, j) => log.append(makeRecord(i + j))));
    for (let j = 0; j < n; j++) tree.append(recordLeafHash(makeRecord(i + j)));
    i += n;
    // Every checkpoint's root is the RFC 6962 root of the same leaves.
    const cp = openCp(log.checkpoint());
    expect(cp.size).toBe(i);
    expect(toHex(cp.rootHash)).toBe(toHex(tree.root(i)));
    expect(receipts.every((r) => r.checkpoint === log.checkpoint())).toBe(true);
  }
}

describe('openLog / append', () => {
  it('returns receipts that verify offline with the node key and address', async () => {
    const log = await openLog({ dir: newDir(), signer });
    expect(log.origin).toBe(ORIGIN);
    expect(log.size).toBe(0);
    // A new log starts with a signed checkpoint of the empty tree.
    expect(openCp(log.checkpoint()).size).toBe(0);
    const receipt = await log.append(makeRecord(0));
    expect(receipt.leafIndex).toBe(0);
    expect(log.size).toBe(1);
    expectVerifies(receipt);
    const more = await Promise.all([1, 2, 3, 4, 5].map((i) => log.append(makeRecord(i))));
    for (const r of more) expectVerifies(r);
    expect(more.map((r) => r.leafIndex)).toEqual([1, 2, 3, 4, 5]);
    // The same receipts by index and by requestId, against the latest checkpoint.
    for (let i = 0; i < 6; i++) {
      const byIndex = log.receiptByIndex(i);
      expect(byIndex.record).toEqual(makeRecord(i));
      expect(log.receiptByRequestId(`req-${i}`)).toEqual(byIndex);
      expect(byIndex.checkpoint).toBe(log.checkpoint());
      expectVerifies(byIndex);
    }
    await log.close();
  });

  it('refuses bad records, duplicate requestIds and unknown lookups with typed errors', async () => {
    const log = await openLog({ dir: newDir(), signer, fsync: false });
    await log.append(makeRecord(0));
    const { requestId: _, ...noId } = makeRecord(1);
    expect(await codeOf(() => log.append(noId as never))).toBe('RECORD_INVALID');
    expect(await codeOf(() => log.append({ ...makeRecord(1), node: '0x1234' }))).toBe('RECORD_INVALID');
    // Committed duplicate, and a duplicate of a record still waiting in the queue.
    expect(log.hasRequestId('req-0')).toBe(true);
    expect(await codeOf(() => log.append(makeRecord(0)))).toBe('REQUEST_ID_TAKEN');
    const first = log.append(makeRecord(7));
    expect(log.hasRequestId('req-7')).toBe(true);
    expect(await codeOf(() => log.append({ ...makeRecord(8), requestId: 'req-7' }))).toBe('REQUEST_ID_TAKEN');
    await first;
    expect(log.hasRequestId('req-8')).toBe(false);
    expect(await codeOf(() => log.receiptByRequestId('req-404'))).toBe('RECEIPT_NOT_FOUND');
    expect(await codeOf(() => log.receiptByRequestId(''))).toBe('RECEIPT_NOT_FOUND');
    expect(await codeOf(() => log.receiptByIndex(2))).toBe('MERKLE_INDEX_OUT_OF_RANGE');
    expect(await codeOf(() => log.receiptByIndex(-1))).toBe('MERKLE_INDEX_OUT_OF_RANGE');
    expect(await codeOf(() => log.inclusionProof(0, 3))).toBe('MERKLE_INDEX_OUT_OF_RANGE');
    expect(await codeOf(() => log.inclusionProof(2, 2))).toBe('MERKLE_INDEX_OUT_OF_RANGE');
    expect(await codeOf(() => log.consistencyProof(1, 3))).toBe('MERKLE_INDEX_OUT_OF_RANGE');
    expect(await codeOf(() => log.consistencyProof(2, 1))).toBe('MERKLE_INDEX_OUT_OF_RANGE');
    expect(await codeOf(() => log.consistencyProof(-1))).toBe('INVALID_ARGUMENT');
    expect(log.size).toBe(2);
    await log.close();
  });
});

describe('RFC 6962 trees, proofs and tiles', () => {
  // Batches of 1, 2, 3, … 41 records: checkpoints at many sizes, across 256-leaf block edges.
  const N = 1100;
  const tree = createMemoryTree();
  let log: NodeLog;
  const dir = newDir();

  it('has the roots of createMemoryTree at every checkpoint', async () => {
    log = await openLog({ dir, signer, fsync: false });
    await fill(
      log,
      tree,
      0,
      N,
      Array.from({ length: 41 }, (_, i) => i + 1),
    );
    expect(log.size).toBe(N);
  });

  it('gives the inclusion and consistency proofs of createMemoryTree for every size', () => {
    const hex = (proof: Uint8Array[]) => proof.map(toHex);
    for (let size = 1; size <= N; size++) {
      const indices = size <= 40 ? Array.from({ length: size }, (_, i) => i) : [0, 1, size - 1, size - 2, size >> 1];
      indices.push((size * 7919) % size, (size * 104729) % size);
      for (const i of indices) expect(log.inclusionProof(i, size)).toEqual(hex(tree.inclusionProof(i, size)));
      for (const size1 of [0, 1, size >> 1, size - 1, size, (size * 31) % (size + 1)]) {
        expect(log.consistencyProof(size1, size)).toEqual(hex(tree.consistencyProof(size1, size)));
      }
    }
    expect(log.inclusionProof(5)).toEqual(hex(tree.inclusionProof(5, N)));
    expect(log.consistencyProof(77)).toEqual(hex(tree.consistencyProof(77, N)));
  });

  it('serves tiles equal to the subtree hashes, and entry bundles of the records', async () => {
    const hashes = (level: number, start: number, count: number) =>
      toHex(Buffer.concat(Array.from({ length: count }, (_, j) => tree.subtree(level, start + j))));
    // Level 0: 4 full tiles and a partial one of width 1100 − 1024 = 76.
    for (let t = 0; t < 4; t++) expect(toHex(log.tile(0, t))).toBe(hashes(0, t * 256, 256));
    expect(toHex(log.tile(0, 4, 76))).toBe(hashes(0, 1024, 76));
    expect(toHex(log.tile(0, 4, 10))).toBe(hashes(0, 1024, 10));
    // Level 1 holds tree level 8: ⌊1100 / 256⌋ = 4 hashes so far.
    expect(toHex(log.tile(1, 0, 4))).toBe(hashes(8, 0, 4));
    for (const [level, index, width] of [
      [0, 4, undefined],
      [0, 4, 77],
      [0, 5, 1],
      [1, 0, 5],
      [1, 0, undefined],
      [2, 0, 1],
    ] as const) {
      expect(await codeOf(() => log.tile(level, index, width)), `${level}/${index}/${width}`).toBe('NOT_FOUND');
    }
    expect(await codeOf(() => log.tile(64, 0))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => log.tile(0, 0, 0))).toBe('INVALID_ARGUMENT');
    // Entry bundles: u16 length ‖ record; each entry hashes to the level-0 tile's hash.
    const check = (bundle: Uint8Array, first: number, width: number) => {
      const view = Buffer.from(bundle);
      let p = 0;
      for (let j = 0; j < width; j++) {
        const len = view.readUInt16BE(p);
        const entry = view.subarray(p + 2, p + 2 + len);
        expect(toHex(entry)).toBe(toHex(encodeRecord(makeRecord(first + j))));
        expect(toHex(hashLeaf(entry))).toBe(toHex(tree.subtree(0, first + j)));
        p += 2 + len;
      }
      expect(p).toBe(view.length);
    };
    check(log.entryBundle(0), 0, 256);
    check(log.entryBundle(3), 768, 256);
    check(log.entryBundle(4, 76), 1024, 76);
    check(log.entryBundle(2, 3), 512, 3);
    expect(await codeOf(() => log.entryBundle(4))).toBe('NOT_FOUND');
    expect(await codeOf(() => log.entryBundle(4, 77))).toBe('NOT_FOUND');
    // A server maps a path to its resource with parseTilePath.
    const p = parseTilePath(tilePath(0, 4, 76));
    expect(p.kind === 'hash' && toHex(log.tile(p.level, p.index, p.width))).toBe(hashes(0, 1024, 76));
  });

  it('keeps all of it across close and reopen', async () => {
    const note = log.checkpoint();
    await log.close();
    log = await openLog({ dir, signer, fsync: false });
    expect(log.size).toBe(N);
    expect(log.checkpoint()).toBe(note);
    for (const i of [0, 1, 255, 256, 511, 777, 1023, 1024, N - 1]) {
      const r = log.receiptByRequestId(`req-${i}`);
      expect(r.leafIndex).toBe(i);
      expect(r.checkpoint).toBe(note);
      expect(r.inclusionProof).toEqual(tree.inclusionProof(i, N).map(toHex));
      expectVerifies(r);
    }
    expect(log.consistencyProof(333, 1000)).toEqual(tree.consistencyProof(333, 1000).map(toHex));
    expect(toHex(log.tile(0, 2))).toBe(
      toHex(Buffer.concat(Array.from({ length: 256 }, (_, j) => tree.subtree(0, 512 + j)))),
    );
    // A requestId from before the reopen is still taken; appends go on from there.
    expect(await codeOf(() => log.append(makeRecord(5)))).toBe('REQUEST_ID_TAKEN');
    const before = openCp(log.checkpoint());
    await fill(log, tree, N, N + 300, [100]);
    expectConsistent(log, before, openCp(log.checkpoint()));
    await log.close();
  });
});

describe('tiles of a 70,000-record tree (the tlog-tiles example)', () => {
  it('has 273 full level-0 tiles, a partial of width 112, a full and a partial (17) level-1 tile, and level 2 of width 1', async () => {
    const log = await openLog({ dir: newDir(), signer, fsync: false });
    const tree = createMemoryTree();
    const N = 70_000;
    for (let i = 0; i < N; i += 4096) {
      const n = Math.min(4096, N - i);
      await Promise.all(Array.from({ length: n }, (_, j) => log.append(makeRecord(i + j, 't'))));
    }
    for (let i = 0; i < N; i++) tree.append(recordLeafHash(makeRecord(i, 't')));
    expect(toHex(openCp(log.checkpoint()).rootHash)).toBe(toHex(tree.root()));
    const hashes = (level: number, start: number, count: number) =>
      toHex(Buffer.concat(Array.from({ length: count }, (_, j) => tree.subtree(level, start + j))));
    expect(toHex(log.tile(0, 272))).toBe(hashes(0, 272 * 256, 256));
    expect(toHex(log.tile(0, 273, 112))).toBe(hashes(0, 273 * 256, 112));
    expect(toHex(log.tile(1, 0))).toBe(hashes(8, 0, 256));
    expect(toHex(log.tile(1, 1, 17))).toBe(hashes(8, 256, 17));
    expect(toHex(log.tile(2, 0, 1))).toBe(hashes(16, 0, 1));
    for (const [level, index, width] of [
      [0, 273, undefined],
      [0, 273, 113],
      [1, 1, 18],
      [2, 0, 2],
      [3, 0, 1],
    ] as const) {
      expect(await codeOf(() => log.tile(level, index, width))).toBe('NOT_FOUND');
    }
    for (const i of [0, 12_345, 65_535, 65_536, N - 1]) {
      expect(log.inclusionProof(i)).toEqual(tree.inclusionProof(i).map(toHex));
    }
    await log.close();
  }, 60_000);

  it('represents a tree of 256 as a full level-0 tile and a level-1 tile of width 1', async () => {
    const log = await openLog({ dir: newDir(), signer, fsync: false });
    await Promise.all(Array.from({ length: 256 }, (_, i) => log.append(makeRecord(i))));
    expect(log.tile(0, 0).length).toBe(256 * 32);
    expect(toHex(log.tile(1, 0, 1))).toBe(toHex(openCp(log.checkpoint()).rootHash));
    expect(await codeOf(() => log.tile(0, 1, 1))).toBe('NOT_FOUND');
    await log.close();
  });
});

describe('group commit', () => {
  it('covers 1000 concurrent appends with far fewer checkpoints, all consistent', async () => {
    const log = await openLog({ dir: newDir(), signer });
    const receipts = await Promise.all(Array.from({ length: 1000 }, (_, i) => log.append(makeRecord(i))));
    const checkpoints = new Set(receipts.map((r) => r.checkpoint));
    expect(checkpoints.size).toBeLessThan(10);
    for (const r of receipts) expectVerifies(r);
    expect(new Set(receipts.map((r) => r.leafIndex)).size).toBe(1000);
    await log.close();
  });

  it('batches callers that each wait for their previous receipt', async () => {
    const log = await openLog({ dir: newDir(), signer });
    const receipts: Receipt[] = [];
    let next = 0;
    const worker = async () => {
      while (next < 1000) receipts.push(await log.append(makeRecord(next++)));
    };
    await Promise.all(Array.from({ length: 50 }, worker));
    const sizes = [...new Set(receipts.map((r) => r.checkpoint))].map(openCp).sort((a, b) => a.size - b.size);
    // 50 callers → batches of up to 50 records: ~20 checkpoints, not 1000.
    expect(sizes.length).toBeLessThan(100);
    for (const r of receipts) expectVerifies(r);
    // Every checkpoint extends the one before it: the log never forks.
    for (let i = 1; i < sizes.length; i++) expectConsistent(log, sizes[i - 1] as Checkpoint, sizes[i] as Checkpoint);
    await log.close();
  });

  it('respects maxBatch and commits a lone append at once', async () => {
    const log = await openLog({ dir: newDir(), signer, maxBatch: 7 });
    const receipts = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(makeRecord(i))));
    const sizes = [...new Set(receipts.map((r) => openCp(r.checkpoint).size))].sort((a, b) => a - b);
    expect(sizes.length).toBe(Math.ceil(100 / 7));
    for (const [i, s] of sizes.entries()) expect(s - (sizes[i - 1] ?? 0)).toBeLessThanOrEqual(7);
    const lone = await log.append(makeRecord(100));
    expect(openCp(lone.checkpoint).size).toBe(101);
    await log.close();
  });

  it('copies the last acknowledged checkpoint to `checkpoint` soon after, with no batch after it', async () => {
    // The copy is the sync point (the durability rule) and marks a note acknowledged: it must not
    // wait for the next batch or for close.
    const dir = newDir();
    const log = await openLog({ dir, signer });
    await log.append(makeRecord(0));
    const last = await log.append(makeRecord(1));
    const copied = () => {
      try {
        return fs.readFileSync(join(dir, 'checkpoint'), 'utf8');
      } catch {
        return '';
      }
    };
    await expect.poll(copied, { timeout: 30_000, interval: 50 }).toBe(last.checkpoint);
    await log.close();
  });
});

describe('failures and shutdown', () => {
  it.each(['records', 'offsets', 'level-0', 'level-2', 'checkpoint'])(
    'fails a whole batch when writing %s fails, then recovers',
    async (failing) => {
      const dir = newDir();
      let failNext = false;
      const log = await openLog({
        dir,
        signer,
        beforeWrite: (file) => {
          if (failNext && file === failing) {
            failNext = false;
            throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
          }
        },
      });
      await Promise.all(Array.from({ length: 10 }, (_, i) => log.append(makeRecord(i))));
      const beforeNote = log.checkpoint();
      const before = openCp(beforeNote);
      failNext = true;
      const failed = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => log.append(makeRecord(100 + i))));
      for (const f of failed) {
        expect(f.status).toBe('rejected');
        expect((f as PromiseRejectedResult).reason).toMatchObject({ name: 'VerityError', code: 'INTERNAL' });
      }
      expect(log.size).toBe(10);
      expect(log.checkpoint()).toBe(beforeNote);
      expect(await codeOf(() => log.receiptByRequestId('req-100'))).toBe('RECEIPT_NOT_FOUND');
      // The same records can be appended again; the next checkpoint extends the last good one.
      const retried = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(makeRecord(100 + i))));
      for (const r of retried) expectVerifies(r);
      expect(retried[0]?.leafIndex).toBe(10);
      expectConsistent(log, before, openCp(log.checkpoint()));
      await log.close();
      // On disk, nothing of the failed batch is left behind.
      const again = await openLog({ dir, signer });
      expect(again.size).toBe(30);
      expect(again.receiptByRequestId('req-119').leafIndex).toBe(29);
      await again.close();
    },
  );

  it('compacts the checkpoint journal past journalLimit, and keeps the checkpoint copy current', async () => {
    const dir = newDir();
    const journal = join(dir, 'checkpoints');
    const log = await openLog({ dir, signer, fsync: false, journalLimit: 2000 });
    let maxSize = 0;
    const notes: string[] = [];
    for (let i = 0; i < 60; i++) {
      notes.push((await log.append(makeRecord(i))).checkpoint);
      maxSize = Math.max(maxSize, fs.statSync(journal).size);
    }
    // One batch per append: ~60 frames of ~200 bytes, but the journal never holds many.
    expect(new Set(notes).size).toBe(60);
    expect(maxSize).toBeLessThan(2000 + 1000);
    expect(fs.existsSync(join(dir, 'checkpoints.new'))).toBe(false);
    const note = log.checkpoint();
    await log.close();
    expect(fs.readFileSync(join(dir, 'checkpoint'), 'utf8')).toBe(note);
    const again = await openLog({ dir, signer });
    expect(again.size).toBe(60);
    expect(again.checkpoint()).toBe(note);
    const more = await again.append(makeRecord(60));
    expectConsistent(again, openCp(note), openCp(more.checkpoint));
    await again.close();
  });

  it('does not compact the journal while the copy (the sync point) cannot be written', async () => {
    const dir = newDir();
    const log = await openLog({ dir, signer, fsync: false, journalLimit: 2000 });
    // The copy's temp file cannot be created: no sync point, so no frame may leave the journal.
    fs.mkdirSync(join(dir, 'checkpoint.tmp'));
    for (let i = 0; i < 20; i++) await log.append(makeRecord(i));
    const frames = readFrames(fs.readFileSync(join(dir, 'checkpoints')));
    expect(frames.length).toBe(21);
    expect(frames[0]?.records).toBeUndefined();
    expect(frames.slice(1).every((f) => f.records?.count === 1)).toBe(true);
    fs.rmdirSync(join(dir, 'checkpoint.tmp'));
    // Once the copy can be written again, the journal is compacted behind it (after the batch
    // of 20 or of 21, whichever the retry follows).
    const note = (await log.append(makeRecord(20))).checkpoint;
    await log.close();
    const after = readFrames(fs.readFileSync(join(dir, 'checkpoints')));
    expect(after.length).toBeLessThanOrEqual(2);
    expect(after[0]?.records).toBeUndefined();
    expect(openCp(after[0]?.note as string).size).toBeGreaterThanOrEqual(20);
    expect(after.at(-1)?.note).toBe(note);
    expect(fs.readFileSync(join(dir, 'checkpoint'), 'utf8')).toBe(note);
    const again = await openLog({ dir, signer });
    expect(again.size).toBe(21);
    await again.close();
  });

  it('flushes queued appends on close, then refuses work', async () => {
    const dir = newDir();
    const log = await openLog({ dir, signer });
    const pending = Array.from({ length: 50 }, (_, i) => log.append(makeRecord(i)));
    await log.close();
    const receipts = await Promise.all(pending);
    for (const r of receipts) expectVerifies(r);
    expect(await codeOf(() => log.append(makeRecord(50)))).toBe('SHUTTING_DOWN');
    expect(await codeOf(() => log.checkpoint())).toBe('SHUTTING_DOWN');
    expect(await codeOf(() => log.receiptByIndex(0))).toBe('SHUTTING_DOWN');
    await log.close(); // idempotent
    // Close cut the zeros written ahead of the records and the journal.
    const offsets = fs.readFileSync(join(dir, 'offsets'));
    const records = fs.readFileSync(join(dir, 'records'));
    const last = offsets.readUInt32BE(offsets.length - 4);
    expect(records.length).toBe(last + 4 + records.readUInt32BE(last));
    const journal = fs.readFileSync(join(dir, 'checkpoints'));
    expect(readFrames(journal).at(-1)?.end).toBe(journal.length);
    const again = await openLog({ dir, signer });
    expect(again.size).toBe(50);
    await again.close();
  });

  it('lets one writer hold a directory at a time', async () => {
    const dir = newDir();
    const log = await openLog({ dir, signer });
    expect(await codeOf(() => openLog({ dir, signer }))).toBe('CONFIG_INVALID');
    await log.close();
    const again = await openLog({ dir, signer });
    await again.close();
  });

  it('refuses bad options', async () => {
    expect(await codeOf(() => openLog({ dir: '', signer }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => openLog({ dir: newDir(), signer, maxBatch: 0 }))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => openLog({ dir: newDir(), signer: {} as never }))).toBe('INVALID_ARGUMENT');
  });
});
