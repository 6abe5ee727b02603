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
  getLatestAnchor,
  registerNode,
} from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import { encodeRecord, fromBase64, fromHex, type Receipt } from '@verity/protocol';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fill32, startTestChain, TEST_DISPUTE_RULES, type TestChain } from '../../contracts/src/test-support/chain.js';
import { voteByHand } from '../../contracts/src/test-support/jury.js';
import { openKeystore } from '../../node/src/keys.js';
import { backdateRecords, startLyingNode } from '../../node/src/test-support/lying-node.js';
import { auditStatus, type Client, createClient } from './index.js';

// A real node that lies (test code only) on a real anvil answers audited requests; the status of
// each answer is read from the chain: pending, disputed, refuted, final, and a backdated record
// refused (AUDIT_TIMESTAMP_STALE).
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

/** Polls until `check` gives a value (a busy machine may take long; no fixed sleep decides). */
async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An audited answer from the liar, once the liar anchored a tree that covers its record. */
async function auditedAnswer(name: string) {
  const result = await client.infer({ model: 'iris', input: INPUT, mode: 'audited' });
  expect(result.receipt.record.mode).toBe('audited');
  const node = result.receipt.record.node as `0x${string}`;
  const anchor = await until(async () => {
    const a = await getLatestAnchor(chain.publicClient, { logAnchor: deployment.contracts.logAnchor, node });
    return a !== undefined && a.treeSize > BigInt(result.receipt.leafIndex) ? a : undefined;
  }, 'the liar to anchor its record');
  answers[name] = Object.assign(result.receipt, result.audit === undefined ? {} : { audit: result.audit });
  return { receipt: result.receipt, anchor };
}

describe('the audit status of an answer, read from the chain', () => {
  it('pending while the window is open (its close computed from the record, not the node’s word)', async () => {
    const { receipt, anchor } = await auditedAnswer('a');
    const status = await client.auditStatus(receipt);
    expect(status).toMatchObject({ status: 'pending', disputes: [], anchor: { treeSize: anchor.treeSize } });
    expect(status.windowClosesAt).toBe(BigInt(Math.floor(receipt.record.timestamp / 1000) + WINDOW));
    expect(Number(status.windowClosesAt) * 1000).toBe(answers.a?.audit?.windowClosesAt);
    // The same without a client: a public client and the deployment (the proof is asked of the
    // endpoint the node registered).
    const direct = await auditStatus(
      { publicClient: chain.publicClient, deployment },
      { record: receipt.record, leafIndex: receipt.leafIndex },
    );
    expect(direct.status).toBe('pending');
  }, 120_000);

  it('refuses a backdated record (AUDIT_TIMESTAMP_STALE), which would otherwise look final at once', async () => {
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
    // A tolerance widened past the backdating does not save it: it was anchored after its window
    // closed, so nobody could ever have challenged it.
    await expect(client.auditStatus(receipt, { toleranceSeconds: 3 * 3600 })).rejects.toMatchObject({
      code: 'AUDIT_TIMESTAMP_STALE',
    });
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
    expect(status.blockTime).toBeGreaterThan(status.windowClosesAt);
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
});
