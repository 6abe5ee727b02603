import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { CANONICAL_JSON_MAX_DEPTH, canonicalize, canonicalJsonBytes } from './canonical-json.js';
import { isVerityError } from './errors.js';

/** The IEEE 754 double whose big-endian bits are `hex` (16 hex digits). */
function double(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

function expectInvalid(value: unknown, path?: string): void {
  try {
    canonicalize(value);
  } catch (e) {
    expect(isVerityError(e, 'CANONICAL_JSON_INVALID')).toBe(true);
    if (path !== undefined) expect((e as { details: { path: string } }).details.path).toBe(path);
    return;
  }
  throw new Error('expected CANONICAL_JSON_INVALID');
}

describe('RFC 8785 §3.2.2 / §3.2.3 / §3.2.4 sample', () => {
  // Input text of RFC 8785 §3.2.2 (https://www.rfc-editor.org/rfc/rfc8785#section-3.2.2), kept as
  // JSON text so that its escapes go through JSON.parse exactly as written in the RFC.
  const input = String.raw`{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`;
  // Expected output, RFC 8785 §3.2.3 (just above "3.2.3. Sorting of Object Properties").
  const expected = String.raw`{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`;
  // UTF-8 of the expected output, RFC 8785 §3.2.4 (same bytes as the cyberphone testdata
  // outhex/values.txt, https://github.com/cyberphone/json-canonicalization).
  const expectedHex = `7b 22 6c 69 74 65 72 61 6c 73 22 3a 5b 6e 75 6c 6c 2c 74 72 75 65 2c 66 61 6c 73 65 5d 2c 22 6e
75 6d 62 65 72 73 22 3a 5b 33 33 33 33 33 33 33 33 33 2e 33 33 33 33 33 33 33 2c 31 65 2b 33 30
2c 34 2e 35 2c 30 2e 30 30 32 2c 31 65 2d 32 37 5d 2c 22 73 74 72 69 6e 67 22 3a 22 e2 82 ac 24
5c 75 30 30 30 66 5c 6e 41 27 42 5c 22 5c 5c 5c 5c 5c 22 2f 22 7d`.replace(/\s+/g, '');

  it('canonicalizes to the RFC text and bytes', () => {
    expect(canonicalize(JSON.parse(input))).toBe(expected);
    expect(toHex(canonicalJsonBytes(JSON.parse(input)))).toBe(expectedHex);
  });
});

describe('RFC 8785 §3.2.3 property sorting', () => {
  // The sorting sample of RFC 8785 §3.2.3: UTF-16 order puts the emoji (surrogate pair D83D DE00)
  // before U+FB33, where UTF-8 or code point order would not.
  const input = String.raw`{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`;
  // "Expected argument order after sorting property strings", RFC 8785 §3.2.3.
  const expectedOrder = [
    'Carriage Return',
    'One',
    'Control',
    'Latin Small Letter O With Diaeresis',
    'Euro Sign',
    'Emoji: Grinning Face',
    'Hebrew Letter Dalet With Dagesh',
  ];

  it('orders members by UTF-16 code units', () => {
    const out = canonicalize(JSON.parse(input));
    // Read the order from the text: Object.values would move the integer-like key "1" first.
    const order = [...out.matchAll(/:"([^"]*)"/g)].map((m) => m[1]);
    expect(order).toEqual(expectedOrder);
    expect(out.startsWith('{"\\r":"Carriage Return","1":"One","\u0080":"Control"')).toBe(true);
  });
});

describe('RFC 8785 Appendix B number serialization samples', () => {
  // Table 1 of RFC 8785 Appendix B (https://www.rfc-editor.org/rfc/rfc8785#appendix-B): IEEE 754
  // bits → expected JSON. `null` marks the two rows the RFC leaves empty, note (3): "Values out of
  // range are not permitted in JSON".
  const table: [string, string | null][] = [
    ['0000000000000000', '0'], // Zero
    ['8000000000000000', '0'], // Minus zero
    ['0000000000000001', '5e-324'], // Min pos number
    ['8000000000000001', '-5e-324'], // Min neg number
    ['7fefffffffffffff', '1.7976931348623157e+308'], // Max pos number
    ['ffefffffffffffff', '-1.7976931348623157e+308'], // Max neg number
    ['4340000000000000', '9007199254740992'], // Max pos int (1)
    ['c340000000000000', '-9007199254740992'], // Max neg int (1)
    ['4430000000000000', '295147905179352830000'], // ~2**68 (2)
    ['7fffffffffffffff', null], // NaN (3)
    ['7ff0000000000000', null], // Infinity (3)
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'], // Round to even (4)
  ];
  for (const [bits, expected] of table) {
    it(`${bits} → ${expected ?? 'rejected'}`, () => {
      const n = double(bits);
      if (expected === null) expectInvalid(n, '');
      else {
        expect(canonicalize(n)).toBe(expected);
        expect(canonicalize([n])).toBe(`[${expected}]`);
      }
    });
  }
  it('rejects -Infinity too', () => expectInvalid({ x: Number.NEGATIVE_INFINITY }, '/x'));
});

describe('cyberphone/json-canonicalization testdata (by the RFC 8785 authors)', () => {
  // https://github.com/cyberphone/json-canonicalization/tree/master/testdata, input/*.json and
  // output/*.json; inputs are kept as JSON text so their escapes are parsed as in the files.
  const cases: [string, string, string][] = [
    [
      'structures',
      String.raw`{
  "1": {"f": {"f": "hi","F": 5} ,"\n": 56.0},
  "10": { },
  "": "empty",
  "a": { },
  "111": [ { } ],
  "A": { }
}`,
      String.raw`{"":"empty","1":{"\n":56,"f":{"F":5,"f":"hi"}},"10":{},"111":[{}],"A":{},"a":{}}`,
    ],
    [
      'values',
      String.raw`{
  "numbers": [1E30, 4.50, 333333333.33333329, 2e-3, 0.000000000000000000000000001],
  "escaping": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
      String.raw`{"escaping":"€$\u000f\nA'B\"\\\\\"/","literals":[null,true,false],"numbers":[1e+30,4.5,333333333.3333333,0.002,1e-27]}`,
    ],
    [
      'weird',
      String.raw`{
  "\u20ac": "Euro Sign",
  "1": "One",
  "\u0080": "Control\u007f",
  "\ud83d\ude02": "Smiley",
  "\u00f6": "Latin Small Letter O With Diaeresis",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "</script>": "Browser Challenge"
}`,
      // U+0080 and U+007F are written as themselves, not escaped.
      '{"1":"One","</script>":"Browser Challenge","\u0080":"Control\u007f","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude02":"Smiley","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    ],
    [
      'unicode',
      String.raw`{
  "Unnormalized Unicode":"\u1e0d\u0307"
}`,
      // No Unicode normalization (RFC 8785 §3.2.2.2): the two code points stay as they are.
      '{"Unnormalized Unicode":"\u1e0d\u0307"}',
    ],
    [
      'french',
      `{
  "peach": "This sorting order",
  "péché": "is wrong according to French",
  "pêche": "but canonicalization MUST",
  "sin":   "ingnore locale"
}`,
      '{"peach":"This sorting order","péché":"is wrong according to French","pêche":"but canonicalization MUST","sin":"ingnore locale"}',
    ],
  ];
  for (const [name, input, output] of cases) {
    it(name, () => expect(canonicalize(JSON.parse(input))).toBe(output));
  }
});

describe('I-JSON restrictions and non-JSON values (named negative fixtures)', () => {
  it('rejects lone surrogates in strings and in member names', () => {
    expectInvalid('\ud800', ''); // lone high surrogate
    expectInvalid('a\udc00b', ''); // lone low surrogate
    expectInvalid('\ud83d', ''); // high surrogate at the end
    expectInvalid({ k: ['ok', '\udfff'] }, '/k/1');
    expectInvalid({ '\ud800': 1 }, '/\ud800');
  });
  it('accepts well-formed astral characters', () => {
    expect(canonicalize('\ud83d\ude00')).toBe('"😀"');
  });
  it('rejects values JSON cannot express', () => {
    expectInvalid(undefined, '');
    expectInvalid({ a: undefined }, '/a');
    expectInvalid([1, () => 1], '/1');
    expectInvalid(Symbol('x'), '');
    expectInvalid(10n, '');
    expectInvalid(Number.NaN, '');
  });
  it('rejects objects that are not plain', () => {
    expectInvalid(new Date(0), '');
    expectInvalid(new Map(), '');
    expectInvalid({ bytes: new Uint8Array(2) }, '/bytes');
    expectInvalid(new (class Point {})(), '');
    expectInvalid({ [Symbol('s')]: 1 }, '');
    // toJSON is not consulted: what you hash is what you see.
    expectInvalid({ toJSON: () => 1, a: new Date(0) }, '/a');
  });
  it('accepts null-prototype objects', () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.b = 1;
    o.a = 2;
    expect(canonicalize(o)).toBe('{"a":2,"b":1}');
  });
  it('rejects sparse arrays', () => {
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point of this fixture
    expectInvalid([1, , 3], '/1');
  });
  it('rejects cycles but accepts shared (acyclic) references', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expectInvalid(a, '/self');
    const arr: unknown[] = [];
    arr.push({ arr });
    expectInvalid(arr, '/0/arr');
    const shared = { x: 1 };
    expect(canonicalize({ a: shared, b: [shared] })).toBe('{"a":{"x":1},"b":[{"x":1}]}');
  });
  it('rejects nesting deeper than the limit with a typed error', () => {
    let deep: unknown = 0;
    for (let i = 0; i < CANONICAL_JSON_MAX_DEPTH; i++) deep = [deep];
    expect(canonicalize(deep)).toMatch(/^\[+0\]+$/);
    expectInvalid([deep]);
  });
  it('escapes error-path tokens as JSON Pointer (RFC 6901)', () => {
    expectInvalid({ 'a/b': { '~': Number.NaN } }, '/a~1b/~0');
  });
});

describe('properties', () => {
  it('is a fixed point: its output parses back to a value with the same canonical form', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalize(v);
        expect(canonicalize(JSON.parse(text))).toBe(text);
        // Nothing but JSON.stringify's own spelling of the parsed value, minus member order.
        expect(text.length).toBe(JSON.stringify(JSON.parse(text)).length);
      }),
    );
  });
  it('is independent of member insertion order', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue(), { maxKeys: 8 }), (dict) => {
        const reversed = Object.fromEntries(Object.entries(dict).reverse());
        expect(canonicalize(reversed)).toBe(canonicalize(dict));
      }),
    );
  });
  it('never throws anything but CANONICAL_JSON_INVALID on arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withTypedArray: true }), (v) => {
        try {
          canonicalize(v);
        } catch (e) {
          expect(isVerityError(e, 'CANONICAL_JSON_INVALID')).toBe(true);
        }
      }),
    );
  });
});
