/**
 * Offline verification of receipts and bundles (docs/protocol.md §9).
 *
 * `verifyBundle(bundle, trust)` is a pure function: it never fetches anything. The trust material
 * (which nodes, with which log keys, and which anchored tree heads) is gathered beforehand — by
 * the SDK from the chain, or given by the user — and passed in.
 */

import { equalBytes, fromHex, toHex } from './bytes.js';
import { type Checkpoint, openCheckpoint } from './checkpoint.js';
import { type VerifiedCosignature, verifyWitnessPolicy, type WitnessPolicy } from './cosignature.js';
import { type AsyncSignatureCheck, createPlatformEd25519Check, type Ed25519Platform } from './ed25519-platform.js';
import { type ErrorCode, fail, isVerityError, VerityError } from './errors.js';
import { parseAddress } from './eth.js';
import {
  type LlmParams,
  llmInputDigest,
  llmOutputDigest,
  llmParamsDigest,
  parseLlmInput,
  parseLlmOutput,
} from './llm.js';
import { verifyConsistency, verifyInclusion } from './merkle.js';
import { type NoteVerifier, parseVerifierKey, verifierPublicKey } from './note.js';
import { checkRecordPayment, type PaymentPolicy, quorumCharges } from './payment.js';
import { QUORUM_MAX_SKIPS, quorumSeed, rankQuorum } from './quorum.js';
import {
  type Bundle,
  type ConsistencyEvidence,
  parseBundle,
  parseReceipt,
  proofFromHex,
  type QuorumEvidence,
  type Receipt,
} from './receipt.js';
import { type InferenceRecord, recordLeafHash } from './record.js';
import type { RegistrySnapshot } from './registry.js';
import { tensorsDigest } from './tensor-encoding.js';
import { tensorsFromJson } from './tensor-json.js';

/** A node the verifier trusts to vouch for its records: its account and its log key. */
export interface TrustedNode {
  /** Ethereum account (the records' `node`). */
  readonly address: string;
  /** C2SP Ed25519 verifier key of the node's log; its key name is the log's origin. */
  readonly logKey: string;
  /**
   * A ready verifier for `logKey` (e.g. a native one, much faster than the portable default);
   * its name and key ID must be those of `logKey`.
   */
  readonly verifier?: NoteVerifier;
}

/** A tree head the verifier knows to be anchored (e.g. read from `LogAnchor` on chain). */
export interface TrustedAnchor {
  readonly node: string;
  readonly size: number;
  /** Root hash, 32 bytes or 64 hex characters. */
  readonly rootHash: Uint8Array | string;
}

/** Trust material: everything verification relies on, supplied by the caller. */
export interface Trust {
  /** Keys the user pins by hand (address and log key); trusted whatever the registry says. */
  readonly nodes: readonly TrustedNode[];
  /**
   * The chain registry at a block (the root of trust, docs/design.md §2.6a): a record's node must be
   * registered, active and staked there, and `quorum` selections are recomputed from it.
   */
  readonly registry?: RegistrySnapshot;
  /**
   * The registry now (a later block than `registry`'s, e.g. the head): a node that vouched at the
   * earlier block must still have stake at risk here (registered or unbonding, stake above zero),
   * else `RECEIPT_NODE_EXITED`. Without it a node that left (stake withdrawn) could still sign
   * answers and name a block from when it was staked. Keys pinned in `nodes` are not checked.
   */
  readonly current?: RegistrySnapshot;
  readonly anchors?: readonly TrustedAnchor[];
  /**
   * INSECURE: also trust the node entries carried in the bundle itself, i.e. keys the bundle's
   * author chose. Anyone can mint such a bundle with self-made keys; only for a bundle from a
   * source you already trust. The default is false.
   */
  readonly insecureAcceptBundleNodes?: boolean;
  /**
   * Witnesses whose cosignatures a receipt's checkpoint must carry (C2SP tlog-cosignature lines on
   * the checkpoint note, docs/protocol.md "Witnesses"): at least `threshold` of the named keys,
   * each cosignature verified, else `WITNESS_QUORUM_UNMET` (or `COSIGNATURE_INVALID` for a forged
   * line under a named witness). Without it, cosignatures are carried but not required.
   */
  readonly witnesses?: WitnessPolicy;
}

/** Options for one verification. */
export interface VerifyOptions {
  /** Reuses verified checkpoints across calls: verifying many receipts under one checkpoint costs one signature check. */
  readonly cache?: VerifyCache;
  /** The digest of the input the caller sent (hex): the record must match it. */
  readonly inputDigest?: string;
  /** The digest of the output the caller received (hex): the record must match it. */
  readonly outputDigest?: string;
  /**
   * Require every receipt's checkpoint to be linked to a trusted anchor: an anchor of the same
   * size and root, or (in a bundle) a consistency proof to an anchor of another size.
   */
  readonly requireAnchor?: boolean;
  /** The chain and token a paid record's payment must be on (docs/protocol.md §17); any when absent. */
  readonly payment?: PaymentPolicy;
}

/**
 * Memo of verified checkpoints, keyed by log key and the whole note text (its signature lines
 * included: a note whose signature differs by one bit is another entry, never a cached verdict).
 */
export interface VerifyCache {
  readonly checkpoints: Map<string, Checkpoint>;
  readonly maxEntries: number;
  /** The platform's Ed25519 checks by log key, for {@link primeVerifyCache}. */
  readonly platformChecks?: Map<string, Promise<AsyncSignatureCheck | undefined>>;
  /** Cosignatures verified under a witness policy, keyed by the policy and the note text. */
  readonly cosignatures?: Map<string, readonly VerifiedCosignature[]>;
  /** The platform's Ed25519 that {@link primeVerifyCache} uses (default: WebCrypto). */
  readonly ed25519?: Ed25519Platform;
  /**
   * Checkpoint checks {@link primeVerifyCache} has under way, by cache key: receipts of one
   * batch arriving together share one signed checkpoint, checked once.
   */
  readonly priming?: Map<string, Promise<boolean>>;
}

/** Options of {@link createVerifyCache}. */
export interface VerifyCacheOptions {
  /**
   * The platform's Ed25519 for {@link primeVerifyCache} (default: WebCrypto's): e.g. Node's
   * synchronous `node:crypto` (`@verity/node/fast-crypto`), which costs less per check.
   */
  readonly ed25519?: Ed25519Platform;
}

/**
 * Creates a {@link VerifyCache} of at most `maxEntries` checkpoints (the oldest go first).
 *
 * @example
 * ```ts
 * const cache = createVerifyCache();
 * for (const r of receipts) verifyReceipt(r, trust, { cache });
 * ```
 */
export function createVerifyCache(maxEntries = 1024, options: VerifyCacheOptions = {}): VerifyCache {
  return {
    checkpoints: new Map(),
    maxEntries,
    platformChecks: new Map(),
    cosignatures: new Map(),
    priming: new Map(),
    ...(options.ed25519 === undefined ? {} : { ed25519: options.ed25519 }),
  };
}

/** What a successful verification established about one receipt. */
export interface VerifiedReceipt {
  readonly record: InferenceRecord;
  readonly checkpoint: Checkpoint;
  readonly leafIndex: number;
  /** Under `Trust.witnesses`: the named witnesses' cosignatures on the checkpoint, verified. */
  readonly cosignatures?: readonly VerifiedCosignature[];
}

/**
 * Whether the input and the output themselves were checked against the records' digests: `true`
 * when the bundle carried it (its digest recomputed) or the caller gave its digest
 * (`inputDigest` / `outputDigest`). `false`: only the digest the node vouched for is verified;
 * what it is a digest of was not seen.
 */
export interface VerifiedContent {
  readonly input: boolean;
  readonly output: boolean;
}

/** The result of verification: success, or a typed error with a stable code. */
export type VerifyResult =
  | {
      readonly ok: true;
      readonly receipts: readonly VerifiedReceipt[];
      readonly checked: VerifiedContent;
      /**
       * Mode `quorum`: the genuine receipts of nodes that answered another output (evidence
       * against them; the bundle stays valid when k others agree), and whether the selection was
       * recomputed from `Trust.registry` (`checked`) or could not be (`unchecked`: no registry).
       */
      readonly quorum?: { readonly selection: 'checked' | 'unchecked'; readonly dissent: readonly VerifiedReceipt[] };
    }
  | { readonly ok: false; readonly code: ErrorCode; readonly error: VerityError; readonly receipt?: number };

const addressKey = (address: string): string => parseAddress(address).toLowerCase();

/** @internal A trusted node's key, parsed. */
export interface NodeKey {
  readonly logKey: string;
  readonly verifier: NoteVerifier;
}

/**
 * The keys a verification trusts, by lower-cased address, and (under `Trust.registry`) why an
 * entry of the snapshot may not vouch: every receipt's node is looked up here.
 */
export interface KeySet {
  readonly keys: Map<string, NodeKey>;
  readonly refused: Map<string, 'RECEIPT_NODE_INACTIVE' | 'RECEIPT_NODE_UNSTAKED' | 'RECEIPT_NODE_KEY_INVALID'>;
  readonly registry: boolean;
}

function parseKey(n: TrustedNode): NodeKey {
  try {
    const parsed = parseVerifierKey(n.logKey);
    const given = n.verifier;
    if (given !== undefined && (given.name !== parsed.name || given.keyId !== parsed.keyId)) {
      fail('NOTE_KEY_INVALID', 'the verifier given is not for this log key');
    }
    addressKey(n.address);
    return { logKey: n.logKey, verifier: given ?? parsed };
  } catch (cause) {
    throw new VerityError('NOTE_KEY_INVALID', `invalid trusted node entry for ${String(n.address)}`, { cause });
  }
}

/**
 * Parsed keys, keyed by the exact trusted entries (address and log key, in order): a verifier
 * that verifies many receipts under the same trust parses its keys once, and a changed trust
 * list is a different key, so nothing stale is ever trusted.
 */
const keyMaps = new Map<string, Map<string, NodeKey>>();
const KEY_MAPS_SIZE = 64;

function listKeys(entries: readonly TrustedNode[]): Map<string, NodeKey> {
  // Maps built from keys alone are cached; ones with caller-supplied verifiers are not.
  const custom = entries.some((n) => n.verifier !== undefined);
  const id = entries.map((n) => `${n.address}\u0000${n.logKey}`).join('\n');
  const cached = custom ? undefined : keyMaps.get(id);
  if (cached) return cached;
  const map = new Map<string, NodeKey>();
  for (const n of entries) map.set(addressKey(n.address), parseKey(n));
  if (custom) return map;
  if (keyMaps.size >= KEY_MAPS_SIZE) keyMaps.delete(keyMaps.keys().next().value as string);
  keyMaps.set(id, map);
  return map;
}

const cacheId = (key: NodeKey, note: string): string => `${key.logKey}\n${note}`;

function remember(cache: VerifyCache, id: string, checkpoint: Checkpoint): void {
  if (cache.checkpoints.size >= cache.maxEntries)
    cache.checkpoints.delete(cache.checkpoints.keys().next().value as string);
  cache.checkpoints.set(id, checkpoint);
}

/** The keys of a registry snapshot's active entries, parsed once per snapshot object. */
const registryKeys = new WeakMap<RegistrySnapshot, Pick<KeySet, 'keys' | 'refused'>>();

function snapshotKeys(snapshot: RegistrySnapshot): Pick<KeySet, 'keys' | 'refused'> {
  const cached = registryKeys.get(snapshot);
  if (cached) return cached;
  const keys = new Map<string, NodeKey>();
  const refused: KeySet['refused'] = new Map();
  for (const n of snapshot.nodes) {
    const address = addressKey(n.address);
    if (n.status !== 'registered') refused.set(address, 'RECEIPT_NODE_INACTIVE');
    else if (n.stake < snapshot.minStake) refused.set(address, 'RECEIPT_NODE_UNSTAKED');
    else {
      // One registrant's unusable key (an origin that is no key name: the contract does not
      // check) refuses that node's receipts only; it must not stop every verification.
      try {
        keys.set(address, parseKey(n));
      } catch {
        refused.set(address, 'RECEIPT_NODE_KEY_INVALID');
      }
    }
  }
  const set = { keys, refused };
  registryKeys.set(snapshot, set);
  return set;
}

/** @internal The trusted key set of §9.1. */
export function nodeKeys(trust: Trust, bundle?: Bundle): KeySet {
  // Pinned keys win over the registry, which wins over entries carried in the bundle (insecure).
  const bundled = trust.insecureAcceptBundleNodes === true ? (bundle?.nodes ?? []) : [];
  const pinned = listKeys(trust.nodes);
  if (trust.registry === undefined) {
    if (bundled.length === 0) return { keys: pinned, refused: new Map(), registry: false };
    return { keys: new Map([...listKeys(bundled), ...pinned]), refused: new Map(), registry: false };
  }
  const chain = snapshotKeys(trust.registry);
  if (bundled.length === 0 && pinned.size === 0) return { ...chain, registry: true };
  const keys = new Map([...listKeys(bundled), ...chain.keys, ...pinned]);
  const refused = new Map([...chain.refused].filter(([a]) => !keys.has(a)));
  return { keys, refused, registry: true };
}

function openCached(note: string, key: NodeKey, cache: VerifyCache | undefined): Checkpoint {
  const id = cacheId(key, note);
  const hit = cache?.checkpoints.get(id);
  if (hit) return hit;
  const { checkpoint } = openCheckpoint(note, [key.verifier], key.verifier.name);
  if (cache) remember(cache, id, checkpoint);
  return checkpoint;
}

/** Step 1: the key the record's node is trusted with, or the code saying why it is not. */
export function trustedKey(record: InferenceRecord, set: KeySet): NodeKey {
  // record.node is already EIP-55 (parseRecord), so lower-casing is its canonical key.
  const key = set.keys.get(record.node.toLowerCase());
  if (key) return key;
  const refused = set.refused.get(record.node.toLowerCase());
  if (refused === 'RECEIPT_NODE_INACTIVE') {
    fail(refused, 'the record names a node that is not registered (unbonding or exited) at the block', {
      node: record.node,
    });
  }
  if (refused === 'RECEIPT_NODE_UNSTAKED') {
    fail(refused, 'the record names a node staked below the minimum at the block', { node: record.node });
  }
  if (refused === 'RECEIPT_NODE_KEY_INVALID') {
    fail(refused, 'the registry entry of the record’s node holds no usable log key (its origin is no key name)', {
      node: record.node,
    });
  }
  if (set.registry) {
    fail('RECEIPT_NODE_UNREGISTERED', 'the record names a node that is not in the registry at the block', {
      node: record.node,
    });
  }
  return fail('RECEIPT_NODE_UNKNOWN', 'the record names a node that is not trusted', { node: record.node });
}

/** Step 2: the receipt's checkpoint, opened with the node's key. */
export function receiptCheckpoint(
  receipt: Receipt,
  key: NodeKey,
  set: KeySet,
  cache: VerifyCache | undefined,
): Checkpoint {
  try {
    return openCached(receipt.checkpoint, key, cache);
  } catch (e) {
    // A checkpoint validly signed by another trusted node: say so rather than "unknown key".
    if (isVerityError(e, 'NOTE_UNKNOWN_KEY')) {
      for (const [addr, other] of set.keys) {
        if (other === key) continue;
        try {
          openCheckpoint(receipt.checkpoint, [other.verifier]);
        } catch {
          continue;
        }
        fail('RECEIPT_NODE_MISMATCH', 'the checkpoint is signed by a different node than the record names', {
          node: receipt.record.node,
          signer: addr,
        });
      }
    }
    throw e;
  }
}

/** Step 3: the leaf index is covered by the checkpoint. */
export function checkLeafIndex(receipt: Receipt, checkpoint: Checkpoint): void {
  if (receipt.leafIndex >= checkpoint.size) {
    fail('RECEIPT_LEAF_INDEX_OUT_OF_RANGE', 'leaf index is not covered by the checkpoint', {
      leafIndex: receipt.leafIndex,
      size: checkpoint.size,
    });
  }
}

/** Step 4: the record is in the log at its index, under the checkpoint's root. */
export function checkReceiptInclusion(receipt: Receipt, checkpoint: Checkpoint): void {
  try {
    verifyInclusion(
      recordLeafHash(receipt.record),
      receipt.leafIndex,
      checkpoint.size,
      proofFromHex(receipt.inclusionProof),
      checkpoint.rootHash,
    );
  } catch (e) {
    if (isVerityError(e, 'INCLUSION_PROOF_INVALID')) {
      throw new VerityError('RECEIPT_INCLUSION_INVALID', 'the record is not in the log at this index and checkpoint', {
        cause: e,
        details: { leafIndex: receipt.leafIndex, size: checkpoint.size },
      });
    }
    throw e;
  }
}

/** Step 5: the digests the caller gave (options) are the record's. */
export function checkExpectedDigests(record: InferenceRecord, options: VerifyOptions): void {
  if (options.inputDigest !== undefined && options.inputDigest.toLowerCase() !== record.inputDigest) {
    fail('RECEIPT_INPUT_DIGEST_MISMATCH', 'the record is for another input', {
      expected: options.inputDigest,
      actual: record.inputDigest,
    });
  }
  if (options.outputDigest !== undefined && options.outputDigest.toLowerCase() !== record.outputDigest) {
    fail('RECEIPT_OUTPUT_DIGEST_MISMATCH', 'the record is for another output', {
      expected: options.outputDigest,
      actual: record.outputDigest,
    });
  }
}

function checkReceipt(receipt: Receipt, set: KeySet, options: VerifyOptions): VerifiedReceipt {
  const key = trustedKey(receipt.record, set);
  const checkpoint = receiptCheckpoint(receipt, key, set, options.cache);
  checkLeafIndex(receipt, checkpoint);
  checkReceiptInclusion(receipt, checkpoint);
  checkExpectedDigests(receipt.record, options);
  checkReceiptPayment(receipt, options);
  return { record: receipt.record, checkpoint, leafIndex: receipt.leafIndex };
}

/** Step 5b: a paid record's payment commitment matches the authorization the receipt carries (payment.ts). */
export function checkReceiptPayment(receipt: Receipt, options: VerifyOptions): void {
  checkRecordPayment(receipt.record, receipt.payment, options.payment);
}

/**
 * Step 9a: with `Trust.current` later than `Trust.registry`, every node that vouched under the
 * registry (keys pinned by hand aside) still has stake at risk now: present, registered or
 * unbonding (still slashable), with stake above zero.
 */
export function checkStillBacked(verified: readonly VerifiedReceipt[], trust: Trust): void {
  const { current, registry } = trust;
  if (current === undefined || registry === undefined || current.block.number <= registry.block.number) return;
  const pinned = new Set(trust.nodes.map((n) => addressKey(n.address)));
  for (const { record } of verified) {
    const address = record.node.toLowerCase();
    if (pinned.has(address)) continue;
    const now = current.nodes.find((n) => n.address.toLowerCase() === address);
    if (now === undefined || now.status === 'exited' || now.stake === 0n) {
      fail(
        'RECEIPT_NODE_EXITED',
        'the node has left the registry since the block the bundle names: no stake backs it now',
        {
          node: record.node,
          block: registry.block.number,
          current: current.block.number,
        },
      );
    }
  }
}

/**
 * Step 5a: under `Trust.witnesses`, the receipt's checkpoint (already verified under the node's
 * log key) carries cosignatures by at least `threshold` of the named witnesses.
 */
export function checkWitnesses(
  receipt: Receipt,
  verified: VerifiedReceipt,
  trust: Trust,
  cache: VerifyCache | undefined,
): VerifiedReceipt {
  const policy = trust.witnesses;
  if (policy === undefined) return verified;
  // Many receipts share one cosigned checkpoint: its cosignatures are checked once per policy.
  const memo = cache?.cosignatures;
  const id = memo && `${policy.threshold}\u0000${policy.keys.join('\u0000')}\n${receipt.checkpoint}`;
  let cosignatures = id === undefined ? undefined : memo?.get(id);
  if (cosignatures === undefined) {
    cosignatures = verifyWitnessPolicy(receipt.checkpoint, policy);
    if (memo && id !== undefined && cache) {
      if (memo.size >= cache.maxEntries) memo.delete(memo.keys().next().value as string);
      memo.set(id, cosignatures);
    }
  }
  return { ...verified, cosignatures };
}

function toResult(e: unknown, receipt?: number): VerifyResult {
  const error = isVerityError(e)
    ? e
    : new VerityError('INVALID_ARGUMENT', 'verification failed unexpectedly', { cause: e });
  return { ok: false, code: error.code, error, ...(receipt === undefined ? {} : { receipt }) };
}

/**
 * Verifies one receipt: the node is trusted, its log key signed the checkpoint, the record is
 * in the log at `leafIndex`, (when given) the input and output digests match, and (with
 * `requireAnchor`) a trusted anchor of the checkpoint's exact size has its root.
 *
 * @example
 * ```ts
 * const result = verifyReceipt(receipt, { nodes: [{ address, logKey }] }, { outputDigest });
 * if (!result.ok) console.error(result.code);
 * ```
 */
export function verifyReceipt(receipt: unknown, trust: Trust, options: VerifyOptions = {}): VerifyResult {
  try {
    const parsed = parseReceipt(receipt);
    const verified = [checkWitnesses(parsed, checkReceipt(parsed, nodeKeys(trust), options), trust, options.cache)];
    checkStillBacked(verified, trust);
    // A lone receipt carries no consistency proofs: only an anchor of its exact size can link it.
    checkAnchors(undefined, verified, trust, options);
    return { ok: true, receipts: verified, checked: checkedContent(undefined, options) };
  } catch (e) {
    return toResult(e);
  }
}

function digestOf(json: unknown, what: 'input' | 'output', kind: InferenceRecord['kind']): string {
  // onnx and zk records digest tensors; llm records digest a canonical request and message (§10).
  if (kind === 'llm') {
    try {
      return what === 'input' ? llmInputDigest(parseLlmInput(json)) : llmOutputDigest(parseLlmOutput(json));
    } catch (cause) {
      throw new VerityError('BUNDLE_MALFORMED', `bundle.${what} is not a valid LLM ${what}`, { cause });
    }
  }
  try {
    return toHex(tensorsDigest(tensorsFromJson(json)));
  } catch (cause) {
    throw new VerityError('BUNDLE_MALFORMED', `bundle.${what} is not a valid tensor map`, { cause });
  }
}

function anchorRoot(a: TrustedAnchor): Uint8Array {
  const root =
    typeof a.rootHash === 'string' && /^[0-9a-fA-F]{64}$/.test(a.rootHash) ? fromHex(a.rootHash) : a.rootHash;
  if (!(root instanceof Uint8Array) || root.length !== 32) {
    fail('INVALID_ARGUMENT', 'a trusted anchor root must be 32 bytes or 64 hex characters', { node: a.node });
  }
  if (!Number.isSafeInteger(a.size) || a.size < 0) fail('INVALID_ARGUMENT', 'a trusted anchor size must be an integer');
  return root;
}

/**
 * Step 9: every receipt's checkpoint agrees with the trusted anchors of its node; returns, per
 * receipt, whether an anchor links it (same size and root, or a consistency proof to one).
 */
export function checkAnchors(
  consistency: readonly ConsistencyEvidence[] | undefined,
  verified: readonly VerifiedReceipt[],
  trust: Trust,
  options: VerifyOptions,
): boolean[] {
  const anchors = trust.anchors ?? [];
  const links: boolean[] = [];
  for (const v of verified) {
    const node = v.record.node.toLowerCase();
    const heads = new Map<number, Uint8Array>([[v.checkpoint.size, v.checkpoint.rootHash]]);
    let linked = false;
    for (const a of anchors) {
      const root = anchorRoot(a);
      // An anchored empty tree commits to nothing (every log extends it): it links nothing.
      if (a.size === 0 || addressKey(a.node) !== node) continue;
      if (a.size === v.checkpoint.size) {
        if (!equalBytes(root, v.checkpoint.rootHash)) {
          fail('BUNDLE_ANCHOR_MISMATCH', 'the checkpoint contradicts an anchored tree head of the same size', {
            node: v.record.node,
            size: a.size,
          });
        }
        linked = true;
        continue;
      }
      const evidence = consistency?.find(
        (c) =>
          addressKey(c.node) === node &&
          ((c.size1 === v.checkpoint.size && c.size2 === a.size) ||
            (c.size1 === a.size && c.size2 === v.checkpoint.size)),
      );
      if (!evidence) continue;
      heads.set(a.size, root);
      try {
        verifyConsistency(
          evidence.size1,
          evidence.size2,
          proofFromHex(evidence.proof),
          heads.get(evidence.size1) as Uint8Array,
          heads.get(evidence.size2) as Uint8Array,
        );
      } catch (cause) {
        throw new VerityError('BUNDLE_CONSISTENCY_INVALID', 'the log is not consistent with its anchored tree head', {
          cause,
          details: { node: v.record.node, size1: evidence.size1, size2: evidence.size2 },
        });
      }
      linked = true;
    }
    if (options.requireAnchor && !linked) {
      fail('BUNDLE_ANCHOR_MISMATCH', 'no consistency proof links this checkpoint to a trusted anchor', {
        node: v.record.node,
        size: v.checkpoint.size,
      });
    }
    links.push(linked);
  }
  return links;
}

/** The raw key of a C2SP verifier key text (after its last `+`): what makes two logs one. */
const rawKey = (logKey: string): string => logKey.slice(logKey.lastIndexOf('+') + 1);

/**
 * Step 6a: one log per receipt. Distinct addresses are not distinct nodes when one log key or
 * one origin stands behind several of them (one operator, one log, many accounts).
 */
function checkDistinctLogs(records: readonly InferenceRecord[], set: KeySet): void {
  const keys = new Map<string, string>();
  const origins = new Map<string, string>();
  for (const record of records) {
    const key = set.keys.get(record.node.toLowerCase()) as NodeKey;
    const raw = rawKey(key.logKey);
    const other = keys.get(raw);
    if (other !== undefined) {
      fail('BUNDLE_LOG_KEY_REUSED', 'two receipts are vouched for by one log key under different addresses', {
        nodes: [other, record.node],
      });
    }
    keys.set(raw, record.node);
    const sameOrigin = origins.get(key.verifier.name);
    if (sameOrigin !== undefined) {
      fail('BUNDLE_ORIGIN_REUSED', 'two receipts come from logs with one origin under different addresses', {
        nodes: [sameOrigin, record.node],
        origin: key.verifier.name,
      });
    }
    origins.set(key.verifier.name, record.node);
  }
}

const SAME_COMPUTATION = ['kind', 'model', 'inputDigest', 'paramsDigest', 'requestId'] as const;

/**
 * Step 8a (docs/protocol.md §11): the `quorum` member. The agreeing receipts are the `agreed`
 * entries of `asked`, in order; each dissenting receipt is a genuine receipt of its node for the
 * same request with another output; the asked list is no deeper than k + QUORUM_MAX_SKIPS and
 * ends at the k-th agreement; and, under `Trust.registry`, it is the head of the ranking
 * recomputed at the snapshot's block from the caller's nonce.
 */
/** True when two records name the same runtime: id, version and execution profile. */
function sameRuntime(a: InferenceRecord, b: InferenceRecord): boolean {
  return (
    a.runtime.id === b.runtime.id && a.runtime.version === b.runtime.version && a.runtime.profile === b.runtime.profile
  );
}

/**
 * Step 8a, paid (docs/protocol.md §17.5): a coordinator's record charges its caller at most
 * {@link quorumCharges}' limit — what the caller authorized less what the members it paid left
 * unspent. Each receipt's own payment check (step 5b) already ran.
 */
function checkQuorumCharge(receipts: readonly Receipt[]): void {
  for (const r of receipts) {
    const charged = r.record.payment?.amount;
    const limit = quorumCharges(
      r,
      receipts.filter((m) => m !== r),
    )?.limit;
    if (charged === undefined || limit === undefined || BigInt(charged) <= limit) continue;
    fail('QUORUM_CHARGE_EXCESS', 'the coordinator charges its caller more than its share plus its members’ charges', {
      node: r.record.node,
      amount: charged,
      limit: limit.toString(),
    });
  }
}

function checkQuorum(
  bundle: Bundle,
  verified: readonly VerifiedReceipt[],
  set: KeySet,
  trust: Trust,
  options: VerifyOptions,
): { selection: 'checked' | 'unchecked'; dissent: VerifiedReceipt[] } | undefined {
  const q: QuorumEvidence | undefined = bundle.quorum;
  if (q === undefined) {
    if (trust.registry !== undefined && verified.some((v) => v.record.mode === 'quorum')) {
      fail('QUORUM_SELECTION_MISSING', 'quorum receipts without the selection (bundle.quorum) to check them against');
    }
    return undefined;
  }
  const first = (verified[0] as VerifiedReceipt).record;
  for (const { record } of verified) {
    if (record.mode !== 'quorum')
      fail('QUORUM_MODE_INVALID', 'a quorum bundle holds a receipt of another mode', {
        node: record.node,
        mode: record.mode,
      });
  }
  // Like with like (§11.3): one runtime, version and execution profile; another may honestly
  // give other bits, so neither its agreement nor its dissent means anything here.
  for (const { record } of verified) {
    if (!sameRuntime(record, first)) {
      fail('QUORUM_RUNTIME_MISMATCH', 'the quorum receipts name different runtimes', {
        node: record.node,
        runtime: record.runtime,
        expected: first.runtime,
      });
    }
  }
  if (verified.length < q.k) {
    fail('QUORUM_TOO_FEW', `a quorum of ${q.k} needs ${q.k} agreeing receipts`, { k: q.k, receipts: verified.length });
  }
  for (const { record } of verified) {
    if (record.clientNonce !== q.nonce) {
      fail('QUORUM_SEED_MISMATCH', 'a receipt does not carry the nonce that seeds the selection', {
        node: record.node,
      });
    }
  }
  if (q.asked.length > q.k + QUORUM_MAX_SKIPS) {
    fail('QUORUM_DEPTH_EXCEEDED', `at most k + ${QUORUM_MAX_SKIPS} ranked nodes may be asked`, {
      k: q.k,
      asked: q.asked.length,
    });
  }
  const agreed = q.asked.filter((a) => a.outcome === 'agreed');
  const dissenters = q.asked.filter((a) => a.outcome === 'dissent');
  if (
    agreed.length !== verified.length ||
    agreed.some((a, i) => a.address.toLowerCase() !== (verified[i] as VerifiedReceipt).record.node.toLowerCase())
  ) {
    fail('QUORUM_SKIPPED_MISMATCH', "the agreeing nodes in quorum.asked are not the receipts' nodes, in order");
  }
  if (agreed.length !== q.k || q.asked[q.asked.length - 1]?.outcome !== 'agreed') {
    fail('QUORUM_SKIPPED_MISMATCH', 'the asked list must end at the k-th agreeing node');
  }
  if (dissenters.length !== q.dissent.length) {
    fail('QUORUM_SKIPPED_MISMATCH', 'the dissenting nodes in quorum.asked are not the dissent receipts');
  }
  const dissent: VerifiedReceipt[] = [];
  const counts = new Map<string, number>();
  for (let i = 0; i < q.dissent.length; i++) {
    let v: VerifiedReceipt;
    try {
      // The same payment policy as the quorum's receipts: a paid dissent is on the pinned chain and
      // token, and a contract wallet's signature counts only where the chain vouched for it.
      v = checkReceipt(q.dissent[i] as Receipt, set, {
        ...(options.cache === undefined ? {} : { cache: options.cache }),
        ...(options.inputDigest === undefined ? {} : { inputDigest: options.inputDigest }),
        ...(options.payment === undefined ? {} : { payment: options.payment }),
      });
    } catch (cause) {
      throw new VerityError('QUORUM_DISSENT_INVALID', `dissent receipt ${i} does not verify`, {
        cause,
        details: { dissent: i, causeCode: isVerityError(cause) ? cause.code : undefined },
      });
    }
    const r = v.record;
    if (r.node.toLowerCase() !== (dissenters[i] as { address: string }).address.toLowerCase()) {
      fail('QUORUM_SKIPPED_MISMATCH', 'the dissenting nodes in quorum.asked are not the dissent receipts, in order');
    }
    for (const f of SAME_COMPUTATION) {
      if (r[f] !== first[f])
        fail('QUORUM_DISSENT_INVALID', `dissent receipt ${i} is for another request (${f})`, { dissent: i, field: f });
    }
    if (!sameRuntime(r, first)) {
      fail('QUORUM_RUNTIME_MISMATCH', `dissent receipt ${i} names another runtime than the quorum`, {
        dissent: i,
        runtime: r.runtime,
        expected: first.runtime,
      });
    }
    if (r.mode !== 'quorum' || r.clientNonce !== q.nonce) {
      fail('QUORUM_DISSENT_INVALID', `dissent receipt ${i} is not a quorum receipt under this nonce`, { dissent: i });
    }
    if (r.outputDigest === first.outputDigest) {
      fail('QUORUM_DISSENT_INVALID', `dissent receipt ${i} agrees with the quorum`, { dissent: i });
    }
    const count = (counts.get(r.outputDigest) ?? 0) + 1;
    // A dissenting output reaching k first would have been the answer.
    if (count >= q.k) fail('QUORUM_DISSENT_INVALID', 'k dissenting receipts agree with each other', { dissent: i });
    counts.set(r.outputDigest, count);
    dissent.push(v);
  }
  const all = [...verified, ...dissent].map((v) => v.record);
  const nodes = new Set<string>();
  for (const r of all) {
    if (nodes.has(r.node.toLowerCase()))
      fail('BUNDLE_RECEIPTS_INCONSISTENT', 'two receipts from one node', { node: r.node });
    nodes.add(r.node.toLowerCase());
  }
  checkDistinctLogs(all, set);
  checkQuorumCharge([...bundle.receipts, ...q.dissent]);
  const registry = trust.registry;
  if (registry === undefined) return { selection: 'unchecked', dissent };
  if (q.block.number !== registry.block.number || q.block.hash !== registry.block.hash.toLowerCase()) {
    fail('QUORUM_BLOCK_MISMATCH', "the selection's block is not the registry snapshot's", {
      bundle: q.block,
      registry: registry.block,
    });
  }
  const ranking = rankQuorum(registry, quorumSeed(q.block.hash, q.nonce), q.asked.length);
  for (let i = 0; i < q.asked.length; i++) {
    const expected = ranking[i]?.address;
    const actual = (q.asked[i] as { address: string }).address;
    if (expected === undefined || expected.toLowerCase() !== actual.toLowerCase()) {
      fail('QUORUM_SELECTION_INVALID', `place ${i} of the ranking is not the node asked there`, {
        position: i,
        expected: expected ?? null,
        actual,
      });
    }
  }
  return { selection: 'checked', dissent };
}

/**
 * Verifies a bundle: every receipt (see {@link verifyReceipt}); receipts agree on model, input,
 * output and parameters and come from distinct nodes with distinct logs (log key and origin); the
 * carried input/output match the records' digests; in mode `quorum` the selection and dissent
 * (docs/protocol.md §11); and consistency proofs link checkpoints to trusted anchors.
 *
 * @example
 * ```ts
 * const result = verifyBundle(JSON.parse(text), { nodes: [{ address, logKey }] });
 * if (result.ok) console.log('verified', result.receipts[0].record.outputDigest);
 * else console.error(result.code, result.error.message);
 * ```
 */
export function verifyBundle(bundle: unknown, trust: Trust, options: VerifyOptions = {}): VerifyResult {
  let parsed: Bundle;
  let set: KeySet;
  try {
    parsed = parseBundle(bundle);
    set = nodeKeys(trust, parsed);
  } catch (e) {
    return toResult(e);
  }
  const verified: VerifiedReceipt[] = [];
  for (let i = 0; i < parsed.receipts.length; i++) {
    try {
      const receipt = parsed.receipts[i] as Receipt;
      verified.push(checkWitnesses(receipt, checkReceipt(receipt, set, options), trust, options.cache));
    } catch (e) {
      return toResult(e, i);
    }
  }
  let quorum: ReturnType<typeof checkQuorum>;
  try {
    checkAgreement(verified, set);
    checkNoDowngrade(parsed, verified);
    checkBundledInput(parsed, (verified[0] as VerifiedReceipt).record);
    checkBundledOutput(parsed, (verified[0] as VerifiedReceipt).record);
    checkBundledParams(parsed, (verified[0] as VerifiedReceipt).record);
    quorum = checkQuorum(parsed, verified, set, trust, options);
    checkStillBacked(verified, trust);
    checkAnchors(parsed.consistency, verified, trust, options);
  } catch (e) {
    return toResult(e);
  }
  return {
    ok: true,
    receipts: verified,
    checked: checkedContent(parsed, options),
    ...(quorum === undefined ? {} : { quorum }),
  };
}

/** Step 6 and 6a: the receipts are for one computation, from distinct nodes with distinct logs. */
export function checkAgreement(verified: readonly VerifiedReceipt[], set: KeySet): void {
  const first = (verified[0] as VerifiedReceipt).record;
  const seen = new Set<string>();
  for (const { record } of verified) {
    for (const f of ['kind', 'model', 'inputDigest', 'outputDigest', 'paramsDigest', 'requestId'] as const) {
      if (record[f] !== first[f]) fail('BUNDLE_RECEIPTS_INCONSISTENT', `receipts disagree on ${f}`, { field: f });
    }
    const node = record.node.toLowerCase();
    if (seen.has(node)) fail('BUNDLE_RECEIPTS_INCONSISTENT', 'two receipts from one node', { node: record.node });
    seen.add(node);
  }
  checkDistinctLogs(
    verified.map((v) => v.record),
    set,
  );
}

/**
 * Step 6b, no downgrade: a zk record's answer stands on its proof; without it, it is no answer at
 * all (not a signed one). The proof itself is checked by the SDK's verifyZkBundle (snarkjs).
 */
export function checkNoDowngrade(bundle: Bundle, verified: readonly { record: InferenceRecord }[]): void {
  const first = (verified[0] as { record: InferenceRecord }).record;
  if (bundle.zk === undefined && verified.some((v) => v.record.kind === 'zk' || v.record.mode === 'zk')) {
    fail('ZK_EVIDENCE_MISSING', 'a zk record without its zk evidence (bundle.zk): the proof was dropped', {
      kind: first.kind,
      mode: first.mode,
    });
  }
}

/** Step 7: the bundled input is the one the records name (nothing to check when it is left out). */
export function checkBundledInput(bundle: Bundle, first: InferenceRecord): void {
  if (bundle.input !== undefined && digestOf(bundle.input, 'input', first.kind) !== first.inputDigest) {
    fail('RECEIPT_INPUT_DIGEST_MISMATCH', 'the bundled input does not match the record');
  }
}

/** Step 8, kind llm: the bundled input's sampling settings are the records' params. */
export function checkBundledParams(bundle: Bundle, first: InferenceRecord): void {
  // An LLM input carries its effective sampling settings: they are what the params digest covers.
  if (bundle.input !== undefined && first.kind === 'llm') {
    const params = (bundle.input as { params: LlmParams }).params;
    if (llmParamsDigest(params) !== first.paramsDigest) {
      fail('RECEIPT_PARAMS_MISMATCH', 'the bundled sampling parameters do not match the record');
    }
  }
}

/** Step 8: the bundled output is the one the records name. */
export function checkBundledOutput(bundle: Bundle, first: InferenceRecord): void {
  if (bundle.output !== undefined && digestOf(bundle.output, 'output', first.kind) !== first.outputDigest) {
    fail('RECEIPT_OUTPUT_DIGEST_MISMATCH', 'the bundled output does not match the record');
  }
}

function checkedContent(bundle: Bundle | undefined, options: VerifyOptions): VerifiedContent {
  return {
    input: bundle?.input !== undefined || options.inputDigest !== undefined,
    output: bundle?.output !== undefined || options.outputDigest !== undefined,
  };
}

/**
 * Checks ahead of time, with the platform's native Ed25519 (WebCrypto; asynchronous), the
 * checkpoint signatures of a bundle or a lone receipt that `cache` does not hold yet, and caches
 * the checkpoints whose signature verifies: the {@link verifyBundle} or {@link verifyReceipt} call
 * that follows with the same trust and cache then skips the portable (pure JS) signature check,
 * the one expensive step of verifying a receipt under a new checkpoint.
 *
 * It decides nothing. A checkpoint enters the cache only as the synchronous path would put it
 * there: opened by {@link openCheckpoint} with the same key and origin, the one signature line
 * that check reads confirmed by the platform (which accepts nothing the portable verifier refuses:
 * `ed25519-platform.ts`). Anything else (no platform Ed25519, a malformed input, an untrusted node,
 * a signature the platform does not confirm) is left to the synchronous verification, which
 * reports it with its usual code. Never throws.
 *
 * @example
 * ```ts
 * const cache = createVerifyCache();
 * await primeVerifyCache(bundle, trust, cache);
 * const result = verifyBundle(bundle, trust, { cache });
 * ```
 */
export async function primeVerifyCache(bundleOrReceipt: unknown, trust: Trust, cache: VerifyCache): Promise<void> {
  let receipts: readonly Receipt[];
  let keys: Map<string, NodeKey>;
  try {
    const isBundle = typeof bundleOrReceipt === 'object' && bundleOrReceipt !== null && 'mediaType' in bundleOrReceipt;
    const bundle = isBundle ? parseBundle(bundleOrReceipt) : undefined;
    receipts = bundle ? bundle.receipts : [parseReceipt(bundleOrReceipt)];
    keys = nodeKeys(trust, bundle).keys;
  } catch {
    return;
  }
  for (const receipt of receipts) {
    const key = keys.get(receipt.record.node.toLowerCase());
    if (!key) continue;
    const id = cacheId(key, receipt.checkpoint);
    if (cache.checkpoints.has(id)) continue;
    // The same checkpoint (another receipt of its batch) under check already: its outcome is this one's.
    const under = cache.priming?.get(id);
    if (under !== undefined) {
      await under;
      continue;
    }
    const priming = primeCheckpoint(receipt.checkpoint, key, id, cache);
    cache.priming?.set(id, priming);
    try {
      if (!(await priming)) return; // no platform Ed25519: nothing to gain
    } finally {
      cache.priming?.delete(id);
    }
  }
}

/** One checkpoint primed (see {@link primeVerifyCache}); false: the platform has no Ed25519. */
async function primeCheckpoint(note: string, key: NodeKey, id: string, cache: VerifyCache): Promise<boolean> {
  // Open the note as openCached would, with a stand-in for the signature check that notes the
  // message and signature it is asked about: exactly the pair the platform must confirm.
  let asked: { message: Uint8Array; signature: Uint8Array } | undefined;
  let checkpoint: Checkpoint;
  try {
    const standIn = {
      name: key.verifier.name,
      keyId: key.verifier.keyId,
      verify: (message: Uint8Array, signature: Uint8Array) => {
        asked = { message, signature };
        return true;
      },
    };
    checkpoint = openCheckpoint(note, [standIn], key.verifier.name).checkpoint;
  } catch {
    return true;
  }
  const check = await platformCheck(cache, key.logKey);
  if (check === undefined) return false;
  if (asked !== undefined && (await check(asked.message, asked.signature))) remember(cache, id, checkpoint);
  return true;
}

function platformCheck(cache: VerifyCache, logKey: string): Promise<AsyncSignatureCheck | undefined> {
  const checks = cache.platformChecks;
  let check = checks?.get(logKey);
  if (check === undefined) {
    check = (async () => createPlatformEd25519Check(verifierPublicKey(logKey), cache.ed25519))().catch(() => undefined);
    if (checks) {
      if (checks.size >= cache.maxEntries) checks.delete(checks.keys().next().value as string);
      checks.set(logKey, check);
    }
  }
  return check;
}

// Step 8a, for verify-checks.ts (declared above without `export`, so edits to it merge cleanly).
export { checkQuorum };
