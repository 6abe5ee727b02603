import { fileURLToPath } from 'node:url';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources in tests (no build needed to test).
const alias = {
  '@verity/protocol': fileURLToPath(new URL('./packages/protocol/src/index.ts', import.meta.url)),
};

import { chromiumPath, hasChromium } from './test-support/browser.js';

// Without a browser the browser project is left out, not failed: `npm test` passes on a machine
// with Node alone and its last lines say what was skipped (test-support/browser.ts, run-env.ts);
// CI installs Debian's chromium and requires it (VERITY_REQUIRE_BROWSER=1).

export default defineConfig({
  resolve: { alias },
  test: {
    // One temp directory per run, removed at its end; telemetry off (test-support/run-env.ts).
    globalSetup: ['./test-support/run-env.ts'],
    projects: [
      {
        resolve: { alias },
        test: {
          name: 'node',
          environment: 'node',
          include: ['packages/*/src/**/*.test.ts', 'examples/**/*.test.ts'],
          exclude: ['packages/*/src/**/*.browser.test.ts', '**/node_modules/**'],
          // Two shared cores under other load: a test that spawns processes, starts anvil or runs
          // a property test over many inputs waits for readiness; these bounds only catch a hang.
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
      ...(hasChromium
        ? [
            {
              resolve: { alias },
              // Pre-bundled before the first test: found mid-run, Vite reloads the page and a test
              // that was running fails.
              optimizeDeps: {
                include: ['snarkjs', 'viem', 'viem/accounts'],
                exclude: ['onnxruntime-web', 'onnxruntime-web/wasm'],
              },
              test: {
                // The protocol core must behave identically in a real browser; the SDK's
                // browser tests (*.browser.test.ts: zk verification) and the node's (portable
                // records re-executed with onnxruntime-web) run there alone.
                name: 'browser',
                // Records a real node makes under the portable profile, re-executed in the page.
                globalSetup: ['./packages/node/src/runtimes/test-support/portable-records.ts'],
                include: [
                  'packages/protocol/src/**/*.test.ts',
                  'packages/sdk/src/**/*.browser.test.ts',
                  'packages/node/src/**/*.browser.test.ts',
                ],
                exclude: ['packages/protocol/src/**/*.node.test.ts'],
                // Chromium and a node (portable records) on shared cores: bounds only catch a hang.
                testTimeout: 60_000,
                hookTimeout: 120_000,
                browser: {
                  enabled: true,
                  headless: true,
                  screenshotFailures: false,
                  provider: playwright({
                    launchOptions: {
                      executablePath: chromiumPath,
                      args: [
                        '--no-sandbox',
                        '--disable-gpu',
                        '--disable-background-networking',
                        '--disable-component-update',
                        '--disable-sync',
                        '--no-first-run',
                      ],
                    },
                  }),
                  instances: [{ browser: 'chromium' as const }],
                },
              },
            },
          ]
        : []),
    ],
  },
});
