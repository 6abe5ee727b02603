/**
 * What accountability costs on a real anvil (docs/protocol.md §15, §16): gas of each step of a
 * dispute (challenge, draw, commit, reveal, resolve) and of the anchor that covered the record
 * (with its consistency proof from the node's previous anchor), and the wall time from a wrong
 * audited answer to the slash of the node that gave it.
 *
 *   npm run bench:disputes      (or: npx tsc -b bench && node bench/dist/disputes.js)
 *
 * The liar is the real node (`startNode`: HTTP, log, registration, anchoring every 100 ms) with
 * its ONNX runtime wrapped so that every output is nudged before it is digested, logged and signed
 * — bench code, as `packages/node/src/test-support/lying-node.ts` is test code (that module is not
 * built, so it cannot be imported from here). Four registered accounts sit as the jury pool; each
 * drawn juror re-executes the challenged input (from the `Challenged` event) on an honest node and
 * commits, then reveals, what it computed. The chain automines, and jurors answer at once: the
 * time measured is the protocol's own latency, not the commit and reveal periods a real
 * deployment waits out. The pool is the four jurors (the challenged node and the challenger never sit).
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type ChainClients,
  challengeRecord,
  commitVote,
  type DisputeParams,
  deployContracts,
  disputesAbi,
  drawDisputeJury,
  getAnchorHistory,
  logAnchorAbi,
  registerNode,
  resolveDispute,
  revealVote,
} from '@verity/contracts';
import { startAnvil, writeDeploymentFile } from '@verity/contracts/node';
import { createRuntimes, loadConfig, openKeystore, type Runtime, startNode, type VerityNode } from '@verity/node';
import {
  decodeTensors,
  encodeRecord,
  fromBase64,
  fromHex,
  hashLeaf,
  type InferenceRecord,
  sha256,
  type TensorMap,
} from '@verity/protocol';
import { auditStatus } from '@verity/sdk';
import { createPublicClient, createTestClient, createWalletClient, decodeFunctionData, http, parseEther } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

const IRIS = fileURLToPath(new URL('../../examples/models/iris.onnx', import.meta.url));
const RULES: DisputeParams = {
  challengeBond: parseEther('0.1'),
  jurorDeposit: parseEther('0.05'),
  slashAmount: parseEther('1'),
  challengerShareBps: 4000,
  jurorShareBps: 2000,
  challengeWindow: 600,
  commitPeriod: 300,
  revealPeriod: 300,
  jurySize: 3,
  auditRatePpm: 1_000_000,
};
const JURORS = [2, 3, 4, 5];
const CHALLENGER = 6;
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };

/** `inner` with every output float nudged by 0.125 (a plausible wrong answer; see the module comment). */
function lyingRuntime(inner: Runtime): Runtime {
  const nudge = (out: TensorMap): TensorMap =>
    Object.fromEntries(
      Object.entries(out).map(([name, t]) =>
        t.data instanceof Float32Array ? [name, { ...t, data: t.data.map((v) => v + 0.125) }] : [name, t],
      ),
    ) as TensorMap;
  return {
    id: inner.id,
    version: inner.version,
    profile: inner.profile,
    async load(bytesOrPath) {
      const model = await inner.load(bytesOrPath);
      return { ...model, run: async (inputs) => nudge(await model.run(inputs)) };
    },
  };
}

async function push(node: VerityNode): Promise<void> {
  const res = await fetch(`${node.url}/v1/models?name=iris`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: await readFile(IRIS),
  });
  if (!res.ok) throw new Error(`push: ${res.status} ${await res.text()}`);
}

async function infer(node: VerityNode, input: unknown, mode: 'signed' | 'audited') {
  const res = await fetch(`${node.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'iris', input, mode }),
  });
  if (!res.ok) throw new Error(`infer: ${res.status} ${await res.text()}`);
  return (await res.json()) as {
    receipt: { record: InferenceRecord; leafIndex: number };
    audit?: { windowClosesAt: number; payload: string };
  };
}

async function until<T>(check: () => Promise<T | undefined>, what: string): Promise<T> {
  const end = Date.now() + 120_000;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const anvil = await startAnvil();
const dir = await mkdtemp(join(tmpdir(), 'verity-bench-disputes-'));
const nodes: VerityNode[] = [];
const gas: [string, bigint, string][] = [];
let elapsed = 0;
const steps: [string, number][] = [];
try {
  const chain = anvil.chain;
  const transport = http(anvil.rpcUrl);
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  const testClient = createTestClient({ chain, transport, mode: 'anvil' });
  const account = (i: number) => privateKeyToAccount(anvil.privateKeys[i] as `0x${string}`);
  const clients = (i: number): ChainClients => ({
    publicClient,
    walletClient: createWalletClient({ account: account(i), chain, transport }),
  });
  const deployment = await deployContracts(clients(0), {
    minStake: parseEther('1'),
    unbondingDelay: 3600,
    disputes: RULES,
  });
  const disputes = deployment.contracts.disputes as `0x${string}`;
  const deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: anvil.rpcUrl });
  for (const i of JURORS) {
    await registerNode(clients(i), {
      nodeRegistry: deployment.contracts.nodeRegistry,
      logKey: hashLeaf(new Uint8Array([i])),
      origin: `bench.verity/juror-${i}`,
      endpoint: `http://127.0.0.1:${8000 + i}`,
      capabilities: ['mode:signed'],
      stake: parseEther('1'),
    });
  }
  const liarDir = join(dir, 'liar');
  await mkdir(liarDir, { mode: 0o700 });
  const liarAccount = openKeystore(liarDir).address as `0x${string}`;
  await testClient.setBalance({ address: liarAccount, value: parseEther('10') });
  const config = loadConfig({
    overrides: {
      dataDir: liarDir,
      port: 0,
      logLevel: 'silent',
      fsync: false,
      // The jury's work is done by hand here: no juror service to race it (disputes.juror).
      disputes: { juror: false },
      chain: { rpcUrl: anvil.rpcUrl, deploymentFile, stakeWei: parseEther('2').toString(), anchorIntervalMs: 100 },
    },
  });
  const { runtime, llm } = createRuntimes(config);
  const liar = await startNode(config, { runtime: lyingRuntime(runtime), llm });
  nodes.push(liar);
  const honest = await startNode(
    loadConfig({ overrides: { dataDir: join(dir, 'honest'), port: 0, logLevel: 'silent', fsync: false } }),
  );
  nodes.push(honest);
  await push(liar);
  await push(honest);
  // A first answer and its anchor, so the measured record's anchor carries a consistency proof.
  const warm = await infer(liar, INPUT, 'audited');
  await until(async () => {
    const h = await getAnchorHistory(publicClient, { logAnchor: deployment.contracts.logAnchor, node: liarAccount });
    return h.some((a) => a.treeSize > BigInt(warm.receipt.leafIndex)) ? true : undefined;
  }, 'the first anchor');

  const t0 = performance.now();
  const mark = (what: string) => steps.push([what, performance.now() - t0]);
  const answer = await infer(liar, INPUT, 'audited');
  mark('wrong audited answer received');
  const { record, leafIndex } = answer.receipt;
  const anchor = await until(async () => {
    const h = await getAnchorHistory(publicClient, { logAnchor: deployment.contracts.logAnchor, node: liarAccount });
    return h.find((a) => a.treeSize > BigInt(leafIndex));
  }, 'the anchor covering the record');
  mark('record anchored');
  const anchorTx = await publicClient.getTransaction({ hash: anchor.transactionHash });
  const anchorReceipt = await publicClient.getTransactionReceipt({ hash: anchor.transactionHash });
  const { args } = decodeFunctionData({ abi: logAnchorAbi, data: anchorTx.input });
  const proofHashes = (args?.[2] as readonly unknown[] | undefined)?.length ?? 0;
  gas.push([
    'anchor (LogAnchor.anchor)',
    anchorReceipt.gasUsed,
    `tree size ${anchor.treeSize}, ${proofHashes} proof hashes`,
  ]);

  // An auditor: the payload from the node, its own re-execution on an honest node, the challenge.
  const payload = (await (await fetch(`${liar.url}${answer.audit?.payload}`)).json()) as { input: string };
  const truth = await infer(honest, INPUT, 'signed');
  const proofRes = await fetch(`${liar.url}/v1/log/proof?index=${leafIndex}&size=${anchor.treeSize}`);
  const { proof } = (await proofRes.json()) as { proof: string[] };
  const challenged = await challengeRecord(clients(CHALLENGER), {
    disputes,
    record: encodeRecord(record),
    leafIndex,
    treeSize: anchor.treeSize,
    proof: proof.map((h) => fromHex(h.replace(/^0x/, ''))),
    input: fromBase64(payload.input),
    claimedOutput: fromHex(truth.receipt.record.outputDigest),
  });
  mark('challenged');
  gas.push([
    'challenge',
    challenged.receipt.gasUsed,
    `pool of ${challenged.pool.length} nodes, ${proof.length} proof hashes`,
  ]);
  const { id, pool } = challenged;
  await testClient.mine({ blocks: 1 });
  const drawn = await drawDisputeJury(clients(CHALLENGER), { disputes, id, pool });
  mark('jury drawn');
  gas.push(['draw', drawn.receipt.gasUsed, `${drawn.jurors.length} jurors`]);

  // Each juror re-executes the input published in the Challenged event.
  const [event] = await publicClient.getContractEvents({
    address: disputes,
    abi: disputesAbi,
    eventName: 'Challenged',
    args: { id },
    fromBlock: deployment.block,
    strict: true,
  });
  if (event === undefined) throw new Error('no Challenged event');
  const x = decodeTensors(fromHex(event.args.input.slice(2))).x as {
    dtype: string;
    shape: number[];
    data: Float32Array;
  };
  const seats = drawn.jurors.map((a) => JURORS.find((i) => account(i).address === a) as number);
  const votes = new Map<number, Uint8Array>();
  const salt = (j: number) => sha256(new TextEncoder().encode(`juror ${j}`));
  for (const j of seats) {
    const redo = await infer(honest, { x: { dtype: x.dtype, shape: x.shape, data: Array.from(x.data) } }, 'signed');
    votes.set(j, fromHex(redo.receipt.record.outputDigest));
    const r = await commitVote(clients(j), { disputes, id, outputDigest: votes.get(j) as Uint8Array, salt: salt(j) });
    gas.push(['commit', r.gasUsed, `juror ${account(j).address.slice(0, 8)}…`]);
  }
  mark('votes committed');
  for (const j of seats) {
    const r = await revealVote(clients(j), { disputes, id, outputDigest: votes.get(j) as Uint8Array, salt: salt(j) });
    gas.push(['reveal', r.gasUsed, `juror ${account(j).address.slice(0, 8)}…`]);
  }
  mark('votes revealed');
  const resolved = await resolveDispute(clients(CHALLENGER), { disputes, id });
  mark('resolved: node slashed');
  elapsed = performance.now() - t0;
  if (resolved.outcome !== 'node-lied') throw new Error(`expected node-lied, got ${resolved.outcome}`);
  gas.push(['resolve (node slashed)', resolved.receipt.gasUsed, `slashed ${resolved.slashed} wei`]);
  const status = await auditStatus({ publicClient, deployment, nodeUrl: liar.url }, answer.receipt);
  if (status.status !== 'refuted') throw new Error(`expected refuted, got ${status.status}`);
} finally {
  await Promise.all(nodes.map((n) => n.stop()));
  await anvil.stop();
  await rm(dir, { recursive: true, force: true });
}

const fmt = (n: number | bigint) => n.toLocaleString('en-US');
console.log(`Verity disputes bench — node ${process.version}, anvil (automine), ${new Date().toISOString()}`);
console.log('| step | gas used | |');
console.log('|---|---:|---|');
for (const [what, g, note] of gas) console.log(`| ${what} | ${fmt(g)} | ${note} |`);
console.log('\n| wrong audited answer → slash | ms since the answer |');
console.log('|---|---:|');
for (const [what, ms] of steps) console.log(`| ${what} | ${ms.toFixed(0)} |`);
console.log(
  `total: ${elapsed.toFixed(0)} ms (jurors answering at once; a deployment adds its commit and reveal periods)`,
);
