/**
 * Generated circuits: deterministic text and R1CS, constraint counts as predicted, witnesses whose
 * public outputs equal the TypeScript fixed-point evaluation exactly (iris: the whole test set,
 * with the class checked against onnxruntime's float model), and a doctored witness of the
 * compiled model failing the constraint check.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CircuitArtifacts, compileCircom } from './circom-compile.js';
import { type CompiledModel, compileModel, encodeInput, evaluateModel, samplesFromJson } from './compile-model.js';
import { decodeSignal, FIELD_PRIME } from './field.js';
import { argMax } from './float-eval.js';
import { computeWitness } from './prove.js';
import { checkWitness, parseR1cs, parseSym, type R1cs } from './r1cs.js';
import { releaseCurves } from './snarkjs.js';
import {
  cnnOnnx,
  irisOnnx,
  irisSamplesJson,
  irisTestRows,
  MLP,
  mlpOnnx,
  oddOpsOnnx,
  runOrt,
  uniformRows,
} from './test-support/models.js';

interface Built {
  model: CompiledModel;
  circuit: CircuitArtifacts;
  r1cs: R1cs;
}

async function build(onnx: Uint8Array, samples: number[][]): Promise<Built> {
  const model = compileModel(onnx, { samples });
  const circuit = await compileCircom(model.circom);
  return { model, circuit, r1cs: parseR1cs(circuit.r1cs) };
}

/** The public outputs in a witness: wires 1 … nOut (wire 0 is the constant 1). */
function witnessOutputs(built: Built, witness: readonly bigint[]): bigint[] {
  return witness.slice(1, 1 + built.r1cs.nPublicOutputs).map(decodeSignal);
}

function fixedOutputs(built: Built, row: readonly number[]): bigint[] {
  const decoded = evaluateModel(built.model, row);
  return built.model.io.outputs.flatMap((o) => decoded.fixedOutputs[o.name] as bigint[]);
}

let iris: Built;
let mlp: Built;
let cnn: Built;

beforeAll(async () => {
  iris = await build(irisOnnx(), samplesFromJson(irisSamplesJson(), 'x'));
  mlp = await build(mlpOnnx(), uniformRows(16, MLP.inputs, 1));
  cnn = await build(cnnOnnx(), uniformRows(8, 36, 3));
}, 120_000);

afterAll(() => releaseCurves());

describe('circuit generation is deterministic', () => {
  it('the same model bytes give byte-identical circom text and the same R1CS hash', async () => {
    const again = compileModel(irisOnnx(), { samples: samplesFromJson(irisSamplesJson(), 'x') });
    expect(again.circom).toBe(iris.model.circom);
    const recompiled = await compileCircom(again.circom);
    expect(recompiled.r1csHash).toBe(iris.circuit.r1csHash);
    expect(recompiled.r1csHash).toMatch(/^[0-9a-f]{64}$/);
    expect(recompiled.compiler).toBe('circom 2.2.3 (circom2 0.2.23)');
  }, 60_000);

  it('the header records the model hash, the scale and what is proved', () => {
    const header = iris.model.circom.split('\n').slice(0, 7);
    expect(header[1]).toBe(`// model: iris_mlp, sha256 ${iris.model.modelSha256}`);
    expect(header.slice(2)).toEqual([
      '// fixed point: values are round(v * 2^16); range-checked values lie in [-2^22, 2^22)',
      '// public input: in = x [4] * 2^16',
      '// public output: out = logits [3] * 2^16',
      '// computed by the verifier from the outputs (not proved): probabilities = softmax(logits), label = argmax(logits)',
      'pragma circom 2.1.0;',
    ]);
  });

  it('weights are constants in the text; every <-- sits in a gadget template', () => {
    const body = iris.model.circom.slice(iris.model.circom.indexOf('template Model()'));
    expect(body).not.toContain('<--');
    expect(body).toMatch(/t1r\[0\]\.in <== -?\d+ \* in\[0\]/);
  });
});

describe('constraint counts', () => {
  it('match the prediction: (s + b) per rescaled value, one per fused ReLU', () => {
    for (const built of [iris, mlp, cnn]) {
      expect(built.circuit.info.constraints).toBe(built.model.report.estimatedConstraints);
    }
    expect(iris.circuit.info).toMatchObject({ constraints: 757, publicInputs: 4, publicOutputs: 3 });
    expect(mlp.circuit.info).toMatchObject({ constraints: 3104, publicInputs: 64, publicOutputs: 16 });
  });
});

describe('circuit outputs equal the TypeScript fixed-point evaluation exactly', () => {
  it('iris, the whole test set: same logits, and the class of onnxruntime’s float model (30/30)', async () => {
    const rows = irisTestRows();
    const labels = await runOrt(
      irisOnnx(),
      'x',
      [4],
      rows.map((r) => r.x),
      'label',
    );
    let agree = 0;
    for (const [i, row] of rows.entries()) {
      const witness = await computeWitness(iris.circuit.wasm, encodeInput(iris.model, row.x));
      expect(checkWitness(iris.r1cs, witness).ok).toBe(true);
      const outputs = witnessOutputs(iris, witness);
      expect(outputs).toEqual(fixedOutputs(iris, row.x));
      if (argMax(outputs) === labels[i]?.[0]) agree++;
    }
    expect(agree).toBe(rows.length);
  }, 60_000);

  it('the MLP on 20 random rows, and the CNN on 5', async () => {
    for (const row of uniformRows(20, MLP.inputs, 77)) {
      const witness = await computeWitness(mlp.circuit.wasm, encodeInput(mlp.model, row));
      expect(witnessOutputs(mlp, witness)).toEqual(fixedOutputs(mlp, row));
    }
    for (const row of uniformRows(5, 36, 78)) {
      const witness = await computeWitness(cnn.circuit.wasm, encodeInput(cnn.model, row));
      expect(checkWitness(cnn.r1cs, witness).ok).toBe(true);
      expect(witnessOutputs(cnn, witness)).toEqual(fixedOutputs(cnn, row));
    }
  }, 60_000);

  it('standalone ReLUs (on the input, after additions), Add of activations and Sub of a constant', async () => {
    const rows = uniformRows(10, 4, 12).map((r) => r.map((v) => 3 * v));
    const odd = await build(oddOpsOnnx(), rows);
    expect(odd.model.graph.ops.map((op) => op.kind)).toEqual(['relu', 'linear', 'add', 'addConst', 'relu']);
    expect(odd.circuit.info.constraints).toBe(odd.model.report.estimatedConstraints);
    expect(odd.model.circom).toContain('Relu(');
    for (const row of rows) {
      const witness = await computeWitness(odd.circuit.wasm, encodeInput(odd.model, row));
      expect(checkWitness(odd.r1cs, witness).ok).toBe(true);
      expect(witnessOutputs(odd, witness)).toEqual(fixedOutputs(odd, row));
    }
  }, 120_000);

  it('the circuit itself refuses an input beyond its range (no witness exists)', async () => {
    const limit = 1n << BigInt(iris.model.params.valueBits - 1);
    await expect(computeWitness(iris.circuit.wasm, [limit * 4n, 0n, 0n, 0n])).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});

describe('a doctored witness of a compiled model fails the constraint check', () => {
  // Each case changes wires of an honest iris witness (found by name in the .sym file) and says
  // what a cheating prover would gain.
  const cases: { name: string; edit: (w: bigint[], sym: Map<string, number>) => void }[] = [
    {
      name: 'a quotient bit of the first layer’s rescale flipped (another hidden value)',
      edit: (w, sym) => flip(w, sym, 'main.t1r[2].q.bits[3]'),
    },
    {
      name: 'a remainder bit flipped (the same quotient with another remainder)',
      edit: (w, sym) => flip(w, sym, 'main.t1r[2].r.bits[0]'),
    },
    {
      name: 'the sign of a hidden value flipped (a ReLU that lets a negative through or zeroes a positive)',
      edit: (w, sym) => flip(w, sym, 'main.t1r[2].nonNegative'),
    },
    {
      name: 'a ReLU output changed',
      edit: (w, sym) => add(w, sym, 'main.t2[2]', 1n),
    },
    {
      name: 'a public output (logit) changed by one unit',
      edit: (w, sym) => add(w, sym, 'main.out[0]', 1n),
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const sym = parseSym(iris.circuit.sym);
      const witness = await computeWitness(iris.circuit.wasm, encodeInput(iris.model, [6.5, 2.8, 4.6, 1.5]));
      expect(checkWitness(iris.r1cs, witness).ok).toBe(true);
      c.edit(witness, sym);
      const check = checkWitness(iris.r1cs, witness);
      expect(check.ok).toBe(false);
      expect(check.failed.length).toBeGreaterThan(0);
    });
  }
});

function wire(sym: Map<string, number>, name: string): number {
  const index = sym.get(name);
  if (index === undefined) throw new Error(`no wire ${name} in the optimized circuit`);
  return index;
}

function flip(w: bigint[], sym: Map<string, number>, name: string): void {
  const i = wire(sym, name);
  w[i] = 1n - (w[i] as bigint);
}

function add(w: bigint[], sym: Map<string, number>, name: string, delta: bigint): void {
  const i = wire(sym, name);
  w[i] = ((w[i] as bigint) + delta) % FIELD_PRIME;
}
