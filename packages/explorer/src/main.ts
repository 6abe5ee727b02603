/**
 * The explorer's shell: a hash router that loads each page on demand (its own chunk), so the
 * first load is this file and the page asked for.
 */
import { errorText, h, show } from './ui.js';

type Page = { render(args: string[]): Promise<void> };

const PAGES: Record<string, () => Promise<Page>> = {
  network: () => import('./pages/network.js'),
  model: () => import('./pages/model.js'),
  log: () => import('./pages/log.js'),
  receipt: () => import('./pages/receipt.js'),
  verify: () => import('./pages/verify.js'),
  playground: () => import('./pages/playground.js'),
};

let current = 0;

async function route(): Promise<void> {
  const [name = 'network', ...args] = location.hash
    .replace(/^#\/?/, '')
    .split('/')
    .map((s) => decodeURIComponent(s));
  const load = PAGES[name] ?? PAGES.network;
  document.querySelectorAll('header a').forEach((a) => {
    a.classList.toggle('on', a.getAttribute('href') === `#/${name}`);
  });
  const mine = ++current;
  document.title = `${name[0]?.toUpperCase()}${name.slice(1)} · Verity explorer`;
  try {
    const page = await (load as () => Promise<Page>)();
    if (mine === current) await page.render(args);
  } catch (e) {
    if (mine === current) show(h('p', { class: 'err' }, errorText(e)));
  }
}

addEventListener('hashchange', () => void route());
void route();
