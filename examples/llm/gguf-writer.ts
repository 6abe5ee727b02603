/**
 * A small GGUF v3 writer (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), enough to
 * hand-build models for llama.cpp: typed metadata (scalars and arrays of scalars) and f32/f16
 * tensors. Everything is little-endian; the output depends only on the input, byte for byte.
 *
 * Layout: header (magic `GGUF`, version 3, tensor count u64, metadata count u64), the metadata
 * key/values, the tensor infos (name, dims in ggml order: innermost first, ggml type, offset into
 * the data section), padding to the alignment, then the tensor data, each tensor starting at a
 * multiple of the alignment (`general.alignment`, 32 when absent).
 */

/** Scalar metadata value types, named after the spec's `gguf_metadata_value_type`. */
export type GgufScalarType =
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'uint32'
  | 'int32'
  | 'float32'
  | 'bool'
  | 'string'
  | 'uint64'
  | 'int64'
  | 'float64';

export type GgufScalar = number | bigint | boolean | string;

/** A typed metadata value: one scalar, or an array of scalars of one type. */
export type GgufValue =
  | { readonly type: GgufScalarType; readonly value: GgufScalar }
  | { readonly type: 'array'; readonly itemType: GgufScalarType; readonly values: readonly GgufScalar[] };

/** Constructors for the common metadata values. */
export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'uint32', value }),
  i32: (value: number): GgufValue => ({ type: 'int32', value }),
  u64: (value: number | bigint): GgufValue => ({ type: 'uint64', value }),
  f32: (value: number): GgufValue => ({ type: 'float32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (values: readonly string[]): GgufValue => ({ type: 'array', itemType: 'string', values }),
  i32s: (values: readonly number[]): GgufValue => ({ type: 'array', itemType: 'int32', values }),
  f32s: (values: readonly number[]): GgufValue => ({ type: 'array', itemType: 'float32', values }),
};

/** Tensor element types this writer stores (ggml_type codes 0 and 1). */
export type GgufTensorType = 'f32' | 'f16';

export interface GgufTensor {
  readonly name: string;
  /** Dimensions in ggml order: `dims[0]` is the innermost (contiguous) one, e.g. `[n_embd, n_vocab]`. */
  readonly dims: readonly number[];
  /** Stored type; f16 values are rounded from the float32 data (round to nearest, ties to even). */
  readonly type: GgufTensorType;
  /** Row-major data, innermost dimension fastest; length = product of `dims`. */
  readonly data: Float32Array;
}

export interface GgufFile {
  /** Metadata in file order (insertion order of the record). */
  readonly metadata: Readonly<Record<string, GgufValue>>;
  readonly tensors: readonly GgufTensor[];
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

const VALUE_TYPE: Record<GgufScalarType | 'array', number> = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
};

const TENSOR_TYPE: Record<GgufTensorType, { code: number; bytes: number }> = {
  f32: { code: 0, bytes: 4 },
  f16: { code: 1, bytes: 2 },
};

const utf8 = new TextEncoder();

/** Growable little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(1024);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): number {
    const at = this.length;
    if (at + n > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < at + n) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.length = at + n;
    return at;
  }

  u8(v: number): void {
    const at = this.reserve(1);
    this.view.setUint8(at, v);
  }
  i8(v: number): void {
    const at = this.reserve(1);
    this.view.setInt8(at, v);
  }
  u16(v: number): void {
    const at = this.reserve(2);
    this.view.setUint16(at, v, true);
  }
  i16(v: number): void {
    const at = this.reserve(2);
    this.view.setInt16(at, v, true);
  }
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }
  i32(v: number): void {
    const at = this.reserve(4);
    this.view.setInt32(at, v, true);
  }
  u64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, BigInt(v), true);
  }
  i64(v: number | bigint): void {
    const at = this.reserve(8);
    this.view.setBigInt64(at, BigInt(v), true);
  }
  f32(v: number): void {
    const at = this.reserve(4);
    this.view.setFloat32(at, v, true);
  }
  f64(v: number): void {
    const at = this.reserve(8);
    this.view.setFloat64(at, v, true);
  }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length);
    this.buf.set(b, at);
  }
  /** A gguf_string: u64 byte length, then UTF-8 bytes (no terminator). */
  string(s: string): void {
    const b = utf8.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

function integer(v: GgufScalar, min: number, max: number, type: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`GGUF ${type} value out of range: ${String(v)}`);
  }
  return v;
}

function bigInteger(v: GgufScalar, min: bigint, max: bigint, type: string): bigint {
  if ((typeof v !== 'number' || !Number.isInteger(v)) && typeof v !== 'bigint') {
    throw new RangeError(`GGUF ${type} value must be an integer: ${String(v)}`);
  }
  const b = BigInt(v);
  if (b < min || b > max) throw new RangeError(`GGUF ${type} value out of range: ${String(v)}`);
  return b;
}

function writeScalar(w: ByteWriter, type: GgufScalarType, v: GgufScalar): void {
  switch (type) {
    case 'uint8':
      w.u8(integer(v, 0, 0xff, type));
      break;
    case 'int8':
      w.i8(integer(v, -0x80, 0x7f, type));
      break;
    case 'uint16':
      w.u16(integer(v, 0, 0xffff, type));
      break;
    case 'int16':
      w.i16(integer(v, -0x8000, 0x7fff, type));
      break;
    case 'uint32':
      w.u32(integer(v, 0, 0xffffffff, type));
      break;
    case 'int32':
      w.i32(integer(v, -0x80000000, 0x7fffffff, type));
      break;
    case 'uint64':
      w.u64(bigInteger(v, 0n, 0xffffffffffffffffn, type));
      break;
    case 'int64':
      w.i64(bigInteger(v, -0x8000000000000000n, 0x7fffffffffffffffn, type));
      break;
    case 'float32':
    case 'float64':
      if (typeof v !== 'number') throw new TypeError(`GGUF ${type} value must be a number: ${String(v)}`);
      if (type === 'float32') w.f32(v);
      else w.f64(v);
      break;
    case 'bool':
      if (typeof v !== 'boolean') throw new TypeError(`GGUF bool value must be a boolean: ${String(v)}`);
      w.u8(v ? 1 : 0);
      break;
    case 'string':
      if (typeof v !== 'string') throw new TypeError(`GGUF string value must be a string: ${String(v)}`);
      w.string(v);
      break;
  }
}

function writeValue(w: ByteWriter, value: GgufValue): void {
  w.u32(VALUE_TYPE[value.type]);
  if (value.type === 'array') {
    w.u32(VALUE_TYPE[value.itemType]);
    w.u64(value.values.length);
    for (const v of value.values) writeScalar(w, value.itemType, v);
  } else {
    writeScalar(w, value.type, value.value);
  }
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/**
 * IEEE 754 binary16 bits of a number, rounded from its float32 value to nearest, ties to even;
 * overflow gives ±Infinity, NaN stays NaN.
 *
 * @example
 * ```ts
 * f16Bits(1); // 0x3c00
 * f16Bits(-2); // 0xc000
 * ```
 */
export function f16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const e = exponent - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal half (or zero): value = full · 2^(e − 14 − 10)
    if (e < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rest = full & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rest > halfway || (rest === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (half & 1) === 1)) half++; // a carry into the exponent is right
  return sign | half;
}

/** Writes a tensor's values, in its stored type, into `view` at `offset`. */
function writeTensorData(view: DataView, offset: number, t: GgufTensor): void {
  const { data } = t;
  if (t.type === 'f32') {
    for (let i = 0; i < data.length; i++) view.setFloat32(offset + i * 4, data[i]!, true);
  } else {
    for (let i = 0; i < data.length; i++) view.setUint16(offset + i * 2, f16Bits(data[i]!), true);
  }
}

const alignUp = (n: number, alignment: number) => Math.ceil(n / alignment) * alignment;

/**
 * The bytes of a GGUF v3 file with the given metadata and tensors.
 *
 * @example
 * ```ts
 * const bytes = writeGguf({
 *   metadata: { 'general.architecture': gguf.str('llama'), 'general.alignment': gguf.u32(32) },
 *   tensors: [{ name: 'output_norm.weight', dims: [64], type: 'f32', data: new Float32Array(64).fill(1) }],
 * });
 * ```
 */
export function writeGguf(file: GgufFile): Uint8Array {
  const alignmentValue = file.metadata['general.alignment'];
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignmentValue !== undefined) {
    if (alignmentValue.type !== 'uint32' || typeof alignmentValue.value !== 'number') {
      throw new TypeError('general.alignment must be a uint32');
    }
    alignment = alignmentValue.value;
    if (alignment === 0 || alignment % 8 !== 0) throw new RangeError('general.alignment must be a multiple of 8');
  }

  const names = new Set<string>();
  for (const t of file.tensors) {
    if (names.has(t.name)) throw new Error(`duplicate tensor name ${t.name}`);
    names.add(t.name);
    if (utf8.encode(t.name).length > 64) throw new RangeError(`tensor name longer than 64 bytes: ${t.name}`);
    if (t.dims.length < 1 || t.dims.length > 4) throw new RangeError(`tensor ${t.name}: 1 to 4 dims`);
    for (const d of t.dims) {
      if (!Number.isInteger(d) || d < 1) throw new RangeError(`tensor ${t.name}: bad dim ${d}`);
    }
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) {
      throw new RangeError(`tensor ${t.name}: ${t.data.length} values for dims [${t.dims.join(', ')}]`);
    }
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(file.tensors.length);
  const entries = Object.entries(file.metadata);
  w.u64(entries.length);
  for (const [key, value] of entries) {
    w.string(key);
    writeValue(w, value);
  }

  // Tensor infos; offsets are relative to the start of the data section.
  const offsets: number[] = [];
  let size = 0;
  for (const t of file.tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(TENSOR_TYPE[t.type].code);
    w.u64(size);
    offsets.push(size);
    size += alignUp(t.data.length * TENSOR_TYPE[t.type].bytes, alignment);
  }

  const header = w.result();
  const dataStart = alignUp(header.length, alignment);
  const out = new Uint8Array(dataStart + size); // zero-filled: the padding
  out.set(header);
  const view = new DataView(out.buffer);
  file.tensors.forEach((t, i) => {
    writeTensorData(view, dataStart + offsets[i]!, t);
  });
  return out;
}
