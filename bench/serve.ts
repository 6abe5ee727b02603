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
 * Each measurement starts after a warm-up of at least 1 s (the JIT and the runtime settle).
 * The baseline has the node's rate-limit and request-count hooks (see serve-target.ts), so the
 * ratio is the cost of verification; `BENCH_BASELINE=fastify` measures against the bare route.
 * `BENCH_CPU_PROF=DIR` runs both servers under `--cpu-prof` and writes their profiles to DIR.
 *
 * Targets (docs/design.md §5): verified throughput ≥ 0.9 × baseline; p50 overhead ≤ 0.2 ms.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const seconds = Number(process.argv[2] ?? 5);
const concurrency = Number(process.argv[3] ?? 16);
const MODEL = fileURLToPath(new URL('../../examples/models/iris.onnx', import.meta.url));
const TARGET = fileURLToPath(new URL('./serve-target.js', import.meta.url));
const PROFILE_DIR = process.env.BENCH_CPU_PROF;
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

interface Target {
  readonly url: string;
  readonly child: ChildProcess;
  /** Requests answered with 200 over the process's life (warm-ups included), for profiles. */
  served: number;
  stop(): Promise<void>;
}

async function startTarget(kind: string, port: number): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), `verity-bench-${kind}-`));
  const flags = PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`];
  const child = spawn(process.execPath, [...flags, TARGET, kind, String(port), dir, MODEL], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.on('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return {
    url,
    child,
    served: 0,
    stop: async () => {
      child.kill('SIGTERM');
      await exited; // a profile is written at exit
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** User + system CPU time in µs from a /proc `stat` file, or NaN where it cannot be read. */
function statMicros(path: string): number {
  try {
    const stat = readFileSync(path, 'latin1');
    // Fields after the command name (which may hold spaces) — utime and stime are fields 14 and 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1e6) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** CPU time of process `pid`, all threads, in µs (NaN without /proc). */
function cpuMicros(pid: number | undefined): number {
  return statMicros(`/proc/${pid}/stat`);
}

/**
 * CPU time of process `pid` in µs, split into its JS thread (tid = pid) and all other threads
 * (libuv pool: fs writes and fsyncs; V8 helpers: GC, JIT; the ONNX runtime's). Node 20 names them
 * all `node`, so they cannot be told apart further from /proc.
 */
const THREAD_GROUPS = ['main', 'other'] as const;
type ThreadGroup = (typeof THREAD_GROUPS)[number];

function cpuByThread(pid: number | undefined): Record<ThreadGroup, number> {
  const main = statMicros(`/proc/${pid}/task/${pid}/stat`);
  return { main, other: cpuMicros(pid) - main };
}

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Server CPU µs per answered request, and the load generator's. */
  serverCpu: number;
  clientCpu: number;
  /** Server CPU µs per answered request by thread group. */
  threads: Record<ThreadGroup, number>;
}

async function load(target: Target, model: string): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const { hostname, port } = new URL(target.url);
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
            if (res.statusCode === 200) {
              latencies.push(performance.now() - t0);
              target.served++;
            } else errors++;
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
  const run = async (ms: number) => {
    const end = performance.now() + ms;
    const worker = async () => {
      while (performance.now() < end) await one();
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  // Warm up at the measured concurrency, then measure.
  await run(Math.max(1000, seconds * 200));
  latencies.length = 0;
  errors = 0;
  const cpu0 = cpuMicros(target.child.pid);
  const threads0 = cpuByThread(target.child.pid);
  const client0 = process.cpuUsage();
  const start = performance.now();
  await run(seconds * 1000);
  const elapsed = (performance.now() - start) / 1000;
  const cpu1 = cpuMicros(target.child.pid);
  const threads1 = cpuByThread(target.child.pid);
  const client = process.cpuUsage(client0);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  const n = latencies.length;
  return {
    rps: n / elapsed,
    p50: q(0.5),
    p99: q(0.99),
    errors,
    serverCpu: (cpu1 - cpu0) / n,
    clientCpu: (client.user + client.system) / n,
    threads: Object.fromEntries(THREAD_GROUPS.map((g) => [g, (threads1[g] - threads0[g]) / n])) as Record<
      ThreadGroup,
      number
    >,
  };
}

function mean(a: Result, b: Result): Result {
  const avg = (k: Exclude<keyof Result, 'threads'>) => (a[k] + b[k]) / 2;
  return {
    rps: avg('rps'),
    p50: avg('p50'),
    p99: avg('p99'),
    errors: a.errors + b.errors,
    serverCpu: avg('serverCpu'),
    clientCpu: avg('clientCpu'),
    threads: Object.fromEntries(THREAD_GROUPS.map((g) => [g, (a.threads[g] + b.threads[g]) / 2])) as Record<
      ThreadGroup,
      number
    >,
  };
}

const BASELINE = process.env.BENCH_BASELINE === 'fastify' ? 'fastify' : 'baseline';
const baseline = await startTarget(BASELINE, 8790);
const verified = await startTarget('verified', 8791);
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
    `throughput ratio ${(v.rps / b.rps).toFixed(3)} (target ≥ 0.9); p50 overhead ${(v.p50 - b.p50).toFixed(3)} ms (target ≤ 0.2 ms); server CPU per request ${(v.serverCpu / b.serverCpu).toFixed(2)}× baseline (+${(v.serverCpu - b.serverCpu).toFixed(1)} µs)`,
  );
  if (PROFILE_DIR !== undefined) {
    console.log(
      `\nprofiles in ${PROFILE_DIR}: baseline pid ${baseline.child.pid} served ${baseline.served}, verified pid ${verified.child.pid} served ${verified.served}`,
    );
  }
} finally {
  await Promise.all([baseline.stop(), verified.stop()]);
}
