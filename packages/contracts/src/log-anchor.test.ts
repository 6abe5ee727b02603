import { parseEther, parseEventLogs } from 'viem';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deployment } from './deploy.js';
import { logAnchorAbi } from './generated/log-anchor.js';
import { anchorCheckpoint, getAnchoredRoot, getAnchorHistory, getLatestAnchor } from './log-anchor.js';
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
const anchor = (i: number, treeSize: number, rootHash: `0x${string}` | Uint8Array) =>
  anchorCheckpoint(chain.clients(i), { logAnchor: d.contracts.logAnchor, treeSize, rootHash });

describe('LogAnchor', () => {
  it('accepts anchors from registered nodes only', async () => {
    const args = await expectRevert(anchor(1, 1, fill32(0xaa)), 'NODE_NOT_ACTIVE', 'NodeNotActive');
    expect(args).toEqual([chain.address(1)]);
    await register(1);
    const receipt = await anchor(1, 5, fill32(0xaa));
    const [event] = parseEventLogs({ abi: logAnchorAbi, logs: receipt.logs, eventName: 'Anchored' });
    expect(event?.args).toEqual({ node: chain.address(1), treeSize: 5n, rootHash: fill32(0xaa), index: 0n });
    const q = { logAnchor: d.contracts.logAnchor, node: chain.address(1) };
    expect(await getLatestAnchor(chain.publicClient, q)).toEqual({
      node: chain.address(1),
      treeSize: 5n,
      rootHash: fill32(0xaa),
      blockNumber: receipt.blockNumber,
    });
    expect(await getAnchoredRoot(chain.publicClient, { ...q, treeSize: 5 })).toBe(fill32(0xaa));
    expect(await getAnchoredRoot(chain.publicClient, { ...q, treeSize: 4 })).toBeUndefined();
    expect(await getLatestAnchor(chain.publicClient, { ...q, node: chain.address(2) })).toBeUndefined();
  });

  it('requires tree sizes to increase strictly, per node', async () => {
    await register(1);
    await register(2);
    await anchor(1, 5, fill32(0xaa));
    // The same size with another root (a fork), the same checkpoint again, a smaller size, size 0.
    const args = await expectRevert(anchor(1, 5, fill32(0xbb)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    expect(args).toEqual(['5', '5']);
    await expectRevert(anchor(1, 5, fill32(0xaa)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    await expectRevert(anchor(1, 4, fill32(0xcc)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    await expectRevert(anchor(2, 0, fill32(0xcc)), 'ANCHOR_NOT_INCREASING', 'TreeSizeNotIncreasing');
    await expectRevert(anchor(1, 6, fill32(0)), 'CHAIN_REVERTED', 'RootInvalid');
    // Another node's log is independent; roots may be given as bytes.
    await anchor(2, 1, new Uint8Array(32).fill(0xdd));
    await anchor(1, 9, fill32(0xee));

    const q = { logAnchor: d.contracts.logAnchor, node: chain.address(1) };
    expect(await getAnchoredRoot(chain.publicClient, { ...q, treeSize: 5 })).toBe(fill32(0xaa));
    expect((await getLatestAnchor(chain.publicClient, q))?.treeSize).toBe(9n);
    expect(await getAnchoredRoot(chain.publicClient, { ...q, node: chain.address(2), treeSize: 1 })).toBe(fill32(0xdd));
  });

  it('keeps the history in events, for one node or all', async () => {
    await register(1);
    await register(2);
    const r1 = await anchor(1, 3, fill32(1));
    const r2 = await anchor(2, 7, fill32(2));
    const r3 = await anchor(1, 8, fill32(3));
    const all = await getAnchorHistory(chain.publicClient, { logAnchor: d.contracts.logAnchor, fromBlock: d.block });
    expect(all.map((a) => [a.node, a.treeSize, a.rootHash, a.index, a.blockNumber, a.transactionHash])).toEqual([
      [chain.address(1), 3n, fill32(1), 0n, r1.blockNumber, r1.transactionHash],
      [chain.address(2), 7n, fill32(2), 0n, r2.blockNumber, r2.transactionHash],
      [chain.address(1), 8n, fill32(3), 1n, r3.blockNumber, r3.transactionHash],
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
    await expectRevert(anchor(1, 1, fill32(1)), 'NODE_NOT_ACTIVE', 'NodeNotActive');
    await slashNode(chain.clients(SLASHER), {
      nodeRegistry: d.contracts.nodeRegistry,
      node: chain.address(2),
      amount: parseEther('0.1'),
      reason: 'test',
    });
    await expectRevert(anchor(2, 1, fill32(1)), 'NODE_NOT_ACTIVE', 'NodeNotActive');
  });
});
