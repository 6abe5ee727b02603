import {
  auditSampled,
  createMemoryTree,
  createTensor,
  drawJury,
  encodeRecord,
  encodeTensors,
  type InferenceRecord,
  inclusionProofFromReader,
  juryPool,
  jurySeed,
  paramsDigest,
  parseRecord,
  recordLeafHash,
  rootFromReader,
  sha256,
  toHex,
} from '@verity/protocol';
import {
  type Address,
  createWalletClient,
  type Hex,
  http,
  parseEther,
  type TransactionReceipt,
  toFunctionSelector,
} from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type Deployment, verifyDeployment } from './deploy.js';
import {
  challengeRecord,
  commitVote,
  type DisputeParams,
  drawDisputeJury,
  getDispute,
  getDisputeCredit,
  getDisputeRules,
  isAuditSampled,
  resolveDispute,
  revealVote,
  withdrawDisputeCredit,
} from './disputes.js';
import { disputesAbi, disputesBytecode } from './generated/disputes.js';
import { anchorCheckpoint } from './log-anchor.js';
import {
  getNode,
  getRegistryRules,
  readRegistrySnapshot,
  registerNode,
  requestUnbond,
  slashNode,
  withdrawStake,
} from './node-registry.js';
import { expectRevert, fill32, startTestChain, TEST_DISPUTE_RULES, type TestChain } from './test-support/chain.js';

/** Rules of these tests: fit in the test chain's 1-hour unbonding delay. */
const RULES: DisputeParams = TEST_DISPUTE_RULES;
const BURN = '0x000000000000000000000000000000000000dEaD';
/** Account 1 is the node on trial; 2–5 are the other nodes (jury candidates); 6 challenges. */
const NODE = 1;
const CHALLENGER = 6;
const STAKES: Record<number, bigint> = {
  1: parseEther('2'),
  2: parseEther('1'),
  3: parseEther('3'),
  4: parseEther('2'),
  5: parseEther('1.5'),
};

let chain: TestChain;
let d: Deployment;
let disputes: Address;
/** Gas of each step, printed once at the end. */
const gas: Record<string, bigint> = {};

beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(async () => {
  console.log(
    `Disputes gas: ${Object.entries(gas)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  await chain.stop();
});
beforeEach(async () => {
  d = await chain.deploy(RULES);
  disputes = d.contracts.disputes as Address;
  for (const i of [1, 2, 3, 4, 5]) {
    await registerNode(chain.clients(i), {
      nodeRegistry: d.contracts.nodeRegistry,
      logKey: fill32(i),
      origin: `verity.test/node-${i}`,
      endpoint: `http://127.0.0.1:${8000 + i}`,
      capabilities: ['mode:audited'],
      stake: STAKES[i] as bigint,
    });
  }
});

/** The input tensors of the records below, in their canonical encoding (docs/protocol.md §2.3). */
const INPUT = encodeTensors({ x: createTensor('float32', [1, 2], new Float32Array([1, -2.5])) });
const TRUE_OUTPUT = encodeTensors({ y: createTensor('float32', [1], new Float32Array([0.75])) });
const WRONG_OUTPUT = encodeTensors({ y: createTensor('float32', [1], new Float32Array([0.25])) });
const hex = (b: Uint8Array): Hex => `0x${toHex(b)}`;

async function now(): Promise<number> {
  return Number((await chain.publicClient.getBlock()).timestamp);
}

function record(
  requestId: string,
  output: Uint8Array,
  timestampMs: number,
  payment?: { digest: string; amount: string },
): InferenceRecord {
  return parseRecord({
    ...(payment === undefined ? {} : { payment }),
    version: 1,
    kind: 'onnx',
    mode: 'audited',
    model: 'bagaaieraiqjw7i2vwntyuekgvulpp2det2kpwt6cd7tx5ayqybqpmhfk76fa',
    runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    inputDigest: toHex(sha256(INPUT)),
    outputDigest: toHex(sha256(output)),
    paramsDigest: paramsDigest({}),
    requestId,
    timestamp: timestampMs,
    node: chain.address(NODE),
  });
}

/**
 * The node's log: 5 records, the liar's at index 3 (`lie`), an honest one at 1 (`honest`), a lie
 * at 0 backdated by more than the window (`backdated`); anchored at size 5 by the node.
 */
async function nodeLog() {
  const t = (await now()) * 1000;
  const records = [
    record('backdated', WRONG_OUTPUT, t - (RULES.challengeWindow + 60) * 1000),
    record('honest', TRUE_OUTPUT, t),
    record('other-1', TRUE_OUTPUT, t),
    record('lie', WRONG_OUTPUT, t),
    // A paid record (docs/protocol.md §17): its payment commitment is a seventh field at the end.
    record('other-2', TRUE_OUTPUT, t, { digest: 'ab'.repeat(32), amount: '1000' }),
  ];
  const tree = createMemoryTree(records.map(recordLeafHash));
  const anchored = await anchorCheckpoint(chain.clients(NODE), {
    logAnchor: d.contracts.logAnchor,
    treeSize: 5,
    rootHash: rootFromReader(tree, 5),
    consistency: [],
  });
  const anchoredAt = (await chain.publicClient.getBlock({ blockNumber: anchored.blockNumber })).timestamp;
  const evidence = (index: number) => ({
    disputes,
    record: encodeRecord(records[index] as InferenceRecord),
    leafIndex: index,
    treeSize: 5,
    proof: inclusionProofFromReader(tree, index, 5),
    input: INPUT,
  });
  return { records, tree, evidence, anchoredAt };
}

const stake = async (i: number) =>
  (await getNode(chain.publicClient, { nodeRegistry: d.contracts.nodeRegistry, node: chain.address(i) }))?.stake;
const credit = (account: Address) => getDisputeCredit(chain.publicClient, { disputes, account });
const balance = (address: Address) => chain.publicClient.getBalance({ address });
const fee = (r: TransactionReceipt) => r.gasUsed * r.effectiveGasPrice;

/** Challenges, mines the draw block, draws; checks the jury against the TS draw of §15.3. */
async function challengeAndDraw(evidence: Parameters<typeof challengeRecord>[1]) {
  const { id, drawBlock, pool, receipt } = await challengeRecord(chain.clients(CHALLENGER), evidence);
  gas.challenge = receipt.gasUsed;
  // The pool: every other active node, as the registry stood at the challenge.
  const atChallenge = await readRegistrySnapshot(chain.publicClient, {
    nodeRegistry: d.contracts.nodeRegistry,
    blockNumber: receipt.blockNumber,
  });
  expect(pool).toEqual(juryPool(atChallenge, { node: chain.address(NODE), challenger: chain.address(CHALLENGER) }));
  expect(pool.map((c) => c.address)).toEqual(
    [2, 3, 4, 5].map((i) => chain.address(i)).sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1)),
  );
  // Too early: the draw block's hash does not exist yet.
  await expectRevert(
    drawDisputeJury(chain.clients(CHALLENGER), { disputes, id }),
    'DISPUTE_WRONG_PHASE',
    'DrawTooEarly',
  );
  await chain.testClient.mine({ blocks: 1 });
  const drawn = await drawDisputeJury(chain.clients(CHALLENGER), { disputes, id });
  gas.draw = drawn.receipt.gasUsed;
  const hash = (await chain.publicClient.getBlock({ blockNumber: drawBlock })).hash;
  const seed = jurySeed(hash, id);
  expect(drawn.seed).toBe(hex(seed));
  expect(drawn.jurors).toEqual(drawJury(pool, seed, RULES.jurySize).map((n) => n.address));
  expect(drawn.jurors).toHaveLength(3);
  expect(drawn.jurors).not.toContain(chain.address(NODE));
  /** Account index of each juror. */
  const jurors = drawn.jurors.map((a) => [2, 3, 4, 5].find((i) => chain.address(i) === a) as number);
  return { id, jurors };
}

/** A juror's salt: fixed per juror and dispute, so the test can reveal what it committed. */
const salt = (i: number, id: bigint) => sha256(new TextEncoder().encode(`juror ${i} dispute ${id}`));
const commit = (i: number, id: bigint, outputDigest: Uint8Array) =>
  commitVote(chain.clients(i), { disputes, id, outputDigest, salt: salt(i, id) });
const reveal = (i: number, id: bigint, outputDigest: Uint8Array) =>
  revealVote(chain.clients(i), { disputes, id, outputDigest, salt: salt(i, id) });

describe('Disputes', () => {
  it('is the only slasher: the registry names it, nobody else slashes, no other Disputes can bind', async () => {
    const rules = await getRegistryRules(chain.publicClient, { nodeRegistry: d.contracts.nodeRegistry });
    expect(rules.slasher).toBe(disputes);
    expect(d.params.slasher).toBe(disputes);
    await verifyDeployment(chain.publicClient, d);
    expect(await getDisputeRules(chain.publicClient, { disputes })).toEqual(RULES);
    // The deployer, a node, the challenger: refused.
    for (const by of [0, NODE, CHALLENGER, 9]) {
      await expectRevert(
        slashNode(chain.clients(by), {
          nodeRegistry: d.contracts.nodeRegistry,
          node: chain.address(2),
          amount: 1n,
          reason: 'x',
        }),
        'UNAUTHORIZED',
        'NotSlasher',
      );
    }
    // A second Disputes for the same registry refuses to exist.
    const w = chain.clients(0).walletClient;
    const deploy = w.deployContract({
      abi: disputesAbi,
      bytecode: disputesBytecode,
      args: [
        d.contracts.nodeRegistry,
        d.contracts.logAnchor,
        { ...RULES, challengeWindow: 600n, commitPeriod: 300n, revealPeriod: 300n },
        d.contracts.zkVerifiers,
      ],
      account: w.account,
      chain: w.chain,
    });
    const error = await deploy.then(
      () => undefined,
      (e: unknown) => e,
    );
    // A constructor's revert is not decoded by viem: compare the selector and the argument.
    const selector = toFunctionSelector('NotRegistrySlasher(address)');
    expect(
      String(error).includes(`custom error ${selector}: ${disputes.slice(2).toLowerCase().padStart(64, '0')}`),
    ).toBe(true);
    // A deployment file claiming another slasher is refused.
    await expectRevert(
      verifyDeployment(chain.publicClient, { ...d, params: { ...d.params, slasher: chain.address(9) } }),
      'CONFIG_INVALID',
    );
  });

  it('slashes a node whose record claims a wrong output: challenger, jurors and burn paid exactly', async () => {
    const log = await nodeLog();
    const claimed = sha256(TRUE_OUTPUT);
    const burnBefore = await balance(BURN);
    const { id, jurors } = await challengeAndDraw({ ...log.evidence(3), claimedOutput: claimed });
    const [a, b, c] = jurors as [number, number, number];
    const stakeC = (await stake(c)) as bigint;
    // Two jurors re-execute and find the true output; the third votes the record's (wrong) one.
    // Votes are committed hidden first: nobody can reveal (and so copy) before all committed.
    const v = await commit(a, id, claimed);
    gas.commitVote = v.gasUsed;
    await commit(b, id, claimed);
    await expectRevert(reveal(a, id, claimed), 'DISPUTE_VOTING_OPEN', 'VotingOpen');
    await expectRevert(commit(a, id, claimed), 'DISPUTE_ALREADY_VOTED', 'AlreadyVoted');
    await expectRevert(commit(NODE, id, claimed), 'DISPUTE_NOT_JUROR', 'NotJuror');
    await commit(c, id, sha256(WRONG_OUTPUT));
    // A reveal must open the commitment: another digest, or another juror's salt, is refused.
    await expectRevert(reveal(a, id, sha256(WRONG_OUTPUT)), 'DISPUTE_COMMITMENT_MISMATCH', 'CommitmentMismatch');
    await expectRevert(
      revealVote(chain.clients(a), { disputes, id, outputDigest: claimed, salt: salt(b, id) }),
      'DISPUTE_COMMITMENT_MISMATCH',
      'CommitmentMismatch',
    );
    const rv = await reveal(a, id, claimed);
    gas.revealVote = rv.gasUsed;
    await reveal(b, id, claimed);
    await expectRevert(
      resolveDispute(chain.clients(CHALLENGER), { disputes, id }),
      'DISPUTE_VOTING_OPEN',
      'VotingOpen',
    );
    await reveal(c, id, sha256(WRONG_OUTPUT));
    // Everyone revealed: resolvable before the deadline.
    const r = await resolveDispute(chain.clients(CHALLENGER), { disputes, id });
    gas.resolve = r.receipt.gasUsed;

    const slashed = RULES.slashAmount; // 1 ETH of the node's 2
    const toChallenger = (slashed * 4000n) / 10_000n; // 0.4
    const toJurors = (slashed * 2000n) / 10_000n + RULES.jurorDeposit; // 0.2 + the minority's 0.05
    const burned = slashed - toChallenger - (slashed * 2000n) / 10_000n; // 0.4
    expect(r).toMatchObject({
      outcome: 'node-lied',
      majorityOutput: hex(claimed),
      slashed,
      challengerPaid: RULES.challengeBond + toChallenger,
      jurorsPaid: toJurors,
      burned,
      penalized: [{ juror: chain.address(c), amount: RULES.jurorDeposit }],
    });
    expect(await stake(NODE)).toBe((STAKES[NODE] as bigint) - slashed);
    expect(await stake(c)).toBe(stakeC - RULES.jurorDeposit);
    expect(await balance(BURN)).toBe(burnBefore + burned);
    expect(await credit(chain.address(CHALLENGER))).toBe(parseEther('0.5'));
    expect(await credit(chain.address(a))).toBe(toJurors / 2n);
    expect(await credit(chain.address(b))).toBe(toJurors / 2n);
    expect(await credit(chain.address(c))).toBe(0n);
    expect(await balance(disputes)).toBe(parseEther('0.5') + toJurors);
    // Pull payment: the challenger's balance grows by its credit less the withdrawal's fee.
    const before = await balance(chain.address(CHALLENGER));
    const w = await withdrawDisputeCredit(chain.clients(CHALLENGER), { disputes });
    expect(await balance(chain.address(CHALLENGER))).toBe(before + parseEther('0.5') - fee(w));
    expect(await credit(chain.address(CHALLENGER))).toBe(0n);
    await expectRevert(
      withdrawDisputeCredit(chain.clients(CHALLENGER), { disputes }),
      'CHAIN_REVERTED',
      'NothingToWithdraw',
    );

    const state = await getDispute(chain.publicClient, { disputes, id });
    expect(state).toMatchObject({ phase: 'resolved', outcome: 'node-lied', node: chain.address(NODE) });
    // A record is slashed once.
    await expectRevert(
      challengeRecord(chain.clients(CHALLENGER), { ...log.evidence(3), claimedOutput: claimed }),
      'DISPUTE_CONFLICT',
      'RecordAlreadySlashed',
    );
  });

  it('a false challenge loses its bond; a silent juror loses its deposit', async () => {
    const log = await nodeLog();
    const honest = sha256(TRUE_OUTPUT);
    const { id, jurors } = await challengeAndDraw({ ...log.evidence(1), claimedOutput: sha256(WRONG_OUTPUT) });
    const [a, b, silent] = jurors as [number, number, number];
    const stakeSilent = (await stake(silent)) as bigint;
    // While open, the same record cannot be challenged again.
    await expectRevert(
      challengeRecord(chain.clients(2), { ...log.evidence(1), claimedOutput: sha256(WRONG_OUTPUT) }),
      'DISPUTE_CONFLICT',
      'RecordUnderDispute',
    );
    await commit(a, id, honest);
    await commit(b, id, honest);
    // The silent juror never commits: reveals open at the commit deadline.
    await expectRevert(reveal(a, id, honest), 'DISPUTE_VOTING_OPEN', 'VotingOpen');
    await chain.testClient.increaseTime({ seconds: RULES.commitPeriod + 1 });
    await chain.testClient.mine({ blocks: 1 });
    await expectRevert(commit(silent, id, honest), 'DISPUTE_VOTING_CLOSED', 'VotingClosed');
    await expectRevert(reveal(silent, id, honest), 'DISPUTE_COMMITMENT_MISMATCH', 'NotCommitted');
    await reveal(a, id, honest);
    await reveal(b, id, honest);
    await expectRevert(resolveDispute(chain.clients(0), { disputes, id }), 'DISPUTE_VOTING_OPEN', 'VotingOpen');
    await chain.testClient.increaseTime({ seconds: RULES.revealPeriod });
    await chain.testClient.mine({ blocks: 1 });
    const r = await resolveDispute(chain.clients(0), { disputes, id });
    const toJurors = (RULES.challengeBond * 2000n) / 10_000n + RULES.jurorDeposit; // 0.02 + 0.05
    expect(r).toMatchObject({
      outcome: 'challenge-failed',
      majorityOutput: hex(honest),
      slashed: 0n,
      challengerPaid: 0n,
      jurorsPaid: toJurors,
      burned: 0n,
      penalized: [{ juror: chain.address(silent), amount: RULES.jurorDeposit }],
    });
    expect(await stake(NODE)).toBe(STAKES[NODE]);
    expect(await stake(silent)).toBe(stakeSilent - RULES.jurorDeposit);
    expect(await credit(chain.address(CHALLENGER))).toBe(0n);
    // The wrongly accused node gets the rest of the bond.
    expect(await credit(chain.address(NODE))).toBe(RULES.challengeBond - (RULES.challengeBond * 2000n) / 10_000n);
    expect(await credit(chain.address(a))).toBe(toJurors / 2n);
    expect(await credit(chain.address(b))).toBe(toJurors / 2n);
    expect(await credit(chain.address(silent))).toBe(0n);
    await expectRevert(resolveDispute(chain.clients(0), { disputes, id }), 'DISPUTE_WRONG_PHASE', 'WrongPhase');
  });

  it('fixes the jury pool at the challenge: joining or topping up after the seed is known changes nothing', async () => {
    const log = await nodeLog();
    const { id, pool } = await challengeRecord(chain.clients(CHALLENGER), {
      ...log.evidence(3),
      claimedOutput: sha256(TRUE_OUTPUT),
    });
    await chain.testClient.mine({ blocks: 1 });
    // The accused's friend sees the draw block's hash, then registers a large stake and tops one up.
    await registerNode(chain.clients(7), {
      nodeRegistry: d.contracts.nodeRegistry,
      logKey: fill32(7),
      origin: 'verity.test/node-7',
      endpoint: 'http://127.0.0.1:8007',
      capabilities: ['mode:audited'],
      stake: parseEther('100'),
    });
    const grown = [...pool, { address: chain.address(7), stake: parseEther('100') }].sort((x, y) =>
      x.address.toLowerCase() < y.address.toLowerCase() ? -1 : 1,
    );
    await expectRevert(
      drawDisputeJury(chain.clients(7), { disputes, id, pool: grown }),
      'DISPUTE_POOL_MISMATCH',
      'PoolMismatch',
    );
    const topped = pool.map((c, i) => (i === 0 ? { ...c, stake: c.stake + 1n } : c));
    await expectRevert(
      drawDisputeJury(chain.clients(7), { disputes, id, pool: topped }),
      'DISPUTE_POOL_MISMATCH',
      'PoolMismatch',
    );
    // Anyone may draw; the wrapper reads the pool from the challenge's event.
    const drawn = await drawDisputeJury(chain.clients(7), { disputes, id, fromBlock: d.block });
    expect(drawn.jurors).not.toContain(chain.address(7));
    const state = await getDispute(chain.publicClient, { disputes, id });
    expect(state.phase).toBe('voting');
    expect(state.jurors.map((j) => j.account)).toEqual(drawn.jurors);
    expect(state.commitDeadline + BigInt(RULES.revealPeriod)).toBe(state.revealDeadline);
  });

  it('undecided when no juror reveals: the bond comes back, every silent juror loses its deposit', async () => {
    const log = await nodeLog();
    const burnBefore = await balance(BURN);
    const { id, jurors } = await challengeAndDraw({ ...log.evidence(3), claimedOutput: sha256(TRUE_OUTPUT) });
    const before = await Promise.all(jurors.map(stake));
    await chain.testClient.increaseTime({ seconds: RULES.commitPeriod + RULES.revealPeriod + 1 });
    await chain.testClient.mine({ blocks: 1 });
    const r = await resolveDispute(chain.clients(0), { disputes, id });
    expect(r).toMatchObject({
      outcome: 'undecided',
      slashed: 0n,
      challengerPaid: RULES.challengeBond,
      jurorsPaid: 0n,
      burned: 3n * RULES.jurorDeposit,
    });
    expect(r.penalized.map((p) => p.juror)).toEqual(jurors.map((i) => chain.address(i)));
    expect(await Promise.all(jurors.map(stake))).toEqual(before.map((b) => (b as bigint) - RULES.jurorDeposit));
    expect(await stake(NODE)).toBe(STAKES[NODE]);
    expect(await credit(chain.address(CHALLENGER))).toBe(RULES.challengeBond);
    expect(await balance(BURN)).toBe(burnBefore + 3n * RULES.jurorDeposit);
    // Undecided is no verdict: the record is not locked (no open dispute, not slashed); here only
    // its window, which the voting outlasted, refuses a new challenge.
    const leaf = (await getDispute(chain.publicClient, { disputes, id })).leaf;
    const read = (functionName: 'openDispute' | 'slashedRecord') =>
      chain.publicClient.readContract({ address: disputes, abi: disputesAbi, functionName, args: [leaf] });
    expect([await read('openDispute'), await read('slashedRecord')]).toEqual([0n, false]);
    await expectRevert(
      challengeRecord(chain.clients(CHALLENGER), { ...log.evidence(3), claimedOutput: sha256(TRUE_OUTPUT) }),
      'DISPUTE_WINDOW_CLOSED',
      'ChallengeWindowClosed',
    );
  });

  it('defers a draw whose block hash expired (256 blocks) to a later block', async () => {
    const log = await nodeLog();
    const { id, pool } = await challengeRecord(chain.clients(CHALLENGER), {
      ...log.evidence(3),
      claimedOutput: sha256(TRUE_OUTPUT),
    });
    await chain.testClient.mine({ blocks: 300 });
    const deferred = await drawDisputeJury(chain.clients(CHALLENGER), { disputes, id, pool });
    expect([deferred.deferred, deferred.jurors]).toEqual([true, []]);
    const state = await getDispute(chain.publicClient, { disputes, id });
    expect(state).toMatchObject({ phase: 'awaiting-draw', drawBlock: deferred.receipt.blockNumber + 1n });
    await chain.testClient.mine({ blocks: 1 });
    const drawn = await drawDisputeJury(chain.clients(CHALLENGER), { disputes, id, pool });
    const hash = (await chain.publicClient.getBlock({ blockNumber: state.drawBlock })).hash;
    expect(drawn.jurors).toEqual(drawJury(pool, jurySeed(hash, id), RULES.jurySize).map((c) => c.address));
  });

  it('slashes an unbonding node, refuses a node that has left', async () => {
    const t = (await now()) * 1000;
    const late = record('late', WRONG_OUTPUT, t);
    const tree = createMemoryTree([recordLeafHash(late)]);
    await anchorCheckpoint(chain.clients(NODE), {
      logAnchor: d.contracts.logAnchor,
      treeSize: 1,
      rootHash: rootFromReader(tree, 1),
      consistency: [],
    });
    await requestUnbond(chain.clients(NODE), { nodeRegistry: d.contracts.nodeRegistry });
    const evidence = {
      disputes,
      record: encodeRecord(late),
      leafIndex: 0,
      treeSize: 1,
      proof: [],
      input: INPUT,
      claimedOutput: sha256(TRUE_OUTPUT),
    };
    // Unbonding: still slashable, so a challenge opens (the pool is the other nodes).
    const open = await challengeRecord(chain.clients(CHALLENGER), evidence);
    expect(open.pool).toHaveLength(4);
    await chain.testClient.increaseTime({ seconds: 3601 });
    await chain.testClient.mine({ blocks: 1 });
    await withdrawStake(chain.clients(NODE), { nodeRegistry: d.contracts.nodeRegistry });
    await expectRevert(challengeRecord(chain.clients(2), evidence), 'DISPUTE_NODE_NOT_SLASHABLE', 'NodeNotSlashable');
  });

  it('costs gas in proportion to the registry: challenge and draw with 5, 21 and 51 nodes', async () => {
    const log = await nodeLog();
    const cases = [
      { nodes: 5, index: 3, claimed: sha256(TRUE_OUTPUT) },
      { nodes: 21, index: 2, claimed: sha256(WRONG_OUTPUT) },
      { nodes: 51, index: 4, claimed: sha256(WRONG_OUTPUT) },
    ];
    let registered = 5;
    const rows: string[] = [];
    for (const c of cases) {
      for (; registered < c.nodes; registered++) {
        const account = privateKeyToAccount(generatePrivateKey());
        await chain.testClient.setBalance({ address: account.address, value: parseEther('10') });
        const clients = {
          publicClient: chain.publicClient,
          walletClient: createWalletClient({
            account,
            chain: chain.clients(0).walletClient.chain,
            transport: http(chain.anvil.rpcUrl),
          }),
        };
        await registerNode(clients, {
          nodeRegistry: d.contracts.nodeRegistry,
          logKey: `0x${registered.toString(16).padStart(64, 'e')}`,
          origin: `verity.test/extra-${registered}`,
          endpoint: 'http://127.0.0.1:9000',
          capabilities: ['mode:audited'],
          stake: parseEther('1'),
        });
      }
      const { id, pool, receipt } = await challengeRecord(chain.clients(CHALLENGER), {
        ...log.evidence(c.index),
        claimedOutput: c.claimed,
      });
      expect(pool).toHaveLength(c.nodes - 1);
      // In address order with the stakes of the registry at the challenge (§15.3), random addresses and all.
      const snapshot = await readRegistrySnapshot(chain.publicClient, {
        nodeRegistry: d.contracts.nodeRegistry,
        blockNumber: receipt.blockNumber,
      });
      expect(pool).toEqual(juryPool(snapshot, { node: chain.address(NODE), challenger: chain.address(CHALLENGER) }));
      await chain.testClient.mine({ blocks: 1 });
      const drawn = await drawDisputeJury(chain.clients(CHALLENGER), { disputes, id, pool });
      rows.push(`${c.nodes} nodes: challenge ${receipt.gasUsed}, draw ${drawn.receipt.gasUsed}`);
    }
    console.log(`Disputes gas by registry size: ${rows.join('; ')}`);
  });

  it('challenges a paid record as any other: the payment field after the six does not change its parsing', async () => {
    const log = await nodeLog();
    const paid = log.evidence(4);
    expect((paid.record as Uint8Array).length).toBe(
      encodeRecord(log.records[3] as InferenceRecord).length - 3 + 7 + 65,
    );
    await expectRevert(
      challengeRecord(chain.clients(CHALLENGER), { ...paid, claimedOutput: sha256(TRUE_OUTPUT) }),
      'DISPUTE_CLAIM_INVALID',
      'ClaimMatchesRecord',
    );
    const { id } = await challengeRecord(chain.clients(CHALLENGER), { ...paid, claimedOutput: sha256(WRONG_OUTPUT) });
    const dispute = await getDispute(chain.publicClient, { disputes, id });
    expect(dispute.node).toBe(chain.address(NODE));
    expect(dispute.recordOutput).toBe(hex(sha256(TRUE_OUTPUT)));
  });

  it('refuses a challenge out of its window, with a bad proof, input or record, or a wrong bond', async () => {
    const log = await nodeLog();
    const claimed = sha256(TRUE_OUTPUT);
    const c = chain.clients(CHALLENGER);
    const lie = { ...log.evidence(3), claimedOutput: claimed };
    // Inclusion: a flipped sibling, another index, a proof against an un-anchored size.
    const proof = lie.proof.map((p) => p.slice());
    const sibling = proof[0] as Uint8Array;
    sibling[0] = (sibling[0] as number) ^ 1;
    await expectRevert(challengeRecord(c, { ...lie, proof }), 'DISPUTE_INCLUSION_INVALID', 'InclusionInvalid');
    await expectRevert(challengeRecord(c, { ...lie, leafIndex: 2 }), 'DISPUTE_INCLUSION_INVALID', 'InclusionInvalid');
    await expectRevert(
      challengeRecord(c, { ...lie, treeSize: 4, proof: inclusionProofFromReader(log.tree, 3, 4) }),
      'DISPUTE_ROOT_NOT_ANCHORED',
      'RootNotAnchored',
    );
    // Input bytes that do not hash to the record's inputDigest.
    const input = INPUT.slice();
    input[0] = (input[0] as number) ^ 1;
    const args = await expectRevert(
      challengeRecord(c, { ...lie, input }),
      'DISPUTE_INPUT_MISMATCH',
      'InputDigestMismatch',
    );
    expect(args).toEqual([hex(sha256(INPUT)), hex(sha256(input))]);
    // The record's bytes changed (its leaf is then not in the log), or not a record at all.
    const record = (lie.record as Uint8Array).slice();
    record[67] = (record[67] as number) ^ 1;
    await expectRevert(challengeRecord(c, { ...lie, record }), 'DISPUTE_INCLUSION_INVALID', 'InclusionInvalid');
    const notRecord = (lie.record as Uint8Array).slice();
    notRecord[0] = 0x58;
    await expectRevert(challengeRecord(c, { ...lie, record: notRecord }), 'DISPUTE_RECORD_INVALID', 'RecordMalformed');
    await expectRevert(
      challengeRecord(c, { ...lie, record: (lie.record as Uint8Array).slice(0, 136) }),
      'DISPUTE_RECORD_INVALID',
      'RecordMalformed',
    );
    // Claiming the record's own output is no challenge; the bond is exact.
    await expectRevert(
      challengeRecord(c, { ...lie, claimedOutput: sha256(WRONG_OUTPUT) }),
      'DISPUTE_CLAIM_INVALID',
      'ClaimMatchesRecord',
    );
    await expectRevert(
      challengeRecord(c, { ...lie, bond: parseEther('0.05') }),
      'DISPUTE_BOND_INVALID',
      'BondMismatch',
    );
    await expectRevert(getDispute(chain.publicClient, { disputes, id: 1n }), 'DISPUTE_NOT_FOUND');
    // Nothing above opened a dispute; the window also closes for a fresh record with time.
    await chain.testClient.increaseTime({ seconds: RULES.challengeWindow + 1 });
    await chain.testClient.mine({ blocks: 1 });
    const closed = await expectRevert(challengeRecord(c, lie), 'DISPUTE_WINDOW_CLOSED', 'ChallengeWindowClosed');
    expect(closed).toEqual([(log.anchoredAt + BigInt(RULES.challengeWindow)).toString()]);
  });

  it('counts the window from the first anchor on chain: a backdated record keeps it whole, a later anchor neither extends nor proves it', async () => {
    const log = await nodeLog();
    const c = chain.clients(CHALLENGER);
    const claimed = sha256(TRUE_OUTPUT);
    // Records 5 and 6 (a lie at 5) come later and are first anchored at size 7.
    const t = (await now()) * 1000;
    const more = [record('lie-2', WRONG_OUTPUT, t), record('other-3', TRUE_OUTPUT, t)];
    for (const r of more) log.tree.append(recordLeafHash(r));
    await chain.testClient.increaseTime({ seconds: RULES.challengeWindow / 2 });
    const second = await anchorCheckpoint(chain.clients(NODE), {
      logAnchor: d.contracts.logAnchor,
      treeSize: 7,
      rootHash: rootFromReader(log.tree, 7),
      consistency: log.tree.consistencyProof(5, 7),
    });
    const secondAt = (await chain.publicClient.getBlock({ blockNumber: second.blockNumber })).timestamp;
    const at7 = (index: number, r: InferenceRecord) => ({
      disputes,
      record: encodeRecord(r),
      leafIndex: index,
      treeSize: 7,
      proof: inclusionProofFromReader(log.tree, index, 7),
      input: INPUT,
      claimedOutput: claimed,
    });
    // Record 3 was first anchored at size 5: proving it in the tree of 7 (a later window) is refused.
    const args = await expectRevert(
      challengeRecord(c, at7(3, log.records[3] as InferenceRecord)),
      'DISPUTE_ANCHOR_NOT_FIRST',
      'AnchorNotFirst',
    );
    expect(args).toEqual(['3', '7', '5']);
    // The record the node dated a window + 60 s before its anchor is challengeable all the same:
    // its window runs from the anchor, not from the node's word.
    const backdated = await challengeRecord(c, { ...log.evidence(0), claimedOutput: claimed });
    expect((await getDispute(chain.publicClient, { disputes, id: backdated.id })).leaf).toBe(
      hex(recordLeafHash(log.records[0] as InferenceRecord)),
    );
    // Once the first anchor's window is over, record 3's challenge is refused; record 5's, first
    // anchored half a window later, is still open.
    await chain.testClient.setNextBlockTimestamp({ timestamp: log.anchoredAt + BigInt(RULES.challengeWindow) + 1n });
    await chain.testClient.mine({ blocks: 1 });
    const closed = await expectRevert(
      challengeRecord(c, { ...log.evidence(3), claimedOutput: claimed }),
      'DISPUTE_WINDOW_CLOSED',
      'ChallengeWindowClosed',
    );
    expect(closed).toEqual([(log.anchoredAt + BigInt(RULES.challengeWindow)).toString()]);
    expect(secondAt - log.anchoredAt).toBeGreaterThanOrEqual(BigInt(RULES.challengeWindow / 2));
    const { id } = await challengeRecord(c, at7(5, more[0] as InferenceRecord));
    expect((await getDispute(chain.publicClient, { disputes, id })).phase).toBe('awaiting-draw');
  });

  it('fixes the audit sample on chain: isSampled is the rule of auditSampled at the deployed rate', async () => {
    const rules = { ...RULES, auditRatePpm: 300_000 };
    const deployment = await chain.deploy(rules);
    const own = deployment.contracts.disputes as Address;
    expect((await getDisputeRules(chain.publicClient, { disputes: own })).auditRatePpm).toBe(300_000);
    await registerNode(chain.clients(NODE), {
      nodeRegistry: deployment.contracts.nodeRegistry,
      logKey: fill32(NODE),
      origin: `verity.test/node-${NODE}`,
      endpoint: 'http://127.0.0.1:8001',
      capabilities: ['mode:audited'],
      stake: parseEther('1'),
    });
    // Any 64 leaves: the sample depends on the node, the index and the anchor's next block only.
    const tree = createMemoryTree(Array.from({ length: 64 }, (_, i) => sha256(new Uint8Array([i]))));
    const q = { disputes: own, node: chain.address(NODE) };
    const anchored = await anchorCheckpoint(chain.clients(NODE), {
      logAnchor: deployment.contracts.logAnchor,
      treeSize: 64,
      rootHash: rootFromReader(tree, 64),
      consistency: [],
    });
    // The seed block (the anchor's + 1) is not mined yet.
    const early = await expectRevert(
      isAuditSampled(chain.publicClient, { ...q, leafIndex: 0, treeSize: 64 }),
      'AUDIT_SEED_UNAVAILABLE',
      'SeedUnavailable',
    );
    expect(early).toEqual([(anchored.blockNumber + 1n).toString()]);
    // A call sees the hashes of the blocks before the one it runs in: B + 1 once B + 2 is mined.
    await chain.testClient.mine({ blocks: 1 });
    await expectRevert(
      isAuditSampled(chain.publicClient, { ...q, leafIndex: 0, treeSize: 64 }),
      'AUDIT_SEED_UNAVAILABLE',
      'SeedUnavailable',
    );
    await chain.testClient.mine({ blocks: 1 });
    const seed = (await chain.publicClient.getBlock({ blockNumber: anchored.blockNumber + 1n })).hash;
    const onChain: boolean[] = [];
    for (let i = 0; i < 64; i++)
      onChain.push(await isAuditSampled(chain.publicClient, { ...q, leafIndex: i, treeSize: 64 }));
    expect(onChain).toEqual([...Array(64).keys()].map((i) => auditSampled(seed, chain.address(NODE), i, 300_000)));
    const n = onChain.filter(Boolean).length;
    expect(n).toBeGreaterThan(5);
    expect(n).toBeLessThan(40);
    // Another size, or an index outside the tree, is not the record's first anchor.
    await expectRevert(
      isAuditSampled(chain.publicClient, { ...q, leafIndex: 64, treeSize: 64 }),
      'DISPUTE_ANCHOR_NOT_FIRST',
      'AnchorNotFirst',
    );
    await expectRevert(
      isAuditSampled(chain.publicClient, { ...q, leafIndex: 0, treeSize: 63 }),
      'DISPUTE_ROOT_NOT_ANCHORED',
      'RootNotAnchored',
    );
    // 256 blocks later the EVM has forgotten the seed's hash (computed off chain from then on).
    await chain.testClient.mine({ blocks: 300 });
    await expectRevert(
      isAuditSampled(chain.publicClient, { ...q, leafIndex: 0, treeSize: 64 }),
      'AUDIT_SEED_UNAVAILABLE',
      'SeedUnavailable',
    );
  });

  it('refuses a deployment whose audit rate is not 1 to 1 000 000 ppm, in the SDK and in the contract', async () => {
    for (const auditRatePpm of [0, 1_000_001, 0.5]) {
      await expectRevert(chain.deploy({ ...RULES, auditRatePpm }), 'INVALID_ARGUMENT');
    }
    // The constructor checks it too (deployed directly, past deployContracts' check).
    const w = chain.clients(0).walletClient;
    for (const auditRatePpm of [0, 1_000_001]) {
      const error = await w
        .deployContract({
          abi: disputesAbi,
          bytecode: disputesBytecode,
          args: [
            d.contracts.nodeRegistry,
            d.contracts.logAnchor,
            { ...RULES, challengeWindow: 600n, commitPeriod: 300n, revealPeriod: 300n, auditRatePpm },
            d.contracts.zkVerifiers,
          ],
          account: w.account,
          chain: w.chain,
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(String(error)).toContain(toFunctionSelector('ParamsInvalid()'));
    }
  });
});
