/**
 * Model references (`iris`, `iris@1.2.0`, `bagaaiera…`) and Semantic Versioning precedence.
 *
 * A reference is untrusted text from a URL or a command line. It is parsed strictly here, once,
 * so that nothing downstream ever sees a name that could be a path (`..`, `/`, `\`, NUL) or a
 * second spelling of the same model.
 */
import { isCid } from './cid.js';
import { fail } from './errors.js';

/** A parsed model reference: a manifest CID, or a name with an optional exact version. */
export type ModelRef = { cid: string } | { name: string; version?: string };

// The manifest name rule (docs/protocol.md §4.1): lower case, starts with a letter or digit.
/** Text shaped like a base32 CID: only such text is worth parsing as one (a failed parse throws). */
const CID_SHAPE = /^b[a-z2-7]+$/;
const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,63}$/;
// Semantic Versioning 2.0.0, the regular expression suggested by semver.org (FAQ), as manifests
// use it (docs/protocol.md §4.1), at most 64 characters.
const SEMVER_RE =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$/;
const MAX_VERSION = 64;
/** name (64) + `@` + version (64); a CID is at most 61 characters. */
const MAX_REF = 129;

/**
 * Whether `name` is a model name the store accepts: the manifest rule (`[a-z0-9][a-z0-9._-]{0,63}`)
 * and two more, so that every reference has one meaning: no `..` anywhere (never a path, even
 * after someone joins it to one), and not a text that parses as a CID (a bare reference that is
 * a CID is always read as the CID).
 *
 * @example
 * ```ts
 * isModelName('iris'); // true
 * isModelName('../iris'); // false
 * ```
 */
export function isModelName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    NAME_RE.test(name) &&
    !name.includes('..') &&
    !(name.length >= 50 && CID_SHAPE.test(name) && isCid(name))
  );
}

/**
 * Whether `version` is a Semantic Versioning 2.0.0 version of at most 64 characters.
 *
 * @example
 * ```ts
 * isModelVersion('2.0.0-rc.1+build.5'); // true
 * isModelVersion('1.2'); // false
 * ```
 */
export function isModelVersion(version: unknown): version is string {
  return typeof version === 'string' && version.length <= MAX_VERSION && SEMVER_RE.test(version);
}

/**
 * Parses a model reference: a manifest CID (any text {@link isCid} accepts), `name@version`
 * (exact version) or `name` (the latest version). Everything else, including any text with `/`,
 * `\`, `..`, NUL, white space, upper case or a partial version such as `iris@1.2`, throws
 * `MODEL_NAME_INVALID`.
 *
 * @example
 * ```ts
 * parseModelRef('iris@1.2.0'); // { name: 'iris', version: '1.2.0' }
 * parseModelRef('iris'); // { name: 'iris' }
 * ```
 */
export function parseModelRef(ref: string): ModelRef {
  if (typeof ref !== 'string' || ref.length === 0 || ref.length > MAX_REF) {
    return fail('MODEL_NAME_INVALID', 'a model reference is a CID, name or name@version');
  }
  // (as unknown: isCid is a type guard, and its false branch would narrow `ref` to never)
  // Only text shaped like a base32 CID is parsed as one: most refs are names, and a failed parse
  // (an exception) on every request would cost more than the rest of the lookup.
  if (ref.length >= 50 && CID_SHAPE.test(ref) && isCid(ref as unknown)) return { cid: ref };
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  if (!isModelName(name)) {
    return fail('MODEL_NAME_INVALID', 'invalid model name: expected [a-z0-9][a-z0-9._-]{0,63} without ".."', {
      ref,
    });
  }
  if (at < 0) return { name };
  const version = ref.slice(at + 1);
  if (!isModelVersion(version)) {
    return fail('MODEL_NAME_INVALID', 'invalid model version: expected a semantic version such as 1.2.0', { ref });
  }
  return { name, version };
}

/** Compares two decimal digit strings without leading zeros (they may exceed 2^53). */
function compareNumeric(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

const NUMERIC_RE = /^\d+$/;

/**
 * Semantic Versioning 2.0.0 precedence (semver.org §11): major, minor and patch compared as
 * numbers; a pre-release is lower than its release; pre-release identifiers compared one by one
 * (numeric ones as numbers and below alphanumeric ones, which compare in ASCII order; more
 * identifiers is higher when all before are equal). Build metadata does not count, so `1.0.0+a`
 * and `1.0.0+b` compare equal. Both arguments must be valid versions ({@link isModelVersion}).
 *
 * @example
 * ```ts
 * compareVersions('1.0.0-rc.1', '1.0.0'); // -1
 * ['1.10.0', '1.2.0'].sort(compareVersions); // ['1.2.0', '1.10.0']
 * ```
 */
export function compareVersions(a: string, b: string): number {
  const [coreA = '', preA] = (a.split('+', 1)[0] as string).split(/-(.*)/s);
  const [coreB = '', preB] = (b.split('+', 1)[0] as string).split(/-(.*)/s);
  const partsA = coreA.split('.');
  const partsB = coreB.split('.');
  for (let i = 0; i < 3; i++) {
    const c = compareNumeric(partsA[i] ?? '0', partsB[i] ?? '0');
    if (c !== 0) return c;
  }
  if (preA === undefined || preB === undefined) {
    if (preA === preB) return 0;
    return preA === undefined ? 1 : -1; // §11.3: a pre-release has lower precedence
  }
  const idsA = preA.split('.');
  const idsB = preB.split('.');
  for (let i = 0; i < Math.min(idsA.length, idsB.length); i++) {
    const x = idsA[i] as string;
    const y = idsB[i] as string;
    const xNum = NUMERIC_RE.test(x);
    const yNum = NUMERIC_RE.test(y);
    let c: number;
    if (xNum && yNum) c = compareNumeric(x, y);
    else if (xNum !== yNum) c = xNum ? -1 : 1;
    else c = x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  return Math.sign(idsA.length - idsB.length);
}
