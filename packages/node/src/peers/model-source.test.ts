import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerNode } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_STAKE, startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { type ConfigInput, loadConfig } from '../config.js';
import { openKeystore } from '../keys.js';
import { startNode, type VerityNode } from '../node.js';
import { resolveOrFetch } from './model-source.js';

// Real anvil, real nodes over HTTP. A is an honest publisher (it owns the name `iris` in
// ModelRegistry); E is a peer an attacker runs and registers, holding look-alike manifests that
// call themselves `iris@99.0.0` and `iris@1.0.0`; the victims fetch from whoever is registered.
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const SAMPLE = { x: [[5.1, 3.5, 1.4, 0.2]] };
let chain: TestChain;
let deploymentFile: string;
let nodeRegistry: `0x${string}`;
const dirs: string[] = [];
const nodes: VerityNode[] = [];
let a: VerityNode;
let e: VerityNode;
let irisCid: string; // A's iris@1.0.0, the registry's
let shadowCid: string; // E's iris@99.0.0, unregistered
let lookAlikeCid: string; // E's iris@1.0.0, unregistered (the registry maps iris@1.0.0 to A's)
// Where SSRF endpoints point: a listener that counts every connection.
let listener: Server;
let listenerPort: number;
let connections = 0;
let nextAccount = 1;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verity-source-'));
  dirs.push(dir);
  return dir;
}

async function start(overrides: ConfigInput, onChain = true): Promise<VerityNode> {
  const dataDir = await tempDir();
  if (onChain) {
    const { address } = openKeystore(dataDir);
    await chain.testClient.setBalance({ address: address as `0x${string}`, value: parseEther('10') });
  }
  const node = await startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        fsync: false,
        ...(onChain ? { chain: { rpcUrl: chain.anvil.rpcUrl, deploymentFile, anchorIntervalMs: 0 } } : {}),
        ...overrides,
      },
    }),
  );
  nodes.push(node);
  return node;
}

async function push(node: VerityNode, name: string, version: string): Promise<string> {
  const res = await fetch(`${node.url}/v1/models?name=${name}&version=${version}`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: readFileSync(IRIS),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

/** Registers a node entry (a dev account, a random log key) whose endpoint is `endpoint`. */
async function registerEndpoint(endpoint: string): Promise<void> {
  const i = nextAccount++;
  await registerNode(chain.clients(i), {
    nodeRegistry,
    logKey: `0x${randomBytes(32).toString('hex')}`,
    origin: `attacker.example/log/${i}`,
    endpoint,
    capabilities: ['mode:signed', 'mode:quorum'],
    stake: MIN_STAKE,
  });
}

interface InferBody {
  model?: string;
  receipt?: { record: { model: string } };
  error?: { code: string; details?: Record<string, unknown> };
}

async function infer(node: VerityNode, body: Record<string, unknown>) {
  const res = await fetch(`${node.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input: SAMPLE, ...body }),
  });
  return { status: res.status, body: (await res.json()) as InferBody };
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  nodeRegistry = deployment.contracts.nodeRegistry;
  deploymentFile = join(await tempDir(), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  listener = createServer((_req, res) => res.end('{}'));
  listener.on('connection', () => connections++);
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  listenerPort = (listener.address() as AddressInfo).port;

  // Local mode: these nodes call each other on 127.0.0.1.
  a = await start({ peers: { localNetwork: true } });
  irisCid = await push(a, 'iris', '1.0.0');
  // E holds its look-alikes without a chain (nothing published), and is registered by hand.
  e = await start({}, false);
  shadowCid = await push(e, 'iris', '99.0.0');
  lookAlikeCid = await push(e, 'iris', '1.0.0');
  await registerEndpoint(e.url);
}, 120_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await new Promise<void>((r) => listener?.close(() => r()));
  await chain?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('models by name only through the registry', () => {
  it('model shadowing by name: a peer manifest naming itself iris@99.0.0 or iris@1.0.0 is never fetched nor filed under iris', async () => {
    const b = await start({ peers: { localNetwork: true } });
    // The attacker makes B fetch its look-alikes by CID: refused, nothing is kept.
    const shadow = await infer(b, { model: shadowCid });
    expect(shadow.status).toBe(403);
    expect(shadow.body.error?.code).toBe('MODEL_NOT_REGISTERED');
    const lookAlike = await infer(b, { model: lookAlikeCid });
    expect(lookAlike.body.error).toMatchObject({ code: 'MODEL_NOT_REGISTERED', details: { registeredCid: irisCid } });
    expect(b.context.store.list()).toEqual([]);
    // A local upload under the publisher's name does not beat the chain either (its publish is
    // a no-op: the registry already maps iris@1.0.0).
    const local = await push(b, 'iris', '1.0.0');
    expect(local).not.toBe(irisCid);
    // `iris` and `iris@1.0.0` mean what the registry says: A's model, fetched from A.
    for (const model of ['iris', 'iris@1.0.0']) {
      const r = await infer(b, { model });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.model).toBe(irisCid);
      expect(r.body.receipt?.record.model).toBe(irisCid);
    }
    expect(((await (await fetch(`${b.url}/v1/models/iris@1.0.0`)).json()) as { id: string }).id).toBe(irisCid);
    expect((await fetch(`${b.url}/v1/models/iris@99.0.0`)).status).toBe(404);
  }, 120_000);

  it('an operator may widen what is fetched (peers.fetchCids); such replicas stay unnamed, and quotas hold', async () => {
    const c = await start({ peers: { localNetwork: true, fetchCids: ['*'], maxReplicas: 2 } });
    expect((await infer(c, { model: shadowCid })).status).toBe(200);
    expect(c.context.store.resolve(shadowCid).manifestCid).toBe(shadowCid);
    expect(() => c.context.store.resolve('iris@99.0.0')).toThrow(expect.objectContaining({ code: 'MODEL_NOT_FOUND' }));
    const r = await infer(c, { model: 'iris' });
    expect(r.body.model).toBe(irisCid); // not the higher version it holds
    // Two replicas held: a third is refused with its own code, and nothing of it is kept.
    const third = await infer(c, { model: lookAlikeCid });
    expect(third.status).toBe(507);
    expect(third.body.error?.code).toBe('REPLICA_QUOTA_EXCEEDED');
    expect(c.context.store.list().map((m) => m.manifestCid)).not.toContain(lookAlikeCid);
  }, 120_000);
});

describe('outbound calls under the URL policy', () => {
  it('SSRF through a registered endpoint: a node not in local mode sends nothing to loopback or metadata addresses', async () => {
    const endpoints = [
      `http://127.0.0.1:${listenerPort}`,
      `http://localhost:${listenerPort}`,
      `http://2130706433:${listenerPort}`,
      `http://0x7f000001:${listenerPort}`,
      `http://[::ffff:127.0.0.1]:${listenerPort}`,
      `http://${hostname()}:${listenerPort}`,
      'http://169.254.169.254',
    ];
    for (const endpoint of endpoints) await registerEndpoint(endpoint);
    // D is an ordinary node (not in local mode): every registered endpoint above is refused, and so
    // are the honest nodes of this test, which all listen on 127.0.0.1.
    const d = await start({});
    const before = connections;

    // Model fetch: D lacks the model and asks its registered peers.
    const fetched = await resolveOrFetch(d.context, irisCid).catch((err: unknown) => err);
    expect(fetched).toMatchObject({ code: 'MODEL_NOT_FOUND', cause: { code: 'ENDPOINT_REFUSED' } });
    expect((await infer(d, { model: 'iris@1.0.0' })).body.error?.code).toBe('MODEL_NOT_FOUND');

    // Quorum: D coordinates, its members are the registered nodes.
    const own = await push(d, 'iris', '1.0.0');
    const quorum = await infer(d, { model: own, mode: 'quorum', k: 2, clientNonce: randomBytes(16).toString('hex') });
    expect(quorum.status).not.toBe(200);
    expect(JSON.stringify(quorum.body)).toContain('ENDPOINT_REFUSED');

    expect(connections).toBe(before);
  }, 120_000);
});
