/**
 * Model: the manifest, its CID recomputed here, the publisher's signature checked here, the name
 * as ModelRegistry maps it, the modes the model can be asked in, and its zk circuit facts.
 */
import { resolveModel } from '@verity/contracts';
import { manifestCid, verifySignedManifest, ZK_METADATA } from '@verity/protocol';
import { checkRow } from '../checks.js';
import { env } from '../env.js';
import { errorText, facts, h, show } from '../ui.js';

export async function render([ref]: string[]): Promise<void> {
  if (!ref) {
    show(
      h('h1', null, 'Model'),
      h('p', null, 'Pick a model on the ', h('a', { href: '#/network' }, 'Network'), ' page.'),
    );
    return;
  }
  const e = await env();
  show(h('h1', null, ref), h('p', { class: 'mut' }, 'Reading…'));
  let info: Awaited<ReturnType<typeof e.client.model>>;
  try {
    info = await e.client.model(ref);
  } catch (err) {
    show(h('h1', null, ref), h('p', { class: 'err' }, errorText(err)));
    return;
  }
  const m = info.manifest;
  const rows: HTMLElement[] = [];
  const cid = manifestCid(m);
  rows.push(
    checkRow(
      'Manifest CID',
      cid === info.id,
      cid === info.id ? `recomputed here: ${cid}` : `recomputed ${cid}, the node says ${info.id}`,
      'RESPONSE_INVALID',
    ),
  );
  try {
    verifySignedManifest({ manifest: m, signature: info.signature });
    rows.push(checkRow('Publisher signature', true, `signed by ${m.publisher} (EIP-191 over the CID)`));
  } catch (err) {
    rows.push(checkRow('Publisher signature', false, errorText(err), (err as { code?: string }).code));
  }
  if (e.chain) {
    try {
      const v = await resolveModel(e.chain.publicClient, {
        modelRegistry: e.chain.deployment.contracts.modelRegistry as `0x${string}`,
        name: m.name,
        version: m.version,
      });
      const same = v !== undefined && v.manifestCid === cid;
      rows.push(
        checkRow(
          'ModelRegistry',
          same,
          v === undefined
            ? `${m.name}@${m.version} is not published`
            : same
              ? `${m.name}@${m.version} maps to this CID, published by ${v.publisher} in block ${v.publishedAt}${v.deprecated ? ' (deprecated)' : ''}`
              : `${m.name}@${m.version} maps to another manifest: ${v.manifestCid}`,
          v === undefined ? 'MODEL_NOT_REGISTERED' : 'MODEL_CONFLICT',
        ),
      );
    } catch (err) {
      rows.push(checkRow('ModelRegistry', false, errorText(err), 'CHAIN_UNAVAILABLE'));
    }
  }
  const meta = m.metadata ?? {};
  const zk = Object.entries(meta).filter(([k]) => k.startsWith('zk.'));
  const other = Object.entries(meta).filter(([k]) => !k.startsWith('zk.'));
  const modes = ['signed', 'audited', ...(e.chain ? ['quorum'] : []), ...(meta[ZK_METADATA.vk] ? ['zk'] : [])];
  const sig = (list: typeof m.inputs) =>
    h(
      'table',
      null,
      h('tr', null, h('th', null, 'Name'), h('th', null, 'Type'), h('th', null, 'Shape')),
      ...list.map((t) =>
        h(
          'tr',
          null,
          h('td', { class: 'mono' }, t.name),
          h('td', null, t.dtype),
          h('td', null, `[${t.shape.join(', ')}]`),
        ),
      ),
    );
  show(
    h('h1', null, `${m.name}@${m.version}`),
    h('section', { id: 'checks' }, ...rows),
    h('h2', null, 'Manifest'),
    facts([
      ['Manifest CID', h('span', { class: 'mono' }, cid)],
      ['Format', m.format],
      ['Artifact', h('span', { class: 'mono' }, `${m.artifact.cid} (${m.artifact.size.toLocaleString()} bytes)`)],
      ['Publisher', h('span', { class: 'mono' }, m.publisher)],
      ['Created', m.createdAt],
      ['Profiles', m.profiles.join(', ')],
      ['Modes', modes.join(', ')],
      ['Price', priceText((info as { price?: unknown }).price)],
      ...(m.license ? [['License', m.license] as const] : []),
      ...(m.description ? [['Description', m.description] as const] : []),
      ...other.map(([k, v]) => [k, v] as const),
    ]),
    m.format === 'onnx' && [
      h('h2', null, 'Inputs'),
      h('div', { class: 'wrap' }, sig(m.inputs)),
      h('h2', null, 'Outputs'),
      h('div', { class: 'wrap' }, sig(m.outputs)),
    ],
    zk.length > 0
      ? [h('h2', null, 'zk circuit'), facts(zk.map(([k, v]) => [k.slice(3), h('span', { class: 'mono' }, v)] as const))]
      : h('p', { class: 'mut' }, 'No zk circuit: this model answers in signed, audited and quorum modes.'),
    m.format === 'onnx' &&
      h(
        'p',
        null,
        h('a', { href: `#/playground/${encodeURIComponent(`${m.name}@${m.version}`)}` }, 'Run it in the playground →'),
      ),
  );
}

/**
 * A model's price as the node states it in `/v1/models` (`price`; absent: free): per request
 * (ONNX, scheme `exact`) or per input and output token (language models, scheme `metered`), in
 * the token's atomic units. The node's word: what a client pays is what it signs, never more.
 */
export function priceText(price: unknown): string {
  if (typeof price !== 'object' || price === null) return 'free';
  const p = price as {
    request?: unknown;
    inputToken?: unknown;
    outputToken?: unknown;
    asset?: unknown;
    token?: unknown;
    network?: unknown;
  };
  const token = typeof p.asset === 'string' ? p.asset : typeof p.token === 'string' ? p.token : undefined;
  const where = `${token === undefined ? '' : ` of token ${token}`}${typeof p.network === 'string' ? ` on ${p.network}` : ''}`;
  if (typeof p.request === 'string') return `${p.request} atomic units per request${where} (x402 exact)`;
  if (typeof p.inputToken === 'string' || typeof p.outputToken === 'string') {
    return `${String(p.inputToken ?? '0')} per input token, ${String(p.outputToken ?? '0')} per output token (atomic units${where}; x402 metered: the most a request can cost is authorized, the tokens served charged)`;
  }
  return 'priced (a form this page does not read)';
}
