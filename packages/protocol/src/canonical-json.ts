/**
 * RFC 8785 JSON Canonicalization Scheme (JCS): one exact byte string for every JSON value, so that
 * a value can be hashed and signed (manifests, docs/design.md §2.1) and every implementation, in any
 * language, gets the same digest.
 *
 * The input is a JavaScript value, not JSON text: callers parse first (`JSON.parse`), then
 * canonicalize. Only the I-JSON subset (RFC 7493) is accepted, as RFC 8785 §3.1 requires.
 */
import { utf8 } from './bytes.js';
import { fail } from './errors.js';

/** A JSON value as RFC 8785 sees it: the I-JSON data model. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Nesting deeper than this is refused. It keeps recursion far from the engine's stack limit in
 * every browser, so hostile input gets a typed error instead of a `RangeError`.
 */
export const CANONICAL_JSON_MAX_DEPTH = 512;

/**
 * The RFC 8785 canonical form of `value`, as a string.
 *
 * Rules (RFC 8785 §3.2): no whitespace; object members sorted by the UTF-16 code units of their
 * names (§3.2.3); strings escaped as ECMAScript `JSON.stringify` does (§3.2.2.2); numbers written
 * as ECMAScript `Number.prototype.toString` writes them (§3.2.2.3), so `-0` becomes `0`.
 *
 * Throws `CANONICAL_JSON_INVALID` (with `details.path`, a JSON Pointer) for anything outside
 * I-JSON: `NaN` and infinities (§3.2.2.3), strings or names with a lone surrogate (RFC 7493 §2.1),
 * `undefined`, functions, symbols, bigints, sparse arrays, objects that are not plain
 * (`Date`, `Map`, `Uint8Array`, class instances; `toJSON` is not consulted), objects with symbol
 * keys, cycles, and nesting deeper than {@link CANONICAL_JSON_MAX_DEPTH}.
 *
 * @example
 * ```ts
 * canonicalize({ b: [1e30, 4.5], a: 'é' }); // '{"a":"é","b":[1e+30,4.5]}'
 * ```
 */
export function canonicalize(value: unknown): string {
  return write(value, '', 0, new Set());
}

/**
 * The RFC 8785 canonical form of `value`, UTF-8 encoded (RFC 8785 §3.2.4): the bytes that get
 * hashed. Same rules and errors as {@link canonicalize}.
 *
 * @example
 * ```ts
 * canonicalJsonBytes({ a: 1 }); // Uint8Array of '{"a":1}'
 * ```
 */
export function canonicalJsonBytes(value: unknown): Uint8Array {
  return utf8(canonicalize(value));
}

function invalid(path: string, message: string): never {
  return fail('CANONICAL_JSON_INVALID', message, { path });
}

/** JSON Pointer (RFC 6901) escaping of one reference token, for error paths. */
function pointerToken(key: string): string {
  return key.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** True when `s` holds no lone surrogate, i.e. it is valid Unicode and so valid UTF-8 once encoded. */
function isWellFormed(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return false; // a low surrogate with no high surrogate before it
    const next = s.charCodeAt(i + 1); // NaN past the end
    if (!(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

function writeString(s: string, path: string): string {
  if (!isWellFormed(s)) invalid(path, 'string contains a lone surrogate (not I-JSON, RFC 7493 §2.1)');
  // For a well-formed string, ECMAScript JSON.stringify is exactly the escaping RFC 8785 §3.2.2.2
  // prescribes: \b \t \n \f \r \" \\ as two-character escapes, other controls as \u00XX (lower-case
  // hex), everything else (including U+007F and U+2028) as the character itself.
  return JSON.stringify(s);
}

function write(value: unknown, path: string, depth: number, ancestors: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return writeString(value, path);
    case 'number':
      // RFC 8785 §3.2.2.3: ECMAScript Number serialization; NaN and ±Infinity have no JSON form.
      if (!Number.isFinite(value)) invalid(path, `number ${value} has no JSON form (RFC 8785 §3.2.2.3)`);
      return String(value); // "-0" is never produced: String(-0) === "0"
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    default:
      return invalid(path, `a ${typeof value} is not a JSON value`);
  }
  if (value === null) return 'null';
  if (depth >= CANONICAL_JSON_MAX_DEPTH) invalid(path, `nesting deeper than ${CANONICAL_JSON_MAX_DEPTH}`);
  if (ancestors.has(value)) invalid(path, 'cycle: a value contains itself');
  ancestors.add(value);
  let out: string;
  if (Array.isArray(value)) {
    const parts: string[] = [];
    for (let i = 0; i < value.length; i++) {
      if (!(i in value)) invalid(`${path}/${i}`, 'sparse array (hole at this index)');
      parts.push(write(value[i], `${path}/${i}`, depth + 1, ancestors));
    }
    out = `[${parts.join(',')}]`;
  } else {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) invalid(path, 'not a plain object or array');
    if (Object.getOwnPropertySymbols(value).length > 0) invalid(path, 'object has symbol keys');
    const record = value as Record<string, unknown>;
    // RFC 8785 §3.2.3: sort by UTF-16 code units. The default sort compares exactly that
    // (ECMAScript IsLessThan on strings), independent of locale.
    const keys = Object.keys(record).sort();
    const parts: string[] = [];
    for (const key of keys) {
      const childPath = `${path}/${pointerToken(key)}`;
      parts.push(`${writeString(key, childPath)}:${write(record[key], childPath, depth + 1, ancestors)}`);
    }
    out = `{${parts.join(',')}}`;
  }
  // Only the current path counts as a cycle; the same object reached twice by different paths (a
  // DAG) is fine and is written twice, as JSON.stringify would.
  ancestors.delete(value);
  return out;
}
