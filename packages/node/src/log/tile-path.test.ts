import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codeOf } from './test-support/log-fixtures.js';
import { entriesPath, parseTilePath, tilePath } from './tile-path.js';

describe('tile paths (c2sp.org/tlog-tiles)', () => {
  it('encodes the spec examples', () => {
    // "index 1234067 will be encoded as x001/x234/067"
    expect(tilePath(0, 1234067)).toBe('tile/0/x001/x234/067');
    expect(tilePath(0, 1234067, 256)).toBe('tile/0/x001/x234/067');
    expect(tilePath(2, 1234067, 8)).toBe('tile/2/x001/x234/067.p/8');
    expect(tilePath(0, 0)).toBe('tile/0/000');
    expect(tilePath(1, 999)).toBe('tile/1/999');
    expect(tilePath(1, 1000)).toBe('tile/1/x001/000');
    expect(tilePath(63, 5, 1)).toBe('tile/63/005.p/1');
    expect(entriesPath(1234067, 255)).toBe('tile/entries/x001/x234/067.p/255');
    expect(entriesPath(42)).toBe('tile/entries/042');
    expect(tilePath(0, Number.MAX_SAFE_INTEGER)).toBe('tile/0/x009/x007/x199/x254/x740/991');
  });

  it('parses them back', () => {
    expect(parseTilePath('tile/0/x001/x234/067')).toEqual({ kind: 'hash', level: 0, index: 1234067 });
    expect(parseTilePath('tile/2/x001/x234/067.p/8')).toEqual({ kind: 'hash', level: 2, index: 1234067, width: 8 });
    expect(parseTilePath('tile/entries/000.p/5')).toEqual({ kind: 'entries', index: 0, width: 5 });
    expect(parseTilePath('tile/entries/x001/000')).toEqual({ kind: 'entries', index: 1000 });
  });

  it('rejects every non-canonical or malformed path with NOT_FOUND', async () => {
    const bad = [
      'tile/0/1234067', // index not in 3-digit groups
      'tile/0/x001/x234/67', // last group not 3 digits
      'tile/0/001/234/067', // inner groups without x
      'tile/0/x001/x234/x067', // last group with x
      'tile/0/x000/001', // leading zero group: index 1 is 'tile/0/001'
      'tile/00/000', // level with a leading zero
      'tile/64/000', // level above 63
      'tile/-1/000',
      'tile/0/000.p/256', // a full tile has no .p suffix
      'tile/0/000.p/0',
      'tile/0/000.p/007', // width with leading zeros
      'tile/0/000.p/', // empty width
      'tile/0/000.p',
      'tile/0/000/', // trailing slash
      '/tile/0/000', // leading slash
      'tile/8/0/000', // Go sumdb's tile/H/L/N form
      'tile/data/000',
      'tile/entries/000.p/256',
      'tile/entries',
      'tile/0/x010/x000/x000/x000/x000/x000/000', // beyond 2^53
      'tile/0/\u0660\u0660\u0660', // non-ASCII digits
      '',
      'checkpoint',
    ];
    for (const p of bad) expect(await codeOf(() => parseTilePath(p)), p).toBe('NOT_FOUND');
  });

  it('round-trips every level, index and width', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 63 }),
        fc.oneof(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
        fc.option(fc.integer({ min: 1, max: 255 }), { nil: undefined }),
        (level, index, width) => {
          const w = width === undefined ? {} : { width };
          expect(parseTilePath(tilePath(level, index, width))).toEqual({ kind: 'hash', level, index, ...w });
          expect(parseTilePath(entriesPath(index, width))).toEqual({ kind: 'entries', index, ...w });
        },
      ),
    );
  });

  it('refuses impossible arguments with INVALID_ARGUMENT', async () => {
    expect(await codeOf(() => tilePath(64, 0))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => tilePath(0, -1))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => tilePath(0, 1.5))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => tilePath(0, 0, 0))).toBe('INVALID_ARGUMENT');
    expect(await codeOf(() => entriesPath(0, 257))).toBe('INVALID_ARGUMENT');
  });
});
