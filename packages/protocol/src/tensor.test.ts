import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assertTensor,
  assertTensorMap,
  createTensor,
  DTYPE_CODES,
  DTYPES,
  dtypeFromCode,
  isDType,
  isTensorName,
  type Tensor,
  tensorElementCount,
} from './tensor.js';
import { expectCode } from './test-support/errors.js';
import { tensorArb } from './test-support/tensors.js';

describe('dtypes', () => {
  it('codes are the ONNX TensorProto.DataType numbers (onnx/onnx.proto)', () => {
    // From onnx.proto: FLOAT=1 UINT8=2 INT8=3 UINT16=4 INT16=5 INT32=6 INT64=7 STRING=8 BOOL=9
    // FLOAT16=10 DOUBLE=11 UINT32=12 UINT64=13.
    expect(DTYPE_CODES).toEqual({
      float32: 1,
      uint8: 2,
      int8: 3,
      uint16: 4,
      int16: 5,
      int32: 6,
      int64: 7,
      string: 8,
      bool: 9,
      float64: 11,
      uint32: 12,
      uint64: 13,
    });
    for (const d of DTYPES) expect(dtypeFromCode(DTYPE_CODES[d])).toBe(d);
    for (const code of [0, 10, 14, 16, 255, -1, 1.5]) expect(dtypeFromCode(code)).toBeUndefined();
  });
  it('isDType', () => {
    expect(DTYPES.every(isDType)).toBe(true);
    for (const v of ['float16', 'Float32', '', 'toString', '__proto__', 1, null, undefined])
      expect(isDType(v)).toBe(false);
  });
});

describe('tensor names', () => {
  it('accepts 1..256 UTF-8 bytes without control characters', () => {
    for (const ok of ['x', 'input_ids', 'a b', '__proto__', 'é', '日本', '😀', 'x'.repeat(256), '😀'.repeat(64)]) {
      expect(isTensorName(ok), ok).toBe(true);
    }
  });
  it('refuses empty, too long, control characters and lone surrogates', () => {
    const bad = [
      '',
      'x'.repeat(257),
      `${'😀'.repeat(64)}x`,
      'é'.repeat(129),
      'a\nb',
      '\u0000',
      '\u007f',
      '\u0085',
      'a\u009f',
    ];
    for (const name of [...bad, '\uD800', 'a\uDC00', '\uDBFFx', 1, null]) expect(isTensorName(name)).toBe(false);
  });
});

describe('tensorElementCount', () => {
  it('is the product of the dims, 1 for a scalar, 0 with a zero dim', () => {
    expect(tensorElementCount([])).toBe(1);
    expect(tensorElementCount([2, 3, 4])).toBe(24);
    expect(tensorElementCount([0, 2 ** 53 - 1])).toBe(0);
  });
  it('refuses bad dims, rank above 255, and counts above 2^53 - 1', () => {
    for (const dim of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '2', null]) {
      expectCode(() => tensorElementCount([dim]), 'TENSOR_INVALID');
    }
    expectCode(() => tensorElementCount(new Array(256).fill(1)), 'TENSOR_INVALID');
    expect(tensorElementCount(new Array(255).fill(1))).toBe(1);
    expectCode(() => tensorElementCount([2 ** 27, 2 ** 27]), 'TENSOR_TOO_LARGE');
  });
});

describe('createTensor / assertTensor', () => {
  it('makes tensors of every dtype', () => {
    const t = createTensor('float32', [1, 2], new Float32Array([1, -2.5]));
    expect(t).toEqual({ dtype: 'float32', shape: [1, 2], data: new Float32Array([1, -2.5]) });
    expect(createTensor('string', [], ['héllo']).shape).toEqual([]);
    expect(createTensor('int64', [2], new BigInt64Array([1n, -1n])).data[1]).toBe(-1n);
    expect(createTensor('bool', [0, 3], new Uint8Array(0)).data.length).toBe(0);
  });
  it('copies the shape but not the data', () => {
    const shape = [2];
    const data = new Int32Array([1, 2]);
    const t = createTensor('int32', shape, data);
    shape[0] = 3;
    expect(t.shape).toEqual([2]);
    expect(t.data).toBe(data);
  });
  it('refuses a wrong element count with TENSOR_SHAPE_MISMATCH', () => {
    expectCode(() => createTensor('int32', [3], new Int32Array(2)), 'TENSOR_SHAPE_MISMATCH');
    expectCode(() => createTensor('string', [], []), 'TENSOR_SHAPE_MISMATCH');
  });
  it('refuses data of the wrong array type with TENSOR_INVALID', () => {
    const wrong: [string, unknown][] = [
      ['float32', new Float64Array(1)],
      ['float32', [1]],
      ['int64', new Int32Array(1)],
      ['uint64', new BigInt64Array(1)],
      ['bool', [true]],
      ['bool', new Int8Array(1)],
      ['uint8', new Uint8ClampedArray(1)],
      ['uint8', new DataView(new ArrayBuffer(1))],
      ['string', new Uint8Array(1)],
      ['string', [1]],
      ['string', { length: 1, 0: 'a' }],
    ];
    for (const [dtype, data] of wrong) {
      expectCode(() => assertTensor({ dtype, shape: [1], data }), 'TENSOR_INVALID');
    }
  });
  it('refuses typed arrays that only pretend to be of another type', () => {
    const fake = new Int32Array(1);
    Object.defineProperty(fake, Symbol.toStringTag, { value: 'Float32Array' });
    expectCode(() => assertTensor({ dtype: 'float32', shape: [1], data: fake }), 'TENSOR_INVALID');
  });
  it('refuses non-tensors, unknown dtypes, bad shapes, bool bytes above 1, lone surrogates', () => {
    for (const v of [null, 1, 'x', [], undefined]) expectCode(() => assertTensor(v), 'TENSOR_INVALID');
    expectCode(() => assertTensor({ dtype: 'float16', shape: [1], data: new Uint16Array(1) }), 'TENSOR_DTYPE_UNKNOWN');
    expectCode(() => assertTensor({ dtype: 'uint8', shape: 1, data: new Uint8Array(1) }), 'TENSOR_INVALID');
    expectCode(() => assertTensor({ dtype: 'uint8', shape: [-1], data: new Uint8Array(1) }), 'TENSOR_INVALID');
    expectCode(() => createTensor('bool', [2], new Uint8Array([1, 2])), 'TENSOR_DATA_INVALID');
    expectCode(() => createTensor('string', [1], ['a\uD800']), 'TENSOR_DATA_INVALID');
  });
  it('names the tensor in error details', () => {
    try {
      assertTensor({ dtype: 'uint8', shape: [2], data: new Uint8Array(1) }, 'x');
      expect.unreachable();
    } catch (e) {
      expect(e).toMatchObject({ code: 'TENSOR_SHAPE_MISMATCH', details: { tensor: 'x', expected: 2, actual: 1 } });
    }
  });
  it('accepts every random valid tensor', () => {
    fc.assert(fc.property(tensorArb(), (t: Tensor) => assertTensor(t)));
  });
});

describe('assertTensorMap', () => {
  it('checks names and tensors', () => {
    const t = createTensor('uint8', [], new Uint8Array([1]));
    assertTensorMap({ a: t, b: t });
    expectCode(() => assertTensorMap({ '': t }), 'TENSOR_INVALID');
    expectCode(() => assertTensorMap({ a: { ...t, shape: [2] } }), 'TENSOR_SHAPE_MISMATCH');
    for (const v of [null, [t], 'x']) expectCode(() => assertTensorMap(v), 'TENSOR_INVALID');
  });
});
