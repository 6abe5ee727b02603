/**
 * Log: a node's signed checkpoint (its signature checked here), its latest entries decoded from
 * the C2SP tiles, and, for an entry, its inclusion proof built here from the hash tiles and
 * checked against the signed root.
 */
import {
  decodeRecord,
  equalBytes,
  hashChildren,
  hashLeaf,
  type InferenceRecord,
  inclusionProofFromReader,
  type MerkleHashReader,
  openCheckpoint,
  parseVerifierKey,
  rootFromReader,
  toHex,
  verifyInclusion,
} from '@verity/protocol';
import { checkRow } from '../checks.js';
import { env } from '../env.js';
import { errorText, facts, h, short, show } from '../ui.js';

const TILE = 256;

/** The C2SP tile index path: groups of three digits, all but the last prefixed with `x`. */
export function tileIndexPath(n: number): string {
  const digits = String(n).padStart(3, '0');
  const groups: string[] = [];
  for (let end = digits.length; end > 0; end -= 3)
    groups.unshift(digits.slice(Math.max(0, end - 3), end).padStart(3, '0'));
  return groups.map((g, i) => (i < groups.length - 1 ? `x${g}` : g)).join('/');
}

const tilePath = (kind: string, n: number, width: number) =>
  `/tile/${kind}/${tileIndexPath(n)}${width < TILE ? `.p/${width}` : ''}`;

async function bytes(url: string): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** The entries of an entry bundle: u16 big-endian length, then the bytes, each. */
function splitBundle(b: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let p = 0; p < b.length; ) {
    const n = ((b[p] as number) << 8) | (b[p + 1] as number);
    out.push(b.subarray(p + 2, p + 2 + n));
    p += 2 + n;
  }
  return out;
}

export async function render([endpoint]: string[]): Promise<void> {
  const e = await env();
  const base = (endpoint || e.url).replace(/\/+$/, '');
  show(h('h1', null, 'Log'), h('p', { class: 'mut' }, `Reading ${base}…`));
  try {
    const [note, info] = await Promise.all([
      fetch(`${base}/v1/log/checkpoint`).then((r) => r.text()),
      fetch(`${base}/v1/node`).then((r) => r.json() as Promise<{ address: string; logKey: string }>),
    ]);
    // The key to check the checkpoint with: the registry's entry for the node when there is a chain.
    let logKey = info.logKey;
    let keyFrom = 'the key the node reports (no chain to check it against)';
    if (e.chain) {
      const trust = await e.client.trust();
      const entry = trust.registry?.nodes.find((n) => n.address.toLowerCase() === info.address.toLowerCase());
      if (entry) {
        logKey = entry.logKey;
        keyFrom = `NodeRegistry at block ${trust.registry?.block.number}`;
      } else keyFrom = 'the key the node reports: it is NOT in the registry';
    }
    const rows: HTMLElement[] = [];
    let cp: ReturnType<typeof openCheckpoint>['checkpoint'] | undefined;
    try {
      const verifier = parseVerifierKey(logKey);
      cp = openCheckpoint(note, [verifier], verifier.name).checkpoint;
      rows.push(checkRow('Checkpoint signature', true, `size ${cp.size}, signed under ${keyFrom}`));
    } catch (err) {
      rows.push(checkRow('Checkpoint signature', false, errorText(err), (err as { code?: string }).code));
    }
    const entries = h('section', { id: 'entries' });
    const proof = h('section', { id: 'proof' });
    show(
      h('h1', null, 'Log of ', h('span', { class: 'mono' }, short(info.address, 6))),
      facts([
        ['Node', h('span', { class: 'mono' }, info.address)],
        ['Endpoint', base],
        ['Size', cp ? String(cp.size) : '?'],
        ['Root', cp ? h('span', { class: 'mono' }, toHex(cp.rootHash)) : '?'],
      ]),
      h('section', { id: 'checks' }, ...rows),
      h('h2', null, 'Checkpoint'),
      h('pre', null, note),
      entries,
      proof,
    );
    if (!cp || cp.size === 0) return;
    const checkpoint = cp;
    // The latest tile's entries (up to 256), newest first.
    const n = Math.floor((checkpoint.size - 1) / TILE);
    const width = checkpoint.size - n * TILE;
    const raw = splitBundle(await bytes(`${base}${tilePath('entries', n, width)}`));
    const decoded = raw.map((b, i) => ({ index: n * TILE + i, bytes: b, record: decodeRecord(b) }));
    const shown = decoded.slice(-20).reverse();
    const prove = (entry: { index: number; bytes: Uint8Array; record: InferenceRecord }) =>
      void proveInclusion(base, checkpoint, entry, proof);
    entries.replaceChildren(
      h('h2', null, `Latest entries (${shown.length} of ${checkpoint.size})`),
      h(
        'div',
        { class: 'wrap' },
        h(
          'table',
          null,
          h('tr', null, ...['#', 'Request', 'Kind', 'Mode', 'Model', 'Time', ''].map((t) => h('th', null, t))),
          ...shown.map((entry) =>
            h(
              'tr',
              { 'data-leaf': entry.index },
              h('td', null, String(entry.index)),
              h(
                'td',
                null,
                h(
                  'a',
                  { href: `#/receipt/${encodeURIComponent(entry.record.requestId)}`, class: 'mono' },
                  short(entry.record.requestId, 6),
                ),
              ),
              h('td', null, entry.record.kind),
              h('td', null, entry.record.mode),
              h(
                'td',
                null,
                h('a', { href: `#/model/${entry.record.model}`, class: 'mono' }, short(entry.record.model, 6)),
              ),
              h('td', null, new Date(entry.record.timestamp).toISOString().replace('T', ' ').slice(0, 19)),
              h('td', null, h('button', { onclick: () => prove(entry) }, 'Prove')),
            ),
          ),
        ),
      ),
    );
    if (shown[0]) prove(shown[0]);
  } catch (err) {
    show(h('h1', null, 'Log'), h('p', { class: 'err' }, errorText(err)));
  }
}

/** A tile the reader needs and does not hold yet. */
class MissingTile {
  constructor(
    readonly level: number,
    readonly index: number,
  ) {}
}

/**
 * The tree's hashes as the node's C2SP tiles hold them (tile level L holds the subtrees of tree
 * level 8L), fetched as the protocol's proof functions ask for them: a run that needs a tile not
 * held yet fetches it and starts again.
 */
function tileHashes(base: string, size: number) {
  const tiles = new Map<string, Uint8Array>();
  const reader: MerkleHashReader = {
    subtree(level: number, index: number): Uint8Array {
      if (level % 8 !== 0) {
        return hashChildren(reader.subtree(level - 1, 2 * index), reader.subtree(level - 1, 2 * index + 1));
      }
      const tile = tiles.get(`${level / 8}/${Math.floor(index / TILE)}`);
      if (tile === undefined) throw new MissingTile(level / 8, Math.floor(index / TILE));
      const at = (index % TILE) * 32;
      if (at + 32 > tile.length) throw new Error(`tile ${level / 8}/${Math.floor(index / TILE)} is too short`);
      return tile.subarray(at, at + 32);
    },
  };
  return async <T>(run: (r: MerkleHashReader) => T): Promise<T> => {
    for (;;) {
      try {
        return run(reader);
      } catch (e) {
        if (!(e instanceof MissingTile)) throw e;
        // Complete subtrees at this level, and so the width of the tile asked for.
        const count = Math.floor(size / TILE ** e.level);
        const width = Math.min(TILE, count - e.index * TILE);
        tiles.set(`${e.level}/${e.index}`, await bytes(`${base}${tilePath(String(e.level), e.index, width)}`));
      }
    }
  };
}

/**
 * The entry's inclusion in the signed tree, recomputed here from the node's tiles: its leaf hash
 * from its bytes (and found in the hash tile), the tree's root from the tiles (equal to the signed
 * root), and its inclusion proof built from the tiles and checked against the signed root.
 */
async function proveInclusion(
  base: string,
  checkpoint: { size: number; rootHash: Uint8Array },
  entry: { index: number; bytes: Uint8Array },
  out: HTMLElement,
): Promise<void> {
  const rows: HTMLElement[] = [];
  const leaf = hashLeaf(entry.bytes);
  const { size, rootHash } = checkpoint;
  try {
    const withTiles = tileHashes(base, size);
    const inTile = equalBytes(await withTiles((r) => r.subtree(0, entry.index)), leaf);
    rows.push(
      checkRow(
        'Leaf hash',
        inTile,
        inTile
          ? `SHA-256(0x00 ‖ entry) = ${toHex(leaf)}, as in the hash tile`
          : 'the hash tile holds another leaf hash',
        'LOG_CORRUPT',
      ),
    );
    const root = await withTiles((r) => rootFromReader(r, size));
    const same = equalBytes(root, rootHash);
    rows.push(
      checkRow(
        'Tiles root',
        same,
        same
          ? `the tiles hash to the signed root of size ${size}`
          : `the tiles hash to ${toHex(root)}, not the signed root`,
        'LOG_CORRUPT',
      ),
    );
    const proof = await withTiles((r) => inclusionProofFromReader(r, entry.index, size));
    try {
      verifyInclusion(leaf, entry.index, size, proof, rootHash);
      rows.push(
        checkRow(
          'Inclusion proof',
          true,
          `built here from the tiles (${proof.length} hashes): leaf ${entry.index} leads to the signed root of size ${size}`,
        ),
      );
    } catch (err) {
      rows.push(checkRow('Inclusion proof', false, errorText(err), (err as { code?: string }).code));
    }
  } catch (err) {
    rows.push(checkRow('Inclusion proof', false, errorText(err), 'NETWORK_ERROR'));
  }
  out.replaceChildren(h('h2', null, `Entry ${entry.index}`), h('div', { id: 'proof-checks' }, ...rows));
}
