/**
 * Child process of the kill -9 test (`kill9.test.ts`), plain JavaScript on the built log (the
 * package build leaves test-support out, and Node 20 cannot run TypeScript):
 *
 *   node append-child.mjs <dir> <concurrency> <seed hex> <record template JSON>
 *
 * Opens the log in <dir> with fsync on, signed by the Ed25519 key of <seed> under the origin the
 * template's test uses, appends copies of the template with requestIds `<template id>-<n>` from
 * <concurrency> concurrent callers forever, and prints each receipt as one JSON line the moment
 * its append resolves. The parent SIGKILLs it at a random point: every complete line it printed
 * is a receipt that was given out.
 */
import { createEd25519Signer, fromHex } from '@verity/protocol';
import { openLog } from '../../../dist/log/index.js';

const [dir, concurrency, seed, origin, templateJson] = process.argv.slice(2);
const template = JSON.parse(templateJson);
const log = await openLog({ dir, signer: createEd25519Signer(origin, fromHex(seed)) });
let next = 0;
const worker = async () => {
  for (;;) {
    const n = next++;
    const record = { ...template, requestId: `${template.requestId}-${n}`, timestamp: template.timestamp + n };
    const receipt = await log.append(record);
    // Writes to a pipe are synchronous on Linux: once this returns, the receipt is given out.
    process.stdout.write(`${JSON.stringify(receipt)}\n`);
  }
};
process.stdout.write('ready\n');
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
