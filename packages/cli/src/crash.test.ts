import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  fromHex,
  openCheckpoint,
  parseVerifierKey,
  type Receipt,
  verifyConsistency,
  verifyReceipt,
} from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { describe, expect, it } from 'vitest';
import { firstJsonLine, until } from '../../../test-support/wait.js';

// kill -9 under concurrent load, then restart: every receipt a client received still verifies,
// and the log after the crash extends the log before it (it never forks). Real node processes.
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));

async function startNodeProcess(
  dataDir: string,
): Promise<{ child: ChildProcess; url: string; apiKey: string; address: string; logKey: string }> {
  const child = spawn(
    process.execPath,
    [BIN, 'node', 'start', '--data-dir', dataDir, '--port', '0', '--log-level', 'silent', '--json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const info = await firstJsonLine<{ url: string; address: string; logKey: string }>(child, 'the node');
  const keys = JSON.parse(readFileSync(join(dataDir, 'keys.json'), 'utf8')) as { apiKey: string };
  return { child, ...info, apiKey: keys.apiKey };
}

describe('kill -9 under load', () => {
  it('loses no acknowledged receipt and never forks the log, three times over', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'verity-crash-'));
    const received: Receipt[] = [];
    let trust: { nodes: { address: string; logKey: string }[] } | undefined;
    for (let round = 0; round < 3; round++) {
      const node = await startNodeProcess(dataDir);
      trust ??= { nodes: [{ address: node.address, logKey: node.logKey }] };
      expect(node.address).toBe(trust.nodes[0]?.address); // same identity after every restart
      const client = createClient({ url: node.url, apiKey: node.apiKey, trust });
      if (round === 0) await client.pushModel({ name: 'iris', data: new Uint8Array(readFileSync(IRIS)) });

      // After a restart, every receipt received so far still verifies, and its checkpoint is
      // consistent with the node's current one.
      const note = await (await fetch(`${node.url}/v1/log/checkpoint`)).text();
      const current = openCheckpoint(note, [parseVerifierKey(node.logKey)]).checkpoint;
      for (const receipt of received) {
        expect(verifyReceipt(receipt, trust).ok).toBe(true);
        const old = openCheckpoint(receipt.checkpoint, [parseVerifierKey(node.logKey)]).checkpoint;
        expect(current.size).toBeGreaterThanOrEqual(old.size);
        const { proof } = (await (
          await fetch(`${node.url}/v1/log/proof?from=${old.size}&to=${current.size}`)
        ).json()) as {
          proof: string[];
        };
        verifyConsistency(
          old.size,
          current.size,
          proof.map((h) => fromHex(h)),
          old.rootHash,
          current.rootHash,
        );
        const again = await client.getReceipt(receipt.record.requestId);
        expect(again.record).toEqual(receipt.record);
      }

      // Load: 8 clients in parallel; kill -9 once enough answers are in.
      let stop = false;
      const before = received.length;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          try {
            const r = await client.infer({ model: 'iris@1.0.0', input: { x: [[4 + (i % 4), 3, 1 + (w % 5), 0.2]] } });
            received.push(r.receipt);
          } catch {
            return; // the node is gone
          }
        }
      };
      let running = 8;
      const workers = Array.from({ length: 8 }, (_, w) => worker(w).finally(() => running--));
      await until(async () => {
        if (received.length >= before + 60) return true;
        if (running === 0) throw new Error(`every client stopped after ${received.length - before} answers`);
        return undefined;
      }, '60 answers before the kill');
      node.child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      if (node.child.exitCode === null && node.child.signalCode === null) await once(node.child, 'exit');
    }
    // One last restart to check the third crash.
    const node = await startNodeProcess(dataDir);
    const note = await (await fetch(`${node.url}/v1/log/checkpoint`)).text();
    const final = openCheckpoint(note, [parseVerifierKey(node.logKey)]).checkpoint;
    for (const receipt of received) expect(verifyReceipt(receipt, trust as never).ok).toBe(true);
    expect(final.size).toBeGreaterThanOrEqual(Math.max(...received.map((r) => r.leafIndex)) + 1);
    node.child.kill('SIGKILL');
  }, 300_000);
});
