/**
 * Quorum selection (docs/design.md §2.6, docs/protocol.md §11): which registered nodes answer a
 * `quorum` request, as a rule anyone recomputes from the registry at a block B.
 *
 * - **Seed** = SHA-256(utf8("verity/quorum/v1") ‖ blockHash(B) ‖ nonce), where the nonce is the
 *   caller's `clientNonce` (16 to 64 bytes it picks at random). The coordinator chooses nothing
 *   that enters the seed: not the request id, not the block (the caller names it), not the nonce.
 * - **Candidates** = the nodes active at B (registered, staked ≥ minStake, stake > 0) that announce
 *   the capability `mode:quorum`, in ascending order of their address bytes.
 * - **Ranking** = stake-weighted sampling without replacement: draw i takes
 *   `x = uint256(SHA-256(seed ‖ uint32be(i))) mod T` (T = the stake still in the pool) and picks the
 *   first candidate, in address order, whose running stake sum exceeds x; it leaves the pool.
 *   Integer (bigint) arithmetic only, so every platform ranks alike.
 *
 * A node's chance of the first seat is its stake over the pool's, so splitting one stake over many
 * accounts buys nothing: colluders holding a fraction f of the stake take all k seats with
 * probability at most f^k, however they split it (§11).
 */
import { concatBytes, fromHex, toHex, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';
import { isActiveNode, type RegistryNode, type RegistrySnapshot } from './registry.js';

/** Domain separation of the seed. */
export const QUORUM_SEED_DOMAIN = 'verity/quorum/v1';

/**
 * The `mode:quorum` bit of `NodeRegistry` capabilities (bit 1; `@verity/contracts`
 * `CAPABILITY_BITS['mode:quorum']`, checked equal by a test there).
 */
export const QUORUM_CAPABILITY = 1n << 1n;

/**
 * How many ranked nodes beyond k a coordinator may pass over (down, refusing, dissenting): the
 * asked list is at most `k + QUORUM_MAX_SKIPS` long. It bounds how far down the ranking a
 * dishonest coordinator can reach for friendly nodes by calling honest ones unreachable.
 */
export const QUORUM_MAX_SKIPS = 4;

/** The largest quorum (as the node's API allows). */
export const QUORUM_MAX_K = 16;

/** A quorum nonce: 16 to 64 bytes, lower-case hex. */
export const QUORUM_NONCE = /^(?:[0-9a-f]{2}){16,64}$/;

const BLOCK_HASH = /^0x[0-9a-f]{64}$/i;

/**
 * The selection seed for a block hash and a caller's nonce.
 *
 * @example
 * ```ts
 * const seed = quorumSeed(snapshot.block.hash, clientNonce);
 * ```
 */
export function quorumSeed(blockHash: string, nonce: string): Uint8Array {
  if (typeof blockHash !== 'string' || !BLOCK_HASH.test(blockHash)) {
    fail('INVALID_ARGUMENT', 'a block hash is 0x and 64 hex digits');
  }
  if (typeof nonce !== 'string' || !QUORUM_NONCE.test(nonce)) {
    fail('INVALID_ARGUMENT', 'a quorum nonce is 16 to 64 bytes of lower-case hex');
  }
  return sha256(concatBytes(utf8(QUORUM_SEED_DOMAIN), fromHex(blockHash.slice(2).toLowerCase()), fromHex(nonce)));
}

/** Ascending order of the 20 address bytes (as lower-case hex), the order every stake draw walks. */
export const addressOrder = (a: { readonly address: string }, b: { readonly address: string }): number => {
  const x = a.address.toLowerCase();
  const y = b.address.toLowerCase();
  return x < y ? -1 : x > y ? 1 : 0;
};

/**
 * The nodes a quorum at the snapshot's block is drawn from: active, staked above zero, with
 * {@link QUORUM_CAPABILITY}; in ascending address order.
 *
 * @example
 * ```ts
 * const pool = quorumCandidates(snapshot).length;
 * ```
 */
export function quorumCandidates(snapshot: Pick<RegistrySnapshot, 'minStake' | 'nodes'>): RegistryNode[] {
  const seen = new Set<string>();
  const out: RegistryNode[] = [];
  for (const n of snapshot.nodes) {
    const key = n.address.toLowerCase();
    if (seen.has(key))
      fail('INVALID_ARGUMENT', 'a node is listed twice in the registry snapshot', { address: n.address });
    seen.add(key);
    if (isActiveNode(snapshot as RegistrySnapshot, n) && n.stake > 0n && (n.capabilities & QUORUM_CAPABILITY) !== 0n) {
      out.push(n);
    }
  }
  return out.sort(addressOrder);
}

/**
 * Ranks the quorum candidates for a seed: the order in which they are asked. With `depth`, only
 * the first `depth` places are drawn.
 *
 * @example
 * ```ts
 * const seed = quorumSeed(snapshot.block.hash, nonce);
 * const [first, second, third] = rankQuorum(snapshot, seed);
 * ```
 */
export function rankQuorum(
  snapshot: Pick<RegistrySnapshot, 'minStake' | 'nodes'>,
  seed: Uint8Array,
  depth = Number.POSITIVE_INFINITY,
): RegistryNode[] {
  if (!(seed instanceof Uint8Array) || seed.length !== 32) fail('INVALID_ARGUMENT', 'a quorum seed is 32 bytes');
  return rankByStake(quorumCandidates(snapshot), seed, depth);
}

/**
 * Stake-weighted sampling without replacement (docs/protocol.md §11.2) of `pool`, taken in the
 * order given (callers pass ascending address order): the first `depth` places for a 32-byte seed.
 * Quorums (§11) and dispute juries (§15.3) both draw with it.
 *
 * @example
 * ```ts
 * const [first] = rankByStake(quorumCandidates(snapshot), seed, 1);
 * ```
 */
export function rankByStake<T extends { readonly stake: bigint }>(
  candidates: readonly T[],
  seed: Uint8Array,
  depth = Number.POSITIVE_INFINITY,
): T[] {
  const pool = [...candidates];
  let total = pool.reduce((s, n) => s + n.stake, 0n);
  const ranking: T[] = [];
  const counter = new Uint8Array(4);
  const view = new DataView(counter.buffer);
  for (let i = 0; pool.length > 0 && i < depth; i++) {
    view.setUint32(0, i, false);
    const x = BigInt(`0x${toHex(sha256(concatBytes(seed, counter)))}`) % total;
    let sum = 0n;
    let j = 0;
    for (; j < pool.length; j++) {
      sum += (pool[j] as T).stake;
      if (sum > x) break;
    }
    const [picked] = pool.splice(j, 1) as [T];
    total -= picked.stake;
    ranking.push(picked);
  }
  return ranking;
}
