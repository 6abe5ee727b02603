/**
 * The load generator shared by the serving benchmarks (serve.ts, serve-models.ts): server
 * processes started from serve-target.ts, keep-alive connections at a fixed concurrency, a
 * warm-up, then latencies, throughput and the server's CPU time per request from /proc.
 *
 * CPU µs per request (user + system time of the server process, all its threads, from
 * /proc/<pid>/stat, over the measured window) does not depend on how much CPU the load generator
 * or other work on the machine leaves to the server: it is the number to compare when the
 * machine is small or shared.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TARGET = fileURLToPath(new URL('./serve-target.js', import.meta.url));
/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on Linux). */
const CLOCK_TICKS = 100;

export interface Target {
  readonly kind: string;
  readonly url: string;
  readonly child: ChildProcess;
  /** Requests answered with 200 over the process's life (warm-ups included), for profiles. */
  served: number;
  stop(): Promise<void>;
}

/**
 * Starts `serve-target.js KIND PORT DATADIR MODEL` in its own process (under `--cpu-prof` when
 * `profileDir` is given; the profile is written at `stop`).
 */
export async function startTarget(kind: string, port: number, model: string, profileDir?: string): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), `verity-bench-${kind}-`));
  const flags = profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  const child = spawn(process.execPath, [...flags, TARGET, kind, String(port), dir, model], {
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
    kind,
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
export const THREAD_GROUPS = ['main', 'other'] as const;
export type ThreadGroup = (typeof THREAD_GROUPS)[number];

function cpuByThread(pid: number | undefined): Record<ThreadGroup, number> {
  const main = statMicros(`/proc/${pid}/task/${pid}/stat`);
  return { main, other: cpuMicros(pid) - main };
}

export interface Result {
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

/** What one measurement sends: `body(i)` is the JSON body of the i-th request to POST `path`. */
export interface LoadOptions {
  readonly concurrency: number;
  readonly seconds: number;
  readonly path?: string;
  readonly body: (i: number) => string;
  /** Least warm-up in ms (default 1000). */
  readonly warmupMs?: number;
  /**
   * Least requests the target must have answered (over its life) before measuring (default 0):
   * V8 optimizes a function after a number of calls, not after a time, so a server with more
   * code on its request path needs more requests, not more seconds, to reach its steady state,
   * and on a slow or busy machine a time-based warm-up leaves the compiler threads running
   * into the measured window. Only a target's first measurement waits for it.
   */
  readonly warmupRequests?: number;
}

/** Warms up at the measured concurrency, then measures for `seconds`. */
export async function load(target: Target, options: LoadOptions): Promise<Result> {
  const { concurrency, seconds, body } = options;
  const path = options.path ?? '/v1/infer';
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const { hostname, port } = new URL(target.url);
  const latencies: number[] = [];
  let errors = 0;
  let i = 0;
  let firstError: string | undefined;
  const one = () =>
    new Promise<void>((resolve) => {
      const text = body(i++);
      const t0 = performance.now();
      const req = request(
        {
          hostname,
          port,
          path,
          method: 'POST',
          agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          const ok = res.statusCode === 200;
          res.on('data', (c: Buffer) => {
            if (!ok && firstError === undefined) chunks.push(c);
          });
          res.on('end', () => {
            if (ok) {
              latencies.push(performance.now() - t0);
              target.served++;
            } else {
              errors++;
              firstError ??= `${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`;
            }
            resolve();
          });
        },
      );
      req.on('error', (e) => {
        errors++;
        firstError ??= String(e);
        resolve();
      });
      req.end(text);
    });
  const run = async (ms: number) => {
    const end = performance.now() + ms;
    const worker = async () => {
      while (performance.now() < end) await one();
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };
  await run(Math.max(options.warmupMs ?? 1000, seconds * 200));
  while (target.served < (options.warmupRequests ?? 0)) await run(250);
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
  if (firstError !== undefined) console.error(`${target.kind}: ${errors} errors, first: ${firstError}`);
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

/** The mean of two measurements (errors added). */
export function mean(a: Result, b: Result): Result {
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
