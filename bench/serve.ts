/**
 * Verified `/v1/infer` against an unverified baseline on the same HTTP stack and runtime, in the
 * same run: throughput and p50/p99 latency, as ratios, and each server's CPU time per request.
 * Each server runs in its own process; the load generator (keep-alive connections, fixed
 * concurrency) runs here, on the same cores, so req/s also depends on how much CPU the load
 * generator leaves to the server. CPU µs per request (user + system time of the server process,
 * all its threads, from /proc/<pid>/stat, over the measured window) does not: it is the number to
 * compare when the machine is small or shared.
 *
 *   npm run bench -- serve        (or: node bench/dist/serve.js [seconds] [concurrency])
 *
 * The two servers are measured one at a time (the idle one uses no CPU), twice each, in the order
 * baseline, verified, verified, baseline, so drift in the machine's load weighs on both alike.
 * Each measurement starts after a warm-up of at least 1 s, and each server's first one only once
 * the server has answered `BENCH_WARMUP_REQUESTS` requests (default 20 000): V8 optimizes by call
 * counts, and the verified server has more code on its path, so a warm-up of a fixed time left
 * its compiler threads busy in the measured window (up to a quarter of its CPU time on a busy
 * 2-core machine), which measured the JIT rather than verification.
 * The baseline has the node's rate-limit and request-count hooks (see serve-target.ts), so the
 * ratio is the cost of verification; `BENCH_BASELINE=fastify` measures against the bare route.
 * `BENCH_CPU_PROF=DIR` runs both servers under `--cpu-prof` and writes their profiles to DIR.
 *
 * It also prints the verified server's records per log batch (from its `/metrics`): each batch
 * signs one checkpoint and waits for one fsync round, so its CPU per request falls as batches grow.
 *
 * Targets (docs/design.md §5): verified throughput ≥ 0.9 × baseline, server CPU per request
 * ≤ 1.3 ×; p50 overhead at idle ≤ one fsync (bench/log-idle.ts measures one here).
 */
import { fileURLToPath } from 'node:url';
import { load as loadTarget, mean, type Result, startTarget, type Target, THREAD_GROUPS } from './load.js';

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 16);
const MODEL = fileURLToPath(new URL('../../examples/models/iris.onnx', import.meta.url));
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
const WARMUP_REQUESTS = Number(process.env.BENCH_WARMUP_REQUESTS ?? 20_000);

/** Iris rows that vary with `i` (so no two requests are alike). */
function load(target: Target, model: string): Promise<Result> {
  return loadTarget(target, {
    concurrency,
    seconds,
    warmupRequests: WARMUP_REQUESTS,
    body: (i) => {
      const row = [4 + (i % 4), 2 + (i % 3) / 2, 1 + (i % 6), (i % 5) / 2];
      return JSON.stringify({ model, input: { x: [row] } });
    },
  });
}

const BASELINE = process.env.BENCH_BASELINE === 'fastify' ? 'fastify' : 'baseline';
const baseline = await startTarget(BASELINE, 8790, MODEL, PROFILE_DIR);
const verified = await startTarget('verified', 8791, MODEL, PROFILE_DIR);
try {
  // Baseline, verified, verified, baseline: a linear drift in the machine's load cancels out.
  const b1 = await load(baseline, 'bench');
  const v1 = await load(verified, 'bench@1.0.0');
  const v2 = await load(verified, 'bench@1.0.0');
  const b2 = await load(baseline, 'bench');
  const b = mean(b1, b2);
  const v = mean(v1, v2);
  const row = (name: string, r: Result) =>
    `| ${name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.serverCpu.toFixed(1)} | ${r.clientCpu.toFixed(1)} | ${r.errors} |`;
  console.log(
    `Verified inference vs unverified baseline — iris MLP, ${concurrency} connections, 2 × ${seconds} s each, node ${process.version}`,
  );
  console.log('| server | req/s | p50 ms | p99 ms | server CPU µs/req | load-gen CPU µs/req | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  console.log(
    row(BASELINE === 'fastify' ? 'baseline (bare Fastify route, no receipt)' : 'baseline (node hooks, no receipt)', b),
  );
  console.log(row('verified (signed log)', v));
  const split = (r: Result) => THREAD_GROUPS.map((g) => `${g} ${r.threads[g].toFixed(1)}`).join(', ');
  console.log(`\nserver CPU µs/req, JS thread and other threads — baseline: ${split(b)}; verified: ${split(v)}`);
  console.log(
    `throughput ratio ${(v.rps / b.rps).toFixed(3)} (target ≥ 0.9); p50 overhead ${(v.p50 - b.p50).toFixed(3)} ms (target ≤ one fsync: bench/log-idle.ts); server CPU per request ${(v.serverCpu / b.serverCpu).toFixed(2)}× baseline (target ≤ 1.3) (+${(v.serverCpu - b.serverCpu).toFixed(1)} µs)`,
  );
  // The group commit's batches: per-batch work (a signature, the fsyncs) is shared by this many answers.
  const metrics = await (await fetch(`${verified.url}/metrics`)).text();
  const count = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1]);
  console.log(
    `verified: ${(count('verity_log_append_seconds_count') / count('verity_log_batches_total')).toFixed(1)} records per log batch (whole run, warm-ups included)`,
  );
  if (PROFILE_DIR !== undefined) {
    console.log(
      `\nprofiles in ${PROFILE_DIR}: baseline pid ${baseline.child.pid} served ${baseline.served}, verified pid ${verified.child.pid} served ${verified.served}`,
    );
  }
} finally {
  await Promise.all([baseline.stop(), verified.stop()]);
}
