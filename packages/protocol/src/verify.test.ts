import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isVerityError } from './errors.js';
import { bundleFromJson, parseBundle, parseReceipt } from './receipt.js';
import { buildReceiptFixtures } from './test-support/receipt-fixtures.js';
import { createVerifyCache, verifyBundle, verifyReceipt } from './verify.js';

const { trust, fixtures } = buildReceiptFixtures();
const valid = fixtures.find((f) => f.name === 'valid-receipt')?.bundle as { receipts: unknown[] };
const receipt = valid.receipts[0] as { checkpoint: string; leafIndex: number };

describe('verifyReceipt', () => {
  it('accepts the receipt and reports what it established', () => {
    const r = verifyReceipt(receipt, trust);
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.receipts[0]?.leafIndex).toBe(2);
      expect(r.receipts[0]?.checkpoint.size).toBe(5);
    }
  });
  it('checks the digests the caller holds', () => {
    const r = verifyReceipt(receipt, trust, { inputDigest: '00'.repeat(32) });
    expect(r.ok ? 'ok' : r.code).toBe('RECEIPT_INPUT_DIGEST_MISMATCH');
  });
  it('caches only verified checkpoints, keyed by key and text', () => {
    const cache = createVerifyCache(2);
    expect(verifyReceipt(receipt, trust, { cache }).ok).toBe(true);
    expect(cache.checkpoints.size).toBe(1);
    const forged = { ...receipt, checkpoint: receipt.checkpoint.replace('\n5\n', '\n6\n') };
    const r = verifyReceipt(forged, trust, { cache });
    expect(r.ok ? 'ok' : r.code).toBe('NOTE_SIGNATURE_INVALID');
    expect(cache.checkpoints.size).toBe(1);
    // A verified entry does not let another key's trust through.
    const other = verifyReceipt(
      receipt,
      { nodes: [{ ...(trust.nodes[0] as (typeof trust.nodes)[0]), logKey: trust.nodes[1]?.logKey as string }] },
      { cache },
    );
    expect(other.ok).toBe(false);
  });
});

describe('untrusted input', () => {
  it('verifyBundle never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.anything(), (v) => {
        const r = verifyBundle(v, trust);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(isVerityError(r.error)).toBe(true);
      }),
    );
  });
  it('mutating any JSON value of a valid bundle yields ok or a typed failure, never an exception', () => {
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, path: (string | number)[]) => {
      if (Array.isArray(v)) for (const [i, x] of v.entries()) walk(x, [...path, i]);
      else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
      else paths.push(path);
    };
    walk(valid, []);
    fc.assert(
      fc.property(fc.constantFrom(...paths), fc.jsonValue(), (path, value) => {
        const copy = JSON.parse(JSON.stringify(valid));
        let at = copy;
        for (const p of path.slice(0, -1)) at = at[p];
        at[path[path.length - 1] as string] = value;
        const r = verifyBundle(copy, trust);
        if (!r.ok) expect(isVerityError(r.error)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
  it('parsers only raise typed errors', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        for (const fn of [() => bundleFromJson(s), () => parseBundle(s), () => parseReceipt(s)]) {
          try {
            fn();
          } catch (e) {
            expect(isVerityError(e)).toBe(true);
          }
        }
      }),
    );
  });
});
