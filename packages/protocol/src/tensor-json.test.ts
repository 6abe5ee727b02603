import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { isVerityError } from './errors.js';
import { createTensor, DTYPES, type Tensor } from './tensor.js';
import { encodeTensors } from './tensor-encoding.js';
import { tensorFromJson, tensorsFromJson, tensorsToExactJson, tensorsToJson, tensorToJson } from './tensor-json.js';
import type { TensorSignature } from './tensor-signature.js';
import { expectCode } from './test-support/errors.js';
import {
  expectSameTensors,
  TENSOR_VECTORS,
  type TensorVector,
  tensorArb,
  tensorMapArb,
} from './test-support/tensors.js';

/** Parses one full-form tensor named "x" from JSON text. */
const one = (text: string): Tensor => tensorsFromJson(JSON.parse(`{"x":${text}}`)).x as Tensor;

describe('JSON vectors (docs/protocol.md §2.4): JSON text → canonical bytes', () => {
  for (const v of TENSOR_VECTORS) {
    it(`${v.id}: ${v.description}`, () => {
      const map = tensorsFromJson(JSON.parse(v.json));
      expectSameTensors(map, v.tensors);
      expect(toHex(encodeTensors(map))).toBe(v.hex);
      if (v.id !== 'V6') expect(JSON.stringify(tensorsToJson(v.tensors))).toBe(v.json);
    });
  }
});

describe('full form', () => {
  it('reads float specials, -0 included, and writes them back as strings', () => {
    const t = one('{"dtype":"float64","shape":[5],"data":["NaN","Infinity","-Infinity","-0",0]}');
    expect([...(t.data as Float64Array)]).toEqual([
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      0,
    ]);
    expect(Object.is(t.data[3], -0)).toBe(true);
    expect(tensorToJson(t)).toEqual({ dtype: 'float64', shape: [5], data: ['NaN', 'Infinity', '-Infinity', '-0', 0] });
  });

  it('rounds float32 values to the nearest float32 (Math.fround), and refuses finite values beyond its range', () => {
    const t = one('{"dtype":"float32","shape":[3],"data":[0.1, 3.4028235e38, 1e-50]}');
    expect([...(t.data as Float32Array)]).toEqual([Math.fround(0.1), 3.4028234663852886e38, 0]);
    // Written back as the float32's exact value in shortest double form; reads back to the same bits.
    expect(tensorToJson(t)).toMatchObject({ data: [0.10000000149011612, 3.4028234663852886e38, 0] });
    expectCode(() => one('{"dtype":"float32","shape":[1],"data":[1e39]}'), 'TENSOR_DATA_INVALID');
    // 2^128 - 2^103, halfway between the largest float32 and 2^128, rounds (to even) to Infinity.
    expectCode(() => one('{"dtype":"float32","shape":[1],"data":[3.4028235677973366e38]}'), 'TENSOR_DATA_INVALID');
    expectCode(() => one('{"dtype":"float32","shape":[1],"data":[-3.5e38]}'), 'TENSOR_DATA_INVALID');
  });

  it('keeps -0 and refuses non-finite numbers, which JSON cannot spell (1e400 parses to Infinity)', () => {
    const map = tensorsFromJson({ x: { dtype: 'float32', shape: [1], data: [-0] } });
    expect(Object.is((map.x as Tensor).data[0], -0)).toBe(true);
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, JSON.parse('1e400'), JSON.parse('-1e400')]) {
      expectCode(() => tensorsFromJson({ x: { dtype: 'float64', shape: [1], data: [v] } }), 'TENSOR_DATA_INVALID');
    }
  });

  it('refuses other strings and non-numbers as floats', () => {
    for (const bad of ['"nan"', '"inf"', '"1.5"', '"+0"', 'true', 'null', '[]', '{}']) {
      expectCode(() => one(`{"dtype":"float64","shape":[1],"data":[${bad}]}`), 'TENSOR_DATA_INVALID');
    }
  });

  it('reads integers only when exact and in range: never wrapped, rounded or clamped', () => {
    const ok: [string, number][] = [
      ['int8', -128],
      ['int8', 127],
      ['uint8', 255],
      ['int16', -32768],
      ['uint16', 65535],
      ['int32', -2147483648],
      ['uint32', 4294967295],
    ];
    for (const [dtype, v] of ok) expect(one(`{"dtype":"${dtype}","shape":[1],"data":[${v}]}`).data[0]).toBe(v);
    const bad: [string, string][] = [
      ['int8', '128'],
      ['int8', '-129'],
      ['uint8', '256'],
      ['uint8', '-1'],
      ['int16', '32768'],
      ['uint16', '65536'],
      ['int32', '2147483648'],
      ['uint32', '4294967296'],
      ['uint32', '-1'],
      ['int32', '1.5'],
      ['int32', '"1"'],
      ['uint8', 'true'],
      ['int32', '"NaN"'],
    ];
    for (const [dtype, v] of bad) {
      expectCode(() => one(`{"dtype":"${dtype}","shape":[1],"data":[${v}]}`), 'TENSOR_DATA_INVALID');
    }
  });

  it('reads int64/uint64 from safe numbers or canonical decimal strings; writes strings only beyond 2^53 - 1', () => {
    const t = one(
      '{"dtype":"int64","shape":[5],"data":[9007199254740991,"-9007199254740992","-9223372036854775808","9223372036854775807","0"]}',
    );
    expect([...(t.data as BigInt64Array)]).toEqual([2n ** 53n - 1n, -(2n ** 53n), -(2n ** 63n), 2n ** 63n - 1n, 0n]);
    expect(tensorToJson(t)).toEqual({
      dtype: 'int64',
      shape: [5],
      data: [9007199254740991, '-9007199254740992', '-9223372036854775808', '9223372036854775807', 0],
    });
    const u = one('{"dtype":"uint64","shape":[2],"data":["18446744073709551615",7]}');
    expect([...(u.data as BigUint64Array)]).toEqual([2n ** 64n - 1n, 7n]);
    const bad: [string, string][] = [
      ['int64', '9007199254740992'], // a JSON number beyond 2^53 - 1: digits may already be lost
      ['int64', '1e20'],
      ['int64', '1.5'],
      ['int64', '"9223372036854775808"'], // 2^63
      ['int64', '"-9223372036854775809"'],
      ['int64', '"-0"'],
      ['int64', '"007"'],
      ['int64', '"+7"'],
      ['int64', '" 7"'],
      ['int64', '"0x10"'],
      ['int64', '"1e3"'],
      ['int64', '""'],
      ['int64', '"123456789012345678901"'],
      ['uint64', '"18446744073709551616"'], // 2^64
      ['uint64', '"-1"'],
      ['uint64', '-1'],
      ['uint64', 'true'],
    ];
    for (const [dtype, v] of bad) {
      expectCode(() => one(`{"dtype":"${dtype}","shape":[1],"data":[${v}]}`), 'TENSOR_DATA_INVALID');
    }
  });

  it('reads bools only from true/false', () => {
    expect([...(one('{"dtype":"bool","shape":[2],"data":[true,false]}').data as Uint8Array)]).toEqual([1, 0]);
    for (const bad of ['1', '0', '"true"', 'null']) {
      expectCode(() => one(`{"dtype":"bool","shape":[1],"data":[${bad}]}`), 'TENSOR_DATA_INVALID');
    }
  });

  it('reads strings, refusing non-strings and lone surrogates', () => {
    expect(one('{"dtype":"string","shape":[2],"data":["é","\\ud83d\\ude00"]}').data).toEqual(['é', '😀']);
    expectCode(() => one('{"dtype":"string","shape":[1],"data":[1]}'), 'TENSOR_DATA_INVALID');
    expectCode(() => one('{"dtype":"string","shape":[1],"data":["\\ud800"]}'), 'TENSOR_DATA_INVALID');
  });

  it('refuses structural errors with TENSOR_INVALID, unknown dtypes with TENSOR_DTYPE_UNKNOWN', () => {
    const invalid = [
      '{"shape":[1],"data":[1]}',
      '{"dtype":1,"shape":[1],"data":[1]}',
      '{"dtype":"int8","data":[1]}',
      '{"dtype":"int8","shape":1,"data":[1]}',
      '{"dtype":"int8","shape":[-1],"data":[]}',
      '{"dtype":"int8","shape":[1.5],"data":[1]}',
      '{"dtype":"int8","shape":["n"],"data":[1]}',
      '{"dtype":"int8","shape":[1]}',
      '{"dtype":"int8","shape":[1],"data":1}',
      '{"dtype":"int8","shape":[1],"data":[1],"base64":"AQ=="}',
      '{"dtype":"int8","shape":[1],"data":[1],"extra":0}',
      '{"dtype":"int8","shape":[1],"base64":1}',
      '{"dtype":"string","shape":[1],"base64":"AA=="}',
    ];
    for (const text of invalid) expectCode(() => one(text), 'TENSOR_INVALID');
    expectCode(() => one('{"dtype":"float16","shape":[1],"data":[1]}'), 'TENSOR_DTYPE_UNKNOWN');
    expectCode(() => one('{"dtype":"toString","shape":[1],"data":[1]}'), 'TENSOR_DTYPE_UNKNOWN');
  });

  it('refuses a data length that differs from the shape with TENSOR_SHAPE_MISMATCH', () => {
    expectCode(() => one('{"dtype":"int8","shape":[2,2],"data":[1,2,3]}'), 'TENSOR_SHAPE_MISMATCH');
    expectCode(() => one('{"dtype":"int8","shape":[],"data":[]}'), 'TENSOR_SHAPE_MISMATCH');
    // A nested array is not accepted as full-form data.
    expectCode(() => one('{"dtype":"int8","shape":[2],"data":[[1,2]]}'), 'TENSOR_SHAPE_MISMATCH');
    expectCode(() => one('{"dtype":"int8","shape":[1],"data":[[1]]}'), 'TENSOR_DATA_INVALID');
  });

  it('checks the element limit before converting data', () => {
    const huge = { x: { dtype: 'float32', shape: [2 ** 30, 2 ** 20], data: [] } };
    expectCode(() => tensorsFromJson(huge), 'TENSOR_TOO_LARGE');
    const small = { x: { dtype: 'float32', shape: [4], data: [1, 2, 3, 4] } };
    expectCode(() => tensorsFromJson(small, undefined, { maxElements: 3 }), 'TENSOR_TOO_LARGE');
    const str = { x: { dtype: 'string', shape: [1], data: ['éé'] } };
    expectCode(() => tensorsFromJson(str, undefined, { maxStringBytes: 3 }), 'TENSOR_TOO_LARGE');
  });
});

describe('base64 form', () => {
  it('is the little-endian element bytes (base64 computed with coreutils: printf 0000803f000020c0 | xxd -r -p | base64)', () => {
    const x = createTensor('float32', [1, 2], new Float32Array([1, -2.5]));
    expect(tensorsToJson({ x }, { form: 'base64' })).toEqual({
      x: { dtype: 'float32', shape: [1, 2], base64: 'AACAPwAAIMA=' },
    });
    expectSameTensors(tensorsFromJson({ x: { dtype: 'float32', shape: [1, 2], base64: 'AACAPwAAIMA=' } }), { x });
  });

  it('keeps NaN payloads, which the full form cannot', () => {
    const v6 = TENSOR_VECTORS.find((v) => v.id === 'V6') as TensorVector;
    const g = v6.tensors.g as Tensor;
    expect(tensorToJson(g, { form: 'base64' })).toEqual({ dtype: 'float32', shape: [2], base64: 'AQDAfwAAAIA=' });
    expect(tensorToJson(g)).toEqual({ dtype: 'float32', shape: [2], data: ['NaN', '-0'] });
  });

  it('writes string tensors in the full form', () => {
    const s = createTensor('string', [1], ['a']);
    expect(tensorsToJson({ s }, { form: 'base64' })).toEqual({ s: { dtype: 'string', shape: [1], data: ['a'] } });
  });

  it('refuses bad base64, wrong byte counts and bool bytes above 1', () => {
    expectCode(() => one('{"dtype":"int8","shape":[1],"base64":"AQ="}'), 'TENSOR_DATA_INVALID');
    expectCode(() => one('{"dtype":"int8","shape":[1],"base64":"AR=="}'), 'TENSOR_DATA_INVALID'); // non-zero pad bits
    expectCode(() => one('{"dtype":"int8","shape":[1],"base64":"AQ==\\n"}'), 'TENSOR_DATA_INVALID');
    expectCode(() => one('{"dtype":"int8","shape":[1],"base64":"AQI="}'), 'TENSOR_SHAPE_MISMATCH'); // 2 bytes
    expectCode(() => one('{"dtype":"int16","shape":[1],"base64":"AQID"}'), 'TENSOR_DATA_INVALID'); // 3 bytes
    expectCode(() => one('{"dtype":"bool","shape":[1],"base64":"Ag=="}'), 'TENSOR_DATA_INVALID'); // 0x02
  });
});

describe('short form', () => {
  const sigs: TensorSignature[] = [
    { name: 'x', dtype: 'float32', shape: ['batch', 2] },
    { name: 'ids', dtype: 'int64', shape: ['batch'] },
    { name: 't', dtype: 'float64', shape: [] },
  ];

  it('takes dtype from the signature and shape from the nesting', () => {
    const map = tensorsFromJson(JSON.parse('{"x":[[1,-2.5],[3,"-0"]],"ids":[1,"9007199254740993"],"t":"NaN"}'), sigs);
    expect(map.x).toEqual({ dtype: 'float32', shape: [2, 2], data: new Float32Array([1, -2.5, 3, -0]) });
    expect(map.ids).toEqual({ dtype: 'int64', shape: [2], data: new BigInt64Array([1n, 2n ** 53n + 1n]) });
    expect(map.t?.shape).toEqual([]);
    expect(Number.isNaN(map.t?.data[0])).toBe(true);
  });

  it('mixes with the full form', () => {
    const json = { x: [[1, 2]], ids: { dtype: 'int64', shape: [1], data: [5] }, t: 0 };
    expect(tensorsFromJson(json, sigs).ids?.data).toEqual(new BigInt64Array([5n]));
  });

  it('accepts an empty innermost array', () => {
    const s: TensorSignature[] = [{ name: 'v', dtype: 'int32', shape: ['n'] }];
    expect(tensorsFromJson({ v: [] }, s).v).toEqual({ dtype: 'int32', shape: [0], data: new Int32Array(0) });
  });

  it('is refused without signatures (TENSOR_INVALID)', () => {
    expectCode(() => tensorsFromJson({ x: [[1, 2]] }), 'TENSOR_INVALID');
    expectCode(() => tensorsFromJson({ t: 1 }), 'TENSOR_INVALID');
  });

  it('refuses ragged, too shallow, too deep and empty-outer nesting with TENSOR_SHAPE_MISMATCH', () => {
    const base = { ids: [1, 2], t: 0 };
    for (const x of [
      [[1, 2], [3]],
      [1, 2],
      [[[1, 2]]],
      [[1, 2], 3],
      [],
      5,
      [
        [1, 2],
        [3, [4]],
      ],
    ]) {
      expectCode(() => tensorsFromJson({ ...base, x }, sigs), 'TENSOR_SHAPE_MISMATCH');
    }
    expectCode(() => tensorsFromJson({ x: [[1, 2]], ids: [1], t: [0] }, sigs), 'TENSOR_SHAPE_MISMATCH');
  });

  it('checks the result against the signatures', () => {
    // symbolic dim "batch" is 1 in x but 2 in ids
    expectCode(() => tensorsFromJson({ x: [[1, 2]], ids: [1, 2], t: 0 }, sigs), 'TENSOR_SHAPE_MISMATCH');
    expectCode(() => tensorsFromJson({ x: [[1, 2, 3]], ids: [1], t: 0 }, sigs), 'TENSOR_SHAPE_MISMATCH');
    expectCode(() => tensorsFromJson({ x: [[1, 2]], ids: [1] }, sigs), 'TENSOR_MISSING');
    expectCode(() => tensorsFromJson({ x: [[1, 2]], ids: [1], t: 0, y: [1] }, sigs), 'TENSOR_UNEXPECTED');
    const full = { x: [[1, 2]], ids: [1], t: 0, y: { dtype: 'int8', shape: [], data: [1] } };
    expectCode(() => tensorsFromJson(full, sigs), 'TENSOR_UNEXPECTED');
    const wrongDtype = { x: { dtype: 'float64', shape: [1, 2], data: [1, 2] }, ids: [1], t: 0 };
    expectCode(() => tensorsFromJson(wrongDtype, sigs), 'TENSOR_DTYPE_MISMATCH');
    expectCode(() => tensorsFromJson({ x: [[1, 'a']], ids: [1], t: 0 }, sigs), 'TENSOR_DATA_INVALID');
  });

  it('applies limits', () => {
    expectCode(() => tensorsFromJson({ x: [[1, 2]], ids: [1], t: 0 }, sigs, { maxElements: 1 }), 'TENSOR_TOO_LARGE');
  });
});

describe('names and top-level structure', () => {
  it('refuses a non-object top level with JSON_INVALID', () => {
    for (const v of [null, [], 'x', 1, true, undefined, new Map(), new Date(0)]) {
      expectCode(() => tensorsFromJson(v), 'JSON_INVALID');
    }
  });

  it('refuses bad names with TENSOR_INVALID', () => {
    for (const name of ['', 'a\nb', 'x'.repeat(257), '\ud800']) {
      expectCode(() => tensorsFromJson({ [name]: { dtype: 'int8', shape: [], data: [1] } }), 'TENSOR_INVALID');
    }
  });

  it('keeps "__proto__" an ordinary tensor name and never touches any prototype', () => {
    const json = JSON.parse(
      '{"__proto__":{"dtype":"int8","shape":[],"data":[1]},"constructor":{"dtype":"int8","shape":[],"data":[2]}}',
    );
    const map = tensorsFromJson(json);
    expect(Object.getPrototypeOf(map)).toBe(null);
    expect(Object.keys(map)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(map, '__proto__')?.value.data).toEqual(new Int8Array([1]));
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();
    const out = tensorsToJson(map);
    expect(Object.getPrototypeOf(out)).toBe(null);
    expect(JSON.parse(JSON.stringify(out))).toEqual(json);
    // And with signatures, a prototype key is not mistaken for a signature.
    const sigs: TensorSignature[] = [{ name: 'x', dtype: 'int8', shape: [] }];
    expectCode(() => tensorsFromJson(JSON.parse('{"x":1,"__proto__":[1]}'), sigs), 'TENSOR_UNEXPECTED');
  });

  it('refuses a non-plain object as a tensor', () => {
    expectCode(() => tensorsFromJson({ x: new Date(0) }), 'TENSOR_INVALID');
    expectCode(() => tensorFromJson([1]), 'TENSOR_INVALID');
  });

  it('tensorsToJson refuses an unknown form with INVALID_ARGUMENT', () => {
    expectCode(() => tensorsToJson({}, { form: 'hex' as 'full' }), 'INVALID_ARGUMENT');
  });
});

describe('properties', () => {
  it('full form round-trips every value (NaN payloads read back as the canonical NaN)', () => {
    fc.assert(
      fc.property(tensorMapArb(), (map) => {
        const back = tensorsFromJson(JSON.parse(JSON.stringify(tensorsToJson(map))));
        expect(Object.keys(back).sort()).toEqual(Object.keys(map).sort());
        for (const name of Object.keys(map)) {
          const a = back[name] as Tensor;
          const e = map[name] as Tensor;
          expect(a.dtype).toBe(e.dtype);
          expect(a.shape).toEqual(e.shape);
          // toEqual compares numbers with Object.is: -0 ≠ 0, NaN = NaN (payload ignored).
          expect(a.data).toEqual(e.data);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('base64 form round-trips bit for bit', () => {
    fc.assert(
      fc.property(tensorMapArb(), (map) => {
        const back = tensorsFromJson(JSON.parse(JSON.stringify(tensorsToJson(map, { form: 'base64' }))));
        expectSameTensors(back, map);
      }),
      { numRuns: 300 },
    );
  });

  it('short form of a full-form tensor reads back the same', () => {
    fc.assert(
      fc.property(tensorArb(), (t) => {
        if (t.data.length === 0) return; // empty tensors need the full form
        const full = tensorToJson(t) as { data: unknown[] };
        const nest = (level: number, offset: number): unknown => {
          if (level === t.shape.length) return full.data[offset];
          const stride = t.shape.slice(level + 1).reduce((a, b) => a * b, 1);
          return Array.from({ length: t.shape[level] as number }, (_, i) => nest(level + 1, offset + i * stride));
        };
        const sigs: TensorSignature[] = [{ name: 'x', dtype: t.dtype, shape: t.shape.map((_, i) => `d${i}`) }];
        const back = tensorsFromJson(JSON.parse(JSON.stringify({ x: nest(0, 0) })), sigs).x as Tensor;
        expect(back.shape).toEqual(t.shape);
        expect(back.data).toEqual(t.data);
      }),
      { numRuns: 300 },
    );
  });

  const anyJson = fc.oneof(
    fc.jsonValue(),
    fc.anything({ withBigInt: true, withTypedArray: true, withNullPrototype: true, withSparseArray: true }),
    // Near-valid tensors, to reach the deeper checks.
    fc.dictionary(
      fc.oneof(fc.constantFrom('x', 'ids', 't', '__proto__', ''), fc.string()),
      fc.oneof(
        fc.record(
          {
            dtype: fc.oneof(fc.constantFrom(...DTYPES), fc.jsonValue()),
            shape: fc.oneof(fc.array(fc.integer({ min: -1, max: 3 }), { maxLength: 3 }), fc.jsonValue()),
            data: fc.oneof(fc.array(fc.jsonValue(), { maxLength: 9 }), fc.jsonValue()),
            base64: fc.oneof(fc.base64String(), fc.string()),
          },
          { requiredKeys: [] },
        ),
        fc.array(fc.oneof(fc.array(fc.jsonValue(), { maxLength: 3 }), fc.jsonValue()), { maxLength: 3 }),
        fc.jsonValue(),
      ),
    ),
  );
  const sigsArb = fc.option(
    fc.constant<TensorSignature[]>([
      { name: 'x', dtype: 'float32', shape: ['batch', 2] },
      { name: 'ids', dtype: 'int64', shape: ['batch'] },
      { name: 't', dtype: 'string', shape: [] },
    ]),
    { nil: undefined },
  );

  it('random JSON values only ever throw a VerityError', () => {
    fc.assert(
      fc.property(anyJson, sigsArb, (json, sigs) => {
        try {
          const map = tensorsFromJson(json, sigs);
          // Whatever is accepted is a valid map that encodes.
          encodeTensors(map);
        } catch (e) {
          if (!isVerityError(e)) throw e;
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('the map it builds is not the input object (no aliasing of the caller’s arrays)', () => {
    const data = ['a'];
    const map = tensorsFromJson({ s: { dtype: 'string', shape: [1], data } });
    data[0] = 'b';
    expect(map.s?.data).toEqual(['a']);
  });
});

describe('tensorsToExactJson', () => {
  it('always reads back to the same bits (and the same digest), for every dtype', () => {
    fc.assert(
      fc.property(tensorMapArb(), (map) => {
        const json = JSON.parse(JSON.stringify(tensorsToExactJson(map)));
        expect(toHex(encodeTensors(tensorsFromJson(json)))).toBe(toHex(encodeTensors(map)));
      }),
      { numRuns: 300 },
    );
  });
  it('uses the readable form unless a NaN payload needs base64', () => {
    const plain = { x: createTensor('float32', [3], new Float32Array([1.5, Number.NaN, -0])) };
    expect('data' in (tensorsToExactJson(plain).x as object)).toBe(true);
    const bits = new Uint32Array([0x7fc00001]);
    const payload = { x: createTensor('float32', [1], new Float32Array(bits.buffer)) };
    expect('base64' in (tensorsToExactJson(payload).x as object)).toBe(true);
    const f64 = new Float64Array([Number.NaN]);
    new DataView(f64.buffer).setUint32(0, 1, true); // a float64 NaN with a payload in the low word
    expect('base64' in (tensorsToExactJson({ y: createTensor('float64', [1], f64) }).y as object)).toBe(true);
  });
});
