/**
 * Where the tests find a browser: Debian's chromium (`apt-get install chromium`), or
 * `CHROMIUM_PATH`; never a browser downloaded by a test tool. Without one, `npm test` still
 * passes on a machine with Node alone: the suites that need it are skipped, and the run's last
 * lines say which and how to get one (`run-env.ts`). CI sets `VERITY_REQUIRE_BROWSER=1`
 * (`.ci/run`), and a run without a browser then fails at its start instead of skipping.
 */
import { existsSync } from 'node:fs';

export const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(chromiumPath);

/** The suites skipped without a browser, as the run's last lines name them. */
export const BROWSER_SUITES = [
  'the browser project: the protocol core, the SDK zk verifier and portable re-execution in Chromium',
  "packages/explorer/src/explorer.test.ts: the explorer's pages in Chromium (Playwright)",
  "packages/cli/src/up-explorer.test.ts: the explorer's pages in Chromium against a live `verity up`",
];

/** What the run says when it had no browser. */
export function skippedBrowserSuites(): string {
  return [
    `No browser at ${chromiumPath}: these suites were skipped:`,
    ...BROWSER_SUITES.map((s) => `  - ${s}`),
    'To run them: apt-get install chromium (Debian), or set CHROMIUM_PATH to a Chromium binary.',
  ].join('\n');
}
