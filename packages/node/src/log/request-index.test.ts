import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RequestIdIndex, requestIdHash } from './request-index.js';

describe('RequestIdIndex', () => {
  it('finds every inserted id across growth, and nothing else', () => {
    const index = new RequestIdIndex(4);
    const ids = Array.from({ length: 20_000 }, (_, i) => `req-${i}`);
    for (const [i, id] of ids.entries()) index.insert(id, i);
    expect(index.size).toBe(ids.length);
    for (const [i, id] of ids.entries()) expect(index.find(id, (j) => ids[j] === id)).toBe(i);
    expect(index.find('req-20000', (j) => ids[j] === 'req-20000')).toBe(-1);
    // 8 bytes per slot, load ≤ 0.7
    expect(index.byteLength / ids.length).toBeLessThanOrEqual(8 / 0.35);
  });

  it('resolves hash collisions through the confirm callback', () => {
    const index = new RequestIdIndex();
    // Two ids stored under one hash: the table returns the one `confirm` accepts.
    const id = 'collide';
    index.insert(id, 1);
    index.insert(id, 2);
    const stored = new Map([
      [1, 'other'],
      [2, id],
    ]);
    expect(index.find(id, (j) => stored.get(j) === id)).toBe(2);
    expect(index.find(id, () => false)).toBe(-1);
  });

  it('hashes to non-zero 32-bit values', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 64 }), (s) => {
        const h = requestIdHash(s);
        expect(Number.isInteger(h) && h > 0 && h < 2 ** 32).toBe(true);
      }),
    );
  });

  it('agrees with a Map on random workloads', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/), { maxLength: 300 }), (ids) => {
        const index = new RequestIdIndex(1);
        for (const [i, id] of ids.entries()) index.insert(id, i);
        for (const [i, id] of ids.entries()) expect(index.find(id, (j) => ids[j] === id)).toBe(i);
      }),
    );
  });
});
