/**
 * Fixed point: rounding rules by hand-worked vectors, signal encoding round trips, the scale
 * chosen for the examples, fixed-vs-float error, and argmax agreement with onnxruntime's float
 * model on the whole iris test set.
 */
import { isVerityError } from '@verity/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileModel, decodePublicSignals, evaluateModel, samplesFromJson } from './compile-model.js';
import {
  decodeSignal,
  decodeSignals,
  encodeSignal,
  encodeSignals,
  FIELD_HALF,
  FIELD_PRIME,
  floorDiv,
} from './field.js';
import { quantize, rescale } from './fixed-point.js';
import { argMax } from './float-eval.js';
import { irisOnnx, irisSamplesJson, irisTestRows, MLP, mlpOnnx, runOrt, uniformRows } from './test-support/models.js';

describe('rounding (half up, as the Rescale gadget does)', () => {
  it('quantize: round(x · 2^s), ties toward +∞', () => {
    expect(quantize(0.75, 2)).toBe(3n);
    expect(quantize(0.625, 2)).toBe(3n); // 2.5 → 3
    expect(quantize(-0.625, 2)).toBe(-2n); // −2.5 → −2
    expect(quantize(-0.125, 2)).toBe(0n); // −0.5 → 0
    expect(quantize(-0.2, 2)).toBe(-1n); // −0.8 → −1
    expect(quantize(5.1, 16)).toBe(334234n); // 5.1 · 65536 = 334233.6
  });

  it('rescale: ⌊(acc + 2^(s−1)) / 2^s⌋', () => {
    expect(rescale(10n, 2)).toBe(3n); // 2.5 → 3
    expect(rescale(-10n, 2)).toBe(-2n); // −2.5 → −2
    expect(rescale(-11n, 2)).toBe(-3n); // −2.75 → −3
    expect(rescale(-9n, 2)).toBe(-2n); // −2.25 → −2
    expect(rescale(52n, 4)).toBe(3n); // 3.25 → 3
  });

  it('floorDiv agrees with Math.floor', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e6, max: 1e6 }), fc.integer({ min: 1, max: 1000 }), (a, b) => {
        expect(floorDiv(BigInt(a), BigInt(b))).toBe(BigInt(Math.floor(a / b)));
      }),
    );
  });
});

describe('public signal encoding (negative values as p − |v|)', () => {
  it('round-trips every signed value of the field', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -FIELD_HALF, max: FIELD_HALF }), (v) => {
        expect(decodeSignal(encodeSignal(v))).toBe(v);
      }),
    );
    expect(encodeSignals([-1n, 0n, 5n])).toEqual([(FIELD_PRIME - 1n).toString(), '0', '5']);
    expect(decodeSignals([(FIELD_PRIME - 1n).toString(), FIELD_HALF.toString()])).toEqual([-1n, FIELD_HALF]);
  });

  it('rejects values outside the field and non-canonical strings', () => {
    for (const bad of [FIELD_PRIME.toString(), '-1', '01', '1e3', '', ' 1', (FIELD_PRIME * 10n).toString()]) {
      expect(() => decodeSignal(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(() => encodeSignal(FIELD_HALF + 1n)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('the iris classifier in fixed point', () => {
  const samples = samplesFromJson(irisSamplesJson(), 'x');
  const model = compileModel(irisOnnx(), { samples });

  it('picks 16 fractional bits and a range from the samples, and reports the error', () => {
    expect(samples).toHaveLength(6);
    const { report } = model;
    expect(report.params).toEqual({ fracBits: 16, valueBits: 23 });
    expect(report.scale).toBe(65536);
    expect(report.maxAbsValue).toBeCloseTo(7.2, 5); // the largest input, 7.2 cm
    expect(report.intBits).toBe(3);
    expect(report.headroomBits).toBe(3);
    expect(report.error?.maxAbs).toBeLessThan(1e-3);
    expect(report.argmaxAgreement).toBe(1);
    expect(report.accumulatorBits).toBeLessThan(64);
  });

  it('agrees with the float model (onnxruntime) on the class of every test row: 30/30', async () => {
    const rows = irisTestRows();
    const labels = await runOrt(
      irisOnnx(),
      'x',
      [4],
      rows.map((r) => r.x),
      'label',
    );
    // The logits are internal to the ONNX graph: compare the class and the probabilities.
    const probabilities = await runOrt(
      irisOnnx(),
      'x',
      [4],
      rows.map((r) => r.x),
      'probabilities',
    );
    let agree = 0;
    let maxProbabilityError = 0;
    rows.forEach((row, i) => {
      const { head } = evaluateModel(model, row.x);
      if (head.label?.[0] === labels[i]?.[0]) agree++;
      (head.probabilities as number[]).forEach((p, k) => {
        maxProbabilityError = Math.max(maxProbabilityError, Math.abs(p - (probabilities[i]?.[k] as number)));
      });
    });
    expect(agree).toBe(rows.length);
    expect(maxProbabilityError).toBeLessThan(1e-3);
  });

  it('rebuilds the same circuit text from the recorded parameters alone', () => {
    const again = compileModel(irisOnnx(), { params: model.params });
    expect(again.circom).toBe(model.circom);
    expect(again.report.error).toBeNull();
  });

  it('refuses an input whose values leave the circuit’s range', () => {
    let error: unknown;
    try {
      evaluateModel(model, [500, 3, 1, 0.2]);
    } catch (e) {
      error = e;
    }
    expect(isVerityError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect((error as { details: Record<string, unknown> }).details).toMatchObject({ tensor: 'x', index: 0 });
  });
});

describe('the 64→64→16 MLP in fixed point', () => {
  const samples = uniformRows(16, MLP.inputs, 1);
  const model = compileModel(mlpOnnx(), { samples });

  it('stays within 1e-3 of the float model and picks the same class on 200 random rows', async () => {
    expect(model.report.params).toEqual({ fracBits: 16, valueBits: 22 });
    const rows = uniformRows(200, MLP.inputs, 2024);
    const logits = await runOrt(mlpOnnx(), 'x', [MLP.inputs], rows, 'logits');
    let maxError = 0;
    let agree = 0;
    rows.forEach((row, i) => {
      const fixed = evaluateModel(model, row).outputs.logits as number[];
      const float = logits[i] as number[];
      fixed.forEach((v, k) => {
        maxError = Math.max(maxError, Math.abs(v - (float[k] as number)));
      });
      if (argMax(fixed) === argMax(float)) agree++;
    });
    expect(maxError).toBeLessThan(1e-3);
    expect(agree).toBe(rows.length);
  });
});

describe('decoding public signals', () => {
  const model = compileModel(irisOnnx(), { params: { fracBits: 16, valueBits: 23 } });

  it('splits [...outputs, ...inputs] and applies the head', () => {
    const decoded = evaluateModel(model, [6.5, 2.8, 4.6, 1.5]);
    const signals = encodeSignals([...(decoded.fixedOutputs.logits as bigint[]), ...decoded.input]);
    expect(decodePublicSignals(model.io, signals)).toEqual(decoded);
    expect(decoded.head.label).toEqual([1]);
  });

  it('rejects a wrong count and an input outside the circuit’s range', () => {
    const signals = encodeSignals([1n, 2n, 3n, 4n, 5n, 6n, 7n]);
    expect(() => decodePublicSignals(model.io, signals.slice(1))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    const tooBig = [...signals.slice(0, 6), encodeSignal(1n << 22n)];
    expect(() => decodePublicSignals(model.io, tooBig)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('samplesFromJson', () => {
  it('reads the examples’ samples files, a list of inputs, and full-form tensors', () => {
    expect(samplesFromJson(irisSamplesJson(), 'x')[0]).toEqual([5, 3.6, 1.4, 0.2]);
    expect(
      samplesFromJson(
        [
          {
            x: [
              [1, 2],
              [3, 4],
            ],
          },
          { x: [5, 6] },
        ],
        'x',
      ),
    ).toEqual([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(samplesFromJson([{ x: { dtype: 'float32', shape: [2, 2], data: [1, 2, 3, 4] } }], 'x')).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(() => samplesFromJson({ samples: [{ inputs: { y: [1] } }] }, 'x')).toThrow(
      expect.objectContaining({ code: 'JSON_INVALID' }),
    );
  });
});
