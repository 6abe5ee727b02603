import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64, toHex } from './bytes.js';
import { isVerityError } from './errors.js';

describe('base64 (RFC 4648 §10 test vectors)', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'Zg=='],
    ['fo', 'Zm8='],
    ['foo', 'Zm9v'],
    ['foob', 'Zm9vYg=='],
    ['fooba', 'Zm9vYmE='],
    ['foobar', 'Zm9vYmFy'],
  ];
  for (const [plain, encoded] of vectors) {
    it(`"${plain}" ↔ "${encoded}"`, () => {
      const bytes = new TextEncoder().encode(plain);
      expect(toBase64(bytes)).toBe(encoded);
      expect(fromBase64(encoded)).toEqual(bytes);
    });
  }
  it('rejects non-canonical and malformed text with ENCODING_INVALID', () => {
    for (const bad of ['Zh==', 'Zm9=', 'Zg', 'Z===', 'Zm9v\n', 'Zm 9', 'Zg=a', '====', 'Zm9vY€==']) {
      expect(() => fromBase64(bad)).toThrowError(expect.objectContaining({ code: 'ENCODING_INVALID' }));
    }
  });
  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
        expect(fromBase64(toBase64(b))).toEqual(b);
      }),
    );
  });
  it('never throws anything but a VerityError on garbage', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (s) => {
        try {
          fromBase64(s);
        } catch (e) {
          expect(isVerityError(e, 'ENCODING_INVALID')).toBe(true);
        }
      }),
    );
  });
});

describe('hex', () => {
  it('round-trips and rejects garbage', () => {
    expect(toHex(new Uint8Array([0, 1, 0xab, 0xff]))).toBe('0001abff');
    expect(fromHex('0x0001ABff')).toEqual(new Uint8Array([0, 1, 0xab, 0xff]));
    expect(() => fromHex('abc')).toThrowError(expect.objectContaining({ code: 'ENCODING_INVALID' }));
    expect(() => fromHex('zz')).toThrowError(expect.objectContaining({ code: 'ENCODING_INVALID' }));
  });
});
