/**
 * Mode `audited` on a real node (issue 12.3): the node keeps each audited request's canonical input
 * and output bytes for the challenge window and serves them publicly; the answer says when the
 * window closes; nothing is kept or served for other modes; payloads go when their window closes;
 * a payload is durable before its record is logged and does not outlive a failed append.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeTensors, encodeTensors, fromBase64, tensorsFromJson } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';
import { auditPayload, openPayloadStore } from '../store/index.js';

const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const SAMPLE = { x: [[5.1, 3.5, 1.4, 0.2]] };
const WINDOW_S = 3600;
const dirs: string[] = [];
let node: VerityNode;
let iris: string;

interface Answer {
  requestId: string;
  output: unknown;
  receipt: { record: { mode: string; timestamp: number; inputDigest: string; outputDigest: string } };
  audit?: { windowClosesAt: number; payload: string };
  error?: { code: string };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verity-audited-'));
  dirs.push(dir);
  return dir;
}

async function infer(body: Record<string, unknown>): Promise<{ status: number; body: Answer }> {
  const res = await fetch(`${node.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: iris, input: SAMPLE, ...body }),
  });
  return { status: res.status, body: (await res.json()) as Answer };
}

beforeAll(async () => {
  node = await startNode(
    loadConfig({
      overrides: { dataDir: await tempDir(), port: 0, logLevel: 'silent', audit: { windowSeconds: WINDOW_S } },
    }),
  );
  const res = await fetch(`${node.url}/v1/models?name=iris`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: readFileSync(IRIS),
  });
  iris = ((await res.json()) as { id: string }).id;
});

afterAll(async () => {
  await node?.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('mode audited', () => {
  it('logs an audited record, says when its window closes, and serves the payload that hashes to its digests', async () => {
    const { status, body } = await infer({ mode: 'audited' });
    expect(status).toBe(200);
    const record = body.receipt.record;
    expect(record.mode).toBe('audited');
    expect(body.audit).toEqual({
      // As Disputes computes it: whole seconds of the record's time, plus the window.
      windowClosesAt: (Math.floor(record.timestamp / 1000) + WINDOW_S) * 1000,
      payload: `/v1/payloads/${body.requestId}`,
    });
    // Public: no API key.
    const res = await fetch(`${node.url}${body.audit?.payload}`);
    expect(res.status).toBe(200);
    const payload = (await res.json()) as { input: string; output: string; inputDigest: string; model: string };
    const input = fromBase64(payload.input);
    const output = fromBase64(payload.output);
    // What a challenger puts on chain: bytes that hash to the record's digests.
    expect(sha256(input)).toBe(record.inputDigest);
    expect(sha256(output)).toBe(record.outputDigest);
    expect(payload.model).toBe(iris);
    // The input is the request's, canonically encoded; an auditor can re-execute from it.
    const stored = node.context.store.resolve(iris);
    expect(encodeTensors(decodeTensors(input))).toEqual(
      encodeTensors(tensorsFromJson(SAMPLE, stored.manifest.inputs, { maxElements: 1e6, maxStringBytes: 1e6 })),
    );
  });

  it('keeps nothing for other modes and answers PAYLOAD_NOT_FOUND for them, unknown ids and bad ids', async () => {
    const before = readdirSync(join(node.context.config.dataDir, 'payloads')).filter((n) => n.endsWith('.json'));
    const signed = await infer({});
    expect(signed.status).toBe(200);
    expect(signed.body.audit).toBeUndefined();
    const after = readdirSync(join(node.context.config.dataDir, 'payloads')).filter((n) => n.endsWith('.json'));
    expect(after).toEqual(before);
    for (const id of [signed.body.requestId, 'f'.repeat(32), '..%2F..%2Fkeys', 'x'.repeat(65)]) {
      const res = await fetch(`${node.url}/v1/payloads/${id}`);
      expect(res.status, id).toBe(404);
      expect(((await res.json()) as Answer).error?.code).toBe('PAYLOAD_NOT_FOUND');
    }
  });

  it('an id taken by an audited request is not run again, and its payload stays the first one', async () => {
    const requestId = `audit-${'a'.repeat(26)}`;
    const first = await infer({ mode: 'audited', requestId });
    expect(first.status).toBe(200);
    const again = await infer({ mode: 'audited', requestId, input: { x: [[1, 1, 1, 1]] } });
    expect(again.status).toBe(409);
    const payload = (await (await fetch(`${node.url}/v1/payloads/${requestId}`)).json()) as { inputDigest: string };
    expect(payload.inputDigest).toBe(first.body.receipt.record.inputDigest);
  });

  it('a payload does not outlive a record that could not be logged (the log fails under it: test-only)', async () => {
    const files = () => readdirSync(join(node.context.config.dataDir, 'payloads')).filter((n) => n.endsWith('.json'));
    const before = files();
    await node.context.log.close();
    const failed = await infer({ mode: 'audited' });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    expect(files()).toEqual(before);
  });
});

describe('payload store', () => {
  const payload = (requestId: string, windowClosesAt: number) =>
    auditPayload({
      requestId,
      kind: 'onnx',
      model: 'm',
      inputDigest: sha256(new Uint8Array([1])),
      outputDigest: sha256(new Uint8Array([2])),
      input: new Uint8Array([1]),
      output: new Uint8Array([2]),
      windowClosesAt,
    });

  const jsonFiles = (dir: string) =>
    readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((n) => n.endsWith('.json'));

  it('serves a payload until its window closes, then prunes it; survives a reopen', async () => {
    const dir = await tempDir();
    const store = await openPayloadStore(dir, { bucketMs: 500 });
    await store.put(payload('a'.repeat(32), 1_000));
    await store.put(payload('b'.repeat(32), 2_000));
    expect((await store.get('a'.repeat(32), 1_000))?.windowClosesAt).toBe(1_000);
    expect(await store.get('a'.repeat(32), 1_001)).toBeUndefined();
    const reopened = await openPayloadStore(dir, { bucketMs: 500 });
    expect(await reopened.prune(1_499)).toBe(0); // a's bucket [1000, 1500) may still hold open windows
    expect(await reopened.prune(1_500)).toBe(1);
    expect(await reopened.get('b'.repeat(32), 1_500)).toBeDefined();
    expect(jsonFiles(dir)).toHaveLength(1);
    await reopened.remove('b'.repeat(32));
    expect(await reopened.get('b'.repeat(32), 0)).toBeUndefined();
    expect(jsonFiles(dir)).toEqual([]);
  });

  it('prunes by bucket without reading a payload, and moves flat files of an older node into buckets', async () => {
    const dir = await tempDir();
    const store = await openPayloadStore(dir, { bucketMs: 1_000 });
    await store.put(payload('d'.repeat(32), 1_200));
    await store.put(payload('e'.repeat(32), 5_000));
    // A payload file garbled on disk in a closed bucket is removed with its bucket, never parsed.
    writeFileSync(join(dir, '1000', `${Buffer.from('f'.repeat(32)).toString('hex')}.json`), '{not json');
    expect(await store.prune(2_000)).toBe(2);
    expect(await store.get('e'.repeat(32), 2_000)).toBeDefined();
    // Before buckets, payloads lay flat in the directory.
    const legacy = payload('g'.repeat(32), 7_300);
    writeFileSync(join(dir, `${Buffer.from(legacy.requestId).toString('hex')}.json`), JSON.stringify(legacy));
    const reopened = await openPayloadStore(dir, { bucketMs: 1_000 });
    expect(readdirSync(dir).filter((n) => n.endsWith('.json'))).toEqual([]);
    expect(readdirSync(join(dir, '7000'))).toHaveLength(1);
    expect(await reopened.get(legacy.requestId, 7_300)).toEqual(legacy);
    expect(await reopened.prune(8_000)).toBe(2);
    expect(jsonFiles(dir)).toEqual([]);
  });

  it('refuses a payload whose bytes are not canonical base64, and leaves no file', async () => {
    const dir = await tempDir();
    const store = await openPayloadStore(dir);
    await expect(store.put({ ...payload('c'.repeat(32), 1), input: 'not base64!' })).rejects.toMatchObject({
      code: 'ENCODING_INVALID',
    });
    expect(readdirSync(dir).filter((n) => n.endsWith('.json'))).toEqual([]);
  });
});
