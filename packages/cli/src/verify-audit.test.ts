import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deploymentToJson, getFirstAnchor, getLatestAnchor } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import type { VerityNode } from '@verity/node';
import { createClient } from '@verity/sdk';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { startChainNode } from '../../node/src/test-support/chain-node.js';
import { backdateRecords } from '../../node/src/test-support/lying-node.js';

// `verity verify` on a bundle of an audited answer reads its status from the chain it is given.
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const WINDOW = 600;

let chain: TestChain;
let node: VerityNode;
let dir: string;
let deploymentFile: string;
let chainOptions: { rpcUrl: string; deployment: unknown };

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy({
    challengeBond: parseEther('0.1'),
    jurorDeposit: parseEther('0.05'),
    slashAmount: parseEther('1'),
    challengerShareBps: 4000,
    jurorShareBps: 2000,
    challengeWindow: WINDOW,
    commitPeriod: 300,
    revealPeriod: 300,
    jurySize: 3,
    auditRatePpm: 250_000,
  });
  dir = await mkdtemp(join(tmpdir(), 'verity-verify-audit-'));
  deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  node = await startChainNode(chain, {
    dataDir: join(dir, 'node'),
    deploymentFile,
    overrides: { chain: { anchorIntervalMs: 100 } },
  });
  await createClient({ url: node.url, apiKey: node.context.keys.apiKey }).pushModel({
    name: 'iris',
    data: readFileSync(IRIS),
  });
  chainOptions = { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson(deployment) };
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await chain?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** An audited answer's bundle in a file, once the node anchored a tree that covers its record. */
async function auditedBundle(name: string): Promise<string> {
  const client = createClient({ url: node.url, chain: chainOptions });
  const result = await client.infer({ model: 'iris', input: { x: [[5.1, 3.5, 1.4, 0.2]] }, mode: 'audited' });
  await until(async () => {
    const a = await getLatestAnchor(chain.publicClient, {
      logAnchor: (chainOptions.deployment as { contracts: { logAnchor: `0x${string}` } }).contracts.logAnchor,
      node: result.receipt.record.node as `0x${string}`,
    });
    return a !== undefined && a.treeSize > BigInt(result.receipt.leafIndex) ? true : undefined;
  }, 'the anchor');
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(result.bundle()));
  return file;
}

describe('verity verify on an audited bundle', () => {
  it('prints pending, then final once the window passed; --json carries it; a backdated record is refused', async () => {
    const file = await auditedBundle('fresh');
    const at = ['--rpc', chain.anvil.rpcUrl, '--deployment', deploymentFile];
    const pending = await verity('verify', file, ...at, '--json');
    expect(pending.code, pending.stderr).toBe(0);
    const body = JSON.parse(pending.stdout);
    expect(body).toMatchObject({ ok: true, audit: [{ status: 'pending', disputes: [] }] });
    // The window runs from the record's first anchor on chain; the sample rate is the chain's.
    const first = await getFirstAnchor(chain.publicClient, {
      logAnchor: (chainOptions.deployment as { contracts: { logAnchor: `0x${string}` } }).contracts.logAnchor,
      node: body.receipts[0].record.node,
      leafIndex: body.receipts[0].leafIndex,
    });
    expect(body.audit[0].windowClosesAt).toBe(Number(first?.timestamp) + WINDOW);
    expect(body.audit[0].auditRatePpm).toBe(250_000);
    const text = await verity('verify', file, ...at);
    expect(text.stdout).toMatch(/audited .*: pending — challenge window open until /);
    // Keys pinned by hand and no chain: valid, and it says the status was not read.
    const pinned = ['--node', node.context.keys.address, '--key', node.context.keys.logKey];
    const unread = await verity('verify', file, ...pinned, '--data-dir', join(dir, 'empty'), '--json');
    expect(unread.code, unread.stderr).toBe(0);
    expect(JSON.parse(unread.stdout)).toMatchObject({ ok: true, audit: [{ status: 'unread' }] });

    const stop = backdateRecords(node, 2 * 3600_000);
    let backdated: string;
    try {
      backdated = await auditedBundle('backdated');
    } finally {
      stop();
    }
    const stale = await verity('verify', backdated, ...at, '--json');
    expect([stale.code, JSON.parse(stale.stdout).error?.code]).toEqual([1, 'AUDIT_TIMESTAMP_STALE']);

    await chain.testClient.increaseTime({ seconds: WINDOW + 1 });
    await chain.testClient.mine({ blocks: 1 });
    const final = await verity('verify', file, ...at);
    expect(final.code, final.stderr).toBe(0);
    expect(final.stdout).toMatch(/audited .*: final — window closed .* with no dispute lost by the node/);
  }, 180_000);
});
