/**
 * Receipts and bundles: their JSON forms and strict parsing (docs/protocol.md §8).
 *
 * A receipt is what a caller gets with each output — `{ record, leafIndex, inclusionProof,
 * checkpoint }` — enough to verify offline given the node's log key. A bundle wraps one or more
 * receipts with the material to check them fully offline.
 */
import { fromHex } from './bytes.js';
import { fail, VerityError } from './errors.js';
import { parseAddress } from './eth.js';
import { parseVerifierKey } from './note.js';
import { parseReceiptPayment, type ReceiptPayment } from './payment.js';
import { QUORUM_MAX_K, QUORUM_NONCE } from './quorum.js';
import { type InferenceRecord, parseRecord } from './record.js';
import { parseRegistryProof, type RegistryProofEvidence } from './registry-proof.js';
import { parseZkEvidence, type ZkEvidence } from './zk.js';

/** A receipt in its JSON form. */
export interface Receipt {
  readonly record: InferenceRecord;
  /** Index of the record's leaf in the node's log. */
  readonly leafIndex: number;
  /** RFC 9162 inclusion proof of the leaf in the checkpoint's tree, leaf side first, hex. */
  readonly inclusionProof: readonly string[];
  /** The node's signed checkpoint (C2SP signed note) covering the leaf. */
  readonly checkpoint: string;
  /**
   * A paid record's payment: the payer's signed authorization, from which a verifier recomputes
   * the record's `payment.digest` and checks payer, payee and amount (docs/protocol.md §17).
   */
  readonly payment?: ReceiptPayment;
}

/** A node's registry entry as carried in a bundle. */
export interface NodeEntry {
  /** Ethereum account of the node (the record's `node`). */
  readonly address: string;
  /** The node's C2SP Ed25519 verifier key; its key name is the log origin. */
  readonly logKey: string;
  /** Stake in wei (decimal string) at `block`, when known. */
  readonly stake?: string;
  /** Chain block number the entry was read at. */
  readonly block?: number;
}

/** A consistency proof linking a receipt's checkpoint to an anchored tree head. */
export interface ConsistencyEvidence {
  /** Node whose log this is. */
  readonly node: string;
  readonly size1: number;
  readonly size2: number;
  /** RFC 9162 consistency proof, hex. */
  readonly proof: readonly string[];
}

/** What became of one ranked node a quorum coordinator asked (docs/protocol.md §8.2, §11). */
export interface QuorumAsked {
  /** The node's account (EIP-55 once parsed). */
  readonly address: string;
  /**
   * `agreed`: its receipt is in `receipts`; `dissent`: it answered another output, its receipt is
   * in `quorum.dissent`; `skipped`: no usable answer (down, refused, unverifiable receipt).
   */
  readonly outcome: 'agreed' | 'dissent' | 'skipped';
  /** Why it was skipped (an error code), informative. */
  readonly code?: string;
}

/** The `quorum` member of a bundle: what a verifier needs to recompute the selection. */
export interface QuorumEvidence {
  /** How many agreeing receipts were asked for. */
  readonly k: number;
  /** The block B whose registry and hash seed the ranking. */
  readonly block: { readonly number: number; readonly hash: string };
  /** The caller's nonce (= every record's `clientNonce`), lower-case hex, 16 to 64 bytes. */
  readonly nonce: string;
  /** The ranking's head in order: every node asked, and what it gave. */
  readonly asked: readonly QuorumAsked[];
  /** Receipts of the nodes that answered another output, in `asked` order: evidence against them. */
  readonly dissent: readonly Receipt[];
}

/** Media type marking a version-1 bundle. */
export const BUNDLE_MEDIA_TYPE = 'application/vnd.verity.bundle.v1+json';

/** A bundle in its JSON form. */
export interface Bundle {
  readonly mediaType: typeof BUNDLE_MEDIA_TYPE;
  /** One receipt per node that produced the output (several in `quorum` mode). */
  readonly receipts: readonly Receipt[];
  /** Registry entries of the nodes, as read from the chain at some block. */
  readonly nodes?: readonly NodeEntry[];
  /** Proofs linking receipt checkpoints to anchored checkpoints. */
  readonly consistency?: readonly ConsistencyEvidence[];
  /** The input the caller sent, in the full tensor JSON form (kind `onnx`). */
  readonly input?: unknown;
  /** The output the caller received, in the full tensor JSON form (kind `onnx`). */
  readonly output?: unknown;
  /** Mode `zk`: the Groth16 proof, public signals, verification key, setup and (optionally) the manifest. */
  readonly zk?: ZkEvidence;
  /** Mode `quorum`: the selection (block, nonce, the nodes asked) and dissenting receipts. */
  readonly quorum?: QuorumEvidence;
  /** `NodeRegistry` at a block with EIP-1186 proofs, for verifiers that pin the block (registry-proof.ts). */
  readonly registryProof?: RegistryProofEvidence;
}

const HASH_HEX = /^[0-9a-f]{64}$/;
/** Bounds that keep a hostile bundle from costing unbounded work. */
const MAX_PROOF = 64;
const MAX_RECEIPTS = 64;
const MAX_NOTE = 16 * 1024;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function onlyKeys(
  v: Record<string, unknown>,
  allowed: readonly string[],
  code: 'RECEIPT_MALFORMED' | 'BUNDLE_MALFORMED',
  at: string,
) {
  for (const k of Object.keys(v))
    if (!allowed.includes(k)) fail(code, `${at}: unknown field "${k}"`, { field: `${at}.${k}` });
}

function hashList(v: unknown, code: 'RECEIPT_MALFORMED' | 'BUNDLE_MALFORMED', field: string): string[] {
  if (!Array.isArray(v) || v.length > MAX_PROOF)
    fail(code, `${field} must be an array of at most ${MAX_PROOF} hashes`, { field });
  for (const h of v) {
    if (typeof h !== 'string' || !HASH_HEX.test(h))
      fail(code, `${field}: each hash must be 64 lower-case hex characters`, { field });
  }
  return v as string[];
}

function index(v: unknown, code: 'RECEIPT_MALFORMED' | 'BUNDLE_MALFORMED', field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    fail(code, `${field} must be a non-negative integer`, { field });
  return v;
}

/**
 * Validates an untrusted value as a {@link Receipt}. Throws `RECEIPT_MALFORMED`, or
 * `RECORD_INVALID` for a bad record.
 *
 * @example
 * ```ts
 * const receipt = parseReceipt(JSON.parse(body).receipt);
 * ```
 */
export function parseReceipt(value: unknown, at = 'receipt'): Receipt {
  if (!isObject(value)) fail('RECEIPT_MALFORMED', `${at} must be an object`);
  onlyKeys(value, ['record', 'leafIndex', 'inclusionProof', 'checkpoint', 'payment'], 'RECEIPT_MALFORMED', at);
  const record = parseRecord(value.record);
  const leafIndex = index(value.leafIndex, 'RECEIPT_MALFORMED', `${at}.leafIndex`);
  const inclusionProof = hashList(value.inclusionProof, 'RECEIPT_MALFORMED', `${at}.inclusionProof`);
  const checkpoint = value.checkpoint;
  if (typeof checkpoint !== 'string' || checkpoint.length === 0 || checkpoint.length > MAX_NOTE) {
    fail('RECEIPT_MALFORMED', `${at}.checkpoint must be a signed note string`, { field: `${at}.checkpoint` });
  }
  if (value.payment === undefined) return { record, leafIndex, inclusionProof, checkpoint };
  return {
    record,
    leafIndex,
    inclusionProof,
    checkpoint,
    payment: parseReceiptPayment(value.payment, `${at}.payment`),
  };
}

function bundleAddress(text: string, field: string): string {
  try {
    return parseAddress(text);
  } catch (cause) {
    throw new VerityError('BUNDLE_MALFORMED', `${field} is not an Ethereum address`, { cause, details: { field } });
  }
}

function parseNode(v: unknown, at: string): NodeEntry {
  if (!isObject(v)) fail('BUNDLE_MALFORMED', `${at} must be an object`);
  onlyKeys(v, ['address', 'logKey', 'stake', 'block'], 'BUNDLE_MALFORMED', at);
  if (typeof v.address !== 'string' || typeof v.logKey !== 'string') {
    fail('BUNDLE_MALFORMED', `${at} needs address and logKey`);
  }
  const address = bundleAddress(v.address, `${at}.address`);
  try {
    parseVerifierKey(v.logKey);
  } catch (cause) {
    throw new VerityError('BUNDLE_MALFORMED', `${at}.logKey is not a C2SP Ed25519 verifier key`, {
      cause,
      details: { field: `${at}.logKey` },
    });
  }
  if (v.stake !== undefined && (typeof v.stake !== 'string' || !/^(0|[1-9][0-9]{0,77})$/.test(v.stake))) {
    fail('BUNDLE_MALFORMED', `${at}.stake must be a decimal string`);
  }
  if (v.block !== undefined) index(v.block, 'BUNDLE_MALFORMED', `${at}.block`);
  return {
    address,
    logKey: v.logKey,
    ...(v.stake === undefined ? {} : { stake: v.stake as string }),
    ...(v.block === undefined ? {} : { block: v.block as number }),
  };
}

function parseConsistency(v: unknown, at: string): ConsistencyEvidence {
  if (!isObject(v)) fail('BUNDLE_MALFORMED', `${at} must be an object`);
  onlyKeys(v, ['node', 'size1', 'size2', 'proof'], 'BUNDLE_MALFORMED', at);
  if (typeof v.node !== 'string') fail('BUNDLE_MALFORMED', `${at}.node must be an address`);
  return {
    node: bundleAddress(v.node, `${at}.node`),
    size1: index(v.size1, 'BUNDLE_MALFORMED', `${at}.size1`),
    size2: index(v.size2, 'BUNDLE_MALFORMED', `${at}.size2`),
    proof: hashList(v.proof, 'BUNDLE_MALFORMED', `${at}.proof`),
  };
}

const OUTCOMES = ['agreed', 'dissent', 'skipped'] as const;
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/;
const BLOCK_HASH = /^0x[0-9a-f]{64}$/;

function parseAsked(v: unknown, at: string): QuorumAsked {
  if (!isObject(v)) fail('BUNDLE_MALFORMED', `${at} must be an object`);
  onlyKeys(v, ['address', 'outcome', 'code'], 'BUNDLE_MALFORMED', at);
  if (typeof v.address !== 'string') fail('BUNDLE_MALFORMED', `${at}.address must be an address`);
  const address = bundleAddress(v.address, `${at}.address`);
  if (!(OUTCOMES as readonly unknown[]).includes(v.outcome)) {
    fail('BUNDLE_MALFORMED', `${at}.outcome must be "agreed", "dissent" or "skipped"`, { field: `${at}.outcome` });
  }
  if (v.code !== undefined && (v.outcome !== 'skipped' || typeof v.code !== 'string' || !CODE.test(v.code))) {
    fail('BUNDLE_MALFORMED', `${at}.code is an error code, for a skipped node only`, { field: `${at}.code` });
  }
  return {
    address,
    outcome: v.outcome as QuorumAsked['outcome'],
    ...(v.code === undefined ? {} : { code: v.code as string }),
  };
}

function parseQuorum(v: unknown, at: string): QuorumEvidence {
  if (!isObject(v)) fail('BUNDLE_MALFORMED', `${at} must be an object`);
  onlyKeys(v, ['k', 'block', 'nonce', 'asked', 'dissent'], 'BUNDLE_MALFORMED', at);
  const k = index(v.k, 'BUNDLE_MALFORMED', `${at}.k`);
  if (k < 1 || k > QUORUM_MAX_K) fail('BUNDLE_MALFORMED', `${at}.k must be 1 to ${QUORUM_MAX_K}`, { field: `${at}.k` });
  const block = v.block;
  if (!isObject(block)) fail('BUNDLE_MALFORMED', `${at}.block must be an object`, { field: `${at}.block` });
  onlyKeys(block, ['number', 'hash'], 'BUNDLE_MALFORMED', `${at}.block`);
  const number = index(block.number, 'BUNDLE_MALFORMED', `${at}.block.number`);
  if (typeof block.hash !== 'string' || !BLOCK_HASH.test(block.hash)) {
    fail('BUNDLE_MALFORMED', `${at}.block.hash must be 0x and 64 lower-case hex digits`, { field: `${at}.block.hash` });
  }
  if (typeof v.nonce !== 'string' || !QUORUM_NONCE.test(v.nonce)) {
    fail('BUNDLE_MALFORMED', `${at}.nonce must be 16 to 64 bytes of lower-case hex`, { field: `${at}.nonce` });
  }
  const asked = list(v.asked, `${at}.asked`, MAX_RECEIPTS, parseAsked);
  const dissent = list(v.dissent, `${at}.dissent`, MAX_RECEIPTS, parseReceipt);
  return { k, block: { number, hash: block.hash }, nonce: v.nonce, asked, dissent };
}

function list<T>(v: unknown, at: string, max: number, item: (x: unknown, at: string) => T): T[] {
  if (!Array.isArray(v) || v.length > max) fail('BUNDLE_MALFORMED', `${at} must be an array of at most ${max}`);
  return v.map((x, i) => item(x, `${at}[${i}]`));
}

/**
 * Validates an untrusted value (parsed JSON) as a {@link Bundle}. Throws `BUNDLE_MALFORMED`,
 * `BUNDLE_VERSION_UNSUPPORTED`, `BUNDLE_EMPTY`, or a receipt/record code for a bad receipt.
 *
 * @example
 * ```ts
 * const bundle = parseBundle(JSON.parse(await readFile('bundle.json', 'utf8')));
 * ```
 */
export function parseBundle(value: unknown): Bundle {
  if (!isObject(value)) fail('BUNDLE_MALFORMED', 'bundle must be a JSON object');
  if (value.mediaType !== BUNDLE_MEDIA_TYPE) {
    fail('BUNDLE_VERSION_UNSUPPORTED', 'unsupported bundle media type', {
      mediaType: value.mediaType,
      supported: BUNDLE_MEDIA_TYPE,
    });
  }
  onlyKeys(
    value,
    ['mediaType', 'receipts', 'nodes', 'consistency', 'input', 'output', 'zk', 'quorum', 'registryProof'],
    'BUNDLE_MALFORMED',
    'bundle',
  );
  const receipts = list(value.receipts, 'bundle.receipts', MAX_RECEIPTS, parseReceipt);
  if (receipts.length === 0) fail('BUNDLE_EMPTY', 'bundle has no receipts');
  return {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipts,
    ...(value.nodes === undefined ? {} : { nodes: list(value.nodes, 'bundle.nodes', MAX_RECEIPTS, parseNode) }),
    ...(value.consistency === undefined
      ? {}
      : { consistency: list(value.consistency, 'bundle.consistency', MAX_RECEIPTS, parseConsistency) }),
    ...(value.input === undefined ? {} : { input: value.input }),
    ...(value.output === undefined ? {} : { output: value.output }),
    ...(value.zk === undefined ? {} : { zk: parseZkEvidence(value.zk) }),
    ...(value.quorum === undefined ? {} : { quorum: parseQuorum(value.quorum, 'bundle.quorum') }),
    ...(value.registryProof === undefined ? {} : { registryProof: parseRegistryProof(value.registryProof) }),
  };
}

/**
 * Parses bundle text (JSON). Non-JSON input throws `JSON_INVALID`.
 *
 * @example
 * ```ts
 * const bundle = bundleFromJson(text);
 * ```
 */
export function bundleFromJson(text: string): Bundle {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new VerityError('JSON_INVALID', 'bundle is not valid JSON', { cause });
  }
  return parseBundle(value);
}

/** Decodes a list of hex hashes already validated by the parsers above. */
export function proofFromHex(proof: readonly string[]): Uint8Array[] {
  return proof.map((h) => fromHex(h));
}
