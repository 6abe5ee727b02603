/**
 * A node that dies between an answer and its settlement (test code only): what `verity node
 * start --json` does, with the payment settler wrapped so that the first settlement kills the
 * process with SIGKILL instead of sending its transaction. The payment and its answer are
 * already in the journal (fsync'd) at that point: a restarted node must settle it exactly once.
 *
 * ```sh
 * node --import ./test-support/ts-loader.mjs packages/node/src/test-support/payment-crash-main.ts --config FILE
 * ```
 *
 * Prints one JSON line `{ url, address, logKey, dataDir, apiKey }` once it listens.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { startNode } from '../node.js';

const { values } = parseArgs({ options: { config: { type: 'string' } } });
const config = loadConfig({ env: process.env, ...(values.config === undefined ? {} : { file: values.config }) });
const node = await startNode(config, {
  paymentSettler: (settler) => ({
    ...settler,
    settle: () => {
      // The hardest crash: no handler runs, nothing is flushed beyond what was synced.
      process.kill(process.pid, 'SIGKILL');
      return new Promise<string>(() => {});
    },
  }),
});
process.stdout.write(
  `${JSON.stringify({
    url: node.url,
    address: node.context.keys.address,
    logKey: node.context.keys.logKey,
    dataDir: node.context.config.dataDir,
    apiKey: node.context.keys.apiKey,
  })}\n`,
);
process.on('SIGTERM', () => void node.stop().then(() => process.exit(0)));
