/**
 * Structured outputs: a JSON Schema becomes a GBNF grammar that llama.cpp samples under
 * (constrained decoding), and the finished answer is checked against the same schema.
 *
 * The rule is exactness: every text the grammar admits parses to a value the schema accepts.
 * A schema this compiler cannot enforce that way is refused before a token is generated
 * (`JSON_SCHEMA_UNSUPPORTED`), a schema that is not one (a `$ref` that points nowhere, a
 * pattern that is not a regular expression) is `JSON_SCHEMA_INVALID`; nothing is ignored.
 * docs/api.md lists what is supported.
 *
 * Written here rather than taken from node-llama-cpp's `createGrammarForJsonSchema` because that
 * one ignores what it does not know (an unresolvable `$ref` becomes "any JSON", `minimum` is
 * dropped) and its numbers allow 16-digit exponents (`2E9257` parses to Infinity).
 *
 * Choices that keep the grammar exact and the answer reproducible:
 * - Numbers are plain decimals with at most 15 significant digits (`|x| < 10^15`, no exponent):
 *   such a decimal and its double compare the same way against any bound (see `magnitude`), and
 *   it is always finite. Integers stay within ±(2^53 − 1).
 * - Objects are written with their required properties, then any of the optional ones, each group
 *   in sorted key order (RFC 8785's, the order the input digest fixes: a re-run from a bundle's
 *   canonical input writes the same); properties not listed are never written.
 * - Strings hold characters of the Basic Multilingual Plane only (escapes included), so that
 *   code points (JSON Schema) and UTF-16 units (JavaScript, zod) count the same.
 */
import { fail, VerityError } from '@verity/protocol';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = boolean | Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Grammar expressions, rendered to GBNF at the end (and checked for values they can finish).

type Ranges = [number, number][];
/** One grammar expression (rendered to GBNF by {@link compileJsonSchema}). */
export type Expr =
  | { k: 'lit'; s: string }
  | { k: 'cls'; r: Ranges }
  | { k: 'ref'; n: string }
  | { k: 'seq'; xs: Expr[] }
  | { k: 'alt'; xs: Expr[] }
  | { k: 'rep'; x: Expr; min: number; max: number | undefined };

const lit = (s: string): Expr => ({ k: 'lit', s });
const cls = (r: Ranges): Expr => (r.length === 0 ? { k: 'alt', xs: [] } : { k: 'cls', r });
const ref = (n: string): Expr => ({ k: 'ref', n });
const seq = (...xs: Expr[]): Expr => (xs.length === 1 ? (xs[0] as Expr) : { k: 'seq', xs });
const alt = (xs: Expr[]): Expr => (xs.length === 1 ? (xs[0] as Expr) : { k: 'alt', xs });
const rep = (x: Expr, min: number, max: number | undefined): Expr => ({ k: 'rep', x, min, max });
const opt = (x: Expr): Expr => rep(x, 0, 1);
const EMPTY: Expr = { k: 'seq', xs: [] };

const MAX_CP = 0xffff; // characters of the Basic Multilingual Plane (see the header)

function normalize(r: Ranges): Ranges {
  const s = r.filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  const out: Ranges = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}
function complement(r: Ranges): Ranges {
  const out: Ranges = [];
  let next = 0;
  for (const [a, b] of normalize(r)) {
    if (a > next) out.push([next, a - 1]);
    next = b + 1;
  }
  if (next <= MAX_CP) out.push([next, MAX_CP]);
  return out;
}
function intersect(x: Ranges, y: Ranges): Ranges {
  const out: Ranges = [];
  for (const [a, b] of normalize(x)) for (const [c, d] of normalize(y)) out.push([Math.max(a, c), Math.min(b, d)]);
  return normalize(out);
}
/** Characters written as themselves inside a JSON string: no quote, backslash, control or surrogate. */
const PLAIN: Ranges = [
  [0x20, 0x21],
  [0x23, 0x5b],
  [0x5d, 0xd7ff],
  [0xe000, MAX_CP],
];
const DIGIT: Expr = cls([[0x30, 0x39]]);
const HEX: Ranges = [
  [0x30, 0x39],
  [0x41, 0x46],
  [0x61, 0x66],
];

function renderCp(cp: number): string {
  return `\\u${cp.toString(16).padStart(4, '0')}`;
}
function renderLit(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}"`;
}
function render(e: Expr): string {
  switch (e.k) {
    case 'lit':
      return renderLit(e.s);
    case 'cls':
      return `[${e.r.map(([a, b]) => (a === b ? renderCp(a) : `${renderCp(a)}-${renderCp(b)}`)).join('')}]`;
    case 'ref':
      return e.n;
    case 'seq':
      return e.xs.length === 0 ? '""' : `(${e.xs.map(render).join(' ')})`;
    case 'alt':
      return `(${e.xs.map(render).join(' | ')})`;
    case 'rep': {
      const x = render(e.x);
      if (e.min === 0 && e.max === 1) return `${x}?`;
      if (e.min === 0 && e.max === undefined) return `${x}*`;
      if (e.min === 1 && e.max === undefined) return `${x}+`;
      if (e.max === undefined) return `${x}{${e.min},}`;
      return e.min === e.max ? `${x}{${e.min}}` : `${x}{${e.min},${e.max}}`;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Numbers

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
/** The largest integer part of a `number`: 15 digits. */
const MAX_INT_PART = 1e15 - 1;
const SIG_DIGITS = 15;

/** Decimal strings of one length from lo to hi (same length, no sign). */
function fixedRange(lo: string, hi: string): Expr {
  if (lo.length === 0) return EMPTY;
  if (lo === hi) return lit(lo);
  const a = Number(lo[0]);
  const b = Number(hi[0]);
  const n = lo.length - 1;
  const restLo = lo.slice(1);
  const restHi = hi.slice(1);
  const digits = (x: number, y: number) => cls([[0x30 + x, 0x30 + y]]);
  const tail = n === 0 ? [] : [rep(DIGIT, n, n)];
  if (/^0*$/.test(restLo) && /^9*$/.test(restHi)) return seq(digits(a, b), ...tail);
  if (a === b) return seq(lit(String(a)), fixedRange(restLo, restHi));
  const parts = [seq(lit(String(a)), fixedRange(restLo, '9'.repeat(n)))];
  if (b - a > 1) parts.push(seq(digits(a + 1, b - 1), ...tail));
  parts.push(seq(lit(String(b)), fixedRange('0'.repeat(n), restHi)));
  return alt(parts);
}

/** The non-negative integers lo..hi without leading zeros, by number of digits. */
function intRange(lo: number, hi: number): { digits: number; expr: Expr }[] {
  const out: { digits: number; expr: Expr }[] = [];
  for (let k = String(lo).length; k <= String(hi).length; k++) {
    const a = Math.max(lo, k === 1 ? 0 : 10 ** (k - 1));
    const b = Math.min(hi, 10 ** k - 1);
    if (a <= b) out.push({ digits: k, expr: fixedRange(String(a), String(b)) });
  }
  return out;
}

function integerExpr(lo: number, hi: number): Expr {
  const parts: Expr[] = [];
  if (lo < 0) {
    const neg = intRange(Math.max(1, -hi), -lo);
    if (neg.length > 0) parts.push(seq(lit('-'), alt(neg.map((r) => r.expr))));
  }
  if (hi >= 0) parts.push(...intRange(Math.max(0, lo), hi).map((r) => r.expr));
  return alt(parts);
}

interface Bound {
  v: number;
  excl: boolean;
}
/** A bound on a fraction's digits (compared as decimal fractions): F ≥ s, or F > s when strict. */
interface FracBound {
  s: string;
  strict: boolean;
}
/** A non-negative bound as an exact decimal: integer part and fraction digits (no trailing zero). */
interface Magnitude {
  i: number;
  f: string;
  excl: boolean;
}

/**
 * The decimal a double prints as (its shortest round-trip form), split. A decimal of at most 15
 * significant digits compares with this decimal exactly as its double compares with the double:
 * two such decimals never round to the same double, and rounding keeps order.
 */
function magnitude(v: number, excl: boolean): Magnitude {
  const [mantissa = '0', exp = '0'] = String(v).split('e');
  const dot = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const point = (dot === -1 ? mantissa.length : dot) + Number(exp);
  const int = point <= 0 ? '0' : digits.slice(0, point).padEnd(point, '0');
  const frac = (point < 0 ? '0'.repeat(-point) + digits : digits.slice(Math.max(point, 0))).replace(/0+$/, '');
  return { i: int.length > 16 ? Number.POSITIVE_INFINITY : Number(int), f: frac, excl };
}

/** Fraction digit strings F of length 0..m within the bounds: may F be empty, and the rest. */
function fraction(m: number, low: FracBound | undefined, hi: FracBound | undefined): { empty: boolean; ne?: Expr } {
  const lo = low && (low.s !== '' || low.strict) ? low : undefined; // F ≥ 0 holds always
  const empty = (!lo || (lo.s === '' && !lo.strict)) && (hi?.s !== '' || !hi.strict);
  if (m === 0) return { empty };
  const l0 = lo ? Number(lo.s[0] ?? '0') : -1;
  const h0 = hi ? Number(hi.s[0] ?? '0') : 10;
  const alts: Expr[] = [];
  const then = (d: number, sub: { empty: boolean; ne?: Expr }) => {
    if (sub.ne) alts.push(seq(lit(String(d)), sub.empty ? opt(sub.ne) : sub.ne));
    else if (sub.empty) alts.push(lit(String(d)));
  };
  if (lo && l0 <= h0) {
    then(
      l0,
      fraction(
        m - 1,
        { s: lo.s.slice(1), strict: lo.strict },
        l0 === h0 && hi ? { s: hi.s.slice(1), strict: hi.strict } : undefined,
      ),
    );
  }
  if (l0 + 1 <= Math.min(h0 - 1, 9)) {
    alts.push(seq(cls([[0x30 + l0 + 1, 0x30 + Math.min(h0 - 1, 9)]]), ...(m > 1 ? [rep(DIGIT, 0, m - 1)] : [])));
  }
  if (hi && h0 !== l0 && h0 > l0) then(h0, fraction(m - 1, undefined, { s: hi.s.slice(1), strict: hi.strict }));
  return alts.length > 0 ? { empty, ne: alt(alts) } : { empty };
}

interface Piece {
  a: number;
  b: number;
  lo?: FracBound;
  hi?: FracBound;
}

/** Magnitudes (integer part I, fraction F) between lo and hi, as ranges of I with bounds on F. */
function magnitudePieces(lo: Magnitude, hi: Magnitude | undefined): Piece[] {
  const top = hi && hi.i <= MAX_INT_PART ? hi : undefined;
  if (lo.i > MAX_INT_PART || (top && lo.i > top.i)) return [];
  const loF = lo.f === '' && !lo.excl ? undefined : { s: lo.f, strict: lo.excl };
  if (top && lo.i === top.i)
    return [{ a: lo.i, b: lo.i, ...(loF ? { lo: loF } : {}), hi: { s: top.f, strict: top.excl } }];
  const pieces: Piece[] = [{ a: lo.i, b: lo.i, ...(loF ? { lo: loF } : {}) }];
  pieces.push({ a: lo.i + 1, b: top ? top.i - 1 : MAX_INT_PART });
  if (top) pieces.push({ a: top.i, b: top.i, hi: { s: top.f, strict: top.excl } });
  return pieces.filter((p) => p.a <= p.b);
}

function piecesExpr(pieces: Piece[]): Expr[] {
  const out: Expr[] = [];
  for (const p of pieces) {
    // The integer part 0 is no significant digit: 0.F may have 15 of its own.
    const ranges =
      p.a === 0 ? [{ digits: 0, expr: lit('0') }, ...(p.b >= 1 ? intRange(1, p.b) : [])] : intRange(p.a, p.b);
    for (const { digits, expr } of ranges) {
      const f = fraction(SIG_DIGITS - digits, p.lo, p.hi);
      if (f.ne) out.push(seq(expr, f.empty ? opt(seq(lit('.'), f.ne)) : seq(lit('.'), f.ne)));
      else if (f.empty) out.push(expr);
    }
  }
  return out;
}

function numberExpr(lower: Bound | undefined, upper: Bound | undefined): Expr {
  const parts: Expr[] = [];
  // x ≥ 0 (never written "-0").
  if (!upper || upper.v > 0 || (upper.v === 0 && !upper.excl)) {
    const lo = lower && lower.v >= 0 ? magnitude(lower.v, lower.excl) : magnitude(0, false);
    parts.push(...piecesExpr(magnitudePieces(lo, upper ? magnitude(upper.v, upper.excl) : undefined)));
  }
  // x < 0, as "-" and its magnitude m = -x > 0.
  if (!lower || lower.v < 0) {
    const lo = upper && upper.v < 0 ? magnitude(-upper.v, upper.excl) : magnitude(0, true);
    const neg = piecesExpr(magnitudePieces(lo, lower ? magnitude(-lower.v, lower.excl) : undefined));
    if (neg.length > 0) parts.push(seq(lit('-'), alt(neg)));
  }
  return alt(parts);
}

// ---------------------------------------------------------------------------------------------
// Regular expressions (the `pattern` keyword): a subset of ECMA-262 compiled to grammar.

const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
const SPACE: Ranges = normalize([
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
]);
const LINE_ENDS: Ranges = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];

/** One character of the pattern, as it is written inside a JSON string. */
function charExpr(cp: number): Expr {
  const ch = String.fromCodePoint(cp);
  if (ch === '"' || ch === '\\') return lit(`\\${ch}`);
  if (cp < 0x20) return lit(`\\u${cp.toString(16).padStart(4, '0')}`);
  if (cp > MAX_CP || (cp >= 0xd800 && cp <= 0xdfff)) return alt([]);
  return lit(ch);
}

function patternExpr(pattern: string, path: string, char: Expr): Expr {
  const unsupported = (what: string): never =>
    fail('JSON_SCHEMA_UNSUPPORTED', `${path}: pattern ${JSON.stringify(pattern)}: ${what} cannot be enforced`, {
      param: 'response_format.json_schema',
    });
  const src = [...pattern];
  let i = 0;
  let end = src.length;
  const anchoredStart = src[0] === '^';
  if (anchoredStart) i = 1;
  let slashes = 0;
  for (let j = end - 2; j >= 0 && src[j] === '\\'; j--) slashes++;
  const anchoredEnd = end > i && src[end - 1] === '$' && slashes % 2 === 0;
  if (anchoredEnd) end--;

  const peek = () => (i < end ? src[i] : undefined);
  const hex = (n: number) => {
    const h = src.slice(i, i + n).join('');
    if (!/^[0-9a-fA-F]+$/.test(h) || h.length !== n) unsupported('an escape');
    i += n;
    return Number.parseInt(h, 16);
  };
  /** An escape after `\`: a set of characters. */
  const escapeSet = (inClass: boolean): Ranges => {
    const c = src[i++];
    switch (c) {
      case 'd':
        return [[0x30, 0x39]];
      case 'D':
        return complement([[0x30, 0x39]]);
      case 'w':
        return WORD;
      case 'W':
        return complement(WORD);
      case 's':
        return SPACE;
      case 'S':
        return complement(SPACE);
      case 'n':
        return [[0x0a, 0x0a]];
      case 'r':
        return [[0x0d, 0x0d]];
      case 't':
        return [[0x09, 0x09]];
      case 'f':
        return [[0x0c, 0x0c]];
      case 'v':
        return [[0x0b, 0x0b]];
      case '0':
        return [[0, 0]];
      case 'x': {
        const cp = hex(2);
        return [[cp, cp]];
      }
      case 'u': {
        if (src[i] === '{') {
          const close = src.indexOf('}', i);
          const cp = Number.parseInt(src.slice(i + 1, close).join(''), 16);
          i = close + 1;
          return [[cp, cp]];
        }
        const cp = hex(4);
        return [[cp, cp]];
      }
      case 'b':
        if (inClass) return [[0x08, 0x08]];
        return unsupported('a word boundary');
      default:
        if (c === undefined || /[0-9A-Za-z]/.test(c)) return unsupported(`the escape \\${c ?? ''}`);
        return [[c.codePointAt(0) as number, c.codePointAt(0) as number]];
    }
  };
  const classItem = (): Ranges => {
    const c = src[i++] as string;
    return c === '\\' ? escapeSet(true) : [[c.codePointAt(0) as number, c.codePointAt(0) as number]];
  };
  const charClass = (): Expr => {
    const negated = peek() === '^';
    if (negated) i++;
    const set: Ranges = [];
    while (i < end && src[i] !== ']') {
      const first = classItem();
      if (src[i] === '-' && src[i + 1] !== ']' && i + 1 < end) {
        i++;
        const last = classItem();
        if (first.length !== 1 || last.length !== 1) unsupported('a range of character sets');
        set.push([(first[0] as [number, number])[0], (last[0] as [number, number])[0]]);
      } else set.push(...first);
    }
    if (src[i] !== ']') unsupported('an unclosed class');
    i++;
    return cls(intersect(negated ? complement(set) : set, PLAIN));
  };
  const atom = (): Expr => {
    const c = src[i++] as string;
    switch (c) {
      case '(': {
        if (src[i] === '?') {
          if (src[i + 1] === ':') i += 2;
          else if (src[i + 1] === '<' && src[i + 2] !== '=' && src[i + 2] !== '!') {
            i = src.indexOf('>', i) + 1;
          } else unsupported('a lookaround');
        }
        const inner = alternation();
        if (src[i] !== ')') unsupported('an unclosed group');
        i++;
        return inner;
      }
      case '[':
        return charClass();
      case '.':
        return cls(intersect(complement(LINE_ENDS), PLAIN));
      case '\\': {
        if (/[1-9k]/.test(src[i] ?? '')) unsupported('a back reference');
        if (src[i] === 'p' || src[i] === 'P') unsupported('a Unicode property');
        const set = escapeSet(false);
        if (set.length === 1 && (set[0] as [number, number])[0] === (set[0] as [number, number])[1]) {
          return charExpr((set[0] as [number, number])[0]);
        }
        return cls(intersect(set, PLAIN));
      }
      case '^':
      case '$':
        return unsupported('an anchor inside the pattern');
      default:
        return charExpr(c.codePointAt(0) as number);
    }
  };
  const quantified = (x: Expr): Expr => {
    const c = peek();
    let q: Expr = x;
    if (c === '*') q = rep(x, 0, undefined);
    else if (c === '+') q = rep(x, 1, undefined);
    else if (c === '?') q = opt(x);
    else if (c === '{') {
      const close = src.indexOf('}', i);
      const m = /^\{(\d+)(,(\d*))?\}$/.exec(src.slice(i, close + 1).join(''));
      if (!m) unsupported('a quantifier');
      const min = Number(m?.[1]);
      const max = m?.[2] === undefined ? min : m[3] === '' ? undefined : Number(m?.[3]);
      i = close;
      q = rep(x, min, max);
    } else return x;
    i++;
    if (peek() === '?') i++; // lazy: the same language
    return q;
  };
  const sequence = (): Expr => {
    const items: Expr[] = [];
    while (i < end && src[i] !== '|' && src[i] !== ')') items.push(quantified(atom()));
    return items.length === 0 ? EMPTY : seq(...items);
  };
  let branches = 0;
  const alternation = (): Expr => {
    const alts = [sequence()];
    while (src[i] === '|') {
      i++;
      alts.push(sequence());
    }
    branches = alts.length;
    return alt(alts);
  };
  const body = alternation();
  if (i !== end) unsupported('this syntax');
  // `^a|b$` is (^a)|(b$): anchors bind to one branch only.
  if ((anchoredStart || anchoredEnd) && branches > 1) {
    unsupported('an alternation beside an anchor (group it: ^(a|b)$)');
  }
  const any = rep(char, 0, undefined);
  return seq(...(anchoredStart ? [] : [any]), body, ...(anchoredEnd ? [] : [any]));
}

// ---------------------------------------------------------------------------------------------
// Formats

const r = (a: string, b = a): [number, number] => [a.codePointAt(0) as number, b.codePointAt(0) as number];
const d = (a: string, b: string) => cls([r(a, b)]);
const hexs = (n: number) => rep(cls(HEX), n, n);
const d2 = (first: Expr, second: Expr = DIGIT) => seq(first, second);

function dateExpr(): Expr {
  const year = rep(DIGIT, 4, 4);
  const day28 = alt([seq(lit('0'), d('1', '9')), seq(lit('1'), DIGIT), seq(lit('2'), d('0', '8'))]);
  const day30 = alt([seq(lit('0'), d('1', '9')), seq(d('1', '2'), DIGIT), lit('30')]);
  const day31 = alt([day30, lit('31')]);
  const common = seq(
    year,
    lit('-'),
    alt([
      seq(
        alt([seq(lit('0'), cls([r('1'), r('3'), r('5'), r('7', '8')])), seq(lit('1'), cls([r('0'), r('2')]))]),
        lit('-'),
        day31,
      ),
      seq(alt([seq(lit('0'), cls([r('4'), r('6'), r('9')])), lit('11')]), lit('-'), day30),
      seq(lit('02-'), day28),
    ]),
  );
  // Leap years: divisible by 4, and not by 100 unless by 400.
  const leap = alt([
    seq(DIGIT, DIGIT, cls([r('2'), r('4'), r('6'), r('8')]), cls([r('0'), r('4'), r('8')])),
    seq(DIGIT, DIGIT, cls([r('1'), r('3'), r('5'), r('7'), r('9')]), cls([r('2'), r('6')])),
    seq(DIGIT, DIGIT, lit('0'), cls([r('4'), r('8')])),
    seq(cls([r('0'), r('2'), r('4'), r('6'), r('8')]), cls([r('0'), r('4'), r('8')]), lit('00')),
    seq(cls([r('1'), r('3'), r('5'), r('7'), r('9')]), cls([r('2'), r('6')]), lit('00')),
  ]);
  return alt([common, seq(leap, lit('-02-29'))]);
}
function timeExpr(): Expr {
  const hh = alt([d2(d('0', '1')), d2(lit('2'), d('0', '3'))]);
  const mm = d2(d('0', '5'));
  return seq(
    hh,
    lit(':'),
    mm,
    lit(':'),
    mm,
    opt(seq(lit('.'), rep(DIGIT, 1, 9))),
    alt([lit('Z'), seq(cls([r('+'), r('-')]), hh, lit(':'), mm)]),
  );
}
const ALNUM = cls([r('0', '9'), r('A', 'Z'), r('a', 'z')]);
const FORMATS: Record<string, () => Expr> = {
  date: dateExpr,
  time: timeExpr,
  'date-time': () => seq(dateExpr(), lit('T'), timeExpr()),
  uuid: () => seq(hexs(8), lit('-'), hexs(4), lit('-'), hexs(4), lit('-'), hexs(4), lit('-'), hexs(12)),
  email: () => {
    const label = seq(rep(ALNUM, 1, undefined), rep(seq(lit('-'), rep(ALNUM, 1, undefined)), 0, undefined));
    const local = seq(rep(ALNUM, 1, undefined), rep(seq(lit('.'), rep(ALNUM, 1, undefined)), 0, undefined));
    return seq(
      local,
      lit('@'),
      rep(seq(label, lit('.')), 1, undefined),
      rep(cls([r('A', 'Z'), r('a', 'z')]), 2, undefined),
    );
  },
  ipv4: () => {
    const octet = alt([
      seq(lit('25'), d('0', '5')),
      seq(lit('2'), d('0', '4'), DIGIT),
      seq(lit('1'), DIGIT, DIGIT),
      seq(d('1', '9'), DIGIT),
      DIGIT,
    ]);
    return seq(octet, lit('.'), octet, lit('.'), octet, lit('.'), octet);
  },
};

// ---------------------------------------------------------------------------------------------
// Keywords

/** Keywords that describe and never constrain. */
const ANNOTATIONS = new Set([
  '$schema',
  '$id',
  '$comment',
  '$defs',
  'definitions',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  'contentEncoding',
  'contentMediaType',
]);
/** Keywords enforced (by grammar, then checked on the finished answer). */
const ENFORCED = new Set([
  'type',
  'enum',
  'const',
  '$ref',
  'anyOf',
  'oneOf',
  'allOf',
  'properties',
  'required',
  'additionalProperties',
  'propertyNames',
  'minProperties',
  'maxProperties',
  'patternProperties',
  'items',
  'prefixItems',
  'additionalItems',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'pattern',
  'format',
]);
const TYPES = ['null', 'boolean', 'object', 'array', 'number', 'integer', 'string'] as const;
type JsonType = (typeof TYPES)[number];

const PARAM = { param: 'response_format.json_schema' };
/** Schemas inside schemas, at most (recursion through $ref does not count: it reuses a rule). */
const MAX_DEPTH = 64;

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Canonical text of a JSON value (sorted keys), for equality. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Resolves a `$ref` within the document (JSON Pointer fragments only). */
function resolveRef(root: Schema, refValue: unknown, path: string): Schema {
  if (typeof refValue !== 'string') fail('JSON_SCHEMA_INVALID', `${path}: $ref must be a string`, PARAM);
  if (!refValue.startsWith('#')) {
    fail('JSON_SCHEMA_UNSUPPORTED', `${path}: $ref ${JSON.stringify(refValue)} points outside the schema`, PARAM);
  }
  let pointer = '';
  try {
    pointer = decodeURIComponent(refValue.slice(1));
  } catch {
    fail('JSON_SCHEMA_INVALID', `${path}: $ref ${JSON.stringify(refValue)} is not a valid pointer`, PARAM);
  }
  if (pointer !== '' && !pointer.startsWith('/')) {
    fail('JSON_SCHEMA_UNSUPPORTED', `${path}: $ref ${JSON.stringify(refValue)} names an anchor`, PARAM);
  }
  let at: unknown = root;
  for (const part of pointer === '' ? [] : pointer.slice(1).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    at = isObj(at) || Array.isArray(at) ? (at as Record<string, unknown>)[key] : undefined;
    if (at === undefined) break;
  }
  if (typeof at !== 'boolean' && !isObj(at)) {
    fail('JSON_SCHEMA_INVALID', `${path}: $ref ${JSON.stringify(refValue)} points to no schema`, PARAM);
  }
  return at as Schema;
}

// ---------------------------------------------------------------------------------------------
// The check of a value against a schema (the enforced subset), used on finished answers.

function lengthOf(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

const FORMAT_CHECKS: Record<string, (s: string) => boolean> = {
  date: (s) => {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
    if (!m) return false;
    const [y, mo, da] = [Number(m[1]), Number(m[2]), Number(m[3])];
    const t = new Date(Date.UTC(2000, mo - 1, da));
    t.setUTCFullYear(y);
    return t.getUTCFullYear() === y && t.getUTCMonth() === mo - 1 && t.getUTCDate() === da;
  },
  time: (s) => {
    const m = /^(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-](\d{2}):(\d{2}))$/i.exec(s);
    return (
      !!m &&
      Number(m[1]) < 24 &&
      Number(m[2]) < 60 &&
      Number(m[3]) < 61 &&
      Number(m[6] ?? 0) < 24 &&
      Number(m[7] ?? 0) < 60
    );
  },
  'date-time': (s) => {
    const t = s.search(/[Tt]/);
    return (
      t === 10 &&
      (FORMAT_CHECKS.date as (s: string) => boolean)(s.slice(0, t)) &&
      (FORMAT_CHECKS.time as (s: string) => boolean)(s.slice(t + 1))
    );
  },
  uuid: (s) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s),
  email: (s) =>
    /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i.test(
      s,
    ),
  ipv4: (s) => /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(s),
};

function typeOf(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v as JsonType;
}

/**
 * Where `value` breaks `schema` (a JSON path and what), or undefined when it holds.
 * Only meaningful for schemas {@link compileJsonSchema} accepted.
 */
export function schemaViolation(value: unknown, schema: unknown, root: unknown = schema, at = '$'): string | undefined {
  if (schema === true) return undefined;
  if (schema === false) return `${at}: no value is allowed`;
  const s = schema as Record<string, unknown>;
  const no = (why: string) => `${at}: ${why}`;
  if (typeof value === 'number' && !Number.isFinite(value)) return no('not a finite number');
  if (s.$ref !== undefined) {
    const v = schemaViolation(value, resolveRef(root as Schema, s.$ref, at), root, at);
    if (v) return v;
  }
  for (const sub of (s.allOf as unknown[] | undefined) ?? []) {
    const v = schemaViolation(value, sub, root, at);
    if (v) return v;
  }
  if (Array.isArray(s.anyOf) && !s.anyOf.some((sub) => !schemaViolation(value, sub, root, at))) {
    return no('matches none of anyOf');
  }
  if (Array.isArray(s.oneOf) && s.oneOf.filter((sub) => !schemaViolation(value, sub, root, at)).length !== 1) {
    return no('does not match exactly one of oneOf');
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => canonical(e) === canonical(value))) return no('not in enum');
  if ('const' in s && canonical(s.const) !== canonical(value)) return no('not the const');
  const t = typeOf(value);
  if (s.type !== undefined) {
    const types = Array.isArray(s.type) ? s.type : [s.type];
    if (!types.includes(t) && !(t === 'integer' && types.includes('number')))
      return no(`not of type ${types.join('|')}`);
  }
  if (typeof value === 'number') {
    const min = s.minimum as number | undefined;
    const max = s.maximum as number | undefined;
    const emin = s.exclusiveMinimum;
    const emax = s.exclusiveMaximum;
    if (typeof min === 'number' && (emin === true ? value <= min : value < min)) return no(`below ${min}`);
    if (typeof max === 'number' && (emax === true ? value >= max : value > max)) return no(`above ${max}`);
    if (typeof emin === 'number' && value <= emin) return no(`not above ${emin}`);
    if (typeof emax === 'number' && value >= emax) return no(`not below ${emax}`);
    if (typeof s.multipleOf === 'number' && !Number.isInteger(value / s.multipleOf)) return no('not a multiple');
  }
  if (typeof value === 'string') {
    const n = lengthOf(value);
    if (typeof s.minLength === 'number' && n < s.minLength) return no(`shorter than ${s.minLength}`);
    if (typeof s.maxLength === 'number' && n > s.maxLength) return no(`longer than ${s.maxLength}`);
    if (typeof s.pattern === 'string') {
      if (!new RegExp(s.pattern, 'u').test(value)) return no('does not match the pattern');
    } else if (typeof s.format === 'string' && FORMAT_CHECKS[s.format] && !FORMAT_CHECKS[s.format]?.(value)) {
      return no(`not a ${s.format}`);
    }
  }
  if (Array.isArray(value)) {
    if (typeof s.minItems === 'number' && value.length < s.minItems) return no(`fewer than ${s.minItems} items`);
    if (typeof s.maxItems === 'number' && value.length > s.maxItems) return no(`more than ${s.maxItems} items`);
    const prefix = (Array.isArray(s.prefixItems) ? s.prefixItems : Array.isArray(s.items) ? s.items : []) as unknown[];
    const rest = Array.isArray(s.items) ? s.additionalItems : Array.isArray(s.prefixItems) ? s.items : s.items;
    for (const [j, item] of value.entries()) {
      const sub = j < prefix.length ? prefix[j] : rest;
      const v = sub === undefined ? undefined : schemaViolation(item, sub, root, `${at}[${j}]`);
      if (v) return v;
    }
    if (s.uniqueItems === true && new Set(value.map(canonical)).size !== value.length) return no('items repeat');
  }
  if (isObj(value)) {
    const keys = Object.keys(value);
    const props = (isObj(s.properties) ? s.properties : {}) as Record<string, unknown>;
    for (const k of (s.required as string[] | undefined) ?? []) if (!(k in value)) return no(`lacks ${k}`);
    if (typeof s.minProperties === 'number' && keys.length < s.minProperties) return no('too few properties');
    if (typeof s.maxProperties === 'number' && keys.length > s.maxProperties) return no('too many properties');
    for (const k of keys) {
      const sub = Object.hasOwn(props, k) ? props[k] : s.additionalProperties;
      const v = sub === undefined ? undefined : schemaViolation(value[k], sub, root, `${at}.${k}`);
      if (v) return v;
      if (s.propertyNames !== undefined) {
        const n = schemaViolation(k, s.propertyNames, root, `${at}.${k} (name)`);
        if (n) return n;
      }
    }
  }
  return undefined;
}

function finiteEverywhere(v: unknown): boolean {
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v === 'object' && v !== null) return Object.values(v).every(finiteEverywhere);
  return true;
}

// ---------------------------------------------------------------------------------------------
// The compiler

class Compiler {
  readonly rules = new Map<string, Expr>();
  private readonly names = new Map<object, string>();
  private readonly paths = new Map<string, string>();
  private next = 0;
  private depth = 0;

  constructor(private readonly root: Schema) {}

  private invalid(path: string, why: string): never {
    return fail('JSON_SCHEMA_INVALID', `${path}: ${why}`, PARAM);
  }
  private unsupported(path: string, why: string): never {
    return fail('JSON_SCHEMA_UNSUPPORTED', `${path}: ${why}`, PARAM);
  }

  /** A fixed helper rule, made on first use. */
  helper(name: string, make: () => Expr): Expr {
    if (!this.rules.has(name)) {
      this.rules.set(name, EMPTY);
      this.rules.set(name, make());
      this.paths.set(name, name);
    }
    return ref(name);
  }

  ws(): Expr {
    return this.helper('ws', () => opt(lit(' ')));
  }
  char(): Expr {
    return this.helper('char', () => this.charBody(PLAIN));
  }
  private charBody(plain: Ranges): Expr {
    // An escape: \" \\ \/ \b \f \n \r \t, or \u and four hex digits that are not a surrogate.
    const u = seq(
      lit('\\u'),
      alt([
        seq(cls(intersect(HEX, complement([r('D'), r('d')]))), hexs(3)),
        seq(cls([r('D'), r('d')]), cls([r('0', '7')]), hexs(2)),
      ]),
    );
    return alt([cls(plain), seq(lit('\\'), cls([r('"'), r('\\'), r('/'), r('b'), r('f'), r('n'), r('r'), r('t')])), u]);
  }
  string(): Expr {
    return this.helper('string', () => seq(lit('"'), rep(this.char(), 0, undefined), lit('"')));
  }
  number(): Expr {
    return this.helper('number', () => numberExpr(undefined, undefined));
  }
  /** Any JSON value (with finite numbers). */
  any(): Expr {
    return this.helper('value', () => {
      const ws = this.ws();
      const value = ref('value');
      const member = seq(this.string(), ws, lit(':'), ws, value);
      const object = seq(
        lit('{'),
        ws,
        opt(seq(member, rep(seq(ws, lit(','), ws, member), 0, undefined))),
        ws,
        lit('}'),
      );
      const array = seq(lit('['), ws, opt(seq(value, rep(seq(ws, lit(','), ws, value), 0, undefined))), ws, lit(']'));
      return alt([
        this.helper('object', () => object),
        this.helper('array', () => array),
        this.string(),
        this.number(),
        lit('true'),
        lit('false'),
        lit('null'),
      ]);
    });
  }

  /** The rule of a schema (one per schema object: recursion through `$ref` becomes recursion of rules). */
  schema(s: unknown, path: string): Expr {
    if (s === true) return this.any();
    if (s === false) return this.unsupported(path, 'the schema false admits no value');
    if (!isObj(s)) return this.invalid(path, 'a schema must be an object or a boolean');
    const known = this.names.get(s);
    if (known) return ref(known);
    const name = `s${this.next++}`;
    this.names.set(s, name);
    this.paths.set(name, path);
    this.rules.set(name, EMPTY);
    if (++this.depth > MAX_DEPTH) this.unsupported(path, `schemas nested more than ${MAX_DEPTH} deep`);
    this.rules.set(name, this.body(s, path));
    this.depth--;
    return ref(name);
  }

  private body(s: Record<string, unknown>, path: string): Expr {
    for (const k of Object.keys(s)) {
      if (k.startsWith('x-') || ANNOTATIONS.has(k)) continue;
      if (!ENFORCED.has(k)) this.unsupported(path, `"${k}" cannot be enforced`);
    }
    if (s.$id !== undefined && s !== this.root)
      this.unsupported(path, '"$id" inside a schema (it moves $ref resolution)');
    const constraining = Object.keys(s).filter((k) => !k.startsWith('x-') && !ANNOTATIONS.has(k));
    const alone = (k: string) => {
      const others = constraining.filter((o) => o !== k);
      if (others.length > 0) this.unsupported(path, `"${k}" beside ${others.map((o) => `"${o}"`).join(', ')}`);
    };
    if (s.$ref !== undefined) {
      alone('$ref');
      return this.schema(resolveRef(this.root, s.$ref, path), `${path}.$ref`);
    }
    if (s.allOf !== undefined) {
      alone('allOf');
      if (!Array.isArray(s.allOf) || s.allOf.length === 0) this.invalid(path, 'allOf must be a non-empty array');
      if (s.allOf.length > 1) this.unsupported(path, 'allOf with more than one schema');
      return this.schema(s.allOf[0], `${path}.allOf[0]`);
    }
    for (const k of ['anyOf', 'oneOf'] as const) {
      if (s[k] === undefined) continue;
      alone(k);
      const list = s[k];
      if (!Array.isArray(list) || list.length === 0) this.invalid(path, `${k} must be a non-empty array`);
      if (k === 'oneOf') this.checkDisjoint(list as unknown[], path);
      return alt((list as unknown[]).map((sub, j) => this.schema(sub, `${path}.${k}[${j}]`)));
    }
    if (s.enum !== undefined || 'const' in s) return this.literals(s, path);
    const types = this.types(s, path);
    const parts: Expr[] = [];
    for (const t of types) {
      if (t === 'null') parts.push(lit('null'));
      else if (t === 'boolean') parts.push(alt([lit('true'), lit('false')]));
      else if (t === 'integer') parts.push(this.integer(s, path));
      else if (t === 'number') parts.push(this.numberOf(s, path));
      else if (t === 'string') parts.push(this.stringOf(s, path));
      else if (t === 'array') parts.push(this.array(s, path));
      else parts.push(this.object(s, path));
    }
    return alt(parts);
  }

  private types(s: Record<string, unknown>, path: string): JsonType[] {
    if (s.type === undefined) return TYPES.filter((t) => t !== 'integer');
    const list = Array.isArray(s.type) ? s.type : [s.type];
    for (const t of list) {
      if (typeof t !== 'string' || !(TYPES as readonly string[]).includes(t)) {
        this.invalid(path, `unknown type ${JSON.stringify(t)}`);
      }
    }
    const set = new Set(list as JsonType[]);
    if (set.has('number')) set.delete('integer');
    return [...set];
  }

  /** enum / const: the listed values that also satisfy the rest of the schema. */
  private literals(s: Record<string, unknown>, path: string): Expr {
    if (s.enum !== undefined && (!Array.isArray(s.enum) || s.enum.length === 0)) {
      this.invalid(path, 'enum must be a non-empty array');
    }
    let values = ('const' in s ? [s.const] : (s.enum as unknown[])) as Json[];
    if ('const' in s && Array.isArray(s.enum))
      values = values.filter((v) => (s.enum as unknown[]).some((e) => canonical(e) === canonical(v)));
    const rest = Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'enum' && k !== 'const'));
    // The other keywords must be understood too (they filter the values).
    if (Object.keys(rest).some((k) => !k.startsWith('x-') && !ANNOTATIONS.has(k))) this.types(rest, path);
    const kept = values.filter((v) => !schemaViolation(v, rest, this.root, path));
    if (kept.length === 0) this.unsupported(path, 'no value of enum/const satisfies the schema');
    return alt(kept.map((v) => lit(JSON.stringify(v))));
  }

  private bounds(s: Record<string, unknown>, path: string): { lower?: Bound; upper?: Bound } {
    const num = (k: string) => {
      const v = s[k];
      if (v === undefined || typeof v === 'boolean') return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) this.invalid(path, `${k} must be a finite number`);
      return v;
    };
    let lower: Bound | undefined;
    let upper: Bound | undefined;
    const tighterLow = (b: Bound) => {
      if (!lower || b.v > lower.v || (b.v === lower.v && b.excl)) lower = b;
    };
    const tighterHigh = (b: Bound) => {
      if (!upper || b.v < upper.v || (b.v === upper.v && b.excl)) upper = b;
    };
    const min = num('minimum');
    const max = num('maximum');
    const emin = num('exclusiveMinimum');
    const emax = num('exclusiveMaximum');
    // Draft 4 spelled exclusiveness as a boolean beside minimum/maximum.
    if (min !== undefined) tighterLow({ v: min, excl: s.exclusiveMinimum === true });
    if (max !== undefined) tighterHigh({ v: max, excl: s.exclusiveMaximum === true });
    if (emin !== undefined) tighterLow({ v: emin, excl: true });
    if (emax !== undefined) tighterHigh({ v: emax, excl: true });
    return { ...(lower ? { lower } : {}), ...(upper ? { upper } : {}) };
  }

  private integer(s: Record<string, unknown>, path: string): Expr {
    if (s.multipleOf !== undefined && s.multipleOf !== 1) this.unsupported(path, '"multipleOf" other than 1');
    const { lower, upper } = this.bounds(s, path);
    let lo = -MAX_SAFE;
    let hi = MAX_SAFE;
    if (lower) lo = Math.max(lo, lower.excl ? Math.floor(lower.v) + 1 : Math.ceil(lower.v));
    if (upper) hi = Math.min(hi, upper.excl ? Math.ceil(upper.v) - 1 : Math.floor(upper.v));
    if (lo > hi) this.unsupported(path, 'no safe integer lies within the bounds');
    return integerExpr(lo, hi);
  }

  private numberOf(s: Record<string, unknown>, path: string): Expr {
    if (s.multipleOf !== undefined) {
      if (s.multipleOf === 1) return this.integer(s, path);
      this.unsupported(path, '"multipleOf" on a number');
    }
    const { lower, upper } = this.bounds(s, path);
    if (!lower && !upper) return this.number();
    const e = numberExpr(lower, upper);
    if (e.k === 'alt' && e.xs.length === 0) this.unsupported(path, 'no number lies within the bounds');
    return e;
  }

  private stringOf(s: Record<string, unknown>, path: string): Expr {
    const len = (k: string) => {
      const v = s[k];
      if (v === undefined) return undefined;
      if (!Number.isSafeInteger(v) || (v as number) < 0) this.invalid(path, `${k} must be a non-negative integer`);
      return v as number;
    };
    const min = len('minLength');
    const max = len('maxLength');
    const quoted = (content: Expr) => seq(lit('"'), content, lit('"'));
    if (max !== undefined && max < (min ?? 0)) this.unsupported(path, 'maxLength is below minLength');
    let content: Expr | undefined;
    if (s.pattern !== undefined) {
      if (typeof s.pattern !== 'string') this.invalid(path, 'pattern must be a string');
      try {
        new RegExp(s.pattern as string, 'u');
      } catch {
        this.invalid(path, 'pattern is not a regular expression');
      }
      // With a pattern, `format` is an annotation (JSON Schema 2020-12): the pattern is enforced.
      content = patternExpr(s.pattern as string, path, this.char());
    } else if (s.format !== undefined) {
      const f = FORMATS[s.format as string];
      if (!f) this.unsupported(path, `format ${JSON.stringify(s.format)}`);
      content = this.helper(`format-${s.format as string}`, f as () => Expr);
    }
    if (!content)
      return min === undefined && max === undefined ? this.string() : quoted(rep(this.char(), min ?? 0, max));
    if (min === undefined && max === undefined) return quoted(content);
    return quoted(this.withLength(content, min ?? 0, max, path));
  }

  /**
   * A pattern or format held to a length: exact when the pattern is one repeated character
   * (`^[a-z]+$` with maxLength 8 is `[a-z]{1,8}`) or when its lengths already lie within the
   * bounds (a date is 10 long); refused otherwise (a grammar cannot intersect the two).
   */
  private withLength(e: Expr, min: number, max: number | undefined, path: string): Expr {
    const oneChar = (x: Expr): boolean =>
      x.k === 'cls' ||
      (x.k === 'ref' && x.n === 'char') ||
      (x.k === 'alt' && x.xs.every(oneChar)) ||
      (x.k === 'lit' && this.lengths(x)[0] === 1 && this.lengths(x)[1] === 1);
    if (e.k === 'rep' && oneChar(e.x)) {
      const lo = Math.max(e.min, min);
      const hi = e.max === undefined ? max : max === undefined ? e.max : Math.min(e.max, max);
      if (hi !== undefined && lo > hi)
        this.unsupported(path, 'no string of the pattern has a length within the bounds');
      return rep(e.x, lo, hi);
    }
    const [lo, hi] = this.lengths(e);
    if (lo >= min && (max === undefined || (hi !== undefined && hi <= max))) return e;
    return this.unsupported(path, 'a pattern or format together with a length bound it does not imply');
  }

  /** The fewest and most characters a string content expression writes (undefined: no most). */
  private lengths(e: Expr): [number, number | undefined] {
    switch (e.k) {
      case 'lit': {
        let n = e.s.length;
        try {
          n = [...(JSON.parse(`"${e.s}"`) as string)].length;
        } catch {}
        return [n, n];
      }
      case 'cls':
        return [1, 1];
      case 'ref':
        return e.n === 'char' ? [1, 1] : this.lengths(this.rules.get(e.n) as Expr);
      case 'seq':
        return e.xs
          .map((x) => this.lengths(x))
          .reduce<[number, number | undefined]>(
            ([a, b], [c, d]) => [a + c, b === undefined || d === undefined ? undefined : b + d],
            [0, 0],
          );
      case 'alt': {
        const all = e.xs.map((x) => this.lengths(x));
        const most = all.map(([, b]) => b);
        return [
          Math.min(...all.map(([a]) => a)),
          most.includes(undefined) ? undefined : Math.max(...(most as number[])),
        ];
      }
      case 'rep': {
        const [a, b] = this.lengths(e.x);
        return [a * e.min, e.max === undefined || b === undefined ? (b === 0 ? 0 : undefined) : b * e.max];
      }
    }
  }

  private count(s: Record<string, unknown>, k: string, path: string): number | undefined {
    const v = s[k];
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < 0) this.invalid(path, `${k} must be a non-negative integer`);
    return v as number;
  }

  /** `n` elements for n from min to max, separated by commas. */
  private list(first: Expr[], item: Expr | undefined, min: number, max: number | undefined): Expr {
    const ws = this.ws();
    const comma = seq(ws, lit(','), ws);
    const parts: Expr[] = [];
    first.forEach((x, j) => {
      parts.push(j === 0 ? x : seq(comma, x));
    });
    if (item && (max === undefined || max > 0)) {
      if (first.length > 0) parts.push(rep(seq(comma, item), min, max));
      else if (min > 0) parts.push(item, rep(seq(comma, item), min - 1, max === undefined ? undefined : max - 1));
      else parts.push(opt(seq(item, rep(seq(comma, item), 0, max === undefined ? undefined : max - 1))));
    }
    return parts.length === 0 ? EMPTY : seq(...parts);
  }

  private array(s: Record<string, unknown>, path: string): Expr {
    if (s.uniqueItems === true) this.unsupported(path, '"uniqueItems"');
    const min = this.count(s, 'minItems', path) ?? 0;
    const max = this.count(s, 'maxItems', path);
    let prefix: unknown[] = [];
    let rest: unknown = true;
    if (Array.isArray(s.items)) {
      prefix = s.items;
      rest = s.additionalItems ?? true;
    } else {
      if (s.prefixItems !== undefined) {
        if (!Array.isArray(s.prefixItems)) this.invalid(path, 'prefixItems must be an array');
        prefix = s.prefixItems;
      }
      rest = s.items ?? true;
    }
    // Prefix items are all written (up to maxItems); more follow from `items`.
    const written = max === undefined ? prefix.length : Math.min(prefix.length, max);
    const first = prefix.slice(0, written).map((sub, j) => this.schema(sub, `${path}.prefixItems[${j}]`));
    const more = rest === false ? undefined : this.schema(rest, `${path}.items`);
    const moreMin = Math.max(0, min - written);
    const moreMax = max === undefined ? undefined : max - written;
    if (!more && moreMin > 0) this.unsupported(path, 'minItems beyond the items allowed');
    const ws = this.ws();
    return seq(lit('['), ws, this.list(first, more, moreMin, moreMax), ws, lit(']'));
  }

  private object(s: Record<string, unknown>, path: string): Expr {
    if (
      s.patternProperties !== undefined &&
      !(isObj(s.patternProperties) && Object.keys(s.patternProperties).length === 0)
    ) {
      this.unsupported(path, '"patternProperties"');
    }
    if (s.properties !== undefined && !isObj(s.properties)) this.invalid(path, 'properties must be an object');
    const props = (s.properties ?? {}) as Record<string, unknown>;
    if (s.required !== undefined && (!Array.isArray(s.required) || !s.required.every((k) => typeof k === 'string'))) {
      this.invalid(path, 'required must be an array of names');
    }
    const required = new Set((s.required as string[] | undefined) ?? []);
    const extra = s.additionalProperties;
    const minP = this.count(s, 'minProperties', path);
    const maxP = this.count(s, 'maxProperties', path);
    const ws = this.ws();
    let keys = [...new Set([...Object.keys(props), ...required])].sort();
    if (keys.length > 0) {
      const nameOk = (k: string) =>
        s.propertyNames === undefined || !schemaViolation(k, s.propertyNames, this.root, path);
      for (const k of required) if (!nameOk(k)) this.unsupported(path, `required "${k}" breaks propertyNames`);
      keys = keys.filter(nameOk);
      const must = keys.filter((k) => required.has(k));
      let may = keys.filter((k) => !required.has(k));
      if (maxP !== undefined && must.length + may.length > maxP) may = [];
      if (maxP !== undefined && must.length > maxP)
        this.unsupported(path, 'more required properties than maxProperties');
      if (minP !== undefined && must.length < minP)
        this.unsupported(path, 'minProperties above the required properties');
      const member = (k: string) => {
        const sub = Object.hasOwn(props, k) ? props[k] : (extra ?? true);
        if (sub === false) this.unsupported(path, `required "${k}" is not allowed by additionalProperties`);
        return seq(lit(JSON.stringify(k)), ws, lit(':'), ws, this.schema(sub, `${path}.properties.${k}`));
      };
      // Required properties first, then each optional one or not, every group in sorted order.
      const comma = seq(ws, lit(','), ws);
      const optional = may.map(member);
      const tail = (from: number): Expr[] => optional.slice(from).map((m) => opt(seq(comma, m)));
      let inner: Expr;
      if (must.length > 0) inner = seq(this.list(must.map(member), undefined, 0, 0), ...tail(0));
      else if (optional.length === 0) inner = EMPTY;
      else inner = opt(alt(optional.map((m, j) => seq(m, ...tail(j + 1)))));
      return seq(lit('{'), ws, inner, ws, lit('}'));
    }
    // No listed property: a map, its names by propertyNames, its values by additionalProperties.
    if (extra === false) {
      if ((minP ?? 0) > 0) this.unsupported(path, 'minProperties with no property allowed');
      return lit('{}');
    }
    // Repeated names collapse into one property: at most one can be promised.
    if ((minP ?? 0) > 1) this.unsupported(path, 'minProperties above 1 on a map');
    const name =
      s.propertyNames === undefined ? this.string() : this.propertyName(s.propertyNames, `${path}.propertyNames`);
    const member = seq(name, ws, lit(':'), ws, this.schema(extra ?? true, `${path}.additionalProperties`));
    return seq(lit('{'), ws, this.list([], member, minP ?? 0, maxP), ws, lit('}'));
  }

  /** A property name: the string values of a schema. */
  private propertyName(s: unknown, path: string): Expr {
    if (s === true) return this.string();
    if (!isObj(s)) return this.invalid(path, 'propertyNames must be a schema');
    if (s.$ref !== undefined) return this.propertyName(resolveRef(this.root, s.$ref, path), path);
    for (const k of Object.keys(s)) {
      if (k.startsWith('x-') || ANNOTATIONS.has(k)) continue;
      if (!['type', 'enum', 'const', 'minLength', 'maxLength', 'pattern', 'format'].includes(k)) {
        this.unsupported(path, `"${k}" in propertyNames`);
      }
    }
    if (s.type !== undefined && s.type !== 'string')
      this.unsupported(path, 'propertyNames of another type than string');
    if (s.enum !== undefined || 'const' in s) {
      const values = ('const' in s ? [s.const] : (s.enum as unknown[])).filter(
        (v): v is string => typeof v === 'string' && !schemaViolation(v, s, this.root, path),
      );
      if (values.length === 0) this.unsupported(path, 'no name satisfies propertyNames');
      return alt(values.map((v) => lit(JSON.stringify(v))));
    }
    return this.stringOf(s, path);
  }

  /** oneOf is exact only when no value can match two of its schemas. */
  private checkDisjoint(list: unknown[], path: string): void {
    const deref = (x: unknown): unknown => {
      let v = x;
      for (let n = 0; isObj(v) && v.$ref !== undefined && n < 64; n++) v = resolveRef(this.root, v.$ref, path);
      return v;
    };
    const types = (x: unknown): Set<string> => {
      const v = deref(x);
      if (!isObj(v)) return new Set(TYPES);
      const vals = 'const' in v ? [v.const] : Array.isArray(v.enum) ? v.enum : undefined;
      if (vals) return new Set(vals.map((e) => (typeOf(e) === 'integer' ? 'number' : typeOf(e))));
      if (v.type === undefined) return new Set(TYPES);
      const t = (Array.isArray(v.type) ? v.type : [v.type]) as string[];
      return new Set(t.map((e) => (e === 'integer' ? 'number' : e)));
    };
    const literals = (x: unknown): string[] | undefined => {
      const v = deref(x);
      if (!isObj(v)) return undefined;
      if ('const' in v) return [canonical(v.const)];
      return Array.isArray(v.enum) ? v.enum.map(canonical) : undefined;
    };
    const apart = (a: unknown, b: unknown): boolean => {
      const ta = types(a);
      if (![...types(b)].some((t) => ta.has(t))) return true;
      const la = literals(a);
      const lb = literals(b);
      if (la && lb) return !la.some((v) => lb.includes(v));
      // Objects told apart by a required property whose values differ (a tagged union).
      const oa = deref(a);
      const ob = deref(b);
      const only = (t: Set<string>) => t.size === 1 && t.has('object');
      if (!isObj(oa) || !isObj(ob) || !only(ta) || !only(types(b))) return false;
      const pa = (oa.properties ?? {}) as Record<string, unknown>;
      const pb = (ob.properties ?? {}) as Record<string, unknown>;
      const ra = (oa.required as string[] | undefined) ?? [];
      const rb = (ob.required as string[] | undefined) ?? [];
      return ra.some((k) => {
        if (!rb.includes(k)) return false;
        const x = literals(pa[k]);
        const y = literals(pb[k]);
        return !!x && !!y && !x.some((v) => y.includes(v));
      });
    };
    for (let a = 0; a < list.length; a++) {
      for (let b = a + 1; b < list.length; b++) {
        if (!apart(list[a], list[b])) {
          this.unsupported(path, `oneOf[${a}] and oneOf[${b}] may both match a value (use anyOf)`);
        }
      }
    }
  }

  /** Every rule must be able to finish; a dead end would leave the model stuck mid-answer. */
  checkFinite(): void {
    const done = new Set<string>();
    const finite = (e: Expr): boolean => {
      switch (e.k) {
        case 'lit':
        case 'cls':
          return true;
        case 'ref':
          return done.has(e.n);
        case 'seq':
          return e.xs.every(finite);
        case 'alt':
          return e.xs.some(finite);
        case 'rep':
          return e.min === 0 || finite(e.x);
      }
    };
    let changed = true;
    while (changed) {
      changed = false;
      for (const [name, e] of this.rules) {
        if (!done.has(name) && finite(e)) {
          done.add(name);
          changed = true;
        }
      }
    }
    for (const name of this.rules.keys()) {
      if (!done.has(name)) this.unsupported(this.paths.get(name) ?? name, 'admits no finite value');
    }
    // Dead alternatives (a class emptied by JSON escaping, an unreachable branch) are refused too.
    const dead = (e: Expr): boolean => {
      switch (e.k) {
        case 'lit':
        case 'cls':
        case 'ref':
          return false;
        case 'seq':
          return e.xs.some(dead);
        case 'alt':
          return e.xs.length === 0 || e.xs.some(dead);
        case 'rep':
          return (e.max ?? 1) > 0 && dead(e.x);
      }
    };
    for (const [name, e] of this.rules) {
      if (dead(e)) this.unsupported(this.paths.get(name) ?? name, 'holds a part that admits no value');
    }
  }

  gbnf(rootExpr: Expr): string {
    const lines = [`root ::= ${render(rootExpr)}`];
    for (const [name, e] of this.rules) lines.push(`${name} ::= ${render(e)}`);
    return `${lines.join('\n')}\n`;
  }
}

/**
 * Compiles a JSON Schema into a GBNF grammar whose every sentence is a JSON text the schema
 * accepts. Throws `JSON_SCHEMA_INVALID` (not a schema) or `JSON_SCHEMA_UNSUPPORTED` (a schema
 * that cannot be enforced exactly).
 */
export function compileJsonSchema(schema: unknown): string {
  const { root, compiler } = compile(schema);
  return compiler.gbnf(root);
}

function compile(schema: unknown): { root: Expr; compiler: Compiler } {
  if (typeof schema !== 'boolean' && !isObj(schema))
    fail('JSON_SCHEMA_INVALID', 'schema: a schema must be an object', PARAM);
  const compiler = new Compiler(schema as Schema);
  const root = compiler.schema(schema, 'schema');
  compiler.checkFinite();
  return { root, compiler };
}

/** The grammar of a schema before rendering: its root expression and named rules (for tests). */
export function jsonSchemaRules(schema: unknown): { root: Expr; rules: ReadonlyMap<string, Expr> } {
  const { root, compiler } = compile(schema);
  return { root, rules: compiler.rules };
}

/** The grammar of `response_format: { type: "json_object" }`: any JSON object, numbers finite. */
export function jsonObjectGrammar(): string {
  const c = new Compiler(true);
  c.any();
  return c.gbnf(ref('object'));
}

/**
 * The finished answer, checked: JSON that satisfies the schema (for `json_object`, any object).
 * A violation means the grammar let through what it should not: `INFERENCE_FAILED`, never an
 * answer that claims a schema it breaks.
 */
export function checkStructuredOutput(text: string, schema: object | undefined): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new VerityError('INFERENCE_FAILED', 'the structured answer is not JSON', { details: { text }, cause: e });
  }
  const violation = !finiteEverywhere(value)
    ? '$: holds a number that is not finite'
    : schemaViolation(value, schema ?? { type: 'object' });
  if (violation) fail('INFERENCE_FAILED', `the structured answer breaks its schema: ${violation}`, { text });
}
