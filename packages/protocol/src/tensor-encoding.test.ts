import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex } from './bytes.js';
import { isVerityError } from './errors.js';
import { sha256 } from './hash.js';
import type { Tensor, TensorMap } from './tensor.js';
import {
  dataFromLittleEndian,
  dataToLittleEndian,
  decodeTensors,
  encodeTensors,
  HOST_LITTLE_ENDIAN,
  TENSOR_ENCODING_MAGIC,
  tensorsDigest,
} from './tensor-encoding.js';
import { expectCode } from './test-support/errors.js';
import {
  expectSameTensors,
  mapOf,
  TENSOR_VECTORS,
  type TensorVector,
  tensorArb,
  tensorMapArb,
} from './test-support/tensors.js';

const V1 = TENSOR_VECTORS.find((v) => v.id === 'V1') as TensorVector;

describe('canonical tensor encoding: hand-assembled vectors (docs/protocol.md §2.4)', () => {
  for (const v of TENSOR_VECTORS) {
    describe(`${v.id}: ${v.description}`, () => {
      it('encodes to the expected bytes', () => {
        expect(toHex(encodeTensors(v.tensors))).toBe(v.hex);
      });
      it('decodes back to the same tensors, bit for bit', () => {
        expectSameTensors(decodeTensors(fromHex(v.hex)), v.tensors);
      });
      it('digests to the SHA-256 computed with coreutils sha256sum', () => {
        // Check the stored digest against the stored hex first (catches a pasted typo), then the code.
        expect(toHex(sha256(fromHex(v.hex)))).toBe(v.sha256);
        expect(toHex(tensorsDigest(v.tensors))).toBe(v.sha256);
      });
    });
  }

  it('does not depend on key insertion order', () => {
    const a = { dtype: 'uint8', shape: [], data: new Uint8Array([1]) } as Tensor;
    const b = { dtype: 'uint8', shape: [], data: new Uint8Array([2]) } as Tensor;
    expect(toHex(encodeTensors({ a, b }))).toBe(toHex(encodeTensors({ b, a })));
  });

  it('encodes a typed array that is a window into a larger buffer', () => {
    const big = new Float32Array([9, 1, -2.5, 9]);
    const x: Tensor = { dtype: 'float32', shape: [1, 2], data: big.subarray(1, 3) };
    expect(toHex(encodeTensors({ x }))).toBe(V1.hex);
  });

  it('accepts a decoder input that is a window into a larger buffer', () => {
    const padded = concatBytes(new Uint8Array([0xaa, 0xbb, 0xcc]), fromHex(V1.hex), new Uint8Array([0xdd]));
    expectSameTensors(decodeTensors(padded.subarray(3, padded.length - 1)), V1.tensors);
  });

  it('keeps a leading U+FEFF (a default TextDecoder would strip it as a BOM)', () => {
    const map = mapOf({ s: { dtype: 'string', shape: [2], data: ['\uFEFF', '\uFEFFa'] } });
    const bytes = encodeTensors(map);
    expect(toHex(bytes)).toContain('03000000efbbbf04000000efbbbf61');
    expectSameTensors(decodeTensors(bytes), map);
  });

  it('handles tensor names that are Object.prototype keys', () => {
    const t = { dtype: 'uint8', shape: [], data: new Uint8Array([1]) } as Tensor;
    // Object.fromEntries defines own properties; a literal `{ __proto__: t }` would set the prototype.
    const map = mapOf(
      Object.fromEntries([
        ['__proto__', t],
        ['constructor', t],
      ]),
    );
    expect(Object.keys(map)).toEqual(['__proto__', 'constructor']);
    const decoded = decodeTensors(encodeTensors(map));
    expect(Object.getPrototypeOf(decoded)).toBe(null);
    expect(Object.keys(decoded).sort()).toEqual(['__proto__', 'constructor']);
    expectSameTensors(decoded, map);
  });
});

describe('big-endian hosts', () => {
  // On a big-endian host a typed array holds each element's bytes reversed; the encoder must swap
  // them back. Simulated here by handing the helpers arrays whose element bytes are reversed by
  // hand, with `hostLittleEndian = false`.
  it('this host is detected correctly', () => {
    expect(HOST_LITTLE_ENDIAN).toBe(new DataView(new Uint16Array([0x0102]).buffer).getUint8(0) === 0x02);
  });

  it('swaps each element to little-endian on write', () => {
    const beBytes = fromHex('3f800000' + 'c0200000'); // 1.0, -2.5 as a big-endian host stores them
    const data = new Float32Array(beBytes.buffer);
    expect(toHex(dataToLittleEndian({ dtype: 'float32', shape: [2], data }, false))).toBe('0000803f000020c0');
    const i64 = new BigInt64Array(fromHex('0020000000000001').buffer); // 2^53 + 1, big-endian
    expect(toHex(dataToLittleEndian({ dtype: 'int64', shape: [1], data: i64 }, false))).toBe('0100000000002000');
  });

  it('swaps each element to host order on read', () => {
    const data = dataFromLittleEndian('uint16', fromHex('0201' + '0403'), false);
    expect(toHex(new Uint8Array(data.buffer))).toBe('0102' + '0304');
    const bytes = dataFromLittleEndian('int8', fromHex('807f'), false);
    expect(toHex(new Uint8Array(bytes.buffer))).toBe('807f');
  });

  it('round-trips through the swap for every width', () => {
    fc.assert(
      fc.property(tensorArb(), (t) => {
        if (t.dtype === 'string') return;
        const le = dataToLittleEndian(t, false);
        const back = dataFromLittleEndian(t.dtype, le, false);
        expect(new Uint8Array(back.buffer)).toEqual(
          new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
        );
      }),
    );
  });
});

/**
 * Named negative fixtures: each is a byte string with exactly one thing wrong, and must be refused
 * with TENSOR_ENCODING_INVALID.
 */
/** Concatenates hex fields, written one per argument. */
const join = (...fields: string[]): string => fields.join('');

const BAD_ENCODINGS: { what: string; hex: string }[] = [
  { what: 'empty input', hex: '' },
  { what: 'header truncated after the magic', hex: join('56544e31', '000000') },
  { what: 'wrong magic "VTN2"', hex: join('56544e32', '00000000') },
  { what: 'lower-case magic "vtn1"', hex: join('76746e31', '00000000') },
  { what: 'count 1 but no tensor follows', hex: join('56544e31', '01000000') },
  {
    what: 'count 2^32 - 1 (cannot fit; must not allocate)',
    hex: join('56544e31', 'ffffffff', '01000000', '78', '0200', '00'),
  },
  { what: 'name length 0', hex: join('56544e31', '01000000', '00000000', '0200', '00', '000000') },
  { what: 'name length 257', hex: join('56544e31', '01000000', '01010000', '78'.repeat(257), '0200', '00') },
  { what: 'name length beyond the end', hex: join('56544e31', '01000000', '10000000', '78', '0200', '00') },
  { what: 'name is not UTF-8 (0xff)', hex: join('56544e31', '01000000', '01000000', 'ff', '0200', '00') },
  { what: 'name is overlong UTF-8 (c0 80)', hex: join('56544e31', '01000000', '02000000', 'c080', '0200', '00') },
  {
    what: 'name is a UTF-8-encoded surrogate (ed a0 80)',
    hex: join('56544e31', '01000000', '03000000', 'eda080', '0200', '00'),
  },
  { what: 'name holds a control character (LF)', hex: join('56544e31', '01000000', '01000000', '0a', '0200', '00') },
  {
    what: 'names out of order ("b" before "a")',
    hex: join('56544e31', '02000000', '01000000', '62', '0200', '00', '01000000', '61', '0200', '00'),
  },
  {
    what: 'duplicate name "a"',
    hex: join('56544e31', '02000000', '01000000', '61', '0200', '00', '01000000', '61', '0200', '01'),
  },
  {
    what: 'names out of order by UTF-8 bytes ("😀" before "｡")',
    hex: join('56544e31', '02000000', '04000000', 'f09f9880', '0200', '02', '03000000', 'efbda1', '0200', '01'),
  },
  { what: 'dtype code 0 (ONNX UNDEFINED)', hex: join('56544e31', '01000000', '01000000', '78', '0000', '00') },
  {
    what: 'dtype code 10 (ONNX float16, not a Verity dtype)',
    hex: join('56544e31', '01000000', '01000000', '78', '0a00', '0000'),
  },
  {
    what: 'dtype code 14 (ONNX complex64)',
    hex: join('56544e31', '01000000', '01000000', '78', '0e00', '0000000000000000'),
  },
  { what: 'truncated after the name', hex: join('56544e31', '01000000', '01000000', '78', '02') },
  {
    what: 'rank 2 but one dim present',
    hex: join('56544e31', '01000000', '01000000', '78', '0202', '0000000000000000'),
  },
  {
    what: 'dim 2^53 (above 2^53 - 1)',
    hex: join('56544e31', '01000000', '01000000', '78', '0201', '0000000000002000'),
  },
  {
    what: 'shape [2^32, 2^20] of float32 (element count cannot fit; must not allocate)',
    hex: join('56544e31', '01000000', '01000000', '78', '0102', '0000000001000000', '0000100000000000', '00000000'),
  },
  {
    what: 'float32 [1] with 3 data bytes',
    hex: join('56544e31', '01000000', '01000000', '78', '0101', '0100000000000000', '000080'),
  },
  { what: 'bool byte 0x02', hex: join('56544e31', '01000000', '01000000', '6d', '0901', '0200000000000000', '0102') },
  { what: 'bool byte 0xff', hex: join('56544e31', '01000000', '01000000', '6d', '0900', 'ff') },
  {
    what: 'string [1] whose length runs past the end',
    hex: join('56544e31', '01000000', '01000000', '73', '0801', '0100000000000000', '05000000', '6869'),
  },
  {
    what: 'string [1] that is not UTF-8 (c3 28)',
    hex: join('56544e31', '01000000', '01000000', '73', '0801', '0100000000000000', '02000000', 'c328'),
  },
  {
    what: 'string [4] with only one string present',
    hex: join('56544e31', '01000000', '01000000', '73', '0801', '0400000000000000', '00000000'),
  },
  { what: 'one trailing byte', hex: join('56544e31', '00000000', '00') },
  { what: 'V1 with a trailing byte', hex: join(V1.hex, '00') },
  { what: 'V1 truncated by one byte', hex: V1.hex.slice(0, -2) },
];

describe('decodeTensors refuses every non-canonical or malformed input', () => {
  for (const { what, hex } of BAD_ENCODINGS) {
    it(`${what} → TENSOR_ENCODING_INVALID`, () => {
      expectCode(() => decodeTensors(fromHex(hex)), 'TENSOR_ENCODING_INVALID');
    });
  }

  it('refuses a non-Uint8Array input', () => {
    expectCode(() => decodeTensors('56544e3100000000' as unknown as Uint8Array), 'TENSOR_ENCODING_INVALID');
    expectCode(() => decodeTensors(new Uint16Array(4) as unknown as Uint8Array), 'TENSOR_ENCODING_INVALID');
  });

  it('accepts a dim of 2^53 - 1 when another dim is 0 (no elements)', () => {
    const hex = '56544e31' + '01000000' + '01000000' + '78' + '0102' + 'ffffffffffff1f00' + '0000000000000000';
    const map = decodeTensors(fromHex(hex));
    expect(map.x?.shape).toEqual([2 ** 53 - 1, 0]);
    expect(map.x?.data.length).toBe(0);
    expect(toHex(encodeTensors(map))).toBe(hex);
  });
});

describe('encodeTensors refuses malformed maps', () => {
  const ok = (): Tensor => ({ dtype: 'uint8', shape: [1], data: new Uint8Array([1]) });
  it('bad names → TENSOR_INVALID', () => {
    expectCode(() => encodeTensors({ '': ok() }), 'TENSOR_INVALID');
    expectCode(() => encodeTensors({ 'a\u0000': ok() }), 'TENSOR_INVALID');
    expectCode(() => encodeTensors({ '\uD800': ok() }), 'TENSOR_INVALID');
    expectCode(() => encodeTensors({ ['x'.repeat(257)]: ok() }), 'TENSOR_INVALID');
    expect(() => encodeTensors({ ['x'.repeat(256)]: ok() })).not.toThrow();
    expectCode(() => encodeTensors({ ['é'.repeat(129)]: ok() }), 'TENSOR_INVALID'); // 258 bytes
  });
  it('bad tensors → their codes', () => {
    expectCode(() => encodeTensors({ x: { ...ok(), shape: [2] } }), 'TENSOR_SHAPE_MISMATCH');
    expectCode(() => encodeTensors({ x: { ...ok(), dtype: 'float16' } as unknown as Tensor }), 'TENSOR_DTYPE_UNKNOWN');
    expectCode(
      () => encodeTensors({ x: { dtype: 'bool', shape: [1], data: new Uint8Array([2]) } }),
      'TENSOR_DATA_INVALID',
    );
    expectCode(() => encodeTensors({ x: { dtype: 'string', shape: [1], data: ['\uDC00'] } }), 'TENSOR_DATA_INVALID');
    expectCode(() => encodeTensors({ x: { ...ok(), shape: new Array(256).fill(1) } }), 'TENSOR_INVALID');
    expectCode(() => encodeTensors(null as unknown as TensorMap), 'TENSOR_INVALID');
  });
});

describe('properties', () => {
  it('decode(encode(x)) is x, bit for bit, for every dtype (NaN payloads and -0 included)', () => {
    fc.assert(
      fc.property(tensorMapArb(), (map) => {
        expectSameTensors(decodeTensors(encodeTensors(map)), map);
      }),
      { numRuns: 300 },
    );
  });

  it('the digest is SHA-256 of the encoding', () => {
    fc.assert(
      fc.property(tensorMapArb(), (map) => {
        expect(tensorsDigest(map)).toEqual(sha256(encodeTensors(map)));
      }),
      { numRuns: 50 },
    );
  });

  it('random bytes only ever throw TENSOR_ENCODING_INVALID', () => {
    const withHeader = fc
      .tuple(fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 80 }))
      .map(([n, rest]) => concatBytes(TENSOR_ENCODING_MAGIC, new Uint8Array([n, 0, 0, 0]), rest));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), withHeader), (bytes) => {
        try {
          decodeTensors(bytes);
        } catch (e) {
          expect(isVerityError(e, 'TENSOR_ENCODING_INVALID')).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('a mutated encoding is refused, or decodes to tensors whose encoding is exactly those bytes', () => {
    // Strictness: every accepted byte string is canonical, so two different byte strings never
    // decode to the same tensors (and digests cannot be malleated).
    const mutated = fc
      .tuple(tensorMapArb(), fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('set', 'cut', 'insert'))
      .map(([map, at, byte, how]) => {
        const bytes = encodeTensors(map);
        const i = at % (bytes.length + 1);
        if (how === 'cut') return bytes.subarray(0, i);
        if (how === 'insert') return concatBytes(bytes.subarray(0, i), new Uint8Array([byte]), bytes.subarray(i));
        const copy = bytes.slice();
        if (i < copy.length) copy[i] = byte;
        return copy;
      });
    fc.assert(
      fc.property(mutated, (bytes) => {
        let map: TensorMap;
        try {
          map = decodeTensors(bytes);
        } catch (e) {
          expect(isVerityError(e, 'TENSOR_ENCODING_INVALID')).toBe(true);
          return;
        }
        expect(toHex(encodeTensors(map))).toBe(toHex(bytes));
      }),
      { numRuns: 1000 },
    );
  });
});
