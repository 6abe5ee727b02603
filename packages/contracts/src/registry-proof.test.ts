/**
 * EIP-1186 registry proofs from a real anvil: gathered over JSON-RPC, verified offline by the
 * protocol core, equal to what `listNodes` reads over RPC. The committed fixture
 * (packages/protocol/fixtures/registry-proof/anvil.json) is written here, from anvil's answers,
 * with `VERITY_WRITE_REGISTRY_FIXTURE=1`; the protocol tests check it (and every tampered field)
 * in Node and in a browser without anvil.
 */
import { writeFile } from 'node:fs/promises';
import {
  encodeVerifierKey,
  fromHex,
  isVerityError,
  keccak256,
  type RegistryProofEvidence,
  type RegistrySnapshot,
  registrySnapshotFromProof,
  toHex,
} from '@verity/protocol';
import { hexToBytes } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment } from './deploy.js';
import { listNodes, registerNode, requestUnbond, withdrawStake } from './node-registry.js';
import { encodeBlockHeader, getRegistryProof, type RpcBlock } from './registry-proof.js';
import { fill32, MIN_STAKE, startTestChain, type TestChain, UNBONDING_DELAY } from './test-support/chain.js';

let chain: TestChain;

beforeAll(async () => {
  chain = await startTestChain();
}, 120_000);
afterAll(() => chain?.stop());

/** The registry as `listNodes` reads it over RPC, in the snapshot's shape. */
async function rpcSnapshot(d: Deployment, blockNumber: bigint): Promise<RegistrySnapshot> {
  const block = await chain.publicClient.getBlock({ blockNumber });
  const nodes = await listNodes(chain.publicClient, { nodeRegistry: d.contracts.nodeRegistry, blockNumber });
  return {
    chainId: d.chainId,
    nodeRegistry: d.contracts.nodeRegistry,
    block: { number: Number(blockNumber), hash: block.hash },
    minStake: d.params.minStake,
    nodes: nodes.map((n) => ({
      address: n.account,
      logKey: encodeVerifierKey(n.origin, fromHex(n.logKey)),
      stake: n.stake,
      status: n.status as 'registered' | 'unbonding',
      capabilities: n.capabilityBits,
      endpoint: n.endpoint,
    })),
  };
}

function deploymentOf(d: Deployment) {
  return { chainId: d.chainId, nodeRegistry: d.contracts.nodeRegistry, minStake: d.params.minStake };
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isVerityError(error) ? error.code : String(error)).toBe(code);
}

describe('block headers', () => {
  it('re-encode to the block hash for every block anvil makes', async () => {
    await chain.testClient.mine({ blocks: 1 });
    const latest = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    for (const n of [0n, latest]) {
      const block = (await chain.publicClient.request({
        method: 'eth_getBlockByNumber',
        params: [`0x${n.toString(16)}`, false],
      })) as RpcBlock;
      const header = encodeBlockHeader(block);
      expect(`0x${toHex(keccak256(hexToBytes(header)))}`).toBe(block.hash);
    }
  });

  it('refuses a block missing a fork field before one it has', () => {
    const block: RpcBlock = {
      parentHash: fill32(1),
      sha3Uncles: fill32(2),
      miner: `0x${'00'.repeat(20)}`,
      stateRoot: fill32(3),
      transactionsRoot: fill32(4),
      receiptsRoot: fill32(5),
      logsBloom: `0x${'00'.repeat(256)}`,
      difficulty: '0x0',
      number: '0x1',
      gasLimit: '0x1c9c380',
      gasUsed: '0x0',
      timestamp: '0x1',
      extraData: '0x',
      mixHash: fill32(6),
      nonce: '0x0000000000000000',
      withdrawalsRoot: fill32(7),
    };
    expect(() => encodeBlockHeader(block)).toThrow(/without the fork fields/);
  });
});

describe('registry proofs from anvil', () => {
  it('one node: verifies offline and equals listNodes over RPC', async () => {
    const d = await chain.deploy();
    await registerNode(chain.clients(1), {
      nodeRegistry: d.contracts.nodeRegistry,
      logKey: fill32(0x11),
      origin: 'verity.test/node-1',
      endpoint: 'http://127.0.0.1:8001',
      capabilities: ['mode:signed', 'runtime:onnx-native'],
      stake: MIN_STAKE,
    });
    const blockNumber = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const proof = await getRegistryProof(chain.publicClient, { nodeRegistry: d.contracts.nodeRegistry, blockNumber });
    const expected = await rpcSnapshot(d, blockNumber);
    const snapshot = await registrySnapshotFromProof(proof, expected.block, deploymentOf(d));
    expect(snapshot).toEqual(expected);
    expect(snapshot.nodes).toHaveLength(1);
    // The header itself can be the pin.
    expect(await registrySnapshotFromProof(proof, { header: proof.header }, deploymentOf(d))).toEqual(expected);
  }, 120_000);

  it('an empty registry proves zero nodes', async () => {
    const d = await chain.deploy();
    const blockNumber = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const proof = await getRegistryProof(chain.publicClient, { nodeRegistry: d.contracts.nodeRegistry, blockNumber });
    expect(proof.storageProof).toHaveLength(1);
    const expected = await rpcSnapshot(d, blockNumber);
    expect(await registrySnapshotFromProof(proof, expected.block, deploymentOf(d))).toEqual(expected);
  }, 120_000);

  it('three nodes (long strings, an unbonding node, one exited before): every entry, as listNodes reads it', async () => {
    const d = await chain.deploy();
    const nodeRegistry = d.contracts.nodeRegistry;
    const origin31 = 'verity.test/origin-of-31-bytes!';
    const endpoint32 = 'http://127.0.0.1:8002/32-bytes/x';
    expect([origin31.length, endpoint32.length]).toEqual([31, 32]);
    const origin128 = `verity.test/${'o'.repeat(116)}`;
    const endpoint256 = `https://node-three.verity.example/${'p'.repeat(222)}`;
    expect([origin128.length, endpoint256.length]).toEqual([128, 256]);
    const announce = [
      { i: 1, origin: 'verity.test/node-1', endpoint: 'http://127.0.0.1:8001', stake: MIN_STAKE },
      { i: 2, origin: origin31, endpoint: endpoint32, stake: MIN_STAKE * 3n },
      { i: 3, origin: 'verity.test/node-3-exits', endpoint: 'http://127.0.0.1:8003', stake: MIN_STAKE },
      { i: 4, origin: origin128, endpoint: endpoint256, stake: MIN_STAKE + 12345n },
    ];
    for (const a of announce) {
      await registerNode(chain.clients(a.i), {
        nodeRegistry,
        logKey: fill32(0x20 + a.i),
        origin: a.origin,
        endpoint: a.endpoint,
        capabilities: a.i === 4 ? 0xffff_ffff_ffff_ffffn : ['mode:signed', 'mode:quorum'],
        stake: a.stake,
      });
    }
    // Node 3 leaves (swap-and-pop moves node 4 into its place); node 2 starts unbonding.
    await requestUnbond(chain.clients(3), { nodeRegistry });
    await chain.testClient.increaseTime({ seconds: UNBONDING_DELAY });
    await chain.testClient.mine({ blocks: 1 });
    await withdrawStake(chain.clients(3), { nodeRegistry });
    await requestUnbond(chain.clients(2), { nodeRegistry });

    const blockNumber = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const proof = await getRegistryProof(chain.publicClient, { nodeRegistry, blockNumber });
    const expected = await rpcSnapshot(d, blockNumber);
    expect(expected.nodes.map((n) => n.status)).toEqual(['registered', 'unbonding', 'registered']);
    const snapshot = await registrySnapshotFromProof(proof, expected.block, deploymentOf(d));
    expect(snapshot).toEqual(expected);
    // 1 length + 3 elements + 3 × 5 struct slots + node 2's endpoint (1 word) + node 4's (4 + 8 words).
    expect(proof.storageProof).toHaveLength(1 + 3 + 15 + 1 + 12);

    if (process.env.VERITY_WRITE_REGISTRY_FIXTURE === '1') await writeFixture(d, proof, expected);

    // A proof of another registry (same chain, same block) is refused under this deployment.
    const other = await chain.deploy();
    const otherBlock = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    const otherProof = await getRegistryProof(chain.publicClient, {
      nodeRegistry: other.contracts.nodeRegistry,
      blockNumber: otherBlock,
    });
    const otherPin = (await rpcSnapshot(other, otherBlock)).block;
    await expectCode(registrySnapshotFromProof(otherProof, otherPin, deploymentOf(d)), 'REGISTRY_DEPLOYMENT_MISMATCH');
    // ...and relabelling it with this registry's address leaves an account proof for the wrong account.
    await expectCode(
      registrySnapshotFromProof({ ...otherProof, nodeRegistry }, otherPin, deploymentOf(d)),
      'REGISTRY_ACCOUNT_PROOF_INVALID',
    );
    // Before the registry existed: the gatherer says so, and a verifier given anvil's proof of
    // the absent account refuses it the same way.
    const early = other.block - 1n;
    await expectCode(
      getRegistryProof(chain.publicClient, { nodeRegistry: other.contracts.nodeRegistry, blockNumber: early }),
      'REGISTRY_DEPLOYMENT_MISMATCH',
    );
    const slot = `0x${'00'.repeat(31)}02` as const;
    const absent = await chain.publicClient.getProof({
      address: other.contracts.nodeRegistry,
      storageKeys: [slot],
      blockNumber: early,
    });
    const earlyBlock = (await chain.publicClient.request({
      method: 'eth_getBlockByNumber',
      params: [`0x${early.toString(16)}`, false],
    })) as RpcBlock;
    const earlyEvidence = {
      chainId: other.chainId,
      nodeRegistry: other.contracts.nodeRegistry,
      header: encodeBlockHeader(earlyBlock),
      accountProof: absent.accountProof.map((n) => n.toLowerCase()),
      storageProof: [{ key: slot, proof: absent.storageProof[0]?.proof.map((n) => n.toLowerCase()) ?? [] }],
    };
    await expectCode(
      registrySnapshotFromProof(
        earlyEvidence,
        { number: Number(early), hash: earlyBlock.hash as string },
        deploymentOf(other),
      ),
      'REGISTRY_DEPLOYMENT_MISMATCH',
    );
  }, 120_000);
});

/** Writes the fixture: anvil's answers, verbatim, with the snapshot `listNodes` read over RPC. */
async function writeFixture(d: Deployment, proof: RegistryProofEvidence, snapshot: RegistrySnapshot) {
  const fixture = {
    description:
      'NodeRegistry at one block of a real anvil (written by packages/contracts/src/registry-proof.test.ts with VERITY_WRITE_REGISTRY_FIXTURE=1): three nodes, one unbonding, one with a 128-byte origin and 256-byte endpoint, one with a 31-byte origin and 32-byte endpoint; a fourth exited before the block.',
    pinned: snapshot.block,
    deployment: { chainId: d.chainId, nodeRegistry: d.contracts.nodeRegistry, minStake: d.params.minStake.toString() },
    registryProof: proof,
    snapshot: {
      ...snapshot,
      minStake: snapshot.minStake.toString(),
      nodes: snapshot.nodes.map((n) => ({ ...n, stake: n.stake.toString(), capabilities: n.capabilities.toString() })),
    },
  };
  const path = new URL('../../protocol/fixtures/registry-proof/anvil.json', import.meta.url);
  await writeFile(path, `${JSON.stringify(fixture, null, 2)}\n`);
}
