import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, startNode, type VerityNode } from '@verity/node';
import {
  decodeInferFrame,
  encodeInferFrame,
  encodeTensors,
  INFER_MEDIA_TYPE,
  tensorsFromJson,
  tensorsToExactJson,
} from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from './index.js';

// The SDK against a real node, and against a man in the middle that rewrites answers: infer must
// refuse every rewritten answer with the code that says what was wrong.
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
let node: VerityNode;
let proxy: Server;
let proxyUrl: string;
let rewrite: (path: string, body: Record<string, unknown>) => void = () => {};
let rewriteRequest: (path: string, body: Record<string, unknown>) => void = () => {};
/** Applied to a binary answer's bytes after `rewrite` (a frame mangled on the wire). */
let rewriteFrame: (frame: Uint8Array) => Uint8Array = (f) => f;

beforeAll(async () => {
  node = await startNode(
    loadConfig({ overrides: { dataDir: await mkdtemp(join(tmpdir(), 'verity-sdk-')), port: 0, logLevel: 'silent' } }),
  );
  // The SDK speaks binary frames by default (docs/protocol.md §2.6): the proxy reads and rewrites
  // them as their JSON form, and writes the answer back in the form the SDK asked for.
  proxy = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let contentType = req.headers['content-type'] ?? 'application/json';
    if (chunks.length > 0 && contentType.startsWith(INFER_MEDIA_TYPE)) {
      const { header, tensors } = decodeInferFrame(new Uint8Array(Buffer.concat(chunks)));
      chunks.splice(0, chunks.length, Buffer.from(JSON.stringify({ ...header, input: tensorsToExactJson(tensors) })));
      contentType = 'application/json';
    }
    if (chunks.length > 0 && contentType.includes('json')) {
      const sent = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      rewriteRequest(req.url ?? '', sent);
      chunks.splice(0, chunks.length, Buffer.from(JSON.stringify(sent)));
    }
    const upstream = await fetch(`${node.url}${req.url}`, {
      method: req.method ?? 'GET',
      headers: { 'content-type': contentType, accept: req.headers.accept ?? '*/*' },
      ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
    });
    const type = upstream.headers.get('content-type') ?? 'application/json';
    let out: Uint8Array | string;
    if (upstream.ok && type.startsWith(INFER_MEDIA_TYPE)) {
      const { header, tensors } = decodeInferFrame(new Uint8Array(await upstream.arrayBuffer()), {
        maxHeaderBytes: 1 << 24,
      });
      const body = { ...header, output: tensorsToExactJson(tensors) } as Record<string, unknown>;
      rewrite(req.url ?? '', body);
      const { output, ...rest } = body;
      out = rewriteFrame(encodeInferFrame(JSON.stringify(rest), encodeTensors(tensorsFromJson(output))));
    } else {
      out = await upstream.text();
      if (upstream.ok && type.includes('json')) {
        const body = JSON.parse(out) as Record<string, unknown>;
        rewrite(req.url ?? '', body);
        out = JSON.stringify(body);
      }
    }
    res.writeHead(upstream.status, { 'content-type': type });
    res.end(out);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  const progress: number[] = [];
  await admin.pushModel({
    name: 'iris',
    data: new Uint8Array(readFileSync(IRIS)),
    onProgress: (sent) => progress.push(sent),
  });
  expect(progress.at(-1)).toBe(readFileSync(IRIS).length);
});
afterAll(async () => {
  proxy?.close();
  await node?.stop();
});

const input = { x: [[5.1, 3.5, 1.4, 0.2]] };

describe('sdk', () => {
  it('infers and verifies; the bundle verifies with verify()', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const result = await client.infer({ model: 'iris', input, clientNonce: 'c0ffee' });
    expect(result.record.clientNonce).toBe('c0ffee');
    expect((await client.verify(result.bundle())).ok).toBe(true);
    expect((await client.verify(await client.getReceipt(result.requestId))).ok).toBe(true);
    expect((await client.models()).map((m) => m.ref)).toContain('iris@1.0.0');
  });

  const tamperings: [string, (path: string, body: Record<string, unknown>) => void, string][] = [
    [
      'a changed output',
      (path, body) => {
        if (path === '/v1/infer')
          ((body.output as Record<string, { data: number[] }>).probabilities as { data: number[] }).data[0] = 0.5;
      },
      'RECEIPT_OUTPUT_DIGEST_MISMATCH',
    ],
    [
      'a forged checkpoint',
      (path, body) => {
        if (path === '/v1/infer') {
          const r = body.receipt as { checkpoint: string };
          r.checkpoint = r.checkpoint.replace(/\n(\d+)\n/, (_, n) => `\n${Number(n) + 1}\n`);
        }
      },
      'NOTE_SIGNATURE_INVALID',
    ],
    [
      'a receipt for another record',
      (path, body) => {
        if (path === '/v1/infer') (body.receipt as { record: { timestamp: number } }).record.timestamp += 1;
      },
      'RECEIPT_INCLUSION_INVALID',
    ],
    [
      'a malformed node key',
      (path, body) => {
        if (path === '/v1/node') body.logKey = 'attacker+00000000+AQ==';
      },
      'NOTE_KEY_INVALID',
    ],
  ];
  for (const [what, fn, code] of tamperings) {
    it(`refuses ${what}`, async () => {
      rewrite = fn;
      try {
        const client = createClient({ url: proxyUrl, insecureTrustNode: true });
        await expect(client.infer({ model: 'iris@1.0.0', input })).rejects.toMatchObject({ code });
      } finally {
        rewrite = () => {};
      }
    });
  }

  // A binary answer that is not a frame, or whose tensors are not canonical, or that is
  // truncated: refused before anything is verified (RESPONSE_INVALID), never a TypeError.
  const mangled: [string, (frame: Uint8Array) => Uint8Array][] = [
    ['truncated', (f) => f.subarray(0, f.length - 1)],
    ['with a trailing byte', (f) => new Uint8Array([...f, 0])],
    ['with another magic', (f) => new Uint8Array([0x56, 0x49, 0x46, 0x32, ...f.subarray(4)])],
    ['empty', () => new Uint8Array(0)],
  ];
  for (const [what, fn] of mangled) {
    it(`refuses a binary answer ${what}`, async () => {
      rewriteFrame = fn;
      try {
        const client = createClient({ url: proxyUrl, insecureTrustNode: true });
        await expect(client.infer({ model: 'iris@1.0.0', input })).rejects.toMatchObject({ code: 'RESPONSE_INVALID' });
      } finally {
        rewriteFrame = (f) => f;
      }
    });
  }

  it('refuses an answer computed on another input than the one sent', async () => {
    rewriteRequest = (path, body) => {
      if (path === '/v1/infer') body.input = { x: [[6.9, 3.1, 5.4, 2.1]] };
    };
    try {
      await expect(
        createClient({ url: proxyUrl, insecureTrustNode: true }).infer({ model: 'iris@1.0.0', input }),
      ).rejects.toMatchObject({
        code: 'RECEIPT_INPUT_DIGEST_MISMATCH',
      });
    } finally {
      rewriteRequest = () => {};
    }
  });

  it('mode audited: the answer carries its challenge window, and the kept payload hashes to the record', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const result = await client.infer({ model: 'iris', input, mode: 'audited' });
    expect(result.record.mode).toBe('audited');
    expect(result.audit?.windowClosesAt).toBe((Math.floor(result.record.timestamp / 1000) + 86_400) * 1000);
    const payload = (await (await fetch(`${node.url}${result.audit?.payload}`)).json()) as { inputDigest: string };
    expect(payload.inputDigest).toBe(result.record.inputDigest);
    expect((await client.verify(result.bundle())).ok).toBe(true);
  });

  it('refuses an audited request answered in another mode (a downgrade that escapes audit), and a window stripped', async () => {
    rewriteRequest = (path, body) => {
      if (path === '/v1/infer') delete body.mode;
    };
    try {
      await expect(
        createClient({ url: proxyUrl, insecureTrustNode: true }).infer({ model: 'iris', input, mode: 'audited' }),
      ).rejects.toMatchObject({ code: 'RESPONSE_INVALID', details: { expected: 'audited', actual: 'signed' } });
    } finally {
      rewriteRequest = () => {};
    }
    rewrite = (path, body) => {
      if (path === '/v1/infer') delete body.audit;
    };
    try {
      await expect(
        createClient({ url: proxyUrl, insecureTrustNode: true }).infer({ model: 'iris', input, mode: 'audited' }),
      ).rejects.toMatchObject({ code: 'RESPONSE_INVALID' });
    } finally {
      rewrite = () => {};
    }
  });

  it('does not pin the key a node reports about itself: without chain, pinned keys or the insecure opt-in it refuses', async () => {
    // A man in the middle answers /v1/node with a key of its own choosing: trusting it on first
    // use would let it sign anything. The client has no root of trust, so it verifies nothing.
    const client = createClient({ url: proxyUrl });
    await expect(client.infer({ model: 'iris@1.0.0', input })).rejects.toMatchObject({ code: 'TRUST_UNCONFIGURED' });
    await expect(client.trust()).rejects.toMatchObject({ code: 'TRUST_UNCONFIGURED' });
    // Reading models needs no trust.
    expect((await client.models()).length).toBeGreaterThan(0);
  });

  it('with a pinned trust, a different node key is refused', async () => {
    const pinned = { nodes: [{ address: node.context.keys.address, logKey: 'pinned.example/log+00000000+AQ==' }] };
    const client = createClient({ url: node.url, trust: pinned });
    await expect(client.infer({ model: 'iris', input })).rejects.toMatchObject({ code: 'NOTE_KEY_INVALID' });
  });

  it('reports node errors with their codes', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    await expect(client.infer({ model: 'missing', input })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' });
    await expect(client.infer({ model: 'iris', input: { y: [[1]] } })).rejects.toMatchObject({
      code: 'TENSOR_UNEXPECTED',
    });
    await expect(client.pushModel({ name: 'x', data: new Uint8Array(4) })).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
    await expect(createClient({ url: 'http://127.0.0.1:1' }).models()).rejects.toMatchObject({ code: 'NETWORK_ERROR' });
  });
});
