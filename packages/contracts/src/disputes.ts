/**
 * Actions on `Disputes` (contracts/Disputes.sol), the registry's only slasher: challenge a logged
 * record, draw the jury, vote, resolve, withdraw what was credited, and read a dispute
 * (docs/protocol.md §15). Reverts become `VerityError`s with `DISPUTE_*` codes (see `chain-error.ts`).
 */
import { fail, type JuryCandidate } from '@verity/protocol';
import {
  type Address,
  encodeAbiParameters,
  type Hex,
  keccak256,
  type PublicClient,
  parseEther,
  parseEventLogs,
  type TransactionReceipt,
  toHex,
} from 'viem';
import { address, bytes32, type ChainClients, type ReadOptions, read, sendAndConfirm } from './clients.js';
import { disputesAbi } from './generated/disputes.js';

/** The rules of `Disputes`, fixed at deployment (constructor `Params`). */
export interface DisputeParams {
  /** Wei a challenger posts, exactly. */
  readonly challengeBond: bigint;
  /** Wei of its stake a drawn juror loses for a minority vote or none. */
  readonly jurorDeposit: bigint;
  /** Wei of stake a node that lied loses (capped at its stake). */
  readonly slashAmount: bigint;
  /** Parts per 10 000 of a slash paid to the challenger. */
  readonly challengerShareBps: number;
  /** Parts per 10 000 of a slash (or of a failed bond) shared by the majority jurors. */
  readonly jurorShareBps: number;
  /**
   * Seconds during which a record can be challenged, from the chain's time of the node's first
   * anchor that covers it (not from the record's timestamp, which is the node's word).
   */
  readonly challengeWindow: number;
  /** Seconds jurors have to commit their votes, from the draw. */
  readonly commitPeriod: number;
  /** Seconds jurors have to reveal them, after the commit deadline. */
  readonly revealPeriod: number;
  /** Jurors per dispute: odd, 1 to 15. */
  readonly jurySize: number;
  /**
   * Parts per million of audited records in the audit sample (1 to 1 000 000): the probability,
   * fixed on chain, that a record is checked by an auditor that follows the rule (docs/protocol.md §15.8).
   */
  readonly auditRatePpm: number;
}

/**
 * The rules `verity up` deploys: a 0.1 ETH bond; a lie costs 1 ETH of stake, 40 % to the
 * challenger, 20 % to the jurors, 40 % burned; a juror risks 0.05 ETH; records are challengeable
 * for 3 days; jurors commit within 12 hours and reveal within the next 12 (together below the
 * 7-day unbonding delay, as the contract requires); auditors sample 1 % of audited records.
 */
export const DEFAULT_DISPUTE_PARAMS: DisputeParams = Object.freeze({
  challengeBond: parseEther('0.1'),
  jurorDeposit: parseEther('0.05'),
  slashAmount: parseEther('1'),
  challengerShareBps: 4000,
  jurorShareBps: 2000,
  challengeWindow: 3 * 86400,
  commitPeriod: 12 * 3600,
  revealPeriod: 12 * 3600,
  jurySize: 3,
  auditRatePpm: 10_000,
});

/** The constructor argument for `params`, after checking what the contract also checks. */
export function disputeParamsArg(p: DisputeParams) {
  const wei = (v: bigint, what: string) => {
    if (typeof v !== 'bigint' || v < 0n || v >= 2n ** 256n) fail('INVALID_ARGUMENT', `${what} must be wei`, { what });
    return v;
  };
  const whole = (v: number, what: string, max: number) => {
    if (!Number.isSafeInteger(v) || v < 0 || v > max) fail('INVALID_ARGUMENT', `${what} out of range`, { what, v });
    return v;
  };
  whole(p.jurySize, 'jurySize', 15);
  if (whole(p.auditRatePpm, 'auditRatePpm', 1_000_000) === 0) {
    fail('INVALID_ARGUMENT', 'auditRatePpm must be 1 to 1 000 000 parts per million', { auditRatePpm: p.auditRatePpm });
  }
  if (p.jurySize % 2 === 0) fail('INVALID_ARGUMENT', 'jurySize must be odd', { jurySize: p.jurySize });
  if (
    whole(p.challengerShareBps, 'challengerShareBps', 10_000) + whole(p.jurorShareBps, 'jurorShareBps', 10_000) >
    10_000
  ) {
    fail('INVALID_ARGUMENT', 'the challenger and juror shares exceed 10 000 bps');
  }
  return {
    challengeBond: wei(p.challengeBond, 'challengeBond'),
    jurorDeposit: wei(p.jurorDeposit, 'jurorDeposit'),
    slashAmount: wei(p.slashAmount, 'slashAmount'),
    challengerShareBps: p.challengerShareBps,
    jurorShareBps: p.jurorShareBps,
    challengeWindow: BigInt(whole(p.challengeWindow, 'challengeWindow', Number.MAX_SAFE_INTEGER)),
    commitPeriod: BigInt(whole(p.commitPeriod, 'commitPeriod', Number.MAX_SAFE_INTEGER)),
    revealPeriod: BigInt(whole(p.revealPeriod, 'revealPeriod', Number.MAX_SAFE_INTEGER)),
    jurySize: p.jurySize,
    auditRatePpm: p.auditRatePpm,
  } as const;
}

/** Where a dispute stands (the contract's `Phase`). */
export const DISPUTE_PHASES = ['none', 'awaiting-draw', 'voting', 'resolved'] as const;
export type DisputePhase = (typeof DISPUTE_PHASES)[number];

/** How a dispute ended (the contract's `Outcome`); `none` until resolved. */
export const DISPUTE_OUTCOMES = ['none', 'node-lied', 'challenge-failed', 'undecided'] as const;
export type DisputeOutcome = (typeof DISPUTE_OUTCOMES)[number];

const digest = (value: Uint8Array | Hex, what: string): Hex => bytes32(value, what);
const hexBytes = (value: Uint8Array | Hex): Hex => (value instanceof Uint8Array ? toHex(value) : value);

/**
 * Whether the record at `leafIndex` is in the audit sample, as `Disputes.isSampled` computes it
 * on chain (`treeSize`: the node's first anchor covering the record; `DISPUTE_ANCHOR_NOT_FIRST`
 * otherwise, `AUDIT_SEED_UNAVAILABLE` while the block after that anchor is not mined or once its
 * hash is older than 256 blocks; then compute it with `auditSampled` of `@verity/protocol`).
 */
export async function isAuditSampled(
  publicClient: PublicClient,
  params: {
    readonly disputes: Address;
    readonly node: Address;
    readonly leafIndex: bigint | number;
    readonly treeSize: bigint | number;
  } & ReadOptions,
): Promise<boolean> {
  return read('isSampled', () =>
    publicClient.readContract({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      functionName: 'isSampled',
      args: [address(params.node, 'node'), BigInt(params.leafIndex), BigInt(params.treeSize)],
      blockNumber: params.blockNumber,
    }),
  );
}

/** Parameters of {@link challengeRecord}. */
export interface ChallengeParams {
  readonly disputes: Address;
  /** The record's canonical bytes (`encodeRecord`). */
  readonly record: Uint8Array | Hex;
  /** The record's index in its node's log. */
  readonly leafIndex: bigint | number;
  /**
   * The size of the node's first anchor that covers `leafIndex` (`getFirstAnchor`); the proof is
   * against that anchored root, and the window runs from that anchor's time.
   */
  readonly treeSize: bigint | number;
  /** RFC 9162 inclusion proof of the record's leaf in that tree. */
  readonly proof: readonly (Uint8Array | Hex)[];
  /** The canonical input bytes; SHA-256 must equal the record's `inputDigest`. */
  readonly input: Uint8Array | Hex;
  /** The output digest the challenger says is right. */
  readonly claimedOutput: Uint8Array | Hex;
  /** The bond to send; read from the contract if absent. */
  readonly bond?: bigint;
}

/**
 * Challenges a record with the contract's bond. Refusals: `DISPUTE_RECORD_INVALID`,
 * `DISPUTE_WINDOW_CLOSED`, `DISPUTE_NODE_NOT_SLASHABLE`, `DISPUTE_ROOT_NOT_ANCHORED`,
 * `DISPUTE_ANCHOR_NOT_FIRST`, `DISPUTE_INCLUSION_INVALID`, `DISPUTE_INPUT_MISMATCH`, `DISPUTE_CLAIM_INVALID`,
 * `DISPUTE_BOND_INVALID`, `DISPUTE_CONFLICT` (already disputed or slashed).
 *
 * @example
 * ```ts
 * const { id } = await challengeRecord(clients, { disputes, record: encodeRecord(r), leafIndex, treeSize, proof, input, claimedOutput });
 * ```
 */
export async function challengeRecord(
  clients: ChainClients,
  params: ChallengeParams,
): Promise<{ id: bigint; drawBlock: bigint; pool: JuryCandidate[]; receipt: TransactionReceipt }> {
  const disputes = address(params.disputes, 'disputes');
  const claimedOutput = digest(params.claimedOutput, 'claimedOutput');
  const proof = params.proof.map((p, i) => digest(p, `proof[${i}]`));
  const bond =
    params.bond ??
    (await read('challenge', () =>
      clients.publicClient.readContract({ address: disputes, abi: disputesAbi, functionName: 'challengeBond' }),
    ));
  const { walletClient } = clients;
  const receipt = await sendAndConfirm(clients, 'challenge', () =>
    walletClient.writeContract({
      address: disputes,
      abi: disputesAbi,
      functionName: 'challenge',
      args: [
        hexBytes(params.record),
        BigInt(params.leafIndex),
        BigInt(params.treeSize),
        proof,
        hexBytes(params.input),
        claimedOutput,
      ],
      value: bond,
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
  const [event] = parseEventLogs({ abi: disputesAbi, logs: receipt.logs, eventName: 'Challenged' });
  const [pool] = parseEventLogs({ abi: disputesAbi, logs: receipt.logs, eventName: 'JuryPool' });
  if (event === undefined || pool === undefined)
    return fail('INTERNAL', 'challenge: no Challenged event in the receipt');
  return { id: event.args.id, drawBlock: BigInt(event.args.drawBlock), pool: poolFromEvent(pool.args), receipt };
}

function poolFromEvent(args: {
  readonly pool: readonly Address[];
  readonly stakes: readonly bigint[];
}): JuryCandidate[] {
  return args.pool.map((address, i) => ({ address, stake: args.stakes[i] as bigint }));
}

/**
 * The jury pool a challenge fixed (its `JuryPool` event), in address order with stakes. Start at
 * the deployment block (`Deployment.block`); a public RPC endpoint may limit the block range.
 */
export async function getJuryPool(
  publicClient: PublicClient,
  params: { readonly disputes: Address; readonly id: bigint; readonly fromBlock?: bigint },
): Promise<JuryCandidate[]> {
  const logs = await read('getJuryPool', () =>
    publicClient.getContractEvents({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      eventName: 'JuryPool',
      args: { id: params.id },
      fromBlock: params.fromBlock ?? 0n,
      toBlock: 'latest',
      strict: true,
    }),
  );
  const [log] = logs;
  if (log === undefined) return fail('DISPUTE_NOT_FOUND', `no dispute ${params.id}`, { id: params.id.toString() });
  return poolFromEvent(log.args);
}

/**
 * Draws the jury of a dispute from the pool its challenge fixed (read from the chain unless
 * given). Anyone may, once the draw block is mined; before that `DISPUTE_WRONG_PHASE` with
 * `details.revert` `DrawTooEarly`; another pool is `DISPUTE_POOL_MISMATCH`. `deferred` when the
 * draw block's hash had expired and a later block will seed the draw (then draw again); `jurors`
 * is empty then, and also when the pool was empty (the dispute can only end undecided).
 */
export async function drawDisputeJury(
  clients: ChainClients,
  params: {
    readonly disputes: Address;
    readonly id: bigint;
    readonly pool?: readonly JuryCandidate[];
    readonly fromBlock?: bigint;
  },
): Promise<{
  deferred: boolean;
  jurors: Address[];
  seed?: Hex;
  commitDeadline?: bigint;
  revealDeadline?: bigint;
  receipt: TransactionReceipt;
}> {
  const pool = params.pool ?? (await getJuryPool(clients.publicClient, params));
  const { walletClient } = clients;
  const receipt = await sendAndConfirm(clients, 'draw', () =>
    walletClient.writeContract({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      functionName: 'draw',
      args: [params.id, pool.map((c) => address(c.address, 'pool address')), pool.map((c) => c.stake)],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
  const [event] = parseEventLogs({ abi: disputesAbi, logs: receipt.logs, eventName: 'JuryDrawn' });
  if (event === undefined) return { deferred: true, jurors: [], receipt };
  return {
    deferred: false,
    jurors: [...event.args.jurors],
    seed: event.args.seed,
    commitDeadline: BigInt(event.args.commitDeadline),
    revealDeadline: BigInt(event.args.revealDeadline),
    receipt,
  };
}

/**
 * A juror's commitment: `keccak256(abi.encode(uint256 id, address juror, bytes32 outputDigest,
 * bytes32 salt))`. Bound to the dispute and the juror, so nobody can reuse another's.
 */
export function voteCommitment(
  id: bigint,
  juror: Address,
  outputDigest: Uint8Array | Hex,
  salt: Uint8Array | Hex,
): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'uint256' }, { type: 'address' }, { type: 'bytes32' }, { type: 'bytes32' }],
      [id, address(juror, 'juror'), digest(outputDigest, 'outputDigest'), digest(salt, 'salt')],
    ),
  );
}

/** A juror's vote: the output digest it computed, and the secret salt that hides it until revealed. */
export interface VoteParams {
  readonly disputes: Address;
  readonly id: bigint;
  readonly outputDigest: Uint8Array | Hex;
  /** 32 random bytes the juror keeps until it reveals. */
  readonly salt: Uint8Array | Hex;
}

/**
 * A drawn juror commits its vote (`DISPUTE_NOT_JUROR`, `DISPUTE_ALREADY_VOTED`,
 * `DISPUTE_VOTING_CLOSED` after the commit deadline).
 */
export async function commitVote(clients: ChainClients, params: VoteParams): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  const commitment = voteCommitment(params.id, walletClient.account.address, params.outputDigest, params.salt);
  return sendAndConfirm(clients, 'commitVote', () =>
    walletClient.writeContract({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      functionName: 'commitVote',
      args: [params.id, commitment],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/**
 * Reveals a committed vote once every juror committed or the commit deadline passed
 * (`DISPUTE_VOTING_OPEN` before; `DISPUTE_COMMITMENT_MISMATCH` for another digest or salt, or
 * without a commitment; `DISPUTE_VOTING_CLOSED` after the reveal deadline).
 */
export async function revealVote(clients: ChainClients, params: VoteParams): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'revealVote', () =>
    walletClient.writeContract({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      functionName: 'revealVote',
      args: [params.id, digest(params.outputDigest, 'outputDigest'), digest(params.salt, 'salt')],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** What {@link resolveDispute} settled (the `Resolved` event). */
export interface DisputeResolution {
  readonly outcome: DisputeOutcome;
  /** The output digest a majority of the jury revealed; zero when undecided. */
  readonly majorityOutput: Hex;
  readonly slashed: bigint;
  readonly challengerPaid: bigint;
  readonly jurorsPaid: bigint;
  readonly burned: bigint;
  /** Jurors slashed for a minority vote or none, with the wei taken. */
  readonly penalized: readonly { readonly juror: Address; readonly amount: bigint }[];
  readonly receipt: TransactionReceipt;
}

/**
 * Settles a dispute once every juror revealed or the reveal deadline passed
 * (`DISPUTE_VOTING_OPEN` before). Anyone may.
 */
export async function resolveDispute(
  clients: ChainClients,
  params: { readonly disputes: Address; readonly id: bigint },
): Promise<DisputeResolution> {
  const { walletClient } = clients;
  const receipt = await sendAndConfirm(clients, 'resolve', () =>
    walletClient.writeContract({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      functionName: 'resolve',
      args: [params.id],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
  const logs = parseEventLogs({ abi: disputesAbi, logs: receipt.logs });
  const resolved = logs.find((l) => l.eventName === 'Resolved');
  if (resolved === undefined || resolved.eventName !== 'Resolved') {
    return fail('INTERNAL', 'resolve: no Resolved event in the receipt');
  }
  const penalized = logs.flatMap((l) =>
    l.eventName === 'JurorPenalized' ? [{ juror: l.args.juror, amount: l.args.amount }] : [],
  );
  const a = resolved.args;
  return {
    outcome: DISPUTE_OUTCOMES[a.outcome] ?? fail('RESPONSE_INVALID', 'unknown dispute outcome', { outcome: a.outcome }),
    majorityOutput: a.majorityOutput,
    slashed: a.slashed,
    challengerPaid: a.challengerPaid,
    jurorsPaid: a.jurorsPaid,
    burned: a.burned,
    penalized,
    receipt,
  };
}

/** Pays the wallet's account what disputes credited it. */
export async function withdrawDisputeCredit(
  clients: ChainClients,
  params: { readonly disputes: Address },
): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'withdraw', () =>
    walletClient.writeContract({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      functionName: 'withdraw',
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** A dispute as stored, with its jury. */
export interface DisputeState {
  readonly id: bigint;
  readonly node: Address;
  readonly challenger: Address;
  readonly phase: DisputePhase;
  readonly outcome: DisputeOutcome;
  readonly drawBlock: bigint;
  /** Unix seconds; 0 before the draw. */
  readonly commitDeadline: bigint;
  /** Unix seconds; 0 before the draw. */
  readonly revealDeadline: bigint;
  readonly bond: bigint;
  readonly leaf: Hex;
  readonly inputDigest: Hex;
  readonly recordOutput: Hex;
  readonly claimedOutput: Hex;
  /** In draw order; `vote` is zero until revealed. */
  readonly jurors: readonly {
    readonly account: Address;
    readonly committed: boolean;
    readonly revealed: boolean;
    readonly vote: Hex;
  }[];
}

/** Reads a dispute (`DISPUTE_NOT_FOUND` if no such id). */
export async function getDispute(
  publicClient: PublicClient,
  params: { readonly disputes: Address; readonly id: bigint } & ReadOptions,
): Promise<DisputeState> {
  const contract = { address: address(params.disputes, 'disputes'), abi: disputesAbi } as const;
  const at = { args: [params.id], blockNumber: params.blockNumber } as const;
  const [d, jurors] = await read('getDispute', () =>
    Promise.all([
      publicClient.readContract({ ...contract, functionName: 'getDispute', ...at }),
      publicClient.readContract({ ...contract, functionName: 'jurorsOf', ...at }),
    ]),
  );
  if (d.phase === 0) fail('DISPUTE_NOT_FOUND', `no dispute ${params.id}`, { id: params.id.toString() });
  return {
    id: params.id,
    node: d.node,
    challenger: d.challenger,
    phase: DISPUTE_PHASES[d.phase] ?? fail('RESPONSE_INVALID', 'unknown dispute phase', { phase: d.phase }),
    outcome: DISPUTE_OUTCOMES[d.outcome] ?? fail('RESPONSE_INVALID', 'unknown dispute outcome', { outcome: d.outcome }),
    drawBlock: BigInt(d.drawBlock),
    commitDeadline: BigInt(d.commitDeadline),
    revealDeadline: BigInt(d.revealDeadline),
    bond: d.bond,
    leaf: d.leaf,
    inputDigest: d.inputDigest,
    recordOutput: d.recordOutput,
    claimedOutput: d.claimedOutput,
    jurors: jurors.map((j) => ({ account: j.account, committed: j.committed, revealed: j.revealed, vote: j.vote })),
  };
}

/** Reads the rules of a `Disputes` contract. */
export async function getDisputeRules(
  publicClient: PublicClient,
  params: { readonly disputes: Address } & ReadOptions,
): Promise<DisputeParams> {
  const c = {
    address: address(params.disputes, 'disputes'),
    abi: disputesAbi,
    blockNumber: params.blockNumber,
  } as const;
  return read('getDisputeRules', async () => {
    const [bond, deposit, slash, challengerBps, jurorBps, window, commit, reveal, jurySize, rate] = await Promise.all([
      publicClient.readContract({ ...c, functionName: 'challengeBond' }),
      publicClient.readContract({ ...c, functionName: 'jurorDeposit' }),
      publicClient.readContract({ ...c, functionName: 'slashAmount' }),
      publicClient.readContract({ ...c, functionName: 'challengerShareBps' }),
      publicClient.readContract({ ...c, functionName: 'jurorShareBps' }),
      publicClient.readContract({ ...c, functionName: 'challengeWindow' }),
      publicClient.readContract({ ...c, functionName: 'commitPeriod' }),
      publicClient.readContract({ ...c, functionName: 'revealPeriod' }),
      publicClient.readContract({ ...c, functionName: 'jurySize' }),
      publicClient.readContract({ ...c, functionName: 'auditRatePpm' }),
    ]);
    return {
      challengeBond: bond,
      jurorDeposit: deposit,
      slashAmount: slash,
      challengerShareBps: challengerBps,
      jurorShareBps: jurorBps,
      challengeWindow: Number(window),
      commitPeriod: Number(commit),
      revealPeriod: Number(reveal),
      jurySize,
      auditRatePpm: rate,
    };
  });
}

/** Wei the account may withdraw from `Disputes`. */
export async function getDisputeCredit(
  publicClient: PublicClient,
  params: { readonly disputes: Address; readonly account: Address } & ReadOptions,
): Promise<bigint> {
  return read('getDisputeCredit', () =>
    publicClient.readContract({
      address: address(params.disputes, 'disputes'),
      abi: disputesAbi,
      functionName: 'claimable',
      args: [address(params.account, 'account')],
      blockNumber: params.blockNumber,
    }),
  );
}
