import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getAnchorHistory } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, openKeystore, startNode, type VerityNode } from '@verity/node';
import { type Trust, verifyBundle } from '@verity/protocol';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { anchorTrust, createClient, linkToAnchors, withAnchors } from './index.js';

// A node anchors its log on a real anvil; a receipt linked to the anchor verifies, and the same
// node caught rewriting its log after anchoring cannot link anything to what it anchored.
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
let chain: TestChain;
let deploymentFile: string;
let dataDir: string;
let node: VerityNode;

async function start(): Promise<VerityNode> {
  return startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        fsync: false,
        chain: { rpcUrl: chain.anvil.rpcUrl, deploymentFile, anchorIntervalMs: 0 },
      },
    }),
  );
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  const dir = await mkdtemp(join(tmpdir(), 'verity-anchor-'));
  deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  dataDir = join(dir, 'node');
  mkdirSync(dataDir, { mode: 0o700 });
  const { address } = openKeystore(dataDir);
  await chain.testClient.setBalance({ address: address as `0x${string}`, value: parseEther('10') });
  node = await start();
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  await admin.pushModel({ name: 'iris', data: new Uint8Array(readFileSync(IRIS)) });
});
afterAll(async () => {
  await node?.stop();
  await chain?.stop();
});

const row = (i: number) => ({ x: [[4 + i / 10, 3, 1.4, 0.2]] });

describe('anchored logs', () => {
  it('links receipts to the anchored tree head; a log rewritten after anchoring is caught', async () => {
    const source = {
      rpcUrl: chain.anvil.rpcUrl,
      logAnchor: node.context.chain?.deployment.contracts.logAnchor as `0x${string}`,
    };
    const address = node.context.keys.address;
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const trust: Trust = await client.trust();
    const early = [];
    for (let i = 0; i < 3; i++) early.push(await client.infer({ model: 'iris', input: row(i) }));
    expect(await node.context.chain?.anchorNow()).toBe(3);
    const later = [];
    for (let i = 3; i < 5; i++) later.push(await client.infer({ model: 'iris', input: row(i) }));
    const anchors = await anchorTrust(source, [address]);
    expect(anchors).toEqual([expect.objectContaining({ size: 3 })]);

    // Before and after the anchor, receipts link to it.
    for (const r of [early[0], early[2], later[1]]) {
      const linked = await linkToAnchors(client.base, (r as NonNullable<typeof r>).bundle(), anchors);
      expect(verifyBundle(linked, withAnchors(trust, anchors), { requireAnchor: true })).toMatchObject({ ok: true });
    }
    // Without the link, an anchor is required and missing.
    expect(
      verifyBundle((later[1] as NonNullable<(typeof later)[1]>).bundle(), withAnchors(trust, anchors), {
        requireAnchor: true,
      }),
    ).toMatchObject({ ok: false, code: 'BUNDLE_ANCHOR_MISMATCH' });

    // The node throws its log away and writes another history under the same key.
    await node.stop();
    await rm(join(dataDir, 'log'), { recursive: true, force: true });
    node = await start();
    const liar = createClient({ url: node.url, trust });
    const rewritten = [];
    for (let i = 10; i < 15; i++) rewritten.push(await liar.infer({ model: 'iris', input: row(i) }));
    // Every new receipt verifies alone (same key), but none links to the anchored root.
    const atAnchoredSize = rewritten[2] as NonNullable<(typeof rewritten)[2]>;
    expect(
      verifyBundle(await linkToAnchors(liar.base, atAnchoredSize.bundle(), anchors), withAnchors(trust, anchors), {
        requireAnchor: true,
      }),
    ).toMatchObject({ ok: false, code: 'BUNDLE_ANCHOR_MISMATCH' });
    for (const r of [rewritten[1], rewritten[4]]) {
      const linked = await linkToAnchors(liar.base, (r as NonNullable<typeof r>).bundle(), anchors);
      expect(verifyBundle(linked, withAnchors(trust, anchors), { requireAnchor: true })).toMatchObject({
        ok: false,
        code: 'BUNDLE_CONSISTENCY_INVALID',
      });
    }
    // Its graceful stop anchored the honest log at size 5; the rewritten head at 5 contradicts
    // that anchor, and sizes on chain only grow: the rewrite cannot be papered over.
    expect(await node.context.chain?.anchorNow()).toBeUndefined();
    const history = await getAnchorHistory(chain.publicClient, {
      logAnchor: source.logAnchor,
      node: address as `0x${string}`,
    });
    expect(history.map((h) => Number(h.treeSize))).toEqual([3, 5]);
    const latest = await anchorTrust(source, [address]);
    expect(
      verifyBundle((rewritten[4] as NonNullable<(typeof rewritten)[4]>).bundle(), withAnchors(trust, latest), {
        requireAnchor: true,
      }),
    ).toMatchObject({ ok: false, code: 'BUNDLE_ANCHOR_MISMATCH' });
  }, 60_000);
});
