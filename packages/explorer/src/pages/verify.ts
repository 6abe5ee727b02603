/** Verify: paste or drop a bundle (or a receipt); every check is a row. */
import { checkBundle, renderChecked } from '../checks.js';
import { env } from '../env.js';
import { h, show } from '../ui.js';

/** A bundle handed over by another page (the Receipt page, the playground). */
export const HANDOFF_KEY = 'verity.explorer.bundle';

export async function render(): Promise<void> {
  const text = h('textarea', {
    id: 'bundle',
    placeholder: 'Paste a bundle (verity infer --out bundle.json) or a receipt, or drop a file here',
    spellcheck: false,
  });
  const out = h('div', { id: 'result' });
  const run = async () => {
    out.replaceChildren(h('p', { class: 'mut' }, 'Verifying…'));
    const t0 = performance.now();
    const checked = await checkBundle(await env(), text.value);
    out.replaceChildren(
      renderChecked(checked),
      h('p', { class: 'mut' }, `checked in ${Math.round(performance.now() - t0)} ms, in this browser`),
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
    out,
  );
  const handed = sessionStorage.getItem(HANDOFF_KEY);
  if (handed) {
    sessionStorage.removeItem(HANDOFF_KEY);
    text.value = handed;
    await run();
  }
}
