/**
 * Content identifiers (CIDv1) and the CID of a model artifact, written by hand on `Uint8Array` and
 * `@noble/hashes`, byte-exact with IPFS (docs/design.md §2.1).
 *
 * - {@link parseCid} / {@link formatCid} / {@link cidToBytes} / {@link cidFromBytes}: CIDv1 with a
 *   sha2-256 multihash, codec raw (0x55), dag-pb (0x70) or json (0x0200), written in multibase
 *   base32 lower case (prefix `b`). Anything else is refused with `CID_INVALID`.
 * - {@link createUnixfsHasher} / {@link unixfsCidOf}: the CID that
 *   `ipfs add --cid-version 1 --raw-leaves --chunker size-1048576` prints for a file (kubo's
 *   balanced DAG, at most 174 links per node, raw leaves), computed in one streaming pass that can
 *   hand every block to a store as it is made.
 *
 * Specs: multiformats CID (https://github.com/multiformats/cid), unsigned-varint
 * (https://github.com/multiformats/unsigned-varint), multihash, multibase; dag-pb
 * (https://ipld.io/specs/codecs/dag-pb/spec/); UnixFS (https://specs.ipfs.tech/unixfs/).
 */
import { concatBytes, equalBytes } from './bytes.js';
import { type ErrorCode, fail } from './errors.js';
import { sha256 } from './hash.js';

/** Multicodec `raw`: the block is the bytes themselves (a UnixFS leaf, or a whole small file). */
export const CODEC_RAW = 0x55;
/** Multicodec `dag-pb`: a protobuf PBNode (a UnixFS file node with links to its chunks). */
export const CODEC_DAG_PB = 0x70;
/** Multicodec `json`: the block is JSON text (a Verity manifest in RFC 8785 form). */
export const CODEC_JSON = 0x0200;
/** Multihash code of sha2-256, the only hash Verity accepts. */
export const MULTIHASH_SHA2_256 = 0x12;

/** The codecs a Verity CID may carry. */
export type CidCodec = typeof CODEC_RAW | typeof CODEC_DAG_PB | typeof CODEC_JSON;

/** A parsed CIDv1: codec and sha2-256 digest. */
export interface Cid {
  readonly version: 1;
  readonly codec: CidCodec;
  /** Multihash function code; always sha2-256 (0x12). */
  readonly hashCode: typeof MULTIHASH_SHA2_256;
  /** The 32-byte SHA-256 digest of the block. */
  readonly digest: Uint8Array;
}

const CODECS: ReadonlySet<number> = new Set([CODEC_RAW, CODEC_DAG_PB, CODEC_JSON]);

/**
 * Longest CID text accepted. A Verity CID is 59 characters (raw, dag-pb) or 61 (json); the bound
 * only stops huge garbage before any work is done on it.
 */
const MAX_CID_TEXT = 128;

// ---------------------------------------------------------------------------------------------
// unsigned varint (multiformats unsigned-varint: LEB128, minimal, at most 9 bytes)

/**
 * The unsigned-varint encoding of `value` (little-endian base 128, as in protobuf), which must be
 * a non-negative safe integer.
 *
 * @example
 * ```ts
 * encodeVarint(0x0200); // Uint8Array [0x80, 0x04]
 * ```
 */
export function encodeVarint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) {
    fail('INVALID_ARGUMENT', 'varint value must be a non-negative safe integer', { value: String(value) });
  }
  const out: number[] = [];
  let v = value;
  // Division rather than `>>>`: bit operators truncate to 32 bits and sizes may exceed 4 GiB.
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Uint8Array.from(out);
}

/**
 * Reads one unsigned varint at `offset`. Rejects (with `ENCODING_INVALID`) a truncated varint, a
 * non-minimal one (a trailing `0x00` byte: the unsigned-varint spec requires the shortest form, so
 * every number has one encoding) and one above 2^53 − 1.
 *
 * @example
 * ```ts
 * decodeVarint(Uint8Array.of(0x80, 0x04)); // { value: 512, length: 2 }
 * ```
 */
export function decodeVarint(bytes: Uint8Array, offset = 0): { value: number; length: number } {
  return readVarint(bytes, offset, 'ENCODING_INVALID');
}

function readVarint(bytes: Uint8Array, offset: number, code: ErrorCode): { value: number; length: number } {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 9; i++) {
    const b = bytes[offset + i];
    if (b === undefined) return fail(code, 'truncated varint');
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) fail(code, 'non-minimal varint');
      if (!Number.isSafeInteger(value)) fail(code, 'varint above 2^53 - 1');
      return { value, length: i + 1 };
    }
    scale *= 0x80;
  }
  return fail(code, 'varint longer than 9 bytes');
}

// ---------------------------------------------------------------------------------------------
// base32 (RFC 4648 §6 alphabet, lower case, no padding: multibase `b`)

const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const B32_INDEX = new Int8Array(128).fill(-1);
for (let i = 0; i < B32.length; i++) B32_INDEX[B32.charCodeAt(i)] = i;

/**
 * RFC 4648 §6 base32 in lower case without padding, the form multibase prefix `b` denotes.
 *
 * @example
 * ```ts
 * toBase32(new TextEncoder().encode('foobar')); // 'mzxw6ytboi'
 * ```
 */
export function toBase32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (let i = 0; i < bytes.length; i++) {
    acc = ((acc << 8) | (bytes[i] as number)) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += B32[(acc >> bits) & 31];
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

/**
 * Strict inverse of {@link toBase32}: lower case only, no padding, no whitespace, and the unused
 * trailing bits must be zero, so every byte string has exactly one accepted text. Anything else
 * throws `ENCODING_INVALID`.
 *
 * @example
 * ```ts
 * fromBase32('mzxw6ytboi'); // bytes of 'foobar'
 * ```
 */
export function fromBase32(text: string): Uint8Array {
  return readBase32(text, 'ENCODING_INVALID');
}

function readBase32(text: string, code: ErrorCode): Uint8Array {
  const rem = text.length % 8;
  // 1, 3 and 6 trailing characters cannot come from whole bytes (RFC 4648 §6 padding rules).
  if (rem === 1 || rem === 3 || rem === 6) fail(code, 'invalid base32 length');
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let acc = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? (B32_INDEX[c] as number) : -1;
    if (v < 0) fail(code, 'invalid base32 character', { index: i });
    acc = ((acc << 5) | v) & 0xfff; // at most 7 + 5 live bits
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) fail(code, 'invalid base32: non-zero trailing bits');
  return out;
}

// ---------------------------------------------------------------------------------------------
// CIDv1

/**
 * A CID from a codec and a SHA-256 digest.
 *
 * @example
 * ```ts
 * const cid = createCid(CODEC_RAW, sha256(bytes));
 * ```
 */
export function createCid(codec: CidCodec, digest: Uint8Array): Cid {
  if (!CODECS.has(codec)) fail('INVALID_ARGUMENT', 'unsupported CID codec', { codec });
  if (!(digest instanceof Uint8Array) || digest.length !== 32) {
    fail('INVALID_ARGUMENT', 'a sha2-256 digest is 32 bytes');
  }
  return { version: 1, codec, hashCode: MULTIHASH_SHA2_256, digest: digest.slice() };
}

/**
 * The CID of one block: SHA-256 of `bytes`, tagged with `codec`.
 *
 * @example
 * ```ts
 * formatCid(cidForBytes(CODEC_RAW, new Uint8Array()));
 * // 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
 * ```
 */
export function cidForBytes(codec: CidCodec, bytes: Uint8Array): Cid {
  return createCid(codec, sha256(bytes));
}

/**
 * The binary CID: `varint(1) ‖ varint(codec) ‖ varint(0x12) ‖ varint(32) ‖ digest`
 * (multiformats CID, "CIDv1" binary form). This is what dag-pb links hold.
 *
 * @example
 * ```ts
 * cidToBytes(parseCid(text)); // 36 bytes for raw and dag-pb, 37 for json
 * ```
 */
export function cidToBytes(cid: Cid): Uint8Array {
  return concatBytes(
    encodeVarint(1),
    encodeVarint(cid.codec),
    encodeVarint(MULTIHASH_SHA2_256),
    encodeVarint(cid.digest.length),
    cid.digest,
  );
}

/**
 * Parses a binary CIDv1 (the whole of `bytes`, nothing after it). Throws `CID_INVALID` for any
 * other version (CIDv0 included), codec or hash function, a digest that is not 32 bytes, or
 * trailing bytes.
 *
 * @example
 * ```ts
 * cidFromBytes(cidToBytes(cid)); // equal to cid
 * ```
 */
export function cidFromBytes(bytes: Uint8Array): Cid {
  if (!(bytes instanceof Uint8Array)) fail('CID_INVALID', 'CID bytes must be a Uint8Array');
  // A CIDv0 is a bare sha2-256 multihash: 0x12 0x20 ... (multiformats CID, "Decoding algorithm").
  if (bytes[0] === MULTIHASH_SHA2_256 && bytes[1] === 0x20 && bytes.length === 34) {
    fail('CID_INVALID', 'CIDv0 is not accepted: Verity uses CIDv1 only');
  }
  let o = 0;
  const version = readVarint(bytes, o, 'CID_INVALID');
  o += version.length;
  if (version.value !== 1) fail('CID_INVALID', 'unsupported CID version', { version: version.value });
  const codec = readVarint(bytes, o, 'CID_INVALID');
  o += codec.length;
  if (!CODECS.has(codec.value)) fail('CID_INVALID', 'unsupported CID codec', { codec: codec.value });
  const hash = readVarint(bytes, o, 'CID_INVALID');
  o += hash.length;
  if (hash.value !== MULTIHASH_SHA2_256) fail('CID_INVALID', 'unsupported multihash', { hashCode: hash.value });
  const size = readVarint(bytes, o, 'CID_INVALID');
  o += size.length;
  if (size.value !== 32) fail('CID_INVALID', 'a sha2-256 digest is 32 bytes', { digestLength: size.value });
  if (bytes.length !== o + 32) fail('CID_INVALID', 'CID digest truncated or followed by extra bytes');
  return { version: 1, codec: codec.value as CidCodec, hashCode: MULTIHASH_SHA2_256, digest: bytes.slice(o) };
}

/**
 * The text form of a CID: `b` + base32 lower case of {@link cidToBytes} (multibase, base32 being
 * the default for CIDv1 in IPFS).
 *
 * @example
 * ```ts
 * formatCid(cidForBytes(CODEC_RAW, new TextEncoder().encode('hello world')));
 * // 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e'
 * ```
 */
export function formatCid(cid: Cid): string {
  return `b${toBase32(cidToBytes(cid))}`;
}

/**
 * Parses CID text. Only the canonical Verity form is accepted: multibase `b` (base32 lower case,
 * no padding), CIDv1, codec raw / dag-pb / json, sha2-256. So `formatCid(parseCid(s)) === s`
 * whenever it does not throw, and two equal CIDs always have equal text. Anything else, of any
 * type, throws `CID_INVALID` and nothing else.
 *
 * @example
 * ```ts
 * parseCid('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku').codec; // 0x55
 * ```
 */
export function parseCid(text: string): Cid {
  if (typeof text !== 'string') return fail('CID_INVALID', 'a CID must be a string');
  if (text.length === 0 || text.length > MAX_CID_TEXT) fail('CID_INVALID', 'CID text has an invalid length');
  if (text.startsWith('Qm')) fail('CID_INVALID', 'CIDv0 is not accepted: Verity uses CIDv1 only');
  if (text[0] !== 'b') fail('CID_INVALID', 'CID must use multibase base32 lower case (prefix "b")');
  return cidFromBytes(readBase32(text.slice(1), 'CID_INVALID'));
}

/**
 * True when `value` is CID text that {@link parseCid} accepts.
 *
 * @example
 * ```ts
 * isCid('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'); // true
 * ```
 */
export function isCid(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    parseCid(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `bytes` is the block that `cid` names: what a node checks for every block it fetches
 * from a peer before storing or serving it (docs/design.md §2.1). CID text that {@link parseCid}
 * refuses throws `CID_INVALID`.
 *
 * @example
 * ```ts
 * if (!blockMatchesCid(cidText, body)) throw new Error('peer sent a wrong block');
 * ```
 */
export function blockMatchesCid(cid: Cid | string, bytes: Uint8Array): boolean {
  const c = typeof cid === 'string' ? parseCid(cid) : cid;
  return equalBytes(sha256(bytes), c.digest);
}

// ---------------------------------------------------------------------------------------------
// UnixFS file DAG, as kubo builds it (go-unixfs importer/balanced, go-merkledag, go-codec-dagpb)

/** Chunk size of a Verity model artifact: `--chunker size-1048576` (docs/design.md §2.1). */
export const UNIXFS_CHUNK_SIZE = 1_048_576;
/** Links per internal node in kubo's balanced layout (`helpers.DefaultLinksPerBlock`). */
export const UNIXFS_MAX_LINKS = 174;

/** One block of a file's DAG: its CID text and its bytes (owned by the receiver, never reused). */
export interface UnixfsBlock {
  readonly cid: string;
  readonly bytes: Uint8Array;
}

/** The result of hashing a file. */
export interface UnixfsDigest {
  /** The root CID: what `ipfs add --cid-version 1 --raw-leaves --chunker size-1048576` prints. */
  readonly cid: string;
  /** File size in bytes. */
  readonly size: number;
  /** Total bytes of all blocks of the DAG (the root's cumulative `Tsize`). */
  readonly dagSize: number;
  /** Number of blocks in the DAG (leaves and internal nodes). */
  readonly blockCount: number;
}

/** Options for {@link createUnixfsHasher}. */
export interface UnixfsHasherOptions {
  /**
   * Called synchronously with every block, in an order where children always come before their
   * parent and the root comes last; a store can write them while the file is being hashed. An
   * exception it throws comes out of `update` / `digest`, and the hasher is then unusable.
   */
  onBlock?: (block: UnixfsBlock) => void;
  /**
   * Bytes per leaf; default {@link UNIXFS_CHUNK_SIZE}. Anything else gives a different CID than
   * the Verity artifact CID: only for tests and for other IPFS chunking settings.
   */
  chunkSize?: number;
  /** Links per internal node; default {@link UNIXFS_MAX_LINKS}. Same caveat as `chunkSize`. */
  maxLinks?: number;
  /**
   * The SHA-256 to use (default the portable one). A platform's native hash (e.g. `node:crypto`,
   * ~10× faster) must return the same 32 bytes.
   */
  sha256?: (bytes: Uint8Array) => Uint8Array;
}

/** A streaming UnixFS file hasher: feed it the file in any pieces, then ask for the CID. */
export interface UnixfsHasher {
  /** Adds the next bytes of the file. Piece boundaries do not affect the result. */
  update(data: Uint8Array): UnixfsHasher;
  /** Finishes the DAG and returns its root. The hasher cannot be used afterwards. */
  digest(): UnixfsDigest;
}

/** A link being collected for a parent node. */
interface PendingLink {
  readonly cid: Uint8Array; // binary CID of the child
  readonly tsize: number; // bytes of the child's whole sub-DAG (PBLink.Tsize)
  readonly fileSize: number; // file bytes under the child (an entry of UnixFS blocksizes)
}

/** Protobuf tag bytes used below: (field number << 3) | wire type. */
const TAG_PBNODE_DATA = 0x0a; // PBNode.Data = 1, bytes
const TAG_PBNODE_LINKS = 0x12; // PBNode.Links = 2, bytes (embedded PBLink)
const TAG_PBLINK_HASH = 0x0a; // PBLink.Hash = 1, bytes
const TAG_PBLINK_NAME = 0x12; // PBLink.Name = 2, string
const TAG_PBLINK_TSIZE = 0x18; // PBLink.Tsize = 3, varint
const TAG_UNIXFS_TYPE = 0x08; // Data.Type = 1, varint
const TAG_UNIXFS_FILESIZE = 0x18; // Data.filesize = 3, varint
const TAG_UNIXFS_BLOCKSIZES = 0x20; // Data.blocksizes = 4, varint, repeated, not packed (proto2)
const UNIXFS_TYPE_FILE = 2;
const EMPTY = new Uint8Array(0);

/**
 * The dag-pb bytes of a UnixFS file node over `links`, exactly as kubo writes them:
 *
 * - PBNode (dag-pb spec "Strictness"): all `Links` (field 2) first, in file order, then `Data`
 *   (field 1). Each PBLink: `Hash` (1), `Name` (2) present as the empty string, `Tsize` (3).
 * - Data, the UnixFS message (UnixFS spec "Data Format"): `Type` = File (2), `filesize`, then one
 *   `blocksizes` entry per link (file bytes under that child), and no `Data` field: raw leaves
 *   carry all the file bytes.
 */
function encodeFileNode(links: readonly PendingLink[]): { bytes: Uint8Array; fileSize: number; tsize: number } {
  let fileSize = 0;
  let childTsize = 0;
  const data: Uint8Array[] = [Uint8Array.of(TAG_UNIXFS_TYPE, UNIXFS_TYPE_FILE)];
  for (const l of links) fileSize += l.fileSize;
  data.push(Uint8Array.of(TAG_UNIXFS_FILESIZE), encodeVarint(fileSize));
  for (const l of links) data.push(Uint8Array.of(TAG_UNIXFS_BLOCKSIZES), encodeVarint(l.fileSize));
  const unixfs = concatBytes(...data);

  const parts: Uint8Array[] = [];
  for (const l of links) {
    childTsize += l.tsize;
    const link = concatBytes(
      Uint8Array.of(TAG_PBLINK_HASH),
      encodeVarint(l.cid.length),
      l.cid,
      Uint8Array.of(TAG_PBLINK_NAME, 0),
      Uint8Array.of(TAG_PBLINK_TSIZE),
      encodeVarint(l.tsize),
    );
    parts.push(Uint8Array.of(TAG_PBNODE_LINKS), encodeVarint(link.length), link);
  }
  parts.push(Uint8Array.of(TAG_PBNODE_DATA), encodeVarint(unixfs.length), unixfs);
  const bytes = concatBytes(...parts);
  // Tsize of a node = its own encoded size + the Tsize of everything below it (go-merkledag
  // ProtoNode.Size), which kubo's `ipfs add` reports as the DAG size.
  return { bytes, fileSize, tsize: bytes.length + childTsize };
}

function checkPositiveInt(value: number, min: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < min) fail('INVALID_ARGUMENT', `${name} must be an integer >= ${min}`);
  return value;
}

/**
 * Starts a streaming computation of a file's UnixFS CID, identical to
 * `ipfs add --cid-version 1 --raw-leaves --chunker size-1048576` (docs/design.md §2.1):
 *
 * - The file is cut into 1 MiB chunks (the last one shorter); each chunk is a raw block (codec
 *   0x55). A file of one chunk is just that raw block; an empty file is the raw block of no bytes.
 * - Otherwise kubo's balanced layout: consecutive groups of up to 174 leaves get a dag-pb parent,
 *   consecutive groups of up to 174 of those get a parent, and so on until one node is left, the
 *   root. Every leaf is at the same depth; only the last node of each level may be partly filled.
 *
 * It holds at most one chunk of file data plus up to 174 pending links per level of the tree
 * (about 7 KiB per level, 4 levels for a 1 TiB file), whatever the file size.
 *
 * @example
 * ```ts
 * const hasher = createUnixfsHasher({ onBlock: (b) => blocks.set(b.cid, b.bytes) });
 * for await (const piece of file.stream()) hasher.update(piece);
 * const { cid, size } = hasher.digest();
 * ```
 */
export function createUnixfsHasher(options: UnixfsHasherOptions = {}): UnixfsHasher {
  const chunkSize = checkPositiveInt(options.chunkSize ?? UNIXFS_CHUNK_SIZE, 1, 'chunkSize');
  const maxLinks = checkPositiveInt(options.maxLinks ?? UNIXFS_MAX_LINKS, 2, 'maxLinks');
  const onBlock = options.onBlock;
  const hash = options.sha256 ?? sha256;
  // levels[0] collects leaves, levels[1] collects parents of leaves, and so on.
  const levels: PendingLink[][] = [];
  let buffer = EMPTY; // allocated on first data: hashing an empty file allocates no chunk
  let fill = 0;
  let size = 0;
  let blockCount = 0;
  let done = false;

  function emit(codec: CidCodec, bytes: Uint8Array): Uint8Array {
    const digest = hash(bytes);
    if (!(digest instanceof Uint8Array) || digest.length !== 32)
      fail('INVALID_ARGUMENT', 'sha256 must return 32 bytes');
    const cid = cidToBytes(createCid(codec, digest));
    blockCount++;
    if (onBlock !== undefined) {
      try {
        onBlock({ cid: `b${toBase32(cid)}`, bytes });
      } catch (e) {
        done = true; // a block went missing from the store: no partial result may follow
        throw e;
      }
    }
    return cid;
  }

  function addLink(level: number, link: PendingLink): void {
    const links = levels[level] ?? [];
    levels[level] = links;
    links.push(link);
    // A full node is final at once: whatever comes next goes into its right sibling. This is
    // the same tree as kubo's depth-first fill and as ipfs-unixfs-importer's level-by-level
    // batching, built with only one partial node per level in memory.
    if (links.length === maxLinks) {
      levels[level] = [];
      addLink(level + 1, node(links));
    }
  }

  function node(links: readonly PendingLink[]): PendingLink {
    const { bytes, fileSize, tsize } = encodeFileNode(links);
    return { cid: emit(CODEC_DAG_PB, bytes), tsize, fileSize };
  }

  function flushLeaf(): void {
    let bytes = buffer.subarray(0, fill);
    if (onBlock !== undefined) {
      // A block handed to onBlock belongs to the receiver: give it the buffer itself and start a
      // new one when more data comes (no copy, and no spare 1 MiB once the file has ended).
      if (fill === buffer.length) buffer = EMPTY;
      else bytes = bytes.slice();
    }
    addLink(0, { cid: emit(CODEC_RAW, bytes), tsize: fill, fileSize: fill });
    fill = 0;
  }

  const hasher: UnixfsHasher = {
    update(data: Uint8Array): UnixfsHasher {
      if (done) fail('INVALID_ARGUMENT', 'UnixFS hasher already finished');
      if (!(data instanceof Uint8Array)) fail('INVALID_ARGUMENT', 'file data must be Uint8Array pieces');
      let o = 0;
      while (o < data.length) {
        if (buffer.length === 0) buffer = new Uint8Array(chunkSize);
        const n = Math.min(chunkSize - fill, data.length - o);
        buffer.set(data.subarray(o, o + n), fill);
        fill += n;
        o += n;
        if (fill === chunkSize) flushLeaf();
      }
      size += data.length;
      return hasher;
    },

    digest(): UnixfsDigest {
      if (done) fail('INVALID_ARGUMENT', 'UnixFS hasher already finished');
      done = true;
      // kubo: an empty file is one empty leaf (balanced.Layout, `db.Done()` at the start).
      if (fill > 0 || size === 0) flushLeaf();
      buffer = EMPTY;
      let root: PendingLink | undefined;
      for (let i = 0; root === undefined; i++) {
        const here = levels[i] ?? [];
        const higher = levels.slice(i + 1).some((l) => l.length > 0);
        if (!higher) {
          // The top level: one entry is the root itself (a single-chunk file stays a raw leaf,
          // a full node stays as it is); several get one more parent, the root.
          root = here.length === 1 ? (here[0] as PendingLink) : node(here);
        } else if (here.length > 0) {
          levels[i] = [];
          addLink(i + 1, node(here));
        }
      }
      return { cid: `b${toBase32(root.cid)}`, size, dagSize: root.tsize, blockCount };
    },
  };
  return hasher;
}

/** Options for {@link unixfsCidOf}. */
export interface UnixfsCidOptions {
  /**
   * Receives every block (children before parents, root last). A returned promise is awaited
   * before more input is read, so a slow store slows the reader down instead of filling memory.
   */
  onBlock?: (block: UnixfsBlock) => void | Promise<void>;
  /** See {@link UnixfsHasherOptions.chunkSize}. */
  chunkSize?: number;
  /** See {@link UnixfsHasherOptions.maxLinks}. */
  maxLinks?: number;
}

/** File content accepted by {@link unixfsCidOf}. */
export type UnixfsSource = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

/**
 * The UnixFS CID of a whole file (see {@link createUnixfsHasher}), from bytes, an (async)
 * iterable of byte pieces, or a web `ReadableStream` (a `fetch` body, `Blob.stream()`).
 *
 * @example
 * ```ts
 * const { cid } = await unixfsCidOf(new TextEncoder().encode('Hello Mars!\n'));
 * // 'bafkreibmlvvgdyihetgocpof6xk64kjjzdeq2e4c7hqs3krdheosk4tgj4'
 * ```
 */
export async function unixfsCidOf(source: UnixfsSource, options: UnixfsCidOptions = {}): Promise<UnixfsDigest> {
  const pending: UnixfsBlock[] = [];
  const sink = options.onBlock;
  const hasherOptions: UnixfsHasherOptions = {};
  if (options.chunkSize !== undefined) hasherOptions.chunkSize = options.chunkSize;
  if (options.maxLinks !== undefined) hasherOptions.maxLinks = options.maxLinks;
  if (sink !== undefined) hasherOptions.onBlock = (b) => pending.push(b);
  const hasher = createUnixfsHasher(hasherOptions);

  const drain = async (): Promise<void> => {
    if (sink === undefined) return;
    while (pending.length > 0) await sink(pending.shift() as UnixfsBlock);
  };

  if (source instanceof Uint8Array) {
    hasher.update(source);
  } else if (typeof (source as ReadableStream<Uint8Array>).getReader === 'function') {
    // getReader rather than async iteration: not every browser makes ReadableStream iterable.
    const reader = (source as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        hasher.update(value);
        await drain();
      }
    } finally {
      reader.releaseLock();
    }
  } else if (
    source !== null &&
    typeof source === 'object' &&
    (Symbol.asyncIterator in source || Symbol.iterator in source)
  ) {
    for await (const piece of source as AsyncIterable<Uint8Array>) {
      hasher.update(piece);
      await drain();
    }
  } else {
    fail('INVALID_ARGUMENT', 'file content must be bytes, an iterable of bytes or a ReadableStream');
  }
  const result = hasher.digest();
  await drain();
  return result;
}
