/**
 * zk proving goes through the executor (issue 11.6): one proof at a time in the zk lane, a
 * bounded queue (429 QUEUE_FULL), a timeout (504 INFERENCE_TIMEOUT), memory bounded at push
 * (ZK_KEY_TOO_LARGE) and reported in /metrics. A real node, real snarkjs proofs; the lane is held
 * busy by a task the test puts in it (fault injection in test code only), so what queues and what
 * times out does not depend on how fast this machine proves.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../test-support/wait.js';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';
import { runZkTask } from '../zk-lane.js';

const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const PTAU_DIR = process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');
const ZK_TIMEOUT_MS = 15_000;
const dirs: string[] = [];
let node: VerityNode;

async function start(zk: Record<string, unknown>): Promise<VerityNode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-zk-executor-'));
  dirs.push(dataDir);
  return startNode(
    loadConfig({
      overrides: { dataDir, port: 0, logLevel: 'silent', fsync: false, zk: { ptauDir: PTAU_DIR, ...zk } },
    }),
  );
}

async function push(n: VerityNode, name: string): Promise<Response> {
  return fetch(`${n.url}/v1/models?name=${name}&zk=1`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${n.context.keys.apiKey}` },
    body: readFileSync(IRIS),
  });
}

const infer = (n: VerityNode) =>
  fetch(`${n.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'iris-zk', input: { x: [[5.1, 3.5, 1.4, 0.2]] }, mode: 'zk' }),
  });

/** Holds the zk lane busy until `release()`. */
function holdLane(n: VerityNode) {
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const done = runZkTask(n.context, () => gate);
  done.catch(() => undefined); // the timeout test awaits its rejection later
  return { release, done };
}

beforeAll(async () => {
  node = await start({ maxQueue: 1, timeoutMs: ZK_TIMEOUT_MS });
  const res = await push(node, 'iris-zk');
  expect(res.status, await res.clone().text()).toBe(201);
  // Warm: the circuit and keys are loaded by the first proof, so later ones only prove.
  expect((await infer(node)).status).toBe(200);
}, 600_000);

afterAll(async () => {
  await node?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('zk through the executor', () => {
  it('a zk request waits behind another; one beyond the queue gets 429 QUEUE_FULL with Retry-After', async () => {
    const busy = holdLane(node);
    const stats = () => node.context.zkExecutor.stats();
    await until(async () => (stats().running === 1 ? true : undefined), 'the held lane to run');
    const waiting = infer(node);
    await until(async () => (stats().pending === 1 ? true : undefined), 'the request to wait');
    // It waits: nothing proves while the lane is held.
    const proofsBefore = (await node.context.metrics.zkProofs.get()).values[0]?.value ?? 0;
    const refused = await infer(node);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('QUEUE_FULL');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(stats().pending).toBe(1);
    busy.release();
    await busy.done;
    const answered = await waiting;
    expect(answered.status, await answered.clone().text()).toBe(200);
    expect(((await answered.json()) as { zk?: unknown }).zk).toBeDefined();
    expect((await node.context.metrics.zkProofs.get()).values[0]?.value).toBe(proofsBefore + 1);
    // ONNX requests never wait for zk: the lanes are separate executors.
    expect(node.context.executor.stats().pending).toBe(0);
  }, 120_000);

  it('a zk request that cannot start in time gets 504 INFERENCE_TIMEOUT', async () => {
    const busy = holdLane(node);
    try {
      const res = await infer(node);
      expect(res.status).toBe(504);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INFERENCE_TIMEOUT');
    } finally {
      busy.release();
    }
    await expect(busy.done).rejects.toMatchObject({ code: 'INFERENCE_TIMEOUT' }); // the holder's own bound
  }, 120_000);

  it('reports zk queue depth, proofs, prove seconds and RSS after proving in /metrics', async () => {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(text).toMatch(/^verity_zk_pending 0$/m);
    expect(text).toMatch(/^verity_zk_running 0$/m);
    expect(Number(/^verity_zk_proofs_total (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^verity_zk_prove_seconds_count (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^verity_zk_rss_after_prove_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(10_000_000);
    expect(text).toMatch(/^verity_zk_refused\{reason="queue_full"\} [1-9]/m);
    expect(text).toMatch(/^verity_zk_refused\{reason="timeout"\} [1-9]/m);
  });

  it('refuses at push a circuit whose proofs would need more memory than zk.maxProvingBytes (507 ZK_KEY_TOO_LARGE)', async () => {
    const small = await start({ maxProvingBytes: 1_000_000 });
    try {
      const res = await push(small, 'iris-zk');
      expect(res.status).toBe(507);
      const body = (await res.json()) as { error: { code: string; details: Record<string, number> } };
      expect(body.error.code).toBe('ZK_KEY_TOO_LARGE');
      expect(body.error.details.estimatedBytes).toBeGreaterThan(1_000_000);
      expect(small.context.store.list()).toHaveLength(0);
    } finally {
      await small.stop();
    }
  }, 120_000);
});
