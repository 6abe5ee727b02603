import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Receipt, verifyReceipt } from '@verity/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';
import { startLyingNode } from './lying-node.js';

// The lying node is the real node, made to lie by a wrapped runtime: its wrong answers are
// logged and signed under its own key, exactly what a quorum or an audit must catch.
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const nodes: VerityNode[] = [];
const dirs: string[] = [];

async function config() {
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-liar-'));
  dirs.push(dataDir);
  return loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent', fsync: false } });
}

async function answer(node: VerityNode) {
  const push = await fetch(`${node.url}/v1/models?name=iris`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: readFileSync(IRIS),
  });
  const { id } = (await push.json()) as { id: string };
  const res = await fetch(`${node.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, input: { x: [[5.1, 3.5, 1.4, 0.2]] } }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { output: { probabilities: { data: number[] } }; receipt: Receipt };
}

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('startLyingNode (test support)', () => {
  it('answers wrong, and signs and logs the wrong answer under its own key', async () => {
    const honest = await startNode(await config());
    const liar = await startLyingNode(await config());
    nodes.push(honest, liar);
    const truth = await answer(honest);
    const lie = await answer(liar);
    const nudged = truth.output.probabilities.data.map((p) => Math.fround(p + 0.125));
    expect(lie.output.probabilities.data).toEqual(nudged);
    expect(lie.receipt.record.outputDigest).not.toBe(truth.receipt.record.outputDigest);
    expect(lie.receipt.record.runtime).toEqual(truth.receipt.record.runtime); // looks honest
    const trust = { nodes: [{ address: liar.context.keys.address, logKey: liar.context.keys.logKey }] };
    expect(verifyReceipt(lie.receipt, trust)).toMatchObject({ ok: true });
  });
});
