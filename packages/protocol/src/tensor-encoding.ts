/**
 * The canonical binary encoding of named tensors (docs/design.md §2.2), the bytes that input and output
 * digests are taken over. Layout (docs/protocol.md §2.3), all integers little-endian:
 *
 * ```text
 * "VTN1"  u32 count  { u32 nameLen  name  u8 dtypeCode  u8 rank  rank × u64 dim  data }*
 * ```
 *
 * Tensors are sorted by name as UTF-8 bytes. Data is row-major; numbers are little-endian with
 * their bit patterns kept as they are (NaN payloads and -0 included: nothing is normalised);
 * bool is one byte 0x00/0x01; a string is u32 byte length + UTF-8.
 *
 * Byte order is fixed by the format, never by the host: element bytes are copied, and swapped
 * only on a big-endian host, never converted through JS numbers (which could quiet a signalling
 * NaN), so Node, browsers and every CPU produce identical bytes.
 */
import { fromUtf8, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';
import {
  assertTensorMap,
  DTYPE_CODES,
  DTYPE_WIDTH,
  type DType,
  dtypeFromCode,
  isTensorName,
  MAX_TENSOR_NAME_BYTES,
  type Tensor,
  type TensorData,
  type TensorMap,
  typedArrayName,
} from './tensor.js';

/**
 * The four magic bytes that start every encoding: ASCII `VTN1` (Verity TeNsors, version 1).
 *
 * @example
 * ```ts
 * encodeTensors({}).subarray(0, 4); // Uint8Array [0x56, 0x54, 0x4e, 0x31]
 * ```
 */
export const TENSOR_ENCODING_MAGIC: Uint8Array = new Uint8Array([0x56, 0x54, 0x4e, 0x31]);

/** Smallest possible tensor entry: name length (4) + a 1-byte name + dtype (1) + rank (1). */
const MIN_ENTRY_BYTES = 7;

/** @internal True on a little-endian host (every mainstream CPU; checked, not assumed). */
export const HOST_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Strict UTF-8 decoding that keeps a leading U+FEFF; `undefined` on invalid bytes. */
function decodeUtf8Exact(bytes: Uint8Array): string | undefined {
  try {
    return fromUtf8(bytes);
  } catch {
    return undefined;
  }
}

/** Unsigned lexicographic order of byte strings (the name order of §2.2). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** Reverses the bytes of each `width`-byte element of `src` into `dst` at `offset`. */
function copySwapped(src: Uint8Array, dst: Uint8Array, offset: number, width: number): void {
  for (let i = 0; i < src.length; i += width) {
    for (let j = 0; j < width; j++) dst[offset + i + j] = src[i + width - 1 - j] as number;
  }
}

/**
 * The little-endian bytes of a fixed-width tensor's data. On a little-endian host the result is a
 * view of the tensor's own memory (no copy), so do not mutate it.
 * @internal
 */
export function dataToLittleEndian(
  tensor: Exclude<Tensor, { dtype: 'string' }>,
  hostLittleEndian: boolean = HOST_LITTLE_ENDIAN,
): Uint8Array {
  const data = tensor.data;
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const width = DTYPE_WIDTH[tensor.dtype];
  if (hostLittleEndian || width === 1) return raw;
  const out = new Uint8Array(raw.length);
  copySwapped(raw, out, 0, width);
  return out;
}

/**
 * A fresh typed array of dtype `dtype` holding the little-endian elements `bytes` (whose length
 * must be a multiple of the width). Bool bytes are not checked here.
 * @internal
 */
export function dataFromLittleEndian<D extends Exclude<DType, 'string'>>(
  dtype: D,
  bytes: Uint8Array,
  hostLittleEndian: boolean = HOST_LITTLE_ENDIAN,
): TensorData<D> {
  const width = DTYPE_WIDTH[dtype];
  // A fresh buffer, so the typed array is aligned and owns its memory.
  const buffer = new ArrayBuffer(bytes.length);
  const copy = new Uint8Array(buffer);
  if (hostLittleEndian || width === 1) copy.set(bytes);
  else copySwapped(bytes, copy, 0, width);
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer) as TensorData<D>;
    case 'float64':
      return new Float64Array(buffer) as TensorData<D>;
    case 'int8':
      return new Int8Array(buffer) as TensorData<D>;
    case 'int16':
      return new Int16Array(buffer) as TensorData<D>;
    case 'int32':
      return new Int32Array(buffer) as TensorData<D>;
    case 'int64':
      return new BigInt64Array(buffer) as TensorData<D>;
    case 'uint16':
      return new Uint16Array(buffer) as TensorData<D>;
    case 'uint32':
      return new Uint32Array(buffer) as TensorData<D>;
    case 'uint64':
      return new BigUint64Array(buffer) as TensorData<D>;
    default: // uint8, bool
      return copy as TensorData<D>;
  }
}

/**
 * UTF-8 bytes of recently encoded tensor names: a model's few names recur in every request and
 * response. The cached arrays are only ever read (copied into encodings, compared).
 */
const nameBytesCache = new Map<string, Uint8Array>();
const NAME_CACHE_SIZE = 256;

function nameBytesOf(name: string): Uint8Array {
  let bytes = nameBytesCache.get(name);
  if (bytes === undefined) {
    bytes = utf8(name);
    if (nameBytesCache.size >= NAME_CACHE_SIZE) nameBytesCache.clear();
    nameBytesCache.set(name, bytes);
  }
  return bytes;
}

interface Entry {
  nameBytes: Uint8Array;
  tensor: Tensor;
  /** Fixed-width data as little-endian bytes, or each string's UTF-8 bytes. */
  payload: Uint8Array | Uint8Array[];
}

/**
 * The canonical binary encoding of `map` (docs/design.md §2.2; docs/protocol.md §2.3). The map is
 * checked first ({@link assertTensorMap}); insertion order of its keys does not matter.
 *
 * Throws `TENSOR_INVALID`, `TENSOR_DTYPE_UNKNOWN`, `TENSOR_SHAPE_MISMATCH` or
 * `TENSOR_DATA_INVALID` for a malformed map, `TENSOR_TOO_LARGE` when the encoding cannot be
 * allocated or a string passes 2^32 − 1 bytes.
 *
 * @example
 * ```ts
 * const bytes = encodeTensors({ x: createTensor('float32', [1, 2], new Float32Array([1, -2.5])) });
 * toHex(bytes);
 * // '56544e31' + '01000000' + '01000000' + '78' + '01' + '02'
 * // + '0100000000000000' + '0200000000000000' + '0000803f' + '000020c0'
 * ```
 */
export function encodeTensors(map: TensorMap): Uint8Array {
  assertTensorMap(map);
  const entries: Entry[] = [];
  let size = TENSOR_ENCODING_MAGIC.length + 4;
  for (const name of Object.keys(map)) {
    const tensor = map[name] as Tensor;
    const nameBytes = nameBytesOf(name);
    let payload: Uint8Array | Uint8Array[];
    let payloadSize = 0;
    if (tensor.dtype === 'string') {
      payload = tensor.data.map((s) => utf8(s));
      for (const p of payload) {
        if (p.length > 0xffffffff) fail('TENSOR_TOO_LARGE', 'a string passes 2^32 - 1 bytes', { tensor: name });
        payloadSize += 4 + p.length;
      }
    } else {
      payload = dataToLittleEndian(tensor);
      payloadSize = payload.length;
    }
    size += 4 + nameBytes.length + 2 + 8 * tensor.shape.length + payloadSize;
    entries.push({ nameBytes, tensor, payload });
  }
  if (entries.length > 1) entries.sort((a, b) => compareBytes(a.nameBytes, b.nameBytes));

  let out: Uint8Array;
  try {
    out = new Uint8Array(size);
  } catch (cause) {
    return fail('TENSOR_TOO_LARGE', `the encoding (${size} bytes) cannot be allocated`, {
      actual: size,
      cause: String(cause),
    });
  }
  const view = new DataView(out.buffer);
  out.set(TENSOR_ENCODING_MAGIC, 0);
  let pos = TENSOR_ENCODING_MAGIC.length;
  view.setUint32(pos, entries.length, true);
  pos += 4;
  for (const { nameBytes, tensor, payload } of entries) {
    view.setUint32(pos, nameBytes.length, true);
    pos += 4;
    out.set(nameBytes, pos);
    pos += nameBytes.length;
    out[pos++] = DTYPE_CODES[tensor.dtype];
    out[pos++] = tensor.shape.length;
    for (const dim of tensor.shape) {
      // u64 as two u32 halves: dims are safe integers (< 2^53), so no BigInt is needed.
      view.setUint32(pos, dim % 0x100000000, true);
      view.setUint32(pos + 4, Math.floor(dim / 0x100000000), true);
      pos += 8;
    }
    if (Array.isArray(payload)) {
      for (const p of payload) {
        view.setUint32(pos, p.length, true);
        out.set(p, pos + 4);
        pos += 4 + p.length;
      }
    } else {
      out.set(payload, pos);
      pos += payload.length;
    }
  }
  return out;
}

/**
 * Decodes the canonical binary encoding, strictly: every byte string has at most one meaning, and
 * only the bytes {@link encodeTensors} would write are accepted. Throws `TENSOR_ENCODING_INVALID`
 * (with `details.offset`) on a wrong magic, a truncated input, a tensor count or element count
 * that the remaining bytes cannot hold, a name that is empty, too long, not UTF-8, holds control
 * characters, or is not strictly after the previous name (unsorted or duplicate), an unknown dtype
 * code, a dim above 2^53 − 1, a bool byte other than 0x00/0x01, a string that is not UTF-8, or
 * trailing bytes.
 *
 * Nothing is allocated before the remaining input is known to hold it, so a lying header cannot
 * make the decoder reserve more memory than the input's own size.
 *
 * @returns the tensors, in a `null`-prototype object, each with its own freshly allocated data
 * @example
 * ```ts
 * const map = decodeTensors(fromHex('56544e3100000000')); // {} (no tensors)
 * ```
 */
export function decodeTensors(bytes: Uint8Array): TensorMap {
  if (typedArrayName(bytes) !== 'Uint8Array') fail('TENSOR_ENCODING_INVALID', 'the encoding must be a Uint8Array');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  const bad = (what: string): never =>
    fail('TENSOR_ENCODING_INVALID', `invalid tensor encoding: ${what}`, { offset: pos });
  const need = (n: number, what: string): void => {
    if (bytes.length - pos < n) bad(`truncated ${what}`);
  };

  need(8, 'header');
  for (let i = 0; i < TENSOR_ENCODING_MAGIC.length; i++) {
    if (bytes[i] !== TENSOR_ENCODING_MAGIC[i]) bad('magic is not "VTN1"');
  }
  pos = 4;
  const count = view.getUint32(pos, true);
  pos += 4;
  if (count * MIN_ENTRY_BYTES > bytes.length - pos) bad(`${count} tensors cannot fit in ${bytes.length - pos} bytes`);

  const out: TensorMap = Object.create(null);
  let previous: Uint8Array | undefined;
  for (let t = 0; t < count; t++) {
    need(4, 'name length');
    const nameLength = view.getUint32(pos, true);
    if (nameLength === 0 || nameLength > MAX_TENSOR_NAME_BYTES) bad(`name length ${nameLength} is not 1..256`);
    pos += 4;
    need(nameLength, 'name');
    const nameBytes = bytes.subarray(pos, pos + nameLength);
    if (previous !== undefined && compareBytes(previous, nameBytes) >= 0) {
      bad('names are not strictly increasing (unsorted or duplicate)');
    }
    const name = decodeUtf8Exact(nameBytes);
    if (name === undefined || !isTensorName(name)) bad('name is not valid UTF-8 without control characters');
    previous = nameBytes;
    pos += nameLength;

    need(2, 'dtype and rank');
    const code = bytes[pos] as number;
    const dtype = dtypeFromCode(code);
    if (dtype === undefined) bad(`unknown dtype code ${code}`);
    pos += 1;
    const rank = bytes[pos] as number;
    pos += 1;
    need(8 * rank, 'dims');
    const shape: number[] = [];
    let zero = false;
    for (let i = 0; i < rank; i++) {
      const low = view.getUint32(pos, true);
      const high = view.getUint32(pos + 4, true);
      if (high > 0x1fffff) bad('dim is above 2^53 - 1');
      const dim = high * 0x100000000 + low;
      if (dim === 0) zero = true;
      shape.push(dim);
      pos += 8;
    }

    // Element count, bounded by what the remaining bytes can hold before anything is allocated:
    // each element takes at least `unit` bytes (a string its 4-byte length).
    const unit = dtype === 'string' ? 4 : DTYPE_WIDTH[dtype as Exclude<DType, 'string'>];
    const maxElements = Math.floor((bytes.length - pos) / unit);
    let elements = 1; // rank 0: a scalar
    if (zero) elements = 0;
    else {
      // Stops as soon as the product passes the bound, so it never grows past 2^53 unnoticed.
      for (const dim of shape) {
        elements *= dim;
        if (elements > maxElements) break;
      }
    }
    if (elements > maxElements) bad(`shape [${shape.join(', ')}] does not fit in the remaining bytes`);

    let tensor: Tensor;
    if (dtype === 'string') {
      const data: string[] = new Array(elements);
      for (let i = 0; i < elements; i++) {
        need(4, 'string length');
        const length = view.getUint32(pos, true);
        pos += 4;
        need(length, 'string');
        const text = decodeUtf8Exact(bytes.subarray(pos, pos + length));
        if (text === undefined) bad('string is not valid UTF-8');
        data[i] = text as string;
        pos += length;
      }
      tensor = { dtype, shape, data };
    } else {
      const fixed = dtype as Exclude<DType, 'string'>;
      const length = elements * DTYPE_WIDTH[fixed];
      const raw = bytes.subarray(pos, pos + length);
      if (fixed === 'bool') {
        for (let i = 0; i < raw.length; i++) {
          if ((raw[i] as number) > 1) {
            pos += i;
            bad(`bool byte 0x${(raw[i] as number).toString(16).padStart(2, '0')} is not 0x00 or 0x01`);
          }
        }
      }
      tensor = { dtype: fixed, shape, data: dataFromLittleEndian(fixed, raw) } as Tensor;
      pos += length;
    }
    out[name as string] = tensor;
  }
  if (pos !== bytes.length) bad(`${bytes.length - pos} trailing bytes`);
  return out;
}

/**
 * SHA-256 of {@link encodeTensors}`(map)`: the input or output digest of an inference record
 * (docs/design.md §2.2, §2.3).
 *
 * @example
 * ```ts
 * toHex(tensorsDigest({})); // SHA-256 of 56544e31 00000000 (docs/protocol.md §2.4, vector V0)
 * // 'a5f7976bf007b7b227daa9ac31c0a3972f44317c998b185f1db4d55e6c48f214'
 * ```
 */
export function tensorsDigest(map: TensorMap): Uint8Array {
  return sha256(encodeTensors(map));
}
