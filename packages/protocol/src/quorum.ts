/**
 * Quorum selection (DESIGN.md §2.6): which k registered nodes answer a `quorum` request is a
 * rule anyone can recompute from the request id and the registry at a block — rendezvous
 * hashing: each node's score is `SHA-256(utf8(requestId) ‖ 0x00 ‖ address)` (the 20 address
 * bytes), and nodes are taken in ascending score order. A node that is down or refuses is
 * skipped and the next in order takes its place, so the answering set is always a prefix of the
 * ranking minus the skipped nodes. A receiving node cannot pick friendly nodes: the request id
 * fixes the order, and every node in the registry snapshot is ranked.
 *
 * docs/protocol.md §11.
 */
import { concatBytes, fromHex, toHex, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { parseAddress } from './eth.js';
import { sha256 } from './hash.js';

/**
 * Ranks node addresses for a request: the order in which they are asked to answer it.
 *
 * @example
 * ```ts
 * const [first, second, third] = rankQuorum('req-1', registry.map((n) => n.address));
 * ```
 */
export function rankQuorum(requestId: string, addresses: readonly string[]): string[] {
  if (typeof requestId !== 'string' || requestId === '') fail('INVALID_ARGUMENT', 'a request id is required');
  const prefix = concatBytes(utf8(requestId), new Uint8Array([0]));
  const scored = addresses.map((a) => {
    const address = parseAddress(a);
    return { address, score: toHex(sha256(concatBytes(prefix, fromHex(address.slice(2).toLowerCase())))) };
  });
  const seen = new Set<string>();
  for (const s of scored) {
    const key = s.address.toLowerCase();
    if (seen.has(key)) fail('INVALID_ARGUMENT', 'a node is listed twice', { address: s.address });
    seen.add(key);
  }
  return scored.sort((x, y) => (x.score < y.score ? -1 : x.score > y.score ? 1 : 0)).map((s) => s.address);
}
