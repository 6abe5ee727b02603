/**
 * Verified `/v1/infer` against an unverified baseline on the same HTTP stack and runtime, in the
 * same run: throughput and p50/p99 latency, as ratios. Each server runs in its own process; the
 * load generator (keep-alive connections, fixed concurrency) runs here.
 *
 *   npm run bench -- serve        (or: node bench/dist/serve.js [seconds] [concurrency])
 *
 * Targets (DESIGN.md §5): verified throughput ≥ 0.9 × baseline; p50 overhead ≤ 0.2 ms.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 16);
const MODEL = fileURLToPath(new URL('../../examples/models/iris.onnx', import.meta.url));
const TARGET = fileURLToPath(new URL('./serve-target.js', import.meta.url));

async function startTarget(kind: string, port: number): Promise<{ url: string; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), `verity-bench-${kind}-`));
  const child = spawn(process.execPath, [TARGET, kind, String(port), dir, MODEL], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.on('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return {
    url,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function load(url: string, model: string): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const { hostname, port } = new URL(url);
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const row = [4 + (i % 4), 2 + (i % 3) / 2, 1 + (i % 6), (i % 5) / 2];
      i++;
      const body = JSON.stringify({ model, input: { x: [row] } });
      const t0 = performance.now();
      const req = request(
        {
          hostname,
          port,
          path: '/v1/infer',
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) latencies.push(performance.now() - t0);
            else errors++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  // Warm up, then measure.
  await Promise.all(Array.from({ length: 200 }, one));
  latencies.length = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) await one();
  };
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { rps: latencies.length / elapsed, p50: q(0.5), p99: q(0.99), errors };
}

const baseline = await startTarget('baseline', 8790);
const verified = await startTarget('verified', 8791);
try {
  // Interleave the two to spread the machine's noise over both.
  const b1 = await load(baseline.url, 'bench');
  const v1 = await load(verified.url, 'bench@1.0.0');
  const b2 = await load(baseline.url, 'bench');
  const v2 = await load(verified.url, 'bench@1.0.0');
  const avg = (a: number, b: number) => (a + b) / 2;
  const b = {
    rps: avg(b1.rps, b2.rps),
    p50: avg(b1.p50, b2.p50),
    p99: avg(b1.p99, b2.p99),
    errors: b1.errors + b2.errors,
  };
  const v = {
    rps: avg(v1.rps, v2.rps),
    p50: avg(v1.p50, v2.p50),
    p99: avg(v1.p99, v2.p99),
    errors: v1.errors + v2.errors,
  };
  console.log(
    `Verified inference vs unverified baseline — iris MLP, ${concurrency} connections, 2 × ${seconds} s each, node ${process.version}`,
  );
  console.log('| server | req/s | p50 ms | p99 ms | errors |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(
    `| baseline (no receipt) | ${b.rps.toFixed(0)} | ${b.p50.toFixed(3)} | ${b.p99.toFixed(3)} | ${b.errors} |`,
  );
  console.log(
    `| verified (signed log) | ${v.rps.toFixed(0)} | ${v.p50.toFixed(3)} | ${v.p99.toFixed(3)} | ${v.errors} |`,
  );
  console.log(
    `\nthroughput ratio ${(v.rps / b.rps).toFixed(3)} (target ≥ 0.9); p50 overhead ${(v.p50 - b.p50).toFixed(3)} ms (target ≤ 0.2 ms)`,
  );
} finally {
  baseline.stop();
  verified.stop();
}
