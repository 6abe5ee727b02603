/**
 * Log: a node's signed checkpoint (its signature checked here), its latest entries decoded from
 * the C2SP tiles, and, for an entry, its inclusion proof checked here against the signed root
 * (the leaf hash recomputed from the entry's bytes, and found in the hash tile).
 */
import {
  decodeRecord,
  equalBytes,
  fromHex,
  hashLeaf,
  type InferenceRecord,
  openCheckpoint,
  parseVerifierKey,
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
      void proveInclusion(base, checkpoint, entry, n, width, proof);
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

/** The entry's inclusion in the signed tree: leaf hash recomputed, found in the hash tile, proof checked. */
async function proveInclusion(
  base: string,
  checkpoint: { size: number; rootHash: Uint8Array },
  entry: { index: number; bytes: Uint8Array },
  tile: number,
  width: number,
  out: HTMLElement,
): Promise<void> {
  const rows: HTMLElement[] = [];
  const leaf = hashLeaf(entry.bytes);
  try {
    const hashes = await bytes(`${base}${tilePath('0', tile, width)}`);
    const at = (entry.index % TILE) * 32;
    const inTile = equalBytes(hashes.subarray(at, at + 32), leaf);
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
    const r = await fetch(`${base}/v1/log/proof?index=${entry.index}&size=${checkpoint.size}`);
    const { proof } = (await r.json()) as { proof: string[] };
    try {
      verifyInclusion(leaf, entry.index, checkpoint.size, proof.map(fromHex), checkpoint.rootHash);
      rows.push(
        checkRow(
          'Inclusion proof',
          true,
          `leaf ${entry.index} leads to the signed root of size ${checkpoint.size} (${proof.length} hashes, checked here)`,
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
