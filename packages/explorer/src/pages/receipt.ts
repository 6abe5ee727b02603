/** Receipt: look a request id up on the node, and verify its receipt here, every check a row. */
import type { Receipt } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { checkBundle, renderChecked } from '../checks.js';
import { type Env, env } from '../env.js';
import { reexecSection } from '../reexec.js';
import { errorText, facts, h, show } from '../ui.js';
import { HANDOFF_KEY } from './verify.js';

export async function render([id]: string[]): Promise<void> {
  const input = h('input', { id: 'request-id', size: 40, placeholder: 'request id', value: id ?? '' });
  const go = () => {
    location.hash = `#/receipt/${encodeURIComponent(input.value.trim())}`;
  };
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter') go();
  });
  const out = h('div', { id: 'result' });
  show(h('h1', null, 'Receipt'), h('p', null, input, ' ', h('button', { onclick: go }, 'Look up')), out);
  if (!id) return;
  const e = await env();
  out.replaceChildren(h('p', { class: 'mut' }, 'Fetching…'));
  try {
    const { receipt, from } = await findReceipt(e, id);
    const r = receipt.record;
    const checked = await checkBundle(e, receipt);
    out.replaceChildren(
      facts([
        ['Request', h('span', { class: 'mono' }, r.requestId)],
        ['Found at', from],
        ['Node', h('a', { href: '#/log', class: 'mono' }, r.node)],
        ['Model', h('a', { href: `#/model/${r.model}`, class: 'mono' }, r.model)],
        ['Kind, mode', `${r.kind}, ${r.mode}`],
        ['Runtime', `${r.runtime.id} ${r.runtime.version} (${r.runtime.profile})`],
        ['Input digest', h('span', { class: 'mono' }, r.inputDigest)],
        ['Output digest', h('span', { class: 'mono' }, r.outputDigest)],
        ['Time', new Date(r.timestamp).toISOString()],
        ['Leaf', String(receipt.leafIndex)],
        ...paymentFacts(receipt),
      ]),
      renderChecked(checked),
      reexecSection(e.url, { receipts: [receipt] }, from) ?? '',
      h(
        'p',
        { class: 'mut' },
        'A receipt alone carries digests, not the input and output: paste the bundle on the ',
        h(
          'a',
          {
            href: '#/verify',
            onclick: () => sessionStorage.setItem(HANDOFF_KEY, JSON.stringify(receipt, null, 2)),
          },
          'Verify',
        ),
        ' page to check them too.',
      ),
      h('h2', null, 'Receipt'),
      h('pre', null, JSON.stringify(receipt, null, 2)),
    );
  } catch (err) {
    out.replaceChildren(h('p', { class: 'err' }, errorText(err)));
  }
}

/**
 * The receipt from this node, else (on a chain) from the other registered nodes in turn: a
 * request id names a record of the log of the node that answered it. Where it came from does not
 * matter to its verification.
 */
async function findReceipt(e: Env, id: string): Promise<{ receipt: Receipt; from: string }> {
  try {
    return { receipt: await e.client.getReceipt(id), from: e.url };
  } catch (err) {
    if ((err as { code?: string }).code !== 'RECEIPT_NOT_FOUND' || !e.chain) throw err;
    const trust = await e.client.trust();
    for (const n of trust.registry?.nodes ?? []) {
      if (!/^https?:\/\//.test(n.endpoint) || n.endpoint.replace(/\/+$/, '') === e.url) continue;
      try {
        return {
          receipt: await createClient({ url: n.endpoint }).getReceipt(id),
          from: n.endpoint,
        };
      } catch {
        // Not there (or down): the next node.
      }
    }
    throw err;
  }
}

/**
 * A paid record's payment, next to the record that commits to it: the amount charged and the
 * authorization's digest (from the record, signed into the log), who paid whom with which token
 * (from the authorization the receipt carries; the Payment check above recomputes the digest
 * from it and recovers the payer).
 */
export function paymentFacts(receipt: Receipt): [string, HTMLElement | string][] {
  const committed = (receipt.record as { payment?: { digest: string; amount: string } }).payment;
  if (committed === undefined) return [['Payment', 'none (a free request)']];
  const carried = (
    receipt as {
      payment?: {
        scheme: string;
        network: string;
        asset: string;
        name: string;
        authorization: { from: string; to: string; value: string };
      };
    }
  ).payment;
  const mono = (text: string) => h('span', { class: 'mono' }, text);
  return [
    [
      'Payment',
      carried === undefined
        ? `${committed.amount} atomic units`
        : `${committed.amount} atomic units of ${carried.name} (${carried.scheme}${carried.scheme === 'metered' ? `, ${carried.authorization.value} authorized` : ''})`,
    ],
    ...(carried === undefined
      ? []
      : ([
          ['Payer', mono(carried.authorization.from)],
          // exact: the authorization pays the node; metered: the settlement contract, for the node.
          ['Payee', mono(carried.scheme === 'metered' ? receipt.record.node : carried.authorization.to)],
          ['Token', mono(`${carried.asset} on ${carried.network}`)],
        ] as [string, HTMLElement][])),
    ['Payment digest', mono(committed.digest)],
  ];
}
