/**
 * Verified `/v1/infer` on real published ONNX models (real-models.ts) against two servers that
 * give no receipt, in one run, as ratios (issue 14):
 *
 * - `plain`: what a user might write instead — node:http + onnxruntime-node with its default
 *   session options, JSON tensors in and out (serve-target.ts). Those defaults let onnxruntime's
 *   threads spin between runs, which Verity's runtime turns off (runtimes/onnx.ts): on a small,
 *   shared machine most of the CPU per request the node saves against `plain` is that spin;
 * - `baseline`: Verity's own unverified route — the node's HTTP stack, executor and tensor
 *   handling, no record, no log, no signature.
 *
 * Per model, at concurrency 1 and 16: p50/p99 latency, throughput, and the server's CPU time per
 * request (all its threads, from /proc, the number that does not depend on what else the shared
 * machine runs). Each server is measured twice per concurrency in the order plain, baseline,
 * verified, verified, baseline, plain, so a drift in the machine's load weighs on all alike.
 *
 *   npm run build && node bench/dist/serve-models.js [seconds=3] [models=vad,cls,det]
 *
 * `BENCH_CPU_PROF=DIR` runs the servers under `--cpu-prof` (profiles written to DIR at exit).
 * Targets (issue 14): verified p50 ≤ 1.1 × plain at concurrency 1; verified throughput ≥ 0.9 ×
 * plain at 16.
 */
import { load, mean, type Result, startTarget, type Target } from './load.js';
import { realModels } from './real-models.js';

const seconds = Number(process.argv[2] ?? 3);
const only = process.argv[3]?.split(',');
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
const KINDS = ['plain', 'baseline', 'verified'] as const;
type Kind = (typeof KINDS)[number];

/** The request bodies, built once (a large image's JSON costs the load generator milliseconds). */
function bodies(input: (i: number) => Record<string, unknown>, model: string, count: number): (i: number) => string {
  const made = Array.from({ length: count }, (_, k) => JSON.stringify({ model, input: input(k) }));
  return (i) => made[i % count] as string;
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');

console.log(
  `Real models: verified vs plain server vs unverified baseline, 2 × ${seconds} s each, node ${process.version}`,
);
const summary: string[] = [];
let port = 8800;
for (const model of realModels()) {
  if (only !== undefined && !only.includes(model.name)) continue;
  const targets = {} as Record<Kind, Target>;
  for (const kind of KINDS) targets[kind] = await startTarget(kind, port++, model.path, PROFILE_DIR);
  try {
    const body: Record<Kind, (i: number) => string> = {
      plain: bodies(model.input, 'bench', 16),
      baseline: bodies(model.input, 'bench', 16),
      verified: bodies(model.input, 'bench@1.0.0', 16),
    };
    const results: Record<number, Record<Kind, Result>> = {};
    for (const concurrency of [1, 16]) {
      const one = (kind: Kind) => load(targets[kind], { concurrency, seconds, body: body[kind] });
      const first: Partial<Record<Kind, Result>> = {};
      for (const kind of KINDS) first[kind] = await one(kind);
      const both = {} as Record<Kind, Result>;
      for (const kind of [...KINDS].reverse()) both[kind] = mean(first[kind] as Result, await one(kind));
      results[concurrency] = both;
    }
    console.log(`\n### ${model.name} — ${model.description}`);
    console.log('| server | conc. | req/s | p50 ms | p99 ms | server CPU µs/req (main + other threads) | errors |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const c of [1, 16]) {
      for (const kind of KINDS) {
        const r = (results[c] as Record<Kind, Result>)[kind];
        console.log(
          `| ${kind} | ${c} | ${f(r.rps, 0)} | ${f(r.p50, 3)} | ${f(r.p99, 3)} | ${f(r.serverCpu, 0)} (${f(r.threads.main, 0)} + ${f(r.threads.other, 0)}) | ${r.errors} |`,
        );
      }
    }
    const r1 = results[1] as Record<Kind, Result>;
    const r16 = results[16] as Record<Kind, Result>;
    const line =
      `${model.name}: verified/plain p50 @1 ${f(r1.verified.p50 / r1.plain.p50)} (target ≤ 1.1), ` +
      `throughput @16 ${f(r16.verified.rps / r16.plain.rps)} (target ≥ 0.9), ` +
      `CPU/req @16 ${f(r16.verified.serverCpu / r16.plain.serverCpu)}; ` +
      `verified/baseline p50 @1 ${f(r1.verified.p50 / r1.baseline.p50)}, throughput @16 ${f(r16.verified.rps / r16.baseline.rps)}, ` +
      `CPU/req @16 ${f(r16.verified.serverCpu / r16.baseline.serverCpu)}; ` +
      `p50 overhead @1 vs plain ${f(r1.verified.p50 - r1.plain.p50, 3)} ms`;
    console.log(`\n${line}`);
    summary.push(line);
  } finally {
    await Promise.all(KINDS.map((k) => targets[k].stop()));
  }
}
console.log(`\n## Ratios\n${summary.map((s) => `- ${s}`).join('\n')}`);
if (PROFILE_DIR !== undefined) console.log(`profiles in ${PROFILE_DIR}`);
