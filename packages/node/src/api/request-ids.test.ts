import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';
import { newRequestId } from './request-ids.js';

const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const SAMPLE = { x: [[5.1, 3.5, 1.4, 0.2]] };
let node: VerityNode;
let dataDir: string;
let iris: string;

interface Answer {
  requestId?: string;
  receipt?: { leafIndex: number; record: { requestId: string; clientNonce?: string } };
  error?: { code: string };
}

async function infer(body: Record<string, unknown>): Promise<{ status: number; body: Answer }> {
  const res = await fetch(`${node.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: iris, input: SAMPLE, ...body }),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

const nonce = () => randomBytes(16).toString('hex');

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-ids-'));
  node = await startNode(loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent', fsync: false } }));
  const res = await fetch(`${node.url}/v1/models?name=iris`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: readFileSync(IRIS),
  });
  iris = ((await res.json()) as { id: string }).id;
});
afterAll(async () => {
  await node?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe('request ids', () => {
  it('are 128 random bits: nothing in the ids seen so far names the next one', () => {
    const ids = Array.from({ length: 20_000 }, newRequestId);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // No shared prefix or counter: consecutive ids agree on about 1/16 of their digits.
    let same = 0;
    for (let i = 1; i < ids.length; i++) {
      const x = ids[i - 1] as string;
      const y = ids[i] as string;
      for (let j = 0; j < 32; j++) if (x[j] === y[j]) same++;
    }
    expect(same / ((ids.length - 1) * 32)).toBeLessThan(0.07);
  });

  it('pre-claimed request id: an attacker who saw earlier ids and claims the likely next ones cannot fail or hijack an honest request', async () => {
    // The clock stands still during the attack, so that a scheme built on time (as this node's
    // was: ms time, a per-process prefix, a counter) is fully predictable; ids from 128 random
    // bits are not.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      // The attacker's own requests show it how the node makes ids.
      const seen: string[] = [];
      for (let i = 0; i < 3; i++) seen.push((await infer({})).body.requestId as string);
      // It claims what would come next: for the old scheme the next counters at this very
      // millisecond; for any scheme, the last id with its last digit changed.
      const last = seen.at(-1) as string;
      const guesses = new Set<string>();
      const m = /^([0-9a-z]+)-([0-9a-f]{12})([0-9a-z]+)$/.exec(last);
      if (m) {
        const counter = Number.parseInt(m[3] as string, 36);
        for (let k = 1; k <= 3; k++) guesses.add(`${Date.now().toString(36)}-${m[2]}${(counter + k).toString(36)}`);
      }
      for (const d of '0123456789abcdef') guesses.add(`${last.slice(0, -1)}${d}`);
      guesses.delete(last);
      for (const id of guesses) {
        const claim = await infer({ requestId: id, clientNonce: 'aa' });
        expect(claim.status, JSON.stringify(claim.body)).toBe(200);
      }
      // The honest caller: no id of its own, its own nonce.
      const honestNonce = nonce();
      const honest = await infer({ clientNonce: honestNonce });
      expect(honest.status, JSON.stringify(honest.body)).toBe(200);
      expect(guesses.has(honest.body.requestId as string)).toBe(false);
      expect(honest.body.receipt?.record.clientNonce).toBe(honestNonce);
      const url = `${node.url}/v1/receipts/${honest.body.requestId}`;
      const looked = (await (await fetch(url)).json()) as Answer['receipt'];
      expect(looked?.record.clientNonce).toBe(honestNonce);
      expect(looked?.leafIndex).toBe(honest.body.receipt?.leafIndex);
    } finally {
      vi.useRealTimers();
    }
  });

  it('replayed request id: refused with REQUEST_ID_TAKEN before anything runs; the first receipt stays the one', async () => {
    const requestId = randomBytes(16).toString('hex');
    const body = { requestId, clientNonce: nonce() };
    const first = await infer(body);
    expect(first.status).toBe(200);
    const size = node.context.log.size;
    const runs = node.context.executor.stats();
    for (const replay of [body, { requestId, clientNonce: nonce() }, { requestId, input: { x: [[1, 1, 1, 1]] } }]) {
      const again = await infer(replay);
      expect(again.status).toBe(409);
      expect(again.body.error?.code).toBe('REQUEST_ID_TAKEN');
    }
    expect(node.context.log.size).toBe(size);
    expect(node.context.executor.stats()).toEqual(runs);
    const looked = (await (await fetch(`${node.url}/v1/receipts/${requestId}`)).json()) as Answer['receipt'];
    expect(looked).toEqual(first.body.receipt);
  });

  it('a caller-chosen id too short to hold 128 random bits is refused with REQUEST_ID_INVALID', async () => {
    for (const requestId of ['liar-0', 'order-1234', 'a'.repeat(21), 'x/../y'.repeat(4), 7]) {
      const r = await infer({ requestId });
      expect(r.status, String(requestId)).toBe(400);
      expect(r.body.error?.code).toBe('REQUEST_ID_INVALID');
    }
    expect((await infer({ requestId: `order-${randomBytes(16).toString('base64url')}` })).status).toBe(200);
  });
});
