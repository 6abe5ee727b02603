/**
 * The compliance suite every {@link Runtime} that loads ONNX models passes (in the manner of
 * js-libp2p's interface-compliance-tests): call {@link describeRuntimeCompliance} from the
 * runtime's own test file with a factory.
 *
 * It checks: identity fields; the committed example models load from bytes and from a path with
 * the right signatures; their outputs equal a direct onnxruntime-node run (bit for bit by default);
 * every dtype of docs/design.md §2.2 survives a round trip bit for bit (NaN payloads, -0, int64 extremes,
 * strings); symbolic, unnamed and fixed dims are normalised; batching equals running each request
 * alone bit for bit; bad models fail with `MODEL_INVALID`; runtime failures with
 * `INFERENCE_FAILED`; closing waits for runs in flight and is idempotent.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createTensor,
  type DType,
  encodeTensors,
  isVerityError,
  type Tensor,
  type TensorMap,
  type TensorSignature,
  tensorsFromJson,
  validateTensors,
} from '@verity/protocol';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBatched } from '../batch.js';
import type { LoadedModel, Runtime } from '../runtime.js';
import {
  ALL_DTYPES,
  broadcastFailureModel,
  dimNameClashModel,
  type ExampleModel,
  exampleModels,
  fixedShapeModel,
  identityAllDtypesModel,
  invalidModels,
  scalarModel,
  twoBatchDimsModel,
} from './onnx-fixtures.js';

/**
 * Options for {@link describeRuntimeCompliance}.
 *
 * @example
 * ```ts
 * describeRuntimeCompliance('onnxruntime-web', () => createPortableRuntime(), { tolerance: 1e-5 });
 * ```
 */
export interface RuntimeComplianceOptions {
  /**
   * Largest relative difference allowed between this runtime's float outputs and a direct
   * onnxruntime-node run. 0 (default): bit for bit, as for the native profile. A runtime of
   * another execution profile (onnxruntime-web) sets a small tolerance (docs/design.md §2.6).
   */
  tolerance?: number;
}

/**
 * Registers the compliance tests for one runtime.
 *
 * @example
 * ```ts
 * describeRuntimeCompliance('onnxruntime-node', () => createOnnxRuntime({ intraOpThreads: 1 }));
 * ```
 */
export function describeRuntimeCompliance(
  name: string,
  createRuntime: () => Runtime | Promise<Runtime>,
  options: RuntimeComplianceOptions = {},
): void {
  const tolerance = options.tolerance ?? 0;

  describe(`Runtime compliance: ${name}`, () => {
    let runtime: Runtime;
    const opened: LoadedModel[] = [];
    const load = async (bytesOrPath: Uint8Array | string): Promise<LoadedModel> => {
      const model = await runtime.load(bytesOrPath);
      opened.push(model);
      return model;
    };
    beforeAll(async () => {
      runtime = await createRuntime();
    });
    afterAll(async () => {
      await Promise.all(opened.map((m) => m.close()));
    });

    it('names itself: id, version and execution profile', () => {
      expect(runtime.id).toMatch(/\S/);
      expect(runtime.version).toMatch(/\S/);
      expect(['native', 'portable']).toContain(runtime.profile);
    });

    describe('example models', () => {
      const examples = exampleModels();

      it.each(examples.map((e) => [e.name, e] as const))(
        '%s: loads from bytes with its signatures',
        async (_, example) => {
          const model = await load(example.bytes);
          expect(model.inputs).toEqual(example.inputs);
          expect(model.outputs).toEqual(example.outputs);
          expect(model.batchable).toBe(true);
        },
      );

      it.each(examples.map((e) => [e.name, e] as const))(
        '%s: loads from bytes that are a view into a larger buffer',
        async (_, example) => {
          const big = new Uint8Array(example.bytes.length + 64).fill(0xee);
          big.set(example.bytes, 32);
          const model = await load(big.subarray(32, 32 + example.bytes.length));
          expect(model.outputs).toEqual(example.outputs);
          const inputs = sampleInputs(example)[0] as TensorMap;
          expect(encodeTensors(await model.run(inputs))).toEqual(
            encodeTensors(await (await load(example.bytes)).run(inputs)),
          );
        },
      );

      it.each(examples.map((e) => [e.name, e] as const))('%s: loads from a file path', async (_, example) => {
        const model = await load(example.path);
        expect(model.inputs).toEqual(example.inputs);
        const inputs = sampleInputs(example)[0] as TensorMap;
        expect(encodeTensors(await model.run(inputs))).toEqual(
          encodeTensors(await (await load(example.bytes)).run(inputs)),
        );
      });

      it.each(examples.map((e) => [e.name, e] as const))(
        '%s: outputs on the samples equal a direct onnxruntime-node run',
        async (_, example) => {
          const model = await load(example.bytes);
          const session = await ort.InferenceSession.create(example.bytes);
          try {
            for (const inputs of [...sampleInputs(example), randomRows(example, 7, 11)]) {
              const got = await model.run(inputs);
              validateTensors(got, model.outputs);
              const direct = await runDirect(session, inputs, model.outputs);
              expectSameTensors(got, direct, tolerance);
            }
          } finally {
            await session.release();
          }
        },
      );

      it.each(examples.map((e) => [e.name, e] as const))(
        '%s: runBatched equals running each request alone, bit for bit',
        async (_, example) => {
          const model = await load(example.bytes);
          // Mixed batch sizes, including a single row and the samples themselves.
          const requests = [
            ...sampleInputs(example),
            ...[1, 3, 2, 5, 1].map((rows, i) => randomRows(example, rows, i)),
          ];
          const alone: TensorMap[] = [];
          for (const r of requests) alone.push(await model.run(r));
          const batched = await runBatched(model, requests);
          expect(batched).toHaveLength(requests.length);
          batched.forEach((out, i) => {
            validateTensors(out, model.outputs);
            expect(encodeTensors(out)).toEqual(encodeTensors(alone[i] as TensorMap));
          });
        },
      );

      it('concurrent runs on one model give the results of sequential runs', async () => {
        const example = examples[0] as ExampleModel;
        const model = await load(example.bytes);
        const requests = Array.from({ length: 24 }, (_, i) => randomRows(example, 1 + (i % 4), 100 + i));
        const sequential = [];
        for (const r of requests) sequential.push(encodeTensors(await model.run(r)));
        const concurrent = await Promise.all(requests.map((r) => model.run(r)));
        expect(concurrent.map(encodeTensors)).toEqual(sequential);
      });

      it('does not modify its inputs', async () => {
        const example = examples[0] as ExampleModel;
        const model = await load(example.bytes);
        const inputs = randomRows(example, 4, 5);
        const before = encodeTensors(inputs);
        await model.run(inputs);
        await runBatched(model, [inputs, inputs]);
        expect(encodeTensors(inputs)).toEqual(before);
      });
    });

    describe('tensors', () => {
      it('reads symbolic, unnamed and fixed dims of every dtype', async () => {
        const fixture = identityAllDtypesModel();
        const model = await load(fixture.bytes);
        expect(model.inputs).toEqual(fixture.inputs);
        expect(model.outputs).toEqual(fixture.outputs);
        expect(model.batchable).toBe(true);
      });

      it('passes every dtype through bit for bit (NaN payloads, -0, ±Infinity, int64 extremes, strings)', async () => {
        const model = await load(identityAllDtypesModel().bytes);
        for (const shape of [
          [2, 2, 3],
          [1, 1, 3],
          [3, 0, 3],
        ]) {
          const inputs: TensorMap = Object.create(null);
          for (const dtype of ALL_DTYPES) inputs[`in_${dtype}`] = specialTensor(dtype, shape);
          validateTensors(inputs, model.inputs);
          const outputs = await model.run(inputs);
          validateTensors(outputs, model.outputs);
          for (const dtype of ALL_DTYPES) {
            expect(encodeTensors({ t: outputs[`out_${dtype}`] as Tensor }), dtype).toEqual(
              encodeTensors({ t: inputs[`in_${dtype}`] as Tensor }),
            );
          }
        }
      });

      it('never changes a string holding U+0000: passes it bit for bit or refuses it with TENSOR_DATA_INVALID', async () => {
        const model = await load(identityAllDtypesModel().bytes);
        const inputs: TensorMap = Object.create(null);
        for (const dtype of ALL_DTYPES) inputs[`in_${dtype}`] = specialTensor(dtype, [1, 1, 3]);
        inputs.in_string = createTensor('string', [1, 1, 3], ['a\u0000b', '\u0000', 'ok']);
        try {
          const outputs = await model.run(inputs);
          expect(outputs.out_string?.data).toEqual(['a\u0000b', '\u0000', 'ok']);
        } catch (e) {
          expect(isVerityError(e) ? e.code : e).toBe('TENSOR_DATA_INVALID');
        }
      });

      it('accepts inputs whose data is a view into a larger buffer', async () => {
        const model = await load(identityAllDtypesModel().bytes);
        const inputs: TensorMap = Object.create(null);
        for (const dtype of ALL_DTYPES) {
          const t = specialTensor(dtype, [1, 2, 3]);
          if (t.dtype === 'string') inputs[`in_${dtype}`] = t;
          else {
            const Ctor = t.data.constructor as new (n: number) => Uint8Array;
            const big = new Ctor(t.data.length + 5);
            big.set(t.data as Uint8Array, 3);
            inputs[`in_${dtype}`] = { ...t, data: big.subarray(3, 3 + t.data.length) } as Tensor;
          }
        }
        const outputs = await model.run(inputs);
        for (const dtype of ALL_DTYPES) {
          expect(encodeTensors({ t: outputs[`out_${dtype}`] as Tensor })).toEqual(
            encodeTensors({ t: inputs[`in_${dtype}`] as Tensor }),
          );
        }
      });

      it('reads scalars (rank 0)', async () => {
        const model = await load(scalarModel());
        expect(model.inputs).toEqual([{ name: 's', dtype: 'float64', shape: [] }]);
        expect(model.batchable).toBe(false);
        const out = await model.run({ s: createTensor('float64', [], new Float64Array([-0])) });
        expect(encodeTensors(out)).toEqual(encodeTensors({ t: createTensor('float64', [], new Float64Array([-0])) }));
      });

      it('names an unnamed dim dim<axis> unless the model already uses that name', async () => {
        const model = await load(dimNameClashModel());
        expect(model.inputs).toEqual([{ name: 'x', dtype: 'int32', shape: ['dim0_', 'dim0'] }]);
        expect(model.outputs).toEqual([{ name: 'y', dtype: 'int32', shape: ['dim0_', 'dim0'] }]);
        expect(model.batchable).toBe(true);
      });

      it('a fixed-shape model or one with two batch symbols is not batchable, and runBatched still works', async () => {
        const fixed = await load(fixedShapeModel());
        expect(fixed.inputs).toEqual([{ name: 'x', dtype: 'float32', shape: [2, 3] }]);
        expect(fixed.batchable).toBe(false);
        const requests = [0, 1, 2].map((k) => ({
          x: createTensor(
            'float32',
            [2, 3],
            Float32Array.from({ length: 6 }, (_, i) => i * k - 2.5),
          ),
        }));
        const batched = await runBatched(fixed, requests);
        for (let k = 0; k < 3; k++) {
          expect(encodeTensors(batched[k] as TensorMap)).toEqual(
            encodeTensors(await fixed.run(requests[k] as TensorMap)),
          );
        }
        const two = await load(twoBatchDimsModel());
        expect(two.batchable).toBe(false);
      });
    });

    describe('failures', () => {
      const examples = exampleModels();
      const iris = examples[0] as ExampleModel;

      it.each(invalidModels(iris.bytes).map((m) => [m.name, m.bytes] as const))(
        'refuses a bad model with MODEL_INVALID: %s',
        async (_, bytes) => {
          expect(await codeOf(() => runtime.load(bytes))).toBe('MODEL_INVALID');
        },
      );

      it('refuses a path that does not exist with MODEL_NOT_FOUND, and a folder with MODEL_INVALID', async () => {
        const dir = mkdtempSync(join(tmpdir(), 'verity-runtime-'));
        try {
          expect(await codeOf(() => runtime.load(join(dir, 'missing.onnx')))).toBe('MODEL_NOT_FOUND');
          expect(await codeOf(() => runtime.load(dir))).toBe('MODEL_INVALID');
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });

      it('reports a failing run as INFERENCE_FAILED, and the model still runs afterwards', async () => {
        const model = await load(broadcastFailureModel());
        const a = createTensor('float32', [2], new Float32Array([1, 2]));
        const b = createTensor('float32', [3], new Float32Array([1, 2, 3]));
        expect(await codeOf(() => model.run({ a, b }))).toBe('INFERENCE_FAILED');
        const out = await model.run({ a, b: createTensor('float32', [2], new Float32Array([10, 20])) });
        expect(Array.from(out.c?.data as Float32Array)).toEqual([11, 22]);
      });
    });

    describe('closing', () => {
      const example = exampleModels()[0] as ExampleModel;

      it('waits for runs in flight, then refuses new runs with INFERENCE_FAILED; close is idempotent', async () => {
        const model = await runtime.load(example.bytes);
        const inputs = randomRows(example, 64, 9);
        const expected = encodeTensors(await model.run(inputs));
        const inFlight = Array.from({ length: 16 }, () => model.run(inputs));
        const closed = model.close();
        expect(await codeOf(() => model.run(inputs))).toBe('INFERENCE_FAILED');
        const results = await Promise.all(inFlight);
        for (const r of results) expect(encodeTensors(r)).toEqual(expected);
        await closed;
        await model.close();
        expect(await codeOf(() => model.run(inputs))).toBe('INFERENCE_FAILED');
      });

      it('closing one model leaves another model of the same bytes running', async () => {
        const a = await runtime.load(example.bytes);
        const b = await load(example.bytes);
        await a.close();
        const inputs = randomRows(example, 2, 3);
        expect((await b.run(inputs))[example.outputs[0]?.name as string]).toBeDefined();
      });
    });
  });
}

/** The samples of an example model as validated tensor maps. */
function sampleInputs(example: ExampleModel): TensorMap[] {
  return example.samples.map((s) => tensorsFromJson(s.inputs, example.inputs));
}

/** `rows` rows of seeded pseudo-random float32 inputs for an example model (all its inputs are float32 [batch, n]). */
function randomRows(example: ExampleModel, rows: number, seed: number): TensorMap {
  const random = seededRandom(seed);
  const inputs: TensorMap = Object.create(null);
  for (const sig of example.inputs) {
    const width = sig.shape[1] as number;
    const data = Float32Array.from({ length: rows * width }, () => random() * 10);
    inputs[sig.name] = createTensor('float32', [rows, width], data);
  }
  validateTensors(inputs, example.inputs);
  return inputs;
}

function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A tensor of `dtype` and `shape` whose values hit the edges of the dtype. */
function specialTensor(dtype: DType, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const pick = <T>(values: readonly T[]) => Array.from({ length: n }, (_, i) => values[i % values.length] as T);
  switch (dtype) {
    case 'float32': {
      const data = Float32Array.from(
        pick([0, -0, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5e-45, 3.4028234663852886e38, -1.25, 0.1]),
      );
      // A NaN with a payload (quiet bit set, low bits 0x12345), which must survive bit for bit.
      if (n > 0) new Uint32Array(data.buffer)[0] = 0x7fc12345;
      return createTensor('float32', shape, data);
    }
    case 'float64': {
      const data = Float64Array.from(pick([-0, 5e-324, Number.MAX_VALUE, Number.NEGATIVE_INFINITY, Math.PI, 0.1, 2]));
      if (n > 1) new DataView(data.buffer).setBigUint64(8, 0x7ff8000000abcdefn, true);
      return createTensor('float64', shape, data);
    }
    case 'int8':
      return createTensor('int8', shape, Int8Array.from(pick([-128, 127, 0, -1, 42])));
    case 'int16':
      return createTensor('int16', shape, Int16Array.from(pick([-32768, 32767, 0, -1, 4242])));
    case 'int32':
      return createTensor('int32', shape, Int32Array.from(pick([-2147483648, 2147483647, 0, -1, 424242])));
    case 'int64':
      return createTensor(
        'int64',
        shape,
        BigInt64Array.from(pick([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n, 2n ** 53n + 1n])),
      );
    case 'uint8':
      return createTensor('uint8', shape, Uint8Array.from(pick([0, 255, 1, 128])));
    case 'uint16':
      return createTensor('uint16', shape, Uint16Array.from(pick([0, 65535, 1, 32768])));
    case 'uint32':
      return createTensor('uint32', shape, Uint32Array.from(pick([0, 4294967295, 1, 2147483648])));
    case 'uint64':
      return createTensor('uint64', shape, BigUint64Array.from(pick([0n, 2n ** 64n - 1n, 1n, 2n ** 63n])));
    case 'bool':
      return createTensor('bool', shape, Uint8Array.from(pick([1, 0, 0, 1, 1])));
    case 'string':
      return createTensor(
        'string',
        shape,
        pick(['', 'a', 'héllo', '日本語', '😀 emoji', 'tab\there', 'x'.repeat(300)]),
      );
  }
}

/** Runs onnxruntime-node directly (no Verity code) and returns the outputs as protocol tensors. */
async function runDirect(
  session: ort.InferenceSession,
  inputs: TensorMap,
  outputs: readonly TensorSignature[],
): Promise<TensorMap> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(inputs)) feeds[name] = new ort.Tensor(t.dtype, t.data, t.shape);
  const results = await session.run(feeds);
  const out: TensorMap = Object.create(null);
  for (const sig of outputs) {
    const r = results[sig.name] as ort.Tensor;
    out[sig.name] = createTensor(r.type as DType, [...r.dims], r.data as never) as Tensor;
  }
  return out;
}

/** Equal bit for bit when `tolerance` is 0; otherwise floats within `tolerance` (relative). */
function expectSameTensors(actual: TensorMap, expected: TensorMap, tolerance: number): void {
  if (tolerance === 0) {
    expect(encodeTensors(actual)).toEqual(encodeTensors(expected));
    return;
  }
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const name of Object.keys(expected)) {
    const a = actual[name] as Tensor;
    const e = expected[name] as Tensor;
    expect([a.dtype, a.shape]).toEqual([e.dtype, e.shape]);
    if (e.dtype === 'float32' || e.dtype === 'float64') {
      e.data.forEach((v, i) => {
        const got = a.data[i] as number;
        expect(Math.abs(got - v)).toBeLessThanOrEqual(tolerance * Math.max(1, Math.abs(v)));
      });
    } else {
      expect(encodeTensors({ t: a })).toEqual(encodeTensors({ t: e }));
    }
  }
}

/** The code of the VerityError that `fn` rejects with, or 'resolved'; anything else is rethrown. */
async function codeOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
    return 'resolved';
  } catch (e) {
    if (!isVerityError(e)) throw e;
    return e.code;
  }
}
