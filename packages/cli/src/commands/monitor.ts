/**
 * `verity monitor`: follows every registered node's tree heads (its own, the ones witnesses
 * cosigned, its anchors on chain) and reports a split view with both signed heads as evidence
 * (docs/protocol.md "Witnesses"). One JSON line per event on stdout. The work is the SDK's
 * `monitorRound`; this file parses flags and loops.
 */
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { parseFlags, UsageError } from '../usage.js';
import { chainOf } from './verify.js';

/**
 * `verity monitor [--rpc URL --deployment FILE | --data-dir DIR] [--witness URL]… [--interval MS]
 * [--once] [--state FILE]`
 */
export async function runMonitor(args: string[]): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      rpc: { type: 'string' },
      deployment: { type: 'string' },
      'data-dir': { type: 'string' },
      witness: { type: 'string', multiple: true },
      interval: { type: 'string', default: '10000' },
      once: { type: 'boolean', default: false },
      state: { type: 'string' },
    },
  });
  if (!/^[1-9][0-9]*$/.test(values.interval)) throw new UsageError('--interval takes milliseconds');
  for (const w of values.witness ?? []) {
    if (!/^https?:\/\//.test(w)) throw new UsageError(`--witness takes a witness base URL, not ${w}`);
  }
  const chain = await chainOf(values, true);
  if (chain === undefined)
    throw new UsageError('monitor reads the registry: --rpc URL --deployment FILE, or a `verity up` data dir');
  const { createMonitorState, monitorRound, monitorStateFromJson, monitorStateToJson } = await import('@verity/sdk');
  // --state FILE: the heads seen by earlier runs, so a run from cron compares with them too.
  const stateFile = values.state;
  let state = createMonitorState();
  if (stateFile !== undefined && existsSync(stateFile)) {
    try {
      state = monitorStateFromJson(JSON.parse(await readFile(stateFile, 'utf8')));
    } catch (e) {
      throw new UsageError(`cannot read the monitor state ${stateFile}: ${(e as Error).message}`, { showHelp: false });
    }
  }
  const save = async () => {
    if (stateFile === undefined) return;
    const temp = `${stateFile}.${process.pid}.tmp`;
    await writeFile(temp, `${JSON.stringify(monitorStateToJson(state))}\n`);
    await rename(temp, stateFile);
  };
  const options = { chain, witnesses: values.witness ?? [] };
  let split = false;
  let stopped = false;
  const stop = () => {
    stopped = true;
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    for (;;) {
      for (const e of await monitorRound(options, state)) {
        if (e.event === 'split-view') split = true;
        process.stdout.write(`${JSON.stringify(e)}\n`);
      }
      await save();
      if (values.once || stopped) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Number(values.interval));
        const wake = () => {
          clearTimeout(t);
          resolve();
        };
        process.once('SIGINT', wake);
        process.once('SIGTERM', wake);
      });
      if (stopped) break;
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  // Exit 1 when a split view was seen (as `verify` exits 1 for an invalid bundle).
  return split ? 1 : 0;
}
