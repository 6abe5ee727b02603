/**
 * Serving the store's blocks (the IPFS trustless gateway, peers fetching a model): a block's bytes
 * are checked against its CID before they leave the store, and a DAG goes out as a CARv1 stream,
 * depth first.
 */
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import {
  type Cid,
  CODEC_DAG_PB,
  carHeader,
  carSectionPrefix,
  dagPbLinks,
  equalBytes,
  parseCid,
} from '@verity/protocol';
import { corrupt } from './store-layout.js';

/** `bytes` if they hash to `cid` (parsed); never serves a block that rotted or was edited by hand. */
export function checkedBlock(cid: string, parsed: Cid, bytes: Uint8Array): Uint8Array {
  if (!equalBytes(createHash('sha256').update(bytes).digest(), parsed.digest)) {
    corrupt('stored block does not match its CID', { cid });
  }
  return bytes;
}

/** `length` bytes at `offset` of the file at `path` (a raw leaf of an artifact). */
export async function readRange(path: string, offset: number, length: number): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const handle = await open(path, 'r');
  try {
    for (let o = 0; o < length; ) {
      const { bytesRead } = await handle.read(out, o, length - o, offset + o);
      if (bytesRead === 0) corrupt('artifact file is shorter than its index', { path });
      o += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return out;
}

/**
 * The DAG rooted at `cid` as a CARv1 stream: header, then every block (`getBlock`), depth first,
 * root first; each block once, or each time the walk meets it with `dups`.
 */
export function carStream(
  cid: string,
  getBlock: (cid: string) => Promise<Uint8Array>,
  dups: boolean,
): AsyncIterable<Uint8Array> {
  return (async function* walk() {
    yield carHeader(cid);
    const seen = new Set<string>();
    const stack = [cid];
    for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
      if (!dups) {
        if (seen.has(next)) continue;
        seen.add(next);
      }
      const block = await getBlock(next);
      yield carSectionPrefix(next, block.length);
      yield block;
      if (parseCid(next).codec === CODEC_DAG_PB) {
        const links = dagPbLinks(block);
        for (let i = links.length - 1; i >= 0; i--) stack.push(links[i] as string);
      }
    }
  })();
}
