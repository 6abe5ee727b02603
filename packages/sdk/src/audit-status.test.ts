import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  challengeRecord,
  type Deployment,
  type DisputeParams,
  deploymentToJson,
  getFirstAnchor,
  getLatestAnchor,
  registerNode,
} from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import { encodeRecord, fromBase64, fromHex, type Receipt } from '@verity/protocol';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { fill32, startTestChain, TEST_DISPUTE_RULES, type TestChain } from '../../contracts/src/test-support/chain.js';
import { voteByHand } from '../../contracts/src/test-support/jury.js';
import { openKeystore } from '../../node/src/keys.js';
import { backdateRecords, startLyingNode } from '../../node/src/test-support/lying-node.js';
import { auditStatus, type Client, createClient } from './index.js';

// A real node that lies (test code only) on a real anvil answers audited requests; the status of
// each answer is read from the chain: pending, disputed, refuted, final, with the window counted
// from the record's first anchor on chain; a backdated record refused (AUDIT_TIMESTAMP_STALE), an
// unanchored one pending without a window, then AUDIT_NOT_ANCHORED.
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const WINDOW = 600;
const RULES: DisputeParams = { ...TEST_DISPUTE_RULES, challengeWindow: WINDOW };
const CHALLENGER = 6;
const JURORS = [2, 3, 4, 5];
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };

let chain: TestChain;
let deployment: Deployment;
let liar: VerityNode;
let honest: VerityNode;
let client: Client;
const dirs: string[] = [];
/** Receipts of audited answers, by name, as the tests make them. */
const answers: Record<string, Receipt & { audit?: { windowClosesAt: number; payload: string } }> = {};

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verity-audit-status-'));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  chain = await startTestChain();
  deployment = await chain.deploy(RULES);
  const deploymentFile = join(await tempDir(), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  for (const i of JURORS) {
    await registerNode(chain.clients(i), {
      nodeRegistry: deployment.contracts.nodeRegistry,
      logKey: fill32(i),
      origin: `verity.test/juror-${i}`,
      endpoint: `http://127.0.0.1:${8000 + i}`,
      capabilities: ['mode:signed'],
      stake: parseEther('1'),
    });
  }
  const liarDir = await tempDir();
  await chain.testClient.setBalance({
    address: openKeystore(liarDir).address as `0x${string}`,
    value: parseEther('10'),
  });
  liar = await startLyingNode(
    loadConfig({
      overrides: {
        dataDir: liarDir,
        port: 0,
        logLevel: 'silent',
        fsync: false,
        // The jury's work is done by hand here: no juror service to race it (disputes.juror).
        disputes: { juror: false },
        chain: {
          rpcUrl: chain.anvil.rpcUrl,
          deploymentFile,
          stakeWei: parseEther('3').toString(),
          anchorIntervalMs: 100,
        },
      },
    }),
  );
  honest = await startNode(
    loadConfig({ overrides: { dataDir: await tempDir(), port: 0, logLevel: 'silent', fsync: false } }),
  );
  // Trust comes from the chain: the client names it; the liar is registered there.
  client = createClient({
    url: liar.url,
    apiKey: liar.context.keys.apiKey,
    chain: { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson(deployment) },
  });
  const data = readFileSync(IRIS);
  await client.pushModel({ name: 'iris', data });
  await createClient({ url: honest.url, apiKey: honest.context.keys.apiKey }).pushModel({ name: 'iris', data });
}, 120_000);

afterAll(async () => {
  await liar?.stop();
  await honest?.stop();
  await chain?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** An audited answer from the liar, once the liar anchored a tree that covers its record. */
async function auditedAnswer(name: string) {
  const result = await client.infer({ model: 'iris', input: INPUT, mode: 'audited' });
  expect(result.receipt.record.mode).toBe('audited');
  const node = result.receipt.record.node as `0x${string}`;
  await until(async () => {
    const a = await getLatestAnchor(chain.publicClient, { logAnchor: deployment.contracts.logAnchor, node });
    return a !== undefined && a.treeSize > BigInt(result.receipt.leafIndex) ? a : undefined;
  }, 'the liar to anchor its record');
  // The first anchor covering the record: the one a challenge proves against.
  const anchor = await getFirstAnchor(chain.publicClient, {
    logAnchor: deployment.contracts.logAnchor,
    node,
    leafIndex: result.receipt.leafIndex,
    fromBlock: deployment.block,
  });
  if (anchor === undefined) throw new Error('no anchor covers the record');
  answers[name] = Object.assign(result.receipt, result.audit === undefined ? {} : { audit: result.audit });
  return { receipt: result.receipt, anchor };
}

describe('the audit status of an answer, read from the chain', () => {
  it('pending while the window is open (its close counted from the first anchor on chain, not the node’s word)', async () => {
    const { receipt, anchor } = await auditedAnswer('a');
    const status = await client.auditStatus(receipt);
    expect(status).toMatchObject({
      status: 'pending',
      disputes: [],
      anchor: { treeSize: anchor.treeSize, block: anchor.blockNumber, time: anchor.timestamp },
      auditRatePpm: RULES.auditRatePpm,
    });
    expect(status.windowClosesAt).toBe(anchor.timestamp + BigInt(WINDOW));
    // The node's receipt states until when it keeps the payload (its timestamp + the window + a
    // margin for the anchor to land): not before the chain's close.
    expect(answers.a?.audit?.windowClosesAt).toBeGreaterThanOrEqual(Number(status.windowClosesAt) * 1000);
    // Whether it is in the audit sample, once the block after its anchor is mined (here 100 %).
    if (status.block > anchor.blockNumber) expect(status.sampled).toBe(true);
    await chain.testClient.mine({ blocks: 1 });
    expect((await client.auditStatus(receipt)).sampled).toBe(true);
    // The same without a client: a public client and the deployment (the proof is asked of the
    // endpoint the node registered).
    const direct = await auditStatus(
      { publicClient: chain.publicClient, deployment },
      { record: receipt.record, leafIndex: receipt.leafIndex },
    );
    expect(direct.status).toBe('pending');
  }, 120_000);

  it('refuses a backdated record (AUDIT_TIMESTAMP_STALE); its window runs from its anchor all the same', async () => {
    const stop = backdateRecords(liar, 2 * 3600_000);
    let receipt: Receipt;
    try {
      ({ receipt } = await auditedAnswer('backdated'));
    } finally {
      stop();
    }
    // Its stated window closed an hour before it was even logged.
    const latest = await chain.publicClient.getBlock();
    expect(BigInt(Math.floor(receipt.record.timestamp / 1000) + WINDOW)).toBeLessThan(latest.timestamp);
    await expect(client.auditStatus(receipt)).rejects.toMatchObject({ code: 'AUDIT_TIMESTAMP_STALE' });
    // Past the node's misstated time, the record was open to challenges for a whole window from
    // its anchor (Disputes counts it so): with a tolerance wider than the backdating, pending.
    const widened = await client.auditStatus(receipt, { toleranceSeconds: 3 * 3600 });
    expect(widened.status).toBe('pending');
    expect(widened.windowClosesAt).toBe((widened.anchor?.time ?? 0n) + BigInt(WINDOW));
  }, 120_000);

  it('accepts a clock a little behind (within the tolerance, anchored inside the window): pending', async () => {
    const stop = backdateRecords(liar, 5 * 60_000);
    let receipt: Receipt;
    try {
      ({ receipt } = await auditedAnswer('late-clock'));
    } finally {
      stop();
    }
    expect((await client.auditStatus(receipt)).status).toBe('pending');
  }, 120_000);

  it('disputed while a challenge is open, refuted once the jury slashed the node for it', async () => {
    const { receipt, anchor } = await auditedAnswer('b');
    const disputes = deployment.contracts.disputes as `0x${string}`;
    const proofRes = await fetch(`${liar.url}/v1/log/proof?index=${receipt.leafIndex}&size=${anchor.treeSize}`);
    const { proof } = (await proofRes.json()) as { proof: string[] };
    const payload = (await (await fetch(`${liar.url}${answers.b?.audit?.payload}`)).json()) as { input: string };
    const truth = await createClient({ url: honest.url, insecureTrustNode: true }).infer({
      model: 'iris',
      input: INPUT,
    });
    expect(truth.receipt.record.outputDigest).not.toBe(receipt.record.outputDigest);
    const { id, pool } = await challengeRecord(chain.clients(CHALLENGER), {
      disputes,
      record: encodeRecord(receipt.record),
      leafIndex: receipt.leafIndex,
      treeSize: anchor.treeSize,
      proof: proof.map((h) => fromHex(h.replace(/^0x/, ''))),
      input: fromBase64(payload.input),
      claimedOutput: fromHex(truth.receipt.record.outputDigest),
    });
    expect(await client.auditStatus(receipt)).toMatchObject({
      status: 'disputed',
      disputeId: id,
      disputes: [{ id, phase: 'awaiting-draw', outcome: 'none' }],
    });

    // The jury votes by hand what the honest node computed for the same input; the record stays
    // disputed while the votes are committed.
    const vote = fromHex(truth.receipt.record.outputDigest);
    const { resolution } = await voteByHand(chain, {
      disputes,
      id,
      pool,
      by: CHALLENGER,
      candidates: JURORS,
      vote: () => vote,
      afterCommit: async () => expect((await client.auditStatus(receipt)).status).toBe('disputed'),
    });
    expect(resolution).toMatchObject({ outcome: 'node-lied' });

    expect(await client.auditStatus(receipt)).toMatchObject({
      status: 'refuted',
      disputeId: id,
      disputes: [{ id, phase: 'resolved', outcome: 'node-lied' }],
    });
  }, 180_000);

  it('final once the window passed with no dispute lost; refuted stays refuted', async () => {
    const a = answers.a as Receipt;
    await chain.testClient.increaseTime({ seconds: WINDOW + 1 });
    await chain.testClient.mine({ blocks: 1 });
    const status = await client.auditStatus(a);
    expect(status).toMatchObject({ status: 'final', disputes: [] });
    expect(status.blockTime).toBeGreaterThan(status.windowClosesAt ?? 0n);
    expect((await client.auditStatus(answers.b as Receipt)).status).toBe('refuted');
    // Read at an earlier block, the same record was pending.
    expect((await client.auditStatus(a, { blockNumber: status.block - 1n })).status).toBe('pending');
  }, 120_000);

  it('refuses a record claimed at another index (AUDIT_ANCHOR_INVALID): the anchored root does not include it', async () => {
    const a = answers.a as Receipt;
    const b = answers.b as Receipt;
    await expect(client.auditStatus({ record: a.record, leafIndex: b.leafIndex })).rejects.toMatchObject({
      code: 'AUDIT_ANCHOR_INVALID',
    });
  }, 60_000);

  it('an unanchored record is pending with no window (nobody can challenge it yet), then AUDIT_NOT_ANCHORED', async () => {
    const a = answers.a as Receipt;
    // A record the node has not anchored: here one claimed past every anchored size.
    const latest = await getLatestAnchor(chain.publicClient, {
      logAnchor: deployment.contracts.logAnchor,
      node: a.record.node as `0x${string}`,
    });
    const unanchored = { record: a.record, leafIndex: Number(latest?.treeSize ?? 0n) + 1000 };
    const stated = BigInt(Math.floor(a.record.timestamp / 1000));
    const now = (await chain.publicClient.getBlock()).timestamp;
    const status = await client.auditStatus(unanchored, { toleranceSeconds: Number(now - stated) + 3600 });
    expect(status).toMatchObject({ status: 'pending', disputes: [] });
    expect([status.windowClosesAt, status.anchor, status.sampled]).toEqual([undefined, undefined, undefined]);
    // Unanchored more than the tolerance after its stated time: its node keeps it out of reach of disputes.
    // (The window of the test before this one went by since: more than 60 s.)
    expect(now - stated).toBeGreaterThan(60n);
    await expect(client.auditStatus(unanchored, { toleranceSeconds: 60 })).rejects.toMatchObject({
      code: 'AUDIT_NOT_ANCHORED',
    });
  }, 60_000);
});
