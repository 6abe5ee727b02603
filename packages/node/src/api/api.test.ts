import { readFileSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTensor, tensorsDigest, tensorsFromJson, toHex, verifyBundle } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';

// A real node on a real socket, driven by the SDK and by raw HTTP.
const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const irisBytes = new Uint8Array(readFileSync(IRIS));

let node: VerityNode;
let dataDir: string;

async function post(path: string, body: string | Uint8Array, headers: Record<string, string> = {}) {
  const r = await fetch(`${node.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: body as BodyInit,
  });
  return {
    status: r.status,
    headers: r.headers,
    body: (await r.json()) as { error?: { code: string } } & Record<string, unknown>,
  };
}

const infer = (input: unknown, model = 'iris@1.0.0') => post('/v1/infer', JSON.stringify({ model, input }));

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-api-'));
  node = await startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        limits: {
          bodyBytes: 64 * 1024,
          modelBytes: 4 * 1024 * 1024,
          maxElements: 10_000,
          headersTimeoutMs: 500,
          requestTimeoutMs: 2_000,
        },
      },
    }),
  );
  const client = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  await client.pushModel({ name: 'iris', version: '1.0.0', data: irisBytes });
});

afterAll(async () => {
  await node?.stop();
});

describe('GET /v1/node', () => {
  it('lists the modes this node serves and the runtime profiles its records carry', async () => {
    const info = (await (await fetch(`${node.url}/v1/node`)).json()) as {
      modes: string[];
      runtimes: { id: string; profile: string; formats: string[] }[];
    };
    // Off a chain: no quorum (it needs registered peers); zk for models pushed with --zk.
    expect(info.modes).toEqual(['signed', 'audited', 'zk']);
    expect(info.runtimes.find((r) => r.formats.includes('onnx'))?.profile).toBe(node.context.runtime.profile);
    // The LLM profile is what a record will carry, never "auto" (this node uses gpu: auto): absent
    // until llama.cpp is loaded, then the profile it settled on.
    expect(node.context.config.llm.gpu).toBe('auto');
    const gguf = (i: typeof info) => i.runtimes.find((r) => r.formats.includes('gguf'));
    expect(gguf(info)?.profile).not.toBe('auto');
    const settled = await node.context.llm.ready();
    const after = (await (await fetch(`${node.url}/v1/node`)).json()) as typeof info;
    expect(gguf(after)?.profile).toBe(settled);
    expect(settled).not.toBe('auto');
  }, 60_000);
});

describe('push → infer → verify', () => {
  it('serves the same outputs as a direct onnxruntime-node run, with a receipt that verifies', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const row = [6.1, 2.8, 4.7, 1.2];
    const result = await client.infer({ model: 'iris@1.0.0', input: { x: [row] } });
    const session = await ort.InferenceSession.create(IRIS);
    const direct = await session.run({ x: new ort.Tensor('float32', Float32Array.from(row), [1, 4]) });
    const probs = result.output.probabilities as { data: Float32Array };
    expect(Array.from(probs.data)).toEqual(Array.from(direct.probabilities?.data as Float32Array));
    expect((result.output.label as { data: BigInt64Array }).data[0]).toBe((direct.label as ort.Tensor).data[0]);
    // The bundle verifies offline, and changing its output breaks it.
    const bundle = result.bundle();
    expect(verifyBundle(bundle, await client.trust()).ok).toBe(true);
    const forged = JSON.parse(JSON.stringify(bundle));
    forged.output.probabilities.data[0] = 0.5;
    const bad = verifyBundle(forged, await client.trust());
    expect(bad.ok ? 'ok' : bad.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');
    // The receipt can be fetched again by request id, and the log serves proofs and tiles.
    const again = await client.getReceipt(result.requestId);
    expect(again.record).toEqual(result.record);
    const checkpoint = await (await fetch(`${node.url}/checkpoint`)).text();
    expect(checkpoint.split('\n')[0]).toBe(node.context.keys.origin);
    const tile = await fetch(`${node.url}/tile/0/000.p/${node.context.log.size}`);
    expect(tile.status).toBe(200);
    expect((await tile.arrayBuffer()).byteLength).toBe(32 * node.context.log.size);
  });

  it('records the digests of what the caller sent and received', async () => {
    const input = { x: [[5.1, 3.5, 1.4, 0.2]] };
    const { body } = await infer(input);
    const receipt = body.receipt as { record: { inputDigest: string; outputDigest: string } };
    const manifest = node.context.store.resolve('iris@1.0.0').manifest;
    expect(receipt.record.inputDigest).toBe(toHex(tensorsDigest(tensorsFromJson(input, manifest.inputs))));
    expect(receipt.record.outputDigest).toBe(toHex(tensorsDigest(tensorsFromJson(body.output, manifest.outputs))));
  });

  it('batches concurrent requests without changing any answer', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const rows = Array.from({ length: 40 }, (_, i) => [4 + (i % 4), 2 + (i % 3) / 2, 1 + (i % 6), (i % 5) / 2]);
    const results = await Promise.all(rows.map((row) => client.infer({ model: 'iris@1.0.0', input: { x: [row] } })));
    const session = await ort.InferenceSession.create(IRIS);
    for (let i = 0; i < rows.length; i++) {
      const direct = await session.run({
        x: new ort.Tensor('float32', Float32Array.from(rows[i] as number[]), [1, 4]),
      });
      expect(
        Array.from(
          (
            (results[i] as { output: Record<string, { data: Float32Array }> }).output.probabilities as {
              data: Float32Array;
            }
          ).data,
        ),
      ).toEqual(Array.from(direct.probabilities?.data as Float32Array));
    }
  });
});

describe('bad input gets a 4xx with a stable code, and the node keeps serving', () => {
  const cases: [string, () => Promise<{ status: number; body: { error?: { code: string } } }>, number, string][] = [
    ['unknown model', () => infer({ x: [[1, 2, 3, 4]] }, 'nope@1.0.0'), 404, 'MODEL_NOT_FOUND'],
    ['missing tensor', () => infer({}), 400, 'TENSOR_MISSING'],
    ['extra tensor', () => infer({ x: [[1, 2, 3, 4]], y: [[1]] }), 400, 'TENSOR_UNEXPECTED'],
    ['misnamed tensor', () => infer({ X: [[1, 2, 3, 4]] }), 400, 'TENSOR_UNEXPECTED'],
    [
      'wrong dtype',
      () => infer({ x: { dtype: 'int32', shape: [1, 4], data: [1, 2, 3, 4] } }),
      400,
      'TENSOR_DTYPE_MISMATCH',
    ],
    ['wrong rank', () => infer({ x: [1, 2, 3, 4] }), 400, 'TENSOR_SHAPE_MISMATCH'],
    ['wrong fixed dim', () => infer({ x: [[1, 2, 3]] }), 400, 'TENSOR_SHAPE_MISMATCH'],
    ['huge tensor', () => infer({ x: { dtype: 'float32', shape: [100000, 4], data: [] } }), 400, 'TENSOR_TOO_LARGE'],
    ['not JSON', () => post('/v1/infer', '{"model": "iris@1.0.0", '), 400, 'JSON_INVALID'],
    [
      'oversize body',
      () => post('/v1/infer', JSON.stringify({ model: 'iris', input: { x: [Array(40000).fill(1)] } })),
      413,
      'PAYLOAD_TOO_LARGE',
    ],
    [
      'unknown field',
      () => post('/v1/infer', JSON.stringify({ model: 'iris', input: {}, extra: 1 })),
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'unsupported mode',
      () => post('/v1/infer', JSON.stringify({ model: 'iris', input: {}, mode: 'tee' })),
      400,
      'INVALID_ARGUMENT',
    ],
    ['unknown route', () => post('/v1/nothing', '{}'), 404, 'NOT_FOUND'],
  ];
  for (const [what, send, status, code] of cases) {
    it(what, async () => {
      const r = await send();
      expect(r.body.error?.code, JSON.stringify(r.body)).toBe(code);
      expect(r.status).toBe(status);
    });
  }

  const push = (query: string, body: Uint8Array, auth = true, headers: Record<string, string> = {}) =>
    post(`/v1/models?${query}`, body, {
      'content-type': 'application/octet-stream',
      ...(auth ? { authorization: `Bearer ${node.context.keys.apiKey}` } : {}),
      ...headers,
    });

  it('uploads need the API key', async () => {
    const r = await push('name=other', irisBytes, false);
    expect([r.status, r.body.error?.code]).toEqual([401, 'UNAUTHORIZED']);
  });
  it('a truncated ONNX file is refused, and nothing is stored', async () => {
    const r = await push('name=truncated', irisBytes.subarray(0, irisBytes.length / 2));
    expect([r.status, r.body.error?.code]).toEqual([400, 'MODEL_INVALID']);
    expect(() => node.context.store.resolve('truncated')).toThrowError(
      expect.objectContaining({ code: 'MODEL_NOT_FOUND' }),
    );
  });
  it('a file that is not ONNX is refused', async () => {
    const r = await push('name=notonnx', new TextEncoder().encode('hello, I am not a model'));
    expect([r.status, r.body.error?.code]).toEqual([400, 'MODEL_INVALID']);
  });
  it('an upload whose declared size lies is refused', async () => {
    const r = await push(`name=liar&size=${irisBytes.length + 10}`, irisBytes);
    expect([r.status, r.body.error?.code]).toEqual([400, 'UPLOAD_SIZE_MISMATCH']);
  });
  it('a model over the size limit is refused', async () => {
    const r = await push('name=big', new Uint8Array(5 * 1024 * 1024));
    expect([r.status, r.body.error?.code]).toEqual([413, 'MODEL_TOO_LARGE']);
  });
  it('path traversal in names is refused', async () => {
    for (const name of ['../../etc/passwd', 'a/b', '..', 'a\\b']) {
      const r = await push(`name=${encodeURIComponent(name)}`, irisBytes);
      expect([r.status, r.body.error?.code], name).toEqual([400, 'MODEL_NAME_INVALID']);
      const get = await fetch(`${node.url}/v1/models/${encodeURIComponent(name)}`);
      expect([400, 404], name).toContain(get.status);
    }
    expect((await readdir(join(dataDir, 'models'))).sort()).not.toContain('etc');
  });
  it('re-uploading the same model is idempotent', async () => {
    const first = await push('name=iris&version=1.0.0', irisBytes);
    expect(first.status).toBe(201);
    expect(first.body.id).toBe(node.context.store.resolve('iris@1.0.0').manifestCid);
  });
  it('a slow client (slowloris) is cut off, and others are still served', async () => {
    const url = new URL(node.url);
    const closed = await new Promise<boolean>((resolve) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write('POST /v1/infer HTTP/1.1\r\nHost: x\r\n'); // headers never finish
      });
      socket.on('close', () => resolve(true));
      socket.on('error', () => resolve(true));
      // The node cuts it off after 2 s; the bound only catches a node that never does.
      setTimeout(() => resolve(false), 30_000);
    });
    expect(closed).toBe(true);
    const ok = await infer({ x: [[5.1, 3.5, 1.4, 0.2]] });
    expect(ok.status).toBe(200);
  });
  it('a body that arrives too slowly is cut off', async () => {
    const url = new URL(node.url);
    const status = await new Promise<number | string>((resolve) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method: 'POST',
          path: '/v1/infer',
          headers: { 'content-type': 'application/json', 'content-length': '1000' },
        },
        (res) => resolve(res.statusCode ?? 0),
      );
      req.on('error', () => resolve('closed'));
      req.write('{"model":');
      setTimeout(() => resolve('still open'), 30_000);
    });
    expect([408, 'closed']).toContain(status);
  });
});

describe('health and metrics', () => {
  it('reports health and Prometheus metrics', async () => {
    // Three answers at once: one batch or more, never more batches than records.
    const answers = await Promise.all([1, 2, 3].map((i) => infer({ x: [[5.1, 3.5, 1.4, i / 10]] })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    const health = (await (await fetch(`${node.url}/healthz`)).json()) as { status: string };
    expect(health.status).toBe('ok');
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    expect(metrics).toMatch(/^verity_http_requests_total\{/m);
    expect(metrics).toMatch(/^verity_log_size \d+/m);
    const records = Number(/^verity_log_append_seconds_count (\d+)/m.exec(metrics)?.[1]);
    const batches = Number(/^verity_log_batches_total (\d+)/m.exec(metrics)?.[1]);
    expect(records).toBeGreaterThanOrEqual(3);
    expect(batches).toBeGreaterThanOrEqual(1);
    expect(batches).toBeLessThanOrEqual(records);
  });
  it('tensors built in code digest the same as their JSON', () => {
    const t = { x: createTensor('float32', [1, 4], new Float32Array([5.1, 3.5, 1.4, 0.2])) };
    expect(toHex(tensorsDigest(t))).toBe(
      toHex(
        tensorsDigest(
          tensorsFromJson({ x: [[5.1, 3.5, 1.4, 0.2]] }, [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }]),
        ),
      ),
    );
  });
});
