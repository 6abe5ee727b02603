/**
 * A server process for bench/serve.ts, either the Verity node (`verified`) or the baseline
 * (`baseline`, or `fastify`): the same Fastify stack, the same onnxruntime-node runtime, the same
 * executor and tensor JSON handling, but no receipt — no record, no log, no signature.
 *
 * `plain` is what a user might write instead of either: node:http and onnxruntime-node, the
 * tensors in the full JSON form (`{"x": {"dtype", "shape", "data"}}`) in and out, no executor, no
 * validation beyond what onnxruntime does, no receipt.
 *
 * `baseline` also has the node's two per-request hooks that have nothing to do with verification
 * (api/server.ts: an async `onRequest` taking a token from the client's rate-limit bucket, an async
 * `onResponse` counting the request by route, method and status), so that the ratio measures what
 * verification costs, not what rate limiting and request metrics cost (~3 µs of CPU per request,
 * ~10% of the baseline's). `fastify` is the bare route without them.
 *
 *   node bench/dist/serve-target.js verified|baseline|fastify|plain PORT DATADIR MODEL.onnx
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createExecutor, createOnnxRuntime, loadConfig, runBatched, startNode } from '@verity/node';
import { tensorsFromJson, tensorsToExactJson } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import Fastify from 'fastify';
import * as ort from 'onnxruntime-node';

const [kind, portText, dataDir, modelPath] = process.argv.slice(2) as [string, string, string, string];
const port = Number(portText);
// Exit cleanly on SIGINT/SIGTERM so profilers (--cpu-prof) can write their output.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0));
const config = loadConfig({
  env: process.env,
  overrides: { dataDir, port, logLevel: 'silent', limits: { requestsPerSecond: 1e6, burst: 1e6 } },
});

if (kind === 'plain') {
  const session = await ort.InferenceSession.create(modelPath);
  type Json = { dtype: ort.Tensor.Type; shape: number[]; data: (number | string | boolean)[] };
  const toOrt = (t: Json) => {
    const data =
      t.dtype === 'int64'
        ? BigInt64Array.from(t.data, (v) => BigInt(v))
        : t.dtype === 'float32'
          ? Float32Array.from(t.data as number[])
          : (t.data as number[]);
    return new ort.Tensor(t.dtype, data as Float32Array, t.shape);
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { input: Record<string, Json> };
        const feeds: Record<string, ort.Tensor> = {};
        for (const [name, t] of Object.entries(body.input)) feeds[name] = toOrt(t);
        const results = await session.run(feeds);
        const output: Record<string, unknown> = {};
        for (const [name, t] of Object.entries(results)) {
          output[name] = {
            dtype: t.type,
            shape: t.dims,
            data: t.type === 'int64' ? Array.from(t.data as BigInt64Array, Number) : Array.from(t.data as Float32Array),
          };
        }
        const text = JSON.stringify({ output });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      } catch (e) {
        res.writeHead(400, { 'content-type': 'text/plain' });
        res.end(String(e));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  process.stdout.write(`ready http://127.0.0.1:${port}\n`);
} else if (kind === 'verified') {
  const node = await startNode(config);
  await createClient({ url: node.url, apiKey: node.context.keys.apiKey }).pushModel({
    name: 'bench',
    version: '1.0.0',
    data: new Uint8Array(readFileSync(modelPath)),
  });
  process.stdout.write(`ready ${node.url}\n`);
} else {
  const runtime = createOnnxRuntime();
  const model = await runtime.load(modelPath);
  const executor = createExecutor(config.executor, runBatched);
  const app = Fastify({ bodyLimit: config.limits.bodyBytes });
  if (kind === 'baseline') {
    // The shape of the node's hooks (api/server.ts, api/rate-limit.ts), with the same work per request.
    const { requestsPerSecond: rate, burst } = config.limits;
    const buckets = new Map<string, { tokens: number; at: number }>();
    const requests = new Map<string, number>();
    app.addHook('onRequest', async (request) => {
      const now = performance.now();
      let b = buckets.get(request.ip);
      if (b === undefined) b = { tokens: burst, at: now };
      else {
        buckets.delete(request.ip);
        b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
        b.at = now;
      }
      buckets.set(request.ip, b);
      if (b.tokens < 1) throw new Error('rate limited');
      b.tokens -= 1;
    });
    app.addHook('onResponse', async (request, reply) => {
      const key = `${request.routeOptions.url ?? 'unknown'}\u0000${request.method}\u0000${reply.statusCode}`;
      requests.set(key, (requests.get(key) ?? 0) + 1);
    });
  }
  app.post('/v1/infer', async (request) => {
    const body = request.body as { input: unknown };
    const inputs = tensorsFromJson(body.input, model.inputs);
    const output = await executor.run('bench', model, inputs);
    return { output: tensorsToExactJson(output) };
  });
  const url = await app.listen({ host: '127.0.0.1', port });
  process.stdout.write(`ready ${url}\n`);
}
