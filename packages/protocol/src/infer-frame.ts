/**
 * The binary form of an inference request or answer on `POST /v1/infer` (docs/protocol.md §2.6,
 * docs/api.md "Binary tensors"): the message's JSON fields other than its tensors, followed by the
 * tensors in their canonical encoding (§2.3), so a large tensor travels as its own bytes instead of
 * decimal text, and those bytes are exactly what the input or output digest is taken over.
 *
 * ```text
 * "VIF1"  u32 headerLen  header (UTF-8 JSON object)  tensors (VTN1, to the end)
 * ```
 */
import { fromUtf8, utf8 } from './bytes.js';
import { fail, isVerityError } from './errors.js';
import type { TensorMap } from './tensor.js';
import { decodeTensors, TENSOR_ENCODING_MAGIC } from './tensor-encoding.js';

/**
 * The media type of a binary inference frame, for `Content-Type` (request) and `Accept` (answer).
 *
 * @example
 * ```ts
 * fetch(url, { method: 'POST', headers: { 'content-type': INFER_MEDIA_TYPE, accept: INFER_MEDIA_TYPE }, body });
 * ```
 */
export const INFER_MEDIA_TYPE = 'application/vnd.verity.infer.v1';

/**
 * The four magic bytes that start every frame: ASCII `VIF1` (Verity Inference Frame, version 1).
 *
 * @example
 * ```ts
 * encodeInferFrame('{}', encodeTensors({})).subarray(0, 4); // Uint8Array [0x56, 0x49, 0x46, 0x31]
 * ```
 */
export const INFER_FRAME_MAGIC: Uint8Array = new Uint8Array([0x56, 0x49, 0x46, 0x31]);

/**
 * The default bound on a frame's header (64 KiB): a request's fields are a few hundred bytes; an
 * answer's header holds receipts (a quorum's k of them) and pass it only with zk evidence.
 *
 * @example
 * ```ts
 * decodeInferFrame(bytes, { maxHeaderBytes: DEFAULT_MAX_INFER_HEADER_BYTES });
 * ```
 */
export const DEFAULT_MAX_INFER_HEADER_BYTES = 64 * 1024;

/**
 * A decoded frame.
 *
 * @example
 * ```ts
 * const { header, tensors, tensorBytes } = decodeInferFrame(bytes);
 * ```
 */
export interface InferFrame {
  /** The message's fields other than its tensors (a parsed JSON object). */
  readonly header: Record<string, unknown>;
  /** The tensors, decoded strictly (docs/protocol.md §2.3). */
  readonly tensors: TensorMap;
  /** Their canonical encoding as received: SHA-256 of these bytes is the tensors' digest. */
  readonly tensorBytes: Uint8Array;
}

/**
 * Options for {@link decodeInferFrame}.
 *
 * @example
 * ```ts
 * const options: DecodeInferFrameOptions = { maxHeaderBytes: 1 << 20 };
 * ```
 */
export interface DecodeInferFrameOptions {
  /** Refuse a longer header (`INFER_HEADER_TOO_LARGE`) before reading it. Default 64 KiB. */
  readonly maxHeaderBytes?: number;
}

/**
 * A frame of `header` (JSON text of an object: the message's other fields) and `tensors` (a
 * canonical encoding, from {@link encodeTensors}).
 *
 * Throws `INVALID_ARGUMENT` when `header` is not the text of a JSON object or `tensors` does not
 * start with the `VTN1` magic (a caller error; the bytes are not decoded again).
 *
 * @example
 * ```ts
 * const body = encodeInferFrame(JSON.stringify({ model: 'iris@1.0.0' }), encodeTensors(inputs));
 * ```
 */
export function encodeInferFrame(header: string, tensors: Uint8Array): Uint8Array {
  const text = header.trimStart();
  if (!text.startsWith('{')) fail('INVALID_ARGUMENT', 'the frame header must be the JSON text of an object');
  if (tensors.length < 8 || TENSOR_ENCODING_MAGIC.some((b, i) => tensors[i] !== b)) {
    fail('INVALID_ARGUMENT', 'the frame tensors must be a VTN1 encoding');
  }
  const headerBytes = utf8(header);
  const out = new Uint8Array(8 + headerBytes.length + tensors.length);
  out.set(INFER_FRAME_MAGIC, 0);
  new DataView(out.buffer).setUint32(4, headerBytes.length, true);
  out.set(headerBytes, 8);
  out.set(tensors, 8 + headerBytes.length);
  return out;
}

/**
 * Reads a frame, strictly (docs/protocol.md §2.6). Throws:
 * - `INFER_FRAME_INVALID` (with `details.offset`): fewer than 8 bytes, a magic other than `VIF1`,
 *   a header running past the end, a header that is not UTF-8 or not a JSON object;
 * - `INFER_HEADER_TOO_LARGE`: a header length above `maxHeaderBytes`, before the header is read;
 * - `TENSOR_ENCODING_INVALID`: tensors that are not a canonical `VTN1` encoding (trailing bytes
 *   included), `details.offset` counted from the frame's start.
 *
 * The decoder allocates nothing a lying length could inflate: the header is bounded, and
 * {@link decodeTensors} checks counts against the bytes present before allocating.
 *
 * @example
 * ```ts
 * const { header, tensors } = decodeInferFrame(encodeInferFrame('{"model":"iris@1.0.0"}', encodeTensors({})));
 * header.model; // 'iris@1.0.0'
 * ```
 */
export function decodeInferFrame(bytes: Uint8Array, options: DecodeInferFrameOptions = {}): InferFrame {
  const maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_INFER_HEADER_BYTES;
  if (!(bytes instanceof Uint8Array)) fail('INVALID_ARGUMENT', 'a frame must be a Uint8Array');
  const bad = (what: string, offset: number): never =>
    fail('INFER_FRAME_INVALID', `invalid inference frame: ${what}`, { offset });
  if (bytes.length < 8) bad('truncated header length', bytes.length);
  for (let i = 0; i < INFER_FRAME_MAGIC.length; i++) {
    if (bytes[i] !== INFER_FRAME_MAGIC[i]) bad('magic is not "VIF1"', 0);
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  if (headerLength > maxHeaderBytes) {
    fail('INFER_HEADER_TOO_LARGE', `the frame header (${headerLength} bytes) passes ${maxHeaderBytes} bytes`, {
      expected: maxHeaderBytes,
      actual: headerLength,
    });
  }
  if (bytes.length - 8 < headerLength) bad('truncated header', bytes.length);
  let header: unknown;
  try {
    header = JSON.parse(fromUtf8(bytes.subarray(8, 8 + headerLength)));
  } catch {
    return bad('the header is not UTF-8 JSON', 8);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) bad('the header is not a JSON object', 8);
  const tensorBytes = bytes.subarray(8 + headerLength);
  let tensors: TensorMap;
  try {
    tensors = decodeTensors(tensorBytes);
  } catch (e) {
    if (isVerityError(e) && e.code === 'TENSOR_ENCODING_INVALID') {
      const offset = typeof e.details.offset === 'number' ? e.details.offset : 0;
      return fail('TENSOR_ENCODING_INVALID', e.message, { ...e.details, offset: 8 + headerLength + offset });
    }
    throw e;
  }
  return { header: header as Record<string, unknown>, tensors, tensorBytes };
}
