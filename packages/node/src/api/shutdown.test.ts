import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint, parseVerifierKey, type Receipt, verifyReceipt } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { startNode } from '../node.js';

const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));

describe('graceful shutdown', () => {
  it('finishes the requests in flight, flushes the log, and reopens where it stopped', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'verity-shutdown-'));
    const config = loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent' } });
    const node = await startNode(config);
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey, insecureTrustNode: true });
    await admin.pushModel({ name: 'iris', data: new Uint8Array(readFileSync(IRIS)) });
    const trust = await admin.trust();
    await admin.model('iris@1.0.0'); // cached: the requests below go straight to /v1/infer
    let answered = 0;
    const inFlight = Array.from({ length: 200 }, (_, i) =>
      admin.infer({ model: 'iris@1.0.0', input: { x: [[4 + (i % 4), 3, 1.5, 0.2]] } }).then(
        (r) => {
          answered++;
          return r.receipt;
        },
        (e: { code?: string }) => e.code ?? 'error',
      ),
    );
    while (answered === 0) await new Promise((r) => setTimeout(r, 1));
    await node.stop();
    const outcomes = await Promise.all(inFlight);
    const receipts = outcomes.filter((o): o is Receipt => typeof o === 'object');
    // Whatever was accepted was answered; the rest were refused cleanly, never cut off mid-way.
    for (const o of outcomes) if (typeof o === 'string') expect(['SHUTTING_DOWN', 'NETWORK_ERROR']).toContain(o);
    expect(receipts.length).toBeGreaterThan(0);
    // After a restart, every receipt still verifies and the log has all of them.
    const again = await startNode(config);
    try {
      expect(again.context.keys.address).toBe(node.context.keys.address);
      const { checkpoint } = openCheckpoint(again.context.log.checkpoint(), [
        parseVerifierKey(again.context.keys.logKey),
      ]);
      expect(checkpoint.size).toBe(receipts.length);
      for (const r of receipts) expect(verifyReceipt(r, trust).ok).toBe(true);
    } finally {
      await again.stop();
    }
  }, 60_000);
});
