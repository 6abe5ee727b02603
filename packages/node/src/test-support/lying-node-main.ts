/**
 * A lying node as a process of its own (test code only): what `verity node start --json` does,
 * with the runtimes wrapped by {@link startLyingNode}. A test stops one node process of a
 * `verity up` network and starts this on the same data dir, with the same environment, so the
 * network has a real node process that lies under its registered account.
 *
 * ```sh
 * node --import ./test-support/ts-loader.mjs packages/node/src/test-support/lying-node-main.ts --data-dir DIR [--port N] [--config FILE] [--misrecord]
 * ```
 *
 * Config as `verity node start` reads it (a `--config` file, the `VERITY_*` environment, then the flags); prints one
 * JSON line `{ url, address, logKey, dataDir }` once it listens; SIGTERM or SIGINT stops it (requests
 * in flight finish, the log is flushed and anchored once more).
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { misrecordOutputs, startLyingNode } from './lying-node.js';

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    port: { type: 'string' },
    // A config file, e.g. the prices `verity up` gives its peers (a lying node that is paid).
    config: { type: 'string' },
    'log-level': { type: 'string' },
    // Also sign another output digest than the output sent (`misrecordOutputs`): a lie a client sees.
    misrecord: { type: 'boolean', default: false },
  },
});
const config = loadConfig({
  ...(values.config === undefined ? {} : { file: values.config }),
  env: process.env,
  overrides: {
    ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
    ...(values.port === undefined ? {} : { port: Number(values.port) }),
    logLevel: values['log-level'] ?? 'warn',
  },
});
const node = await startLyingNode(config);
if (values.misrecord) misrecordOutputs(node);
process.stdout.write(
  `${JSON.stringify({
    url: node.url,
    address: node.context.keys.address,
    logKey: node.context.keys.logKey,
    dataDir: node.context.config.dataDir,
  })}\n`,
);
let stopping = false;
const stop = () => {
  if (stopping) return;
  stopping = true;
  void node.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
