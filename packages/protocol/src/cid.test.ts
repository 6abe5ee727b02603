import fc from 'fast-check';
import { base58btc } from 'multiformats/bases/base58';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromHex, toHex, utf8 } from './bytes.js';
import {
  blockMatchesCid,
  type CidCodec,
  CODEC_DAG_PB,
  CODEC_JSON,
  CODEC_RAW,
  cidForBytes,
  cidFromBytes,
  cidToBytes,
  createCid,
  createUnixfsHasher,
  decodeVarint,
  encodeVarint,
  formatCid,
  fromBase32,
  isCid,
  parseCid,
  toBase32,
  type UnixfsBlock,
  unixfsCidOf,
} from './cid.js';
import { isVerityError } from './errors.js';
import { sha256 } from './hash.js';
import { deterministicBytes, deterministicPieces } from './test-support/deterministic-bytes.js';
import { expectCode } from './test-support/errors.js';

describe('unsigned varint', () => {
  // Examples of https://github.com/multiformats/unsigned-varint (README, "Examples").
  const vectors: [number, string][] = [
    [1, '01'],
    [127, '7f'],
    [128, '8001'],
    [255, 'ff01'],
    [300, 'ac02'],
    [16384, '808001'],
  ];
  for (const [n, hex] of vectors) {
    it(`${n} ↔ ${hex}`, () => {
      expect(toHex(encodeVarint(n))).toBe(hex);
      expect(decodeVarint(fromHex(hex))).toEqual({ value: n, length: hex.length / 2 });
    });
  }
  it('encodes the json codec as 80 04', () => expect(toHex(encodeVarint(CODEC_JSON))).toBe('8004'));
  it('round-trips every safe integer and reads at an offset', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.uint8Array({ maxLength: 4 }), (n, prefix) => {
        const bytes = concatBytes(prefix, encodeVarint(n), Uint8Array.of(0xff));
        expect(decodeVarint(bytes, prefix.length).value).toBe(n);
      }),
    );
  });
  it('rejects non-minimal, truncated, overlong and oversized varints', () => {
    expectCode(() => decodeVarint(fromHex('8000')), 'ENCODING_INVALID'); // 0 written in two bytes
    expectCode(() => decodeVarint(fromHex('ff00')), 'ENCODING_INVALID'); // 127 with a zero tail
    expectCode(() => decodeVarint(fromHex('80')), 'ENCODING_INVALID'); // continuation bit, no byte
    expectCode(() => decodeVarint(new Uint8Array()), 'ENCODING_INVALID');
    expectCode(() => decodeVarint(fromHex('ffffffffffffffffff01')), 'ENCODING_INVALID'); // 10 bytes
    expectCode(() => decodeVarint(fromHex('ffffffffffffffff7f')), 'ENCODING_INVALID'); // 2^63 - 1
    expectCode(() => encodeVarint(-1), 'INVALID_ARGUMENT');
    expectCode(() => encodeVarint(2 ** 53), 'INVALID_ARGUMENT');
  });
});

describe('base32 (RFC 4648 §10 test vectors, lower case, unpadded)', () => {
  const vectors: [string, string][] = [
    ['', ''],
    ['f', 'my'],
    ['fo', 'mzxq'],
    ['foo', 'mzxw6'],
    ['foob', 'mzxw6yq'],
    ['fooba', 'mzxw6ytb'],
    ['foobar', 'mzxw6ytboi'],
  ];
  for (const [plain, encoded] of vectors) {
    it(`"${plain}" ↔ "${encoded}"`, () => {
      expect(toBase32(utf8(plain))).toBe(encoded);
      expect(fromBase32(encoded)).toEqual(utf8(plain));
    });
  }
  it('rejects padding, upper case, impossible lengths and non-zero trailing bits', () => {
    for (const bad of ['my======', 'MY', 'm', 'mzx', 'mzxw6y', 'mz', 'mzxr', 'my ', 'm1', 'mé']) {
      expectCode(() => fromBase32(bad), 'ENCODING_INVALID');
    }
  });
  it('round-trips any bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
        expect(fromBase32(toBase32(b))).toEqual(b);
      }),
    );
  });
});

describe('CIDv1 text and bytes', () => {
  // CIDs printed by kubo (`ipfs add`), so independent of this code:
  // - empty file: test/sharness/t0040-add-and-cat.sh, "zero length file has correct hash"
  //   (`ipfs add -q --raw-leaves`);
  // - "hello world": test/cli/cid_profiles_test.go, unixfs-v1-2025 SmallFileCID;
  // - "Hello Mars!\n", "Hello Venus!\n": t0040-add-and-cat.sh, add_directory '--cid-version=1'
  //   (files written with `echo`, hence the newline).
  const kubo: [string, string][] = [
    ['', 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'],
    ['hello world', 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'],
    ['Hello Mars!\n', 'bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4'],
    ['Hello Venus!\n', 'bafkreihfsphazrk2ilejpekyltjeh5k4yvwgjuwg26ueafohqioeo3sdca'],
  ];
  for (const [content, cid] of kubo) {
    it(`raw block of ${JSON.stringify(content)} is ${cid}`, async () => {
      expect(formatCid(cidForBytes(CODEC_RAW, utf8(content)))).toBe(cid);
      expect((await unixfsCidOf(utf8(content))).cid).toBe(cid);
      const parsed = parseCid(cid);
      expect(parsed.codec).toBe(CODEC_RAW);
      expect(parsed.digest).toEqual(sha256(utf8(content)));
      expect(blockMatchesCid(cid, utf8(content))).toBe(true);
      expect(blockMatchesCid(cid, utf8(`${content}x`))).toBe(false);
    });
  }

  it('writes the binary form as version, codec, multihash code, length, digest', () => {
    // The empty-file CID in base16 ("f" multibase); the digest is SHA-256("").
    const hex = '01551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
    const cid = parseCid('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
    expect(toHex(cidToBytes(cid))).toBe(hex);
    expect(cidFromBytes(fromHex(hex))).toEqual(cid);
    // json codec (0x0200) takes two varint bytes: 01 80 04 12 20 …
    expect(toHex(cidToBytes(createCid(CODEC_JSON, cid.digest))).slice(0, 10)).toBe('0180041220');
  });

  it('agrees with multiformats (the IPFS JS implementation) for every codec and digest', () => {
    const codecs: CidCodec[] = [CODEC_RAW, CODEC_DAG_PB, CODEC_JSON];
    fc.assert(
      fc.property(fc.constantFrom(...codecs), fc.uint8Array({ minLength: 32, maxLength: 32 }), (codec, digest) => {
        const ours = createCid(codec, digest);
        const theirs = CID.create(1, codec, Digest.create(0x12, digest));
        expect(formatCid(ours)).toBe(theirs.toString());
        expect(cidToBytes(ours)).toEqual(theirs.bytes);
        expect(parseCid(theirs.toString())).toEqual(ours);
      }),
    );
  });

  it('round-trips text and bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom<CidCodec>(CODEC_RAW, CODEC_DAG_PB, CODEC_JSON), fc.uint8Array(), (codec, data) => {
        const cid = cidForBytes(codec, data);
        const text = formatCid(cid);
        expect(parseCid(text)).toEqual(cid);
        expect(cidFromBytes(cidToBytes(cid))).toEqual(cid);
        expect(isCid(text)).toBe(true);
      }),
    );
  });
});

describe('garbage CIDs are rejected with CID_INVALID (named negative fixtures)', () => {
  const valid = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e';
  const fixtures: [string, unknown][] = [
    ['empty string', ''],
    [
      'CIDv0 (dag-pb "hello world\\n" that kubo prints without --cid-version)',
      'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o',
    ],
    ['base32 upper case (multibase "B"): not the canonical text', valid.toUpperCase()],
    ['base58btc CIDv1 (multibase "z")', CID.parse(valid).toString(base58btc)],
    ['base16 CIDv1 (multibase "f")', 'f01551220b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9'],
    ['dag-cbor codec 0x71 (not used by Verity)', 'bafyreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'],
    ['identity multihash of nothing', 'bafkqaaa'],
    ['truncated digest', valid.slice(0, -4)],
    ['extra byte after the digest', `b${toBase32(concatBytes(cidToBytes(parseCid(valid)), Uint8Array.of(0)))}`],
    ['non-zero trailing bits in the base32 text', `${valid.slice(0, -1)}f`],
    ['whitespace around the text', ` ${valid}`],
    ['multibase prefix only', 'b'],
    ['a huge string', `b${'a'.repeat(10_000)}`],
    ['not a string: number', 42],
    ['not a string: null', null],
    ['not a string: object', { toString: () => valid }],
  ];
  for (const [what, input] of fixtures) {
    it(what, () => {
      expectCode(() => parseCid(input as string), 'CID_INVALID');
      expect(isCid(input)).toBe(false);
    });
  }

  it('rejects CIDv1 bytes with other versions, codecs or hash functions', () => {
    const digest = `20${'ab'.repeat(32)}`;
    expectCode(() => cidFromBytes(fromHex(`1220${'ab'.repeat(32)}`)), 'CID_INVALID'); // CIDv0
    expectCode(() => cidFromBytes(fromHex(`025512${digest}`)), 'CID_INVALID'); // version 2
    expectCode(() => cidFromBytes(fromHex(`017112${digest}`)), 'CID_INVALID'); // dag-cbor
    expectCode(() => cidFromBytes(fromHex(`015513${digest}`)), 'CID_INVALID'); // sha2-512 code
    expectCode(() => cidFromBytes(fromHex(`01551210${'ab'.repeat(16)}`)), 'CID_INVALID'); // 16-byte digest
    expectCode(() => cidFromBytes(fromHex(`01d50012${digest}`)), 'CID_INVALID'); // non-minimal codec varint
    expectCode(() => cidFromBytes('x' as unknown as Uint8Array), 'CID_INVALID');
  });

  it('never throws anything but CID_INVALID on arbitrary text', () => {
    const nearValid = fc
      .tuple(fc.nat({ max: valid.length - 1 }), fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz234567AZ019=-'))
      .map(([i, c]) => valid.slice(0, i) + c + valid.slice(i + 1));
    const base32ish = fc.stringMatching(/^b[a-z2-7]{0,80}$/);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit: 'binary' }), base32ish, nearValid), (s) => {
        try {
          const cid = parseCid(s);
          expect(formatCid(cid)).toBe(s); // only canonical text is ever accepted
        } catch (e) {
          expect(isVerityError(e, 'CID_INVALID')).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws anything but CID_INVALID on arbitrary bytes', () => {
    const prefixed = fc.uint8Array({ maxLength: 40 }).map((b) => concatBytes(Uint8Array.of(1, 0x55, 0x12, 0x20), b));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 48 }), prefixed), (b) => {
        try {
          cidFromBytes(b);
        } catch (e) {
          expect(isVerityError(e, 'CID_INVALID')).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('UnixFS file CID (kubo `ipfs add --cid-version 1 --raw-leaves --chunker size-1048576`)', () => {
  // kubo test/cli/cid_profiles_test.go, profile unixfs-v1-2025 (CIDv1, raw leaves, 1 MiB chunks),
  // content = kubo's DeterministicRandomReaderBytes(size, "chunk-v1-seed"):
  // FileAtChunkSizeCID and FileOverChunkSizeCID. The second is a dag-pb root over two raw leaves,
  // so it pins the PBNode and UnixFS encodings byte for byte (its CID is their SHA-256).
  it('1 MiB of kubo test content is one raw leaf', async () => {
    const data = deterministicBytes(1_048_576, 'chunk-v1-seed');
    expect((await unixfsCidOf(data)).cid).toBe('bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta');
  });

  it('1 MiB + 1 of kubo test content is a dag-pb node over two leaves', async () => {
    const blocks: UnixfsBlock[] = [];
    const result = await unixfsCidOf(deterministicPieces(1_048_577, 'chunk-v1-seed', 65_536), {
      onBlock: (b) => {
        blocks.push(b);
      },
    });
    expect(result.cid).toBe('bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64');
    expect(result.size).toBe(1_048_577);
    expect(result.blockCount).toBe(3);
    expect(blocks.map((b) => b.cid.slice(0, 6))).toEqual(['bafkre', 'bafkre', 'bafybe']);
    const root = blocks[2] as UnixfsBlock;
    expect(root.cid).toBe(result.cid);
    expect(result.dagSize).toBe(1_048_577 + root.bytes.length);
    // The root block, field by field (docs/protocol.md §3 walks through the same bytes).
    const leaf1 = cidToBytes(parseCid((blocks[0] as UnixfsBlock).cid));
    const leaf2 = cidToBytes(parseCid((blocks[1] as UnixfsBlock).cid));
    const expected = concatBytes(
      fromHex('122c'), // PBNode.Links (field 2, bytes), 44 bytes
      fromHex('0a24'), // PBLink.Hash (field 1, bytes), 36 bytes
      leaf1,
      fromHex('1200'), // PBLink.Name (field 2) = ""
      fromHex('18808040'), // PBLink.Tsize (field 3) = 1048576 = varint 80 80 40
      fromHex('122a'), // second link, 42 bytes
      fromHex('0a24'),
      leaf2,
      fromHex('1200'),
      fromHex('1801'), // Tsize = 1
      fromHex('0a0c'), // PBNode.Data (field 1, bytes), 12 bytes of UnixFS Data:
      fromHex('0802'), //   Type = File (2)
      fromHex('18818040'), //   filesize = 1048577
      fromHex('20808040'), //   blocksizes[0] = 1048576
      fromHex('2001'), //   blocksizes[1] = 1
    );
    expect(toHex(root.bytes)).toBe(toHex(expected));
  });

  it('hands every block to onBlock, children before parents, each matching its CID', async () => {
    const blocks: UnixfsBlock[] = [];
    const data = deterministicBytes(1000, 'blocks');
    const result = await unixfsCidOf(data, {
      chunkSize: 10,
      maxLinks: 3,
      onBlock: async (b) => {
        await Promise.resolve();
        blocks.push(b);
      },
    });
    expect(blocks).toHaveLength(result.blockCount);
    expect((blocks.at(-1) as UnixfsBlock).cid).toBe(result.cid);
    const seen = new Set<string>();
    let leafBytes = 0;
    for (const b of blocks) {
      expect(blockMatchesCid(b.cid, b.bytes)).toBe(true);
      if (parseCid(b.cid).codec === CODEC_RAW) leafBytes += b.bytes.length;
      else {
        // every link of a node points at a block already emitted
        for (const known of seen) if (toHex(b.bytes).includes(toHex(cidToBytes(parseCid(known))))) seen.delete(known);
      }
      seen.add(b.cid);
    }
    expect(leafBytes).toBe(1000);
    expect(seen).toEqual(new Set([result.cid])); // everything is reachable from the root
    expect(result.dagSize).toBe(blocks.reduce((n, b) => n + b.bytes.length, 0));
  });

  it('gives the same CID whatever the pieces fed to update (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 3000 }),
        fc.array(fc.nat({ max: 3000 }), { maxLength: 12 }),
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 2, max: 5 }),
        (data, cuts, chunkSize, maxLinks) => {
          const whole = createUnixfsHasher({ chunkSize, maxLinks }).update(data).digest();
          const points = [...new Set(cuts.map((c) => Math.min(c, data.length)))].sort((a, b) => a - b);
          const pieces = createUnixfsHasher({ chunkSize, maxLinks });
          let prev = 0;
          for (const p of [...points, data.length]) {
            pieces.update(data.subarray(prev, p));
            prev = p;
          }
          expect(pieces.digest()).toEqual(whole);
          expect(whole.size).toBe(data.length);
        },
      ),
    );
  });

  it('gives the same CID for 2.5 MiB whatever the pieces, at the default settings', async () => {
    const data = deterministicBytes(2.5 * 1_048_576, 'pieces');
    const reference = (await unixfsCidOf(data)).cid;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 1_500_000 }), { minLength: 1, maxLength: 6 }),
        async (sizes) => {
          const pieces: Uint8Array[] = [];
          for (let o = 0, i = 0; o < data.length; i++) {
            const n = sizes[i % sizes.length] as number;
            pieces.push(data.subarray(o, o + n));
            o += n;
          }
          expect((await unixfsCidOf(pieces)).cid).toBe(reference);
        },
      ),
      { numRuns: 8 },
    );
  });

  it('reads web ReadableStreams and async iterables', async () => {
    const data = deterministicBytes(5000, 'stream');
    const expected = (await unixfsCidOf(data, { chunkSize: 100, maxLinks: 4 })).cid;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let o = 0; o < data.length; o += 700) controller.enqueue(data.slice(o, o + 700));
        controller.close();
      },
    });
    expect((await unixfsCidOf(stream, { chunkSize: 100, maxLinks: 4 })).cid).toBe(expected);
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield data.subarray(0, 1);
      yield data.subarray(1);
    }
    expect((await unixfsCidOf(gen(), { chunkSize: 100, maxLinks: 4 })).cid).toBe(expected);
  });

  it('rejects misuse with typed errors', async () => {
    const h = createUnixfsHasher();
    h.digest();
    expectCode(() => h.update(new Uint8Array(1)), 'INVALID_ARGUMENT');
    expectCode(() => h.digest(), 'INVALID_ARGUMENT');
    expectCode(() => createUnixfsHasher().update('text' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    expectCode(() => createUnixfsHasher({ maxLinks: 1 }), 'INVALID_ARGUMENT');
    expectCode(() => createUnixfsHasher({ chunkSize: 0 }), 'INVALID_ARGUMENT');
    const failing = createUnixfsHasher({
      chunkSize: 4,
      onBlock: () => {
        throw new Error('disk full');
      },
    });
    expect(() => failing.update(new Uint8Array(4))).toThrow('disk full');
    expectCode(() => failing.update(new Uint8Array(1)), 'INVALID_ARGUMENT'); // unusable afterwards
    await expect(unixfsCidOf(42 as unknown as Uint8Array)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(unixfsCidOf(['x'] as unknown as Uint8Array[])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
