/**
 * Mode `zk` (docs/design.md §2.6), the part that needs no proof system: what a zk manifest commits to,
 * the bundle's `zk` member and its strict parsing, the verification-key digest, and the exact
 * correspondence between a proof's public signals and the tensors in a bundle. Pure and
 * browser-safe: the Groth16 pairing check itself is done by the SDK (snarkjs).
 *
 * Public signals are `[...out, ...in]`, BN254 field elements as canonical decimal strings; a
 * signed integer v is v mod p (negative values are p − |v|). Every value is fixed point at scale
 * 2^fracBits: an input x is round(x · 2^s) (half up), an output integer q is the float q / 2^s.
 *
 * The output of a `zk` inference is **the circuit's output**, as tensors decoded from the public
 * signals ({@link zkOutputTensors}): each proved tensor as float64 (q / 2^s, exact), shape
 * `[1, ...shape]`, and each ArgMax of the model's head as int64 (computed from the proved
 * integers: first maximum). Softmax outputs are not part of it (exp is not bit-exact across
 * engines); a caller computes them from the logits. The record's outputDigest is over these
 * tensors, so the proof and the logged output stand or fall together.
 */
import { toHex } from './bytes.js';
import { canonicalJsonBytes } from './canonical-json.js';
import { parseCid } from './cid.js';
import { fail, isVerityError } from './errors.js';
import { parseAddress } from './eth.js';
import { sha256 } from './hash.js';
import { type Manifest, parseManifest, type SignedManifest } from './manifest.js';
import { createTensor, type TensorMap } from './tensor.js';
import { encodeTensors } from './tensor-encoding.js';

/** The order of BN254's scalar field (circom's default prime, snarkjs' `bn128`). */
export const ZK_FIELD_PRIME = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const FIELD_HALF = (ZK_FIELD_PRIME - 1n) / 2n;

/**
 * Who made a Groth16 key pair: `local-dev` (one party made the circuit-specific phase 2: it could
 * forge proofs; tests only, and a verifier accepts it only when told to) or `multi-party` (a phase-2
 * ceremony recorded on chain and finished with a beacon, over a phase 1 no single party made:
 * sound if one contributor of each phase was honest).
 */
export const ZK_SETUPS = ['local-dev', 'multi-party'] as const;
export type ZkSetup = (typeof ZK_SETUPS)[number];

/**
 * Where the phase 1 (powers of tau) came from: a `verity ceremony` recorded on chain (the
 * `Ceremony` contract at `address` on `chainId`, ceremony `id`), a public ceremony's file (its
 * SHA-256), or `local-dev` (one local contributor: forgeable).
 */
export type ZkPhase1 =
  | { readonly kind: 'ceremony'; readonly chainId: number; readonly address: string; readonly id: string }
  | { readonly kind: 'file'; readonly sha256: string }
  | { readonly kind: 'local-dev' };

/** The phase-2 (circuit-specific) ceremony of a `multi-party` setup: `Ceremony` contract and ceremony id. */
export interface ZkPhase2 {
  readonly chainId: number;
  readonly address: string;
  readonly id: string;
}

/** The runtime a `zk` record names. */
export const ZK_RUNTIME = { id: 'snarkjs', profile: 'groth16-bn128' } as const;

/** Manifest metadata keys of a model pushed with zk. */
export const ZK_METADATA = {
  /** `{"fracBits":s,"valueBits":b}` (canonical JSON): with the model bytes, rebuilds the circuit. */
  params: 'zk.params',
  /** The circuit's public layout (canonical JSON of {@link ZkIo}). */
  io: 'zk.io',
  /** SHA-256 (hex) of the circuit's R1CS: anyone can recompile from the model and compare. */
  r1cs: 'zk.r1cs',
  /** SHA-256 (hex) of the RFC 8785 canonical JSON of the Groth16 verification key. */
  vk: 'zk.vk',
  /** {@link ZkSetup}. */
  setup: 'zk.setup',
  /** {@link ZkPhase1} (canonical JSON). Required for `multi-party`; absent means `{"kind":"local-dev"}` under `local-dev`. */
  phase1: 'zk.phase1',
  /** {@link ZkPhase2} (canonical JSON): present exactly when the setup is `multi-party`. */
  phase2: 'zk.phase2',
  /** The circuit generator and compiler, e.g. `@verity/zk 0.1.0; circom 2.2.3 --O2`. */
  generator: 'zk.generator',
} as const;

/** The circuit's public layout: what a verifier needs to read public signals (no weights). */
export interface ZkIo {
  fracBits: number;
  valueBits: number;
  input: { name: string; shape: number[]; size: number };
  outputs: { name: string; shape: number[]; offset: number; size: number }[];
  /** Softmax/LogSoftmax/ArgMax ops the verifier applies to the proved outputs. */
  head: { kind: 'softmax' | 'logSoftmax' | 'argmax'; node: string; input: string; output: string; keepdims: boolean }[];
}

/** What a zk manifest commits to. */
export interface ZkFacts {
  params: { fracBits: number; valueBits: number };
  io: ZkIo;
  r1cs: string;
  vk: string;
  setup: ZkSetup;
  phase1: ZkPhase1;
  /** Present exactly when `setup` is `multi-party`. */
  phase2?: ZkPhase2;
}

/** A Groth16 proof as snarkjs writes it. */
export interface ZkGroth16Proof {
  pi_a: string[];
  pi_b: string[][];
  pi_c: string[];
  protocol: string;
  curve: string;
}

/** The `zk` member of a bundle (and of a `zk` inference response, without `manifest`). */
export interface ZkEvidence {
  proof: ZkGroth16Proof;
  /** `[...out, ...in]`, canonical decimal field elements. */
  publicSignals: string[];
  /** snarkjs' Groth16 verification key JSON. */
  vk: Record<string, unknown>;
  setup: ZkSetup;
  /**
   * The model's manifest with its publisher's signature (its CID must be the record's model):
   * carries the commitments of {@link ZkFacts}. The bare manifest of earlier bundles is read only to
   * be refused (`ZK_MANIFEST_UNSIGNED`, by the SDK's `verifyZkBundle`).
   */
  manifest?: SignedManifest | Manifest;
}

/** True for the signed form of a bundle's `zk.manifest` (else: an earlier bundle's bare manifest). */
export function isSignedZkManifest(m: SignedManifest | Manifest): m is SignedManifest {
  return 'signature' in m;
}

const MAX_SIGNALS = 1 << 16;
const HEX64 = /^[0-9a-f]{64}$/;
const FIELD_TEXT = /^(0|[1-9][0-9]{0,76})$/;
const COORD_TEXT = /^(0|[1-9][0-9]{0,77})$/;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A canonical decimal field element. */
export function isZkFieldElement(s: unknown): s is string {
  return typeof s === 'string' && FIELD_TEXT.test(s) && BigInt(s) < ZK_FIELD_PRIME;
}

/** The field element for a signed integer (|v| ≤ (p − 1)/2). */
export function encodeZkSignal(value: bigint): string {
  if (value > FIELD_HALF || value < -FIELD_HALF) fail('INVALID_ARGUMENT', 'value is outside the field’s signed range');
  return (value < 0n ? ZK_FIELD_PRIME + value : value).toString();
}

/** The signed integer a canonical field element stands for (above (p − 1)/2: negative). */
export function decodeZkSignal(signal: string): bigint {
  if (!isZkFieldElement(signal)) fail('ZK_PUBLIC_INPUT_MISMATCH', 'a public signal is not a canonical field element');
  const n = BigInt(signal);
  return n > FIELD_HALF ? n - ZK_FIELD_PRIME : n;
}

/** round(x · 2^s), half up: the fixed-point value of an input (as `@verity/zk` quantizes it). */
export function zkQuantize(x: number, fracBits: number): bigint {
  if (!Number.isFinite(x)) fail('ZK_PUBLIC_INPUT_MISMATCH', 'cannot quantize a non-finite value');
  const v = x * 2 ** fracBits;
  // Finite x times 2^s can overflow to Infinity: no circuit's range holds it.
  if (!Number.isFinite(v)) fail('ZK_PUBLIC_INPUT_MISMATCH', 'an input is outside the circuit’s range');
  const f = Math.floor(v);
  return BigInt(f) + (v - f >= 0.5 ? 1n : 0n);
}

/**
 * SHA-256 (hex) of the canonical JSON of a verification key: what the manifest's `zk.vk` holds.
 *
 * @example
 * ```ts
 * zkVkDigest(bundle.zk.vk) === zkFacts(manifest).vk;
 * ```
 */
export function zkVkDigest(vk: unknown): string {
  return toHex(sha256(canonicalJsonBytes(vk)));
}

/**
 * The manifest metadata entries for a zk model.
 *
 * @example
 * ```ts
 * const metadata = zkMetadata({ params, io, r1cs, vk: zkVkDigest(vk), setup: 'local-dev', phase1: { kind: 'local-dev' } });
 * ```
 */
export function zkMetadata(facts: ZkFacts, generator?: string): Record<string, string> {
  const canonical = (v: unknown) => new TextDecoder().decode(canonicalJsonBytes(v));
  return {
    [ZK_METADATA.params]: canonical(facts.params),
    [ZK_METADATA.io]: canonical(facts.io),
    [ZK_METADATA.r1cs]: facts.r1cs,
    [ZK_METADATA.vk]: facts.vk,
    [ZK_METADATA.setup]: facts.setup,
    [ZK_METADATA.phase1]: canonical(facts.phase1),
    ...(facts.phase2 === undefined ? {} : { [ZK_METADATA.phase2]: canonical(facts.phase2) }),
    ...(generator === undefined ? {} : { [ZK_METADATA.generator]: generator }),
  };
}

function int(v: unknown, min: number, max: number): boolean {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max;
}

function shapeOk(v: unknown): v is number[] {
  return Array.isArray(v) && v.length <= 8 && v.every((d) => int(d, 1, MAX_SIGNALS));
}

function parseIo(v: unknown): ZkIo {
  const bad = (what: string): never => fail('MANIFEST_INVALID', `zk.io: ${what}`);
  if (!isObject(v)) bad('expected an object');
  const o = v as Record<string, unknown>;
  if (!int(o.fracBits, 1, 120) || !int(o.valueBits, 2, 240)) bad('bad fracBits/valueBits');
  const input = o.input as Record<string, unknown>;
  if (!isObject(input) || typeof input.name !== 'string' || !shapeOk(input.shape) || !int(input.size, 1, MAX_SIGNALS))
    bad('bad input');
  if (!Array.isArray(o.outputs) || o.outputs.length === 0) bad('bad outputs');
  let offset = 0;
  for (const out of o.outputs as unknown[]) {
    const x = out as Record<string, unknown>;
    if (
      !isObject(x) ||
      typeof x.name !== 'string' ||
      !shapeOk(x.shape) ||
      x.offset !== offset ||
      !int(x.size, 1, MAX_SIGNALS)
    )
      bad('bad output');
    if ((x.shape as number[]).reduce((a, d) => a * d, 1) !== x.size) bad('output size ≠ shape');
    offset += x.size as number;
  }
  if (offset + (input.size as number) > MAX_SIGNALS) bad('too many signals');
  if (!Array.isArray(o.head)) bad('bad head');
  for (const h of o.head as unknown[]) {
    const x = h as Record<string, unknown>;
    if (
      !isObject(x) ||
      !['softmax', 'logSoftmax', 'argmax'].includes(x.kind as string) ||
      typeof x.input !== 'string' ||
      typeof x.output !== 'string' ||
      typeof x.node !== 'string' ||
      typeof x.keepdims !== 'boolean'
    )
      bad('bad head op');
  }
  return o as unknown as ZkIo;
}

/**
 * The zk commitments of a manifest. `ZK_MODEL_UNSUPPORTED` when the model was not pushed with zk,
 * `MANIFEST_INVALID` when its zk metadata is malformed.
 *
 * @example
 * ```ts
 * const { vk, io, setup } = zkFacts(manifest);
 * ```
 */
export function zkFacts(manifest: Manifest): ZkFacts {
  const m = manifest.metadata ?? {};
  const get = (k: string) => m[k];
  if (get(ZK_METADATA.vk) === undefined) {
    fail('ZK_MODEL_UNSUPPORTED', 'this model was not pushed with zk (its manifest has no zk.vk)');
  }
  const json = (k: string): unknown => {
    try {
      return JSON.parse(get(k) ?? '');
    } catch {
      return fail('MANIFEST_INVALID', `${k} is not JSON`);
    }
  };
  const params = json(ZK_METADATA.params) as ZkFacts['params'];
  if (!isObject(params) || !int(params.fracBits, 1, 120) || !int(params.valueBits, 2, 240))
    fail('MANIFEST_INVALID', 'zk.params must be {fracBits, valueBits}');
  const io = parseIo(json(ZK_METADATA.io));
  if (io.fracBits !== params.fracBits || io.valueBits !== params.valueBits)
    fail('MANIFEST_INVALID', 'zk.io and zk.params disagree');
  const r1cs = get(ZK_METADATA.r1cs) ?? '';
  const vk = get(ZK_METADATA.vk) ?? '';
  const setup = get(ZK_METADATA.setup) as ZkSetup;
  if (!HEX64.test(r1cs) || !HEX64.test(vk)) fail('MANIFEST_INVALID', 'zk.r1cs and zk.vk must be SHA-256 hex');
  if (!ZK_SETUPS.includes(setup)) fail('MANIFEST_INVALID', `zk.setup must be one of ${ZK_SETUPS.join(', ')}`);
  const phase1Text = get(ZK_METADATA.phase1);
  const phase2Text = get(ZK_METADATA.phase2);
  const phase1 =
    phase1Text === undefined && setup === 'local-dev'
      ? ({ kind: 'local-dev' } as const)
      : parseZkPhase1(canonicalText(json(ZK_METADATA.phase1), phase1Text, ZK_METADATA.phase1), 'MANIFEST_INVALID');
  const phase2 =
    phase2Text === undefined
      ? undefined
      : parseZkPhase2(canonicalText(json(ZK_METADATA.phase2), phase2Text, ZK_METADATA.phase2), 'MANIFEST_INVALID');
  checkSetupPhases(setup, phase1, phase2, 'MANIFEST_INVALID', 'zk');
  return {
    params: { fracBits: params.fracBits, valueBits: params.valueBits },
    io,
    r1cs,
    vk,
    setup,
    phase1,
    ...(phase2 === undefined ? {} : { phase2 }),
  };
}

/** A metadata value must be the canonical JSON of what it parses to: one text per fact. */
function canonicalText(value: unknown, text: string | undefined, key: string): unknown {
  if (new TextDecoder().decode(canonicalJsonBytes(value as never)) !== text) {
    fail('MANIFEST_INVALID', `${key} must be canonical JSON (RFC 8785)`);
  }
  return value;
}

type ZkFactCode = 'MANIFEST_INVALID' | 'INVALID_ARGUMENT';

const CEREMONY_ID = /^0x[0-9a-f]{64}$/;

function ceremonyRef(o: Record<string, unknown>, code: ZkFactCode, at: string): ZkPhase2 {
  if (!int(o.chainId, 1, Number.MAX_SAFE_INTEGER)) fail(code, `${at}.chainId must be a positive integer`);
  if (typeof o.address !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(o.address)) {
    fail(code, `${at}.address must be a contract address`);
  }
  let address: string;
  try {
    address = parseAddress(o.address);
  } catch {
    return fail(code, `${at}.address has a wrong EIP-55 checksum`);
  }
  if (typeof o.id !== 'string' || !CEREMONY_ID.test(o.id))
    fail(code, `${at}.id must be 0x and 64 lower-case hex digits`);
  return { chainId: o.chainId as number, address, id: o.id };
}

function exactKeys(o: unknown, keys: readonly string[], code: ZkFactCode, at: string): Record<string, unknown> {
  if (!isObject(o)) fail(code, `${at} must be an object`);
  const v = o as Record<string, unknown>;
  for (const k of Object.keys(v)) if (!keys.includes(k)) fail(code, `${at}: unknown field "${k}"`);
  for (const k of keys) if (v[k] === undefined) fail(code, `${at}: missing "${k}"`);
  return v;
}

/** Parses a {@link ZkPhase1} strictly (unknown or missing fields refused with `code`). */
function parseZkPhase1(v: unknown, code: ZkFactCode, at = 'zk.phase1'): ZkPhase1 {
  const kind = isObject(v) ? (v as { kind?: unknown }).kind : undefined;
  if (kind === 'local-dev') {
    exactKeys(v, ['kind'], code, at);
    return { kind };
  }
  if (kind === 'file') {
    const o = exactKeys(v, ['kind', 'sha256'], code, at);
    if (typeof o.sha256 !== 'string' || !HEX64.test(o.sha256)) fail(code, `${at}.sha256 must be SHA-256 hex`);
    return { kind, sha256: o.sha256 };
  }
  if (kind === 'ceremony') {
    return { kind, ...ceremonyRef(exactKeys(v, ['kind', 'chainId', 'address', 'id'], code, at), code, at) };
  }
  return fail(code, `${at}.kind must be ceremony, file or local-dev`);
}

/** Parses a {@link ZkPhase2} strictly. */
function parseZkPhase2(v: unknown, code: ZkFactCode, at = 'zk.phase2'): ZkPhase2 {
  return ceremonyRef(exactKeys(v, ['chainId', 'address', 'id'], code, at), code, at);
}

/**
 * A `multi-party` setup has a phase-2 ceremony and a phase 1 that is not one party's; a
 * `local-dev` one has no phase-2 ceremony (one party made it).
 */
function checkSetupPhases(
  setup: ZkSetup,
  phase1: ZkPhase1,
  phase2: ZkPhase2 | undefined,
  code: ZkFactCode,
  at: string,
): void {
  if (setup === 'multi-party') {
    if (phase2 === undefined) fail(code, `${at}: a multi-party setup names its phase-2 ceremony (phase2)`);
    if (phase1.kind === 'local-dev') fail(code, `${at}: a multi-party setup over a local-dev phase 1 is one party's`);
  } else if (phase2 !== undefined) {
    fail(code, `${at}: a local-dev setup has no phase-2 ceremony`);
  }
}

/**
 * An audit of a zk model (docs/protocol.md §12): someone recompiled the circuit from the model
 * artifact and the manifest's zk parameters, found its R1CS hash `r1cs`, and checked that the
 * verification key `vk` comes out of that circuit under the recorded setup (for `multi-party`:
 * the whole phase-2 transcript — every contribution, by `contributors` in order, and the beacon —
 * against the on-chain ceremony record and the phase-1 file). `verity zk audit MODEL` writes one
 * to `<dataDir>/zk/audits/<manifestCid>.json`. A verifier accepts a zk proof's key only when an
 * audit it trusts vouches for exactly the manifest's commitments.
 */
export interface ZkAudit {
  readonly version: 1;
  /** The manifest audited (CIDv1, as `manifestCid` computes it). */
  readonly manifestCid: string;
  /** SHA-256 (hex) of the recompiled circuit's R1CS. */
  readonly r1cs: string;
  /** {@link zkVkDigest} of the verification key checked. */
  readonly vk: string;
  readonly setup: ZkSetup;
  readonly phase1: ZkPhase1;
  /** The phase-2 ceremony checked; `null` for a `local-dev` setup. */
  readonly phase2: ZkPhase2 | null;
  /** The phase-2 contributors' accounts (EIP-55), in order; empty for `local-dev`. */
  readonly contributors: readonly string[];
  /** The phase-2 beacon (0x and 64 hex digits: the later block's hash); `null` for `local-dev`. */
  readonly beacon: string | null;
  /** RFC 3339 UTC time of the check. */
  readonly checkedAt: string;
  /** What did the check, e.g. `@verity/zk 0.1.0; circom 2.2.3 --O2`. */
  readonly generator: string;
}

const AUDIT_KEYS = [
  'version',
  'manifestCid',
  'r1cs',
  'vk',
  'setup',
  'phase1',
  'phase2',
  'contributors',
  'beacon',
  'checkedAt',
  'generator',
] as const;
const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const MAX_CONTRIBUTORS = 1024;

/**
 * Parses an audit record, given as untrusted JSON, strictly: every field present, none unknown,
 * each well formed, and the setup consistent with its phases (a `multi-party` audit names its
 * phase-2 ceremony, at least one contributor and the beacon; a `local-dev` one none of them).
 * `INVALID_ARGUMENT` otherwise. It does not say the audit is true: only who made it can.
 *
 * @example
 * ```ts
 * const audit = parseZkAudit(JSON.parse(readFileSync(`audits/${cid}.json`, 'utf8')));
 * ```
 */
export function parseZkAudit(value: unknown): ZkAudit {
  const code = 'INVALID_ARGUMENT';
  const o = exactKeys(value, AUDIT_KEYS, code, 'zk audit');
  if (o.version !== 1) fail(code, 'zk audit: version must be 1');
  if (typeof o.manifestCid !== 'string') fail(code, 'zk audit: manifestCid must be a CID');
  try {
    parseCid(o.manifestCid);
  } catch (e) {
    fail(code, 'zk audit: manifestCid must be a CID', { reason: isVerityError(e) ? e.message : String(e) });
  }
  if (typeof o.r1cs !== 'string' || !HEX64.test(o.r1cs)) fail(code, 'zk audit: r1cs must be SHA-256 hex');
  if (typeof o.vk !== 'string' || !HEX64.test(o.vk)) fail(code, 'zk audit: vk must be SHA-256 hex');
  if (!ZK_SETUPS.includes(o.setup as ZkSetup)) fail(code, `zk audit: setup must be one of ${ZK_SETUPS.join(', ')}`);
  const setup = o.setup as ZkSetup;
  const phase1 = parseZkPhase1(o.phase1, code, 'zk audit.phase1');
  const phase2 = o.phase2 === null ? null : parseZkPhase2(o.phase2, code, 'zk audit.phase2');
  checkSetupPhases(setup, phase1, phase2 ?? undefined, code, 'zk audit');
  if (!Array.isArray(o.contributors) || o.contributors.length > MAX_CONTRIBUTORS) {
    fail(code, 'zk audit: contributors must be a list of accounts');
  }
  const contributors = (o.contributors as unknown[]).map((a) => {
    try {
      return parseAddress(a as string);
    } catch {
      return fail(code, 'zk audit: a contributor is not an account');
    }
  });
  if (o.beacon !== null && (typeof o.beacon !== 'string' || !CEREMONY_ID.test(o.beacon))) {
    fail(code, 'zk audit: beacon must be 0x and 64 lower-case hex digits, or null');
  }
  if (setup === 'multi-party' && (contributors.length === 0 || o.beacon === null)) {
    fail(code, 'zk audit: a multi-party setup has contributors and a beacon');
  }
  if (setup === 'local-dev' && (contributors.length !== 0 || o.beacon !== null)) {
    fail(code, 'zk audit: a local-dev setup has no contributors and no beacon');
  }
  if (typeof o.checkedAt !== 'string' || !RFC3339_UTC.test(o.checkedAt) || Number.isNaN(Date.parse(o.checkedAt))) {
    fail(code, 'zk audit: checkedAt must be an RFC 3339 UTC time');
  }
  if (typeof o.generator !== 'string' || o.generator.length === 0 || o.generator.length > 256) {
    fail(code, 'zk audit: generator must be a short text');
  }
  return {
    version: 1,
    manifestCid: o.manifestCid,
    r1cs: o.r1cs,
    vk: o.vk,
    setup,
    phase1,
    phase2,
    contributors,
    beacon: o.beacon as string | null,
    checkedAt: o.checkedAt as string,
    generator: o.generator,
  };
}

/**
 * The facts of a manifest an audit disagrees with (empty: it vouches for exactly them): the
 * manifest, circuit, key, setup and both phases must be the audited ones. A mismatching audit is
 * not an audit of this model.
 *
 * @example
 * ```ts
 * if (zkAuditMismatch(audit, cid, zkFacts(manifest)).length > 0) throw …;
 * ```
 */
export function zkAuditMismatch(audit: ZkAudit, manifestCid: string, facts: ZkFacts): string[] {
  const canonical = (v: unknown) => new TextDecoder().decode(canonicalJsonBytes((v ?? null) as never));
  const differs: string[] = [];
  if (audit.manifestCid !== manifestCid) differs.push('manifestCid');
  if (audit.r1cs !== facts.r1cs) differs.push('r1cs');
  if (audit.vk !== facts.vk) differs.push('vk');
  if (audit.setup !== facts.setup) differs.push('setup');
  if (canonical(audit.phase1) !== canonical(facts.phase1)) differs.push('phase1');
  if (canonical(audit.phase2) !== canonical(facts.phase2)) differs.push('phase2');
  return differs;
}

/**
 * Whether untrusted bundle JSON is of mode zk: it has a `zk` member, or a receipt whose record is
 * of kind or mode `zk` (a bundle stripped of its proof is still one: verifying it as zk says
 * `ZK_EVIDENCE_MISSING`). For routing only; it checks nothing.
 *
 * @example
 * ```ts
 * const result = isZkBundle(json) ? await verifyZkBundle(json, trust, options) : verifyBundle(json, trust);
 * ```
 */
export function isZkBundle(value: unknown): boolean {
  if (!isObject(value)) return false;
  if ('zk' in value) return true;
  const receipts = value.receipts;
  return (
    Array.isArray(receipts) &&
    receipts.some((r) => {
      const record = isObject(r) ? r.record : undefined;
      return isObject(record) && (record.kind === 'zk' || record.mode === 'zk');
    })
  );
}

/**
 * Validates the `zk` member of a bundle, strictly (unknown fields, malformed points and signals
 * are `BUNDLE_MALFORMED`). It does not check the proof: see the SDK's `verifyZkBundle`.
 */
export function parseZkEvidence(value: unknown, at = 'bundle.zk'): ZkEvidence {
  const bad = (what: string): never => fail('BUNDLE_MALFORMED', `${at}: ${what}`, { field: at });
  if (!isObject(value)) bad('must be an object');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!['proof', 'publicSignals', 'vk', 'setup', 'manifest'].includes(k)) bad(`unknown field "${k}"`);
  }
  const p = v.proof as Record<string, unknown>;
  if (!isObject(p)) bad('proof must be an object');
  for (const k of Object.keys(p)) if (!['pi_a', 'pi_b', 'pi_c', 'protocol', 'curve'].includes(k)) bad(`proof.${k}?`);
  const coord = (x: unknown) => typeof x === 'string' && COORD_TEXT.test(x);
  const g1 = (x: unknown) => Array.isArray(x) && x.length === 3 && x.every(coord);
  const g2 = (x: unknown) =>
    Array.isArray(x) && x.length === 3 && x.every((y) => Array.isArray(y) && y.length === 2 && y.every(coord));
  if (!g1(p.pi_a) || !g2(p.pi_b) || !g1(p.pi_c)) bad('proof points are malformed');
  if (p.protocol !== 'groth16' || p.curve !== 'bn128') bad('proof must be groth16 on bn128');
  if (
    !Array.isArray(v.publicSignals) ||
    v.publicSignals.length > MAX_SIGNALS ||
    !v.publicSignals.every(isZkFieldElement)
  )
    bad('publicSignals must be canonical field elements');
  const vk = v.vk as Record<string, unknown>;
  if (!isObject(vk) || vk.protocol !== 'groth16' || vk.curve !== 'bn128' || !int(vk.nPublic, 0, MAX_SIGNALS))
    bad('vk must be a groth16 bn128 verification key');
  if (!ZK_SETUPS.includes(v.setup as ZkSetup)) bad(`setup must be one of ${ZK_SETUPS.join(', ')}`);
  let manifest: SignedManifest | Manifest | undefined;
  if (v.manifest !== undefined) {
    const m = v.manifest as Record<string, unknown>;
    if (!isObject(m)) bad('manifest must be a signed manifest');
    // The signed form is exactly { manifest, signature }; a bare manifest (earlier bundles) is
    // kept as it is, only for the SDK to refuse it by name (ZK_MANIFEST_UNSIGNED).
    const signed = 'signature' in m || 'manifest' in m;
    if (signed && (Object.keys(m).length !== 2 || typeof m.signature !== 'string' || !SIGNATURE.test(m.signature)))
      bad('manifest must be { manifest, signature } with a 65-byte hex signature');
    try {
      manifest = signed ? { manifest: parseManifest(m.manifest), signature: m.signature as string } : parseManifest(m);
    } catch {
      bad('manifest is not a valid manifest');
    }
  }
  return {
    proof: p as unknown as ZkGroth16Proof,
    publicSignals: v.publicSignals as string[],
    vk,
    setup: v.setup as ZkSetup,
    ...(manifest === undefined ? {} : { manifest }),
  };
}

/**
 * The circuit's public inputs for an input tensor map (one tensor, named as the circuit's input,
 * one row): round(x · 2^s), range-checked. `ZK_PUBLIC_INPUT_MISMATCH` when it cannot be.
 */
export function zkInputSignals(io: ZkIo, inputs: TensorMap): string[] {
  const names = Object.keys(inputs);
  const t = inputs[io.input.name];
  if (names.length !== 1 || t === undefined) {
    fail('ZK_PUBLIC_INPUT_MISMATCH', `a zk input is the one tensor "${io.input.name}"`, { tensors: names });
  }
  if (!(t.data instanceof Float32Array || t.data instanceof Float64Array) || t.data.length !== io.input.size) {
    fail('ZK_PUBLIC_INPUT_MISMATCH', `"${io.input.name}" must be one row of ${io.input.size} floats`);
  }
  const limit = 1n << BigInt(io.valueBits - 1);
  return Array.from(t.data as Float32Array | Float64Array, (x, i) => {
    const q = zkQuantize(x, io.fracBits);
    if (q < -limit || q >= limit) {
      fail('ZK_PUBLIC_INPUT_MISMATCH', 'an input is outside the circuit’s range', { index: i, value: x });
    }
    return encodeZkSignal(q);
  });
}

/**
 * The output tensors a proof's public signals stand for (see the file header): proved tensors as
 * float64, ArgMax heads as int64. `ZK_PUBLIC_INPUT_MISMATCH` on a wrong count or a bad signal.
 */
export function zkOutputTensors(io: ZkIo, publicSignals: readonly string[]): TensorMap {
  const nOut = io.outputs.reduce((n, o) => n + o.size, 0);
  if (publicSignals.length !== nOut + io.input.size) {
    fail('ZK_PUBLIC_INPUT_MISMATCH', `expected ${nOut + io.input.size} public signals, got ${publicSignals.length}`);
  }
  const out: TensorMap = Object.create(null) as TensorMap;
  const ints = new Map<string, { shape: number[]; values: bigint[] }>();
  const scale = 2 ** io.fracBits;
  for (const o of io.outputs) {
    const values = publicSignals.slice(o.offset, o.offset + o.size).map(decodeZkSignal);
    ints.set(o.name, { shape: o.shape, values });
    out[o.name] = createTensor(
      'float64',
      [1, ...o.shape],
      Float64Array.from(values, (v) => Number(v) / scale),
    );
  }
  // Softmax and LogSoftmax are monotonic: an ArgMax over them is an ArgMax over the logits.
  const source = new Map<string, string>();
  for (const h of io.head) source.set(h.output, source.get(h.input) ?? h.input);
  for (const h of io.head) {
    if (h.kind !== 'argmax') continue;
    const logits = ints.get(source.get(h.output) ?? '');
    if (logits === undefined) continue;
    const last = logits.shape.at(-1) ?? 1;
    const rows = logits.values.length / last;
    const labels = new BigInt64Array(rows);
    for (let r = 0; r < rows; r++) {
      let best = 0;
      for (let i = 1; i < last; i++) {
        if ((logits.values[r * last + i] as bigint) > (logits.values[r * last + best] as bigint)) best = i;
      }
      labels[r] = BigInt(best);
    }
    const outer = logits.shape.slice(0, -1);
    out[h.output] = createTensor('int64', [1, ...outer, ...(h.keepdims ? [1] : [])], labels);
  }
  return out;
}

/**
 * Checks that a proof's public signals encode exactly the bundle's input and output (digests of
 * canonical encodings compared). `ZK_PUBLIC_INPUT_MISMATCH` otherwise.
 */
export function checkZkSignals(io: ZkIo, publicSignals: readonly string[], input: TensorMap, output: TensorMap): void {
  const nOut = io.outputs.reduce((n, o) => n + o.size, 0);
  const decoded = zkOutputTensors(io, publicSignals);
  const expectedIn = zkInputSignals(io, input);
  const actualIn = publicSignals.slice(nOut);
  if (expectedIn.length !== actualIn.length || expectedIn.some((s, i) => s !== actualIn[i])) {
    fail('ZK_PUBLIC_INPUT_MISMATCH', 'the proof is about another input than the bundle’s');
  }
  if (toHex(sha256(encodeTensors(decoded))) !== toHex(sha256(encodeTensors(output)))) {
    fail('ZK_PUBLIC_INPUT_MISMATCH', 'the proof’s outputs are not the bundle’s output');
  }
}
