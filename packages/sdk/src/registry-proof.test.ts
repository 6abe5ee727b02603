import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Deployment, listNodes } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import type { VerityNode } from '@verity/node';
import { type Bundle, encodeVerifierKey, fromHex, isActiveNode, type Trust, verifyBundle } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { startChainNode } from '../../node/src/test-support/chain-node.js';
import { createClient, trustFromRegistryProof, verifyBundleOffline, withRegistryProof } from './index.js';

// A real node registers on a real anvil and answers; the bundle gets NodeRegistry's EIP-1186
// proofs and is then checked with nothing but a pinned block and the deployment file.
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
let chain: TestChain;
let deployment: Deployment;
let dir: string;
let node: VerityNode;

beforeAll(async () => {
  chain = await startTestChain();
  deployment = await chain.deploy();
  dir = await mkdtemp(join(tmpdir(), 'verity-registry-proof-'));
  const deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  node = await startChainNode(chain, { dataDir: join(dir, 'node'), deploymentFile });
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  await admin.pushModel({ name: 'iris', data: new Uint8Array(readFileSync(IRIS)) });
}, 120_000);
afterAll(async () => {
  await node?.stop();
  await chain?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const trusted = () => ({
  chainId: deployment.chainId,
  nodeRegistry: deployment.contracts.nodeRegistry,
  minStake: deployment.params.minStake,
});

/** The block as the verifier's own trusted source (here: the chain itself) reports it. */
async function pinOf(blockNumber: bigint) {
  const block = await chain.publicClient.getBlock({ blockNumber });
  return { number: Number(block.number), hash: block.hash };
}

describe('offline bundles', () => {
  it('carry the registry with proofs; a pinned block and the deployment are all a verifier needs', async () => {
    const address = node.context.keys.address;
    const verifierKey = node.context.keys.logKey;
    const client = createClient({ url: node.url, trust: { nodes: [{ address, logKey: verifierKey }] } });
    const answer = await client.infer({ model: 'iris', input: { x: [[5.1, 3.5, 1.4, 0.2]] } });
    const blockNumber = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const source = { rpcUrl: chain.anvil.rpcUrl, nodeRegistry: deployment.contracts.nodeRegistry };
    const offline: Bundle = JSON.parse(
      JSON.stringify(await withRegistryProof(source, answer.bundle(), blockNumber)),
    ) as Bundle;
    const pin = await pinOf(blockNumber);

    // The trust-gathering step, offline: the registry at the pinned block, as listNodes reads it.
    const trust: Trust = await trustFromRegistryProof(offline, { block: pin, deployment: trusted() });
    const rpc = await listNodes(chain.publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, blockNumber });
    expect(trust.nodes).toEqual([]);
    expect(trust.registry?.block).toEqual(pin);
    expect(trust.registry?.nodes).toEqual(
      rpc.map((n) => ({
        address: n.account,
        logKey: encodeVerifierKey(n.origin, fromHex(n.logKey)),
        stake: n.stake,
        status: n.status,
        capabilities: n.capabilityBits,
        endpoint: n.endpoint,
      })),
    );
    const entry = trust.registry?.nodes.find((n) => n.address === address);
    expect(entry?.logKey).toBe(verifierKey);
    expect(trust.registry !== undefined && entry !== undefined && isActiveNode(trust.registry, entry)).toBe(true);

    // Verification proper takes that trust: a registry that lacks the node refuses it, the proven one accepts.
    const empty = verifyBundle(offline, {
      nodes: [],
      ...(trust.registry ? { registry: { ...trust.registry, nodes: [] } } : {}),
    });
    expect(empty).toMatchObject({ ok: false, code: 'RECEIPT_NODE_UNREGISTERED' });
    expect(await verifyBundleOffline(offline, { block: pin, deployment: trusted() })).toMatchObject({ ok: true });

    // Every refusal is a result with its code, never a throw.
    expect(
      await verifyBundleOffline(offline, { block: await pinOf(blockNumber - 1n), deployment: trusted() }),
    ).toMatchObject({
      ok: false,
      code: 'REGISTRY_HEADER_MISMATCH',
    });
    expect(
      await verifyBundleOffline(offline, { block: pin, deployment: { ...trusted(), chainId: deployment.chainId + 1 } }),
    ).toMatchObject({ ok: false, code: 'REGISTRY_DEPLOYMENT_MISMATCH' });
    expect(await verifyBundleOffline(answer.bundle(), { block: pin, deployment: trusted() })).toMatchObject({
      ok: false,
      code: 'REGISTRY_PROOF_MISSING',
    });
  }, 120_000);
});
