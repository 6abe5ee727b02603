/**
 * Checking a call's tensors against a model's input or output signatures (docs/design.md §2.1 manifests
 * carry them; §2.2 tensors), with symbolic dims such as `"batch"` bound across all tensors of one
 * call, and size limits for untrusted input.
 */
import { fail } from './errors.js';
import {
  assertTensor,
  assertTensorName,
  type DType,
  isDType,
  MAX_TENSOR_RANK,
  type Tensor,
  type TensorMap,
  utf8Length,
} from './tensor.js';

/**
 * One named tensor of a model's inputs or outputs. A number in `shape` is a fixed dim; a string is
 * a symbolic dim (e.g. `"batch"`) that takes the same value in every tensor of one call where it
 * appears. There is no wildcard (`-1`/`null`): name a dim to leave it free.
 *
 * @example
 * ```ts
 * const sig: TensorSignature = { name: 'input', dtype: 'float32', shape: ['batch', 4] };
 * ```
 */
export interface TensorSignature {
  name: string;
  dtype: DType;
  shape: (number | string)[];
}

/**
 * Size limits for untrusted tensors.
 *
 * @example
 * ```ts
 * const limits: TensorLimits = { maxElements: 1_000_000 };
 * ```
 */
export interface TensorLimits {
  /** Most elements in one tensor. Default {@link DEFAULT_TENSOR_LIMITS}.maxElements (16 Mi). */
  maxElements?: number;
  /** Most UTF-8 bytes in one string element. Default {@link DEFAULT_TENSOR_LIMITS}.maxStringBytes (1 MiB). */
  maxStringBytes?: number;
}

/**
 * The default {@link TensorLimits}: 16 Mi (2^24) elements per tensor, 1 MiB per string element.
 *
 * @example
 * ```ts
 * validateTensors(inputs, signatures, { ...DEFAULT_TENSOR_LIMITS, maxElements: 2 ** 26 });
 * ```
 */
export const DEFAULT_TENSOR_LIMITS: Readonly<Required<TensorLimits>> = Object.freeze({
  maxElements: 16 * 1024 * 1024,
  maxStringBytes: 1024 * 1024,
});

/** @internal {@link DEFAULT_TENSOR_LIMITS} overridden by `limits`, checked. */
export function resolveLimits(limits: TensorLimits | undefined): Required<TensorLimits> {
  const out = { ...DEFAULT_TENSOR_LIMITS, ...limits };
  for (const key of ['maxElements', 'maxStringBytes'] as const) {
    const v = out[key];
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0) {
      fail('INVALID_ARGUMENT', `limits.${key} must be a non-negative number`, { [key]: String(v) });
    }
  }
  return out;
}

/** @internal Throws `TENSOR_TOO_LARGE` when `tensor` passes `limits`. */
export function checkTensorLimits(name: string, tensor: Tensor, limits: Required<TensorLimits>): void {
  if (tensor.data.length > limits.maxElements) {
    fail('TENSOR_TOO_LARGE', `tensor "${name}" has ${tensor.data.length} elements, above ${limits.maxElements}`, {
      tensor: name,
      expected: limits.maxElements,
      actual: tensor.data.length,
    });
  }
  if (tensor.dtype === 'string') {
    for (let i = 0; i < tensor.data.length; i++) {
      const s = tensor.data[i] as string;
      // A UTF-8 string is never longer in bytes than 3 × its UTF-16 length, so short strings skip
      // the count.
      if (s.length * 3 <= limits.maxStringBytes) continue;
      const bytes = utf8Length(s);
      if (bytes > limits.maxStringBytes) {
        fail('TENSOR_TOO_LARGE', `string ${i} of tensor "${name}" is ${bytes} bytes, above ${limits.maxStringBytes}`, {
          tensor: name,
          index: i,
          expected: limits.maxStringBytes,
          actual: bytes,
        });
      }
    }
  }
}

/** @internal Throws `INVALID_ARGUMENT` unless `signatures` is a list of well-formed signatures with distinct names. */
export function signatureIndex(signatures: readonly TensorSignature[]): Map<string, TensorSignature> {
  if (!Array.isArray(signatures)) fail('INVALID_ARGUMENT', 'signatures must be an array');
  const byName = new Map<string, TensorSignature>();
  for (const sig of signatures) {
    const s = sig as Partial<TensorSignature> | null;
    const ok =
      typeof s === 'object' &&
      s !== null &&
      isDType(s.dtype) &&
      Array.isArray(s.shape) &&
      s.shape.length <= MAX_TENSOR_RANK &&
      s.shape.every(
        (d) => (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0) || (typeof d === 'string' && d.length > 0),
      );
    if (!ok) fail('INVALID_ARGUMENT', 'malformed tensor signature', { tensor: String(s?.name) });
    try {
      assertTensorName(sig.name);
    } catch {
      fail('INVALID_ARGUMENT', 'malformed tensor signature name', { tensor: String(sig.name) });
    }
    if (byName.has(sig.name)) fail('INVALID_ARGUMENT', 'duplicate tensor signature name', { tensor: sig.name });
    byName.set(sig.name, sig);
  }
  return byName;
}

/**
 * Checks a call's tensors against signatures and limits, and returns the value bound to each
 * symbolic dim. Checks run in this order and the first failure is thrown:
 *
 * 1. every signature has a tensor (`TENSOR_MISSING`), in signature order;
 * 2. every tensor has a signature (`TENSOR_UNEXPECTED`);
 * 3. per signature, in order: the tensor is well-formed ({@link assertTensor}), its dtype
 *    (`TENSOR_DTYPE_MISMATCH`), its rank and fixed dims, and each symbolic dim equal to the value
 *    it was first bound to (`TENSOR_SHAPE_MISMATCH`), its element count and string lengths
 *    (`TENSOR_TOO_LARGE`).
 *
 * `details` of every failure carry `tensor` (the name), `expected` and `actual`; a symbolic-dim
 * mismatch also carries `dim` (the symbol) and `axis`.
 *
 * @param limits - overrides of {@link DEFAULT_TENSOR_LIMITS}
 * @returns the symbolic dims, e.g. `{ batch: 2 }` (a `null`-prototype object)
 * @example
 * ```ts
 * const dims = validateTensors(
 *   { x: createTensor('float32', [2, 4], new Float32Array(8)) },
 *   [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }],
 * ); // { batch: 2 }
 * ```
 */
export function validateTensors(
  map: TensorMap,
  signatures: readonly TensorSignature[],
  limits?: TensorLimits,
): Record<string, number> {
  const resolved = resolveLimits(limits);
  const byName = signatureIndex(signatures);
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    fail('TENSOR_INVALID', 'tensors must be an object mapping names to tensors');
  }
  for (const sig of byName.values()) {
    if (!Object.hasOwn(map, sig.name)) {
      fail('TENSOR_MISSING', `missing tensor "${sig.name}"`, { tensor: sig.name, expected: signatureDetails(sig) });
    }
  }
  for (const name of Object.keys(map)) {
    if (!byName.has(name)) {
      fail('TENSOR_UNEXPECTED', `unexpected tensor "${name.slice(0, 300)}"`, {
        tensor: name.slice(0, 300),
        expected: [...byName.keys()],
        actual: name.slice(0, 300),
      });
    }
  }
  const bound: Record<string, number> = Object.create(null);
  for (const sig of byName.values()) {
    const tensor: unknown = map[sig.name];
    assertTensor(tensor, sig.name);
    if (tensor.dtype !== sig.dtype) {
      fail('TENSOR_DTYPE_MISMATCH', `tensor "${sig.name}" is ${tensor.dtype}, expected ${sig.dtype}`, {
        tensor: sig.name,
        expected: sig.dtype,
        actual: tensor.dtype,
      });
    }
    const shapeDetails = { tensor: sig.name, expected: [...sig.shape], actual: [...tensor.shape] };
    if (tensor.shape.length !== sig.shape.length) {
      fail(
        'TENSOR_SHAPE_MISMATCH',
        `tensor "${sig.name}" has rank ${tensor.shape.length}, expected ${sig.shape.length}`,
        shapeDetails,
      );
    }
    for (let axis = 0; axis < sig.shape.length; axis++) {
      const want = sig.shape[axis] as number | string;
      const got = tensor.shape[axis] as number;
      if (typeof want === 'number') {
        if (got !== want) {
          fail('TENSOR_SHAPE_MISMATCH', `tensor "${sig.name}" dim ${axis} is ${got}, expected ${want}`, {
            ...shapeDetails,
            axis,
          });
        }
      } else if (!Object.hasOwn(bound, want)) {
        bound[want] = got;
      } else if (bound[want] !== got) {
        fail(
          'TENSOR_SHAPE_MISMATCH',
          `tensor "${sig.name}" dim ${axis} ("${want}") is ${got}, but "${want}" is ${bound[want]} elsewhere in this call`,
          { ...shapeDetails, axis, dim: want, bound: bound[want] },
        );
      }
    }
    checkTensorLimits(sig.name, tensor, resolved);
  }
  return bound;
}

function signatureDetails(sig: TensorSignature): { dtype: DType; shape: (number | string)[] } {
  return { dtype: sig.dtype, shape: [...sig.shape] };
}
