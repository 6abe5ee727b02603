/** Verify: paste or drop a bundle (or a receipt); every check is a row. */
import { checkBundle, type ExtraTrust, renderChecked } from '../checks.js';
import { env } from '../env.js';
import { reexecSection } from '../reexec.js';
import { errorText, h, show } from '../ui.js';

/** A bundle handed over by another page (the Receipt page, the playground). */
export const HANDOFF_KEY = 'verity.explorer.bundle';

export async function render(): Promise<void> {
  const text = h('textarea', {
    id: 'bundle',
    placeholder: 'Paste a bundle (verity infer --out bundle.json), a receipt or a chat answer, or drop a file here',
    spellcheck: false,
  });
  const out = h('div', { id: 'result' });
  const pinned = h('textarea', {
    id: 'pinned',
    rows: 3,
    placeholder: '[{ "address": "0x…", "logKey": "<origin>+<keyid>+<key>" }]',
    spellcheck: false,
  });
  const audits = h('textarea', {
    id: 'zk-audits',
    rows: 3,
    placeholder: '[ audit records (verity zk audit) ]',
    spellcheck: false,
  });
  const localDev = h('input', { id: 'local-dev', type: 'checkbox' });
  const witnessKeys = h('textarea', {
    id: 'witness-keys',
    rows: 3,
    placeholder: 'witness keys (<name>+<keyid>+<key>), one a line',
    spellcheck: false,
  });
  const threshold = h('input', { id: 'witness-threshold', type: 'number', min: 1, value: 1, size: 4 });
  const options = h(
    'details',
    null,
    h('summary', { class: 'mut' }, 'Trust options'),
    h('p', { class: 'mut' }, 'Node keys pinned by hand (trusted whatever the registry says):'),
    pinned,
    h(
      'p',
      { class: 'mut' },
      'Witness policy: every checkpoint cosigned by at least ',
      threshold,
      ' of these witnesses:',
    ),
    witnessKeys,
    h('p', { class: 'mut' }, 'zk: audit records of verification keys you accept:'),
    audits,
    h(
      'p',
      null,
      h(
        'label',
        null,
        localDev,
        ' accept zk keys from a local-dev setup (development only: its maker could forge proofs)',
      ),
    ),
  );
  const parseList = (t: HTMLTextAreaElement) => (t.value.trim() === '' ? undefined : (JSON.parse(t.value) as never[]));
  const run = async () => {
    out.replaceChildren(h('p', { class: 'mut' }, 'Verifying…'));
    const t0 = performance.now();
    let extra: ExtraTrust;
    try {
      const nodes = parseList(pinned);
      const zkAudits = parseList(audits);
      const keys = witnessKeys.value
        .split('\n')
        .map((k) => k.trim())
        .filter((k) => k !== '');
      extra = {
        ...(nodes ? { nodes } : {}),
        ...(zkAudits ? { zkAudits } : {}),
        ...(localDev.checked ? { acceptLocalDevSetup: true } : {}),
        ...(keys.length > 0 ? { witnesses: { keys, threshold: Number(threshold.value) } } : {}),
      };
    } catch (e) {
      out.replaceChildren(h('p', { class: 'err' }, `Trust options: ${errorText(e)}`));
      return;
    }
    const e = await env();
    const checked = await checkBundle(e, text.value, extra);
    let value: unknown;
    try {
      value = JSON.parse(text.value);
    } catch {
      // The JSON row says so.
    }
    out.replaceChildren(
      renderChecked(checked),
      h('p', { class: 'mut' }, `checked in ${Math.round(performance.now() - t0)} ms, in this browser`),
      reexecSection(e.url, value) ?? '',
    );
  };
  const drop = h(
    'div',
    {
      class: 'drop',
      ondragover: (e: DragEvent) => {
        e.preventDefault();
        drop.classList.add('over');
      },
      ondragleave: () => drop.classList.remove('over'),
      ondrop: async (e: DragEvent) => {
        e.preventDefault();
        drop.classList.remove('over');
        const file = e.dataTransfer?.files[0];
        if (file) {
          text.value = await file.text();
          void run();
        }
      },
    },
    text,
  );
  const file = h('input', {
    type: 'file',
    accept: '.json,application/json',
    onchange: async () => {
      const f = file.files?.[0];
      if (f) {
        text.value = await f.text();
        void run();
      }
    },
  });
  show(
    h('h1', null, 'Verify a bundle'),
    h(
      'p',
      { class: 'mut' },
      'Checked here, in your browser, against the registry on chain at the block the bundle names: nothing is taken from the node on trust.',
    ),
    drop,
    h('p', null, h('button', { id: 'verify', onclick: () => void run() }, 'Verify'), ' ', file),
    options,
    out,
  );
  const handed = sessionStorage.getItem(HANDOFF_KEY);
  if (handed) {
    sessionStorage.removeItem(HANDOFF_KEY);
    text.value = handed;
    await run();
  }
}
