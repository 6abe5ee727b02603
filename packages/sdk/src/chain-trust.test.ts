import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Deployment, deploymentToJson, requestUnbond, slashNode, withdrawStake } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import { type Bundle, verifyBundle } from '@verity/protocol';
import { createWalletClient, http } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SLASHER, startTestChain, type TestChain, UNBONDING_DELAY } from '../../contracts/src/test-support/chain.js';
import { startChainNode } from '../../node/src/test-support/chain-node.js';
import { createClient, registrySnapshot } from './index.js';

// Trust rooted in the chain (issue 10.1, 10.9): two registered nodes on a real anvil, a third
// that is not registered, and a man in the middle that answers for a node. The SDK takes keys
// from NodeRegistry and model names from ModelRegistry, never from what a node says.
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const input = { x: [[5.1, 3.5, 1.4, 0.2]] };

let chain: TestChain;
let deployment: Deployment;
let dir: string;
let a: VerityNode;
let b: VerityNode;
let loner: VerityNode;
let proxy: Server;
let proxyUrl: string;
/** What the man in the middle answers for `GET /v1/models/<path>` (undefined: pass through). */
let swapModel: (path: string) => string | undefined = () => undefined;
/** A bundle from node a, kept for the last test (a leaves the registry there). */
let fromA: Bundle | undefined;

function startNamedNode(name: string): Promise<VerityNode> {
  return startChainNode(chain, {
    dataDir: join(dir, name),
    deploymentFile: join(dir, 'deployment.json'),
    // Peers on loopback, as `verity up` runs them (local mode of the outbound URL policy).
    overrides: { peers: { localNetwork: true } },
  });
}

const chainOptions = () => ({ rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson(deployment) });

beforeAll(async () => {
  chain = await startTestChain();
  deployment = await chain.deploy();
  dir = await mkdtemp(join(tmpdir(), 'verity-chain-trust-'));
  await writeDeploymentFile(join(dir, 'deployment.json'), { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  a = await startNamedNode('a');
  b = await startNamedNode('b');
  loner = await startNode(
    loadConfig({ overrides: { dataDir: join(dir, 'loner'), port: 0, logLevel: 'silent', fsync: false } }),
  );
  const data = new Uint8Array(readFileSync(IRIS));
  const admin = createClient({ url: a.url, apiKey: a.context.keys.apiKey });
  await admin.pushModel({ name: 'iris', data });
  // The same file under another name: a real, validly signed model that is not iris@1.0.0.
  await admin.pushModel({ name: 'iris-evil', data });
  await createClient({ url: loner.url, apiKey: loner.context.keys.apiKey }).pushModel({ name: 'iris', data });
  proxy = createServer(async (req, res) => {
    const path = req.url ?? '';
    const swapped = path.startsWith('/v1/models/') ? swapModel(decodeURIComponent(path.slice(11))) : undefined;
    const upstream = await fetch(`${a.url}${swapped === undefined ? path : `/v1/models/${swapped}`}`, {
      method: req.method ?? 'GET',
      headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
      ...(req.method === 'POST' ? { body: req as unknown as BodyInit, duplex: 'half' } : {}),
    } as RequestInit);
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
}, 120_000);
afterAll(async () => {
  proxy?.close();
  await Promise.allSettled([a?.stop(), b?.stop(), loner?.stop()]);
  await chain?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('trust from the chain', () => {
  it('verifies answers against the registry alone, and puts the registry entry in the bundle', async () => {
    const client = createClient({ url: a.url, chain: chainOptions() });
    const result = await client.infer({ model: 'iris@1.0.0', input });
    const bundle = result.bundle();
    expect(bundle.nodes).toEqual([
      expect.objectContaining({
        address: a.context.keys.address,
        logKey: a.context.keys.logKey,
        stake: expect.any(String),
      }),
    ]);
    const trust = await client.trust();
    expect(trust.nodes).toEqual([]);
    expect(trust.registry?.nodes.map((n) => n.address).sort()).toEqual(
      [a.context.keys.address, b.context.keys.address].sort(),
    );
    expect((await client.verify(bundle)).ok).toBe(true);
  }, 60_000);

  it('refuses a bundle from a node that is not registered, even with its key in the bundle', async () => {
    const own = await createClient({ url: loner.url, insecureTrustNode: true }).infer({ model: 'iris', input });
    const bundle = own.bundle();
    expect(bundle.nodes?.[0]?.address).toBe(loner.context.keys.address);
    const verdict = await createClient({ url: a.url, chain: chainOptions() }).verify(bundle);
    expect(verdict.ok ? 'ok' : verdict.code).toBe('RECEIPT_NODE_UNREGISTERED');
  }, 60_000);

  it('takes name → manifest from ModelRegistry: a node that answers for a name with another model is not believed', async () => {
    const registered = (await createClient({ url: a.url, chain: chainOptions() }).model('iris@1.0.0')).id;
    const evil = (await createClient({ url: a.url, chain: chainOptions() }).model('iris-evil@1.0.0')).id;
    expect(evil).not.toBe(registered);
    // The node maps the name `iris@1.0.0` to another (real, signed) model.
    swapModel = (ref) => (ref === 'iris@1.0.0' || ref === 'iris' ? 'iris-evil@1.0.0' : undefined);
    try {
      const answer = await createClient({ url: proxyUrl, chain: chainOptions() }).infer({ model: 'iris@1.0.0', input });
      expect(answer.model).toBe(registered);
      expect(answer.record.model).toBe(registered);
      // It sends another manifest when asked for the registered CID.
      swapModel = (ref) => (ref === registered ? evil : undefined);
      await expect(
        createClient({ url: proxyUrl, chain: chainOptions() }).infer({ model: 'iris@1.0.0', input }),
      ).rejects.toMatchObject({ code: 'MODEL_REGISTRY_MISMATCH' });
    } finally {
      swapModel = () => undefined;
    }
  }, 60_000);

  it('after failover, answers from the next node verify against that node’s registry key', async () => {
    // b holds the model (fetched from a by CID) before a goes away.
    await createClient({ url: b.url, chain: chainOptions() }).infer({ model: 'iris@1.0.0', input });
    const client = createClient({ url: a.url, fallbackUrls: [b.url], chain: chainOptions() });
    const first = await client.infer({ model: 'iris@1.0.0', input });
    expect(first.record.node).toBe(a.context.keys.address);
    fromA = first.bundle();
    await a.stop();
    const second = await client.infer({ model: 'iris@1.0.0', input });
    expect(second.record.node).toBe(b.context.keys.address);
    expect((await client.verify(second.bundle())).ok).toBe(true);
  }, 60_000);

  it('refuses receipts of a node that left (unbonding) or was slashed below the minimum stake', async () => {
    const client = createClient({ url: b.url, chain: chainOptions() });
    const fromB = (await client.infer({ model: 'iris@1.0.0', input })).bundle();
    const nodeRegistry = deployment.contracts.nodeRegistry;
    const before = await registrySnapshot({ rpcUrl: chain.anvil.rpcUrl, nodeRegistry });
    await slashNode(chain.clients(SLASHER), {
      nodeRegistry,
      node: b.context.keys.address as `0x${string}`,
      amount: 1n,
      reason: 'test',
    });
    const account = privateKeyToAccount(a.context.keys.accountKey as `0x${string}`);
    const walletClient = createWalletClient({
      account,
      chain: chain.publicClient.chain,
      transport: http(chain.anvil.rpcUrl),
    });
    await requestUnbond({ publicClient: chain.publicClient, walletClient }, { nodeRegistry });
    const after = await registrySnapshot({ rpcUrl: chain.anvil.rpcUrl, nodeRegistry });
    const codeOf = (bundle: Bundle, registry: typeof after) => {
      const r = verifyBundle(bundle, { nodes: [], registry });
      return r.ok ? 'ok' : r.code;
    };
    // At the block the answer was given, b was staked; now it is not.
    expect(codeOf(fromB, before)).toBe('ok');
    expect(codeOf(fromB, after)).toBe('RECEIPT_NODE_UNSTAKED');
    // The SDK reads the registry at the block the bundle names (b was staked when it answered);
    // a bundle that names no block is checked against the latest one.
    expect((await client.verify(fromB)).ok).toBe(true);
    const unnamed = await createClient({ url: b.url, chain: chainOptions() }).verify({ ...fromB, nodes: [] });
    expect(unnamed.ok ? 'ok' : unnamed.code).toBe('RECEIPT_NODE_UNSTAKED');
    // a asked to leave: its receipts no longer verify against the current registry.
    expect(codeOf(fromA as Bundle, before)).toBe('ok');
    expect(codeOf(fromA as Bundle, after)).toBe('RECEIPT_NODE_INACTIVE');
    // While a unbonds its stake is still slashable: its bundle, naming the block it answered at,
    // still verifies. Once it has withdrawn, nothing backs it: a bundle naming a block from when
    // it was staked (a backdated answer looks the same) is refused.
    expect((await client.verify(fromA)).ok).toBe(true);
    await chain.testClient.increaseTime({ seconds: UNBONDING_DELAY + 1 });
    await chain.testClient.mine({ blocks: 1 });
    await withdrawStake({ publicClient: chain.publicClient, walletClient }, { nodeRegistry });
    const exited = await createClient({ url: b.url, chain: chainOptions() }).verify(fromA);
    expect(exited.ok ? 'ok' : exited.code).toBe('RECEIPT_NODE_EXITED');
  }, 60_000);
});
