/**
 * The binary readers and writer: `.wtns` round trip, and garbage refused with a typed error.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FIELD_PRIME } from './field.js';
import { encodeWtns, parseR1cs, parseSym, parseWtns, r1csInfo } from './r1cs.js';

describe('.wtns', () => {
  it('round-trips any witness (values reduced mod p)', () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: -FIELD_PRIME, max: 2n * FIELD_PRIME }), { maxLength: 20 }), (values) => {
        const witness = [1n, ...values];
        expect(parseWtns(encodeWtns(witness))).toEqual(
          witness.map((v) => ((v % FIELD_PRIME) + FIELD_PRIME) % FIELD_PRIME),
        );
      }),
    );
  });
});

describe('garbage is refused with ENCODING_INVALID', () => {
  const garbage = [new Uint8Array(0), new TextEncoder().encode('r1cs'), new Uint8Array(64).fill(7)];
  it.each(garbage.map((g, i) => [i, g] as const))('input %i', (_, bytes) => {
    for (const parse of [parseR1cs, r1csInfo, parseWtns]) {
      expect(() => parse(bytes)).toThrow(expect.objectContaining({ code: 'ENCODING_INVALID' }));
    }
  });

  it('a truncated section', () => {
    const bytes = encodeWtns([1n, 2n, 3n]);
    expect(() => parseWtns(bytes.subarray(0, bytes.length - 5))).toThrow(
      expect.objectContaining({ code: 'ENCODING_INVALID' }),
    );
  });
});

describe('.sym', () => {
  it('maps kept signals to witness indexes and leaves eliminated ones out', () => {
    const sym = parseSym('1,1,3,main.out\n2,-1,2,main.g.in\n3,2,0,main.g.q.bits[0]\n');
    expect([...sym]).toEqual([
      ['main.out', 1],
      ['main.g.q.bits[0]', 2],
    ]);
  });
});
