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
import { fail } from './errors.js';
import { sha256 } from './hash.js';
import { type Manifest, parseManifest } from './manifest.js';
import { createTensor, type TensorMap } from './tensor.js';
import { encodeTensors } from './tensor-encoding.js';

/** The order of BN254's scalar field (circom's default prime, snarkjs' `bn128`). */
export const ZK_FIELD_PRIME = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;
const FIELD_HALF = (ZK_FIELD_PRIME - 1n) / 2n;

/** Where a Groth16 setup's trust comes from: `local-dev` (one local contributor: forgeable) or a ceremony's ptau file. */
export const ZK_SETUPS = ['local-dev', 'ptau-file'] as const;
export type ZkSetup = (typeof ZK_SETUPS)[number];

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
  /** The model's manifest (its CID must be the record's model): carries the commitments of {@link ZkFacts}. */
  manifest?: Manifest;
}

const MAX_SIGNALS = 1 << 16;
const HEX64 = /^[0-9a-f]{64}$/;
const FIELD_TEXT = /^(0|[1-9][0-9]{0,76})$/;
const COORD_TEXT = /^(0|[1-9][0-9]{0,77})$/;

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
 * const metadata = zkMetadata({ params, io, r1cs, vk: zkVkDigest(vk), setup: 'local-dev' });
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
  return { params: { fracBits: params.fracBits, valueBits: params.valueBits }, io, r1cs, vk, setup };
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
  let manifest: Manifest | undefined;
  if (v.manifest !== undefined) {
    try {
      manifest = parseManifest(v.manifest);
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
