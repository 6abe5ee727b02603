import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { codeOf } from '../../../protocol/src/test-support/errors.js';
import {
  checkStructuredOutput,
  compileJsonSchema,
  type Expr,
  jsonSchemaRules,
  schemaViolation,
} from './json-schema.js';

// The schema → grammar compiler, tested by running its grammar here: a small matcher over the
// compiled rules says whether a text is a sentence of the grammar. Whatever the grammar admits
// must pass the schema (checked with the independent value check and, for zod schemas, zod).

/** Whether the grammar of `schema` admits `text` (every way of matching, memoised by position). */
function admits(schema: unknown, text: string): boolean {
  const { root, rules } = jsonSchemaRules(schema);
  const memo = new Map<Expr, Map<number, number[]>>();
  const ends = (e: Expr, i: number): number[] => {
    const byPos = memo.get(e) ?? new Map<number, number[]>();
    memo.set(e, byPos);
    const hit = byPos.get(i);
    if (hit) return hit;
    byPos.set(i, []);
    let out: number[] = [];
    const after = (xs: number[], x: Expr) => [...new Set(xs.flatMap((p) => ends(x, p)))];
    switch (e.k) {
      case 'lit':
        out = text.startsWith(e.s, i) ? [i + e.s.length] : [];
        break;
      case 'cls': {
        const cp = text.codePointAt(i);
        out = cp !== undefined && e.r.some(([a, b]) => cp >= a && cp <= b) ? [i + (cp > 0xffff ? 2 : 1)] : [];
        break;
      }
      case 'ref':
        out = ends(rules.get(e.n) as Expr, i);
        break;
      case 'seq':
        out = e.xs.reduce((at, x) => after(at, x), [i]);
        break;
      case 'alt':
        out = [...new Set(e.xs.flatMap((x) => ends(x, i)))];
        break;
      case 'rep': {
        const all = new Set<number>(e.min === 0 ? [i] : []);
        let at = [i];
        for (let n = 1; at.length > 0 && (e.max === undefined || n <= e.max); n++) {
          at = after(at, e.x).filter((p) => p > i);
          if (n >= e.min) for (const p of at) all.add(p);
          if (n > text.length) break;
        }
        out = [...all];
        break;
      }
    }
    byPos.set(i, out);
    return out;
  };
  return ends(root, 0).includes(text.length);
}

/** A random sentence of the grammar of `schema` (deep recursion steered to its shortest way out). */
function sample(schema: unknown, random: () => number): string {
  const { root, rules } = jsonSchemaRules(schema);
  // The least depth of rules needed to finish each expression, by fixpoint.
  const height = new Map<string, number>([...rules.keys()].map((n) => [n, Number.POSITIVE_INFINITY]));
  const h = (e: Expr): number => {
    switch (e.k) {
      case 'lit':
      case 'cls':
        return 0;
      case 'ref':
        return (height.get(e.n) as number) + 1;
      case 'seq':
        return Math.max(0, ...e.xs.map(h));
      case 'alt':
        return Math.min(...e.xs.map(h));
      case 'rep':
        return e.min === 0 ? 0 : h(e.x);
    }
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const [n, e] of rules) {
      const v = h(e);
      if (v < (height.get(n) as number)) {
        height.set(n, v);
        changed = true;
      }
    }
  }
  const pick = (n: number) => Math.floor(random() * n);
  const gen = (e: Expr, depth: number): string => {
    const deep = depth > 12;
    switch (e.k) {
      case 'lit':
        return e.s;
      case 'cls': {
        const [a, b] = e.r[pick(e.r.length)] as [number, number];
        return String.fromCodePoint(a + pick(b - a + 1));
      }
      case 'ref':
        return gen(rules.get(e.n) as Expr, depth + 1);
      case 'seq':
        return e.xs.map((x) => gen(x, depth)).join('');
      case 'alt': {
        const best = Math.min(...e.xs.map(h));
        const choices = deep ? e.xs.filter((x) => h(x) === best) : e.xs;
        return gen(choices[pick(choices.length)] as Expr, depth);
      }
      case 'rep': {
        const n = deep ? e.min : e.min + pick(Math.min(e.max ?? e.min + 4, e.min + 4) - e.min + 1);
        return Array.from({ length: n }, () => gen(e.x, depth)).join('');
      }
    }
  };
  return gen(root, 0);
}

const code = (schema: unknown) => codeOf(() => compileJsonSchema(schema));

describe('JSON Schema → grammar: what is refused', () => {
  // Each schema below cannot be enforced exactly (or is no schema): refused before generation.
  const cases: [string, unknown, 'JSON_SCHEMA_INVALID' | 'JSON_SCHEMA_UNSUPPORTED'][] = [
    ['a $ref that points nowhere', { $ref: '#/nope' }, 'JSON_SCHEMA_INVALID'],
    [
      'a $ref to a missing definition',
      { type: 'object', properties: { a: { $ref: '#/$defs/b' } } },
      'JSON_SCHEMA_INVALID',
    ],
    ['a $ref to another document', { $ref: 'https://example.com/s.json' }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['a relative $ref', { $ref: 'other.json#/a' }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['a $ref to an anchor', { $ref: '#node' }, 'JSON_SCHEMA_UNSUPPORTED'],
    [
      'a $ref with constraints beside it',
      { $defs: { a: { type: 'string' } }, $ref: '#/$defs/a', minLength: 2 },
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    [
      'recursion with no way out',
      { type: 'object', properties: { a: { $ref: '#' } }, required: ['a'] },
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    ['not', { not: { type: 'string' } }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['if/then/else', JSON.parse('{"if": {"type": "string"}, "then": {"minLength": 1}}'), 'JSON_SCHEMA_UNSUPPORTED'],
    ['allOf of two schemas', { allOf: [{ type: 'object' }, { required: ['a'] }] }, 'JSON_SCHEMA_UNSUPPORTED'],
    [
      'patternProperties',
      { type: 'object', patternProperties: { '^a': { type: 'string' } } },
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    ['dependentRequired', { type: 'object', dependentRequired: { a: ['b'] } }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['uniqueItems', { type: 'array', items: { type: 'integer' }, uniqueItems: true }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['contains', { type: 'array', contains: { const: 1 } }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['multipleOf on a number', { type: 'number', multipleOf: 0.5 }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['bounds no number satisfies', { type: 'number', minimum: 0.5, exclusiveMaximum: 0.5 }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['bounds no integer satisfies', { type: 'integer', minimum: 3, maximum: 2 }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['an unknown format', { type: 'string', format: 'hostname' }, 'JSON_SCHEMA_UNSUPPORTED'],
    [
      'a pattern with a length bound it does not imply',
      { type: 'string', pattern: '^(ab)+$', maxLength: 3 },
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    [
      'an email of at most 100 characters',
      { type: 'string', format: 'email', maxLength: 100 },
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    ['a lookahead', { type: 'string', pattern: '^(?=a)a$' }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['a back reference', { type: 'string', pattern: '^(a)\\1$' }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['an anchor beside an alternation', { type: 'string', pattern: '^a|b$' }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['a pattern that is no regular expression', { type: 'string', pattern: '(' }, 'JSON_SCHEMA_INVALID'],
    [
      'oneOf whose schemas overlap',
      { oneOf: [{ type: 'string' }, { type: 'string', maxLength: 3 }] },
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    [
      '$id inside a schema',
      { type: 'object', properties: { a: { $id: 'x', type: 'string' } } },
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    ['an unknown keyword', { type: 'string', nullable: true }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['an unknown type', { type: 'decimal' }, 'JSON_SCHEMA_INVALID'],
    ['an empty enum', { enum: [] }, 'JSON_SCHEMA_INVALID'],
    ['an enum no value of which fits', { type: 'string', enum: [1, 2] }, 'JSON_SCHEMA_UNSUPPORTED'],
    ['the schema false', false, 'JSON_SCHEMA_UNSUPPORTED'],
    [
      'schemas nested 100 deep',
      JSON.parse(`${'{"type":"array","items":'.repeat(100)}{}${'}'.repeat(100)}`),
      'JSON_SCHEMA_UNSUPPORTED',
    ],
    ['not a schema', 'string', 'JSON_SCHEMA_INVALID'],
  ];
  it.each(cases)('refuses %s', (_, schema, expected) => {
    expect(code(schema)).toBe(expected);
  });
});

describe('JSON Schema → grammar: numbers', () => {
  it('writes finite plain decimals: no exponent, no "-0", at most 15 significant digits', () => {
    const n = { type: 'number' };
    for (const t of ['0', '7', '-1.5', '0.000001', '123456789012345', '-99999.9999999999'])
      expect(admits(n, t)).toBe(true);
    for (const t of ['2E9257', '1e5', '-0', '01', '1.', '.5', '1234567890123456', '0.1234567890123456', 'NaN', '+1']) {
      expect(admits(n, t)).toBe(false);
    }
  });

  it('holds integers to the safe range zod sends (±(2^53 − 1)) and to any bounds, exactly', () => {
    const safe = z.toJSONSchema(z.number().int());
    expect(code(safe)).toBeUndefined();
    expect(admits(safe, '9007199254740991')).toBe(true);
    expect(admits(safe, '-9007199254740991')).toBe(true);
    expect(admits(safe, '9007199254740992')).toBe(false);
    expect(admits(safe, '1.0')).toBe(false);
    fc.assert(
      fc.property(
        fc.integer({ min: -2000, max: 2000 }),
        fc.integer({ min: 0, max: 3000 }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: -6000, max: 6000 }),
        (lo, width, exLo, exHi, n) => {
          const schema = {
            type: 'integer',
            ...(exLo ? { exclusiveMinimum: lo } : { minimum: lo }),
            ...(exHi ? { exclusiveMaximum: lo + width } : { maximum: lo + width }),
          };
          if (code(schema) !== undefined) return; // empty ranges are refused
          expect(admits(schema, String(n))).toBe(schemaViolation(n, schema) === undefined);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('admits only numbers within the bounds, whatever the double rounding', () => {
    const decimal = fc
      .tuple(fc.boolean(), fc.integer({ min: 0, max: 10 ** 15 }), fc.option(fc.stringMatching(/^[0-9]{1,16}$/)))
      .map(([neg, int, frac]) => `${neg ? '-' : ''}${int}${frac === null ? '' : `.${frac}`}`);
    let admitted = 0;
    // Bounds: integers, short decimals, and doubles whose shortest form has 16-17 digits (0.1 + 0.2).
    const bound = fc.oneof(
      fc.integer({ min: -100, max: 100 }),
      fc.integer({ min: -100_000, max: 100_000 }).map((n) => n / 1000),
      fc.constantFrom(0.1 + 0.2, -(0.1 + 0.2), 1e-7, 123456.789, 1 / 3, 9007199254740991, -1e300),
    );
    // Decimals close to those bounds.
    const near = fc
      .tuple(
        fc.constantFrom('0.3', '-0.3', '0.30000000000000', '0.333333333333333', '0.0000001', '123456.789', '-0.001'),
        fc.stringMatching(/^[0-9]{0,3}$/),
      )
      .map(([a, b]) => (a.includes('.') ? a + b : a));
    fc.assert(
      fc.property(
        fc.option(bound),
        fc.option(bound),
        fc.boolean(),
        fc.boolean(),
        fc.oneof(
          decimal,
          near,
          fc.constantFrom('0.5', '-0.5', '99.999999999999999', '100.0000000000001', '0.1', '0.3'),
        ),
        (lo, hi, exLo, exHi, text) => {
          const schema: Record<string, unknown> = { type: 'number' };
          if (lo !== null) schema[exLo ? 'exclusiveMinimum' : 'minimum'] = lo;
          if (hi !== null) schema[exHi ? 'exclusiveMaximum' : 'maximum'] = hi;
          if (code(schema) !== undefined) return;
          if (!admits(schema, text)) return;
          admitted++;
          expect(schemaViolation(JSON.parse(text), schema)).toBeUndefined();
        },
      ),
      { numRuns: 1000 },
    );
    expect(admitted).toBeGreaterThan(100); // the property was not vacuous
    // zod's positive(): 0 is out, the smallest positive decimal is in.
    const positive = z.toJSONSchema(z.number().positive());
    expect(admits(positive, '0')).toBe(false);
    expect(admits(positive, '0.000000000000001')).toBe(true);
    expect(admits({ type: 'number', maximum: 100 }, '100')).toBe(true);
    expect(admits({ type: 'number', exclusiveMaximum: 100 }, '99.99')).toBe(true);
    expect(admits({ type: 'number', exclusiveMaximum: 100 }, '100')).toBe(false);
    expect(admits({ type: 'number', maximum: 100 }, '100.000')).toBe(true);
    // Fractional bounds are compared as the decimals the bounds print as.
    const half = { type: 'number', exclusiveMinimum: 0.5, maximum: 2.25 };
    for (const t of ['0.51', '1', '2.25', '2.250', '0.5000000000001']) expect(admits(half, t)).toBe(true);
    for (const t of ['0.5', '0.50', '0.4999', '2.2500001', '3', '-1']) expect(admits(half, t)).toBe(false);
    expect(admits({ type: 'number', maximum: 0.1 + 0.2 }, '0.3')).toBe(true); // 0.3 < 0.30000000000000004
    expect(admits({ type: 'number', minimum: 0.1 + 0.2 }, '0.3')).toBe(false);
  });
});

describe('JSON Schema → grammar: strings, objects, arrays', () => {
  it('counts string lengths the way JSON Schema and zod both do', () => {
    const s = z.toJSONSchema(z.string().min(1).max(3));
    expect(admits(s, '""')).toBe(false);
    expect(admits(s, '"abc"')).toBe(true);
    expect(admits(s, '"abcd"')).toBe(false);
    expect(admits(s, '"a\\"c"')).toBe(true); // an escape is one character
    expect(admits(s, '"a\\ud83dc"')).toBe(false); // no lone surrogates
  });

  it('enforces the formats and the patterns zod sends', () => {
    const date = z.toJSONSchema(z.iso.date());
    expect(admits(date, '"2024-02-29"')).toBe(true);
    expect(admits(date, '"2023-02-29"')).toBe(false);
    expect(admits(date, '"2023-13-01"')).toBe(false);
    expect(admits({ type: 'string', format: 'date' }, '"2000-02-29"')).toBe(true);
    expect(admits({ type: 'string', format: 'date' }, '"1900-02-29"')).toBe(false);
    expect(admits({ type: 'string', format: 'date-time' }, '"2024-05-01T12:30:00Z"')).toBe(true);
    expect(admits({ type: 'string', format: 'date-time' }, '"2024-05-01T24:30:00Z"')).toBe(false);
    const uuid = z.toJSONSchema(z.uuid());
    expect(admits(uuid, '"3f1e0c52-8d4b-4a7e-9f21-0c9d2b7a6e10"')).toBe(true);
    expect(admits(uuid, '"3f1e0c52-8d4b-9a7e-9f21-0c9d2b7a6e10"')).toBe(false);
    const email = z.toJSONSchema(z.email());
    expect(admits(email, '"ada@example.org"')).toBe(true);
    expect(admits(email, '"ada@example"')).toBe(false);
    // Unanchored patterns match anywhere; a quote in a pattern is written escaped.
    expect(admits({ type: 'string', pattern: 'x"y' }, '"--x\\"y--"')).toBe(true);
    expect(admits({ type: 'string', pattern: '^[a-c]{2}$' }, '"ab"')).toBe(true);
    expect(admits({ type: 'string', pattern: '^[a-c]{2}$' }, '"abc"')).toBe(false);
    // Lengths with a pattern: one repeated character takes the bounds; implied bounds are kept.
    const word = z.toJSONSchema(
      z
        .string()
        .min(2)
        .max(4)
        .regex(/^[a-z]+$/),
    );
    expect(admits(word, '"ab"')).toBe(true);
    expect(admits(word, '"a"')).toBe(false);
    expect(admits(word, '"abcde"')).toBe(false);
    expect(code({ type: 'string', format: 'date', minLength: 10, maxLength: 10 })).toBeUndefined();
    expect(code(z.toJSONSchema(z.uuid().max(36)))).toBeUndefined();
  });

  it('writes required properties, then optional ones, each in sorted order; recursion works', () => {
    const s = {
      type: 'object',
      properties: { b: { type: 'null' }, a: { type: 'null' }, c: { type: 'null' } },
      required: ['c', 'b'],
      additionalProperties: false,
    };
    expect(admits(s, '{"b": null, "c": null}')).toBe(true);
    expect(admits(s, '{"b":null,"c":null,"a":null}')).toBe(true);
    expect(admits(s, '{"c": null, "b": null}')).toBe(false);
    expect(admits(s, '{"b": null}')).toBe(false);
    const tree = {
      type: 'object',
      properties: { v: { type: 'integer' }, kids: { type: 'array', items: { $ref: '#' } } },
      required: ['v'],
    };
    expect(admits(tree, '{"v": 1, "kids": [{"v": 2}, {"v": 3, "kids": []}]}')).toBe(true);
    const map = z.toJSONSchema(z.record(z.enum(['x', 'y']), z.number().int().min(0)));
    expect(admits(map, '{"x": 1, "y": 2}')).toBe(true);
    expect(admits(map, '{"z": 1}')).toBe(false);
    const tagged = {
      oneOf: [
        { type: 'object', properties: { k: { const: 'a' } }, required: ['k'] },
        { type: 'object', properties: { k: { const: 'b' }, n: { type: 'integer' } }, required: ['k', 'n'] },
      ],
    };
    expect(admits(tagged, '{"k": "b", "n": 4}')).toBe(true);
    expect(admits({ type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 2 }, '[]')).toBe(false);
    expect(admits({ type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 2 }, '[true, false]')).toBe(true);
    expect(admits({ type: 'array', items: { type: 'boolean' }, minItems: 1, maxItems: 2 }, '[true,false,true]')).toBe(
      false,
    );
  });

  it('accepts what zod sends for common schemas', () => {
    const s = z.object({
      n: z.number().int(),
      x: z.number(),
      s: z.string().min(1).max(8),
      e: z.enum(['a', 'b']),
      d: z.iso.datetime(),
      opt: z.string().optional(),
      nul: z.number().nullable(),
      arr: z.array(z.number().int().min(0).max(100)).max(3),
      lit: z.literal(5),
      u: z.union([z.string(), z.boolean()]),
      t: z.tuple([z.string(), z.number()]),
    });
    const json = z.toJSONSchema(s, { target: 'draft-7' });
    expect(code(json)).toBeUndefined();
    const text =
      '{"arr": [0, 100], "d": "2024-01-02T03:04:05Z", "e": "b", "lit": 5, "n": -3, "nul": null, "s": "hi", "t": ["a", 1.5], "u": true, "x": 2.5}';
    expect(admits(json, text)).toBe(true);
    expect(s.parse(JSON.parse(text))).toBeDefined();
  });
});

describe('JSON Schema → grammar: every sentence passes zod', () => {
  // zod checks the values itself (its own regexes, its own integer and length rules): an
  // independent judge of what the grammar writes.
  const schemas = {
    numbers: z.object({
      n: z.number().int(),
      x: z.number(),
      small: z.number().int().min(-5).max(5),
      pos: z.number().positive(),
      neg: z.number().max(-3),
      pct: z.number().min(0).lt(100),
      unit: z.number().gt(0.5).lte(1.25),
      third: z
        .number()
        .gte(1 / 3)
        .lt(0.1 + 0.2 + 1),
    }),
    strings: z.object({
      s: z.string().min(1).max(8),
      e: z.enum(['a', 'b']),
      day: z.iso.date(),
      at: z.iso.datetime(),
      time: z.iso.time(),
      id: z.uuid(),
      mail: z.email(),
      code: z.string().regex(/^[A-Z]{2}-\d{3}$/),
      lit: z.literal('x"y'),
      word: z
        .string()
        .min(2)
        .max(4)
        .regex(/^[a-z]+$/),
      day10: z.iso.date().length(10),
    }),
    shapes: z.object({
      tags: z.array(z.string().max(4)).min(1).max(3),
      pair: z.tuple([z.boolean(), z.number().int()]),
      u: z.union([z.string(), z.number().int(), z.null()]),
      tagged: z.discriminatedUnion('kind', [
        z.object({ kind: z.literal('a'), v: z.number() }),
        z.object({ kind: z.literal('b') }),
      ]),
      map: z.record(z.string(), z.boolean()),
      opt: z.string().optional(),
      nul: z.number().nullable(),
    }),
  };
  it.each(Object.entries(schemas))('%s', (_, schema) => {
    const json = z.toJSONSchema(schema, { target: 'draft-7' });
    let seed = 1;
    const random = () => {
      seed = (seed * 48271) % 0x7fffffff;
      return seed / 0x7fffffff;
    };
    for (let i = 0; i < 200; i++) {
      const text = sample(json, random);
      const value = JSON.parse(text);
      const parsed = schema.safeParse(value);
      if (!parsed.success) throw new Error(`${text}: ${parsed.error.message}`);
      expect(schemaViolation(value, json)).toBeUndefined();
    }
  });
});

describe('the check of a finished answer', () => {
  it('refuses JSON that breaks its schema or holds an infinite number', () => {
    const schema = { type: 'object', properties: { x: { type: 'number' } }, required: ['x'] };
    expect(codeOf(() => checkStructuredOutput('{"x": 2E9257}', schema))).toBe('INFERENCE_FAILED');
    expect(codeOf(() => checkStructuredOutput('{"x": "1"}', schema))).toBe('INFERENCE_FAILED');
    expect(codeOf(() => checkStructuredOutput('{"x": 1', schema))).toBe('INFERENCE_FAILED');
    expect(codeOf(() => checkStructuredOutput('{"x": 1}', schema))).toBeUndefined();
    expect(codeOf(() => checkStructuredOutput('[1]', undefined))).toBe('INFERENCE_FAILED');
    expect(codeOf(() => checkStructuredOutput('{"a": [1e400]}', undefined))).toBe('INFERENCE_FAILED');
  });
});
