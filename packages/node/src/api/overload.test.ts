import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createClient } from '@verity/sdk';
import onnxProto from 'onnx-proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';

// Overload: a node with a deliberately tiny queue, and a model slow enough (a chain of 512×512
// matrix products, a few ms per run) that a burst of requests really piles up.
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));

function slowModel(layers = 200): Uint8Array {
  const { onnx } = onnxProto;
  const n = 512;
  const weights = new Float32Array(n * n);
  for (let i = 0; i < n; i++) weights[i * n + i] = 1; // identity: the values stay finite
  const nodes = Array.from({ length: layers }, (_, i) => ({
    name: `m${i}`,
    opType: 'MatMul',
    input: [i === 0 ? 'x' : `h${i}`, 'w'],
    output: [i === layers - 1 ? 'y' : `h${i + 1}`],
  }));
  const value = (name: string) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: n }] } } },
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'slow',
      node: nodes,
      initializer: [{ name: 'w', dims: [n, n], dataType: 1, rawData: new Uint8Array(weights.buffer) }],
      input: [value('x')],
      output: [value('y')],
    },
  });
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}
let node: VerityNode;
const run = promisify(execFile);

beforeAll(async () => {
  node = await startNode(
    loadConfig({
      overrides: {
        dataDir: await mkdtemp(join(tmpdir(), 'verity-overload-')),
        port: 0,
        logLevel: 'silent',
        executor: { concurrency: 1, maxQueue: 4, maxPending: 8, maxBatch: 2 },
        limits: { requestsPerSecond: 1_000_000, burst: 1_000_000 },
      },
    }),
  );
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  await admin.pushModel({ name: 'iris', data: new Uint8Array(readFileSync(IRIS)) });
  await admin.pushModel({ name: 'slow', data: slowModel() });
});
afterAll(async () => {
  await node?.stop();
});

describe('overload', () => {
  it('refuses requests beyond the queue with 429 and Retry-After; accepted ones verify; the queue stays bounded', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    let maxPending = 0;
    const sampler = setInterval(() => {
      maxPending = Math.max(maxPending, node.context.executor.stats().pending);
    }, 1);
    // The burst comes from another process, as real clients do: inference runs on the node's
    // event loop, so a client sharing that loop could never outpace it.
    const burst = `
      const body = JSON.stringify({ model: 'slow@1.0.0', input: { x: [Array.from({ length: 512 }, (_, i) => i / 512)] } });
      const rs = await Promise.all(Array.from({ length: 100 }, () => fetch(process.argv[1] + '/v1/infer', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body,
      }).then(async (r) => ({ status: r.status, retryAfter: r.headers.get('retry-after'), body: await r.json() }))));
      process.stdout.write(JSON.stringify(rs));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', burst, node.url], {
      maxBuffer: 64 * 1024 * 1024,
    });
    clearInterval(sampler);
    const responses = JSON.parse(stdout) as {
      status: number;
      retryAfter: string | null;
      body: { error?: { code: string }; receipt?: unknown };
    }[];
    const refused = responses.filter((r) => r.status === 429 || r.status === 503);
    const ok = responses.filter((r) => r.status === 200);
    expect(refused.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThan(0);
    expect(ok.length + refused.length).toBe(responses.length);
    for (const r of refused) {
      expect(['QUEUE_FULL', 'OVERLOADED']).toContain(r.body.error?.code);
      expect(Number(r.retryAfter)).toBeGreaterThan(0);
    }
    expect(maxPending).toBeLessThanOrEqual(8);
    // Every accepted answer carries a receipt that verifies.
    const trust = await client.trust();
    const { verifyReceipt } = await import('@verity/protocol');
    for (const r of ok) expect(verifyReceipt(r.body.receipt, trust).ok).toBe(true);
    // And the node serves normally afterwards.
    await expect(client.infer({ model: 'iris@1.0.0', input: { x: [[5.1, 3.5, 1.4, 0.2]] } })).resolves.toBeDefined();
  }, 60_000);

  it('rate-limits a client that sends faster than its budget', async () => {
    const limited = await startNode(
      loadConfig({
        overrides: {
          dataDir: await mkdtemp(join(tmpdir(), 'verity-ratelimit-')),
          port: 0,
          logLevel: 'silent',
          limits: { requestsPerSecond: 5, burst: 5 },
        },
      }),
    );
    try {
      const statuses = await Promise.all(
        Array.from({ length: 20 }, () => fetch(`${limited.url}/healthz`).then((r) => r.status)),
      );
      expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(6);
      expect(statuses).toContain(429);
    } finally {
      await limited.stop();
    }
  });
});
