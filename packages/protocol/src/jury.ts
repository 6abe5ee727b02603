/**
 * The jury of a dispute (docs/protocol.md §14.3): which active nodes re-execute a challenged
 * record and vote, as `Disputes.draw` computes it on chain and anyone recomputes from the
 * registry at the draw's block.
 *
 * - **Seed** = SHA-256(utf8("verity/jury/v1") ‖ blockHash(drawBlock) ‖ uint256be(disputeId)),
 *   where drawBlock is the block after the challenge's: neither the challenger nor the node knows
 *   its hash when the challenge is sent.
 * - **Candidates** = the nodes active when `draw` runs (registered, staked ≥ minStake, stake > 0),
 *   minus the accused node and the challenger, in ascending order of their address bytes.
 * - **Jury** = the first `jurySize` places of the stake-weighted ranking of §11.2 (`rankByStake`).
 */
import { concatBytes, fromHex, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';
import { addressOrder, rankByStake } from './quorum.js';
import { isActiveNode, type RegistryNode, type RegistrySnapshot } from './registry.js';

/** Domain separation of the jury seed (`Disputes.JURY_SEED_DOMAIN`). */
export const JURY_SEED_DOMAIN = 'verity/jury/v1';

const BLOCK_HASH = /^0x[0-9a-f]{64}$/i;

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

/** Who may not sit on a dispute's jury, and how many seats it has. */
export interface JuryOptions {
  /** The accused node (the record's `node`). */
  readonly node: string;
  /** The account that challenged. */
  readonly challenger: string;
  /** `Disputes.jurySize`. */
  readonly jurySize: number;
}

/**
 * The jury for a seed, from the registry as it stood when `draw` ran: at most `jurySize` nodes,
 * in draw order.
 *
 * @example
 * ```ts
 * const snapshot = await readRegistrySnapshot(publicClient, { nodeRegistry, blockNumber: drawnAt });
 * const jury = drawJury(snapshot, jurySeed(hashOfDrawBlock, id), { node, challenger, jurySize: 3 });
 * ```
 */
export function drawJury(
  snapshot: Pick<RegistrySnapshot, 'minStake' | 'nodes'>,
  seed: Uint8Array,
  options: JuryOptions,
): RegistryNode[] {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) fail('INVALID_ARGUMENT', 'a jury seed is 32 bytes');
  if (!Number.isSafeInteger(options.jurySize) || options.jurySize < 1) {
    fail('INVALID_ARGUMENT', 'jurySize must be a positive whole number');
  }
  const excluded = new Set([options.node.toLowerCase(), options.challenger.toLowerCase()]);
  const pool = snapshot.nodes
    .filter(
      (n) => isActiveNode(snapshot as RegistrySnapshot, n) && n.stake > 0n && !excluded.has(n.address.toLowerCase()),
    )
    .sort(addressOrder);
  return rankByStake(pool, seed, options.jurySize);
}
