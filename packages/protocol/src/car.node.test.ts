import { CarBlockIterator } from '@ipld/car/iterator';
import { CarWriter } from '@ipld/car/writer';
import fc from 'fast-check';
import { CID } from 'multiformats/cid';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from './bytes.js';
import { carHeader, carSectionPrefix, dagPbLinks } from './car.js';
import { isVerityError } from './errors.js';

const EMPTY_FILE = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'; // docs/protocol.md §3.2.4
const HELLO = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'; // "hello world", kubo
const ONE_MIB_PLUS_ONE = 'bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64'; // §3.3.4, kubo
const MANIFEST = 'bagaaiera7rvofm7cyyicw4bosy4wnbvsztqzsjkaz5eewypgxtz5souahcnq'; // §4.4

/** What @ipld/car (the IPLD project's own CAR implementation) writes for `blocks` under `root`. */
async function ipldCar(root: string, blocks: { cid: string; bytes: Uint8Array }[]): Promise<Uint8Array> {
  const { writer, out } = CarWriter.create([CID.parse(root)]);
  const collected = (async () => {
    const parts: Uint8Array[] = [];
    for await (const part of out) parts.push(part);
    return concatBytes(...parts);
  })();
  for (const b of blocks) await writer.put({ cid: CID.parse(b.cid), bytes: b.bytes });
  await writer.close();
  return collected;
}

describe('CARv1 framing', () => {
  it('writes the header byte for byte as the CARv1 spec lays it out', () => {
    // varint(58) ‖ map(2) ‖ text(5) "roots" ‖ array(1) ‖ tag(42) ‖ bytes(37) ‖ 00 ‖ binary CID
    // ‖ text(7) "version" ‖ unsigned(1)   (RFC 8949 heads; DAG-CBOR key order: shorter key first)
    expect(toHex(carHeader(EMPTY_FILE))).toBe(
      `3a a2 65${toHex(utf8('roots'))} 81 d8 2a 58 25 00 01551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 67${toHex(utf8('version'))} 01`.replaceAll(
        ' ',
        '',
      ),
    );
  });

  it.each([EMPTY_FILE, HELLO, ONE_MIB_PLUS_ONE, MANIFEST])('header for %s equals @ipld/car', async (root) => {
    expect(toHex(carHeader(root))).toBe(toHex(await ipldCar(root, [])));
  });

  it('sections equal @ipld/car, and @ipld/car reads them back', async () => {
    const blocks = [
      { cid: HELLO, bytes: utf8('hello world') },
      { cid: EMPTY_FILE, bytes: new Uint8Array() },
    ];
    const ours = concatBytes(
      carHeader(HELLO),
      ...blocks.flatMap((b) => [carSectionPrefix(b.cid, b.bytes.length), b.bytes]),
    );
    expect(toHex(ours)).toBe(toHex(await ipldCar(HELLO, blocks)));
    const read: string[] = [];
    for await (const b of await CarBlockIterator.fromBytes(ours)) read.push(b.cid.toString());
    expect(read).toEqual([HELLO, EMPTY_FILE]);
  });
});

describe('dagPbLinks', () => {
  it("reads the links of kubo's root for 1 MiB + 1 bytes (docs/protocol.md §3.3.4)", () => {
    const root = fromHex(
      '122c0a2401551220' +
        '0268cb8e7373247d08ea6c0846700eb7b9c8eb58bfecbd921e4252e9e266ec98' +
        '1200' +
        '18808040' +
        '122a0a2401551220' +
        '4d7b3ef7300acf70c892d8327db8272f54434adbc61a4e130a563cb59a0d0f47' +
        '1200' +
        '1801' +
        '0a0c' +
        '08021881804020808040' +
        '2001',
    );
    expect(root.length).toBe(104);
    expect(dagPbLinks(root)).toEqual([
      'bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta',
      'bafkreicnpm7pomakz5ymrewygj63qjzpkrbuvw6gdjhbgcswhs2zudipi4',
    ]);
  });

  it('a node without links has none', () => {
    expect(dagPbLinks(fromHex('0a020802'))).toEqual([]);
    expect(dagPbLinks(new Uint8Array())).toEqual([]);
  });

  it('garbage gives a typed error, never a crash', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          dagPbLinks(bytes);
        } catch (e) {
          expect(isVerityError(e, 'ENCODING_INVALID') || isVerityError(e, 'CID_INVALID')).toBe(true);
        }
      }),
    );
  });
});
