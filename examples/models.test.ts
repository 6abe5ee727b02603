/**
 * The committed example models: training reproduces them byte for byte, onnxruntime-node runs
 * them, and their outputs match a plain TypeScript evaluation of the weights stored in the files.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TensorMap, type TensorSignature, tensorsFromJson } from '@verity/protocol';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRandom, exp, gaussian, sin } from './deterministic.js';
import { modelsDir } from './files.js';
import { IRIS_CLASSES, type IrisWeights, irisForward, irisSplit, trainIris } from './iris/train.js';
import { decodeModel, IR_VERSION, initializerValues, OPSET_VERSION } from './onnx-writer.js';
import { type ForecastWeights, forecastNext, seasonalSeries, trainForecast, WINDOW } from './sine/train.js';

const dir = modelsDir();
const committed = (name: string) => new Uint8Array(readFileSync(join(dir, name)));

interface SamplesFile {
  samples: { inputs: Record<string, unknown>; expected: unknown; label?: number }[];
}
const samplesOf = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as SamplesFile;

/** Rows of a float32 [rows, cols] initializer. */
function matrix(bytes: Uint8Array, name: string): number[][] {
  const { dims, data } = initializerValues(decodeModel(bytes), name);
  const [rows, cols] = dims as [number, number];
  return Array.from({ length: rows }, (_, r) => Array.from(data.subarray(r * cols, (r + 1) * cols)));
}

function vector(bytes: Uint8Array, name: string): number[] {
  return Array.from(initializerValues(decodeModel(bytes), name).data);
}

async function runOrt(session: ort.InferenceSession, inputs: TensorMap): Promise<ort.InferenceSession.ReturnType> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
  return session.run(feeds);
}

/** float32 results against a float64 reference: a few float32 ulps of the largest magnitude involved. */
function expectClose(actual: number, expected: number, scale = 1): void {
  expect(Math.abs(actual - expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(expected), scale));
}

describe('training is reproducible', () => {
  it('iris: retraining gives the committed iris.onnx and iris.samples.json byte for byte', () => {
    const model = trainIris();
    expect(model.onnx).toEqual(committed('iris.onnx'));
    expect(model.samples).toBe(readFileSync(join(dir, 'iris.samples.json'), 'utf8'));
  });

  it('forecast: retraining gives the committed forecast.onnx and forecast.samples.json byte for byte', () => {
    const model = trainForecast();
    expect(model.onnx).toEqual(committed('forecast.onnx'));
    expect(model.samples).toBe(readFileSync(join(dir, 'forecast.samples.json'), 'utf8'));
  });

  it('the files are ONNX IR version 8, opset 17, with a symbolic batch dim', () => {
    for (const name of ['iris.onnx', 'forecast.onnx']) {
      const model = decodeModel(committed(name));
      expect(Number(model.irVersion)).toBe(IR_VERSION);
      expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', OPSET_VERSION]]);
      for (const v of [...(model.graph?.input ?? []), ...(model.graph?.output ?? [])]) {
        expect(v.type?.tensorType?.shape?.dim?.[0]?.dimParam).toBe('batch');
      }
    }
  });
});

describe('iris.onnx', () => {
  const bytes = committed('iris.onnx');
  const weights: IrisWeights = {
    w1: matrix(bytes, 'W1'),
    b1: vector(bytes, 'B1'),
    w2: matrix(bytes, 'W2'),
    b2: vector(bytes, 'B2'),
  };
  const signatures: TensorSignature[] = [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }];
  let session: ort.InferenceSession;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(bytes);
  });
  afterAll(() => session.release());

  it('declares x float32 [batch, 4] → probabilities float32 [batch, 3], label int64 [batch]', () => {
    expect(session.inputMetadata).toEqual([{ name: 'x', isTensor: true, type: 'float32', shape: ['batch', 4] }]);
    expect(session.outputMetadata).toEqual([
      { name: 'probabilities', isTensor: true, type: 'float32', shape: ['batch', 3] },
      { name: 'label', isTensor: true, type: 'int64', shape: ['batch'] },
    ]);
  });

  it('matches the TypeScript evaluation of its weights on every sample and predicts the expected class', async () => {
    const { samples } = samplesOf('iris.samples.json');
    expect(samples.length).toBeGreaterThanOrEqual(3);
    for (const sample of samples) {
      const inputs = tensorsFromJson(sample.inputs, signatures);
      const out = await runOrt(session, inputs);
      const reference = irisForward(weights, Array.from(inputs.x!.data as Float32Array));
      const probabilities = Array.from(out.probabilities!.data as Float32Array);
      probabilities.forEach((p, k) => {
        expectClose(p, reference.probabilities[k]!);
      });
      expect(out.label!.data).toEqual(new BigInt64Array([BigInt(reference.label)]));
      expect(IRIS_CLASSES[reference.label]).toBe(sample.expected);
    }
  });

  it('classifies the held-out test set with accuracy ≥ 0.9 in one batched run', async () => {
    const { test } = irisSplit();
    expect(test).toHaveLength(30);
    const x = new Float32Array(test.flatMap((r) => r.x));
    const out = await session.run({ x: new ort.Tensor('float32', x, [test.length, 4]) });
    const labels = Array.from(out.label!.data as BigInt64Array, Number);
    const accuracy = labels.filter((l, i) => l === test[i]!.label).length / test.length;
    expect(accuracy).toBeGreaterThanOrEqual(0.9);
    expect(accuracy).toBe(trainIris().testAccuracy);
    // Each row also agrees with the TypeScript evaluation.
    for (let i = 0; i < test.length; i++) {
      expect(labels[i]).toBe(irisForward(weights, Array.from(x.subarray(i * 4, i * 4 + 4))).label);
    }
  });

  it('never trains on a test row: the split is disjoint and covers the data set', () => {
    const { train, test } = irisSplit();
    const seen = new Set([...train, ...test].map((r) => r.index));
    expect(seen.size).toBe(150);
    expect(train).toHaveLength(120);
    for (let c = 0; c < 3; c++) expect(test.filter((r) => r.label === c)).toHaveLength(10);
  });
});

describe('forecast.onnx', () => {
  const bytes = committed('forecast.onnx');
  const model: ForecastWeights = { weights: vector(bytes, 'W'), bias: vector(bytes, 'b')[0]! };
  const signatures: TensorSignature[] = [{ name: 'history', dtype: 'float32', shape: ['batch', WINDOW] }];
  let session: ort.InferenceSession;
  beforeAll(async () => {
    session = await ort.InferenceSession.create(bytes);
  });
  afterAll(() => session.release());

  it('declares history float32 [batch, 24] → forecast float32 [batch, 1]', () => {
    expect(session.inputMetadata).toEqual([{ name: 'history', isTensor: true, type: 'float32', shape: ['batch', 24] }]);
    expect(session.outputMetadata).toEqual([
      { name: 'forecast', isTensor: true, type: 'float32', shape: ['batch', 1] },
    ]);
  });

  it('matches the TypeScript evaluation of its weights on every sample, within the noise of the truth', async () => {
    const { samples } = samplesOf('forecast.samples.json');
    expect(samples.length).toBeGreaterThanOrEqual(3);
    for (const sample of samples) {
      const inputs = tensorsFromJson(sample.inputs, signatures);
      const history = Array.from(inputs.history!.data as Float32Array);
      const out = await runOrt(session, inputs);
      const got = (out.forecast!.data as Float32Array)[0]!;
      // The sum of 24 products of values near 10: allow float32 rounding of the terms.
      expectClose(got, forecastNext(model, history), 20);
      expect(Math.abs(got - (sample.expected as number))).toBeLessThan(4 * 0.3 * 1.5);
    }
  });

  it('forecasts the two held-out weeks with RMSE near the noise level, beating naive baselines', async () => {
    const series = seasonalSeries();
    const start = 24 * 7 * 6;
    const targets = series.length - start;
    const x = new Float32Array(targets * WINDOW);
    for (let i = 0; i < targets; i++) x.set(series.slice(start + i - WINDOW, start + i), i * WINDOW);
    const out = await session.run({ history: new ort.Tensor('float32', x, [targets, WINDOW]) });
    const forecasts = out.forecast!.data as Float32Array;
    let squared = 0;
    for (let i = 0; i < targets; i++) squared += (forecasts[i]! - series[start + i]!) ** 2;
    const rmse = Math.sqrt(squared / targets);
    const trained = trainForecast();
    expectClose(rmse, trained.testRmse);
    expect(rmse).toBeLessThan(0.45);
    expect(rmse).toBeLessThan(trained.baselines.persistenceRmse);
    expect(rmse).toBeLessThan(trained.baselines.seasonalNaiveRmse);
  });
});

describe('deterministic arithmetic', () => {
  it('exp and sin agree with Math.exp and Math.sin to within a few ulps', () => {
    const random = createRandom(1);
    for (let i = 0; i < 10_000; i++) {
      const x = (random() - 0.5) * 80;
      expect(Math.abs(exp(x) - Math.exp(x))).toBeLessThanOrEqual(4 * Number.EPSILON * Math.exp(x));
      const y = (random() - 0.5) * 2000;
      expect(Math.abs(sin(y) - Math.sin(y))).toBeLessThanOrEqual(1e-12);
    }
    expect(exp(0)).toBe(1);
    expect(sin(0)).toBe(0);
  });

  it('the PRNG is seeded, uniform in [0, 1), and the Gaussian has mean ≈ 0 and sd ≈ 1', () => {
    const a = createRandom(7);
    const b = createRandom(7);
    const xs = Array.from({ length: 20_000 }, () => a());
    expect(xs.slice(0, 5)).toEqual(Array.from({ length: 5 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const g = Array.from({ length: 20_000 }, () => gaussian(a));
    const mean = g.reduce((s, v) => s + v, 0) / g.length;
    const sd = Math.sqrt(g.reduce((s, v) => s + (v - mean) ** 2, 0) / g.length);
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(sd - 1)).toBeLessThan(0.03);
  });
});
