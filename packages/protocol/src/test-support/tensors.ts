/**
 * Test support for tensors: fast-check arbitraries, bit-exact comparison, and the hand-assembled
 * vectors of docs/protocol.md §2.4.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { DTYPES, type DType, isTensorName, type Tensor, type TensorMap } from '../tensor.js';

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** Float32 bit patterns, weighted towards the ones that break naive code. */
const float32Bits = fc.oneof(
  fc.constantFrom(
    0x00000000, // +0
    0x80000000, // -0
    0x7f800000, // +Infinity
    0xff800000, // -Infinity
    0x7fc00000, // canonical quiet NaN
    0xffc00001, // negative quiet NaN with a payload
    0x7f800001, // signalling NaN
    0x00000001, // smallest subnormal
    0x7f7fffff, // largest finite
  ),
  fc.integer({ min: 0, max: 0xffffffff }),
);

/** Float64 bit patterns, likewise. */
const float64Bits = fc.oneof(
  fc.constantFrom(
    0n,
    0x8000000000000000n, // -0
    0x7ff0000000000000n, // +Infinity
    0xfff0000000000000n, // -Infinity
    0x7ff8000000000000n, // canonical quiet NaN
    0xfff8000000000001n, // negative quiet NaN with a payload
    0x7ff0000000000001n, // signalling NaN
    0x0000000000000001n, // smallest subnormal
  ),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
);

/** Strings, including a leading BOM, astral characters and the empty string. */
const stringElement = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constantFrom('', '\uFEFF', '\uFEFFx', 'é', '日本', '😀', '\u0000', '\uFFFF'),
);

/** A shape of rank 0..3 with dims 0..4. */
const shapeArb = fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 });

function count(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** A random valid tensor of `dtype`, or of any dtype. */
export function tensorArb(dtype?: DType): fc.Arbitrary<Tensor> {
  const dtypeArb = dtype === undefined ? fc.constantFrom(...DTYPES) : fc.constant(dtype);
  return fc.tuple(dtypeArb, shapeArb).chain(([d, shape]) => {
    const n = count(shape);
    const elements = <T>(arb: fc.Arbitrary<T>) => fc.array(arb, { minLength: n, maxLength: n });
    const make = (data: Tensor['data']): Tensor => ({ dtype: d, shape, data }) as Tensor;
    switch (d) {
      case 'float32':
        return elements(float32Bits).map((bits) => make(new Float32Array(new Uint32Array(bits).buffer)));
      case 'float64':
        return elements(float64Bits).map((bits) => make(new Float64Array(new BigUint64Array(bits).buffer)));
      case 'int8':
        return elements(fc.integer({ min: -128, max: 127 })).map((v) => make(new Int8Array(v)));
      case 'int16':
        return elements(fc.integer({ min: -32768, max: 32767 })).map((v) => make(new Int16Array(v)));
      case 'int32':
        return elements(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })).map((v) => make(new Int32Array(v)));
      case 'int64':
        return elements(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })).map((v) => make(new BigInt64Array(v)));
      case 'uint8':
        return elements(fc.integer({ min: 0, max: 255 })).map((v) => make(new Uint8Array(v)));
      case 'uint16':
        return elements(fc.integer({ min: 0, max: 65535 })).map((v) => make(new Uint16Array(v)));
      case 'uint32':
        return elements(fc.integer({ min: 0, max: 2 ** 32 - 1 })).map((v) => make(new Uint32Array(v)));
      case 'uint64':
        return elements(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })).map((v) => make(new BigUint64Array(v)));
      case 'bool':
        return elements(fc.constantFrom(0, 1)).map((v) => make(new Uint8Array(v)));
      case 'string':
        return elements(stringElement).map((v) => make(v));
    }
  });
}

/** Valid tensor names, including prototype keys and non-ASCII names. */
export const tensorNameArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('x', 'a', 'b', '__proto__', 'constructor', 'toString', 'é', '\uFF61', '😀', 'z'.repeat(256)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }).filter(isTensorName),
);

/** A random tensor map (a `null`-prototype object, so `__proto__` is an ordinary key). */
export function tensorMapArb(dtype?: DType): fc.Arbitrary<TensorMap> {
  return fc
    .uniqueArray(fc.tuple(tensorNameArb, tensorArb(dtype)), { selector: ([name]) => name, maxLength: 4 })
    .map((entries) => {
      const map: TensorMap = Object.create(null);
      for (const [name, tensor] of entries) map[name] = tensor;
      return map;
    });
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** The host-order bytes of a typed array (only for comparing two arrays on the same host). */
function rawBytes(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Asserts `actual` and `expected` hold the same names, dtypes, shapes and bit-identical data. */
export function expectSameTensors(actual: TensorMap, expected: TensorMap): void {
  expect(Object.keys(actual).sort()).toEqual(Object.keys(expected).sort());
  for (const name of Object.keys(expected)) {
    const a = actual[name] as Tensor;
    const e = expected[name] as Tensor;
    expect(a.dtype, name).toBe(e.dtype);
    expect(a.shape, name).toEqual(e.shape);
    if (e.dtype === 'string') expect(a.data, name).toEqual(e.data);
    else {
      expect(Object.prototype.toString.call(a.data), name).toBe(Object.prototype.toString.call(e.data));
      expect(rawBytes(a.data as ArrayBufferView), name).toEqual(rawBytes(e.data as ArrayBufferView));
    }
  }
}

/** Builds a `null`-prototype map. */
export function mapOf(entries: Record<string, Tensor>): TensorMap {
  return Object.assign(Object.create(null) as TensorMap, entries);
}

// ---------------------------------------------------------------------------------------------
// Hand-assembled vectors (docs/protocol.md §2.4)
//
// Every hex string was written by hand from the layout of docs/design.md §2.2 / tensors.md §3, one field
// per line, never produced by the encoder. IEEE bit patterns and UTF-8 bytes were checked with
// Python's `struct.pack('<…')` and `str.encode()`. Each `sha256` was computed with coreutils, e.g.
//   printf '56544e3100000000' | xxd -r -p | sha256sum
// The tensors are plain objects built without the code under test.

export interface TensorVector {
  /** Short id used in tensors.md §4. */
  id: string;
  description: string;
  tensors: TensorMap;
  /** The same tensors in the JSON form of docs/protocol.md §2.2 (full form, base64 where needed). */
  json: string;
  hex: string;
  sha256: string;
}

const f32 = (...bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);
const f64 = (...bits: bigint[]) => new Float64Array(new BigUint64Array(bits).buffer);

export const TENSOR_VECTORS: readonly TensorVector[] = [
  {
    id: 'V0',
    description: 'no tensors',
    tensors: mapOf({}),
    json: '{}',
    hex: [
      '56544e31', // magic "VTN1"
      '00000000', // u32 count = 0
    ].join(''),
    sha256: 'a5f7976bf007b7b227daa9ac31c0a3972f44317c998b185f1db4d55e6c48f214',
  },
  {
    id: 'V1',
    description: 'x: float32 [1, 2] = [1.0, -2.5]',
    tensors: mapOf({ x: { dtype: 'float32', shape: [1, 2], data: f32(0x3f800000, 0xc0200000) } }),
    json: '{"x":{"dtype":"float32","shape":[1,2],"data":[1,-2.5]}}',
    hex: [
      '56544e31', // magic "VTN1"
      '01000000', // u32 count = 1
      '01000000', // u32 name length = 1
      '78', // name "x"
      '01', // dtype float32 = 1
      '02', // rank 2
      '0100000000000000', // u64 dim 1
      '0200000000000000', // u64 dim 2
      '0000803f', // 1.0 = 0x3f800000, little-endian
      '000020c0', // -2.5 = 0xc0200000, little-endian
    ].join(''),
    sha256: 'e4753b2854adf4968e6cf77230b0586b50937b55994b2dfad7ca59d2dd8d3c49',
  },
  {
    id: 'V2',
    description: 'given out of order: b: uint8 [] = 255 (a scalar), a: int16 [2] = [-2, 300]',
    tensors: mapOf({
      b: { dtype: 'uint8', shape: [], data: new Uint8Array([255]) },
      a: { dtype: 'int16', shape: [2], data: new Int16Array([-2, 300]) },
    }),
    json: '{"b":{"dtype":"uint8","shape":[],"data":[255]},"a":{"dtype":"int16","shape":[2],"data":[-2,300]}}',
    hex: [
      '56544e31', // magic "VTN1"
      '02000000', // u32 count = 2
      // tensor "a" first: 0x61 < 0x62
      '01000000', // u32 name length = 1
      '61', // name "a"
      '05', // dtype int16 = 5
      '01', // rank 1
      '0200000000000000', // u64 dim 2
      'feff', // -2 = 0xfffe
      '2c01', // 300 = 0x012c
      // tensor "b"
      '01000000', // u32 name length = 1
      '62', // name "b"
      '02', // dtype uint8 = 2
      '00', // rank 0: no dims, one element
      'ff', // 255
    ].join(''),
    sha256: 'e064822c9d0d92cfb320b3c7a8f22fb705469444025cfdbee431cba139308c79',
  },
  {
    id: 'V3',
    description: 's: string [3] = ["", "é", "日本"]',
    tensors: mapOf({ s: { dtype: 'string', shape: [3], data: ['', 'é', '日本'] } }),
    json: '{"s":{"dtype":"string","shape":[3],"data":["","é","日本"]}}',
    hex: [
      '56544e31', // magic "VTN1"
      '01000000', // u32 count = 1
      '01000000', // u32 name length = 1
      '73', // name "s"
      '08', // dtype string = 8
      '01', // rank 1
      '0300000000000000', // u64 dim 3
      '00000000', // "": u32 length 0
      '02000000', // "é": u32 length 2
      'c3a9', // U+00E9
      '06000000', // "日本": u32 length 6
      'e697a5', // U+65E5
      'e69cac', // U+672C
    ].join(''),
    sha256: '1e1ac10ddb14d5ad0236df5dd3a17e88ff82e0b5049467690c4cc5cc451df523',
  },
  {
    id: 'V4',
    description: 'm: bool [2, 2] = [[true, false], [false, true]]',
    tensors: mapOf({ m: { dtype: 'bool', shape: [2, 2], data: new Uint8Array([1, 0, 0, 1]) } }),
    json: '{"m":{"dtype":"bool","shape":[2,2],"data":[true,false,false,true]}}',
    hex: [
      '56544e31', // magic "VTN1"
      '01000000', // u32 count = 1
      '01000000', // u32 name length = 1
      '6d', // name "m"
      '09', // dtype bool = 9
      '02', // rank 2
      '0200000000000000', // u64 dim 2
      '0200000000000000', // u64 dim 2
      '01000001', // true false false true, one byte each, row-major
    ].join(''),
    sha256: '8faae8f067530c499096cf541e4e722071b36c84cba5e9fb41f090938aa89c7c',
  },
  {
    id: 'V5',
    description: 'i: int64 [2] = [2^53 + 1, -1], u: uint64 [1] = [2^64 - 1]',
    tensors: mapOf({
      i: { dtype: 'int64', shape: [2], data: new BigInt64Array([2n ** 53n + 1n, -1n]) },
      u: { dtype: 'uint64', shape: [1], data: new BigUint64Array([2n ** 64n - 1n]) },
    }),
    json: '{"i":{"dtype":"int64","shape":[2],"data":["9007199254740993",-1]},"u":{"dtype":"uint64","shape":[1],"data":["18446744073709551615"]}}',
    hex: [
      '56544e31', // magic "VTN1"
      '02000000', // u32 count = 2
      '01000000', // u32 name length = 1
      '69', // name "i"
      '07', // dtype int64 = 7
      '01', // rank 1
      '0200000000000000', // u64 dim 2
      '0100000000002000', // 2^53 + 1 = 0x0020000000000001
      'ffffffffffffffff', // -1
      '01000000', // u32 name length = 1
      '75', // name "u"
      '0d', // dtype uint64 = 13
      '01', // rank 1
      '0100000000000000', // u64 dim 1
      'ffffffffffffffff', // 2^64 - 1
    ].join(''),
    sha256: 'ee8539e88fd7f12f6d0885bb8c9d291804445c7453fcc76bfab62b6388fc5ba9',
  },
  {
    id: 'V6',
    description: 'f: float64 [3] = [-0, NaN, -Infinity], g: float32 [2] = [NaN with payload 0x7fc00001, -0]',
    tensors: mapOf({
      f: { dtype: 'float64', shape: [3], data: f64(0x8000000000000000n, 0x7ff8000000000000n, 0xfff0000000000000n) },
      g: { dtype: 'float32', shape: [2], data: f32(0x7fc00001, 0x80000000) },
    }),
    // g's NaN payload has no full-form spelling ("NaN" reads as the canonical quiet NaN): base64.
    json: '{"f":{"dtype":"float64","shape":[3],"data":["-0","NaN","-Infinity"]},"g":{"dtype":"float32","shape":[2],"base64":"AQDAfwAAAIA="}}',
    hex: [
      '56544e31', // magic "VTN1"
      '02000000', // u32 count = 2
      '01000000', // u32 name length = 1
      '66', // name "f"
      '0b', // dtype float64 = 11
      '01', // rank 1
      '0300000000000000', // u64 dim 3
      '0000000000000080', // -0 = 0x8000000000000000
      '000000000000f87f', // NaN = 0x7ff8000000000000
      '000000000000f0ff', // -Infinity = 0xfff0000000000000
      '01000000', // u32 name length = 1
      '67', // name "g"
      '01', // dtype float32 = 1
      '01', // rank 1
      '0200000000000000', // u64 dim 2
      '0100c07f', // NaN 0x7fc00001: the payload is kept
      '00000080', // -0 = 0x80000000
    ].join(''),
    sha256: '5b55d8bd174fbedf69c9c6ec4e3dde5140f90bc533fa1e1c4c4fce4cdc8205cc',
  },
  {
    id: 'V7',
    description: 'names sorted as UTF-8 bytes, not UTF-16: "😀": uint8 [] = 2, "｡" (U+FF61): uint8 [] = 1',
    tensors: mapOf({
      '😀': { dtype: 'uint8', shape: [], data: new Uint8Array([2]) },
      '\uFF61': { dtype: 'uint8', shape: [], data: new Uint8Array([1]) },
    }),
    json: '{"😀":{"dtype":"uint8","shape":[],"data":[2]},"\uFF61":{"dtype":"uint8","shape":[],"data":[1]}}',
    hex: [
      '56544e31', // magic "VTN1"
      '02000000', // u32 count = 2
      // U+FF61 first: UTF-8 ef… < f0… (in UTF-16, 0xD83D < 0xFF61 would put 😀 first)
      '03000000', // u32 name length = 3
      'efbda1', // name U+FF61
      '02', // dtype uint8 = 2
      '00', // rank 0
      '01', // 1
      '04000000', // u32 name length = 4
      'f09f9880', // name U+1F600
      '02', // dtype uint8 = 2
      '00', // rank 0
      '02', // 2
    ].join(''),
    sha256: '5728c1ed63b28fdc28d950a45d0dacec6da3a1b1352bab7c935182124940b41b',
  },
  {
    id: 'V8',
    description: 'a: int8 [2] = [-128, 127], b: uint16 [1] = [65535], c: int32 [1] = [-2], d: uint32 [1] = [2^32 - 1]',
    tensors: mapOf({
      a: { dtype: 'int8', shape: [2], data: new Int8Array([-128, 127]) },
      b: { dtype: 'uint16', shape: [1], data: new Uint16Array([65535]) },
      c: { dtype: 'int32', shape: [1], data: new Int32Array([-2]) },
      d: { dtype: 'uint32', shape: [1], data: new Uint32Array([2 ** 32 - 1]) },
    }),
    json: '{"a":{"dtype":"int8","shape":[2],"data":[-128,127]},"b":{"dtype":"uint16","shape":[1],"data":[65535]},"c":{"dtype":"int32","shape":[1],"data":[-2]},"d":{"dtype":"uint32","shape":[1],"data":[4294967295]}}',
    hex: [
      '56544e31', // magic "VTN1"
      '04000000', // u32 count = 4
      '01000000', // u32 name length = 1
      '61', // name "a"
      '03', // dtype int8 = 3
      '01', // rank 1
      '0200000000000000', // u64 dim 2
      '807f', // -128, 127
      '01000000', // u32 name length = 1
      '62', // name "b"
      '04', // dtype uint16 = 4
      '01', // rank 1
      '0100000000000000', // u64 dim 1
      'ffff', // 65535
      '01000000', // u32 name length = 1
      '63', // name "c"
      '06', // dtype int32 = 6
      '01', // rank 1
      '0100000000000000', // u64 dim 1
      'feffffff', // -2
      '01000000', // u32 name length = 1
      '64', // name "d"
      '0c', // dtype uint32 = 12
      '01', // rank 1
      '0100000000000000', // u64 dim 1
      'ffffffff', // 2^32 - 1
    ].join(''),
    sha256: 'a5e9b5373995d01b31e409c2b18712ba7b7a509ca4657d8e9063c113bd992385',
  },
];
