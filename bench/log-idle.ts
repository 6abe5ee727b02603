/**
 * A lone durable append at idle (issue 14: "p50 overhead at idle ≤ one fsync"): the latency of
 * `log.append` awaited one at a time with fsync on, against one `fdatasync` round of the same
 * bytes written at the end of a file in the same directory (the floor for any durable append),
 * interleaved so the machine's load weighs on both alike. Prints p50 and p90 and their ratio.
 *
 *   npm run build && node bench/dist/log-idle.js [appends=300]
 *
 * With `LOG_BASELINE=<another checkout>` (built), that checkout's log is timed in the same loop
 * too, for a before/after in one run under the same load.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFastSigner, type NodeLog, type OpenLogOptions, openLog } from '@verity/node';
import { encodeRecord, generateNoteKey, type InferenceRecord } from '@verity/protocol';

const N = Number(process.argv[2] ?? 300);
// The node's signer (node:crypto), as startNode uses it.
const signer = createFastSigner(generateNoteKey('bench.verity/log', new Uint8Array(32).fill(1)).signerKey);
const hex = (s: string) => createHash('sha256').update(s).digest('hex');

function makeRecord(i: number): InferenceRecord {
  return {
    version: 1,
    kind: 'onnx',
    mode: 'signed',
    model: 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea',
    runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    inputDigest: hex(`in${i}`),
    outputDigest: hex(`out${i}`),
    paramsDigest: hex('{}'),
    requestId: `idle-${i.toString(36).padStart(8, '0')}`,
    timestamp: 1_764_000_000_000 + i,
    node: '0x9858EfFD232B4033E47d90003D41EC34EcaEda94',
  };
}

const dir = fs.mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), 'verity-bench-idle-'));
try {
  const log = await openLog({ dir: join(dir, 'log'), signer });
  const baselineDir = process.env.LOG_BASELINE;
  const baseline =
    baselineDir === undefined
      ? undefined
      : await (
          (await import(join(baselineDir, 'packages/node/dist/index.js'))) as {
            openLog: (o: OpenLogOptions) => Promise<NodeLog>;
          }
        ).openLog({ dir: join(dir, 'baseline'), signer });
  const baselineMs: number[] = [];
  const nosync = await openLog({ dir: join(dir, 'nosync'), signer, fsync: false });
  const raw = fs.openSync(join(dir, 'raw'), 'w');
  const raw2 = fs.openSync(join(dir, 'raw2'), 'w');
  const bytes = encodeRecord(makeRecord(0));
  let at = 0;
  const datasync = (fd: number) =>
    new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  const appendMs: number[] = [];
  const fsyncMs: number[] = [];
  const twoMs: number[] = [];
  const cpuMs: number[] = [];
  for (let i = 0; i < N + 20; i++) {
    let t = performance.now();
    await log.append(makeRecord(i));
    const a = performance.now() - t;
    t = performance.now();
    fs.writeSync(raw, bytes, 0, bytes.length, at);
    at += bytes.length;
    await datasync(raw);
    const f = performance.now() - t;
    t = performance.now();
    fs.writeSync(raw, bytes, 0, bytes.length, at);
    fs.writeSync(raw2, bytes, 0, bytes.length, at);
    at += bytes.length;
    await Promise.all([datasync(raw), datasync(raw2)]);
    const two = performance.now() - t;
    t = performance.now();
    await nosync.append(makeRecord(i));
    const c = performance.now() - t;
    t = performance.now();
    await baseline?.append(makeRecord(i));
    const b = performance.now() - t;
    if (i >= 20) {
      baselineMs.push(b);
      appendMs.push(a);
      fsyncMs.push(f);
      twoMs.push(two);
      cpuMs.push(c);
    }
  }
  await log.close();
  await nosync.close();
  await baseline?.close();
  fs.closeSync(raw);
  fs.closeSync(raw2);
  const q = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.floor(p * xs.length)] as number;
  const row = (name: string, xs: number[]) => `| ${name} | ${q(xs, 0.5).toFixed(3)} | ${q(xs, 0.9).toFixed(3)} |`;
  console.log(`Lone durable append at idle, ${N} appends, node ${process.version}`);
  console.log('| operation | p50 ms | p90 ms |\n|---|---:|---:|');
  console.log(row('log.append (fsync on)', appendMs));
  console.log(row('write + fdatasync of the record bytes', fsyncMs));
  console.log(row('the same into two files, two fdatasyncs at once', twoMs));
  console.log(row('log.append, fsync off (the CPU part)', cpuMs));
  if (baseline !== undefined) console.log(row(`log.append (fsync on) of ${baselineDir}`, baselineMs));
  console.log(`append p50 / one fdatasync p50: ${(q(appendMs, 0.5) / q(fsyncMs, 0.5)).toFixed(2)} (target ≤ 1 fsync)`);
  if (baseline !== undefined) {
    console.log(`baseline append p50 / one fdatasync p50: ${(q(baselineMs, 0.5) / q(fsyncMs, 0.5)).toFixed(2)}`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
