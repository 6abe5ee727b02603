import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DisputeParams,
  disputesAbi,
  getDispute,
  getDisputeCredit,
  getLatestAnchor,
  getNode,
} from '@verity/contracts';
import { readDeploymentFile, writeDeploymentFile } from '@verity/contracts/node';
import type { Receipt } from '@verity/protocol';
import { type Hash, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../test-support/wait.js';
import { startTestChain, TEST_DISPUTE_RULES, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { loadConfig } from '../config.js';
import { openKeystore } from '../keys.js';
import { startNode, type VerityNode } from '../node.js';
import { createOnnxRuntime } from '../runtimes/onnx.js';
import { openModelStore } from '../store/index.js';
import { startLyingNode } from '../test-support/lying-node.js';
import { auditNodes, localReexecutor } from './auditor.js';

// A real node made to lie (test code only) answers an audited request on a real anvil; an auditor
// samples the record (rate 100 %), fetches its payload, re-executes it on its own ONNX runtime and
// challenges; three honest nodes, running the juror service of their own accord, draw the jury,
// re-execute (fetching the model from a peer), commit, reveal and resolve; the liar is slashed.
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const RULES: DisputeParams = TEST_DISPUTE_RULES;
const AUDITOR = 6;
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };

let chain: TestChain;
let deploymentFile: string;
const nodes: VerityNode[] = [];
/** The network of the first test, reused by the next. */
let net: { liar: VerityNode; honest: VerityNode[]; model: string } | undefined;
const dirs: string[] = [];

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy(RULES);
  const dir = await tempDir();
  deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
});
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await chain?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'verity-jury-'));
  dirs.push(dir);
  return dir;
}

/** A node on the chain (funded, staking `stake` ETH), its juror service polling every 100 ms. */
async function chainNode(stake: string, liar = false, endpoint?: string): Promise<VerityNode> {
  const dataDir = await tempDir();
  const account = openKeystore(dataDir).address as `0x${string}`;
  await chain.testClient.setBalance({ address: account, value: parseEther('10') });
  const config = loadConfig({
    overrides: {
      dataDir,
      port: 0,
      logLevel: process.env.JURY_DEBUG ? 'info' : 'silent',
      fsync: false,
      peers: { localNetwork: true },
      disputes: { juror: !liar, intervalMs: 100 },
      chain: {
        rpcUrl: chain.anvil.rpcUrl,
        deploymentFile,
        stakeWei: parseEther(stake).toString(),
        anchorIntervalMs: 100,
        ...(endpoint === undefined ? {} : { endpoint }),
      },
    },
  });
  const node = liar ? await startLyingNode(config) : await startNode(config);
  nodes.push(node);
  return node;
}

/** Runs the auditor once, at the rate the chain fixes (100 % in the test rules), from account AUDITOR. */
async function audit() {
  const deployment = await readDeploymentFile(deploymentFile);
  const policy = { localNetwork: true };
  return auditNodes({
    publicClient: chain.publicClient,
    deployment,
    clients: chain.clients(AUDITOR),
    reexecute: localReexecutor(createOnnxRuntime(), await openModelStore({ dir: await tempDir() }), policy),
    policy,
  });
}

describe('auditor and jurors', () => {
  it('samples at the rate Disputes fixes; a higher rate may be asked, a lower one is refused', async () => {
    const deployment = await readDeploymentFile(deploymentFile);
    const options = {
      publicClient: chain.publicClient,
      deployment,
      reexecute: async () => ({ abstain: 'not run in this test' }),
      policy: { localNetwork: true },
      exclude: [],
    };
    const report = await auditNodes(options);
    expect([report.ratePpm, report.chainRatePpm]).toEqual([RULES.auditRatePpm, RULES.auditRatePpm]);
    await expect(auditNodes({ ...options, ratePpm: RULES.auditRatePpm - 1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('an auditor catches a lying node on an audited request; honest nodes judge it on their own; it is slashed', async () => {
    const deployment = await readDeploymentFile(deploymentFile);
    const disputes = deployment.contracts.disputes as `0x${string}`;
    const liar = await chainNode('2', true);
    const honest = [await chainNode('1'), await chainNode('1'), await chainNode('1')];
    const liarAccount = liar.context.keys.address as `0x${string}`;

    const started = performance.now();
    const push = await fetch(`${liar.url}/v1/models?name=iris`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${liar.context.keys.apiKey}` },
      body: readFileSync(IRIS),
    });
    expect(push.status).toBeLessThan(300);
    const { id: model } = (await push.json()) as { id: string };
    net = { liar, honest, model };
    const res = await fetch(`${liar.url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: INPUT, mode: 'audited' }),
    });
    expect(res.status).toBe(200);
    const { receipt } = (await res.json()) as { receipt: Receipt };
    await until(async () => {
      const a = await getLatestAnchor(chain.publicClient, {
        logAnchor: deployment.contracts.logAnchor,
        node: liarAccount,
      });
      return a !== undefined && a.treeSize > BigInt(receipt.leafIndex) ? a : undefined;
    }, 'the liar to anchor its record');
    // The sample's seed is the hash of the block after the anchor: mine it.
    await chain.testClient.mine({ blocks: 1 });

    const policy = { localNetwork: true };
    const report = await auditNodes({
      publicClient: chain.publicClient,
      deployment,
      clients: chain.clients(AUDITOR),
      ratePpm: 1_000_000,
      reexecute: localReexecutor(createOnnxRuntime(), await openModelStore({ dir: await tempDir() }), policy),
      policy,
    });
    expect(report.nodes.find((n) => n.node === liarAccount)).toMatchObject({ audited: 1, sampled: 1, pending: 0 });
    expect(report.findings).toHaveLength(1);
    const [finding] = report.findings;
    expect(finding).toMatchObject({ node: liarAccount, kind: 'challenged', leafIndex: receipt.leafIndex });
    const id = finding?.disputeId as bigint;
    const audited = performance.now();

    // Nothing more from the test but blocks: the jurors draw, vote and resolve by themselves.
    await chain.testClient.mine({ blocks: 1 });
    const d = await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return d.phase === 'resolved' ? d : undefined;
    }, 'the jurors to resolve the dispute');
    const elapsed = performance.now() - started;
    expect(d.outcome).toBe('node-lied');
    expect(d.jurors.map((j) => j.account.toLowerCase()).sort()).toEqual(
      honest.map((n) => n.context.keys.address.toLowerCase()).sort(),
    );
    expect(d.jurors.every((j) => j.revealed && j.vote === finding?.computedOutput)).toBe(true);
    // Stake 2 → 1 ETH; the auditor gets its bond back plus 40 % of the slash; each juror 1/3 of 20 %.
    expect(
      (await getNode(chain.publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, node: liarAccount }))
        ?.stake,
    ).toBe(parseEther('1'));
    expect(await getDisputeCredit(chain.publicClient, { disputes, account: chain.address(AUDITOR) })).toBe(
      RULES.challengeBond + parseEther('0.4'),
    );
    for (const n of honest) {
      expect(
        await getDisputeCredit(chain.publicClient, { disputes, account: n.context.keys.address as `0x${string}` }),
      ).toBe(parseEther('0.2') / 3n);
      // The kept salt goes once the dispute is resolved.
      await until(
        async () =>
          (await readdir(join(n.context.config.dataDir, 'juror')).catch(() => [])).length === 0 ? true : undefined,
        'the juror to drop its kept vote',
      );
    }

    // Gas of each step, from the Disputes events' transactions.
    const logs = await chain.publicClient.getContractEvents({
      address: disputes,
      abi: disputesAbi,
      fromBlock: deployment.block,
    });
    const gas = new Map<string, bigint[]>();
    const seen = new Set<Hash>();
    for (const log of logs) {
      if (seen.has(log.transactionHash)) continue;
      seen.add(log.transactionHash);
      const r = await chain.publicClient.getTransactionReceipt({ hash: log.transactionHash });
      gas.set(log.eventName, [...(gas.get(log.eventName) ?? []), r.gasUsed]);
    }
    console.log(
      `audited lie → challenge: ${(audited - started).toFixed(0)} ms; → resolved by the jurors: ${elapsed.toFixed(0)} ms; gas: ${[
        ...gas,
      ]
        .map(([k, v]) => `${k} ${v.join('/')}`)
        .join(', ')}`,
    );
  }, 180_000);

  it('a juror restarted between its commitment and its reveal reveals with its kept salt; a silent juror loses its deposit', async () => {
    if (net === undefined) throw new Error('needs the network of the previous test');
    const deployment = await readDeploymentFile(deploymentFile);
    const disputes = deployment.contracts.disputes as `0x${string}`;
    const { liar, model } = net;
    const [a, b, c] = net.honest as [VerityNode, VerityNode, VerityNode];
    // c is down for the whole dispute: the others can reveal only once the commit period is over.
    await c.stop();
    const res = await fetch(`${liar.url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: { x: [[6.7, 3.0, 5.2, 2.3]] }, mode: 'audited' }),
    });
    const { receipt } = (await res.json()) as { receipt: Receipt };
    // A third audited record whose payload the node no longer serves (removed by the test).
    const res3 = await fetch(`${liar.url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, input: { x: [[5.9, 3.0, 4.2, 1.5]] }, mode: 'audited' }),
    });
    const { receipt: hidden } = (await res3.json()) as { receipt: Receipt };
    await liar.context.payloads.remove(hidden.record.requestId);
    const liarAccount = liar.context.keys.address as `0x${string}`;
    await until(async () => {
      const x = await getLatestAnchor(chain.publicClient, {
        logAnchor: deployment.contracts.logAnchor,
        node: liarAccount,
      });
      return x !== undefined && x.treeSize > BigInt(hidden.leafIndex) ? x : undefined;
    }, 'the liar to anchor its second and third records');
    await chain.testClient.mine({ blocks: 1 });
    const report = await audit();
    const finding = report.findings.find((f) => f.leafIndex === receipt.leafIndex);
    expect(finding?.kind).toBe('challenged');
    // The record slashed before is not challenged twice.
    expect(report.findings.find((f) => f.leafIndex === receipt.leafIndex - 1)).toMatchObject({
      kind: 'lied',
      error: expect.stringContaining('DISPUTE_CONFLICT'),
    });
    // Not served within the window: reported (a challenge needs the input bytes).
    expect(report.findings.find((f) => f.leafIndex === hidden.leafIndex)).toMatchObject({ kind: 'payload-missing' });
    // `verity audit` (no account key: it reports, exit 1): two records lied, one payload is missing (while still in their window).
    const cli = fileURLToPath(new URL('../../../cli/dist/main.js', import.meta.url));
    const run = await new Promise<{ code: number; out: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          cli,
          'audit',
          '--rpc',
          chain.anvil.rpcUrl,
          '--deployment',
          deploymentFile,
          '--rate',
          '1000000',
          '--local-network',
          '--json',
          '--data-dir',
          dirs[0] as string,
        ],
        { timeout: 120_000 },
        (err, stdout) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: stdout }),
      );
    });
    expect(run.code).toBe(1);
    const printed = JSON.parse(run.out) as { findings: { kind: string; leafIndex: number; node: string }[] };
    expect(printed.findings.filter((f) => f.node === liarAccount).map((f) => f.kind)).toEqual([
      'lied',
      'lied',
      'payload-missing',
    ]);
    const id = finding?.disputeId as bigint;
    await chain.testClient.mine({ blocks: 1 });
    const juror = (n: VerityNode, d: Awaited<ReturnType<typeof getDispute>>) =>
      d.jurors.find((j) => j.account.toLowerCase() === n.context.keys.address.toLowerCase());
    await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return juror(a, d)?.committed && juror(b, d)?.committed ? d : undefined;
    }, 'a and b to commit');
    // a restarts from its data directory: its commitment's salt is only on its disk.
    await a.stop();
    const a2 = await startNode(a.context.config);
    nodes.push(a2);
    const d = await getDispute(chain.publicClient, { disputes, id });
    await chain.testClient.increaseTime({
      seconds: Number(d.commitDeadline) - Number((await chain.publicClient.getBlock()).timestamp) + 1,
    });
    await chain.testClient.mine({ blocks: 1 });
    await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return juror(a, d)?.revealed && juror(b, d)?.revealed ? d : undefined;
    }, 'a (restarted) and b to reveal');
    await chain.testClient.increaseTime({ seconds: RULES.revealPeriod + 1 });
    await chain.testClient.mine({ blocks: 1 });
    const done = await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return d.phase === 'resolved' ? d : undefined;
    }, 'a juror to resolve after the reveal deadline');
    expect(done.outcome).toBe('node-lied');
    const silent = await getNode(chain.publicClient, {
      nodeRegistry: deployment.contracts.nodeRegistry,
      node: c.context.keys.address as `0x${string}`,
    });
    expect(silent?.stake).toBe(parseEther('1') - RULES.jurorDeposit);
  }, 180_000);

  it('a node that serves other log entries than the tree it anchored is reported log-mismatch', async () => {
    // Test-only fault: a proxy in front of an honest node flips a byte of every entry bundle.
    let target = '';
    const proxy = createServer((req, res) => {
      void (async () => {
        const upstream = await fetch(`${target}${req.url}`);
        const body = new Uint8Array(await upstream.arrayBuffer());
        if (req.url?.startsWith('/tile/entries/') && body.length > 10) body[10] = (body[10] as number) ^ 1;
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream',
        });
        res.end(body);
      })();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const node = await chainNode('1', false, `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
      target = node.url;
      const push = await fetch(`${node.url}/v1/models?name=iris`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
        body: readFileSync(IRIS),
      });
      const { id: model } = (await push.json()) as { id: string };
      const res = await fetch(`${node.url}/v1/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model, input: INPUT, mode: 'audited' }),
      });
      expect(res.status).toBe(200);
      const deployment = await readDeploymentFile(deploymentFile);
      const account = node.context.keys.address as `0x${string}`;
      await until(
        async () =>
          (await getLatestAnchor(chain.publicClient, { logAnchor: deployment.contracts.logAnchor, node: account })) ??
          undefined,
        'the node to anchor',
      );
      const report = await audit();
      expect(report.findings.filter((f) => f.node === account)).toEqual([
        expect.objectContaining({ kind: 'log-mismatch' }),
      ]);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  }, 180_000);
});
