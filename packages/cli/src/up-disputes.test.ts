/**
 * Issue 12's must-show on a real local network: `verity up --nodes 4` (anvil, the contracts, four
 * node processes), nothing in process but this test's clients.
 *
 * 1. One node process is stopped and started again on its data dir as a liar: the same node,
 *    through test code only (`lying-node-main.ts`, run by `test-support/ts-loader.mjs`). It answers
 *    an audited request wrongly; `verity audit` (the CLI, from an account of its own) samples the
 *    record, re-executes it and challenges; the juror services of the three other node processes
 *    draw the jury, re-execute, commit, reveal and resolve; the liar is slashed. Stakes, credits,
 *    the burn and the challenger's balance after its withdrawal are checked against the rules.
 * 2. The slashed node comes back honest through `verity node start` (restaking), with its juror
 *    service off (`VERITY_DISPUTES_JUROR=0`: a juror that stays silent). A false challenge of an
 *    honest record: the two other jurors uphold the record, the challenger loses its bond and the
 *    silent juror its deposit.
 *
 * The juror services poll every 250 ms (`VERITY_DISPUTES_INTERVAL_MS`, given to `verity up`, which
 * passes its environment to its node processes); nodes anchor every 5 s, as `verity up` sets.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  challengeRecord,
  type Deployment,
  type DisputeParams,
  deploymentFromJson,
  disputesAbi,
  getDispute,
  getDisputeCredit,
  getDisputeRules,
  getLatestAnchor,
  getNode,
  withdrawDisputeCredit,
} from '@verity/contracts';
import { encodeRecord, fromBase64, type Receipt, sha256, toHex } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import {
  type Address,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  type Hash,
  type Hex,
  http,
  parseEther,
  type TransactionReceipt,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstJsonLine, stopChild, until } from '../../../test-support/wait.js';
import { spawnNode } from './network.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const TS_LOADER = join(REPO, 'test-support', 'ts-loader.mjs');
const LIAR_MAIN = join(REPO, 'packages', 'node', 'src', 'test-support', 'lying-node-main.ts');
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };
const BURN: Address = '0x000000000000000000000000000000000000dEaD';
const JUROR_PACE_MS = '250';

interface UpInfo {
  url: string;
  address: string;
  peers: { url: string; address: string; pid: number }[];
  chain: { rpcUrl: string; deploymentFile: string };
}

let up: ChildProcess;
let info: UpInfo;
let dataDir: string;
let deployment: Deployment;
let deploymentJson: unknown;
let rules: DisputeParams;
let disputes: Address;
/** The environment `verity up` gives its node processes (network.ts `runUp`), to restart one as it did. */
let nodeEnv: Record<string, string>;
const children: ChildProcess[] = [];
let publicClient: ReturnType<typeof clientsOf>['publicClient'];
let testClient: ReturnType<typeof clientsOf>['testClient'];
let chain: ReturnType<typeof clientsOf>['chain'];
/** What the first test leaves to the second: the liar's data dir and process. */
let liar: { dir: string; address: Address; child: ChildProcess } | undefined;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-up-disputes-'));
  up = spawn(process.execPath, [BIN, 'up', '--nodes', '4', '--data-dir', dataDir, '--port', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, VERITY_DISPUTES_INTERVAL_MS: JUROR_PACE_MS },
  });
  info = await firstJsonLine<UpInfo>(up, 'verity up');
  deploymentJson = JSON.parse(await readFile(info.chain.deploymentFile, 'utf8'));
  deployment = deploymentFromJson(deploymentJson);
  disputes = deployment.contracts.disputes as Address;
  ({ chain, publicClient, testClient } = clientsOf(info.chain.rpcUrl, deployment.chainId));
  rules = await getDisputeRules(publicClient as never, { disputes });
  nodeEnv = {
    VERITY_RPC_URL: info.chain.rpcUrl,
    VERITY_DEPLOYMENT: info.chain.deploymentFile,
    VERITY_ANCHOR_INTERVAL_MS: '5000',
    VERITY_LOCAL_NETWORK: '1',
    VERITY_WITNESS_PEERS: '1',
    VERITY_DISPUTES_INTERVAL_MS: JUROR_PACE_MS,
  };
}, 300_000);

afterAll(async () => {
  await Promise.all(children.map((c) => stopChild(c)));
  if (up && up.exitCode === null) await stopChild(up);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 180_000);

/** Clients of the network's chain: to read it, and to fund accounts and move its time (anvil). */
function clientsOf(rpcUrl: string, chainId: number) {
  const chain = defineChain({
    id: chainId,
    name: 'verity up',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const transport = http(rpcUrl);
  return {
    chain,
    publicClient: createPublicClient({ chain, transport, pollingInterval: 50 }),
    testClient: createTestClient({ chain, transport, mode: 'anvil' }),
  };
}

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 120_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** A fresh account with 10 ether on the chain, and its clients. */
async function fundedAccount() {
  const key = generatePrivateKey();
  const account = privateKeyToAccount(key);
  await testClient.setBalance({ address: account.address, value: parseEther('10') });
  const walletClient = createWalletClient({ account, chain, transport: http(info.chain.rpcUrl) });
  return { key, address: account.address, clients: { publicClient, walletClient } as never };
}

const stakeOf = async (node: Address) =>
  (await getNode(publicClient as never, { nodeRegistry: deployment.contracts.nodeRegistry, node }))?.stake ?? 0n;
const creditOf = (account: Address) => getDisputeCredit(publicClient as never, { disputes, account });
const feeOf = (r: TransactionReceipt) => r.gasUsed * r.effectiveGasPrice;
const lower = (a: string) => a.toLowerCase();

/** Waits until `node` anchored a tree that holds `leafIndex`, and a block was mined after that anchor. */
async function anchored(node: Address, leafIndex: number) {
  return until(async () => {
    const a = await getLatestAnchor(publicClient as never, { logAnchor: deployment.contracts.logAnchor, node });
    if (a === undefined || a.treeSize <= BigInt(leafIndex)) return undefined;
    return (await publicClient.getBlockNumber()) > a.blockNumber ? a : undefined;
  }, `${node} to anchor record ${leafIndex}`);
}

const STEPS = ['Challenged', 'JuryDrawn', 'VoteCommitted', 'VoteRevealed', 'Resolved'] as const;

/** The events of dispute `id`'s transactions, and the gas of each step (by the event that names it). */
async function disputeEvents(id: bigint) {
  const logs = await publicClient.getContractEvents({
    address: disputes,
    abi: disputesAbi,
    fromBlock: deployment.block,
  });
  const mine = logs.filter((l) => (l.args as { id?: bigint }).id === id);
  const gas = new Map<string, bigint[]>();
  const seen = new Set<Hash>();
  for (const log of mine) {
    if (seen.has(log.transactionHash)) continue;
    seen.add(log.transactionHash);
    const r = await publicClient.getTransactionReceipt({ hash: log.transactionHash });
    // A transaction by the event that names its step (a resolve also emits JurorPenalized first).
    const inTx = mine.filter((l) => l.transactionHash === log.transactionHash).map((l) => l.eventName);
    const step = STEPS.find((s) => inTx.includes(s)) ?? log.eventName;
    gas.set(step, [...(gas.get(step) ?? []), r.gasUsed]);
  }
  return { logs: mine, gas: [...gas].map(([k, v]) => `${k} ${v.join('/')}`).join(', ') };
}

describe('verity up --nodes 4: disputes between real node processes', () => {
  it('a node process made to lie answers an audited request; `verity audit` challenges; the other nodes judge it; it is slashed', async () => {
    expect(info.peers).toHaveLength(3);
    const victim = info.peers[2] as UpInfo['peers'][number];
    const honest = [info.address, info.peers[0]?.address, info.peers[1]?.address] as Address[];
    const liarAddress = victim.address as Address;
    const liarDir = join(dataDir, 'peers', 'node-4');

    // The node process stops (its pid from `verity up --json`) and starts again on its data dir as a liar.
    process.kill(victim.pid, 'SIGTERM');
    await until(async () => (isAlive(victim.pid) ? undefined : true), 'node 4 to stop');
    const child = spawn(process.execPath, ['--import', TS_LOADER, LIAR_MAIN, '--data-dir', liarDir, '--port', '0'], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...nodeEnv },
    });
    children.push(child);
    const started = await firstJsonLine<{ url: string; address: string }>(child, 'the lying node');
    expect(lower(started.address)).toBe(lower(liarAddress));
    liar = { dir: liarDir, address: liarAddress, child };

    const stakeBefore = await stakeOf(liarAddress);
    expect(stakeBefore).toBeGreaterThan(0n);
    const auditor = await fundedAccount();
    const auditorBefore = await publicClient.getBalance({ address: auditor.address });
    const burnBefore = await publicClient.getBalance({ address: BURN });
    const creditsBefore = await Promise.all(honest.map(creditOf));

    // The wrong answer, through the SDK: its receipt verifies (the node signed and logged its lie).
    const client = createClient({ url: started.url, chain: { rpcUrl: info.chain.rpcUrl, deployment: deploymentJson } });
    const answer = await client.infer({ model: 'iris@1.0.0', input: INPUT, mode: 'audited' });
    const t0 = performance.now(); // the wrong answer is in the caller's hands
    const receipt = answer.receipt as Receipt;
    expect(receipt.record.mode).toBe('audited');
    await anchored(liarAddress, receipt.leafIndex);
    const tAnchored = performance.now();

    // The auditor: the CLI, from its own account, samples every audited record (rate 100 %).
    const run = await verity(
      'audit',
      '--data-dir',
      dataDir,
      '--rate',
      '1000000',
      '--account-key',
      auditor.key,
      '--json',
    );
    const tChallenged = performance.now();
    expect(run.code, run.stderr).toBe(1); // a node lied
    const report = JSON.parse(run.stdout) as {
      findings: { node: string; kind: string; leafIndex: number; disputeId?: string; computedOutput?: string }[];
    };
    expect(report.findings).toEqual([expect.objectContaining({ kind: 'challenged', leafIndex: receipt.leafIndex })]);
    expect(lower(report.findings[0]?.node ?? '')).toBe(lower(liarAddress));
    const finding = report.findings[0] as (typeof report.findings)[number];
    const id = BigInt(finding.disputeId as string);

    // Nothing more from the test: the node processes draw, re-execute, commit, reveal and resolve.
    const d = await until(async () => {
      const d = await getDispute(publicClient as never, { disputes, id });
      return d.phase === 'resolved' ? d : undefined;
    }, 'the juror services to resolve the dispute');
    const tResolved = performance.now();
    expect(d.outcome).toBe('node-lied');
    expect(lower(d.challenger)).toBe(lower(auditor.address));
    expect(d.jurors.map((j) => lower(j.account)).sort()).toEqual(honest.map(lower).sort());
    expect(d.jurors.every((j) => j.revealed && j.vote === finding.computedOutput)).toBe(true);

    // The amounts of docs/protocol.md §15.5, from the deployed rules.
    const slashed = stakeBefore < rules.slashAmount ? stakeBefore : rules.slashAmount;
    const reward = (slashed * BigInt(rules.challengerShareBps)) / 10_000n;
    const pot = (slashed * BigInt(rules.jurorShareBps)) / 10_000n;
    const each = pot / 3n;
    const burned = slashed - reward - pot + (pot - each * 3n);
    expect(await stakeOf(liarAddress)).toBe(stakeBefore - slashed);
    expect(await creditOf(auditor.address)).toBe(rules.challengeBond + reward);
    for (const [i, juror] of honest.entries()) {
      expect(await creditOf(juror)).toBe((creditsBefore[i] as bigint) + each);
      expect(await stakeOf(juror)).toBeGreaterThanOrEqual(parseEther('1')); // no juror penalized
    }
    expect((await publicClient.getBalance({ address: BURN })) - burnBefore).toBe(burned);
    const { logs, gas } = await disputeEvents(id);
    const resolved = logs.find((l) => l.eventName === 'Resolved');
    expect(resolved?.args).toMatchObject({ slashed, challengerPaid: rules.challengeBond + reward, burned });
    expect(logs.some((l) => l.eventName === 'JurorPenalized')).toBe(false);

    // The auditor withdraws: its balance is up by the reward, less the gas of its two transactions.
    const challengeTx = logs.find((l) => l.eventName === 'Challenged')?.transactionHash as Hash;
    const challengeFee = feeOf(await publicClient.getTransactionReceipt({ hash: challengeTx }));
    const withdrawFee = feeOf(await withdrawDisputeCredit(auditor.clients, { disputes }));
    expect(await creditOf(auditor.address)).toBe(0n);
    expect(await publicClient.getBalance({ address: auditor.address })).toBe(
      auditorBefore + reward - challengeFee - withdrawFee,
    );

    // The SDK reads the record's fate from the chain.
    expect((await client.auditStatus(receipt)).status).toBe('refuted');
    console.log(
      `verity up --nodes 4, wrong audited answer → slash: ${(tResolved - t0).toFixed(0)} ms ` +
        `(anchored ${(tAnchored - t0).toFixed(0)}, challenged by \`verity audit\` ${(tChallenged - t0).toFixed(0)}, ` +
        `resolved ${(tResolved - t0).toFixed(0)}; anchors every 5 s, jurors polling every ${JUROR_PACE_MS} ms); gas: ${gas}`,
    );
  }, 300_000);

  it('a false challenge loses its bond; a juror that stays silent loses its deposit', async () => {
    if (liar === undefined) throw new Error('needs the slashed node of the previous test');
    // The slashed node comes back honest, with the real CLI (it stakes again), but its juror service off.
    await stopChild(liar.child);
    const back = await spawnNode(BIN, liar.dir, 0, { ...nodeEnv, VERITY_DISPUTES_JUROR: '0' });
    children.push(back.child);
    const silent = liar.address;
    const a = info.peers[0]?.address as Address;
    const b = info.peers[1]?.address as Address;
    const silentStake = await stakeOf(silent);
    expect(silentStake).toBe(parseEther('1')); // restaked to the configured stake

    // An honest audited answer from the first node.
    const node = info.address as Address;
    const client = createClient({ url: info.url, chain: { rpcUrl: info.chain.rpcUrl, deployment: deploymentJson } });
    const answer = await client.infer({ model: 'iris@1.0.0', input: INPUT, mode: 'audited' });
    const receipt = answer.receipt as Receipt;
    const anchor = await anchored(node, receipt.leafIndex);

    // The challenge takes what anyone can: the record, its proof at the anchored size, the input bytes.
    const proofRes = await fetch(`${info.url}/v1/log/proof?index=${receipt.leafIndex}&size=${anchor.treeSize}`);
    const { proof } = (await proofRes.json()) as { proof: string[] };
    const payload = (await (await fetch(`${info.url}/v1/payloads/${receipt.record.requestId}`)).json()) as {
      input: string;
    };
    const challenger = await fundedAccount();
    const before = {
      balance: await publicClient.getBalance({ address: challenger.address }),
      burn: await publicClient.getBalance({ address: BURN }),
      node: await creditOf(node),
      a: await creditOf(a),
      b: await creditOf(b),
    };
    const wrong = `0x${toHex(sha256(new TextEncoder().encode('not what iris says')))}` as Hex;
    const { id, receipt: challengeReceipt } = await challengeRecord(challenger.clients, {
      disputes,
      record: encodeRecord(receipt.record),
      leafIndex: receipt.leafIndex,
      treeSize: anchor.treeSize,
      proof: proof.map((p) => (p.startsWith('0x') ? p : `0x${p}`) as Hex),
      input: fromBase64(payload.input),
      claimedOutput: wrong,
      bond: rules.challengeBond,
    });
    expect((await client.auditStatus(receipt)).status).toBe('disputed');

    // The jury is the three other nodes; two commit, the silent one never does.
    const juror = (d: Awaited<ReturnType<typeof getDispute>>, who: Address) =>
      d.jurors.find((j) => lower(j.account) === lower(who));
    const voting = await until(async () => {
      const d = await getDispute(publicClient as never, { disputes, id });
      return juror(d, a)?.committed && juror(d, b)?.committed ? d : undefined;
    }, 'two jurors to commit');
    expect(voting.jurors.map((j) => lower(j.account)).sort()).toEqual([a, b, silent].map(lower).sort());
    expect(juror(voting, silent)?.committed).toBe(false);
    // Reveals open once the commit period is over (time moved on the local chain), resolution once the reveal period is.
    const now = async () => (await publicClient.getBlock()).timestamp;
    await testClient.increaseTime({ seconds: Number(voting.commitDeadline - (await now())) + 1 });
    await testClient.mine({ blocks: 1 });
    await until(async () => {
      const d = await getDispute(publicClient as never, { disputes, id });
      return juror(d, a)?.revealed && juror(d, b)?.revealed ? d : undefined;
    }, 'two jurors to reveal');
    await testClient.increaseTime({ seconds: Number(voting.revealDeadline - (await now())) + 1 });
    await testClient.mine({ blocks: 1 });
    const d = await until(async () => {
      const d = await getDispute(publicClient as never, { disputes, id });
      return d.phase === 'resolved' ? d : undefined;
    }, 'a juror service to resolve after the reveal deadline');
    expect(d.outcome).toBe('challenge-failed');
    expect(juror(d, a)?.vote).toBe(`0x${receipt.record.outputDigest.replace(/^0x/, '')}`);

    // The challenger lost its bond (and paid gas); the node gets the bond less the jurors' share;
    // the two voting jurors split that share and the silent juror's deposit, taken from its stake.
    const share = (rules.challengeBond * BigInt(rules.jurorShareBps)) / 10_000n;
    const pot = share + rules.jurorDeposit;
    expect(await publicClient.getBalance({ address: challenger.address })).toBe(
      before.balance - rules.challengeBond - feeOf(challengeReceipt),
    );
    expect(await creditOf(challenger.address)).toBe(0n);
    expect((await creditOf(node)) - before.node).toBe(rules.challengeBond - share);
    expect((await creditOf(a)) - before.a).toBe(pot / 2n);
    expect((await creditOf(b)) - before.b).toBe(pot / 2n);
    expect(await stakeOf(silent)).toBe(silentStake - rules.jurorDeposit);
    const { logs, gas } = await disputeEvents(id);
    const penalized = logs.filter((l) => l.eventName === 'JurorPenalized').map((l) => l.args as { juror: Address });
    expect(penalized).toEqual([expect.objectContaining({ id, amount: rules.jurorDeposit })]);
    expect(lower(penalized[0]?.juror ?? '')).toBe(lower(silent));
    expect((await publicClient.getBalance({ address: BURN })) - before.burn).toBe(pot - (pot / 2n) * 2n);
    // A failed challenge leaves the record as it was.
    expect((await client.auditStatus(receipt)).status).toBe('pending');
    console.log(`verity up --nodes 4, false challenge with a silent juror: gas ${gas}`);
  }, 300_000);
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
