import { fileURLToPath } from 'node:url';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources in tests (no build needed to test).
const alias = {
  '@verity/protocol': fileURLToPath(new URL('./packages/protocol/src/index.ts', import.meta.url)),
};

// Debian's chromium (apt-get install chromium); never a browser downloaded by a test tool.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

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
        },
      },
      {
        resolve: { alias },
        test: {
          // The protocol core must behave identically in a real browser.
          name: 'browser',
          include: ['packages/protocol/src/**/*.test.ts'],
          exclude: ['packages/protocol/src/**/*.node.test.ts'],
          testTimeout: 30_000,
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
            instances: [{ browser: 'chromium' }],
          },
        },
      },
    ],
  },
});
