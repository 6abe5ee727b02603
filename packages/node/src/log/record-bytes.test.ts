import {
  encodeRecord,
  hashChildren,
  hashLeaf,
  type InferenceRecord,
  parseRecord,
  RECORD_KINDS,
  RECORD_MODES,
  recordLeafHash,
  toHex,
} from '@verity/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { leafHash, pairHash, sha256 } from './fast-hash.js';
import { encodeLeafData } from './record-bytes.js';
import { makeRecord } from './test-support/log-fixtures.js';

const hex32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toHex);
const ascii = (max: number) => fc.stringMatching(new RegExp(`^[\\x21-\\x7e]{1,${max}}$`));
const recordArb: fc.Arbitrary<InferenceRecord> = fc
  .record({
    kind: fc.constantFrom(...RECORD_KINDS),
    mode: fc.constantFrom(...RECORD_MODES),
    model: fc.constantFrom(
      'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea',
      'bagaaierah4ejbfw4cszcqwlwkh5wp4ojvd4wdfo5hgoraqpd6ibakfl5fqnq',
    ),
    runtime: fc.record({ id: ascii(64), version: ascii(64), profile: ascii(32) }),
    inputDigest: hex32,
    outputDigest: hex32,
    paramsDigest: hex32,
    requestId: fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/),
    nonce: fc.option(fc.uint8Array({ minLength: 1, maxLength: 64 }).map(toHex), { nil: undefined }),
    timestamp: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    node: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => `0x${toHex(b)}`),
  })
  .map(({ nonce, ...r }) => parseRecord({ version: 1, ...r, ...(nonce === undefined ? {} : { clientNonce: nonce }) }));

describe('encodeLeafData (Node fast path of encodeRecord)', () => {
  it('is 0x00 ‖ encodeRecord(record), byte for byte', () => {
    fc.assert(
      fc.property(recordArb, (r) => {
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
