/**
 * Readers for the iden3 binary formats circom and snarkjs exchange (`.r1cs`, `.wtns`), a writer
 * for `.wtns`, the `.sym` signal map, and a constraint checker: everything a test or an auditor
 * needs to evaluate a witness against the constraints independently of snarkjs.
 *
 * Both formats are `magic(4) version(u32) nSections(u32)` then sections `type(u32) size(u64) data`,
 * little-endian (iden3 binfileutils; r1cs format spec: github.com/iden3/r1csfile/blob/master/doc/r1cs_bin_format.md).
 */
import { fail } from '@verity/protocol';
import { FIELD_PRIME, mod } from './field.js';

/** A linear combination: pairs of (wire index, coefficient). */
export type LinearCombination = readonly (readonly [number, bigint])[];

/** One constraint A · B = C. */
export interface Constraint {
  readonly a: LinearCombination;
  readonly b: LinearCombination;
  readonly c: LinearCombination;
}

/** A parsed `.r1cs` file. */
export interface R1cs {
  readonly prime: bigint;
  /** Witness length (wire 0 is the constant 1). */
  readonly nWires: number;
  readonly nPublicOutputs: number;
  readonly nPublicInputs: number;
  readonly nPrivateInputs: number;
  readonly nLabels: number;
  readonly constraints: readonly Constraint[];
}

/** Sizes of a circuit, read from its `.r1cs` header. */
export interface R1csInfo {
  constraints: number;
  wires: number;
  publicInputs: number;
  publicOutputs: number;
  privateInputs: number;
  labels: number;
}

interface Sections {
  view: DataView;
  bytes: Uint8Array;
  sections: Map<number, { offset: number; size: number }>;
}

function readContainer(bytes: Uint8Array, magic: string): Sections {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): never => fail('ENCODING_INVALID', `not a valid .${magic} file: ${why}`, { format: magic });
  if (bytes.byteLength < 12 || new TextDecoder().decode(bytes.subarray(0, 4)) !== magic) bad('bad magic');
  const n = view.getUint32(8, true);
  const sections = new Map<number, { offset: number; size: number }>();
  let pos = 12;
  for (let i = 0; i < n; i++) {
    if (pos + 12 > bytes.byteLength) bad('truncated section header');
    const type = view.getUint32(pos, true);
    const size = Number(view.getBigUint64(pos + 4, true));
    pos += 12;
    if (pos + size > bytes.byteLength) bad('truncated section');
    if (!sections.has(type)) sections.set(type, { offset: pos, size });
    pos += size;
  }
  return { view, bytes, sections };
}

function section(c: Sections, type: number, magic: string): { offset: number; size: number } {
  const s = c.sections.get(type);
  if (s === undefined) fail('ENCODING_INVALID', `not a valid .${magic} file: no section ${type}`, { format: magic });
  return s;
}

function readBigLE(bytes: Uint8Array, offset: number, n8: number): bigint {
  let v = 0n;
  for (let i = n8 - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[offset + i] as number);
  return v;
}

function header(c: Sections): { n8: number; prime: bigint; info: R1csInfo; offset: number } {
  const h = section(c, 1, 'r1cs');
  const { view } = c;
  const n8 = view.getUint32(h.offset, true);
  const prime = readBigLE(c.bytes, h.offset + 4, n8);
  let p = h.offset + 4 + n8;
  const u32 = () => {
    const v = view.getUint32(p, true);
    p += 4;
    return v;
  };
  const wires = u32();
  const publicOutputs = u32();
  const publicInputs = u32();
  const privateInputs = u32();
  const labels = Number(view.getBigUint64(p, true));
  p += 8;
  const constraints = u32();
  return { n8, prime, info: { constraints, wires, publicInputs, publicOutputs, privateInputs, labels }, offset: p };
}

/**
 * The sizes in an `.r1cs` header (cheap: the constraints are not read).
 *
 * @example
 * ```ts
 * r1csInfo(r1csBytes).constraints; // 3120
 * ```
 */
export function r1csInfo(bytes: Uint8Array): R1csInfo {
  return header(readContainer(bytes, 'r1cs')).info;
}

/**
 * Parses an `.r1cs` file with all its constraints.
 *
 * @example
 * ```ts
 * const r1cs = parseR1cs(bytes);
 * checkWitness(r1cs, witness).ok;
 * ```
 */
export function parseR1cs(bytes: Uint8Array): R1cs {
  const c = readContainer(bytes, 'r1cs');
  const { n8, prime, info } = header(c);
  const s = section(c, 2, 'r1cs');
  const { view } = c;
  let p = s.offset;
  const end = s.offset + s.size;
  const lc = (): LinearCombination => {
    const n = view.getUint32(p, true);
    p += 4;
    const terms: [number, bigint][] = [];
    for (let i = 0; i < n; i++) {
      if (p + 4 + n8 > end) fail('ENCODING_INVALID', 'not a valid .r1cs file: truncated constraint', {});
      terms.push([view.getUint32(p, true), readBigLE(c.bytes, p + 4, n8)]);
      p += 4 + n8;
    }
    return terms;
  };
  const constraints: Constraint[] = [];
  for (let i = 0; i < info.constraints; i++) constraints.push({ a: lc(), b: lc(), c: lc() });
  return {
    prime,
    nWires: info.wires,
    nPublicOutputs: info.publicOutputs,
    nPublicInputs: info.publicInputs,
    nPrivateInputs: info.privateInputs,
    nLabels: info.labels,
    constraints,
  };
}

/** Result of {@link checkWitness}: `failed` lists the indexes of unsatisfied constraints. */
export interface WitnessCheck {
  ok: boolean;
  failed: number[];
}

/**
 * Evaluates every constraint A·B = C (mod p) on a full witness (wire 0 = 1). The independent
 * check behind the gadget soundness tests: a tampered witness must fail here.
 *
 * @example
 * ```ts
 * checkWitness(parseR1cs(r1cs), witness); // { ok: true, failed: [] }
 * ```
 */
export function checkWitness(r1cs: R1cs, witness: readonly bigint[]): WitnessCheck {
  if (witness.length !== r1cs.nWires) {
    fail('INVALID_ARGUMENT', `the witness has ${witness.length} values, the circuit ${r1cs.nWires} wires`, {
      expected: r1cs.nWires,
      actual: witness.length,
    });
  }
  const p = r1cs.prime;
  const evaluate = (lc: LinearCombination) => {
    let sum = 0n;
    for (const [wire, coeff] of lc) sum += coeff * (witness[wire] as bigint);
    return mod(sum, p);
  };
  const failed: number[] = [];
  r1cs.constraints.forEach((k, i) => {
    if (mod(evaluate(k.a) * evaluate(k.b) - evaluate(k.c), p) !== 0n) failed.push(i);
  });
  if (witness[0] !== 1n) failed.unshift(-1);
  return { ok: failed.length === 0, failed };
}

/**
 * The values of a `.wtns` file (field elements in [0, p)).
 *
 * @example
 * ```ts
 * const witness = parseWtns(bytes); // witness[0] === 1n
 * ```
 */
export function parseWtns(bytes: Uint8Array): bigint[] {
  const c = readContainer(bytes, 'wtns');
  const h = section(c, 1, 'wtns');
  const n8 = c.view.getUint32(h.offset, true);
  const n = c.view.getUint32(h.offset + 4 + n8, true);
  const d = section(c, 2, 'wtns');
  if (d.size !== n * n8) fail('ENCODING_INVALID', 'not a valid .wtns file: wrong data size', {});
  return Array.from({ length: n }, (_, i) => readBigLE(c.bytes, d.offset + i * n8, n8));
}

/**
 * A `.wtns` file (version 2, 32-byte elements) holding `witness`, e.g. to hand a doctored witness
 * to the prover in a test.
 *
 * @example
 * ```ts
 * const bytes = encodeWtns(witness);
 * ```
 */
export function encodeWtns(witness: readonly bigint[], prime: bigint = FIELD_PRIME): Uint8Array {
  const n8 = 32;
  const headerSize = 4 + n8 + 4;
  const dataSize = witness.length * n8;
  const bytes = new Uint8Array(12 + 12 + headerSize + 12 + dataSize);
  const view = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode('wtns'), 0);
  view.setUint32(4, 2, true);
  view.setUint32(8, 2, true);
  let p = 12;
  const writeBig = (v: bigint) => {
    let x = v;
    for (let i = 0; i < n8; i++) {
      bytes[p + i] = Number(x & 0xffn);
      x >>= 8n;
    }
    p += n8;
  };
  view.setUint32(p, 1, true);
  view.setBigUint64(p + 4, BigInt(headerSize), true);
  p += 12;
  view.setUint32(p, n8, true);
  p += 4;
  writeBig(prime);
  view.setUint32(p, witness.length, true);
  p += 4;
  view.setUint32(p, 2, true);
  view.setBigUint64(p + 4, BigInt(dataSize), true);
  p += 12;
  for (const v of witness) writeBig(mod(v, prime));
  return bytes;
}

/**
 * circom's `.sym` file: signal name (e.g. `main.t1r[3].q.bits[24]`) → witness index, for the
 * signals the optimizer kept (eliminated ones map to -1 and are left out).
 *
 * @example
 * ```ts
 * parseSym(symText).get('main.out[0]'); // 1
 * ```
 */
export function parseSym(text: string): Map<string, number> {
  const map = new Map<string, number>();
  for (const row of text.split('\n')) {
    const parts = row.split(',');
    if (parts.length < 4) continue;
    const index = Number(parts[1]);
    if (index >= 0) map.set(parts.slice(3).join(','), index);
  }
  return map;
}
