/** Tiny DOM helpers: no framework, the pages build their elements directly. */

type Child = Node | string | number | false | null | undefined | readonly Child[];

/**
 * Whether a link target is safe to put in `href`: a page of the explorer (`#…`), a path of this
 * node, or an http(s) URL. Registry entries (endpoints) and bundles are anyone's to write: a
 * `javascript:` URL there must never become a link.
 */
export const isSafeHref = (url: string): boolean => /^(#|\/(?!\/)|https?:\/\/)/i.test(url);

/**
 * An element with attributes (`on*` functions become listeners; an `href` that is not
 * {@link isSafeHref} is left out) and children. Text is always text (never parsed as HTML).
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, unknown> | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === false || v === null) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k.startsWith('on')) continue;
    else if (k === 'href' && !isSafeHref(String(v))) continue;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === false || c === null || c === undefined) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'object' ? (c as Node) : document.createTextNode(String(c)));
  }
}

/** Replaces the page's content. */
export function show(...children: Child[]): HTMLElement {
  const app = document.getElementById('app') as HTMLElement;
  app.replaceChildren();
  append(app, children);
  return app;
}

/** `0x1234…abcd`. */
export const short = (s: string, n = 8): string => (s.length > 2 * n + 1 ? `${s.slice(0, n)}…${s.slice(-n)}` : s);

/** Wei as ETH with up to 4 decimals. */
export function eth(wei: bigint | string): string {
  const w = BigInt(wei);
  const whole = w / 10n ** 18n;
  const frac = (w % 10n ** 18n).toString().padStart(18, '0').slice(0, 4).replace(/0+$/, '');
  return `${whole}${frac ? `.${frac}` : ''} ETH`;
}

/** An error as text: its Verity code when it has one. */
export function errorText(e: unknown): string {
  const err = e as { code?: string; message?: string };
  return err?.code ? `${err.code}: ${err.message ?? ''}` : String(err?.message ?? e);
}

/** A key/value table. */
export function facts(rows: readonly (readonly [string, Child])[]): HTMLElement {
  return h(
    'div',
    { class: 'wrap' },
    h('table', null, ...rows.map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v)))),
  );
}
