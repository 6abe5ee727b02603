/**
 * A server process for bench/serve.ts, either the Verity node (`verified`) or the baseline
 * (`baseline`): the same Fastify stack, the same onnxruntime-node runtime, the same executor and
 * tensor JSON handling, but no receipt — no record, no log, no signature.
 *
 *   node bench/dist/serve-target.js verified|baseline PORT DATADIR MODEL.onnx
 */
import { readFileSync } from 'node:fs';
import { createExecutor, createOnnxRuntime, loadConfig, runBatched, startNode } from '@verity/node';
import { tensorsFromJson, tensorsToExactJson } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import Fastify from 'fastify';

const [kind, portText, dataDir, modelPath] = process.argv.slice(2) as [string, string, string, string];
const port = Number(portText);
// Exit cleanly on SIGINT/SIGTERM so profilers (--cpu-prof) can write their output.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(0));
const config = loadConfig({
  env: process.env,
  overrides: { dataDir, port, logLevel: 'silent', limits: { requestsPerSecond: 1e6, burst: 1e6 } },
});

if (kind === 'verified') {
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
  app.post('/v1/infer', async (request) => {
    const body = request.body as { input: unknown };
    const inputs = tensorsFromJson(body.input, model.inputs);
    const output = await executor.run('bench', model, inputs);
    return { output: tensorsToExactJson(output) };
  });
  const url = await app.listen({ host: '127.0.0.1', port });
  process.stdout.write(`ready ${url}\n`);
}
