/**
 * Verification as a list of checks (docs/protocol.md §9.2), for a verifier that shows every check
 * rather than the first failure: the explorer's Verify page draws one row per check, green, red
 * with its code, or grey when it could not run (a check that needs a trusted checkpoint when the
 * node is not trusted) or does not apply (no anchor known, no input carried).
 *
 * The verdict is {@link verifyBundle}'s, computed alongside: the checks explain it and never
 * change it. The first failing check, in order, carries the verdict's code.
 */
import type { Checkpoint } from './checkpoint.js';
import { type ErrorCode, isVerityError, VerityError } from './errors.js';
import { type Bundle, parseBundle, type Receipt } from './receipt.js';
import {
  checkAgreement,
  checkAnchors,
  checkBundledInput,
  checkBundledOutput,
  checkBundledParams,
  checkExpectedDigests,
  checkLeafIndex,
  checkNoDowngrade,
  checkQuorum,
  checkReceiptInclusion,
  checkReceiptPayment,
  checkStillBacked,
  checkWitnesses,
  type KeySet,
  nodeKeys,
  receiptCheckpoint,
  type Trust,
  trustedKey,
  type VerifiedReceipt,
  type VerifyOptions,
  type VerifyResult,
  verifyBundle,
} from './verify.js';

/** Which check a row reports (docs/protocol.md §9.2 step in brackets). */
export type CheckId =
  | 'bundle' // 0: the bundle parses
  | 'trust' // 0: the trusted key set builds
  | 'node' // 1: the record's node is trusted (the registry entry at the block, or a pinned key)
  | 'checkpoint' // 2: its log key signed the checkpoint
  | 'leaf-index' // 3
  | 'inclusion' // 4: the record is in the log under the checkpoint's root
  | 'expected-digests' // 5: the digests the caller gave
  | 'witnesses' // 5a: the witness policy
  | 'payment' // 5b: a paid record's payment matches the authorization carried
  | 'receipts-agree' // 6, 6a: one computation, distinct nodes and logs
  | 'zk-evidence' // 6b: a zk record carries its proof
  | 'input' // 7: the bundled input's digest
  | 'output' // 8: the bundled output's digest
  | 'params' // 8, kind llm: the sampling settings
  | 'quorum' // 8a
  | 'still-backed' // 8b: the node has stake at risk now
  | 'anchors'; // 9: the checkpoint agrees with, and is linked to, an anchor on chain

/** One check: `pass`, `fail` (with its code), or `skip` (could not run, or nothing to check). */
export interface CheckRow {
  readonly check: CheckId;
  /** The receipt's index, for the per-receipt checks (1–5a). */
  readonly receipt?: number;
  readonly status: 'pass' | 'fail' | 'skip';
  readonly code?: ErrorCode;
  /** What was checked and found, in a sentence. */
  readonly message: string;
}

/** Every check of a bundle, and the verdict of {@link verifyBundle}. */
export interface BundleChecks {
  readonly result: VerifyResult;
  readonly checks: readonly CheckRow[];
}

function attempt(rows: CheckRow[], check: CheckId, pass: string, run: () => unknown, receipt?: number): boolean {
  const at = receipt === undefined ? {} : { receipt };
  try {
    const said = run();
    rows.push({ check, ...at, status: 'pass', message: typeof said === 'string' ? said : pass });
    return true;
  } catch (e) {
    const error = isVerityError(e) ? e : new VerityError('INVALID_ARGUMENT', 'the check failed unexpectedly');
    rows.push({ check, ...at, status: 'fail', code: error.code, message: error.message });
    return false;
  }
}

const skip = (rows: CheckRow[], check: CheckId, message: string, receipt?: number): void => {
  rows.push({ check, ...(receipt === undefined ? {} : { receipt }), status: 'skip', message });
};

/**
 * Runs every check of docs/protocol.md §9.2 on a bundle that can run, and returns them with the
 * verdict of {@link verifyBundle} (same trust, same options). A check whose prerequisite failed
 * (the checkpoint of an untrusted node) is `skip`; the content checks (input, output, params)
 * run whatever the receipts' fate, so a tampered output shows red next to a green signature.
 * Pure and browser-safe, as the rest of the package; never throws.
 *
 * @example
 * ```ts
 * const { result, checks } = verifyBundleChecks(bundle, trust);
 * for (const c of checks) console.log(c.check, c.status, c.code ?? '');
 * ```
 */
export function verifyBundleChecks(bundle: unknown, trust: Trust, options: VerifyOptions = {}): BundleChecks {
  const result = verifyBundle(bundle, trust, options);
  const rows: CheckRow[] = [];
  let parsed: Bundle | undefined;
  attempt(rows, 'bundle', 'the bundle parses', () => {
    parsed = parseBundle(bundle);
    return `${parsed.receipts.length} receipt${parsed.receipts.length === 1 ? '' : 's'}, record kind ${parsed.receipts[0]?.record.kind}, mode ${parsed.receipts[0]?.record.mode}`;
  });
  if (parsed === undefined) return { result, checks: rows };
  const b: Bundle = parsed;
  let set: KeySet | undefined;
  attempt(rows, 'trust', 'the trusted keys parse', () => {
    set = nodeKeys(trust, b);
    const n = set.keys.size;
    return `${n} trusted node key${n === 1 ? '' : 's'}${trust.registry ? ` (registry at block ${trust.registry.block.number})` : ' (pinned)'}`;
  });
  const verified: (VerifiedReceipt | undefined)[] = [];
  b.receipts.forEach((receipt, i) => {
    verified.push(set === undefined ? undefined : receiptChecks(rows, receipt, i, set, trust, options));
  });
  const first = (b.receipts[0] as Receipt).record;
  const all = verified.every((v) => v !== undefined) ? (verified as VerifiedReceipt[]) : undefined;
  const needs = 'needs every receipt verified';
  if (all && set) {
    const keys = set;
    attempt(rows, 'receipts-agree', 'one computation, from distinct nodes with distinct logs', () => {
      checkAgreement(all, keys);
      if (all.length === 1) return 'one receipt';
    });
  } else skip(rows, 'receipts-agree', needs);
  if (first.kind === 'zk' || first.mode === 'zk' || b.zk !== undefined) {
    attempt(rows, 'zk-evidence', 'the zk evidence is carried (the proof is checked separately)', () =>
      checkNoDowngrade(b, b.receipts),
    );
  }
  contentCheck(rows, 'input', b.input, () => checkBundledInput(b, first), first.inputDigest);
  contentCheck(rows, 'output', b.output, () => checkBundledOutput(b, first), first.outputDigest);
  if (first.kind === 'llm' && b.input !== undefined) {
    attempt(rows, 'params', `the sampling settings digest to ${first.paramsDigest.slice(0, 16)}…`, () =>
      checkBundledParams(b, first),
    );
  }
  if (b.quorum !== undefined || b.receipts.some((r) => r.record.mode === 'quorum')) {
    if (all && set) {
      const keys = set;
      attempt(rows, 'quorum', 'the quorum selection and dissent check out', () => {
        const q = checkQuorum(b, all, keys, trust, options);
        if (q === undefined) return 'no selection to check (no registry)';
        return `k = ${b.quorum?.k}, selection ${q.selection}, ${q.dissent.length} dissenting`;
      });
    } else skip(rows, 'quorum', needs);
  }
  if (trust.current !== undefined && trust.registry !== undefined) {
    if (all) {
      attempt(rows, 'still-backed', `stake still at risk at block ${trust.current.block.number}`, () =>
        checkStillBacked(all, trust),
      );
    } else skip(rows, 'still-backed', needs);
  }
  if (all) {
    const anchors = trust.anchors ?? [];
    attempt(rows, 'anchors', '', () => {
      const links = checkAnchors(b.consistency, all, trust, options);
      if (anchors.length === 0) return 'no anchor known: not compared with the chain';
      const linked = links.filter(Boolean).length;
      return `${linked} of ${links.length} checkpoint${links.length === 1 ? '' : 's'} linked to an anchor on chain; none contradicts one`;
    });
  } else skip(rows, 'anchors', 'needs every receipt verified');
  return { result, checks: rows };
}

function contentCheck(rows: CheckRow[], check: 'input' | 'output', content: unknown, run: () => void, digest: string) {
  if (content === undefined) {
    skip(rows, check, `not carried: only the digest the node recorded (${digest.slice(0, 16)}…) is known`);
    return;
  }
  attempt(rows, check, `the bundled ${check} digests to the record's ${digest.slice(0, 16)}…`, run);
}

/** Steps 1–5a of one receipt; the verified receipt when they all pass. */
function receiptChecks(
  rows: CheckRow[],
  receipt: Receipt,
  i: number,
  set: KeySet,
  trust: Trust,
  options: VerifyOptions,
): VerifiedReceipt | undefined {
  const { record } = receipt;
  let key: ReturnType<typeof trustedKey> | undefined;
  attempt(
    rows,
    'node',
    '',
    () => {
      key = trustedKey(record, set);
      return `${record.node} is trusted${trust.registry ? ` (registered and staked at block ${trust.registry.block.number})` : ''}`;
    },
    i,
  );
  let checkpoint: Checkpoint | undefined;
  if (key) {
    const k = key;
    attempt(
      rows,
      'checkpoint',
      '',
      () => {
        checkpoint = receiptCheckpoint(receipt, k, set, options.cache);
        return `signed by ${k.verifier.name}: size ${checkpoint.size}`;
      },
      i,
    );
  } else skip(rows, 'checkpoint', 'needs a trusted node key', i);
  let ok = false;
  if (checkpoint) {
    const c = checkpoint;
    if (
      attempt(rows, 'leaf-index', `leaf ${receipt.leafIndex} < size ${c.size}`, () => checkLeafIndex(receipt, c), i)
    ) {
      const hashes = receipt.inclusionProof.length;
      const pass = `leaf ${receipt.leafIndex} leads to the checkpoint's root (${hashes} hashes)`;
      ok = attempt(rows, 'inclusion', pass, () => checkReceiptInclusion(receipt, c), i);
    } else skip(rows, 'inclusion', 'needs the leaf index in range', i);
  } else {
    skip(rows, 'leaf-index', 'needs a verified checkpoint', i);
    skip(rows, 'inclusion', 'needs a verified checkpoint', i);
  }
  if (options.inputDigest !== undefined || options.outputDigest !== undefined) {
    ok =
      attempt(
        rows,
        'expected-digests',
        'the digests given match the record',
        () => checkExpectedDigests(record, options),
        i,
      ) && ok;
  }
  if (record.payment !== undefined || receipt.payment !== undefined) {
    const pass = record.payment
      ? `paid ${record.payment.amount} (atomic units) by ${receipt.payment?.authorization.from ?? '?'}: the authorization matches the record`
      : '';
    ok = attempt(rows, 'payment', pass, () => checkReceiptPayment(receipt, options), i) && ok;
  }
  if (!ok || checkpoint === undefined) {
    if (trust.witnesses !== undefined) skip(rows, 'witnesses', 'needs a verified checkpoint', i);
    return undefined;
  }
  const v: VerifiedReceipt = { record, checkpoint, leafIndex: receipt.leafIndex };
  if (trust.witnesses === undefined) return v;
  let out: VerifiedReceipt | undefined;
  attempt(
    rows,
    'witnesses',
    '',
    () => {
      out = checkWitnesses(receipt, v, trust, options.cache);
      return `${out.cosignatures?.length ?? 0} witness cosignatures (threshold ${trust.witnesses?.threshold})`;
    },
    i,
  );
  return out;
}
