import { readFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTinyLlama } from '../../../../examples/llm/tiny-llama.js';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';
import { fetchModel } from './fetch-model.js';

// Two real nodes over HTTP: B fetches A's models by manifest CID and trusts nothing A says.
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
let a: VerityNode;
let b: VerityNode;
let evil: Server;
let evilUrl: string;
let tamper: (path: string, body: Buffer) => Buffer = (_p, body) => body;
let irisCid: string;
let bigCid: string;
const big = buildTinyLlama({ embedding: 256, feedForward: 512, layers: 4 }); // several 1 MiB chunks

const start = async () =>
  startNode(
    loadConfig({
      overrides: { dataDir: await mkdtemp(join(tmpdir(), 'verity-peer-')), port: 0, logLevel: 'silent', fsync: false },
    }),
  );

async function push(node: VerityNode, name: string, format: string, bytes: Uint8Array): Promise<string> {
  const res = await fetch(`${node.url}/v1/models?name=${name}&format=${format}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: Buffer.from(bytes),
  });
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

beforeAll(async () => {
  [a, b] = await Promise.all([start(), start()]);
  irisCid = await push(a, 'iris', 'onnx', readFileSync(IRIS));
  bigCid = await push(a, 'big-chat', 'gguf', big);
  // A peer in the middle that can rewrite what A sends.
  evil = createServer(async (req, res) => {
    const upstream = await fetch(`${a.url}${req.url}`, { headers: { accept: req.headers.accept ?? '*/*' } });
    const body = tamper(req.url ?? '', Buffer.from(await upstream.arrayBuffer()));
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? '' });
    res.end(body);
  });
  await new Promise<void>((r) => evil.listen(0, '127.0.0.1', r));
  evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
});
afterAll(async () => {
  evil?.close();
  await Promise.all([a?.stop(), b?.stop()]);
});

describe('fetchModel', () => {
  it('refuses a peer that rewrites a block, a manifest, or lacks the model; nothing is kept', async () => {
    const opts = { maxSize: 1 << 30, policy: { localNetwork: true } };
    tamper = (path, body) => {
      if (!path.includes('format=car')) return body;
      const out = Buffer.from(body);
      out[out.length - 100] = (out[out.length - 100] as number) ^ 1; // one bit in the last leaf
      return out;
    };
    await expect(fetchModel(evilUrl, bigCid, b.context.store, opts)).rejects.toMatchObject({ code: 'CID_INVALID' });
    tamper = (path, body) => {
      if (!path.startsWith('/v1/models/')) return body;
      const view = JSON.parse(body.toString());
      view.manifest.description = 'a better model';
      return Buffer.from(JSON.stringify(view));
    };
    await expect(fetchModel(evilUrl, bigCid, b.context.store, opts)).rejects.toMatchObject({
      code: 'RESPONSE_INVALID',
    });
    tamper = (_p, body) => body;
    await expect(
      fetchModel(a.url, 'bagaaierawhtwabz7d4f5sxmfvuk7mfasw2hjakvlrf22fi5m23bfzrd7rlza', b.context.store, opts),
    ).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await expect(fetchModel('http://127.0.0.1:1', bigCid, b.context.store, opts)).rejects.toMatchObject({
      code: 'NETWORK_ERROR',
    });
    expect(b.context.store.list()).toEqual([]);
  });

  it('copies a model by manifest CID: same manifest, same signature, same bytes, and it runs', async () => {
    expect(big.length).toBeGreaterThan(2 * 1048576); // a DAG of several leaves, not one block
    const opts = { maxSize: 1 << 30, policy: { localNetwork: true } };
    const copy = await fetchModel(a.url, bigCid, b.context.store, opts);
    const original = a.context.store.resolve(bigCid);
    expect(copy.manifestCid).toBe(bigCid);
    expect(copy.manifest).toEqual(original.manifest);
    expect(copy.signature).toBe(original.signature);
    expect(Buffer.compare(await readFile(copy.artifactPath), Buffer.from(big))).toBe(0);
    // Blocks B now serves are the same DAG.
    expect(Buffer.from(await b.context.store.getBlock(original.manifest.artifact.cid))).toEqual(
      Buffer.from(await a.context.store.getBlock(original.manifest.artifact.cid)),
    );
    // Fetching again is a no-op; a second model comes too, and B answers with it.
    expect((await fetchModel(a.url, bigCid, b.context.store, opts)).manifestCid).toBe(bigCid);
    await fetchModel(a.url, irisCid, b.context.store, opts);
    const res = await fetch(`${b.url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: irisCid, input: { x: [[5.1, 3.5, 1.4, 0.2]] } }),
    });
    expect(res.status).toBe(200);
  });
});
