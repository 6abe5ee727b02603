/**
 * The jury of a dispute (docs/protocol.md §15.3): which active nodes re-execute a challenged
 * record and vote, as `Disputes` computes it on chain and anyone recomputes.
 *
 * - **Pool** = the nodes active when the challenge is made (registered, staked ≥ minStake,
 *   stake > 0), minus the accused node and the challenger, in ascending order of their address
 *   bytes, with their stakes. The challenge fixes it (event `JuryPool`) before the seed exists, so
 *   nobody can register, top up or leave after seeing the seed to steer the draw.
 * - **Seed** = SHA-256(utf8("verity/jury/v1") ‖ blockHash(drawBlock) ‖ uint256be(disputeId)),
 *   where drawBlock is the block after the challenge's: unknown to everyone when the challenge is sent.
 * - **Jury** = the first `jurySize` places of the stake-weighted ranking of §11.2 (`rankByStake`).
 */
import { concatBytes, fromHex, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';
import { addressOrder, rankByStake } from './quorum.js';
import { isActiveNode, type RegistrySnapshot } from './registry.js';

/** Domain separation of the jury seed (`Disputes.JURY_SEED_DOMAIN`). */
export const JURY_SEED_DOMAIN = 'verity/jury/v1';

const BLOCK_HASH = /^0x[0-9a-f]{64}$/i;

/** A node the jury may be drawn from, with the stake it had when the challenge was made. */
export interface JuryCandidate {
  readonly address: string;
  readonly stake: bigint;
}

/**
 * The jury seed of dispute `disputeId` drawn at a block with hash `blockHash`.
 *
 * @example
 * ```ts
 * const seed = jurySeed(drawBlock.hash, 1n);
 * ```
 */
export function jurySeed(blockHash: string, disputeId: bigint): Uint8Array {
  if (typeof blockHash !== 'string' || !BLOCK_HASH.test(blockHash)) {
    fail('INVALID_ARGUMENT', 'a block hash is 0x and 64 hex digits');
  }
  if (typeof disputeId !== 'bigint' || disputeId < 1n || disputeId >= 2n ** 256n) {
    fail('INVALID_ARGUMENT', 'a dispute id is a positive 256-bit integer');
  }
  const id = fromHex(disputeId.toString(16).padStart(64, '0'));
  return sha256(concatBytes(utf8(JURY_SEED_DOMAIN), fromHex(blockHash.slice(2).toLowerCase()), id));
}

/**
 * The jury pool of a challenge against `node` by `challenger`, from the registry at the
 * challenge's block.
 *
 * @example
 * ```ts
 * const pool = juryPool(await readRegistrySnapshot(publicClient, { nodeRegistry, blockNumber }), { node, challenger });
 * ```
 */
export function juryPool(
  snapshot: Pick<RegistrySnapshot, 'minStake' | 'nodes'>,
  parties: { readonly node: string; readonly challenger: string },
): JuryCandidate[] {
  const excluded = new Set([parties.node.toLowerCase(), parties.challenger.toLowerCase()]);
  return snapshot.nodes
    .filter(
      (n) => isActiveNode(snapshot as RegistrySnapshot, n) && n.stake > 0n && !excluded.has(n.address.toLowerCase()),
    )
    .map((n) => ({ address: n.address, stake: n.stake }))
    .sort(addressOrder);
}

/**
 * The jury for a seed: the first `jurySize` places of the stake-weighted ranking of `pool` (in
 * the order given: the pool's address order), fewer if the pool is smaller.
 *
 * @example
 * ```ts
 * const jury = drawJury(pool, jurySeed(hashOfDrawBlock, id), 3);
 * ```
 */
export function drawJury(pool: readonly JuryCandidate[], seed: Uint8Array, jurySize: number): JuryCandidate[] {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) fail('INVALID_ARGUMENT', 'a jury seed is 32 bytes');
  if (!Number.isSafeInteger(jurySize) || jurySize < 1)
    fail('INVALID_ARGUMENT', 'jurySize must be a positive whole number');
  for (let i = 1; i < pool.length; i++) {
    if (addressOrder(pool[i - 1] as JuryCandidate, pool[i] as JuryCandidate) >= 0) {
      fail('INVALID_ARGUMENT', 'a jury pool is in strictly ascending address order');
    }
  }
  return rankByStake(pool, seed, jurySize);
}
