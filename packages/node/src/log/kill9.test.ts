/**
 * docs/design.md §6: "kill -9 under load loses nothing acknowledged". A child process appends under
 * concurrent load and prints each receipt as it is acknowledged; the parent SIGKILLs it mid-run,
 * reopens the log, and checks that every printed receipt still verifies and is linked to the new
 * checkpoint by a consistency proof (the log never forked). Three rounds on the same log.
 *
 * The child runs on the built log (`npm run build` first; `npm test` does).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createVerifyCache,
  fromHex,
  openCheckpoint,
  parseVerifierKey,
  type Receipt,
  toHex,
  verifyConsistency,
  verifyReceipt,
} from '@verity/protocol';
import { afterAll, describe, expect, it } from 'vitest';
import { openLog } from './index.js';
import { makeRecord, ORIGIN, SEED, signer, TRUST, VERIFIER_KEY } from './test-support/log-fixtures.js';

const CHILD = fileURLToPath(new URL('./test-support/append-child.mjs', import.meta.url));
const BUILT = fileURLToPath(new URL('../../dist/log/index.js', import.meta.url));
const root = fs.mkdtempSync(join(tmpdir(), 'verity-log-kill9-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const verifier = parseVerifierKey(VERIFIER_KEY);

/** Runs the child until it has printed `target` receipts (plus a random extra delay), then SIGKILLs it. */
function runAndKill(dir: string, prefix: string, target: number): Promise<Receipt[]> {
  return new Promise((resolve, reject) => {
    const args = [CHILD, dir, '64', toHex(SEED), ORIGIN, JSON.stringify(makeRecord(0, prefix))];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let lines = 0;
    let killing = false;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      lines += chunk.split('\n').length - 1;
      if (!killing && lines > target) {
        killing = true;
        // Kill at a random moment of the next batches, not right at a batch boundary.
        setTimeout(() => child.kill('SIGKILL'), Math.floor(Math.random() * 20));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') return reject(new Error(`child exited with ${code} before the kill: ${err}`));
      // Only complete lines were given out; a line cut by the kill was not.
      const complete = out.slice(0, out.lastIndexOf('\n') + 1).split('\n');
      resolve(complete.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Receipt));
    });
  });
}

describe('kill -9 under load', () => {
  it('loses no acknowledged record and never forks, over 3 kills', async () => {
    if (!fs.existsSync(BUILT)) throw new Error(`${BUILT} is missing: run \`npm run build\` first`);
    const dir = join(root, 'log');
    const given: Receipt[] = [];
    for (let round = 0; round < 3; round++) {
      const receipts = await runAndKill(dir, `k${round}`, 300 + Math.floor(Math.random() * 1500));
      expect(receipts.length).toBeGreaterThan(300);
      given.push(...receipts);
      const log = await openLog({ dir, signer });
      const latest = openCheckpoint(log.checkpoint(), [verifier], ORIGIN).checkpoint;
      const cache = createVerifyCache();
      const proofs = new Map<number, Uint8Array[]>();
      for (const r of given) {
        // The receipt verifies on its own…
        const result = verifyReceipt(r, TRUST, { cache });
        expect(result.ok ? 'ok' : result.code).toBe('ok');
        // …its checkpoint is a prefix of the reopened log…
        const cp = openCheckpoint(r.checkpoint, [verifier], ORIGIN).checkpoint;
        expect(cp.size).toBeLessThanOrEqual(latest.size);
        let proof = proofs.get(cp.size);
        if (!proof) {
          proof = log.consistencyProof(cp.size).map(fromHex);
          proofs.set(cp.size, proof);
        }
        verifyConsistency(cp.size, latest.size, proof, cp.rootHash, latest.rootHash);
        // …and the log still holds the record at its index.
        expect(log.receiptByRequestId(r.record.requestId).leafIndex).toBe(r.leafIndex);
      }
      // Each run's acknowledged records are all there; the checkpoint may cover a few more whose
      // receipts were lost with the process, never fewer.
      expect(latest.size).toBeGreaterThanOrEqual(given.length);
      await log.close();
    }
  }, 600_000);
});
