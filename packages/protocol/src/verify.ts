/**
 * Offline verification of receipts and bundles (docs/protocol.md §9).
 *
 * `verifyBundle(bundle, trust)` is a pure function: it never fetches anything. The trust material
 * (which nodes, with which log keys, and which anchored tree heads) is gathered beforehand — by
 * the SDK from the chain, or given by the user — and passed in.
 */
import { equalBytes, fromHex, toHex } from './bytes.js';
import { type Checkpoint, openCheckpoint } from './checkpoint.js';
import { type AsyncSignatureCheck, createPlatformEd25519Check } from './ed25519-platform.js';
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
import {
  type Bundle,
  type ConsistencyEvidence,
  parseBundle,
  parseReceipt,
  proofFromHex,
  type Receipt,
} from './receipt.js';
import { type InferenceRecord, recordLeafHash } from './record.js';
import { isActiveNode, type RegistrySnapshot } from './registry.js';
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
   * The chain registry at a block (the root of trust, DESIGN.md §2.6a): a record's node must be
   * registered, active and staked there, and `quorum` selections are recomputed from it.
   */
  readonly registry?: RegistrySnapshot;
  readonly anchors?: readonly TrustedAnchor[];
  /**
   * Also trust the node entries carried in the bundle itself: anyone can write keys there, so
   * this is insecure unless the bundle comes from a source you already trust (default false).
   */
  readonly insecureAcceptBundleNodes?: boolean;
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
}

/** Memo of verified checkpoints, keyed by log key and note text. */
export interface VerifyCache {
  readonly checkpoints: Map<string, Checkpoint>;
  readonly maxEntries: number;
  /** The platform's Ed25519 checks by log key, for {@link primeVerifyCache}. */
  readonly platformChecks?: Map<string, Promise<AsyncSignatureCheck | undefined>>;
}

/**
 * Creates a {@link VerifyCache}.
 *
 * @example
 * ```ts
 * const cache = createVerifyCache();
 * for (const r of receipts) verifyReceipt(r, trust, { cache });
 * ```
 */
export function createVerifyCache(maxEntries = 1024): VerifyCache {
  return { checkpoints: new Map(), maxEntries, platformChecks: new Map() };
}

/** What a successful verification established about one receipt. */
export interface VerifiedReceipt {
  readonly record: InferenceRecord;
  readonly checkpoint: Checkpoint;
  readonly leafIndex: number;
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
  | { readonly ok: true; readonly receipts: readonly VerifiedReceipt[]; readonly checked: VerifiedContent }
  | { readonly ok: false; readonly code: ErrorCode; readonly error: VerityError; readonly receipt?: number };

const addressKey = (address: string): string => parseAddress(address).toLowerCase();

interface NodeKey {
  readonly logKey: string;
  readonly verifier: NoteVerifier;
}

/**
 * Parsed keys, keyed by the exact trusted entries (address and log key, in order): a verifier
 * that verifies many receipts under the same trust parses its keys once, and a changed trust
 * list is a different key, so nothing stale is ever trusted.
 */
const keyMaps = new Map<string, Map<string, NodeKey>>();
const KEY_MAPS_SIZE = 64;

function nodeKeys(trust: Trust, bundle?: Bundle): Map<string, NodeKey> {
  const pinned = pinnedNodeKeys(trust, bundle);
  const registry = registryNodeKeys(trust);
  if (registry === undefined) return pinned;
  if (pinned.size === 0) return registry.keys;
  // Keys pinned by hand win over the registry's.
  return new Map([...registry.keys, ...pinned]);
}

/**
 * Registry-rooted keys (DESIGN.md §2.6a): from `Trust.registry`, the log key of every node that
 * is registered and staked at the snapshot's block. Nodes in the snapshot that may not vouch
 * (unbonding, exited, under-staked) are kept apart with the code their receipts fail with; a node
 * absent from the snapshot is `RECEIPT_NODE_UNREGISTERED`. Built once per snapshot object.
 */
interface RegistryKeys {
  readonly keys: Map<string, NodeKey>;
  readonly refused: Map<string, ErrorCode>;
}
const registryKeyMaps = new WeakMap<RegistrySnapshot, RegistryKeys>();

function registryNodeKeys(trust: Trust): RegistryKeys | undefined {
  const snapshot = trust.registry;
  if (snapshot === undefined) return undefined;
  const cached = registryKeyMaps.get(snapshot);
  if (cached) return cached;
  const keys = new Map<string, NodeKey>();
  const refused = new Map<string, ErrorCode>();
  for (const n of snapshot.nodes) {
    const address = addressKey(n.address);
    if (isActiveNode(snapshot, n)) {
      try {
        keys.set(address, { logKey: n.logKey, verifier: parseVerifierKey(n.logKey) });
      } catch (cause) {
        throw new VerityError('NOTE_KEY_INVALID', `invalid log key in the registry for ${n.address}`, { cause });
      }
    } else {
      refused.set(address, n.status === 'registered' ? 'RECEIPT_NODE_UNSTAKED' : 'RECEIPT_NODE_INACTIVE');
    }
  }
  const built = { keys, refused };
  registryKeyMaps.set(snapshot, built);
  return built;
}

/** Why a record's node has no key: not registered, or registered but not allowed to vouch. */
function unknownNode(trust: Trust, node: string): never {
  const refused = registryNodeKeys(trust)?.refused.get(node.toLowerCase());
  if (refused === 'RECEIPT_NODE_UNSTAKED') {
    fail(refused, 'the node is staked below the registry minimum at the trusted block', { node });
  }
  if (refused !== undefined) fail(refused, 'the node is not active in the registry at the trusted block', { node });
  if (trust.registry !== undefined) {
    fail('RECEIPT_NODE_UNREGISTERED', 'the node is not in the registry at the trusted block', {
      node,
      block: trust.registry.block.number,
    });
  }
  return fail('RECEIPT_NODE_UNKNOWN', 'the record names a node that is not trusted', { node });
}

function pinnedNodeKeys(trust: Trust, bundle?: Bundle): Map<string, NodeKey> {
  // Explicit trust comes last so that it wins over entries carried in the bundle.
  const entries: readonly TrustedNode[] = [
    ...(trust.insecureAcceptBundleNodes === true ? (bundle?.nodes ?? []) : []),
    ...trust.nodes,
  ];
  // Maps built from keys alone are cached; ones with caller-supplied verifiers are not.
  const custom = entries.some((n) => n.verifier !== undefined);
  const id = entries.map((n) => `${n.address}\u0000${n.logKey}`).join('\n');
  const cached = custom ? undefined : keyMaps.get(id);
  if (cached) return cached;
  const map = new Map<string, NodeKey>();
  for (const n of entries) {
    try {
      const parsed = parseVerifierKey(n.logKey);
      const given = n.verifier;
      if (given !== undefined && (given.name !== parsed.name || given.keyId !== parsed.keyId)) {
        fail('NOTE_KEY_INVALID', 'the verifier given is not for this log key');
      }
      map.set(addressKey(n.address), { logKey: n.logKey, verifier: given ?? parsed });
    } catch (cause) {
      throw new VerityError('NOTE_KEY_INVALID', `invalid trusted node entry for ${String(n.address)}`, { cause });
    }
  }
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

function openCached(note: string, key: NodeKey, cache: VerifyCache | undefined): Checkpoint {
  const id = cacheId(key, note);
  const hit = cache?.checkpoints.get(id);
  if (hit) return hit;
  const { checkpoint } = openCheckpoint(note, [key.verifier], key.verifier.name);
  if (cache) remember(cache, id, checkpoint);
  return checkpoint;
}

function checkReceipt(
  receipt: Receipt,
  keys: Map<string, NodeKey>,
  trust: Trust,
  options: VerifyOptions,
): VerifiedReceipt {
  const { record } = receipt;
  // record.node is already EIP-55 (parseRecord), so lower-casing is its canonical key.
  const key = keys.get(record.node.toLowerCase());
  if (!key) unknownNode(trust, record.node);
  let checkpoint: Checkpoint;
  try {
    checkpoint = openCached(receipt.checkpoint, key, options.cache);
  } catch (e) {
    // A checkpoint validly signed by another trusted node: say so rather than "unknown key".
    if (isVerityError(e, 'NOTE_UNKNOWN_KEY')) {
      for (const [addr, other] of keys) {
        if (other === key) continue;
        try {
          openCheckpoint(receipt.checkpoint, [other.verifier]);
        } catch {
          continue;
        }
        fail('RECEIPT_NODE_MISMATCH', 'the checkpoint is signed by a different node than the record names', {
          node: record.node,
          signer: addr,
        });
      }
    }
    throw e;
  }
  if (receipt.leafIndex >= checkpoint.size) {
    fail('RECEIPT_LEAF_INDEX_OUT_OF_RANGE', 'leaf index is not covered by the checkpoint', {
      leafIndex: receipt.leafIndex,
      size: checkpoint.size,
    });
  }
  try {
    verifyInclusion(
      recordLeafHash(record),
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
  return { record, checkpoint, leafIndex: receipt.leafIndex };
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
    const verified = [checkReceipt(parseReceipt(receipt), nodeKeys(trust), trust, options)];
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

function checkAnchors(
  consistency: readonly ConsistencyEvidence[] | undefined,
  verified: readonly VerifiedReceipt[],
  trust: Trust,
  options: VerifyOptions,
): void {
  const anchors = trust.anchors ?? [];
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
  }
}

/**
 * Verifies a bundle: every receipt (see {@link verifyReceipt}); receipts agree on model, input,
 * output and parameters and come from distinct nodes; the carried input/output match the
 * records' digests; and consistency proofs link checkpoints to trusted anchors.
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
  let keys: Map<string, NodeKey>;
  try {
    parsed = parseBundle(bundle);
    keys = nodeKeys(trust, parsed);
  } catch (e) {
    return toResult(e);
  }
  const verified: VerifiedReceipt[] = [];
  for (let i = 0; i < parsed.receipts.length; i++) {
    try {
      verified.push(checkReceipt(parsed.receipts[i] as Receipt, keys, trust, options));
    } catch (e) {
      return toResult(e, i);
    }
  }
  try {
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
    if (parsed.input !== undefined && digestOf(parsed.input, 'input', first.kind) !== first.inputDigest) {
      fail('RECEIPT_INPUT_DIGEST_MISMATCH', 'the bundled input does not match the record');
    }
    if (parsed.output !== undefined && digestOf(parsed.output, 'output', first.kind) !== first.outputDigest) {
      fail('RECEIPT_OUTPUT_DIGEST_MISMATCH', 'the bundled output does not match the record');
    }
    // An LLM input carries its effective sampling settings: they are what the params digest covers.
    if (parsed.input !== undefined && first.kind === 'llm') {
      const params = (parsed.input as { params: LlmParams }).params;
      if (llmParamsDigest(params) !== first.paramsDigest) {
        fail('RECEIPT_PARAMS_MISMATCH', 'the bundled sampling parameters do not match the record');
      }
    }
    checkAnchors(parsed.consistency, verified, trust, options);
  } catch (e) {
    return toResult(e);
  }
  return { ok: true, receipts: verified, checked: checkedContent(parsed, options) };
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
    keys = nodeKeys(trust, bundle);
  } catch {
    return;
  }
  for (const receipt of receipts) {
    const key = keys.get(receipt.record.node.toLowerCase());
    if (!key) continue;
    const id = cacheId(key, receipt.checkpoint);
    if (cache.checkpoints.has(id)) continue;
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
      checkpoint = openCheckpoint(receipt.checkpoint, [standIn], key.verifier.name).checkpoint;
    } catch {
      continue;
    }
    const check = await platformCheck(cache, key.logKey);
    if (check === undefined) return; // no platform Ed25519: nothing to gain
    if (asked !== undefined && (await check(asked.message, asked.signature))) remember(cache, id, checkpoint);
  }
}

function platformCheck(cache: VerifyCache, logKey: string): Promise<AsyncSignatureCheck | undefined> {
  const checks = cache.platformChecks;
  let check = checks?.get(logKey);
  if (check === undefined) {
    check = (async () => createPlatformEd25519Check(verifierPublicKey(logKey)))().catch(() => undefined);
    if (checks) {
      if (checks.size >= cache.maxEntries) checks.delete(checks.keys().next().value as string);
      checks.set(logKey, check);
    }
  }
  return check;
}
