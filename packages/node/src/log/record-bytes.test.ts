import { encodeRecord, hashChildren, hashLeaf, parseRecord, recordLeafHash, toHex } from '@verity/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { recordArb } from '../../../protocol/src/test-support/records.js';
import { leafHash, pairHash, sha256 } from './fast-hash.js';
import { encodeLeafData } from './record-bytes.js';
import { makeRecord } from './test-support/log-fixtures.js';

const records = recordArb();

describe('encodeLeafData (Node fast path of encodeRecord)', () => {
  it('is 0x00 ‖ encodeRecord(record), byte for byte', () => {
    fc.assert(
      fc.property(records, (r) => {
        const leaf = encodeLeafData(r);
        expect(leaf[0]).toBe(0);
        expect(toHex(leaf.subarray(1))).toBe(toHex(encodeRecord(r)));
        expect(toHex(sha256(leaf))).toBe(toHex(recordLeafHash(r)));
      }),
      { numRuns: 500 },
    );
  });

  it('encodes the test records like the protocol', () => {
    for (let i = 0; i < 50; i++) {
      const r = parseRecord(makeRecord(i));
      expect(toHex(encodeLeafData(r).subarray(1))).toBe(toHex(encodeRecord(r)));
    }
  });
});

describe('node:crypto Merkle hashes', () => {
  it('equal the protocol hashLeaf and hashChildren', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 600 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        (data, l, r) => {
          expect(toHex(leafHash(data))).toBe(toHex(hashLeaf(data)));
          expect(toHex(pairHash(Buffer.concat([Buffer.from([9]), l, r]), 1))).toBe(toHex(hashChildren(l, r)));
        },
      ),
    );
  });
});
