import { describe, expect, it } from 'vitest';
import { createTensor, type Tensor, type TensorMap } from './tensor.js';
import { DEFAULT_TENSOR_LIMITS, type TensorSignature, validateTensors } from './tensor-signature.js';
import { mapOf } from './test-support/tensors.js';

/** Runs `fn`, which must throw a VerityError, and returns it for inspection. */
function thrown(fn: () => unknown): { code: string; details: Record<string, unknown> } {
  try {
    fn();
  } catch (e) {
    expect(e).toMatchObject({ name: 'VerityError' });
    return e as { code: string; details: Record<string, unknown> };
  }
  return expect.unreachable('expected a VerityError');
}

const f32 = (shape: number[]) => createTensor('float32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)));

const SIGS: TensorSignature[] = [
  { name: 'x', dtype: 'float32', shape: ['batch', 4] },
  { name: 'mask', dtype: 'bool', shape: ['batch', 'seq'] },
  { name: 'scale', dtype: 'float32', shape: [] },
];

const good = (): TensorMap => ({
  x: f32([2, 4]),
  mask: createTensor('bool', [2, 3], new Uint8Array(6)),
  scale: f32([]),
});

describe('validateTensors', () => {
  it('accepts matching tensors and returns the bound symbolic dims', () => {
    const dims = validateTensors(good(), SIGS);
    expect({ ...dims }).toEqual({ batch: 2, seq: 3 });
    expect(Object.getPrototypeOf(dims)).toBe(null);
  });

  it('binds a symbol repeated within one tensor', () => {
    const sigs: TensorSignature[] = [{ name: 'm', dtype: 'float32', shape: ['n', 'n'] }];
    expect({ ...validateTensors({ m: f32([3, 3]) }, sigs) }).toEqual({ n: 3 });
    const e = thrown(() => validateTensors({ m: f32([3, 2]) }, sigs));
    expect(e).toMatchObject({ code: 'TENSOR_SHAPE_MISMATCH', details: { tensor: 'm', dim: 'n', axis: 1, bound: 3 } });
  });

  it('TENSOR_MISSING names the missing tensor', () => {
    const { scale: _, ...rest } = good();
    const e = thrown(() => validateTensors(rest, SIGS));
    expect(e).toMatchObject({
      code: 'TENSOR_MISSING',
      details: { tensor: 'scale', expected: { dtype: 'float32', shape: [] } },
    });
  });

  it('TENSOR_UNEXPECTED names the extra tensor', () => {
    const e = thrown(() => validateTensors({ ...good(), extra: f32([1]) }, SIGS));
    expect(e).toMatchObject({ code: 'TENSOR_UNEXPECTED', details: { tensor: 'extra', actual: 'extra' } });
  });

  it('TENSOR_UNEXPECTED for prototype-key names, which are never mistaken for signatures', () => {
    const map = mapOf({ ...good() });
    Object.defineProperty(map, '__proto__', { value: f32([1]), enumerable: true });
    expect(thrown(() => validateTensors(map, SIGS)).code).toBe('TENSOR_UNEXPECTED');
    // …and a signature named like an Object.prototype key is not satisfied by the prototype.
    const sigs: TensorSignature[] = [{ name: 'toString', dtype: 'float32', shape: [] }];
    expect(thrown(() => validateTensors({}, sigs)).code).toBe('TENSOR_MISSING');
  });

  it('TENSOR_DTYPE_MISMATCH with expected and actual dtypes', () => {
    const map = { ...good(), scale: createTensor('float64', [], new Float64Array(1)) };
    const e = thrown(() => validateTensors(map, SIGS));
    expect(e).toMatchObject({
      code: 'TENSOR_DTYPE_MISMATCH',
      details: { tensor: 'scale', expected: 'float32', actual: 'float64' },
    });
  });

  it('TENSOR_SHAPE_MISMATCH for a wrong rank', () => {
    const e = thrown(() => validateTensors({ ...good(), x: f32([8]) }, SIGS));
    expect(e).toMatchObject({
      code: 'TENSOR_SHAPE_MISMATCH',
      details: { tensor: 'x', expected: ['batch', 4], actual: [8] },
    });
  });

  it('TENSOR_SHAPE_MISMATCH for a wrong fixed dim', () => {
    const e = thrown(() => validateTensors({ ...good(), x: f32([2, 5]) }, SIGS));
    expect(e).toMatchObject({
      code: 'TENSOR_SHAPE_MISMATCH',
      details: { tensor: 'x', expected: ['batch', 4], actual: [2, 5], axis: 1 },
    });
  });

  it('TENSOR_SHAPE_MISMATCH for a symbolic dim bound to two values across tensors', () => {
    const map = { ...good(), mask: createTensor('bool', [3, 3], new Uint8Array(9)) };
    const e = thrown(() => validateTensors(map, SIGS));
    expect(e).toMatchObject({
      code: 'TENSOR_SHAPE_MISMATCH',
      details: { tensor: 'mask', expected: ['batch', 'seq'], actual: [3, 3], dim: 'batch', bound: 2, axis: 0 },
    });
  });

  it('TENSOR_TOO_LARGE for too many elements (default 16 Mi, or the given limit)', () => {
    expect(DEFAULT_TENSOR_LIMITS.maxElements).toBe(16 * 1024 * 1024);
    const e = thrown(() => validateTensors(good(), SIGS, { maxElements: 7 }));
    expect(e).toMatchObject({ code: 'TENSOR_TOO_LARGE', details: { tensor: 'x', expected: 7, actual: 8 } });
    const sigs: TensorSignature[] = [{ name: 'big', dtype: 'uint8', shape: ['n'] }];
    const big = createTensor('uint8', [DEFAULT_TENSOR_LIMITS.maxElements + 1], new Uint8Array(2 ** 24 + 1));
    expect(thrown(() => validateTensors({ big }, sigs)).code).toBe('TENSOR_TOO_LARGE');
  });

  it('TENSOR_TOO_LARGE for a string longer than the limit in UTF-8 bytes (default 1 MiB)', () => {
    expect(DEFAULT_TENSOR_LIMITS.maxStringBytes).toBe(1024 * 1024);
    const sigs: TensorSignature[] = [{ name: 's', dtype: 'string', shape: [2] }];
    const limits = { maxStringBytes: 4 };
    expect(() => validateTensors({ s: createTensor('string', [2], ['abcd', 'éé']) }, sigs, limits)).not.toThrow();
    const e = thrown(() => validateTensors({ s: createTensor('string', [2], ['abcd', 'ééa']) }, sigs, limits));
    expect(e).toMatchObject({ code: 'TENSOR_TOO_LARGE', details: { tensor: 's', index: 1, expected: 4, actual: 5 } });
    const huge = createTensor('string', [2], ['', 'x'.repeat(DEFAULT_TENSOR_LIMITS.maxStringBytes + 1)]);
    expect(thrown(() => validateTensors({ s: huge }, sigs)).code).toBe('TENSOR_TOO_LARGE');
  });

  it('checks each tensor is well-formed', () => {
    const broken = { dtype: 'float32', shape: [2, 4], data: new Float32Array(7) } as Tensor;
    expect(thrown(() => validateTensors({ ...good(), x: broken }, SIGS)).code).toBe('TENSOR_SHAPE_MISMATCH');
    expect(thrown(() => validateTensors({ ...good(), x: 1 as unknown as Tensor }, SIGS)).code).toBe('TENSOR_INVALID');
    expect(thrown(() => validateTensors(null as unknown as TensorMap, SIGS)).code).toBe('TENSOR_INVALID');
  });

  it('refuses malformed signatures and limits with INVALID_ARGUMENT', () => {
    const bad: unknown[] = [
      [{ name: 'x', dtype: 'float16', shape: [] }],
      [{ name: '', dtype: 'float32', shape: [] }],
      [{ name: 'x', dtype: 'float32', shape: [-1] }],
      [{ name: 'x', dtype: 'float32', shape: [null] }],
      [{ name: 'x', dtype: 'float32', shape: [''] }],
      [{ name: 'x', dtype: 'float32' }],
      [
        { name: 'x', dtype: 'float32', shape: [] },
        { name: 'x', dtype: 'float32', shape: [] },
      ],
      [null],
      'x',
    ];
    for (const sigs of bad) {
      expect(thrown(() => validateTensors({}, sigs as TensorSignature[])).code).toBe('INVALID_ARGUMENT');
    }
    expect(thrown(() => validateTensors(good(), SIGS, { maxElements: Number.NaN })).code).toBe('INVALID_ARGUMENT');
  });
});
