/**
 * Soundness of the gadgets (README "Gadgets and why they are sound"), tested on small harness
 * circuits compiled from the same template text the models use:
 *
 * - at `--O0` every signal is a wire, so a test can play the cheating prover: choose a wrong
 *   quotient, remainder or sign, fill in every other wire the way the templates compute them,
 *   and show the constraint check fails; and, with tiny parameters, enumerate every choice of the
 *   boolean wires (all other wires are fixed by linear equalities from them) to show that exactly
 *   one witness exists for an in-range input, the honest one, and none for an out-of-range input;
 * - at `--O2` (what models are compiled with), the same enumeration over the wires the optimizer
 *   kept.
 *
 * The constraint check is this package's own R1CS evaluator (`checkWitness`), not snarkjs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CircuitArtifacts, compileCircom } from './circom-compile.js';
import { FIELD_PRIME, mod } from './field.js';
import { rescale } from './fixed-point.js';
import { CIRCOM_PRAGMA, GADGETS } from './gadgets.js';
import { computeWitness } from './prove.js';
import { checkWitness, parseR1cs, parseSym, type R1cs } from './r1cs.js';
import { releaseCurves } from './snarkjs.js';

/** Harness parameters: small enough to enumerate. */
const S = 2;
const B = 3;
const HALF_B = 1n << BigInt(B - 1);

interface Harness {
  circuit: CircuitArtifacts;
  r1cs: R1cs;
  sym: Map<string, number>;
}

async function harness(body: string, optimization: 0 | 2): Promise<Harness> {
  const source = `${CIRCOM_PRAGMA}\n${GADGETS}\ntemplate Harness() {\n${body}\n}\ncomponent main {public [in]} = Harness();\n`;
  const circuit = await compileCircom(source, { optimization });
  return { circuit, r1cs: parseR1cs(circuit.r1cs), sym: parseSym(circuit.sym) };
}

const RESCALE = `signal input in[1]; signal output out; signal output nonNegative;
component g = Rescale(${S}, ${B}); g.in <== in[0]; out <== g.out; nonNegative <== g.nonNegative;`;
const RELU = `signal input in[1]; signal output out; component g = Relu(${B}); g.in <== in[0]; out <== g.out;`;

let rescale0: Harness;
let relu0: Harness;
let rescale2: Harness;
let relu2: Harness;

beforeAll(async () => {
  rescale0 = await harness(RESCALE, 0);
  relu0 = await harness(RELU, 0);
  rescale2 = await harness(RESCALE, 2);
  relu2 = await harness(RELU, 2);
});

afterAll(() => releaseCurves());

/** Bit i of a field element's canonical representative: what `Bits`' `<--` computes. */
function bit(v: bigint, i: number): bigint {
  return (mod(v) >> BigInt(i)) & 1n;
}

/** A full witness from wire names → values (every wire must be named). */
function assemble(h: Harness, values: Record<string, bigint>): bigint[] {
  const w = new Array<bigint>(h.r1cs.nWires).fill(-1n);
  w[0] = 1n;
  for (const [name, v] of Object.entries(values)) {
    const i = h.sym.get(name);
    if (i !== undefined) w[i] = mod(v);
  }
  if (w.includes(-1n)) throw new Error('a wire was left unassigned');
  return w;
}

/**
 * The --O0 Rescale harness witness a prover gets by choosing `quotient` and `remainder` (and,
 * optionally, the bits and the sign) and computing every other wire as the templates do.
 */
function rescaleWitness(
  input: bigint,
  choice: { quotient: bigint; remainder: bigint; qBits?: bigint[]; rBits?: bigint[]; nonNegative?: bigint },
): bigint[] {
  const qBits = choice.qBits ?? Array.from({ length: B }, (_, i) => bit(choice.quotient, i));
  const rBits = choice.rBits ?? Array.from({ length: S }, (_, i) => bit(choice.remainder, i));
  const nonNegative = choice.nonNegative ?? (qBits[B - 1] as bigint);
  const out = choice.quotient - HALF_B;
  const values: Record<string, bigint> = {
    'main.in[0]': input,
    'main.out': out,
    'main.nonNegative': nonNegative,
    'main.g.in': input,
    'main.g.out': out,
    'main.g.nonNegative': nonNegative,
    'main.g.quotient': choice.quotient,
    'main.g.remainder': choice.remainder,
    'main.g.q.in': choice.quotient,
    'main.g.r.in': choice.remainder,
  };
  qBits.forEach((b, i) => {
    values[`main.g.q.bits[${i}]`] = b;
  });
  rBits.forEach((b, i) => {
    values[`main.g.r.bits[${i}]`] = b;
  });
  return assemble(rescale0, values);
}

/** The honest quotient and remainder, as the template's `<--` lines compute them. */
function honestDivision(input: bigint): { quotient: bigint; remainder: bigint } {
  const shifted = mod(input + (1n << BigInt(S - 1)) + (HALF_B << BigInt(S)));
  return { quotient: shifted / (1n << BigInt(S)), remainder: shifted % (1n << BigInt(S)) };
}

/** The --O0 Relu harness witness for a chosen sign and offset bits. */
function reluWitness(input: bigint, choice: { sign?: bigint; bits?: bigint[] } = {}): bigint[] {
  const offset = input + HALF_B;
  const bits = choice.bits ?? Array.from({ length: B }, (_, i) => bit(offset, i));
  const sign = choice.sign ?? (bits[B - 1] as bigint);
  const values: Record<string, bigint> = {
    'main.in[0]': input,
    'main.out': input * sign,
    'main.g.in': input,
    'main.g.out': input * sign,
    'main.g.sign.in': input,
    'main.g.sign.nonNegative': sign,
    'main.g.sign.offset.in': offset,
  };
  bits.forEach((b, i) => {
    values[`main.g.sign.offset.bits[${i}]`] = b;
  });
  return assemble(relu0, values);
}

function allBitVectors(n: number): bigint[][] {
  return Array.from({ length: 2 ** n }, (_, v) => Array.from({ length: n }, (_, i) => BigInt((v >> i) & 1)));
}

const inRange = (v: bigint) => v >= -HALF_B && v < HALF_B;

describe('Rescale(s, b): out = round(in / 2^s), quotient and remainder pinned', () => {
  it('the witness built here from the honest quotient equals circom’s, and satisfies the constraints', async () => {
    for (const input of [-17n, -13n, -6n, -1n, 0n, 1n, 5n, 10n, 13n]) {
      const witness = rescaleWitness(input, honestDivision(input));
      expect(await computeWitness(rescale0.circuit.wasm, [input])).toEqual(witness);
      expect(checkWitness(rescale0.r1cs, witness).ok).toBe(true);
      expect(witness[rescale0.sym.get('main.out') as number]).toBe(mod(rescale(input, S)));
    }
  });

  // Named cheats, on in = 5 (5 / 4 = 1.25 → out 1): each says what the prover would gain.
  const input = 5n;
  const honest = honestDivision(input);
  const cheats: { name: string; choice: Parameters<typeof rescaleWitness>[1] }[] = [
    {
      name: 'quotient + 1 (out 2), remainder unchanged: the division no longer holds',
      choice: { ...honest, quotient: honest.quotient + 1n },
    },
    {
      name: 'quotient + 1, remainder − 2^s (division holds): the remainder is negative, its range check fails',
      choice: { quotient: honest.quotient + 1n, remainder: honest.remainder - (1n << BigInt(S)) },
    },
    {
      name: 'quotient − 1, remainder + 2^s (division holds): the remainder is ≥ 2^s, its range check fails',
      choice: { quotient: honest.quotient - 1n, remainder: honest.remainder + (1n << BigInt(S)) },
    },
    { name: 'remainder + 1 alone', choice: { ...honest, remainder: honest.remainder + 1n } },
    {
      name: 'quotient shifted by (r − r′)·2^−s mod p, remainder r′ in range (division holds mod p): only the quotient’s range check catches it',
      choice: (() => {
        const r2 = (honest.remainder + 1n) % (1n << BigInt(S));
        const k = mod((honest.remainder - r2) * modInverse(1n << BigInt(S)));
        return { quotient: mod(honest.quotient + k), remainder: r2 };
      })(),
    },
    {
      name: 'remainder bits that do not add up to the remainder',
      choice: { ...honest, rBits: Array.from({ length: S }, (_, i) => 1n - bit(honest.remainder, i)) },
    },
    { name: 'sign flipped (out ≥ 0 claimed negative)', choice: { ...honest, nonNegative: 0n } },
  ];
  for (const cheat of cheats) {
    it(`rejects: ${cheat.name}`, () => {
      const witness = rescaleWitness(input, cheat.choice);
      expect(checkWitness(rescale0.r1cs, witness).ok).toBe(false);
    });
  }

  it('enumeration (--O0): one witness per in-range input, the honest one; none out of range', () => {
    for (let v = -24; v <= 24; v++) {
      const input = BigInt(v);
      const solutions: bigint[] = [];
      // Every choice of the boolean wires; quotient and remainder are forced to the bit sums by
      // the linear equalities quotient = q.in = Σ q.bits·2^i (same for the remainder).
      for (const qBits of allBitVectors(B)) {
        for (const rBits of allBitVectors(S)) {
          for (const nonNegative of [0n, 1n]) {
            const quotient = qBits.reduce((s, b, i) => s + (b << BigInt(i)), 0n);
            const remainder = rBits.reduce((s, b, i) => s + (b << BigInt(i)), 0n);
            const witness = rescaleWitness(input, { quotient, remainder, qBits, rBits, nonNegative });
            if (checkWitness(rescale0.r1cs, witness).ok) solutions.push(quotient - HALF_B);
          }
        }
      }
      const expected = rescale(input, S);
      expect(solutions, `in = ${v}`).toEqual(inRange(expected) ? [expected] : []);
    }
  });

  it('enumeration (--O2): same result over the wires the optimizer kept', () => {
    const kept = wiresKept(rescale2);
    expect(kept.private.every((name) => /\.bits\[\d+\]$/.test(name))).toBe(true);
    for (let v = -24; v <= 24; v++) {
      const input = BigInt(v);
      const outs: bigint[] = [];
      for (let out = -HALF_B - 3n; out < HALF_B + 3n; out++) {
        for (const nonNegative of [0n, 1n]) {
          for (const bits of allBitVectors(kept.private.length)) {
            const values: Record<string, bigint> = {
              'main.in[0]': input,
              'main.out': out,
              'main.nonNegative': nonNegative,
            };
            kept.private.forEach((name, i) => {
              values[name] = bits[i] as bigint;
            });
            if (checkWitness(rescale2.r1cs, assembleKept(rescale2, values)).ok) outs.push(out);
          }
        }
      }
      const expected = rescale(input, S);
      expect(outs, `in = ${v}`).toEqual(inRange(expected) ? [expected] : []);
    }
  });
});

describe('Relu(b): out = max(in, 0) by a range-checked sign', () => {
  it('the honest witness equals circom’s and satisfies the constraints', async () => {
    for (let v = -4n; v < 4n; v++) {
      const witness = reluWitness(v);
      expect(await computeWitness(relu0.circuit.wasm, [v])).toEqual(witness);
      expect(checkWitness(relu0.r1cs, witness).ok).toBe(true);
    }
  });

  const cheats: { name: string; input: bigint; choice: Parameters<typeof reluWitness>[1] }[] = [
    { name: 'sign 0 for a positive input (out 0 instead of 3)', input: 3n, choice: { sign: 0n } },
    { name: 'sign 1 for a negative input (out −3 instead of 0)', input: -3n, choice: { sign: 1n } },
    {
      name: 'sign 0 for a positive input with the top offset bit flipped to match',
      input: 3n,
      choice: { sign: 0n, bits: [1n, 1n, 0n] },
    },
    {
      name: 'sign 0 for zero (same output, still not a valid witness: the sign is unique)',
      input: 0n,
      choice: { sign: 0n },
    },
  ];
  for (const cheat of cheats) {
    it(`rejects: ${cheat.name}`, () => {
      expect(checkWitness(relu0.r1cs, reluWitness(cheat.input, cheat.choice)).ok).toBe(false);
    });
  }

  it('enumeration (--O0): one witness per in-range input with out = max(in, 0); none out of range', () => {
    for (let v = -8n; v <= 8n; v++) {
      const outs: bigint[] = [];
      for (const bits of allBitVectors(B)) {
        for (const sign of [0n, 1n]) {
          if (checkWitness(relu0.r1cs, reluWitness(v, { sign, bits })).ok) outs.push(v * sign);
        }
      }
      expect(outs, `in = ${v}`).toEqual(inRange(v) ? [v > 0n ? v : 0n] : []);
    }
  });

  it('enumeration (--O2): same result over the wires the optimizer kept', () => {
    const kept = wiresKept(relu2);
    expect(kept.private.every((name) => /\.bits\[\d+\]$|nonNegative$/.test(name))).toBe(true);
    for (let v = -8n; v <= 8n; v++) {
      const outs: bigint[] = [];
      for (let out = -8n; out <= 8n; out++) {
        for (const bits of allBitVectors(kept.private.length)) {
          const values: Record<string, bigint> = { 'main.in[0]': v, 'main.out': out };
          kept.private.forEach((name, i) => {
            values[name] = bits[i] as bigint;
          });
          if (checkWitness(relu2.r1cs, assembleKept(relu2, values)).ok) outs.push(out);
        }
      }
      expect(outs, `in = ${v}`).toEqual(inRange(v) ? [v > 0n ? v : 0n] : []);
    }
  });
});

/** Names of the wires an optimized harness kept, other than its public input and outputs. */
function wiresKept(h: Harness): { private: string[] } {
  const names = [...h.sym.entries()].sort((a, b) => a[1] - b[1]).map(([name]) => name);
  return { private: names.filter((n) => !/^main\.(in\[0\]|out|nonNegative)$/.test(n)) };
}

/** A witness for an optimized harness: every kept wire must be given. */
function assembleKept(h: Harness, values: Record<string, bigint>): bigint[] {
  return assemble(h, values);
}

/** a^−1 mod p (Fermat). */
function modInverse(a: bigint): bigint {
  let result = 1n;
  let base = mod(a);
  let e = FIELD_PRIME - 2n;
  while (e > 0n) {
    if (e & 1n) result = (result * base) % FIELD_PRIME;
    base = (base * base) % FIELD_PRIME;
    e >>= 1n;
  }
  return result;
}
