import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from './bytes.js';
import { decodeInferFrame, encodeInferFrame, INFER_FRAME_MAGIC } from './infer-frame.js';
import { decodeTensors, encodeTensors } from './tensor-encoding.js';
import { codeOf } from './test-support/errors.js';
import { expectSameTensors, tensorMapArb } from './test-support/tensors.js';

/** A frame by hand: magic, a little-endian u32 header length, the header, the tensors. */
function frame(header: string, tensors: Uint8Array, headerLength = utf8(header).length): Uint8Array {
  const length = new Uint8Array(4);
  new DataView(length.buffer).setUint32(0, headerLength, true);
  return concatBytes(INFER_FRAME_MAGIC, length, utf8(header), tensors);
}

// V1 of docs/protocol.md §2.4: x: float32 [1, 2] = [1.0, -2.5].
const V1 = fromHex('56544e310100000001000000780102010000000000000002000000000000000000803f000020c0');

describe('binary inference frames (docs/protocol.md §2.6)', () => {
  it('is the magic, the header length, the header and the tensors, byte for byte', () => {
    const bytes = encodeInferFrame('{"model":"iris@1.0.0"}', V1);
    // "VIF1", u32 22, the 22 header bytes, then V1 unchanged.
    expect(toHex(bytes)).toBe(`56494631${'16000000'}${toHex(utf8('{"model":"iris@1.0.0"}'))}${toHex(V1)}`);
    const { header, tensors, tensorBytes } = decodeInferFrame(bytes);
    expect(header).toEqual({ model: 'iris@1.0.0' });
    expect(toHex(tensorBytes)).toBe(toHex(V1));
    expectSameTensors(tensors, decodeTensors(V1));
  });

  it('round-trips any header object and tensor map; the tensor bytes are the canonical encoding', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), tensorMapArb(), (fields, map) => {
        const encoded = encodeTensors(map);
        const decoded = decodeInferFrame(encodeInferFrame(JSON.stringify(fields), encoded));
        expect(decoded.header).toEqual(JSON.parse(JSON.stringify(fields)));
        expect(toHex(decoded.tensorBytes)).toBe(toHex(encoded));
        expectSameTensors(decoded.tensors, map);
        // Canonical: what was accepted encodes back to the very bytes received.
        expect(toHex(encodeTensors(decoded.tensors))).toBe(toHex(decoded.tensorBytes));
      }),
      { numRuns: 200 },
    );
  });

  it('never throws anything but a coded error on garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (tail, withMagic) => {
        const bytes = withMagic ? concatBytes(INFER_FRAME_MAGIC, tail) : tail;
        const code = codeOf(() => decodeInferFrame(bytes));
        expect(
          code === undefined ||
            code === 'INFER_FRAME_INVALID' ||
            code === 'INFER_HEADER_TOO_LARGE' ||
            code === 'TENSOR_ENCODING_INVALID',
        ).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  // Named negative fixtures: what is wrong, and the code it must produce.
  const BAD: { what: string; bytes: Uint8Array; code: string; offset?: number }[] = [
    { what: 'empty body', bytes: new Uint8Array(0), code: 'INFER_FRAME_INVALID' },
    { what: 'magic only, no header length', bytes: INFER_FRAME_MAGIC, code: 'INFER_FRAME_INVALID' },
    { what: 'wrong magic "VIF2"', bytes: fromHex('56494632020000007b7d56544e3100000000'), code: 'INFER_FRAME_INVALID' },
    {
      what: 'a JSON body sent as a frame',
      bytes: utf8('{"model":"iris@1.0.0","input":{}}'),
      code: 'INFER_FRAME_INVALID',
    },
    { what: 'header length past the end', bytes: frame('{}', new Uint8Array(0), 3), code: 'INFER_FRAME_INVALID' },
    { what: 'header length 2^32 - 1', bytes: frame('{}', V1, 0xffffffff), code: 'INFER_HEADER_TOO_LARGE' },
    {
      what: 'header one byte above 64 KiB',
      bytes: frame(`{"a":"${'x'.repeat(65536 - 7)}"}`, V1),
      code: 'INFER_HEADER_TOO_LARGE',
    },
    { what: 'header not UTF-8', bytes: frame('{}', V1).fill(0xff, 8, 9), code: 'INFER_FRAME_INVALID' },
    { what: 'header not JSON', bytes: frame('{model}', V1), code: 'INFER_FRAME_INVALID' },
    { what: 'header a JSON array', bytes: frame('[]', V1), code: 'INFER_FRAME_INVALID' },
    { what: 'header JSON null', bytes: frame('null', V1), code: 'INFER_FRAME_INVALID' },
    { what: 'no tensors at all', bytes: frame('{}', new Uint8Array(0)), code: 'TENSOR_ENCODING_INVALID', offset: 10 },
    { what: 'tensors cut short', bytes: frame('{}', V1.subarray(0, V1.length - 1)), code: 'TENSOR_ENCODING_INVALID' },
    {
      what: 'one trailing byte after the tensors',
      bytes: frame('{}', concatBytes(V1, new Uint8Array([0]))),
      code: 'TENSOR_ENCODING_INVALID',
      offset: 10 + V1.length,
    },
    {
      what: 'tensor count 2^32 - 1 (cannot fit; must not allocate)',
      bytes: frame('{}', fromHex('56544e31ffffffff0100000078020000')),
      code: 'TENSOR_ENCODING_INVALID',
    },
    {
      what: 'shape [2^32, 2^20] of float32 (cannot fit; must not allocate)',
      bytes: frame('{}', fromHex('56544e3101000000010000007801020000000001000000000010000000000000000000')),
      code: 'TENSOR_ENCODING_INVALID',
    },
    {
      what: 'names out of order (not canonical)',
      bytes: frame('{}', fromHex('56544e310200000001000000620200000100000061020000')),
      code: 'TENSOR_ENCODING_INVALID',
    },
  ];
  for (const bad of BAD) {
    it(`refuses ${bad.what}: ${bad.code}`, () => {
      let error: unknown;
      try {
        decodeInferFrame(bad.bytes);
      } catch (e) {
        error = e;
      }
      expect((error as { code?: string }).code).toBe(bad.code);
      if (bad.offset !== undefined) expect((error as { details: { offset: number } }).details.offset).toBe(bad.offset);
    });
  }

  it('refuses to write a header that is no object, or tensors that are no VTN1 encoding', () => {
    expect(codeOf(() => encodeInferFrame('[]', V1))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => encodeInferFrame('{}', utf8('{"x":[1]}')))).toBe('INVALID_ARGUMENT');
  });
});
