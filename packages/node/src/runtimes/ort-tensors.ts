/**
 * Conversions between protocol tensors (docs/design.md §2.2) and onnxruntime's, and between onnxruntime's
 * input/output metadata and protocol {@link TensorSignature}s. Kept apart from the session code
 * so that the portable (onnxruntime-web) runtime can share it: both packages expose the same
 * `onnxruntime-common` types.
 */
import { createTensor, type DType, isDType, type Tensor, type TensorSignature, VerityError } from '@verity/protocol';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';

/** The `onnxruntime-common` Tensor constructor (onnxruntime-node and onnxruntime-web each ship one). */
export type OrtTensorConstructor = new (
  type: OrtTensor.Type,
  data: OrtTensor.DataType | readonly string[],
  dims?: readonly number[],
) => OrtTensor;

/**
 * The onnxruntime tensor holding `tensor`'s data (not copied). Verity and onnxruntime use the same
 * data arrays for all twelve dtypes (bool: a `Uint8Array` of 0/1).
 *
 * onnxruntime-node passes strings to the native runtime as C strings, so a string holding U+0000
 * would silently be cut there and the model would run on an input other than the one digested
 * into the record. Such a string is refused with `TENSOR_DATA_INVALID` instead.
 *
 * @param name - the input's name, for error details
 * @example
 * ```ts
 * const t = toOrtTensor(ort.Tensor, 'ids', createTensor('int64', [2], new BigInt64Array([1n, 2n])));
 * ```
 */
export function toOrtTensor(Ctor: OrtTensorConstructor, name: string, tensor: Tensor): OrtTensor {
  if (tensor.dtype === 'string') {
    const index = tensor.data.findIndex((s) => s.includes('\u0000'));
    if (index >= 0) {
      throw new VerityError(
        'TENSOR_DATA_INVALID',
        `string ${index} of input "${name}" holds U+0000, which onnxruntime cuts off`,
        {
          details: { tensor: name, index },
        },
      );
    }
  }
  return new Ctor(tensor.dtype, tensor.data, tensor.shape);
}

/**
 * The protocol tensor holding an onnxruntime output's data (not copied: onnxruntime-node hands
 * each output its own buffer). Throws `INFERENCE_FAILED` for a dtype Verity has no name for
 * (float16, int4, uint4) or data not on the CPU.
 *
 * @param name - the output's name, for error details
 * @example
 * ```ts
 * const y = fromOrtTensor('y', results.y);
 * ```
 */
export function fromOrtTensor(name: string, tensor: OrtTensor): Tensor {
  if (!isDType(tensor.type)) {
    throw new VerityError(
      'INFERENCE_FAILED',
      `output "${name}" has dtype ${tensor.type}, which Verity does not support`,
      {
        details: { tensor: name, actual: tensor.type },
      },
    );
  }
  if (tensor.location !== 'cpu') {
    throw new VerityError('INFERENCE_FAILED', `output "${name}" is not in CPU memory (${tensor.location})`, {
      details: { tensor: name, actual: tensor.location },
    });
  }
  try {
    return createTensor(tensor.type, [...tensor.dims], tensor.data as never) as Tensor;
  } catch (cause) {
    throw new VerityError('INFERENCE_FAILED', `output "${name}" is not a well-formed tensor`, {
      details: { tensor: name },
      cause,
    });
  }
}

/**
 * The signatures of a model's inputs or outputs, read from onnxruntime's metadata. Fixed dims stay
 * numbers and named dynamic dims keep their name. onnxruntime reports a dynamic dim without a name
 * as `""` (older builds: -1 or null; onnxruntime-web: 4294967295); it becomes `dim<axis>` (`dim0` for the first axis), or
 * `dim<axis>_` etc. where the model itself already uses that name. Unnamed dims at the same axis
 * thus share a symbol: the usual case is an unnamed batch dim, which does take one value across
 * a call.
 *
 * Throws `MODEL_INVALID` for a non-tensor value (sequence, map), a dtype Verity has no name for
 * (float16, int4…), or a name that is not a valid tensor name.
 *
 * @example
 * ```ts
 * signaturesFromMetadata(session.inputMetadata, 'input');
 * // [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }]
 * ```
 */
export function signaturesFromMetadata(
  metadata: readonly InferenceSession.ValueMetadata[],
  kind: 'input' | 'output',
  reserved: ReadonlySet<string> = namedDims(metadata),
): TensorSignature[] {
  return metadata.map((meta) => {
    if (!meta.isTensor) {
      throw new VerityError(
        'MODEL_INVALID',
        `${kind} "${meta.name}" is not a tensor (sequences and maps are not supported)`,
        {
          details: { tensor: meta.name, kind },
        },
      );
    }
    if (!isTensorName(meta.name)) {
      throw new VerityError('MODEL_INVALID', `${kind} name is not a valid tensor name`, {
        details: { tensor: String(meta.name).slice(0, 300), kind },
      });
    }
    const dtype: string = meta.type;
    if (!isDType(dtype)) {
      throw new VerityError(
        'MODEL_INVALID',
        `${kind} "${meta.name}" has dtype ${dtype}, which Verity does not support`,
        {
          details: { tensor: meta.name, kind, actual: dtype },
        },
      );
    }
    return {
      name: meta.name,
      dtype: dtype as DType,
      shape: meta.shape.map((dim, axis) => normaliseDim(dim, axis, reserved)),
    };
  });
}

/** Every dim name used by the values in `metadata` (those that `dim<axis>` names must avoid). */
export function namedDims(...lists: (readonly InferenceSession.ValueMetadata[])[]): Set<string> {
  const names = new Set<string>();
  for (const list of lists) {
    for (const meta of list) {
      if (!meta.isTensor) continue;
      for (const dim of meta.shape as readonly unknown[]) if (typeof dim === 'string' && dim !== '') names.add(dim);
    }
  }
  return names;
}

/** onnxruntime-web (WebAssembly) reports an unnamed dynamic dim as -1 read as a uint32. */
const UNNAMED_DIM_WASM = 0xffff_ffff;

function normaliseDim(dim: unknown, axis: number, reserved: ReadonlySet<string>): number | string {
  if (typeof dim === 'number' && Number.isSafeInteger(dim) && dim >= 0 && dim !== UNNAMED_DIM_WASM) return dim;
  if (typeof dim === 'string' && dim !== '') return dim;
  let name = `dim${axis}`;
  while (reserved.has(name)) name += '_';
  return name;
}

/**
 * True when every signature has the same symbolic first dim, so calls can be concatenated along
 * it. A model with no inputs, or any scalar input or output, is not batchable.
 *
 * @example
 * ```ts
 * isBatchable([{ name: 'x', dtype: 'float32', shape: ['batch', 4] }], [{ name: 'y', dtype: 'int64', shape: ['batch'] }]); // true
 * ```
 */
export function isBatchable(inputs: readonly TensorSignature[], outputs: readonly TensorSignature[]): boolean {
  const first = inputs[0]?.shape[0];
  if (typeof first !== 'string') return false;
  return [...inputs, ...outputs].every((sig) => sig.shape[0] === first);
}

/** Valid tensor names (as in docs/protocol.md §2.1): 1–256 UTF-8 bytes, well formed, no control characters. */
function isTensorName(name: unknown): name is string {
  if (typeof name !== 'string' || name === '') return false;
  // With the `u` flag a surrogate pair is one code point, so this matches lone surrogates only.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/u.test(name)) return false;
  return new TextEncoder().encode(name).length <= 256;
}
