/**
 * A zk-settled dispute with a real node (docs/protocol.md §15.5, §15.7): a node on anvil pushes
 * iris with zk, publishes it and binds it on chain (it is its publisher), answers a request in
 * mode zk, and anchors its log. A challenger disputes the honest record with a false output; the
 * node's juror service proves the challenged input itself and settles the dispute at once with
 * `settleByProof`: the challenge fails, no jury is drawn, the node is credited the bond less the
 * jurors' share.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  challengeRecord,
  disputesAbi,
  getDispute,
  getDisputeCredit,
  getLatestAnchor,
  getZkBinding,
} from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import {
  createTensor,
  encodeRecord,
  encodeTensors,
  fromHex,
  type Receipt,
  sha256,
  toHex,
  type ZkEvidence,
  zkVkKey,
} from '@verity/protocol';
import { type Address, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../test-support/wait.js';
import type { Deployment } from '../../../contracts/src/deploy.js';
import { startTestChain, TEST_DISPUTE_RULES, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { loadConfig } from '../config.js';
import { openKeystore } from '../keys.js';
import { startNode, type VerityNode } from '../node.js';

const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const PTAU_DIR = process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');
const CHALLENGER = 6;
const ROW = [6.5, 3, 5.8, 2.2];

let chain: TestChain;
let deployment: Deployment;
let node: VerityNode;
const dirs: string[] = [];

beforeAll(async () => {
  chain = await startTestChain();
  deployment = await chain.deploy(TEST_DISPUTE_RULES);
  const dir = await mkdtemp(join(tmpdir(), 'verity-zk-settle-'));
  dirs.push(dir);
  const deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-zk-settle-node-'));
  dirs.push(dataDir);
  await chain.testClient.setBalance({ address: openKeystore(dataDir).address as Address, value: parseEther('10') });
  node = await startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        fsync: false,
        zk: { ptauDir: PTAU_DIR },
        disputes: { juror: true, intervalMs: 100 },
        chain: {
          rpcUrl: chain.anvil.rpcUrl,
          deploymentFile,
          stakeWei: parseEther('2').toString(),
          anchorIntervalMs: 100,
        },
      },
    }),
  );
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await chain?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('a node settles a dispute over its zk record by a proof', () => {
  it('binds the model at push, and its juror service proves the challenged input', async () => {
    const push = await fetch(`${node.url}/v1/models?name=iris-zk&zk=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
      body: readFileSync(IRIS),
    });
    expect(push.status).toBe(201);
    const { id: manifestCid } = (await push.json()) as { id: string };
    const res = await fetch(`${node.url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: manifestCid, input: { x: [ROW] }, mode: 'zk' }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { receipt: Receipt; zk: ZkEvidence };
    const { record, leafIndex } = body.receipt;
    expect(record.kind).toBe('zk');

    // Bound at push by its publisher, the node, to the key it proves with.
    const binding = await getZkBinding(chain.publicClient, {
      zkVerifiers: deployment.contracts.zkVerifiers,
      manifestCid,
    });
    expect(binding?.publisher).toBe(node.context.keys.address);
    expect(binding?.vkKey).toBe(zkVkKey(body.zk.vk));
    expect((binding?.boundAt ?? Number.POSITIVE_INFINITY) * 1000).toBeLessThanOrEqual(record.timestamp);

    const account = node.context.keys.address as Address;
    const anchor = await until(async () => {
      const a = await getLatestAnchor(chain.publicClient, { logAnchor: deployment.contracts.logAnchor, node: account });
      return a !== undefined && a.treeSize > BigInt(leafIndex) ? a : undefined;
    }, 'the node to anchor its record');
    const proofRes = await fetch(`${node.url}/v1/log/proof?index=${leafIndex}&size=${anchor.treeSize}`);
    const { proof } = (await proofRes.json()) as { proof: string[] };
    const input = encodeTensors({ x: createTensor('float32', [1, 4], Float32Array.from(ROW)) });
    expect(toHex(sha256(input))).toBe(record.inputDigest);

    // A false challenge: the record is the circuit's output.
    const disputes = deployment.contracts.disputes as Address;
    const { id } = await challengeRecord(chain.clients(CHALLENGER), {
      disputes,
      record: encodeRecord(record),
      leafIndex,
      treeSize: anchor.treeSize,
      proof: proof.map((h) => fromHex(h.replace(/^0x/, ''))),
      input,
      claimedOutput: sha256(new TextEncoder().encode('not the circuit’s output')),
    });
    const settled = await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return d.phase === 'resolved' ? d : undefined;
    }, 'the node to settle the dispute by a proof');
    expect(settled.outcome).toBe('challenge-failed');
    expect(settled.jurors).toEqual([]);
    const [event] = await chain.publicClient.getContractEvents({
      address: disputes,
      abi: disputesAbi,
      eventName: 'SettledByProof',
      args: { id },
      fromBlock: deployment.block,
      strict: true,
    });
    expect(event?.args.prover).toBe(account);
    expect(event?.args.provenOutput).toBe(`0x${record.outputDigest}`);
    const bond = TEST_DISPUTE_RULES.challengeBond;
    expect(await getDisputeCredit(chain.publicClient, { disputes, account })).toBe(
      bond - (bond * BigInt(TEST_DISPUTE_RULES.jurorShareBps)) / 10_000n,
    );
  });
});
