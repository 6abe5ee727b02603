import { createMemoryTree, hashLeaf, type MemoryTree, toHex } from '@verity/protocol';
import { type Hex, parseEther, parseEventLogs } from 'viem';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deployment } from './deploy.js';
import { logAnchorAbi } from './generated/log-anchor.js';
import {
  anchorCheckpoint,
  getAnchoredRoot,
  getAnchoredTree,
  getAnchorHistory,
  getFirstAnchor,
  getLatestAnchor,
} from './log-anchor.js';
import { registerNode, requestUnbond, slashNode } from './node-registry.js';
import { expectRevert, fill32, MIN_STAKE, SLASHER, startTestChain, type TestChain } from './test-support/chain.js';

let chain: TestChain;
let d: Deployment;

beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(() => chain.stop());
beforeEach(async () => {
  d = await chain.deploy();
});

const register = (i: number) =>
  registerNode(chain.clients(i), {
    nodeRegistry: d.contracts.nodeRegistry,
    logKey: fill32(i),
    origin: `verity.test/node-${i}`,
    endpoint: `http://127.0.0.1:${8000 + i}`,
    capabilities: ['mode:signed'],
    stake: MIN_STAKE,
  });
/** Anchors (treeSize, rootHash) with the given proof (default: none, as for a first anchor). */
const anchor = (
  i: number,
  treeSize: number,
  rootHash: Hex | Uint8Array,
  consistency: readonly (Hex | Uint8Array)[] = [],
) => anchorCheckpoint(chain.clients(i), { logAnchor: d.contracts.logAnchor, treeSize, rootHash, consistency });

/** A log of `n` leaves; `fork` changes leaf `fork.at` (a history that differs from there on). */
function treeOf(n: number, fork?: { at: number }): MemoryTree {
  const tree = createMemoryTree();
  for (let i = 0; i < n; i++) tree.append(hashLeaf(new Uint8Array([i === fork?.at ? 0xff : 0, i >> 8, i & 0xff])));
  return tree;
}
const LOG = treeOf(300);

/**
 * What an honest node does: reads its latest anchor on chain and proves consistency from there
 * with its own log.
 */
async function anchorLog(i: number, tree: MemoryTree, size: number) {
  const latest = await getLatestAnchor(chain.publicClient, {
    logAnchor: d.contracts.logAnchor,
    node: chain.address(i),
  });
  const consistency = latest === undefined ? [] : tree.consistencyProof(Number(latest.treeSize), size);
  return anchor(i, size, tree.root(size), consistency);
}
const hex = (b: Uint8Array): Hex => `0x${toHex(b)}`;

describe('LogAnchor', () => {
  it('accepts anchors from registered nodes only', async () => {
    const args = await expectRevert(anchor(1, 1, LOG.root(1)), 'NODE_NOT_ACTIVE', 'NodeNotActive');
    expect(args).toEqual([chain.address(1)]);
    await register(1);
    const receipt = await anchor(1, 5, LOG.root(5));
    const [event] = parseEventLogs({ abi: logAnchorAbi, logs: receipt.logs, eventName: 'Anchored' });
    expect(event?.args).toEqual({ node: chain.address(1), treeSize: 5n, rootHash: hex(LOG.root(5)), index: 0n });
    const q = { logAnchor: d.contracts.logAnchor, node: chain.address(1) };
    expect(await getLatestAnchor(chain.publicClient, q)).toEqual({
      node: chain.address(1),
      treeSize: 5n,
      rootHash: hex(LOG.root(5)),
      blockNumber: receipt.blockNumber,
    });
    expect(await getAnchoredRoot(chain.publicClient, { ...q, treeSize: 5 })).toBe(hex(LOG.root(5)));
    expect(await getAnchoredRoot(chain.publicClient, { ...q, treeSize: 4 })).toBeUndefined();
    expect(await getLatestAnchor(chain.publicClient, { ...q, node: chain.address(2) })).toBeUndefined();
  });

  it('keeps every anchored tree with the block, the time and the size before it; finds the first covering an index', async () => {
    await register(1);
    const q = { logAnchor: d.contracts.logAnchor, node: chain.address(1) };
    const first = await anchorLog(1, LOG, 5);
    await chain.testClient.increaseTime({ seconds: 1000 });
    const second = await anchorLog(1, LOG, 12);
    const time = async (blockNumber: bigint) => (await chain.publicClient.getBlock({ blockNumber })).timestamp;
    expect(await getAnchoredTree(chain.publicClient, { ...q, treeSize: 5 })).toEqual({
      node: chain.address(1),
      treeSize: 5n,
      rootHash: hex(LOG.root(5)),
      blockNumber: first.blockNumber,
      timestamp: await time(first.blockNumber),
      previousSize: 0n,
    });
    const later = await getAnchoredTree(chain.publicClient, { ...q, treeSize: 12 });
    expect(later).toMatchObject({
      blockNumber: second.blockNumber,
      timestamp: await time(second.blockNumber),
      previousSize: 5n,
    });
    expect((later?.timestamp ?? 0n) - (await time(first.blockNumber))).toBeGreaterThanOrEqual(1000n);
    expect(await getAnchoredTree(chain.publicClient, { ...q, treeSize: 6 })).toBeUndefined();
    // Leaves 0–4 were first anchored at size 5, 5–11 at 12; 12 is not anchored yet.
    const firstOf = (leafIndex: number) => getFirstAnchor(chain.publicClient, { ...q, leafIndex, fromBlock: d.block });
    expect((await firstOf(4))?.treeSize).toBe(5n);
    expect((await firstOf(5))?.treeSize).toBe(12n);
    expect(await firstOf(12)).toBeUndefined();
    // At the first anchor's block, leaf 5 was not anchored yet.
    expect(
      await getFirstAnchor(chain.publicClient, {
        ...q,
        leafIndex: 5,
        fromBlock: d.block,
        blockNumber: first.blockNumber,
      }),
    ).toBeUndefined();
  });

  it('requires tree sizes to increase strictly, per node', async () => {
    await register(1);
    await register(2);
    await anchor(1, 5, LOG.root(5));
    // The same size with another root (a fork), the same checkpoint again, a smaller size, size 0.
    const fork = treeOf(9, { at: 2 });
    const args = await expectRevert(anchor(1, 5, fork.root(5)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    expect(args).toEqual(['5', '5']);
    await expectRevert(anchor(1, 5, LOG.root(5)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    await expectRevert(anchor(1, 4, LOG.root(4)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    await expectRevert(anchor(2, 0, LOG.root(0)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    await expectRevert(anchor(1, 6, fill32(0), LOG.consistencyProof(5, 6)), 'CHAIN_REVERTED', 'RootInvalid');
    // Another node's log is independent; roots and proofs may be given as bytes or hex.
    await anchor(2, 1, fork.root(1));
    await anchor(1, 9, hex(LOG.root(9)), LOG.consistencyProof(5, 9).map(hex));

    const q = { logAnchor: d.contracts.logAnchor, node: chain.address(1) };
    expect(await getAnchoredRoot(chain.publicClient, { ...q, treeSize: 5 })).toBe(hex(LOG.root(5)));
    expect((await getLatestAnchor(chain.publicClient, q))?.treeSize).toBe(9n);
    expect(await getAnchoredRoot(chain.publicClient, { ...q, node: chain.address(2), treeSize: 1 })).toBe(
      hex(fork.root(1)),
    );
  });

  it('keeps the history in events, for one node or all', async () => {
    await register(1);
    await register(2);
    const r1 = await anchorLog(1, LOG, 3);
    const r2 = await anchorLog(2, LOG, 7);
    const r3 = await anchorLog(1, LOG, 8);
    const all = await getAnchorHistory(chain.publicClient, { logAnchor: d.contracts.logAnchor, fromBlock: d.block });
    expect(all.map((a) => [a.node, a.treeSize, a.rootHash, a.index, a.blockNumber, a.transactionHash])).toEqual([
      [chain.address(1), 3n, hex(LOG.root(3)), 0n, r1.blockNumber, r1.transactionHash],
      [chain.address(2), 7n, hex(LOG.root(7)), 0n, r2.blockNumber, r2.transactionHash],
      [chain.address(1), 8n, hex(LOG.root(8)), 1n, r3.blockNumber, r3.transactionHash],
    ]);
    const one = await getAnchorHistory(chain.publicClient, {
      logAnchor: d.contracts.logAnchor,
      node: chain.address(1),
      fromBlock: d.block,
    });
    expect(one.map((a) => a.treeSize)).toEqual([3n, 8n]);
    // The latest anchor as it was at a past block.
    const then = await getLatestAnchor(chain.publicClient, {
      logAnchor: d.contracts.logAnchor,
      node: chain.address(1),
      blockNumber: r2.blockNumber,
    });
    expect(then?.treeSize).toBe(3n);
  });

  it('refuses anchors from unbonding nodes and from nodes slashed below the minimum', async () => {
    await register(1);
    await register(2);
    await requestUnbond(chain.clients(1), { nodeRegistry: d.contracts.nodeRegistry });
    await expectRevert(anchor(1, 1, LOG.root(1)), 'NODE_NOT_ACTIVE', 'NodeNotActive');
    await slashNode(chain.clients(SLASHER), {
      nodeRegistry: d.contracts.nodeRegistry,
      node: chain.address(2),
      amount: parseEther('0.1'),
      reason: 'test',
    });
    await expectRevert(anchor(2, 1, LOG.root(1)), 'NODE_NOT_ACTIVE', 'NodeNotActive');
  });

  it('accepts each anchor that extends the previous one, as the log grows', async () => {
    await register(1);
    // Sizes across powers of two, where the proof's shape changes.
    const sizes = [1, 2, 3, 4, 8, 9, 16, 31, 64, 100, 255, 256, 257, 300];
    for (const size of sizes) await anchorLog(1, LOG, size);
    const history = await getAnchorHistory(chain.publicClient, {
      logAnchor: d.contracts.logAnchor,
      node: chain.address(1),
      fromBlock: d.block,
    });
    expect(history.map((a) => [Number(a.treeSize), a.rootHash])).toEqual(sizes.map((s) => [s, hex(LOG.root(s))]));
  });

  it('refuses an anchor of a history that forks from the previous anchor (ANCHOR_INCONSISTENT)', async () => {
    await register(1);
    await anchorLog(1, LOG, 5);
    // The node rewrote leaf 2 (before its anchored size 5) and proves 5 → 9 within its new log:
    // the proof is honest for the fork, but the fork's size-5 root is not the anchored one.
    const fork = treeOf(9, { at: 2 });
    const args = await expectRevert(
      anchor(1, 9, fork.root(9), fork.consistencyProof(5, 9)),
      'ANCHOR_INCONSISTENT',
      'InconsistentAnchor',
    );
    expect(args).toEqual(['5', '9']);
    // Nor with the honest log's proof and the fork's root, at a size past a power of two.
    await expectRevert(anchor(1, 9, fork.root(9), LOG.consistencyProof(5, 9)), 'ANCHOR_INCONSISTENT');
    // A fork that changes only leaves after the anchor is an honest extension.
    const extension = treeOf(9, { at: 6 });
    await anchorLog(1, extension, 9);
    // …and from then on the original log (which differs at leaf 6) is the fork.
    await expectRevert(anchor(1, 12, LOG.root(12), LOG.consistencyProof(9, 12)), 'ANCHOR_INCONSISTENT');
  });

  it('refuses proofs from the wrong previous size, tampered, truncated, extended or missing', async () => {
    await register(1);
    await register(2);
    // A first anchor proves nothing: it must come with an empty proof.
    await expectRevert(anchor(2, 5, LOG.root(5), LOG.consistencyProof(3, 5)), 'ANCHOR_INCONSISTENT');
    await anchorLog(1, LOG, 6);
    const proof = LOG.consistencyProof(6, 13);
    const flipped = proof.map((h, i) => (i === 1 ? h.map((b, j) => (j === 0 ? b ^ 1 : b)) : h));
    const cases: [string, readonly Uint8Array[]][] = [
      ['proof from size 5 (not the anchored 6)', LOG.consistencyProof(5, 13)],
      ['proof from size 7', LOG.consistencyProof(7, 13)],
      ['proof to size 12 offered for 13', LOG.consistencyProof(6, 12)],
      ['a byte flipped in proof[1]', flipped],
      ['last hash missing', proof.slice(0, -1)],
      ['an extra hash', [...proof, LOG.root(1)]],
      ['no proof', []],
    ];
    for (const [what, consistency] of cases) {
      const error = await anchor(1, 13, LOG.root(13), consistency).then(
        () => 'accepted',
        (e: { code?: string }) => e.code,
      );
      expect([what, error]).toEqual([what, 'ANCHOR_INCONSISTENT']);
    }
    await anchor(1, 13, LOG.root(13), proof);
  });
});
