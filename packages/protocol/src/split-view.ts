/**
 * Split-view detection (docs/protocol.md "Witnesses"): a log shows one history to some and
 * another to others. Two checkpoints signed by one log key are evidence of a split view when
 * they have the same size and different roots (no proof needed: an append-only log has one tree
 * head per size), or when the log's own consistency proof between them does not verify.
 *
 * `verity monitor` gathers checkpoints (the node's own, the ones witnesses cosigned, the anchors
 * on chain) and keeps, per log, the largest it verified; each new one goes through
 * {@link compareHeads} against it.
 */
import { equalBytes, toBase64 } from './bytes.js';
import type { Checkpoint } from './checkpoint.js';
import { isVerityError } from './errors.js';
import { verifyConsistency } from './merkle.js';

/** A verified tree head and where it was seen. */
export interface ObservedHead {
  readonly checkpoint: Checkpoint;
  /** The signed note (or, for an anchor, a description of the on-chain statement). */
  readonly note: string;
  /** Where it was seen: `node <url>`, `witness <url>`, `anchor <contract>`… */
  readonly source: string;
}

/** Two signed heads that cannot both be the log's: the evidence of a split view. */
export interface SplitViewEvidence {
  readonly code: 'SPLIT_VIEW';
  readonly origin: string;
  /** `same-size`: one size, two roots; `inconsistent`: the log's consistency proof fails. */
  readonly reason: 'same-size' | 'inconsistent';
  readonly first: { readonly size: number; readonly rootHash: string; readonly note: string; readonly source: string };
  readonly second: { readonly size: number; readonly rootHash: string; readonly note: string; readonly source: string };
  /** The consistency proof (base64 hashes) that failed, for `inconsistent`. */
  readonly proof?: readonly string[];
}

const side = (h: ObservedHead) => ({
  size: h.checkpoint.size,
  rootHash: toBase64(h.checkpoint.rootHash),
  note: h.note,
  source: h.source,
});

/**
 * Compares two heads of one log, ordered by size. Same size: evidence when the roots differ.
 * Different sizes: `proof` is the log's consistency proof from the smaller to the larger;
 * evidence when it does not verify. `undefined` when the two heads agree.
 *
 * @example
 * ```ts
 * const evidence = compareHeads(seen, fresh, proofFromLog);
 * if (evidence) console.log(JSON.stringify(evidence));
 * ```
 */
export function compareHeads(
  a: ObservedHead,
  b: ObservedHead,
  proof: readonly Uint8Array[] = [],
): SplitViewEvidence | undefined {
  const [first, second] = a.checkpoint.size <= b.checkpoint.size ? [a, b] : [b, a];
  const origin = first.checkpoint.origin;
  if (first.checkpoint.size === second.checkpoint.size) {
    if (equalBytes(first.checkpoint.rootHash, second.checkpoint.rootHash)) return undefined;
    return { code: 'SPLIT_VIEW', origin, reason: 'same-size', first: side(first), second: side(second) };
  }
  try {
    verifyConsistency(
      first.checkpoint.size,
      second.checkpoint.size,
      proof,
      first.checkpoint.rootHash,
      second.checkpoint.rootHash,
    );
    return undefined;
  } catch (e) {
    if (!isVerityError(e)) throw e;
    return {
      code: 'SPLIT_VIEW',
      origin,
      reason: 'inconsistent',
      first: side(first),
      second: side(second),
      proof: proof.map(toBase64),
    };
  }
}
