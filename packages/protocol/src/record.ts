/**
 * The inference record: one per inference, the statement a node signs into its log
 * (docs/protocol.md §5). Its binary encoding is fixed-layout and big-endian so a Solidity contract
 * can rebuild it with `abi.encodePacked`; the log leaf is `SHA-256(0x00 ‖ bytes)` (RFC 6962).
 */
import { concatBytes, equalBytes, fromHex, toHex } from './bytes.js';
import { canonicalJsonBytes, type JsonValue } from './canonical-json.js';
import { type Cid, CODEC_JSON, cidFromBytes, cidToBytes, formatCid, parseCid } from './cid.js';
import { fail, VerityError } from './errors.js';
import { parseAddress, toChecksumAddress } from './eth.js';
import { sha256 } from './hash.js';
import { hashLeaf } from './merkle.js';
import { type PaymentCommitment, parsePaymentCommitment } from './payment.js';

/** Record format version this code writes and reads. */
export const RECORD_VERSION = 1;

/** What ran. Codes are the enum values in the binary form; never renumbered. */
export const RECORD_KINDS = ['onnx', 'llm', 'zk'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** Verification mode of the request (docs/design.md §2.6). */
export const RECORD_MODES = ['signed', 'quorum', 'audited', 'zk', 'tee'] as const;
export type RecordMode = (typeof RECORD_MODES)[number];

/** The runtime that executed the model, and its execution profile. */
export interface RuntimeInfo {
  /** e.g. `onnxruntime-node`, `onnxruntime-web`, `node-llama-cpp`, `snarkjs`. */
  readonly id: string;
  /** The runtime's version, e.g. `1.30.0`. */
  readonly version: string;
  /** Execution profile, e.g. `native` or `portable`. */
  readonly profile: string;
}

/** An inference record in its JSON form. Digests are lower-case hex (64 chars). */
export interface InferenceRecord {
  readonly version: 1;
  readonly kind: RecordKind;
  readonly mode: RecordMode;
  /** Manifest CID of the model (CIDv1, base32). */
  readonly model: string;
  readonly runtime: RuntimeInfo;
  /** SHA-256 of the canonical input (for `onnx`: the tensor encoding of docs/protocol.md §2). */
  readonly inputDigest: string;
  /** SHA-256 of the canonical output. */
  readonly outputDigest: string;
  /** {@link paramsDigest} of the parameters (sampling, seed, limits); `paramsDigest({})` if none. */
  readonly paramsDigest: string;
  /** Request identifier chosen by the node or the caller: 1–64 of `[A-Za-z0-9._:-]`. */
  readonly requestId: string;
  /** Optional caller nonce, lower-case hex, 1–64 bytes. */
  readonly clientNonce?: string;
  /** Milliseconds since the Unix epoch when the node produced the output. */
  readonly timestamp: number;
  /** The node's Ethereum account (EIP-55). */
  readonly node: string;
  /**
   * A paid request (docs/protocol.md §17): the EIP-712 digest of the payer's authorization and
   * the atomic units charged, so the record proves what was paid for this answer.
   */
  readonly payment?: PaymentCommitment;
}

const MAGIC = [0x56, 0x52, 0x45, 0x43]; // "VREC"
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
const PRINTABLE = /^[\x21-\x7e]+$/;
const DIGEST = /^[0-9a-f]{64}$/;
const NONCE = /^(?:[0-9a-f]{2}){1,64}$/;
const FIELDS = new Set([
  'version',
  'kind',
  'mode',
  'model',
  'runtime',
  'inputDigest',
  'outputDigest',
  'paramsDigest',
  'requestId',
  'clientNonce',
  'timestamp',
  'node',
  'payment',
]);

/** Model CIDs already found valid: a node logs many records for few models (strings are immutable). */
const validModels = new Set<string>();

/** Records returned by {@link parseRecord}: frozen and known valid, so never re-validated. */
const validated = new WeakSet<object>();

/**
 * Node addresses already parsed, text → EIP-55 form: a log names one node and a verifier sees few
 * (strings are immutable, so a hit is exactly the earlier result).
 */
const validNodes = new Map<string, string>();

/**
 * The last runtime parsed (frozen): a node logs every record with the same runtime, so an equal
 * one reuses it instead of checking and freezing a new object (the result is equal either way).
 */
let lastRuntime: RuntimeInfo | undefined;

function invalid(field: string, message: string): never {
  return fail('RECORD_INVALID', `record.${field}: ${message}`, { field });
}

function short(field: string, value: unknown, max: number): string {
  if (typeof value !== 'string' || value.length > max || !PRINTABLE.test(value)) {
    invalid(field, `must be 1–${max} printable ASCII characters`);
  }
  return value;
}

/**
 * Validates an untrusted value as an {@link InferenceRecord}: every field present, typed and in
 * range, no unknown fields. Throws `RECORD_INVALID` with `details.field`.
 *
 * @example
 * ```ts
 * const record = parseRecord(JSON.parse(text).record);
 * ```
 */
export function parseRecord(value: unknown): InferenceRecord {
  if (validated.has(value as object)) return value as InferenceRecord;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid('', 'must be an object');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!FIELDS.has(k)) invalid(k, 'unknown field');
  if (v.version !== RECORD_VERSION) invalid('version', `must be ${RECORD_VERSION}`);
  if (!RECORD_KINDS.includes(v.kind as RecordKind)) invalid('kind', `must be one of ${RECORD_KINDS.join(', ')}`);
  if (!RECORD_MODES.includes(v.mode as RecordMode)) invalid('mode', `must be one of ${RECORD_MODES.join(', ')}`);
  if (typeof v.model !== 'string') invalid('model', 'must be a CID string');
  if (!validModels.has(v.model)) {
    let cid: Cid;
    try {
      cid = parseCid(v.model);
    } catch (cause) {
      throw new VerityError('RECORD_INVALID', 'record.model: not a valid CID', { cause, details: { field: 'model' } });
    }
    // Only the canonical text form (CIDv1, base32 lower) is accepted: one string per CID.
    if (formatCid(cid) !== v.model) invalid('model', 'CID is not in canonical form');
    // The record names the model by its manifest (docs/protocol.md §4.2), never by a bare file.
    if (cid.codec !== CODEC_JSON) invalid('model', 'must be a manifest CID (codec json)');
    if (validModels.size >= 1024) validModels.clear();
    validModels.add(v.model);
  }
  const rt = v.runtime;
  if (typeof rt !== 'object' || rt === null || Array.isArray(rt)) invalid('runtime', 'must be an object');
  const r = rt as Record<string, unknown>;
  for (const k of Object.keys(r))
    if (k !== 'id' && k !== 'version' && k !== 'profile') invalid(`runtime.${k}`, 'unknown field');
  let runtime = lastRuntime;
  if (runtime === undefined || r.id !== runtime.id || r.version !== runtime.version || r.profile !== runtime.profile) {
    runtime = Object.freeze({
      id: short('runtime.id', r.id, 64),
      version: short('runtime.version', r.version, 64),
      profile: short('runtime.profile', r.profile, 32),
    });
    lastRuntime = runtime;
  }
  for (const f of ['inputDigest', 'outputDigest', 'paramsDigest'] as const) {
    if (typeof v[f] !== 'string' || !DIGEST.test(v[f] as string)) invalid(f, 'must be 64 lower-case hex characters');
  }
  if (typeof v.requestId !== 'string' || !REQUEST_ID.test(v.requestId))
    invalid('requestId', 'must match [A-Za-z0-9._:-]{1,64}');
  if (v.clientNonce !== undefined && (typeof v.clientNonce !== 'string' || !NONCE.test(v.clientNonce))) {
    invalid('clientNonce', 'must be 1–64 bytes of lower-case hex');
  }
  if (typeof v.timestamp !== 'number' || !Number.isSafeInteger(v.timestamp) || v.timestamp < 0) {
    invalid('timestamp', 'must be a non-negative integer (ms since epoch)');
  }
  if (typeof v.node !== 'string') invalid('node', 'must be an address');
  let node = validNodes.get(v.node);
  if (node === undefined) {
    try {
      node = parseAddress(v.node);
    } catch (cause) {
      throw new VerityError('RECORD_INVALID', 'record.node: not a valid address', {
        cause,
        details: { field: 'node' },
      });
    }
    if (validNodes.size >= 1024) validNodes.clear();
    validNodes.set(v.node, node);
  }
  // Two literals rather than a spread: the same fields in the same order, without a temporary object.
  // A paid record (rare next to the free ones a node logs) takes the spread below.
  const record: InferenceRecord = Object.freeze(
    v.payment !== undefined
      ? {
          version: RECORD_VERSION,
          kind: v.kind as RecordKind,
          mode: v.mode as RecordMode,
          model: v.model,
          runtime,
          inputDigest: v.inputDigest as string,
          outputDigest: v.outputDigest as string,
          paramsDigest: v.paramsDigest as string,
          requestId: v.requestId,
          ...(v.clientNonce === undefined ? {} : { clientNonce: v.clientNonce as string }),
          timestamp: v.timestamp,
          node,
          payment: Object.freeze(parsePaymentCommitment(v.payment)),
        }
      : v.clientNonce === undefined
        ? {
            version: RECORD_VERSION,
            kind: v.kind as RecordKind,
            mode: v.mode as RecordMode,
            model: v.model,
            runtime,
            inputDigest: v.inputDigest as string,
            outputDigest: v.outputDigest as string,
            paramsDigest: v.paramsDigest as string,
            requestId: v.requestId,
            timestamp: v.timestamp,
            node,
          }
        : {
            version: RECORD_VERSION,
            kind: v.kind as RecordKind,
            mode: v.mode as RecordMode,
            model: v.model,
            runtime,
            inputDigest: v.inputDigest as string,
            outputDigest: v.outputDigest as string,
            paramsDigest: v.paramsDigest as string,
            requestId: v.requestId,
            clientNonce: v.clientNonce as string,
            timestamp: v.timestamp,
            node,
          },
  );
  validated.add(record);
  return record;
}

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/**
 * Canonical binary encoding of a record (docs/protocol.md §5.2):
 *
 * ```
 * "VREC" ‖ u8 version ‖ u8 kind ‖ u8 mode ‖ u64 timestamp ‖ 20 node ‖ 32 inputDigest ‖
 * 32 outputDigest ‖ 32 paramsDigest ‖ then, each as u8 length ‖ bytes: requestId, model (binary
 * CID), runtime.id, runtime.version, runtime.profile, clientNonce (length 0 = absent), and only
 * for a paid record a seventh: payment = 32 digest ‖ 32 amount (uint256, big-endian), length 64
 * ```
 *
 * @example
 * ```ts
 * const leaf = hashLeaf(encodeRecord(record));
 * ```
 */
export function encodeRecord(record: InferenceRecord): Uint8Array {
  const r = parseRecord(record);
  const vars = [
    ascii(r.requestId),
    cidToBytes(parseCid(r.model)),
    ascii(r.runtime.id),
    ascii(r.runtime.version),
    ascii(r.runtime.profile),
    r.clientNonce === undefined ? new Uint8Array(0) : fromHex(r.clientNonce),
  ];
  if (r.payment !== undefined) {
    vars.push(concatBytes(fromHex(r.payment.digest), fromHex(BigInt(r.payment.amount).toString(16).padStart(64, '0'))));
  }
  for (const b of vars) if (b.length > 255) fail('RECORD_INVALID', 'variable field longer than 255 bytes');
  const fixed = 4 + 3 + 8 + 20 + 96;
  const out = new Uint8Array(fixed + vars.reduce((n, b) => n + 1 + b.length, 0));
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = RECORD_VERSION;
  out[5] = RECORD_KINDS.indexOf(r.kind);
  out[6] = RECORD_MODES.indexOf(r.mode);
  dv.setBigUint64(7, BigInt(r.timestamp));
  out.set(fromHex(r.node), 15);
  out.set(fromHex(r.inputDigest), 35);
  out.set(fromHex(r.outputDigest), 67);
  out.set(fromHex(r.paramsDigest), 99);
  let o = fixed;
  for (const b of vars) {
    out[o++] = b.length;
    out.set(b, o);
    o += b.length;
  }
  return out;
}

/**
 * Decodes the binary form; strict: exactly one byte string per record, so decode∘encode and
 * encode∘decode are identities. Throws `RECORD_ENCODING_INVALID`.
 *
 * @example
 * ```ts
 * const record = decodeRecord(bytes);
 * ```
 */
export function decodeRecord(bytes: Uint8Array): InferenceRecord {
  const bad = (message: string): never => fail('RECORD_ENCODING_INVALID', message);
  if (!(bytes instanceof Uint8Array)) bad('record bytes must be a Uint8Array');
  const fixed = 4 + 3 + 8 + 20 + 96;
  if (bytes.length < fixed + 6) bad('record is too short');
  for (let i = 0; i < 4; i++) if (bytes[i] !== MAGIC[i]) bad('bad magic');
  if (bytes[4] !== RECORD_VERSION) bad('unsupported record version');
  const kind = RECORD_KINDS[bytes[5] as number];
  const mode = RECORD_MODES[bytes[6] as number];
  if (kind === undefined) bad('unknown kind');
  if (mode === undefined) bad('unknown mode');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ts = dv.getBigUint64(7);
  if (ts > BigInt(Number.MAX_SAFE_INTEGER)) bad('timestamp out of range');
  let o = fixed;
  const next = (): Uint8Array => {
    if (o >= bytes.length) bad('record is truncated');
    const n = bytes[o] as number;
    if (o + 1 + n > bytes.length) bad('record is truncated');
    const b = bytes.subarray(o + 1, o + 1 + n);
    o += 1 + n;
    return b;
  };
  const text = (b: Uint8Array): string => String.fromCharCode(...b);
  const [requestId, model, rid, rver, rprof, nonce] = [next(), next(), next(), next(), next(), next()];
  // A seventh field is the payment commitment (docs/protocol.md §5.2): exactly 64 bytes.
  const paid = o < bytes.length ? next() : undefined;
  if (paid !== undefined && paid.length !== 64) bad('payment field must be 64 bytes');
  if (o !== bytes.length) bad('trailing bytes after record');
  let modelCid: string;
  try {
    modelCid = formatCid(cidFromBytes(model));
  } catch (cause) {
    throw new VerityError('RECORD_ENCODING_INVALID', 'model is not a valid CID', { cause });
  }
  const json = {
    version: RECORD_VERSION,
    kind,
    mode,
    model: modelCid,
    runtime: { id: text(rid), version: text(rver), profile: text(rprof) },
    inputDigest: toHex(bytes.subarray(35, 67)),
    outputDigest: toHex(bytes.subarray(67, 99)),
    paramsDigest: toHex(bytes.subarray(99, 131)),
    requestId: text(requestId),
    ...(nonce.length === 0 ? {} : { clientNonce: toHex(nonce) }),
    timestamp: Number(ts),
    node: toChecksumAddress(bytes.subarray(15, 35)),
    ...(paid === undefined
      ? {}
      : {
          payment: { digest: toHex(paid.subarray(0, 32)), amount: BigInt(`0x${toHex(paid.subarray(32))}`).toString() },
        }),
  };
  let record: InferenceRecord;
  try {
    record = parseRecord(json);
  } catch (cause) {
    throw new VerityError('RECORD_ENCODING_INVALID', 'record fields are invalid', { cause });
  }
  // Reject any alternative byte form of the same record (e.g. a non-canonical CID).
  if (!equalBytes(encodeRecord(record), bytes)) bad('non-canonical record encoding');
  return record;
}

/**
 * The `paramsDigest` of a record: SHA-256 of the RFC 8785 canonical JSON of the parameters that
 * shaped the output (sampling settings, seed, limits), lower-case hex. A run without parameters
 * (plain ONNX inference) digests `{}`.
 *
 * @example
 * ```ts
 * paramsDigest({}) // '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a'
 * paramsDigest({ seed: 7, temperature: 0.5 })
 * ```
 */
export function paramsDigest(params: { readonly [key: string]: JsonValue } = {}): string {
  return toHex(sha256(canonicalJsonBytes(params)));
}

/**
 * The record's log leaf hash, `SHA-256(0x00 ‖ encodeRecord(record))`.
 *
 * @example
 * ```ts
 * verifyInclusion(recordLeafHash(record), leafIndex, size, proof, root);
 * ```
 */
export function recordLeafHash(record: InferenceRecord): Uint8Array {
  return hashLeaf(encodeRecord(record));
}
