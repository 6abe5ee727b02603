import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isVerityError } from './errors.js';
import { compareVersions, isModelName, isModelVersion, parseModelRef } from './model-ref.js';
import { expectCode } from './test-support/errors.js';

const MANIFEST_CID = 'bagaaiera7rvofm7cyyicw4bosy4wnbvsztqzsjkaz5eewypgxtz5souahcnq'; // docs/protocol.md §4.4

describe('parseModelRef', () => {
  it('reads CIDs, name@version and bare names', () => {
    expect(parseModelRef(MANIFEST_CID)).toEqual({ cid: MANIFEST_CID });
    expect(parseModelRef('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')).toEqual({
      cid: 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e',
    });
    expect(parseModelRef('iris')).toEqual({ name: 'iris' });
    expect(parseModelRef('iris@1.2.0')).toEqual({ name: 'iris', version: '1.2.0' });
    expect(parseModelRef('tiny-llama_v2.q4@2.0.0-rc.1+build.5')).toEqual({
      name: 'tiny-llama_v2.q4',
      version: '2.0.0-rc.1+build.5',
    });
    expect(parseModelRef('a'.repeat(64))).toEqual({ name: 'a'.repeat(64) });
  });

  // Each is refused with MODEL_NAME_INVALID; the comment says what is wrong.
  const invalid: [string, string][] = [
    ['', 'empty'],
    ['../etc/passwd', 'path traversal'],
    ['..', 'parent directory'],
    ['.', 'current directory'],
    ['iris/../../x', 'slash'],
    ['iris\\x', 'backslash'],
    ['iris\0', 'NUL'],
    ['a..b', 'dot-dot inside a name'],
    ['Iris', 'upper case'],
    [' iris', 'leading space'],
    ['iris ', 'trailing space'],
    ['iris\n', 'line feed'],
    ['iris%2f', 'percent encoding'],
    ['-iris', 'leading hyphen'],
    ['_iris', 'leading underscore'],
    ['a'.repeat(65), 'name too long'],
    ['iris@', 'empty version'],
    ['@1.0.0', 'empty name'],
    ['iris@1.2', 'partial version'],
    ['iris@v1.2.0', 'v prefix'],
    ['iris@01.2.0', 'leading zero'],
    ['iris@1.2.0@1.2.0', 'two @'],
    ['iris@1.2.0/..', 'slash in the version'],
    [`iris@1.0.0-${'a'.repeat(60)}`, 'version over 64 characters'],
    ['QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o', 'CIDv0 (upper case: not a name either)'],
    ['ｉｒｉｓ', 'full-width letters'],
  ];
  it.each(invalid)('refuses %j (%s)', (ref) => {
    expectCode(() => parseModelRef(ref), 'MODEL_NAME_INVALID');
  });

  it('refuses non-strings with MODEL_NAME_INVALID', () => {
    for (const v of [undefined, null, 1, {}, ['iris']])
      expectCode(() => parseModelRef(v as never), 'MODEL_NAME_INVALID');
  });

  it('never throws anything but MODEL_NAME_INVALID, and never lets a path through', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constantFrom('/', '\\', '..', '\0')), (s) => {
        try {
          const r = parseModelRef(s);
          const text = 'cid' in r ? r.cid : r.name + (r.version ?? '');
          expect(/[/\\\0]/.test(text) || text.includes('..')).toBe(false);
        } catch (e) {
          expect(isVerityError(e, 'MODEL_NAME_INVALID')).toBe(true);
        }
      }),
    );
  });

  it('round-trips name@version', () => {
    const name = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,20}$/);
    const version = fc
      .tuple(fc.nat(1000), fc.nat(1000), fc.nat(1000), fc.option(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/)))
      .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre === null ? '' : `-${pre}`}`);
    fc.assert(
      fc.property(name, version, (n, v) => {
        expect(parseModelRef(`${n}@${v}`)).toEqual({ name: n, version: v });
      }),
    );
  });

  it('a name that is CID text is read as the CID, so the store refuses it as a name', () => {
    expect(isModelName(MANIFEST_CID)).toBe(false);
    expect(isModelName('iris')).toBe(true);
    expect(isModelVersion('1.2.0')).toBe(true);
    expect(isModelVersion('1.2')).toBe(false);
  });
});

describe('compareVersions (Semantic Versioning 2.0.0 §11)', () => {
  it('orders the examples of semver.org §11 as the spec does', () => {
    // §11.2 and §11.4, in increasing precedence.
    const ordered = [
      '1.0.0-alpha',
      '1.0.0-alpha.1',
      '1.0.0-alpha.beta',
      '1.0.0-beta',
      '1.0.0-beta.2',
      '1.0.0-beta.11',
      '1.0.0-rc.1',
      '1.0.0',
      '2.0.0',
      '2.1.0',
      '2.1.1',
    ];
    for (let i = 0; i < ordered.length; i++) {
      for (let j = 0; j < ordered.length; j++) {
        expect(compareVersions(ordered[i] as string, ordered[j] as string)).toBe(Math.sign(i - j));
      }
    }
    expect([...ordered].reverse().sort(compareVersions)).toEqual(ordered);
  });

  it('compares numbers as numbers, even beyond 2^53, and ignores build metadata', () => {
    expect(compareVersions('1.10.0', '1.9.0')).toBe(1);
    expect(compareVersions('1.0.0-2', '1.0.0-10')).toBe(-1);
    expect(compareVersions('1.0.0-10', '1.0.0-a')).toBe(-1); // numeric identifiers are lower
    expect(compareVersions('99999999999999999999.0.0', '99999999999999999998.0.0')).toBe(1);
    expect(compareVersions('1.0.0+build.1', '1.0.0+build.2')).toBe(0);
    expect(compareVersions('1.0.0-rc.1+x', '1.0.0-rc.1')).toBe(0);
    expect(compareVersions('1.0.0-x-y', '1.0.0-x')).toBe(1);
  });

  it('is a total preorder: antisymmetric and transitive', () => {
    const id = fc.oneof(fc.nat(20).map(String), fc.constantFrom('alpha', 'beta', 'rc', 'a-b', '0a'));
    const version = fc
      .tuple(fc.nat(3), fc.nat(3), fc.nat(3), fc.array(id, { maxLength: 3 }))
      .map(([a, b, c, pre]) => `${a}.${b}.${c}${pre.length === 0 ? '' : `-${pre.join('.')}`}`);
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        expect(isModelVersion(a)).toBe(true);
        expect(compareVersions(a, b)).toBe(-compareVersions(b, a) || 0);
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0)
          expect(compareVersions(a, c)).toBeLessThanOrEqual(0);
      }),
    );
  });
});
