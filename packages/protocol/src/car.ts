/**
 * CARv1 framing and dag-pb link reading, written by hand on `Uint8Array` (no Node built-ins): the
 * node's model store writes and reads CARs with it, and a page re-executing a model reads one.
 *
 * CARv1 (https://ipld.io/specs/transport/car/carv1/): a header, then one section per block.
 *
 * ```
 * car     = varint(len(header)) ‖ header ‖ section*
 * header  = DAG-CBOR {"roots": [CID, …], "version": 1}
 * section = varint(len(cid) + len(block)) ‖ cid ‖ block        (cid in binary form)
 * ```
 *
 * Served by `GET /ipfs/:cid` as `application/vnd.ipld.car` per the IPFS trustless gateway spec
 * (https://specs.ipfs.tech/http-gateways/trustless-gateway/).
 */
import { concatBytes, equalBytes } from './bytes.js';
import {
  blockMatchesCid,
  CODEC_DAG_PB,
  cidFromBytes,
  cidToBytes,
  decodeVarint,
  encodeVarint,
  formatCid,
  parseCid,
  UNIXFS_CHUNK_SIZE,
} from './cid.js';
import { fail } from './errors.js';

/** The CAR media type with the parameters Verity's CAR streams have (IPIP-0412): DFS order, no duplicates. */
export const CAR_CONTENT_TYPE = 'application/vnd.ipld.car; version=1; order=dfs; dups=n';
/** The same, for a stream asked for with duplicates (`dups=y`). */
export const CAR_CONTENT_TYPE_DUPS = 'application/vnd.ipld.car; version=1; order=dfs; dups=y';

const utf8 = new TextEncoder();

/** A CBOR major type 2/3 (byte/text string) head for lengths below 256 (RFC 8949 §3). */
function cborStringHead(major: 2 | 3, length: number): Uint8Array {
  if (length < 24) return Uint8Array.of((major << 5) | length);
  if (length < 256) return Uint8Array.of((major << 5) | 24, length);
  return fail('INVALID_ARGUMENT', 'CBOR string too long for the CAR header encoder');
}

function cborText(text: string): Uint8Array {
  const bytes = utf8.encode(text);
  return concatBytes(cborStringHead(3, bytes.length), bytes);
}

/**
 * The CARv1 header for one root: `varint(len) ‖ DAG-CBOR {"roots":[root],"version":1}`.
 *
 * DAG-CBOR (https://ipld.io/specs/codecs/dag-cbor/spec/): map keys sorted by length, then bytes
 * (`roots` before `version`); a CID is tag 42 over a byte string holding 0x00 (the identity
 * multibase prefix) followed by the binary CID.
 *
 * @example
 * ```ts
 * carHeader('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'); // 0x3a a2 65 'roots' 81 d8 2a 58 25 00 01 55 …
 * ```
 */
export function carHeader(root: string): Uint8Array {
  const cid = cidToBytes(parseCid(root));
  const header = concatBytes(
    Uint8Array.of(0xa2), // map(2)
    cborText('roots'),
    Uint8Array.of(0x81, 0xd8, 0x2a), // array(1), tag(42)
    cborStringHead(2, cid.length + 1),
    Uint8Array.of(0x00),
    cid,
    cborText('version'),
    Uint8Array.of(0x01), // unsigned(1)
  );
  return concatBytes(encodeVarint(header.length), header);
}

/**
 * The bytes that go before a block in a CAR section: `encodeVarint(len(cid) + len(block)) ‖ cid`.
 * Writing the block itself separately saves copying megabyte leaves.
 *
 * @example
 * ```ts
 * yield carSectionPrefix(cid, block.length); yield block;
 * ```
 */
export function carSectionPrefix(cid: string, blockLength: number): Uint8Array {
  const bytes = cidToBytes(parseCid(cid));
  return concatBytes(encodeVarint(bytes.length + blockLength), bytes);
}

/** Reads a protobuf varint (at most 2^53 − 1) at `o`; malformed input is `ENCODING_INVALID`. */
function readVarint(bytes: Uint8Array, o: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let i = o; i < o + 8; i++) {
    const b = bytes[i];
    if (b === undefined) break;
    value += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return [value, i + 1];
    scale *= 0x80;
  }
  return fail('ENCODING_INVALID', 'dag-pb: bad varint', { offset: o });
}

/** Skips one protobuf field of `wireType` whose tag ended at `o`; returns the next offset. */
function skipField(bytes: Uint8Array, wireType: number, o: number): number {
  if (wireType === 0) return readVarint(bytes, o)[1];
  if (wireType === 2) {
    const [len, start] = readVarint(bytes, o);
    if (start + len > bytes.length) fail('ENCODING_INVALID', 'dag-pb: field runs past the end');
    return start + len;
  }
  return fail('ENCODING_INVALID', 'dag-pb: unexpected wire type', { wireType });
}

/**
 * The CIDs a dag-pb node links to, in link order (dag-pb spec: `PBNode.Links` is field 2, each
 * `PBLink.Hash` field 1, a binary CID). The DAG walk of a CAR stream needs nothing else.
 *
 * @example
 * ```ts
 * dagPbLinks(rootBlock); // ['bafkrei…', 'bafkrei…', …]
 * ```
 */
export function dagPbLinks(node: Uint8Array): string[] {
  const links: string[] = [];
  let o = 0;
  while (o < node.length) {
    const [tag, afterTag] = readVarint(node, o);
    if (tag === 0x12) {
      const [len, start] = readVarint(node, afterTag);
      const end = start + len;
      if (end > node.length) fail('ENCODING_INVALID', 'dag-pb: link runs past the end');
      let hash: Uint8Array | undefined;
      for (let p = start; p < end; ) {
        const [linkTag, afterLinkTag] = readVarint(node, p);
        if (linkTag === 0x0a) {
          const [hashLen, hashStart] = readVarint(node, afterLinkTag);
          if (hashStart + hashLen > end) fail('ENCODING_INVALID', 'dag-pb: hash runs past its link');
          hash = node.subarray(hashStart, hashStart + hashLen);
          p = hashStart + hashLen;
        } else {
          p = skipField(node, linkTag & 7, afterLinkTag);
        }
        if (p > end) fail('ENCODING_INVALID', 'dag-pb: field runs past its link');
      }
      if (hash === undefined) fail('ENCODING_INVALID', 'dag-pb: link without a hash');
      links.push(formatCid(cidFromBytes(hash)));
      o = end;
    } else {
      o = skipField(node, tag & 7, afterTag);
    }
  }
  return links;
}

/** Whether a CID text names a dag-pb block (the only codec among Verity's that has links). */
export function isDagPb(cid: string): boolean {
  return parseCid(cid).codec === CODEC_DAG_PB;
}

/** One block read from a CAR: its CID (text) and bytes, already checked against each other. */
export interface CarBlock {
  readonly cid: string;
  readonly bytes: Uint8Array;
}

/**
 * Reads a CARv1 stream block by block, checking every block against its CID as it arrives
 * (`CID_INVALID` when one does not match, `ENCODING_INVALID` for a malformed stream), so a
 * lying peer is caught at its first bad block. The header must name exactly `root`.
 * `maxBlock` bounds a section's length (a peer cannot make us buffer more).
 *
 * @example
 * ```ts
 * for await (const { cid, bytes } of readCar(response.body, root)) …
 * ```
 */
export async function* readCar(
  source: AsyncIterable<Uint8Array>,
  root: string,
  maxBlock = 2 * UNIXFS_CHUNK_SIZE,
  /** The SHA-256 to check blocks with (default the portable one; a node passes `node:crypto`'s). */
  sha256?: (bytes: Uint8Array) => Uint8Array,
): AsyncGenerator<CarBlock> {
  let buf: Uint8Array = new Uint8Array(0);
  let headerSeen = false;
  const it = source[Symbol.asyncIterator]();
  let done = false;
  // Makes sure `n` bytes are buffered; false at a clean end of stream.
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n && !done) {
      const r = await it.next();
      if (r.done) done = true;
      else buf = buf.length === 0 ? r.value : concatBytes(buf, r.value);
    }
    return buf.length >= n;
  };
  const varint = async (): Promise<number | undefined> => {
    if (!(await fill(1))) return undefined;
    await fill(Math.min(9, buf.length + 9));
    const { value, length } = decodeVarint(buf.subarray(0, Math.min(9, buf.length)));
    buf = buf.subarray(length);
    return value;
  };
  for (;;) {
    const len = await varint();
    if (len === undefined) break;
    if (len > maxBlock + 64) fail('ENCODING_INVALID', 'a CAR section is too long', { length: len });
    if (!(await fill(len))) fail('ENCODING_INVALID', 'the CAR stream ends inside a section');
    const section = buf.subarray(0, len);
    buf = buf.subarray(len);
    if (!headerSeen) {
      headerSeen = true;
      if (!equalBytes(concatBytes(encodeVarint(len), section), carHeader(root))) {
        fail('ENCODING_INVALID', 'the CAR header does not name the requested root', { root });
      }
      continue;
    }
    // A section starts with a binary CIDv1: version, codec, hash code, digest length (varints),
    // then the digest; the block follows.
    let o = 0;
    let digestLength = 0;
    for (let i = 0; i < 4; i++) {
      const v = decodeVarint(section, o);
      o += v.length;
      digestLength = v.value;
    }
    const cid = cidFromBytes(section.subarray(0, o + digestLength));
    const bytes = section.slice(o + digestLength);
    const text = formatCid(cid);
    const matches = sha256 === undefined ? blockMatchesCid(cid, bytes) : equalBytes(sha256(bytes), cid.digest);
    if (!matches) fail('CID_INVALID', 'a block does not match its CID', { cid: text });
    yield { cid: text, bytes };
  }
  if (!headerSeen) fail('ENCODING_INVALID', 'the CAR stream is empty');
}
