/**
 * The audit sample (docs/protocol.md §15.8): which audited records auditors check, as
 * `Disputes.isSampled` computes it on chain and anyone recomputes.
 *
 * The record at leaf index i of a node's log is sampled when
 * `h = SHA-256(utf8("verity/audit/v1") ‖ blockhash(B + 1) ‖ node (20 bytes) ‖ uint64be(i))`,
 * its first 8 bytes read big-endian as x, gives `x · 10⁶ < ratePpm · 2⁶⁴`; B is the block of the
 * node's first anchor that covers the record, and `ratePpm` the `Disputes` rule `auditRatePpm`.
 * The sample at a higher rate contains the sample at a lower one (same h, higher threshold).
 */
import { concatBytes, fromHex, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';

/** Domain separation of the audit sample (`Disputes.AUDIT_SAMPLE_DOMAIN`). */
export const AUDIT_SAMPLE_DOMAIN = 'verity/audit/v1';

const BLOCK_HASH = /^0x[0-9a-f]{64}$/i;
const ADDRESS = /^0x[0-9a-f]{40}$/i;

/**
 * Whether the record at `leafIndex` of `node`'s log is sampled at `ratePpm` (parts per million),
 * given the hash of the block after the node's first anchor covering it.
 *
 * @example
 * ```ts
 * const sampled = auditSampled((await publicClient.getBlock({ blockNumber: anchorBlock + 1n })).hash, node, 42, rules.auditRatePpm);
 * ```
 */
export function auditSampled(blockHash: string, node: string, leafIndex: number, ratePpm: number): boolean {
  if (typeof blockHash !== 'string' || !BLOCK_HASH.test(blockHash)) {
    fail('INVALID_ARGUMENT', 'a block hash is 0x and 64 hex digits');
  }
  if (typeof node !== 'string' || !ADDRESS.test(node)) fail('INVALID_ARGUMENT', 'a node is 0x and 40 hex digits');
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0) fail('INVALID_ARGUMENT', 'a leaf index is a whole number');
  if (!Number.isSafeInteger(ratePpm) || ratePpm < 0 || ratePpm > 1_000_000) {
    fail('INVALID_ARGUMENT', 'a rate is 0 to 1 000 000 parts per million');
  }
  const index = new Uint8Array(8);
  new DataView(index.buffer).setBigUint64(0, BigInt(leafIndex));
  const h = sha256(
    concatBytes(
      utf8(AUDIT_SAMPLE_DOMAIN),
      fromHex(blockHash.slice(2).toLowerCase()),
      fromHex(node.slice(2).toLowerCase()),
      index,
    ),
  );
  const x = new DataView(h.buffer, h.byteOffset, 8).getBigUint64(0);
  return x * 1_000_000n < BigInt(ratePpm) << 64n;
}
