/**
 * The node's durable log, as ratios against baselines measured in the same run (docs/design.md §5:
 * ≥ 100,000 records/s appended durably; inclusion proofs ≥ 20,000/s at 10 M records).
 *
 *   npm run build && node --expose-gc bench/dist/log.js [records=1000000] [concurrency=16384]
 *
 * Rows:
 * - durable append: `log.append` from `concurrency` concurrent callers, fsync on, every append
 *   awaited until its receipt (record validated and encoded, leaf hashed, written, fsynced, tree
 *   updated, checkpoint signed and replaced atomically, inclusion proof computed). Baseline: raw
 *   `fs.writeSync` + `fsyncSync` of the same record bytes (u32 length ‖ record) into one file,
 *   in the same batch sizes the log formed — the floor for any durable group commit here.
 * - same, with records validated beforehand (`parseRecord`), as an executor holding parsed
 *   records would append them.
 * - same, from only 64 callers: small batches, where fsync and signing latency dominate.
 * - inclusion proof: `log.inclusionProof(i)` for random i in the log of `records` records,
 *   reopened from disk (low tree levels read from the level files, upper ones in memory).
 *   Baseline: the protocol's all-in-memory tree (`createMemoryTree`) over the same leaves.
 * - receipt by requestId: index lookup, record read and decode, proof.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openLog } from '@verity/node';
import {
  createEd25519Signer,
  createMemoryTree,
  encodeRecord,
  generateNoteKey,
  type InferenceRecord,
  openCheckpoint,
  parseRecord,
  parseVerifierKey,
  type Receipt,
  recordLeafHash,
  toHex,
} from '@verity/protocol';
import { opsPerSecond } from './measure.js';

const RECORDS = Number(process.argv[2] ?? 1_000_000);
const CONCURRENCY = Number(process.argv[3] ?? 16_384);
const APPEND_RECORDS = Math.min(RECORDS, 400_000);

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const ORIGIN = 'bench.verity/log';
const seed = new Uint8Array(32).fill(1);
const signer = createEd25519Signer(ORIGIN, seed);
const verifier = parseVerifierKey(generateNoteKey(ORIGIN, seed).verifierKey);
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const inputDigest = hex('in');
const outputDigest = hex('out');
const paramsDigest = hex('{}');

function makeRecord(i: number, prefix: string): InferenceRecord {
  return {
    version: 1,
    kind: 'onnx',
    mode: 'signed',
    model: 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea',
    runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    inputDigest,
    outputDigest,
    paramsDigest,
    requestId: `${prefix}-${i.toString(36).padStart(8, '0')}`,
    timestamp: 1_764_000_000_000 + i,
    node: '0x9858EfFD232B4033E47d90003D41EC34EcaEda94',
  };
}

function tempDir(name: string): string {
  return fs.mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), `verity-bench-${name}-`));
}

interface AppendRun {
  readonly recordsPerSec: number;
  readonly batches: number[];
  readonly bytes: Uint8Array[];
}

/** `total` appends from `concurrency` callers, each awaiting its receipt before the next. */
async function runAppends(total: number, concurrency: number, prevalidate: boolean): Promise<AppendRun> {
  const dir = tempDir('append');
  const log = await openLog({ dir, signer });
  const prefix = prevalidate ? 'p' : 'r';
  const records = prevalidate ? Array.from({ length: total }, (_, i) => parseRecord(makeRecord(i, prefix))) : [];
  const batches = new Map<string, number>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const receipt: Receipt = await log.append(prevalidate ? (records[i] as InferenceRecord) : makeRecord(i, prefix));
      batches.set(receipt.checkpoint, (batches.get(receipt.checkpoint) ?? 0) + 1);
    }
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const seconds = (performance.now() - start) / 1000;
  await log.close();
  // The batch sizes in commit order (checkpoint sizes increase).
  const sizes = [...batches.entries()]
    .map(([note, n]) => [openCheckpoint(note, [verifier]).checkpoint.size, n] as const)
    .sort((a, b) => a[0] - b[0])
    .map(([, n]) => n);
  const bytes = prevalidate ? [] : Array.from({ length: total }, (_, i) => encodeRecord(makeRecord(i, prefix)));
  fs.rmSync(dir, { recursive: true, force: true });
  return { recordsPerSec: total / seconds, batches: sizes, bytes };
}

/** Baseline: the same bytes written with writeSync + fsyncSync, one write + fsync per batch. */
function rawBaseline(batches: number[], records: Uint8Array[]): number {
  const dir = tempDir('raw');
  const fd = fs.openSync(join(dir, 'records'), 'w');
  let i = 0;
  const start = performance.now();
  for (const n of batches) {
    let total = 0;
    for (let j = i; j < i + n; j++) total += 4 + (records[j] as Uint8Array).length;
    const buf = Buffer.allocUnsafe(total);
    let o = 0;
    for (let j = i; j < i + n; j++) {
      const r = records[j] as Uint8Array;
      buf.writeUInt32BE(r.length, o);
      buf.set(r, o + 4);
      o += 4 + r.length;
    }
    fs.writeSync(fd, buf);
    fs.fsyncSync(fd);
    i += n;
  }
  const seconds = (performance.now() - start) / 1000;
  fs.closeSync(fd);
  fs.rmSync(dir, { recursive: true, force: true });
  return i / seconds;
}

console.log(`Verity log bench — node ${process.version}, ${new Date().toISOString()}`);
console.log(
  `append: ${fmt(APPEND_RECORDS)} records, ${fmt(CONCURRENCY)} concurrent callers; proofs: ${fmt(RECORDS)} records\n`,
);

/** A log of `records` records (built with fsync off: only its shape matters here), reopened from disk. */
async function proofBench(records: number) {
  const dir = tempDir('proofs');
  {
    const log = await openLog({ dir, signer, fsync: false });
    for (let i = 0; i < records; i += 4096) {
      const n = Math.min(4096, records - i);
      await Promise.all(Array.from({ length: n }, (_, j) => log.append(makeRecord(i + j, 'q'))));
    }
    await log.close();
  }
  const heapBefore = await heap();
  const openStart = performance.now();
  const log = await openLog({ dir, signer });
  const openSeconds = (performance.now() - openStart) / 1000;
  const bytesPerRecord = ((await heap()) - heapBefore) / records;
  const tree = createMemoryTree();
  for (let i = 0; i < records; i++) tree.append(recordLeafHash(makeRecord(i, 'q')));
  let x = 12345;
  const rand = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % records;
  };
  const proofRate = opsPerSecond(() => log.inclusionProof(rand()));
  const memoryProofRate = opsPerSecond(() => tree.inclusionProof(rand()).map(toHex));
  const receiptRate = opsPerSecond(() => log.receiptByRequestId(`q-${rand().toString(36).padStart(8, '0')}`));
  const memoryReceiptRate = opsPerSecond(() => {
    const i = rand();
    return { record: parseRecord(makeRecord(i, 'q')), proof: tree.inclusionProof(i).map(toHex) };
  });
  await log.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { openSeconds, bytesPerRecord, proofRate, memoryProofRate, receiptRate, memoryReceiptRate };
}

const gc = (globalThis as { gc?: () => void }).gc;
async function heap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const { openSeconds, bytesPerRecord, proofRate, memoryProofRate, receiptRate, memoryReceiptRate } =
  await proofBench(RECORDS);
await heap(); // drop the proof bench's trees before timing appends
const plain = await runAppends(APPEND_RECORDS, CONCURRENCY, false);
const raw = rawBaseline(plain.batches, plain.bytes);
const pre = await runAppends(APPEND_RECORDS, CONCURRENCY, true);
const few = await runAppends(Math.min(APPEND_RECORDS, 50_000), 64, false);
const fewRaw = rawBaseline(few.batches, few.bytes);
const fewBatch = few.batches.reduce((a, b) => a + b, 0) / few.batches.length;
const meanBatch = plain.batches.reduce((a, b) => a + b, 0) / plain.batches.length;

const rows: [string, number, string, number][] = [
  [
    `durable append (fsync, mean batch ${fmt(meanBatch)})`,
    plain.recordsPerSec,
    'writeSync + fsyncSync, same bytes and batches',
    raw,
  ],
  ['durable append, records pre-validated', pre.recordsPerSec, 'writeSync + fsyncSync, same bytes and batches', raw],
  [
    `durable append, 64 callers (mean batch ${fmt(fewBatch)})`,
    few.recordsPerSec,
    'writeSync + fsyncSync, same bytes and batches',
    fewRaw,
  ],
  [
    `inclusion proof, ${fmt(RECORDS)} records on disk`,
    proofRate,
    'createMemoryTree inclusion proof + hex',
    memoryProofRate,
  ],
  ['receipt by requestId (read + decode + proof)', receiptRate, 'parseRecord + in-memory proof', memoryReceiptRate],
];
console.log('| operation | ops/s | baseline | baseline ops/s | ratio |');
console.log('|---|---:|---|---:|---:|');
for (const [a, av, b, bv] of rows) console.log(`| ${a} | ${fmt(av)} | ${b} | ${fmt(bv)} | ${(av / bv).toFixed(2)}× |`);
console.log(
  `\nopen (verify + replay) of ${fmt(RECORDS)} records: ${openSeconds.toFixed(2)} s; ` +
    `memory held by the open log: ${bytesPerRecord.toFixed(1)} bytes/record${gc ? '' : ' (run with --expose-gc for a precise figure)'}`,
);
console.log(
  `append target ≥ 100,000 records/s: ${plain.recordsPerSec >= 100_000 ? 'met' : 'NOT met'} (${fmt(plain.recordsPerSec)}/s)`,
);
console.log(
  `inclusion proof target ≥ 20,000/s: ${proofRate >= 20_000 ? 'met' : 'NOT met'} (${fmt(proofRate)}/s at ${fmt(RECORDS)} records)`,
);
