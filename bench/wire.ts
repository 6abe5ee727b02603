/**
 * JSON against binary tensors on `/v1/infer` (docs/api.md "Binary tensors"), in one run: the same
 * image-sized input (float32 [1, 3, 224, 224], values in [0, 1) as a normalised image has), held
 * as a Float32Array, sent through the SDK's `infer` over each wire (`wire: 'json'` turns it into
 * decimal text, the default sends its bytes), answer verified either way. Two models: one that
 * answers little (GlobalAveragePool, as a classifier would: [1, 3, 1, 1]) and one that answers the
 * whole image (Identity, as a denoiser or segmenter would). Printed per model and wire: request and
 * answer bytes, p50 and p99 of the whole call (client encoding, HTTP, node, verification,
 * decoding), and the ratios binary / JSON.
 *
 *   npm run bench:wire            (or: node bench/dist/wire.js [requests per wire])
 *
 * The node runs in this process (one event loop for client and node): the p50 ratio counts every
 * CPU cost on both sides, which is what a caller on the same machine pays. Wires alternate in
 * rounds (JSON, binary, binary, JSON) so drift in the machine's load weighs on both alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeModel } from '@verity/examples/dist/onnx-writer.js';
import { loadConfig, startNode } from '@verity/node';
import type { Tensor, TensorMap } from '@verity/protocol';
import { createClient } from '@verity/sdk';

const requests = Number(process.argv[2] ?? 40);
const SHAPE = [1, 3, 224, 224];
const ELEMENTS = SHAPE.reduce((a, b) => a * b, 1);

function model(name: string, op: string, outShape: (number | string)[]): Uint8Array {
  return encodeModel({
    name,
    inputs: [{ name: 'x', elemType: 'float32', shape: SHAPE }],
    outputs: [{ name: 'y', elemType: 'float32', shape: outShape }],
    initializers: [],
    nodes: [{ opType: op, inputs: ['x'], outputs: ['y'] }],
  });
}

/** A deterministic "image": a xorshift stream of floats in [0, 1). */
function image(): TensorMap {
  const data = new Float32Array(ELEMENTS);
  let s = 0x9e3779b9;
  for (let i = 0; i < data.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    data[i] = (s >>> 0) / 2 ** 32;
  }
  return { x: { dtype: 'float32', shape: SHAPE, data } as Tensor };
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'verity-bench-wire-'));
  // Room for the identity model's JSON answers and requests (~2.9 MB each) whatever the digits.
  const node = await startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        limits: { bodyBytes: 64 * 1024 * 1024, maxElements: 1 << 22 },
      },
    }),
  );
  try {
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    const models = [
      {
        name: 'pool',
        label: 'classifier-shaped (GlobalAveragePool → [1,3,1,1])',
        bytes: model('pool', 'GlobalAveragePool', [1, 3, 1, 1]),
      },
      {
        name: 'identity',
        label: 'image-shaped (Identity → [1,3,224,224])',
        bytes: model('identity', 'Identity', SHAPE),
      },
    ];
    const { address, logKey } = node.context.keys;
    // Bytes on the wire of the last /v1/infer call: the body sent, and the answer's Content-Length.
    const last = { request: 0, answer: 0 };
    const counting: typeof fetch = async (url, init) => {
      const response = await fetch(url, init);
      if (String(url).endsWith('/v1/infer')) {
        const body = init?.body;
        last.request = typeof body === 'string' ? Buffer.byteLength(body) : (body as Uint8Array).byteLength;
        last.answer = Number(response.headers.get('content-length'));
      }
      return response;
    };
    const client = createClient({ url: node.url, trust: { nodes: [{ address, logKey }] }, fetch: counting });
    const input = image();
    console.log(
      `# JSON vs binary tensors on /v1/infer: float32 [${SHAPE.join(', ')}], ${requests} calls per wire, SDK infer (verified)`,
    );
    console.log('model | wire | request bytes | answer bytes | p50 ms | p99 ms');
    console.log('---|---|---|---|---|---');
    const ratios: string[] = [];
    for (const m of models) {
      const id = (await admin.pushModel({ name: m.name, version: '1.0.0', data: m.bytes })).id;
      const times: Record<'json' | 'binary', number[]> = { json: [], binary: [] };
      const answerBytes: Record<'json' | 'binary', number> = { json: 0, binary: 0 };
      const requestBytes: Record<'json' | 'binary', number> = { json: 0, binary: 0 };
      const call = async (wire: 'json' | 'binary') => {
        const start = performance.now();
        const r = await client.infer({ model: id, input, wire });
        times[wire].push(performance.now() - start);
        if (r.output.y === undefined) throw new Error('no output');
        requestBytes[wire] = last.request;
        answerBytes[wire] = last.answer;
      };
      for (let i = 0; i < 3; i++) {
        await call('json');
        await call('binary');
      }
      times.json.length = 0;
      times.binary.length = 0;
      for (let i = 0; i < requests / 2; i++) {
        const order: ('json' | 'binary')[] = i % 2 === 0 ? ['json', 'binary'] : ['binary', 'json'];
        for (const wire of order) {
          await call(wire);
          await call(wire);
        }
      }
      const stats = { json: [0, 0], binary: [0, 0] } as Record<'json' | 'binary', [number, number]>;
      for (const wire of ['json', 'binary'] as const) {
        const sorted = [...times[wire]].sort((a, b) => a - b);
        stats[wire] = [quantile(sorted, 0.5), quantile(sorted, 0.99)];
        console.log(
          `${m.label} | ${wire} | ${requestBytes[wire]} | ${answerBytes[wire]} | ${stats[wire][0].toFixed(1)} | ${stats[wire][1].toFixed(1)}`,
        );
      }
      ratios.push(
        `${m.label}: binary/JSON request bytes ${(requestBytes.binary / requestBytes.json).toFixed(3)}, answer bytes ${(answerBytes.binary / answerBytes.json).toFixed(3)}, p50 ${(stats.binary[0] / stats.json[0]).toFixed(3)}, p99 ${(stats.binary[1] / stats.json[1]).toFixed(3)}`,
      );
    }
    console.log('');
    for (const r of ratios) console.log(r);
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
