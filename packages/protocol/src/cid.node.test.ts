/**
 * Node-only cross-checks of the UnixFS hasher: against ipfs-unixfs-importer (the IPFS project's
 * own JavaScript implementation) configured like kubo, and against kubo's 1 GiB test vectors.
 * Node-only because the inputs are hundreds of MiB: their ChaCha20 content comes from
 * node:crypto, which is fast, and the importer cross-check doubles the hashing work.
 */
// biome-ignore lint/correctness/noNodejsModules: node-only test (*.node.test.ts), for fast ChaCha20
import { createCipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';
import { importByteStream } from 'ipfs-unixfs-importer';
import { fixedSize } from 'ipfs-unixfs-importer/chunker';
import { balanced } from 'ipfs-unixfs-importer/layout';
import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { CODEC_DAG_PB, createUnixfsHasher, parseCid, UNIXFS_CHUNK_SIZE, type UnixfsBlock, unixfsCidOf } from './cid.js';
import { deterministicPieces } from './test-support/deterministic-bytes.js';

const MiB = 1_048_576;

/**
 * kubo's DeterministicRandomReaderBytes (see test-support/deterministic-bytes.ts) through
 * node:crypto's ChaCha20, whose 16-byte IV is the 32-bit little-endian block counter followed by
 * the 96-bit nonce (zero here).
 */
function* kuboRandom(size: number, seed: string, pieceSize = MiB): Generator<Uint8Array> {
  const key = createHash('sha256').update(seed, 'utf8').digest();
  const cipher = createCipheriv('chacha20', key, new Uint8Array(16));
  const zeros = new Uint8Array(pieceSize);
  for (let left = size; left > 0; left -= pieceSize) {
    yield new Uint8Array(cipher.update(zeros.subarray(0, Math.min(pieceSize, left))));
  }
}

interface ImporterSettings {
  chunkSize: number;
  maxLinks: number;
}

/** ipfs-unixfs-importer set up as `ipfs add --cid-version 1 --raw-leaves --chunker size-N`. */
async function importerCid(
  pieces: Iterable<Uint8Array>,
  { chunkSize, maxLinks }: ImporterSettings,
  onBlock?: (cid: string, bytes: Uint8Array) => void,
): Promise<string> {
  const blockstore = {
    put: async (cid: { toString(): string }, bytes: Uint8Array) => {
      onBlock?.(cid.toString(), bytes);
      return cid;
    },
  };
  const result = await importByteStream(pieces, blockstore as never, {
    cidVersion: 1,
    rawLeaves: true,
    reduceSingleLeafToSelf: true,
    chunker: fixedSize({ chunkSize }),
    layout: balanced({ maxChildrenPerNode: maxLinks }),
    // kubo (go-codec-dagpb) writes Links before Data, as the dag-pb spec requires.
    fieldOrder: 'links-first',
  });
  return result.cid.toString();
}

describe('kubo test vectors, 1 GiB (kubo test/cli/cid_profiles_test.go, profile unixfs-v1-2025)', () => {
  // That profile is CIDv1, raw leaves, 1 MiB chunks, but 1024 links per node, so maxLinks: 1024.
  // FileOverMaxLinksCID: 1024 MiB + 1 bytes of seed "v1-2025-seed": a root with two children,
  // the first being a full node of 1024 leaves, which is FileAtMaxLinksCID (the whole 1024 MiB
  // file). One pass checks both.
  it('1024 MiB and 1024 MiB + 1 of "v1-2025-seed"', () => {
    const dagPb: string[] = [];
    const hasher = createUnixfsHasher({
      maxLinks: 1024,
      onBlock: (b) => {
        if (parseCid(b.cid).codec === CODEC_DAG_PB) dagPb.push(b.cid);
      },
    });
    for (const piece of kuboRandom(1024 * MiB + 1, 'v1-2025-seed')) hasher.update(piece);
    const result = hasher.digest();
    expect(dagPb[0]).toBe('bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm');
    expect(result.cid).toBe('bafybeibdsi225ugbkmpbdohnxioyab6jsqrmkts3twhpvfnzp77xtzpyhe');
    expect(dagPb).toHaveLength(3); // full node, the node over the last leaf, the root
  }, 180_000);

  it('node:crypto ChaCha20 matches the portable test helper', () => {
    const a = [...kuboRandom(200_000, 'chunk-v1-seed', 65_536)];
    const b = [...deterministicPieces(200_000, 'chunk-v1-seed', 65_536)];
    expect(a.map(toHex)).toEqual(b.map(toHex));
  });
});

describe('cross-check with ipfs-unixfs-importer configured like kubo', () => {
  const kubo: ImporterSettings = { chunkSize: UNIXFS_CHUNK_SIZE, maxLinks: 174 };
  // Content: kubo's deterministic test bytes for the seed. The pinned CIDs are the vectors of
  // docs/protocol.md §3; each is checked here against the importer, not only against this code.
  const sizes: [string, number, string, string | undefined][] = [
    ['0', 0, 'size-0', 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'],
    ['1', 1, 'size-1', undefined],
    ['1 MiB - 1', MiB - 1, 'size-1048575', undefined],
    ['1 MiB', MiB, 'size-1048576', undefined],
    ['1 MiB + 1', MiB + 1, 'size-1048577', undefined],
    ['3.5 MiB', 3.5 * MiB, 'verity-3.5MiB', 'bafybeieqejjjc5i37b24vquvzhbcwccj7zjvn2vvmjjfo5tdzv6rell2zi'],
  ];
  for (const [label, size, seed, pinned] of sizes) {
    it(`${label} bytes: same CID and the same blocks`, async () => {
      const theirs = new Map<string, string>();
      const ours = new Map<string, string>();
      const expected = await importerCid(kuboRandom(size, seed), kubo, (cid, bytes) => {
        theirs.set(cid, toHex(createHash('sha256').update(bytes).digest()));
      });
      const result = await unixfsCidOf(kuboRandom(size, seed, 300_000), {
        onBlock: (b: UnixfsBlock) => {
          ours.set(b.cid, toHex(createHash('sha256').update(b.bytes).digest()));
        },
      });
      expect(result.cid).toBe(expected);
      if (pinned !== undefined) expect(result.cid).toBe(pinned);
      expect(result.size).toBe(size);
      expect(ours).toEqual(theirs);
    });
  }

  // Around the 174-link boundary. Only the dag-pb nodes are compared block by block (leaves would
  // take the whole file in memory).
  const big: [string, number, string, string, number][] = [
    [
      '174 MiB: one node of 174 leaves',
      174 * MiB,
      'verity-174MiB',
      'bafybeibblul3tyujshl5gidfdhnop56dzgdkvs6l433rf2kqhijksoji6q',
      1,
    ],
    // Its first child is the node of the line above: the same 174 leaves.
    [
      '174 MiB + 1: a second level (a full node, then a node over 1 leaf)',
      174 * MiB + 1,
      'verity-174MiB',
      'bafybeifxnam6z6d6sxkdkzocrgqmu3hjgx53b5ro4sjxweiqxoyevzdodm',
      3,
    ],
    [
      '175 MiB + 1: a second level (a full node, then a node over 2 leaves)',
      175 * MiB + 1,
      'verity-175MiB',
      'bafybeib63zrcoo56ifgaq73kjamycynfa2l6tueeocxtyc5pmq33dzrx5y',
      3,
    ],
  ];
  for (const [label, size, seed, pinned, nodeCount] of big) {
    it(`${label}: same CID and the same nodes`, async () => {
      const theirs: string[] = [];
      const ours: string[] = [];
      const keepNodes = (list: string[]) => (cid: string, bytes: Uint8Array) => {
        if (parseCid(cid).codec === CODEC_DAG_PB) list.push(`${cid} ${toHex(bytes)}`);
      };
      const expected = await importerCid(kuboRandom(size, seed), kubo, keepNodes(theirs));
      const result = await unixfsCidOf(kuboRandom(size, seed), { onBlock: (b) => keepNodes(ours)(b.cid, b.bytes) });
      expect(result.cid).toBe(expected);
      expect(result.cid).toBe(pinned);
      expect(ours).toHaveLength(nodeCount);
      expect(new Set(ours)).toEqual(new Set(theirs));
    }, 120_000);
  }

  it('small chunks and few links (trees up to 12 levels deep) agree for any size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 3000 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 2, max: 4 }),
        async (size, chunkSize, maxLinks) => {
          const settings = { chunkSize, maxLinks };
          const expected = await importerCid(kuboRandom(size, 'small', 97), settings);
          const result = await unixfsCidOf(kuboRandom(size, 'small', 97), settings);
          expect(result.cid).toBe(expected);
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('createUnixfsHasher with a native SHA-256', () => {
  it('gives the same CID and blocks as the portable hash', () => {
    const native = (bytes: Uint8Array) => new Uint8Array(createHash('sha256').update(bytes).digest());
    const run = (sha256?: (b: Uint8Array) => Uint8Array) => {
      const blocks: string[] = [];
      const h = createUnixfsHasher({ onBlock: (b) => blocks.push(b.cid), ...(sha256 ? { sha256 } : {}) });
      for (const piece of kuboRandom(3 * MiB + 17, 'native')) h.update(piece);
      return { cid: h.digest().cid, blocks };
    };
    expect(run(native)).toEqual(run());
    expect(() => createUnixfsHasher({ sha256: () => new Uint8Array(31) }).update(new Uint8Array(1 << 20))).toThrow();
  });
});
