/**
 * Named tensors (docs/design.md §2.2): dtypes, the in-memory {@link Tensor} type, and the checks every
 * tensor passes before it is encoded, digested or served.
 *
 * The JSON forms live in `tensor-json.ts`, the canonical binary encoding (what gets digested) in
 * `tensor-encoding.ts`, and validation against a model's signatures in `tensor-signature.ts`.
 * The byte-level spec with test vectors is `docs/protocol.md` §2.
 */
import { fail } from './errors.js';

/**
 * The twelve dtypes of docs/design.md §2.2, in a fixed order.
 *
 * @example
 * ```ts
 * for (const dtype of DTYPES) console.log(dtype, DTYPE_CODES[dtype]);
 * ```
 */
export const DTYPES = [
  'float32',
  'float64',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'uint16',
  'uint32',
  'uint64',
  'bool',
  'string',
] as const;

/**
 * A tensor element type.
 *
 * @example
 * ```ts
 * const dtype: DType = 'float32';
 * ```
 */
export type DType = (typeof DTYPES)[number];

/**
 * The code of each dtype in the canonical binary encoding. These are the ONNX
 * `TensorProto.DataType` numbers (onnx/onnx.proto), an independent standard, so an ONNX runtime
 * and a Verity encoder agree on them without a mapping table of our own.
 *
 * @example
 * ```ts
 * DTYPE_CODES.float32; // 1
 * DTYPE_CODES.bool; // 9
 * ```
 */
export const DTYPE_CODES: Readonly<Record<DType, number>> = Object.freeze({
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

const DTYPE_BY_CODE: ReadonlyMap<number, DType> = new Map(DTYPES.map((d) => [DTYPE_CODES[d], d]));

/**
 * The dtype with binary code `code` (see {@link DTYPE_CODES}), or `undefined`.
 *
 * @example
 * ```ts
 * dtypeFromCode(11); // 'float64'
 * dtypeFromCode(10); // undefined (ONNX float16 is not a Verity dtype)
 * ```
 */
export function dtypeFromCode(code: number): DType | undefined {
  return DTYPE_BY_CODE.get(code);
}

/**
 * True when `value` is one of the twelve dtype names.
 *
 * @example
 * ```ts
 * isDType('int64'); // true
 * isDType('float16'); // false
 * ```
 */
export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && (DTYPES as readonly string[]).includes(value);
}

/**
 * The data array of each dtype. `bool` is a `Uint8Array` holding only 0 and 1 (one byte per
 * element, as in the binary encoding); `string` is an array of well-formed strings.
 *
 * @example
 * ```ts
 * const ids: TensorDataMap['int64'] = new BigInt64Array([101n, 2023n]);
 * ```
 */
export interface TensorDataMap {
  float32: Float32Array;
  float64: Float64Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  uint16: Uint16Array;
  uint32: Uint32Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
  string: string[];
}

/**
 * The data array type of dtype `D`.
 *
 * @example
 * ```ts
 * const data: TensorData<'int64'> = new BigInt64Array([1n, -2n]);
 * ```
 */
export type TensorData<D extends DType> = TensorDataMap[D];

/**
 * A tensor of one dtype `D`: `data` holds the elements in row-major order, and its length is the
 * product of `shape` (1 for a scalar, whose shape is `[]`).
 *
 * @example
 * ```ts
 * const t: TensorOf<'float32'> = { dtype: 'float32', shape: [2], data: new Float32Array([1, 2]) };
 * ```
 */
export interface TensorOf<D extends DType> {
  dtype: D;
  shape: number[];
  data: TensorDataMap[D];
}

/**
 * A tensor of any dtype, discriminated on `dtype`, so a `switch (t.dtype)` narrows `t.data`.
 *
 * @example
 * ```ts
 * function sum(t: Tensor): number {
 *   if (t.dtype === 'float32') return t.data.reduce((a, b) => a + b, 0); // t.data: Float32Array
 *   throw new Error('float32 only');
 * }
 * ```
 */
export type Tensor = { [D in DType]: TensorOf<D> }[DType];

/**
 * Named tensors, e.g. a model call's inputs or outputs. Maps returned by this package have a
 * `null` prototype, so a tensor may safely be named `__proto__` or `constructor`.
 *
 * @example
 * ```ts
 * const inputs: TensorMap = { x: createTensor('float32', [1, 2], new Float32Array([1, -2.5])) };
 * ```
 */
export type TensorMap = Record<string, Tensor>;

/**
 * Longest tensor name, in UTF-8 bytes (docs/protocol.md §2.1).
 *
 * @example
 * ```ts
 * isTensorName('x'.repeat(MAX_TENSOR_NAME_BYTES)); // true
 * ```
 */
export const MAX_TENSOR_NAME_BYTES = 256;

/**
 * Highest rank: the binary encoding stores the rank in one byte (docs/design.md §2.2).
 *
 * @example
 * ```ts
 * tensorElementCount(new Array(MAX_TENSOR_RANK).fill(1)); // 1
 * ```
 */
export const MAX_TENSOR_RANK = 255;

/**
 * Bytes per element of each fixed-width dtype (`string` has none). `bool` takes one byte, 0 or 1.
 * @internal
 */
export const DTYPE_WIDTH: Readonly<Record<Exclude<DType, 'string'>, 1 | 2 | 4 | 8>> = Object.freeze({
  float32: 4,
  float64: 8,
  int8: 1,
  int16: 2,
  int32: 4,
  int64: 8,
  uint8: 1,
  uint16: 2,
  uint32: 4,
  uint64: 8,
  bool: 1,
});

/** The typed-array class name that holds each fixed-width dtype. */
const TYPED_ARRAY_NAME: Readonly<Record<Exclude<DType, 'string'>, string>> = {
  float32: 'Float32Array',
  float64: 'Float64Array',
  int8: 'Int8Array',
  int16: 'Int16Array',
  int32: 'Int32Array',
  int64: 'BigInt64Array',
  uint8: 'Uint8Array',
  uint16: 'Uint16Array',
  uint32: 'Uint32Array',
  uint64: 'BigUint64Array',
  bool: 'Uint8Array',
};

// The intrinsic %TypedArray%.prototype[@@toStringTag] getter returns a typed array's internal
// class name (also for arrays from another realm, and for Buffer, which is a Uint8Array), and
// `undefined` for anything else; unlike `instanceof` or a user-overridable tag, it cannot be fooled.
const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Uint8Array.prototype), Symbol.toStringTag)
  ?.get as (this: unknown) => string | undefined;

/** @internal The typed-array class name of `value`, or `undefined` when it is not a typed array. */
export function typedArrayName(value: unknown): string | undefined {
  return typedArrayTag.call(value);
}

/**
 * True when `name` is a valid tensor name: 1 to 256 bytes of UTF-8, well-formed (no lone
 * surrogate), without control characters (U+0000–U+001F, U+007F–U+009F).
 *
 * @example
 * ```ts
 * isTensorName('input_ids'); // true
 * isTensorName(''); // false
 * isTensorName('a\nb'); // false
 * ```
 */
export function isTensorName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0) return false;
  let bytes = 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return false;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = name.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
    else bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
    if (bytes > MAX_TENSOR_NAME_BYTES) return false;
  }
  return true;
}

/** @internal Throws `TENSOR_INVALID` unless {@link isTensorName}. */
export function assertTensorName(name: unknown): asserts name is string {
  if (!isTensorName(name)) {
    fail(
      'TENSOR_INVALID',
      `invalid tensor name: names are 1..${MAX_TENSOR_NAME_BYTES} bytes of UTF-8 without control characters`,
      { tensor: typeof name === 'string' ? name.slice(0, 300) : typeof name },
    );
  }
}

/**
 * UTF-8 byte length of `text`, or -1 when it holds a lone surrogate (which UTF-8 cannot carry:
 * `TextEncoder` would silently turn it into U+FFFD, so two different strings would share bytes).
 * @internal
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return -1;
      bytes += 4;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return -1;
    else bytes += 3;
  }
  return bytes;
}

/**
 * The number of elements of a tensor of shape `shape`: the product of its dims, 1 for `[]`.
 * Throws `TENSOR_INVALID` unless every dim is a non-negative safe integer and the rank is at most
 * 255, and `TENSOR_TOO_LARGE` when the product passes 2^53 − 1.
 *
 * @param name - the tensor's name, for error details only
 * @example
 * ```ts
 * tensorElementCount([2, 3]); // 6
 * tensorElementCount([]); // 1
 * ```
 */
export function tensorElementCount(shape: readonly unknown[], name?: string): number {
  return elementCount(shape, name === undefined ? {} : { tensor: name });
}

/** {@link tensorElementCount}, with `where` (the tensor's name) added to error details. */
function elementCount(shape: readonly unknown[], where: Record<string, unknown>): number {
  if (shape.length > MAX_TENSOR_RANK) {
    fail('TENSOR_INVALID', `rank ${shape.length} is above ${MAX_TENSOR_RANK}`, { ...where, actual: shape.length });
  }
  let count = 1;
  let zero = false;
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      fail('TENSOR_INVALID', 'every dim must be a non-negative safe integer', { ...where, actual: describeValue(dim) });
    }
    if (dim === 0) zero = true;
    else count *= dim;
  }
  if (zero) return 0;
  if (count > Number.MAX_SAFE_INTEGER) {
    fail('TENSOR_TOO_LARGE', 'element count passes 2^53 - 1', { ...where, actual: count });
  }
  return count;
}

/**
 * Checks that `value` is a well-formed {@link Tensor}: a known dtype, a valid shape, `data` of the
 * dtype's array type with exactly as many elements as the shape says, bool bytes 0 or 1, strings
 * well-formed (no lone surrogates).
 *
 * Throws `TENSOR_INVALID` (not a tensor, bad shape or data type), `TENSOR_DTYPE_UNKNOWN`,
 * `TENSOR_SHAPE_MISMATCH` (element count differs from the shape) or `TENSOR_DATA_INVALID`.
 *
 * @param name - the tensor's name, for error details only
 * @example
 * ```ts
 * assertTensor({ dtype: 'bool', shape: [2], data: new Uint8Array([1, 0]) }); // passes
 * assertTensor({ dtype: 'bool', shape: [2], data: new Uint8Array([2, 0]) }); // TENSOR_DATA_INVALID
 * ```
 */
export function assertTensor(value: unknown, name?: string): asserts value is Tensor {
  const where = name === undefined ? {} : { tensor: name };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    fail('TENSOR_INVALID', 'a tensor must be an object { dtype, shape, data }', where);
  }
  const { dtype, shape, data } = value as { dtype?: unknown; shape?: unknown; data?: unknown };
  if (!isDType(dtype)) {
    fail('TENSOR_DTYPE_UNKNOWN', 'unknown dtype', { ...where, actual: describeValue(dtype) });
  }
  if (!Array.isArray(shape)) fail('TENSOR_INVALID', 'shape must be an array', where);
  const count = elementCount(shape, where);
  let length: number;
  if (dtype === 'string') {
    if (!Array.isArray(data)) fail('TENSOR_INVALID', 'string tensor data must be an array of strings', where);
    for (let i = 0; i < data.length; i++) {
      const s: unknown = data[i];
      if (typeof s !== 'string') fail('TENSOR_INVALID', 'string tensor data must be an array of strings', where);
      if (utf8Length(s) < 0) {
        fail('TENSOR_DATA_INVALID', 'string holds a lone surrogate, which UTF-8 cannot encode', { ...where, index: i });
      }
    }
    length = data.length;
  } else {
    const expected = TYPED_ARRAY_NAME[dtype];
    const actual = typedArrayName(data);
    if (actual !== expected) {
      fail('TENSOR_INVALID', `${dtype} tensor data must be a ${expected}`, {
        ...where,
        expected,
        actual: actual ?? describeValue(data),
      });
    }
    const array = data as Uint8Array;
    length = array.length;
    if (dtype === 'bool') {
      for (let i = 0; i < array.length; i++) {
        if ((array[i] as number) > 1) {
          fail('TENSOR_DATA_INVALID', 'bool elements must be 0 or 1', { ...where, index: i, actual: array[i] });
        }
      }
    }
  }
  if (length !== count) {
    fail('TENSOR_SHAPE_MISMATCH', `shape [${shape.join(', ')}] holds ${count} elements but data has ${length}`, {
      ...where,
      expected: count,
      actual: length,
    });
  }
}

/**
 * Checks every name and tensor of `map` (see {@link isTensorName} and {@link assertTensor}).
 *
 * @example
 * ```ts
 * assertTensorMap({ x: createTensor('int32', [1], new Int32Array([7])) }); // passes
 * assertTensorMap({ '': createTensor('int32', [1], new Int32Array([7])) }); // TENSOR_INVALID
 * ```
 */
export function assertTensorMap(map: unknown): asserts map is TensorMap {
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    fail('TENSOR_INVALID', 'tensors must be an object mapping names to tensors');
  }
  for (const name of Object.keys(map)) {
    assertTensorName(name);
    assertTensor((map as Record<string, unknown>)[name], name);
  }
}

/**
 * Makes a tensor, checking it with {@link assertTensor}. The shape is copied; `data` is kept as
 * given (not copied).
 *
 * @example
 * ```ts
 * const x = createTensor('float32', [1, 2], new Float32Array([1, -2.5]));
 * const s = createTensor('string', [], ['héllo']); // a scalar
 * createTensor('int32', [3], new Int32Array(2)); // throws TENSOR_SHAPE_MISMATCH
 * ```
 */
export function createTensor<D extends DType>(dtype: D, shape: readonly number[], data: TensorData<D>): TensorOf<D> {
  const tensor = { dtype, shape: Array.isArray(shape) ? [...shape] : shape, data } as TensorOf<D>;
  assertTensor(tensor);
  return tensor;
}

/** @internal A short, JSON-safe description of an untrusted value for error details. */
export function describeValue(value: unknown): string | number | boolean | null {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'string') return value.length > 64 ? `${value.slice(0, 64)}…` : value;
  if (typeof value === 'bigint') return `${value}n`;
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
