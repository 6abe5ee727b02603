import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from './bytes.js';
import { isVerityError } from './errors.js';
import {
  decodeRecord,
  encodeRecord,
  type InferenceRecord,
  paramsDigest,
  parseRecord,
  recordLeafHash,
} from './record.js';
import { codeOf } from './test-support/errors.js';
import { recordArb } from './test-support/records.js';

const RECORD: InferenceRecord = {
  version: 1,
  kind: 'onnx',
  mode: 'signed',
  model: 'bagaaieraiqjw7i2vwntyuekgvulpp2det2kpwt6cd7tx5ayqybqpmhfk76fa', // CIDv1 json of the bytes "{}"
  runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
  inputDigest: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  outputDigest: '11'.repeat(32),
  paramsDigest: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', // SHA-256("{}"): no params
  requestId: 'req-1',
  clientNonce: 'cafe',
  timestamp: 1_793_491_200_000,
  node: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', // the EIP-55 example address
};

// Assembled by hand from docs/protocol.md §5.2, field by field; the leaf hash was computed with
// `echo -n 00<hex> | xxd -r -p | sha256sum`.
const RECORD_HEX = [
  '56524543', // "VREC"
  '01', // version 1
  '00', // kind onnx
  '00', // mode signed
  '000001a19467e800', // timestamp 1793491200000 ms, u64 big-endian
  '5aaeb6053f3e94c9b9a09f33669435e7ef1beaed', // node, 20 bytes
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', // inputDigest
  '11'.repeat(32), // outputDigest
  '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', // paramsDigest
  '05',
  '7265712d31', // requestId "req-1"
  '25',
  '018004122044136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', // model: CIDv1 (01) json (8004) sha2-256 (12 20)
  '10',
  '6f6e6e7872756e74696d652d6e6f6465', // runtime.id "onnxruntime-node"
  '06',
  '312e33302e30', // runtime.version "1.30.0"
  '06',
  '6e6174697665', // runtime.profile "native"
  '02',
  'cafe', // clientNonce
].join('');
const LEAF_HASH = 'a2140b13b667aef1150b7bddf1921feb10dc25f843fd5ede7f5b274e083b8a82';

describe('record encoding', () => {
  it('matches the hand-assembled vector and its leaf hash', () => {
    expect(toHex(encodeRecord(RECORD))).toBe(RECORD_HEX);
    expect(toHex(recordLeafHash(RECORD))).toBe(LEAF_HASH);
    expect(decodeRecord(fromHex(RECORD_HEX))).toEqual(RECORD);
  });
  it('digests parameters as the SHA-256 of their RFC 8785 canonical JSON', () => {
    expect(paramsDigest({})).toBe('44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a');
    // echo -n '{"seed":7,"temperature":0.5}' | sha256sum
    expect(paramsDigest({ temperature: 0.5, seed: 7 })).toBe(
      '170858c92dbf2d0861ae1c08265a7b138110e73c971516aa446746f7a3e250e4',
    );
  });
  it('marks an absent clientNonce with length 0', () => {
    const { clientNonce: _, ...noNonce } = RECORD;
    const bytes = encodeRecord(noNonce);
    expect(toHex(bytes.subarray(-1))).toBe('00');
    expect(decodeRecord(bytes)).toEqual(noNonce);
  });
  it('accepts a lower-case node address and returns it in EIP-55 form', () => {
    expect(parseRecord({ ...RECORD, node: RECORD.node.toLowerCase() }).node).toBe(RECORD.node);
  });
  it('rejects invalid fields with RECORD_INVALID and the field name', () => {
    const bad: [string, unknown][] = [
      ['version', 2],
      ['kind', 'gpt'],
      ['mode', 'trusted'],
      ['model', 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG'],
      ['model', 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'], // raw: not a manifest
      ['model', 'BAGAAIERAIQJW7I2VWNTYUEKGVULPP2DET2KPWT6CD7TX5AYQYBQPMHFK76FA'],
      ['inputDigest', 'E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855'],
      ['outputDigest', '11'],
      ['requestId', 'has space'],
      ['requestId', ''],
      ['clientNonce', 'abc'],
      ['timestamp', -1],
      ['timestamp', 1.5],
      ['node', '0x5AAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'],
      ['extra', 1],
    ];
    for (const [field, value] of bad) {
      let details: unknown;
      try {
        parseRecord({ ...RECORD, [field]: value });
      } catch (e) {
        expect(isVerityError(e, 'RECORD_INVALID'), `${field}=${String(value)}`).toBe(true);
        details = (e as { details: { field: string } }).details.field;
      }
      expect(details, `${field}=${String(value)}`).toBe(field);
    }
    expect(codeOf(() => parseRecord({ ...RECORD, runtime: { ...RECORD.runtime, id: 'a b' } }))).toBe('RECORD_INVALID');
  });
  it('rejects non-canonical and truncated bytes with RECORD_ENCODING_INVALID', () => {
    const bytes = fromHex(RECORD_HEX);
    const cases: [string, Uint8Array][] = [
      ['truncated', bytes.subarray(0, bytes.length - 1)],
      ['trailing byte', new Uint8Array([...bytes, 0])],
      ['bad magic', Uint8Array.from(bytes, (b, i) => (i === 0 ? 0x57 : b))],
      ['version 2', Uint8Array.from(bytes, (b, i) => (i === 4 ? 2 : b))],
      ['unknown kind', Uint8Array.from(bytes, (b, i) => (i === 5 ? 9 : b))],
      ['unknown mode', Uint8Array.from(bytes, (b, i) => (i === 6 ? 9 : b))],
      ['empty', new Uint8Array(0)],
    ];
    for (const [what, b] of cases)
      expect(
        codeOf(() => decodeRecord(b)),
        what,
      ).toBe('RECORD_ENCODING_INVALID');
  });
});

const records = recordArb([RECORD.model]);

describe('record properties', () => {
  it('decode(encode(r)) = r and encode(decode(b)) = b', () => {
    fc.assert(
      fc.property(records, (r) => {
        const bytes = encodeRecord(r);
        const back = decodeRecord(bytes);
        expect(back).toEqual(r);
        expect(encodeRecord(back)).toEqual(bytes);
      }),
    );
  });
  it('any single-byte change of an encoding is rejected or decodes to a different record', () => {
    fc.assert(
      fc.property(records, fc.nat(), fc.integer({ min: 1, max: 255 }), (r, at, x) => {
        const bytes = encodeRecord(r);
        const i = at % bytes.length;
        const changed = bytes.slice();
        changed[i] = (changed[i] as number) ^ x;
        try {
          expect(decodeRecord(changed)).not.toEqual(r);
        } catch (e) {
          expect(isVerityError(e, 'RECORD_ENCODING_INVALID')).toBe(true);
        }
      }),
    );
  });
  it('garbage never raises anything but a typed error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (b) => {
        try {
          decodeRecord(b);
        } catch (e) {
          expect(isVerityError(e, 'RECORD_ENCODING_INVALID')).toBe(true);
        }
      }),
    );
    fc.assert(
      fc.property(fc.anything(), (v) => {
        try {
          parseRecord(v);
        } catch (e) {
          expect(isVerityError(e, 'RECORD_INVALID')).toBe(true);
        }
      }),
    );
  });
});
