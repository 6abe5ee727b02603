/**
 * The model manifest (docs/design.md §2.1): what a model is (name, version, format, the artifact's CID
 * and size, its input and output signatures, execution profiles) and who publishes it. Its
 * identity is the CIDv1 (codec json, sha2-256) of its RFC 8785 canonical JSON bytes, and the
 * publisher signs that CID with EIP-191 `personal_sign`.
 *
 * Parsing is strict: unknown fields, wrong types and out-of-range values are all
 * `MANIFEST_INVALID` with `details.path`, a JSON Pointer (RFC 6901) to the offending value.
 */
import { canonicalJsonBytes } from './canonical-json.js';
import {
  type Cid,
  CODEC_DAG_PB,
  CODEC_JSON,
  CODEC_RAW,
  cidForBytes,
  formatCid,
  parseCid,
  UNIXFS_CHUNK_SIZE,
} from './cid.js';
import { fail, isVerityError } from './errors.js';
import { addressFromPrivateKey, parseAddress, personalSign, recoverPersonalSigner } from './eth.js';
import { DTYPES, type DType, isDType, isTensorName, MAX_TENSOR_NAME_BYTES, MAX_TENSOR_RANK } from './tensor.js';
import type { TensorSignature } from './tensor-signature.js';

// A manifest's signatures are the ones calls are checked against (tensor-signature.ts), with the
// same dtypes and name rules as tensors themselves (tensor.ts, docs/design.md §2.2).
export type { TensorSignature };

/** The `schema` value of a version-1 manifest. */
export const MANIFEST_SCHEMA = 'verity.manifest/v1';

/** Model file formats (docs/design.md §2.1). */
export const MANIFEST_FORMATS = ['onnx', 'gguf'] as const;
/** A model file format. */
export type ManifestFormat = (typeof MANIFEST_FORMATS)[number];

/** The artifact a manifest describes: the model file, by content. */
export interface ManifestArtifact {
  /** UnixFS CID of the file, as `ipfs add --cid-version 1 --raw-leaves --chunker size-1048576`. */
  cid: string;
  /** File size in bytes. */
  size: number;
}

/** A model manifest, version 1. */
export interface Manifest {
  schema: typeof MANIFEST_SCHEMA;
  /** `[a-z0-9][a-z0-9._-]{0,63}`: usable as a file name and in a `name@version` reference. */
  name: string;
  /** Semantic Versioning 2.0.0 (`1.2.0`, `2.0.0-rc.1`). */
  version: string;
  format: ManifestFormat;
  artifact: ManifestArtifact;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** Execution profiles the model is published for, e.g. `native`, `portable` (docs/design.md §2.6). */
  profiles: string[];
  /** SPDX license expression or name. */
  license?: string;
  description?: string;
  /** EIP-55 address of the publisher, whose key signs the manifest CID. */
  publisher: string;
  /** RFC 3339 UTC timestamp, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`. */
  createdAt: string;
  /** Free-form string facts (for GGUF: architecture, context length, quantization…). */
  metadata?: Record<string, string>;
}

/** A manifest with its publisher's signature; the JSON form that travels. */
export interface SignedManifest {
  manifest: Manifest;
  /** EIP-191 `personal_sign` by `manifest.publisher` over the UTF-8 of the manifest CID text. */
  signature: string;
}

/** Bounds on every list and string of a manifest, so that hostile input stays small. */
export const MANIFEST_LIMITS = {
  /** Inputs, and separately outputs. */
  tensors: 1024,
  /** Characters of a symbolic dimension name. */
  dimName: 64,
  profiles: 16,
  license: 256,
  description: 4096,
  metadataEntries: 256,
  metadataKey: 128,
  metadataValue: 65536,
} as const;

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// The regular expression suggested by semver.org (Semantic Versioning 2.0.0, FAQ).
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const PROFILE_RE = /^[a-z][a-z0-9-]{0,31}$/;
// A symbolic dimension is an identifier, so it cannot be mistaken for a number.
const DIM_RE = /^[A-Za-z_][A-Za-z0-9_.:-]*$/;
const METADATA_KEY_RE = /^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/;
// RFC 3339 §5.6 date-time, restricted to UTC ("Z", upper case) and upper-case "T".
const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?Z$/;

function invalid(path: string, message: string): never {
  return fail('MANIFEST_INVALID', message, { path });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function object(value: unknown, path: string, required: readonly string[], optional: readonly string[] = []) {
  if (!isPlainObject(value)) invalid(path, 'expected an object');
  for (const key of Object.keys(value)) {
    if (!required.includes(key) && !optional.includes(key))
      invalid(`${path}/${pointer(key)}`, `unknown field "${key}"`);
  }
  for (const key of required) if (!Object.hasOwn(value, key)) invalid(`${path}/${key}`, `missing field "${key}"`);
  return value;
}

function pointer(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
const CONTROL_RE = /[\u0000-\u001f\u007f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: as above, but tab and line feed pass
const CONTROL_BUT_LINES_RE = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/**
 * A well-formed string (no lone surrogates, no control characters except, with `multiline`, tab
 * and line feed) of 1..max UTF-16 units.
 */
function text(value: unknown, path: string, max: number, multiline = false): string {
  if (typeof value !== 'string') return invalid(path, 'expected a string');
  if (value.length === 0 || value.length > max) invalid(path, `expected 1 to ${max} characters`);
  if ((multiline ? CONTROL_BUT_LINES_RE : CONTROL_RE).test(value)) invalid(path, 'control characters are not allowed');
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(value)) {
    invalid(path, 'lone surrogate (not valid Unicode)');
  }
  return value;
}

function matching(value: unknown, path: string, re: RegExp, what: string): string {
  if (typeof value !== 'string' || !re.test(value)) return invalid(path, `expected ${what}`);
  return value;
}

function array(value: unknown, path: string, max: number): unknown[] {
  if (!Array.isArray(value)) return invalid(path, 'expected an array');
  if (value.length > max) invalid(path, `at most ${max} entries`);
  return value;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function timestamp(value: unknown, path: string): string {
  const m = typeof value === 'string' ? TIMESTAMP_RE.exec(value) : null;
  if (m === null) return invalid(path, 'expected an RFC 3339 UTC timestamp, e.g. 2025-01-31T12:00:00Z');
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  // Leap seconds (60) are refused: nothing in Verity needs them and many parsers reject them.
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    invalid(path, 'timestamp is not a real date and time');
  }
  return value as string;
}

function tensorSignatures(value: unknown, path: string): TensorSignature[] {
  const names = new Set<string>();
  return array(value, path, MANIFEST_LIMITS.tensors).map((entry, i) => {
    const p = `${path}/${i}`;
    const o = object(entry, p, ['name', 'dtype', 'shape']);
    if (!isTensorName(o.name)) {
      invalid(`${p}/name`, `a tensor name is 1 to ${MAX_TENSOR_NAME_BYTES} bytes of UTF-8 without control characters`);
    }
    const name = o.name;
    if (names.has(name)) invalid(`${p}/name`, `duplicate tensor name "${name}"`);
    names.add(name);
    if (!isDType(o.dtype)) invalid(`${p}/dtype`, `expected one of ${DTYPES.join(', ')}`);
    const shape = array(o.shape, `${p}/shape`, MAX_TENSOR_RANK).map((dim, j) => {
      if (typeof dim === 'number') {
        if (!Number.isSafeInteger(dim) || dim < 0 || Object.is(dim, -0)) {
          invalid(`${p}/shape/${j}`, 'a dimension is a non-negative integer or a symbolic name');
        }
        return dim;
      }
      if (typeof dim === 'string' && dim.length <= MANIFEST_LIMITS.dimName && DIM_RE.test(dim)) return dim;
      return invalid(`${p}/shape/${j}`, 'a dimension is a non-negative integer or a symbolic name');
    });
    return { name, dtype: o.dtype as DType, shape };
  });
}

function artifact(value: unknown, path: string): ManifestArtifact {
  const o = object(value, path, ['cid', 'size']);
  let cid: Cid;
  try {
    cid = parseCid(o.cid as string);
  } catch (e) {
    return invalid(`${path}/cid`, isVerityError(e) ? `invalid CID: ${e.message}` : 'invalid CID');
  }
  const size = o.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    return invalid(`${path}/size`, 'expected a non-negative integer number of bytes');
  }
  // A file's UnixFS root is a raw block exactly when the file fits in one chunk (docs/design.md §2.1),
  // so the codec and the size must agree; a json CID cannot be a file at all.
  if (cid.codec === CODEC_RAW ? size > UNIXFS_CHUNK_SIZE : cid.codec !== CODEC_DAG_PB || size <= UNIXFS_CHUNK_SIZE) {
    invalid(`${path}/cid`, 'CID codec does not fit the size: raw up to 1 MiB, dag-pb above');
  }
  return { cid: o.cid as string, size };
}

/**
 * Validates an untrusted value (typically `JSON.parse` output) as a version-1 manifest and returns
 * a fresh copy holding only the manifest fields. Every rule:
 *
 * - no fields beyond those of {@link Manifest}; `schema` is `"verity.manifest/v1"`;
 * - `name` matches `[a-z0-9][a-z0-9._-]{0,63}` (no path separators, no upper case);
 * - `version` is Semantic Versioning 2.0.0; `format` is `onnx` or `gguf`;
 * - `artifact.cid` is a CIDv1 raw (size ≤ 1 MiB) or dag-pb (size > 1 MiB); `artifact.size` a
 *   non-negative integer;
 * - `inputs` / `outputs`: at most 1024 each, unique tensor names (as tensors have them: 1..256
 *   bytes of UTF-8, no control characters), the twelve dtypes, shapes of at most 255 dimensions,
 *   each a non-negative integer or an identifier-like symbolic name (`batch`, `seq_len`) of at
 *   most 64 characters;
 * - `profiles`: 1 to 16 unique names matching `[a-z][a-z0-9-]{0,31}`;
 * - `publisher`: an address in its exact EIP-55 form (so one address has one spelling and one CID);
 * - `createdAt`: RFC 3339 `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, a real UTC date and time;
 * - `license`, `description`, `metadata` values: non-empty, valid Unicode, no control characters
 *   (tab and line feed allowed in `description` and `metadata` values);
 * - every list and string within {@link MANIFEST_LIMITS}.
 *
 * @example
 * ```ts
 * const manifest = parseManifest(JSON.parse(text)); // throws MANIFEST_INVALID, details.path says where
 * ```
 */
export function parseManifest(json: unknown): Manifest {
  const o = object(
    json,
    '',
    ['schema', 'name', 'version', 'format', 'artifact', 'inputs', 'outputs', 'profiles', 'publisher', 'createdAt'],
    ['license', 'description', 'metadata'],
  );
  if (o.schema !== MANIFEST_SCHEMA) invalid('/schema', `expected "${MANIFEST_SCHEMA}"`);
  const name = matching(o.name, '/name', NAME_RE, 'a lower-case name [a-z0-9][a-z0-9._-]{0,63}');
  const version = matching(o.version, '/version', SEMVER_RE, 'a semantic version such as 1.2.0');
  if (version.length > 64) invalid('/version', 'at most 64 characters');
  if (!(MANIFEST_FORMATS as readonly unknown[]).includes(o.format)) invalid('/format', 'expected "onnx" or "gguf"');

  const profiles = array(o.profiles, '/profiles', MANIFEST_LIMITS.profiles).map((p, i) =>
    matching(p, `/profiles/${i}`, PROFILE_RE, 'a profile name [a-z][a-z0-9-]{0,31}'),
  );
  if (profiles.length === 0) invalid('/profiles', 'at least one execution profile');
  profiles.forEach((p, i) => {
    if (profiles.indexOf(p) !== i) invalid(`/profiles/${i}`, `duplicate profile "${p}"`);
  });

  let publisher: string;
  try {
    publisher = parseAddress(o.publisher as string);
  } catch {
    return invalid('/publisher', 'expected an Ethereum address');
  }
  if (publisher !== o.publisher) invalid('/publisher', `expected the EIP-55 form ${publisher}`);

  const manifest: Manifest = {
    schema: MANIFEST_SCHEMA,
    name,
    version,
    format: o.format as ManifestFormat,
    artifact: artifact(o.artifact, '/artifact'),
    inputs: tensorSignatures(o.inputs, '/inputs'),
    outputs: tensorSignatures(o.outputs, '/outputs'),
    profiles,
    publisher,
    createdAt: timestamp(o.createdAt, '/createdAt'),
  };
  if (Object.hasOwn(o, 'license')) manifest.license = text(o.license, '/license', MANIFEST_LIMITS.license);
  if (Object.hasOwn(o, 'description'))
    manifest.description = text(o.description, '/description', MANIFEST_LIMITS.description, true);
  if (Object.hasOwn(o, 'metadata')) {
    if (!isPlainObject(o.metadata)) return invalid('/metadata', 'expected an object of strings');
    const entries = Object.entries(o.metadata);
    if (entries.length > MANIFEST_LIMITS.metadataEntries) invalid('/metadata', 'too many entries');
    const metadata: Record<string, string> = {};
    for (const [key, value] of entries) {
      const p = `/metadata/${pointer(key)}`;
      if (key.length > MANIFEST_LIMITS.metadataKey || !METADATA_KEY_RE.test(key)) invalid(p, 'invalid metadata key');
      // `__proto__` would be dropped by assignment to a plain object (changing the CID silently).
      if (key === '__proto__') invalid(p, 'reserved metadata key');
      metadata[key] = text(value, p, MANIFEST_LIMITS.metadataValue, true);
    }
    manifest.metadata = metadata;
  }
  return manifest;
}

/**
 * The bytes that identify a manifest: its RFC 8785 canonical JSON, UTF-8. The manifest is
 * validated first, so only valid manifests get bytes (and a CID).
 *
 * @example
 * ```ts
 * new TextDecoder().decode(manifestBytes(m)); // '{"artifact":{"cid":"bafy…","size":…},"createdAt":…'
 * ```
 */
export function manifestBytes(manifest: Manifest): Uint8Array {
  return canonicalJsonBytes(parseManifest(manifest));
}

/**
 * The manifest's identity (docs/design.md §2.1): CIDv1, codec json (0x0200), sha2-256 of
 * {@link manifestBytes}. Key order and whitespace of the JSON it came from do not matter.
 *
 * @example
 * ```ts
 * manifestCid(m); // 'bagaaiera…'
 * ```
 */
export function manifestCid(manifest: Manifest): string {
  return formatCid(cidForBytes(CODEC_JSON, manifestBytes(manifest)));
}

/**
 * Signs a manifest with the publisher's key: EIP-191 `personal_sign` over the UTF-8 bytes of the
 * manifest CID text (`bagaaiera…`).
 *
 * Why the CID text: it commits to the canonical bytes, a wallet shows it to the person signing as
 * readable text instead of an opaque hash, and a contract (the model registry, docs/design.md §2.7)
 * checks it with one `ecrecover` over a fixed-length message, without parsing JSON on chain. The
 * json codec and the `schema` field inside the bytes say what was signed.
 *
 * Throws `INVALID_ARGUMENT` when the key is not the publisher's: such a signature could never
 * verify.
 *
 * @example
 * ```ts
 * const signed = signManifest(manifest, publisherKey); // { manifest, signature: '0x…' }
 * ```
 */
export function signManifest(manifest: Manifest, privateKey: Uint8Array | string): SignedManifest {
  const m = parseManifest(manifest);
  if (addressFromPrivateKey(privateKey) !== m.publisher) {
    fail('INVALID_ARGUMENT', 'the private key is not the key of manifest.publisher', { publisher: m.publisher });
  }
  return { manifest: m, signature: personalSign(manifestCid(m), privateKey) };
}

/**
 * Checks a signed manifest, given as untrusted JSON: exactly `{ manifest, signature }`, a valid
 * manifest (else `MANIFEST_INVALID`, with `details.path` under `/manifest`), and a signature by
 * `manifest.publisher` over its CID (else `MANIFEST_SIGNATURE_INVALID`). Returns the manifest.
 *
 * @example
 * ```ts
 * const manifest = verifySignedManifest(JSON.parse(body)); // trusted from here on
 * ```
 */
export function verifySignedManifest(signed: unknown): Manifest {
  const o = object(signed, '', ['manifest', 'signature']);
  let manifest: Manifest;
  try {
    manifest = parseManifest(o.manifest);
  } catch (e) {
    if (isVerityError(e, 'MANIFEST_INVALID')) {
      return fail('MANIFEST_INVALID', e.message, { ...e.details, path: `/manifest${e.details.path as string}` });
    }
    throw e;
  }
  const cid = manifestCid(manifest);
  let signer: string;
  try {
    signer = recoverPersonalSigner(cid, o.signature as string);
  } catch (e) {
    return fail('MANIFEST_SIGNATURE_INVALID', 'malformed manifest signature', {
      path: '/signature',
      reason: isVerityError(e) ? e.message : 'invalid signature',
    });
  }
  if (signer !== manifest.publisher) {
    fail('MANIFEST_SIGNATURE_INVALID', 'manifest signature is not by the publisher', {
      path: '/signature',
      publisher: manifest.publisher,
      signer,
      cid,
    });
  }
  return manifest;
}
