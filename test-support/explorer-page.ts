/**
 * Driving the explorer's pages in Chromium (Playwright): the selectors its pages expose for tests
 * (`[data-verdict]`, `#checks .row[data-check][data-status][data-code]`, `#reexec`), shared by the
 * suites that run it against an in-process node (packages/explorer) and a live `verity up`
 * (packages/cli).
 */
import type { Page } from 'playwright';

/** Opens a page afresh: from a blank page, since another hash of the same page would only be a hash change (the old page's rows still there). */
export async function openPage(page: Page, url: string): Promise<void> {
  await page.goto('about:blank');
  await page.goto(url);
}

/** What the Verify page's advanced settings take: pinned nodes, zk audits, a witness policy. */
export interface VerifyOptions {
  pinned?: unknown;
  audits?: unknown;
  witnesses?: { keys: string[]; threshold: number };
  /** How long to wait for the verdict (a bound that only catches a hang). */
  timeoutMs?: number;
}

/** The Verify page (served at `base`) for `value`: its verdict, and label, status and code of each row. */
export async function verifyOnPage(page: Page, base: string, value: unknown, options: VerifyOptions = {}) {
  await openPage(page, `${base}/#/verify`);
  await page.fill('#bundle', typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  if (options.pinned !== undefined || options.audits !== undefined || options.witnesses !== undefined) {
    await page.click('details summary');
    if (options.pinned !== undefined) await page.fill('#pinned', JSON.stringify(options.pinned));
    if (options.audits !== undefined) await page.fill('#zk-audits', JSON.stringify(options.audits));
    if (options.witnesses !== undefined) {
      await page.fill('#witness-keys', options.witnesses.keys.join('\n'));
      await page.fill('#witness-threshold', String(options.witnesses.threshold));
    }
  }
  await page.click('#verify');
  const verdict = await page.waitForSelector('[data-verdict]', { timeout: options.timeoutMs ?? 30_000 });
  const rows = await page.$$eval('#checks .row', (els) =>
    els.map((e) => ({
      check: e.getAttribute('data-check'),
      status: e.getAttribute('data-status'),
      code: e.getAttribute('data-code'),
    })),
  );
  return { verdict: await verdict.getAttribute('data-verdict'), rows };
}

/** The status of every check row under `selector` once `count` of them are drawn. */
export async function rowsOf(page: Page, selector: string, count: number) {
  await page.waitForFunction(([sel, n]) => document.querySelectorAll(`${sel} .row`).length >= (n as number), [
    selector,
    count,
  ] as const);
  return page.$$eval(`${selector} .row`, (els) =>
    els.map((e) => `${e.getAttribute('data-check')}: ${e.getAttribute('data-status')}`),
  );
}

/** Clicks "Re-execute" on the page shown and returns the row it gives. */
export async function reexecOnPage(page: Page) {
  await page.click('#reexec-run');
  const row = await page.waitForSelector('#reexec .row:not([data-status="running"])', { timeout: 120_000 });
  return {
    status: await row.getAttribute('data-status'),
    code: await row.getAttribute('data-code'),
    message: (await row.textContent()) ?? '',
  };
}

/** A copy of a bundle whose first checkpoint signature has one base64 digit changed (past the key ID). */
export function withForgedCheckpoint(bundle: unknown): unknown {
  const b = structuredClone(bundle) as { receipts: { checkpoint: string }[] };
  const r = b.receipts[0] as { checkpoint: string };
  const at = r.checkpoint.length - 6;
  const c = r.checkpoint[at] === 'A' ? 'B' : 'A';
  r.checkpoint = `${r.checkpoint.slice(0, at)}${c}${r.checkpoint.slice(at + 1)}`;
  return b;
}

/** A copy of a bundle whose record says mode audited where the node logged signed: its inclusion proof fails. */
export function withEditedRecord(bundle: unknown): unknown {
  return JSON.parse(JSON.stringify(bundle).replace('"mode":"signed"', '"mode":"audited"'));
}
