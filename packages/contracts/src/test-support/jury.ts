/**
 * A jury that votes by hand, for tests about what surrounds a dispute (the evidence a challenge
 * takes, what the SDK reads while it is open) rather than about the juror service of a node
 * (`packages/node/src/disputes/juror.ts`, which the jury test and `verity up` exercise): the draw
 * block mined, the jury drawn, every drawn juror's vote committed with a fresh random salt, then
 * revealed, then the dispute resolved (docs/protocol.md §15.3–15.5).
 *
 * ```ts
 * const { resolution } = await voteByHand(chain, { disputes, id, pool, by: CHALLENGER, candidates: [2, 3, 4, 5], vote: () => truth });
 * ```
 */
import type { JuryCandidate } from '@verity/protocol';
import type { Address, Hex, TransactionReceipt } from 'viem';
import { commitVote, type DisputeResolution, drawDisputeJury, resolveDispute, revealVote } from '../disputes.js';
import type { TestChain } from './chain.js';

/** Parameters of {@link voteByHand}. */
export interface HandJury {
  readonly disputes: Address;
  readonly id: bigint;
  /** The pool the challenge fixed (`challengeRecord` returns it); read from its event if absent. */
  readonly pool?: readonly JuryCandidate[];
  /** Dev account (of `chain`) that draws and resolves: anyone may. */
  readonly by: number;
  /** Dev accounts that may be drawn: the registered nodes of the pool. */
  readonly candidates: readonly number[];
  /** The output digest drawn juror `i` votes (what its re-execution gave). */
  vote(i: number): Promise<Uint8Array | Hex> | Uint8Array | Hex;
  /** Runs once every vote is committed and before any is revealed (to read what others see then). */
  afterCommit?(): Promise<void>;
}

/** What {@link voteByHand} did, each step's receipt with it. */
export interface HandJuryResult {
  /** The drawn jurors as dev account indexes, in draw order. */
  readonly jurors: readonly number[];
  /** What each juror voted, in draw order. */
  readonly votes: readonly (Uint8Array | Hex)[];
  readonly draw: TransactionReceipt;
  readonly commits: readonly TransactionReceipt[];
  readonly reveals: readonly TransactionReceipt[];
  readonly resolution: DisputeResolution;
}

/** Draws, commits, reveals and resolves dispute `id` on `chain` (see the module comment). */
export async function voteByHand(chain: TestChain, params: HandJury): Promise<HandJuryResult> {
  const { disputes, id } = params;
  // The seed is the hash of the block after the challenge: mine it.
  await chain.testClient.mine({ blocks: 1 });
  const drawn = await drawDisputeJury(chain.clients(params.by), {
    disputes,
    id,
    ...(params.pool === undefined ? {} : { pool: params.pool }),
  });
  const jurors = drawn.jurors.map((a) => {
    const i = params.candidates.find((c) => chain.address(c).toLowerCase() === a.toLowerCase());
    if (i === undefined) throw new Error(`juror ${a} is none of the candidate accounts`);
    return i;
  });
  const votes: (Uint8Array | Hex)[] = [];
  const salts: Uint8Array[] = [];
  const commits: TransactionReceipt[] = [];
  for (const j of jurors) {
    const outputDigest = await params.vote(j);
    const salt = crypto.getRandomValues(new Uint8Array(32));
    votes.push(outputDigest);
    salts.push(salt);
    commits.push(await commitVote(chain.clients(j), { disputes, id, outputDigest, salt }));
  }
  await params.afterCommit?.();
  const reveals: TransactionReceipt[] = [];
  for (const [k, j] of jurors.entries()) {
    const vote = { outputDigest: votes[k] as Uint8Array | Hex, salt: salts[k] as Uint8Array };
    reveals.push(await revealVote(chain.clients(j), { disputes, id, ...vote }));
  }
  const resolution = await resolveDispute(chain.clients(params.by), { disputes, id });
  return { jurors, votes, draw: drawn.receipt, commits, reveals, resolution };
}
