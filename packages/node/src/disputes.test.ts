import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  challengeRecord,
  type DisputeParams,
  disputesAbi,
  getDisputeRules,
  getLatestAnchor,
  getNode,
  registerNode,
} from '@verity/contracts';
import { readDeploymentFile, writeDeploymentFile } from '@verity/contracts/node';
import {
  createTensor,
  decodeTensors,
  encodeRecord,
  encodeTensors,
  fromBase64,
  fromHex,
  type Receipt,
  sha256,
  toHex,
} from '@verity/protocol';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { fill32, startTestChain, TEST_DISPUTE_RULES, type TestChain } from '../../contracts/src/test-support/chain.js';
import { voteByHand } from '../../contracts/src/test-support/jury.js';
import { loadConfig } from './config.js';
import { AUDIT_ANCHOR_MARGIN_SECONDS } from './context.js';
import { openKeystore } from './keys.js';
import { startNode, type VerityNode } from './node.js';
import { startLyingNode } from './test-support/lying-node.js';

// A real node made to lie (test code only) answers on a real anvil, logs and anchors the wrong
// answer; a challenger takes the record, its inclusion proof and the input from the node's own
// API, a jury of registered accounts re-executes on an honest node and votes; the liar is slashed.
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const RULES: DisputeParams = TEST_DISPUTE_RULES;
const CHALLENGER = 6;
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };

let chain: TestChain;
let deploymentFile: string;
const nodes: VerityNode[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy(RULES);
  const dir = await mkdtemp(join(tmpdir(), 'verity-disputes-'));
  dirs.push(dir);
  deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await chain?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function dataDir() {
  const dir = await mkdtemp(join(tmpdir(), 'verity-disputes-node-'));
  dirs.push(dir);
  return dir;
}

async function infer(node: VerityNode, input: unknown, mode: 'signed' | 'audited' = 'signed') {
  const push = await fetch(`${node.url}/v1/models?name=iris`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: readFileSync(IRIS),
  });
  expect(push.status).toBeLessThan(300);
  const { id } = (await push.json()) as { id: string };
  const res = await fetch(`${node.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: id, input, mode }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { receipt: Receipt; audit?: { windowClosesAt: number; payload: string } };
  return Object.assign(body.receipt, { audit: body.audit });
}

describe('a lying node on a chain', () => {
  it('is challenged with its own logged record, judged by a jury that re-executes, and slashed', async () => {
    const deployment = await readDeploymentFile(deploymentFile);
    const disputes = deployment.contracts.disputes as `0x${string}`;
    // Jurors: four registered accounts (the lying node and the challenger never sit).
    for (const i of [2, 3, 4, 5]) {
      await registerNode(chain.clients(i), {
        nodeRegistry: deployment.contracts.nodeRegistry,
        logKey: fill32(i),
        origin: `verity.test/juror-${i}`,
        endpoint: `http://127.0.0.1:${8000 + i}`,
        capabilities: ['mode:signed'],
        stake: parseEther('1'),
      });
    }
    const liarDir = await dataDir();
    const liarAccount = openKeystore(liarDir).address as `0x${string}`;
    await chain.testClient.setBalance({ address: liarAccount, value: parseEther('10') });
    const liar = await startLyingNode(
      loadConfig({
        overrides: {
          dataDir: liarDir,
          port: 0,
          logLevel: 'silent',
          fsync: false,
          // This test does the jurors' work by hand (disputes/jury.test.ts has the juror service do it).
          disputes: { juror: false },
          chain: {
            rpcUrl: chain.anvil.rpcUrl,
            deploymentFile,
            stakeWei: parseEther('2').toString(),
            anchorIntervalMs: 100,
          },
        },
      }),
    );
    nodes.push(liar);
    const honest = await startNode(
      loadConfig({ overrides: { dataDir: await dataDir(), port: 0, logLevel: 'silent', fsync: false } }),
    );
    nodes.push(honest);

    const started = performance.now();
    // An audited request: the node keeps its payload for as long as the chain's challenge window.
    const receipt = await infer(liar, INPUT, 'audited');
    const { record, leafIndex } = receipt;
    expect(record.node).toBe(liarAccount);
    expect(record.mode).toBe('audited');
    const rules = await getDisputeRules(chain.publicClient, { disputes });
    // Kept past the window from the record's time: the chain counts it from the record's first anchor.
    expect(liar.context.auditWindowSeconds).toBe(rules.challengeWindow + AUDIT_ANCHOR_MARGIN_SECONDS);
    expect(receipt.audit?.windowClosesAt).toBe(
      (Math.floor(record.timestamp / 1000) + rules.challengeWindow + AUDIT_ANCHOR_MARGIN_SECONDS) * 1000,
    );
    // The node anchors its log on its own; wait for an anchor that covers the record.
    const anchor = await until(async () => {
      const a = await getLatestAnchor(chain.publicClient, {
        logAnchor: deployment.contracts.logAnchor,
        node: liarAccount,
      });
      return a !== undefined && a.treeSize > BigInt(leafIndex) ? a : undefined;
    }, 'the liar to anchor its record');
    // The inclusion proof at the anchored size, from the node's own API.
    const proofRes = await fetch(`${liar.url}/v1/log/proof?index=${leafIndex}&size=${anchor.treeSize}`);
    const { proof } = (await proofRes.json()) as { proof: string[] };
    // The canonical input, as the node kept it for auditors (= the request's tensor as the model's
    // signature types it).
    const payload = (await (await fetch(`${liar.url}${receipt.audit?.payload}`)).json()) as { input: string };
    const input = fromBase64(payload.input);
    expect(input).toEqual(
      encodeTensors({ x: createTensor('float32', [1, 4], new Float32Array(INPUT.x[0] as number[])) }),
    );
    expect(toHex(sha256(input))).toBe(record.inputDigest);

    // The challenger re-executed on an honest node and claims its output.
    const truth = await infer(honest, INPUT);
    expect(truth.record.outputDigest).not.toBe(record.outputDigest);
    const { id, pool } = await challengeRecord(chain.clients(CHALLENGER), {
      disputes,
      record: encodeRecord(record),
      leafIndex,
      treeSize: anchor.treeSize,
      proof: proof.map((h) => fromHex(h.replace(/^0x/, ''))),
      input,
      claimedOutput: fromHex(truth.record.outputDigest),
    });
    // Each drawn juror takes the input from the challenge's event, re-executes it, commits, then reveals.
    const [challenged] = await chain.publicClient.getContractEvents({
      address: disputes,
      abi: disputesAbi,
      eventName: 'Challenged',
      args: { id },
      fromBlock: deployment.block,
      strict: true,
    });
    if (challenged === undefined) throw new Error('no Challenged event');
    const published = decodeTensors(fromHex(challenged.args.input.slice(2)));
    const x = published.x as { dtype: string; shape: number[]; data: Float32Array };
    const redo = async () => {
      const { record } = await infer(honest, { x: { dtype: x.dtype, shape: x.shape, data: Array.from(x.data) } });
      return fromHex(record.outputDigest);
    };
    const { jurors, votes, resolution } = await voteByHand(chain, {
      disputes,
      id,
      pool,
      by: CHALLENGER,
      candidates: [2, 3, 4, 5],
      vote: redo,
    });
    expect(jurors).toHaveLength(3);
    expect(new Set(votes.map((v) => toHex(v as Uint8Array)))).toEqual(new Set([truth.record.outputDigest]));
    const elapsed = performance.now() - started;
    expect(resolution).toMatchObject({ outcome: 'node-lied', slashed: RULES.slashAmount, penalized: [] });
    const entry = await getNode(chain.publicClient, {
      nodeRegistry: deployment.contracts.nodeRegistry,
      node: liarAccount,
    });
    expect(entry?.stake).toBe(parseEther('1'));
    console.log(
      `wrong answer → slash on the local chain: ${elapsed.toFixed(0)} ms (automine, jurors answering at once)`,
    );
  }, 120_000);
});
