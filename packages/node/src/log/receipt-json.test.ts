import { toHex } from '@verity/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordArb } from '../../../protocol/src/test-support/records.js';
import { receiptJson } from './receipt-json.js';
import { makeRecord } from './test-support/log-fixtures.js';

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex);
const receipts = fc.record({
  record: recordArb(),
  leafIndex: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
  inclusionProof: fc.array(hex32, { maxLength: 64 }),
  // Notes hold newlines, and origins may hold any text: quotes, backslashes, control characters, non-ASCII.
  checkpoint: fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constant('log\n5\nAAAA\n\n— log abc\n')),
});

describe('receiptJson', () => {
  it('is JSON.stringify(receipt), byte for byte', () => {
    fc.assert(
      fc.property(receipts, (r) => {
        expect(receiptJson(r)).toBe(JSON.stringify(r));
      }),
      { numRuns: 2000 },
    );
  });

  it('stays exact when the cached note, runtime and model change between calls', () => {
    fc.assert(
      fc.property(fc.array(receipts, { minLength: 2, maxLength: 20 }), fc.array(fc.nat(19)), (rs, order) => {
        for (const i of [...order, ...rs.keys()]) {
          const r = rs[i % rs.length] as (typeof rs)[number];
          expect(receiptJson(r)).toBe(JSON.stringify(r));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('falls back to JSON.stringify for a record that did not come from parseRecord', () => {
    const record = { ...makeRecord(1), requestId: 'a"b', runtime: { id: '\\', version: '"', profile: 'x' } };
    const r = { record, leafIndex: 1, inclusionProof: [], checkpoint: 'x' };
    expect(receiptJson(r as never)).toBe(JSON.stringify(r));
    expect(JSON.parse(receiptJson(r as never))).toEqual(r);
  });
});
