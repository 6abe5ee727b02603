import { createTensor, DTYPES, type DType, encodeTensors, type Tensor, type TensorMap } from '@verity/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatRows, runBatched, splitRows } from './batch.js';
import type { LoadedModel } from './runtime.js';

/** A tensor of `dtype` with `rows` rows of `width` elements whose values come from `seed`. */
function tensorOf(dtype: DType, rows: number, width: number, seed: number): Tensor {
  const n = rows * width;
  const v = (i: number) => (seed * 31 + i * 7) % 97;
  const ints = Array.from({ length: n }, (_, i) => v(i));
  switch (dtype) {
    case 'float32':
      return createTensor(
        dtype,
        [rows, width],
        Float32Array.from(ints, (x) => x / 3 - 10),
      );
    case 'float64':
      return createTensor(
        dtype,
        [rows, width],
        Float64Array.from(ints, (x) => x / 7 - 5),
      );
    case 'int8':
      return createTensor(
        dtype,
        [rows, width],
        Int8Array.from(ints, (x) => x - 50),
      );
    case 'int16':
      return createTensor(dtype, [rows, width], Int16Array.from(ints));
    case 'int32':
      return createTensor(dtype, [rows, width], Int32Array.from(ints));
    case 'int64':
      return createTensor(
        dtype,
        [rows, width],
        BigInt64Array.from(ints, (x) => BigInt(x) - (1n << 62n)),
      );
    case 'uint8':
      return createTensor(dtype, [rows, width], Uint8Array.from(ints));
    case 'uint16':
      return createTensor(dtype, [rows, width], Uint16Array.from(ints));
    case 'uint32':
      return createTensor(dtype, [rows, width], Uint32Array.from(ints));
    case 'uint64':
      return createTensor(
        dtype,
        [rows, width],
        BigUint64Array.from(ints, (x) => BigInt(x) + (1n << 63n)),
      );
    case 'bool':
      return createTensor(
        dtype,
        [rows, width],
        Uint8Array.from(ints, (x) => x & 1),
      );
    case 'string':
      return createTensor(
        dtype,
        [rows, width],
        ints.map((x) => `s${x}é`),
      );
  }
}

describe('concatRows / splitRows', () => {
  it('split(concat(parts)) gives back the parts, bit for bit, for every dtype (property)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...DTYPES),
        fc.array(fc.nat(4), { minLength: 1, maxLength: 6 }),
        fc.nat(3),
        fc.nat(1000),
        (dtype, sizes, width, seed) => {
          const parts = sizes.map((rows, k) => tensorOf(dtype, rows, width, seed + k));
          const joined = concatRows(parts);
          expect(joined.shape).toEqual([sizes.reduce((a, b) => a + b, 0), width]);
          const back = splitRows(joined, sizes);
          back.forEach((part, k) => {
            expect(encodeTensors({ t: part })).toEqual(encodeTensors({ t: parts[k] as Tensor }));
          });
        },
      ),
    );
  });

  it('keeps NaN payloads and -0 when concatenating floats', () => {
    const a = createTensor('float32', [1], new Float32Array(1));
    new Uint32Array(a.data.buffer)[0] = 0x7fc00001;
    const b = createTensor('float32', [1], new Float32Array([-0]));
    const joined = concatRows([a, b]);
    expect(Array.from(new Uint32Array((joined.data as Float32Array).buffer))).toEqual([0x7fc00001, 0x80000000]);
  });

  it('split parts own their data', () => {
    const t = createTensor('int32', [2, 2], new Int32Array([1, 2, 3, 4]));
    const [first] = splitRows(t, [1, 1]);
    (first?.data as Int32Array)[0] = 99;
    expect(Array.from(t.data)).toEqual([1, 2, 3, 4]);
  });

  it('refuses sizes that do not add up to the first dim', () => {
    expect(() => splitRows(createTensor('int32', [2], new Int32Array(2)), [1])).toThrow(RangeError);
    expect(() => concatRows([])).toThrow(RangeError);
  });
});

/**
 * A fake model: y[i] = 2·x[i] per element and `count` = the number of rows in the call, so a test
 * sees how requests were grouped. `lying` makes it return a first dim other than the batch.
 */
function fakeModel(options: { batchable?: boolean; lying?: boolean; failOn?: number } = {}) {
  const calls: number[][] = [];
  const model: LoadedModel = {
    inputs: [
      { name: 'x', dtype: 'float32', shape: ['batch', 'w'] },
      { name: 'k', dtype: 'int32', shape: ['batch'] },
    ],
    outputs: [{ name: 'y', dtype: 'float32', shape: ['batch', 'w'] }],
    batchable: options.batchable ?? true,
    async run(inputs: TensorMap): Promise<TensorMap> {
      const x = inputs.x as Tensor & { dtype: 'float32' };
      const k = inputs.k as Tensor & { dtype: 'int32' };
      calls.push(Array.from(k.data));
      if (options.failOn !== undefined && k.data.includes(options.failOn)) throw new Error('boom');
      const rows = options.lying ? 1 : (x.shape[0] as number);
      const width = x.shape[1] as number;
      return {
        y: createTensor(
          'float32',
          [rows, width],
          x.data.slice(0, rows * width).map((v) => 2 * v),
        ),
      };
    },
    async close() {},
  };
  return { model, calls };
}

function request(id: number, rows: number, width: number): TensorMap {
  return {
    x: createTensor(
      'float32',
      [rows, width],
      Float32Array.from({ length: rows * width }, (_, i) => id + i / 8),
    ),
    k: createTensor('int32', [rows], new Int32Array(rows).fill(id)),
  };
}

describe('runBatched', () => {
  it('runs compatible requests in one call and gives each its own rows', async () => {
    const { model, calls } = fakeModel();
    const requests = [request(1, 1, 2), request(2, 3, 2), request(3, 2, 2)];
    const out = await runBatched(model, requests);
    expect(calls).toEqual([[1, 2, 2, 2, 3, 3]]);
    out.forEach((o, i) => {
      const x = (requests[i] as TensorMap).x as Tensor & { dtype: 'float32' };
      expect(o.y?.shape).toEqual(x.shape);
      expect(Array.from(o.y?.data as Float32Array)).toEqual(Array.from(x.data, (v) => 2 * v));
    });
  });

  it('groups requests by their dims after the first, keeping the order of the results', async () => {
    const { model, calls } = fakeModel();
    const requests = [request(1, 1, 2), request(2, 1, 3), request(3, 2, 2), request(4, 1, 3), request(5, 1, 5)];
    const out = await runBatched(model, requests);
    expect(calls.map((c) => [...new Set(c)]).sort()).toEqual([[1, 3], [2, 4], [5]]);
    out.forEach((o, i) => {
      expect(o.y?.shape).toEqual((requests[i] as TensorMap).x?.shape);
    });
  });

  it('runs each request alone when the model is not batchable, or for a single request', async () => {
    const { model, calls } = fakeModel({ batchable: false });
    await runBatched(model, [request(1, 1, 2), request(2, 1, 2)]);
    expect(calls).toEqual([[1], [2]]);
    const single = fakeModel();
    await runBatched(single.model, [request(7, 2, 2)]);
    expect(single.calls).toEqual([[7, 7]]);
    expect(await runBatched(single.model, [])).toEqual([]);
  });

  it('falls back to one run per request when an output cannot be split by rows', async () => {
    const { model, calls } = fakeModel({ lying: true });
    const out = await runBatched(model, [request(1, 1, 2), request(2, 1, 2)]);
    expect(calls).toEqual([[1, 2], [1], [2]]);
    expect(out.map((o) => o.y?.shape)).toEqual([
      [1, 2],
      [1, 2],
    ]);
  });

  it('runs alone a request whose inputs disagree on the first dim', async () => {
    const { model, calls } = fakeModel();
    const odd = { ...request(9, 2, 2), k: createTensor('int32', [1], new Int32Array([9])) };
    await runBatched(model, [request(1, 1, 2), odd, request(2, 1, 2)]);
    expect(calls).toContainEqual([9]);
    expect(calls).toContainEqual([1, 2]);
  });

  it('rejects when a run fails', async () => {
    const { model } = fakeModel({ failOn: 2 });
    await expect(runBatched(model, [request(1, 1, 2), request(2, 1, 2)])).rejects.toThrow('boom');
  });
});
