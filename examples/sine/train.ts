/**
 * Forecaster: a linear autoregressive model that predicts the next value of an hourly series from
 * the previous 24, written as `examples/models/forecast.onnx`.
 *
 * The series is generated: a daily cycle plus a weekly cycle plus Gaussian noise,
 * `y(t) = 10 + 3·sin(2πt/24) + 1.5·sin(2πt/168 + 0.5) + 0.3·ε(t)`, rounded to 3 decimals
 * (1344 hours, 8 weeks). A sum of sinusoids obeys a linear recurrence, so a linear AR(24) model
 * can forecast it up to the noise. The first 6 weeks train the model (least squares, a small ridge
 * term, solved exactly); the last 2 weeks are held out. Everything runs on `../deterministic.ts`
 * arithmetic: the same bytes every run.
 *
 * - input `history`: float32 [batch, 24], the last 24 values, oldest first;
 * - output `forecast`: float32 [batch, 1], the next value.
 *
 * Run: `npm run build -w @verity/examples && node examples/dist/sine/train.js`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRandom, gaussian, sin } from '../deterministic.js';
import { isMain, modelsDir, samplesJson } from '../files.js';
import { add, encodeModel, floatInitializer, matMul } from '../onnx-writer.js';

/** Hours of history the model reads. */
export const WINDOW = 24;
const HOURS = 24 * 7 * 8;
const TRAIN_HOURS = 24 * 7 * 6;
const NOISE = 0.3;
const SEED = 1337;
const RIDGE = 1e-3;

/**
 * The generated series (1344 hourly values).
 *
 * @example
 * ```ts
 * seasonalSeries().length; // 1344
 * ```
 */
export function seasonalSeries(): number[] {
  const random = createRandom(SEED);
  const values: number[] = [];
  for (let t = 0; t < HOURS; t++) {
    const clean = 10 + 3 * sin((2 * Math.PI * t) / 24) + 1.5 * sin((2 * Math.PI * t) / 168 + 0.5);
    values.push(Math.round((clean + NOISE * gaussian(random)) * 1000) / 1000);
  }
  return values;
}

/** The model: `forecast = bias + Σ weights[i] · history[i]`, float32 values. */
export interface ForecastWeights {
  /** One weight per hour of history, oldest first. */
  weights: number[];
  bias: number;
}

/**
 * A plain TypeScript evaluation of the model (float64 arithmetic), the reference the ONNX model is
 * checked against.
 *
 * @example
 * ```ts
 * forecastNext(model, series.slice(-24));
 * ```
 */
export function forecastNext(model: ForecastWeights, history: readonly number[]): number {
  let s = model.bias;
  for (let i = 0; i < WINDOW; i++) s += (model.weights[i] as number) * (history[i] as number);
  return s;
}

/** The result of {@link trainForecast}. */
export interface ForecastModel {
  model: ForecastWeights;
  /** Root-mean-square error of one-step forecasts on the training hours. */
  trainRmse: number;
  /** Root-mean-square error of one-step forecasts on the 2 held-out weeks. */
  testRmse: number;
  /** Baselines on the held-out weeks: repeat the last value; repeat the value 24 hours ago. */
  baselines: { persistenceRmse: number; seasonalNaiveRmse: number };
  onnx: Uint8Array;
  samples: string;
}

/**
 * Generates the series, fits the model, and encodes it. Deterministic.
 *
 * @example
 * ```ts
 * const { testRmse } = trainForecast();
 * ```
 */
export function trainForecast(): ForecastModel {
  const series = seasonalSeries();
  const targets = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  const train = targets(WINDOW, TRAIN_HOURS);
  const test = targets(TRAIN_HOURS, HOURS);
  const windowAt = (t: number) => series.slice(t - WINDOW, t);

  // Normal equations (XᵀX + λI)β = Xᵀy with X = [history, 1]; the intercept is not penalised.
  const n = WINDOW + 1;
  const a = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const b = new Array<number>(n).fill(0);
  for (const t of train) {
    const row = [...windowAt(t), 1];
    const y = series[t] as number;
    for (let i = 0; i < n; i++) {
      b[i] = (b[i] as number) + (row[i] as number) * y;
      const ai = a[i] as number[];
      for (let j = 0; j < n; j++) ai[j] = (ai[j] as number) + (row[i] as number) * (row[j] as number);
    }
  }
  for (let i = 0; i < WINDOW; i++) (a[i] as number[])[i] = ((a[i] as number[])[i] as number) + RIDGE * train.length;
  const beta = solve(a, b);
  const model: ForecastWeights = {
    weights: beta.slice(0, WINDOW).map((w) => Math.fround(w)),
    bias: Math.fround(beta[WINDOW] as number),
  };

  const rmse = (ts: number[], predict: (t: number) => number) =>
    Math.sqrt(ts.reduce((s, t) => s + (predict(t) - (series[t] as number)) ** 2, 0) / ts.length);
  // Float32 inputs, as the ONNX model sees them.
  const predict = (t: number) => forecastNext(model, windowAt(t).map(Math.fround));
  const onnx = encodeForecast(model);
  const picked = [0, 37, 101, 190, 303].map((i) => test[i] as number);
  const samples = samplesJson({
    model: 'forecast.onnx',
    description:
      'Held-out windows of the generated series (not used in training): the last 24 hourly values, oldest first, and the value that followed.',
    samples: picked.map((t) => ({ inputs: { history: [windowAt(t)] }, expected: series[t] as number })),
  });
  return {
    model,
    trainRmse: rmse(train, predict),
    testRmse: rmse(test, predict),
    baselines: {
      persistenceRmse: rmse(test, (t) => series[t - 1] as number),
      seasonalNaiveRmse: rmse(test, (t) => series[t - 24] as number),
    },
    onnx,
    samples,
  };
}

/** Gaussian elimination with partial pivoting (only exact IEEE operations). */
function solve(matrix: number[][], rhs: number[]): number[] {
  const n = rhs.length;
  const a = matrix.map((row, i) => [...row, rhs[i] as number]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) {
      if (Math.abs((a[r] as number[])[col] as number) > Math.abs((a[pivot] as number[])[col] as number)) pivot = r;
    }
    [a[col], a[pivot]] = [a[pivot] as number[], a[col] as number[]];
    const p = a[col] as number[];
    for (let r = col + 1; r < n; r++) {
      const row = a[r] as number[];
      const f = (row[col] as number) / (p[col] as number);
      for (let c = col; c <= n; c++) row[c] = (row[c] as number) - f * (p[c] as number);
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    const row = a[r] as number[];
    let s = row[n] as number;
    for (let c = r + 1; c < n; c++) s -= (row[c] as number) * (x[c] as number);
    x[r] = s / (row[r] as number);
  }
  return x;
}

/** The ONNX graph: MatMul(history, W) + b. */
function encodeForecast(model: ForecastWeights): Uint8Array {
  return encodeModel({
    name: 'seasonal_ar24',
    doc: 'Linear autoregressive forecaster: the next hourly value from the previous 24 (oldest first).',
    inputs: [{ name: 'history', elemType: 'float32', shape: ['batch', WINDOW], doc: 'last 24 values, oldest first' }],
    outputs: [{ name: 'forecast', elemType: 'float32', shape: ['batch', 1], doc: 'the next value' }],
    initializers: [floatInitializer('W', [WINDOW, 1], model.weights), floatInitializer('b', [1], [model.bias])],
    nodes: [matMul('history', 'W', 'xw'), add('xw', 'b', 'forecast')],
    metadata: {
      dataset: 'generated: 10 + 3 sin(2 pi t/24) + 1.5 sin(2 pi t/168 + 0.5) + 0.3 noise, hourly, 8 weeks',
      license: 'Apache-2.0',
    },
  });
}

/**
 * Trains, prints the errors and writes `forecast.onnx` and `forecast.samples.json` to `dir`.
 *
 * @example
 * ```ts
 * writeForecast('examples/models');
 * ```
 */
export function writeForecast(dir: string = modelsDir()): ForecastModel {
  const result = trainForecast();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'forecast.onnx'), result.onnx);
  writeFileSync(join(dir, 'forecast.samples.json'), result.samples);
  const f = (x: number) => x.toFixed(4);
  console.log(
    `forecast: train RMSE ${f(result.trainRmse)}, test RMSE ${f(result.testRmse)} ` +
      `(noise sd ${NOISE}; persistence ${f(result.baselines.persistenceRmse)}, ` +
      `seasonal naive ${f(result.baselines.seasonalNaiveRmse)}), ${result.onnx.length} bytes -> ${join(dir, 'forecast.onnx')}`,
  );
  return result;
}

if (isMain(import.meta.url)) writeForecast();
