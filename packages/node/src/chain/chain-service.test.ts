import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getAnchorHistory, getLatestAnchor, getNode, resolveModel } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { openCheckpoint, parseVerifierKey, toHex } from '@verity/protocol';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../test-support/wait.js';
import { startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { loadConfig } from '../config.js';
import { openKeystore } from '../keys.js';
import { startNode } from '../node.js';
import { rawLogKey } from './chain-service.js';

// A node on a real anvil: it registers itself, publishes what is pushed, anchors its log.
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
let chain: TestChain;
let deploymentFile: string;

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  deploymentFile = join(await mkdtemp(join(tmpdir(), 'verity-chain-')), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
});
afterAll(async () => {
  await chain?.stop();
});

async function nodeOnChain(dataDir: string, anchorIntervalMs = 100) {
  // The node's own account pays for its registration: fund it as an operator would.
  const keys = openKeystore(dataDir);
  await chain.testClient.setBalance({ address: keys.address as `0x${string}`, value: parseEther('10') });
  return startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        chain: {
          rpcUrl: chain.anvil.rpcUrl,
          deploymentFile,
          stakeWei: parseEther('2').toString(),
          anchorIntervalMs,
        },
      },
    }),
  );
}

describe('a node on a chain', () => {
  it('registers, publishes pushed models, anchors its checkpoints, and re-syncs on restart', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'verity-chain-node-'));
    let node = await nodeOnChain(dataDir);
    const { deployment } = node.context.chain as NonNullable<typeof node.context.chain>;
    const account = node.context.keys.address as `0x${string}`;
    const entry = await getNode(chain.publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, node: account });
    expect(entry).toMatchObject({
      endpoint: node.url,
      origin: node.context.keys.origin,
      logKey: rawLogKey(node.context.keys.logKey),
      stake: parseEther('2'),
      active: true,
    });
    // What it registers and what it says of itself agree: on a chain it serves quorum too.
    expect(entry?.capabilities).toEqual(
      expect.arrayContaining(['mode:signed', 'mode:quorum', 'mode:audited', 'mode:zk']),
    );
    expect((await (await fetch(`${node.url}/v1/node`)).json()).modes).toEqual(['signed', 'quorum', 'audited', 'zk']);

    const push = await fetch(`${node.url}/v1/models?name=iris&version=1.0.0`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
      body: readFileSync(IRIS),
    });
    expect(push.status).toBe(201);
    const { id } = (await push.json()) as { id: string };
    const published = await resolveModel(chain.publicClient, {
      modelRegistry: deployment.contracts.modelRegistry,
      name: 'iris',
      version: '1.0.0',
    });
    expect(published?.manifestCid).toBe(id);

    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${node.url}/v1/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'iris', input: { x: [[5.1, 3.5, 1.4, 0.2 + i]] } }),
      });
      expect(res.status).toBe(200);
    }
    // The anchor loop catches up with the log within a few intervals.
    const { checkpoint } = openCheckpoint(node.context.log.checkpoint(), [parseVerifierKey(node.context.keys.logKey)]);
    await until(async () => {
      const a = await getLatestAnchor(chain.publicClient, { logAnchor: deployment.contracts.logAnchor, node: account });
      return a !== undefined && Number(a.treeSize) >= checkpoint.size ? true : undefined;
    }, 'the anchor of the log');
    const anchor = await getLatestAnchor(chain.publicClient, {
      logAnchor: deployment.contracts.logAnchor,
      node: account,
    });
    expect(Number(anchor?.treeSize)).toBe(checkpoint.size);
    expect(anchor?.rootHash).toBe(`0x${toHex(checkpoint.rootHash)}`);

    // Restart: the same account and log; nothing to register again, the history continues.
    await node.stop();
    node = await nodeOnChain(dataDir);
    const again = await getNode(chain.publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, node: account });
    expect(again?.registeredAt).toBe(entry?.registeredAt);
    expect(again?.endpoint).toBe(node.url);
    const history = await getAnchorHistory(chain.publicClient, {
      logAnchor: deployment.contracts.logAnchor,
      node: account,
    });
    expect(history.map((h) => Number(h.treeSize))).toEqual(
      [...history.map((h) => Number(h.treeSize))].sort((x, y) => x - y),
    );
    expect((await (await fetch(`${node.url}/v1/node`)).json()).chain.chainId).toBe(deployment.chainId);
    await node.stop();
  }, 60_000);

  it('is refused on chain when it anchors a log rewritten after its last anchor (ANCHOR_INCONSISTENT)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'verity-chain-fork-'));
    // Anchoring by hand (interval 0), so each anchor is the one this test asks for.
    let node = await nodeOnChain(dataDir, 0);
    const chainService = () => node.context.chain as NonNullable<typeof node.context.chain>;
    const { logAnchor } = chainService().deployment.contracts;
    const account = node.context.keys.address as `0x${string}`;
    // A name of its own: `iris` on this chain is the first test's node's manifest.
    const push = await fetch(`${node.url}/v1/models?name=iris-fork&version=1.0.0`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
      body: readFileSync(IRIS),
    });
    expect(push.status).toBe(201);
    const infer = async (n: number, x: number) => {
      for (let i = 0; i < n; i++) {
        const res = await fetch(`${node.url}/v1/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'iris-fork', input: { x: [[5.1, 3.5, 1.4, x + i]] } }),
        });
        expect(res.status).toBe(200);
      }
    };
    await infer(2, 0.2);
    expect(await chainService().anchorNow()).toBe(2);
    // The log grows; the next anchor proves 2 → 5 from the anchor the chain holds.
    await infer(3, 0.4);
    expect(await chainService().anchorNow()).toBe(5);
    const anchored = await getLatestAnchor(chain.publicClient, { logAnchor, node: account });

    // The operator throws the log away and starts over with the same keys: a second history. Once
    // it is longer than the anchored one, its consistency proof from size 5 cannot hold on chain.
    await node.stop();
    await rm(join(dataDir, 'log'), { recursive: true });
    node = await nodeOnChain(dataDir, 0);
    await infer(7, 1.1);
    await expect(chainService().anchorNow()).rejects.toMatchObject({
      code: 'ANCHOR_INCONSISTENT',
      details: { revert: 'InconsistentAnchor', args: ['5', '7'] },
    });
    expect(await getLatestAnchor(chain.publicClient, { logAnchor, node: account })).toEqual(anchored);
    await node.stop();
  }, 60_000);

  it('refuses to start against a deployment that is not there', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'verity-chain-node-'));
    const wrong = join(dataDir, 'deployment.json');
    const d = await chain.deploy();
    await writeDeploymentFile(wrong, { ...d, chainId: d.chainId + 1 });
    await expect(
      startNode(
        loadConfig({
          overrides: {
            dataDir,
            port: 0,
            logLevel: 'silent',
            chain: { rpcUrl: chain.anvil.rpcUrl, deploymentFile: wrong },
          },
        }),
      ),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
