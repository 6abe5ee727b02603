/**
 * The JSON forms of named tensors in APIs (docs/design.md §2.2; docs/protocol.md §2.2):
 *
 * - full form `{"x": {"dtype": "float32", "shape": [1, 2], "data": [1, -2.5]}}`, `data` flat and
 *   row-major;
 * - bit-exact form `{"x": {"dtype": "float32", "shape": [1, 2], "base64": "AACAPwAAIMA="}}`, the
 *   little-endian element bytes of the binary encoding (not for `string`);
 * - short form `{"x": [[1, -2.5]]}`, whose dtype comes from the model's signature and whose shape
 *   is the nesting of the arrays.
 *
 * JSON numbers cannot carry NaN, ±Infinity or -0, yet docs/design.md §2.2 keeps them bitwise, so float
 * elements may also be the strings "NaN", "Infinity", "-Infinity", "-0". int64/uint64 elements
 * above 2^53 − 1 in magnitude are decimal strings, because a JSON number would lose digits.
 *
 * Everything read here is untrusted: any malformed input throws a {@link VerityError}, never a
 * TypeError or RangeError.
 */
import { fromBase64, toBase64 } from './bytes.js';
import { fail, type VerityError } from './errors.js';
import {
  assertTensor,
  assertTensorMap,
  assertTensorName,
  DTYPE_WIDTH,
  type DType,
  describeValue,
  isDType,
  type Tensor,
  type TensorMap,
  tensorElementCount,
  utf8Length,
} from './tensor.js';
import { dataFromLittleEndian, dataToLittleEndian } from './tensor-encoding.js';
import {
  resolveLimits,
  signatureIndex,
  type TensorLimits,
  type TensorSignature,
  validateTensors,
} from './tensor-signature.js';

/**
 * One element in the JSON forms: a number, a float's special string ("NaN", "Infinity",
 * "-Infinity", "-0"), an int64/uint64 decimal string, a bool, or a string element.
 *
 * @example
 * ```ts
 * const row: TensorJsonElement[] = [1.5, 'NaN', '-0'];
 * ```
 */
export type TensorJsonElement = number | string | boolean;

/**
 * The full JSON form of a tensor.
 *
 * @example
 * ```ts
 * const x: TensorJsonFull = { dtype: 'float32', shape: [1, 2], data: [1, -2.5] };
 * ```
 */
export interface TensorJsonFull {
  dtype: DType;
  shape: number[];
  /** Elements, flat, in row-major order. */
  data: TensorJsonElement[];
}

/**
 * The bit-exact JSON form of a fixed-width tensor: its elements as little-endian bytes (exactly
 * the data of the binary encoding), in standard padded base64 (RFC 4648 §4).
 *
 * @example
 * ```ts
 * const x: TensorJsonBase64 = { dtype: 'float32', shape: [1, 2], base64: 'AACAPwAAIMA=' };
 * ```
 */
export interface TensorJsonBase64 {
  dtype: Exclude<DType, 'string'>;
  shape: number[];
  base64: string;
}

/**
 * A tensor's JSON form, full or bit-exact.
 *
 * @example
 * ```ts
 * const t: TensorJson = { dtype: 'bool', shape: [2], data: [true, false] };
 * ```
 */
export type TensorJson = TensorJsonFull | TensorJsonBase64;

/**
 * Options for {@link tensorsToJson}.
 *
 * @example
 * ```ts
 * const options: TensorsToJsonOptions = { form: 'base64' };
 * ```
 */
export interface TensorsToJsonOptions {
  /**
   * `'full'` (default): elements as JSON values; every value survives, -0 and ±Infinity included,
   * but a NaN is written as "NaN", so NaN payload bits are not kept. `'base64'`: element bytes,
   * bit-exact; string tensors, which have no base64 form, are written in the full form.
   */
  form?: 'full' | 'base64';
}

// ---------------------------------------------------------------------------------------------
// Writing

const FLOAT_SPECIALS: ReadonlyMap<string, number> = new Map([
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-Infinity', Number.NEGATIVE_INFINITY],
  ['-0', -0],
]);

function floatToJson(v: number): number | string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return 'Infinity';
  if (v === Number.NEGATIVE_INFINITY) return '-Infinity';
  if (Object.is(v, -0)) return '-0';
  return v;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function bigintToJson(v: bigint): number | string {
  return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v.toString();
}

/**
 * The JSON form of one tensor (see {@link tensorsToJson}). Throws like {@link assertTensor} when
 * `tensor` is malformed.
 *
 * @example
 * ```ts
 * tensorToJson(createTensor('float64', [2], new Float64Array([-0, Number.NaN])));
 * // { dtype: 'float64', shape: [2], data: ['-0', 'NaN'] }
 * ```
 */
export function tensorToJson(tensor: Tensor, options: TensorsToJsonOptions = {}): TensorJson {
  assertTensor(tensor);
  return toJson(tensor, options.form ?? 'full');
}

function toJson(t: Tensor, form: 'full' | 'base64'): TensorJson {
  const shape = [...t.shape];
  if (form === 'base64' && t.dtype !== 'string') {
    return { dtype: t.dtype, shape, base64: toBase64(dataToLittleEndian(t)) };
  }
  switch (t.dtype) {
    case 'float32':
    case 'float64':
      return { dtype: t.dtype, shape, data: Array.from(t.data, floatToJson) };
    case 'int64':
    case 'uint64':
      return { dtype: t.dtype, shape, data: Array.from(t.data, bigintToJson) };
    case 'bool':
      return { dtype: t.dtype, shape, data: Array.from(t.data, (v) => v === 1) };
    case 'string':
      return { dtype: t.dtype, shape, data: [...t.data] };
    default:
      return { dtype: t.dtype, shape, data: Array.from(t.data) };
  }
}

/**
 * The JSON form of named tensors, for API responses (docs/design.md §2.2). The result has a `null`
 * prototype (a tensor may be named `__proto__`) and serialises with `JSON.stringify`.
 *
 * @example
 * ```ts
 * const map = { x: createTensor('float32', [1, 2], new Float32Array([1, -2.5])) };
 * tensorsToJson(map); // { x: { dtype: 'float32', shape: [1, 2], data: [1, -2.5] } }
 * tensorsToJson(map, { form: 'base64' }); // { x: { dtype: 'float32', shape: [1, 2], base64: 'AACAPwAAIMA=' } }
 * ```
 */
export function tensorsToJson(map: TensorMap, options: TensorsToJsonOptions = {}): Record<string, TensorJson> {
  const form = options.form ?? 'full';
  if (form !== 'full' && form !== 'base64') {
    fail('INVALID_ARGUMENT', 'form must be "full" or "base64"', { actual: describeValue(form) });
  }
  assertTensorMap(map);
  const out: Record<string, TensorJson> = Object.create(null);
  for (const name of Object.keys(map)) out[name] = toJson(map[name] as Tensor, form);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

const INT_RANGE: Readonly<Record<'int8' | 'int16' | 'int32' | 'uint8' | 'uint16' | 'uint32', [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
  uint16: [0, 65535],
  uint32: [0, 4294967295],
};

const BIG_RANGE: Readonly<Record<'int64' | 'uint64', [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};

/** Canonical decimal: no sign but a leading '-', no leading zeros, at most 20 digits (2^64 has 20). */
const DECIMAL = /^-?(?:0|[1-9][0-9]{0,19})$/;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Converts flat JSON elements to the data array of `dtype`. */
function dataFromJson(
  dtype: DType,
  values: readonly unknown[],
  name: string,
  limits: Required<TensorLimits>,
): Tensor['data'] {
  const bad = (i: number, why: string): never =>
    fail('TENSOR_DATA_INVALID', `tensor "${name}" element ${i}: ${why}`, {
      tensor: name,
      index: i,
      expected: dtype,
      actual: describeValue(values[i]),
    });
  const n = values.length;
  switch (dtype) {
    case 'float32':
    case 'float64': {
      const out = dtype === 'float32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let x: number;
        // A JSON number is finite by definition: a literal like 1e400 that a parser turned into
        // Infinity is refused (infinities are spelled "Infinity" / "-Infinity").
        if (typeof v === 'number' && Number.isFinite(v)) x = v;
        else if (typeof v === 'string' && FLOAT_SPECIALS.has(v)) x = FLOAT_SPECIALS.get(v) as number;
        else return bad(i, 'expected a number or "NaN", "Infinity", "-Infinity", "-0"');
        // float32: rounded to the nearest float32 (Math.fround, IEEE 754 round-to-nearest-even);
        // a finite value beyond the float32 range would round to ±Infinity, which is refused
        // rather than turned silently into a different kind of value.
        if (dtype === 'float32' && Number.isFinite(x) && !Number.isFinite(Math.fround(x))) {
          return bad(i, 'finite value out of float32 range');
        }
        out[i] = x;
      }
      return out;
    }
    case 'int8':
    case 'int16':
    case 'int32':
    case 'uint8':
    case 'uint16':
    case 'uint32': {
      const [min, max] = INT_RANGE[dtype];
      const out = new {
        int8: Int8Array,
        int16: Int16Array,
        int32: Int32Array,
        uint8: Uint8Array,
        uint16: Uint16Array,
        uint32: Uint32Array,
      }[dtype](n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        // Checked before storing: a typed array would silently wrap or truncate.
        if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
          return bad(i, `expected an integer in ${min}..${max}`);
        }
        out[i] = v;
      }
      return out;
    }
    case 'int64':
    case 'uint64': {
      const [min, max] = BIG_RANGE[dtype];
      const out = dtype === 'int64' ? new BigInt64Array(n) : new BigUint64Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let x: bigint;
        if (typeof v === 'number') {
          // A JSON number beyond 2^53 - 1 may already have lost digits in the parser.
          if (!Number.isSafeInteger(v)) return bad(i, 'expected a safe integer, or a decimal string beyond 2^53 - 1');
          x = BigInt(v);
        } else if (typeof v === 'string') {
          if (!DECIMAL.test(v) || v === '-0') return bad(i, 'expected a canonical decimal integer string');
          x = BigInt(v);
        } else if (typeof v === 'bigint') x = v;
        else return bad(i, 'expected an integer');
        if (x < min || x > max) return bad(i, `out of ${dtype} range`);
        out[i] = x;
      }
      return out;
    }
    case 'bool': {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'boolean') return bad(i, 'expected true or false');
        out[i] = v ? 1 : 0;
      }
      return out;
    }
    case 'string': {
      const out: string[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v !== 'string') return bad(i, 'expected a string');
        const bytes = utf8Length(v);
        if (bytes < 0) return bad(i, 'string holds a lone surrogate, which UTF-8 cannot encode');
        if (bytes > limits.maxStringBytes) {
          fail('TENSOR_TOO_LARGE', `tensor "${name}" string ${i} is ${bytes} bytes, above ${limits.maxStringBytes}`, {
            tensor: name,
            index: i,
            expected: limits.maxStringBytes,
            actual: bytes,
          });
        }
        out[i] = v;
      }
      return out;
    }
  }
}

function checkCount(name: string, count: number, limits: Required<TensorLimits>): void {
  if (count > limits.maxElements) {
    fail('TENSOR_TOO_LARGE', `tensor "${name}" has ${count} elements, above ${limits.maxElements}`, {
      tensor: name,
      expected: limits.maxElements,
      actual: count,
    });
  }
}

const FULL_KEYS = new Set(['dtype', 'shape', 'data', 'base64']);

/** The full or base64 form. */
function parseFull(name: string, value: Record<string, unknown>, limits: Required<TensorLimits>): Tensor {
  for (const key of Object.keys(value)) {
    if (!FULL_KEYS.has(key)) {
      fail('TENSOR_INVALID', `tensor "${name}" has an unknown key`, { tensor: name, actual: describeValue(key) });
    }
  }
  const { dtype, shape } = value;
  if (!isDType(dtype)) {
    if (typeof dtype === 'string') {
      fail('TENSOR_DTYPE_UNKNOWN', `tensor "${name}" has an unknown dtype`, {
        tensor: name,
        actual: describeValue(dtype),
      });
    }
    fail('TENSOR_INVALID', `tensor "${name}" needs a dtype`, { tensor: name });
  }
  if (!Array.isArray(shape)) fail('TENSOR_INVALID', `tensor "${name}" needs a shape array`, { tensor: name });
  const count = tensorElementCount(shape, name);
  checkCount(name, count, limits);
  const hasData = Object.hasOwn(value, 'data');
  const hasBase64 = Object.hasOwn(value, 'base64');
  if (hasData === hasBase64) {
    fail('TENSOR_INVALID', `tensor "${name}" needs exactly one of "data" and "base64"`, { tensor: name });
  }
  const dims = [...(shape as number[])];
  if (hasData) {
    const data = value.data;
    if (!Array.isArray(data)) fail('TENSOR_INVALID', `tensor "${name}" data must be an array`, { tensor: name });
    if (data.length !== count) {
      fail('TENSOR_SHAPE_MISMATCH', `tensor "${name}" shape holds ${count} elements but data has ${data.length}`, {
        tensor: name,
        expected: count,
        actual: data.length,
      });
    }
    return { dtype, shape: dims, data: dataFromJson(dtype, data, name, limits) } as Tensor;
  }
  if (dtype === 'string') {
    fail('TENSOR_INVALID', `tensor "${name}": string tensors have no base64 form; use "data"`, { tensor: name });
  }
  const text = value.base64;
  if (typeof text !== 'string') fail('TENSOR_INVALID', `tensor "${name}" base64 must be a string`, { tensor: name });
  let bytes: Uint8Array;
  try {
    bytes = fromBase64(text);
  } catch (cause) {
    return fail('TENSOR_DATA_INVALID', `tensor "${name}" base64 is not canonical padded base64`, {
      tensor: name,
      cause: (cause as VerityError).message,
    });
  }
  const width = DTYPE_WIDTH[dtype];
  if (bytes.length !== count * width) {
    fail(
      bytes.length % width === 0 ? 'TENSOR_SHAPE_MISMATCH' : 'TENSOR_DATA_INVALID',
      `tensor "${name}" shape holds ${count} elements (${count * width} bytes) but base64 has ${bytes.length} bytes`,
      { tensor: name, expected: count * width, actual: bytes.length },
    );
  }
  if (dtype === 'bool') {
    const i = bytes.findIndex((b) => b > 1);
    if (i >= 0) {
      fail('TENSOR_DATA_INVALID', `tensor "${name}" bool byte ${i} is not 0 or 1`, {
        tensor: name,
        index: i,
        actual: bytes[i],
      });
    }
  }
  return { dtype, shape: dims, data: dataFromLittleEndian(dtype, bytes) } as Tensor;
}

/** The short form: nested arrays (a bare value for rank 0), dtype and rank from the signature. */
function parseShort(name: string, value: unknown, sig: TensorSignature, limits: Required<TensorLimits>): Tensor {
  const rank = sig.shape.length;
  const mismatch = (why: string, extra: Record<string, unknown> = {}): never =>
    fail('TENSOR_SHAPE_MISMATCH', `tensor "${name}" (short form): ${why}`, {
      tensor: name,
      expected: [...sig.shape],
      ...extra,
    });
  // The shape is read down the first elements; every other array is then checked against it.
  const shape: number[] = [];
  let level = value;
  for (let d = 0; d < rank; d++) {
    if (!Array.isArray(level)) return mismatch(`nested ${d} deep, expected rank ${rank}`);
    shape.push(level.length);
    if (level.length === 0) {
      // An empty array leaves its inner dims unknown.
      if (d < rank - 1) return mismatch('empty array above the innermost level; use the full form');
      break;
    }
    level = level[0];
  }
  const count = tensorElementCount(shape, name);
  checkCount(name, count, limits);
  const leaves: unknown[] = [];
  const walk = (v: unknown, d: number): void => {
    if (d === rank) {
      if (Array.isArray(v)) mismatch(`nested deeper than rank ${rank}`);
      leaves.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[d]) {
      mismatch('arrays are not rectangular', { actual: shape });
      return;
    }
    for (const child of v) walk(child, d + 1);
  };
  walk(value, 0);
  return { dtype: sig.dtype, shape, data: dataFromJson(sig.dtype, leaves, name, limits) } as Tensor;
}

/**
 * Reads one tensor in the full or base64 JSON form (see {@link tensorsFromJson}).
 *
 * @param name - the tensor's name, for error details only
 * @example
 * ```ts
 * tensorFromJson({ dtype: 'int64', shape: [2], data: [1, '9007199254740993'] });
 * // { dtype: 'int64', shape: [2], data: BigInt64Array [1n, 9007199254740993n] }
 * ```
 */
export function tensorFromJson(json: unknown, name = 'tensor', limits?: TensorLimits): Tensor {
  if (!isPlainObject(json)) fail('TENSOR_INVALID', 'a tensor must be an object { dtype, shape, data | base64 }');
  return parseFull(name, json, resolveLimits(limits));
}

/**
 * Reads named tensors from their JSON form (docs/design.md §2.2), e.g. an inference request body.
 *
 * Each value is the full form `{ dtype, shape, data }`, the bit-exact form `{ dtype, shape,
 * base64 }`, or, when `signatures` are given, the short form: nested arrays (or a bare value for
 * a scalar) whose dtype is the signature's and whose shape is the nesting, which must be
 * rectangular. With `signatures`, the result is also checked by {@link validateTensors}.
 *
 * Element values: float numbers, or "NaN", "Infinity", "-Infinity", "-0"; float32 values are
 * rounded to the nearest float32 (`Math.fround`), and a finite value beyond the float32 range is
 * refused. Integers must be exact and in range (never wrapped or rounded); int64/uint64 also take
 * canonical decimal strings, and need them beyond 2^53 − 1. Bools are `true`/`false`.
 *
 * Throws only {@link VerityError}: `JSON_INVALID` (not an object), `TENSOR_INVALID` (bad name or
 * structure, short form without signatures), `TENSOR_DTYPE_UNKNOWN`, `TENSOR_DATA_INVALID`,
 * `TENSOR_SHAPE_MISMATCH`, `TENSOR_TOO_LARGE`, and with signatures `TENSOR_MISSING`,
 * `TENSOR_UNEXPECTED`, `TENSOR_DTYPE_MISMATCH`; `INVALID_ARGUMENT` for malformed signatures.
 *
 * @param json - a parsed JSON value (`JSON.parse` output), untrusted
 * @param signatures - the model's input (or output) signatures; needed for the short form
 * @param limits - overrides of {@link DEFAULT_TENSOR_LIMITS}, applied before data is converted
 * @returns the tensors, in a `null`-prototype object
 * @example
 * ```ts
 * const sigs: TensorSignature[] = [{ name: 'x', dtype: 'float32', shape: ['batch', 2] }];
 * tensorsFromJson(JSON.parse('{"x": [[1, -2.5]]}'), sigs);
 * // { x: { dtype: 'float32', shape: [1, 2], data: Float32Array [1, -2.5] } }
 * tensorsFromJson({ x: { dtype: 'float64', shape: [2], data: ['-0', 'NaN'] } });
 * ```
 */
export function tensorsFromJson(
  json: unknown,
  signatures?: readonly TensorSignature[],
  limits?: TensorLimits,
): TensorMap {
  const resolved = resolveLimits(limits);
  const byName = signatures === undefined ? undefined : signatureIndex(signatures);
  if (!isPlainObject(json)) fail('JSON_INVALID', 'tensors must be a JSON object mapping names to tensors');
  const out: TensorMap = Object.create(null);
  for (const name of Object.keys(json)) {
    assertTensorName(name);
    const value = json[name];
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      if (!isPlainObject(value)) fail('TENSOR_INVALID', `tensor "${name}" is not a JSON object`, { tensor: name });
      out[name] = parseFull(name, value, resolved);
      continue;
    }
    if (byName === undefined) {
      fail('TENSOR_INVALID', `tensor "${name}" is in the short form, which needs the model's signatures`, {
        tensor: name,
      });
    }
    const sig = byName.get(name);
    if (sig === undefined) {
      fail('TENSOR_UNEXPECTED', `unexpected tensor "${name}"`, {
        tensor: name,
        expected: [...byName.keys()],
        actual: name,
      });
    }
    out[name] = parseShort(name, value, sig, resolved);
  }
  // Element counts and string lengths were checked against the limits while reading.
  if (signatures !== undefined) validateTensors(out, signatures, resolved);
  return out;
}

/**
 * The full JSON form, except for any tensor whose numbers would not read back to the same bits
 * (NaN payloads): that tensor is given in the base64 form. So whoever digests the JSON gets the
 * same digest as the tensors themselves — what a node needs for outputs and a bundle for inputs.
 *
 * @example
 * ```ts
 * const json = tensorsToExactJson(output); // numbers where exact, base64 where not
 * ```
 */
export function tensorsToExactJson(map: TensorMap): Record<string, TensorJson> {
  const full = tensorsToJson(map);
  const out: Record<string, TensorJson> = Object.create(null); // a tensor may be named __proto__
  for (const [name, json] of Object.entries(full)) {
    const tensor = map[name] as Tensor;
    out[name] = readsBackExactly(tensor)
      ? json
      : (tensorsToJson({ [name]: tensor }, { form: 'base64' })[name] as TensorJson);
  }
  return out;
}

/**
 * Whether the full JSON form gives back this tensor's exact bits. Integers, booleans and strings
 * always do; so do finite floats (shortest round-trip decimals, and float32 values are doubles
 * exactly), ±Infinity and -0 (spelled out). Only a NaN can lose bits: "NaN" reads back as the
 * canonical quiet NaN (0x7fc00000 / 0x7ff8000000000000), so any other payload needs base64.
 */
function readsBackExactly(tensor: Tensor): boolean {
  if (tensor.dtype !== 'float32' && tensor.dtype !== 'float64') return true;
  const data = tensor.data;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  for (let i = 0; i < data.length; i++) {
    const v = data[i] as number;
    if (!Number.isNaN(v)) continue;
    if (tensor.dtype === 'float32') {
      if (view.getUint32(i * 4, true) !== 0x7fc00000) return false;
    } else if (view.getUint32(i * 8, true) !== 0 || view.getUint32(i * 8 + 4, true) !== 0x7ff80000) {
      return false;
    }
  }
  return true;
}
