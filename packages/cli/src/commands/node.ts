import { createReadStream, existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ConfigInput, loadConfig, startNode, type VerityNode } from '@verity/node';
import { createClient } from '@verity/sdk';
import { parseFlags, UsageError } from '../usage.js';

const NODE_FLAGS = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** The example models shipped in the repository (built by the scripts in examples/). */
export const EXAMPLES_DIR = fileURLToPath(new URL('../../../../examples/models/', import.meta.url));

async function start(args: string[], defaults: ConfigInput): Promise<{ node: VerityNode; json: boolean }> {
  const { values, positionals } = parseFlags({ args, options: NODE_FLAGS, allowPositionals: false });
  void positionals;
  if (values.port !== undefined && !/^\d+$/.test(values.port)) throw new UsageError('--port must be a number');
  const overrides: ConfigInput = {
    ...defaults,
    ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(values.port === undefined ? {} : { port: Number(values.port) }),
    ...(values['log-level'] === undefined ? {} : { logLevel: values['log-level'] }),
  };
  const config = loadConfig({
    ...(values.config === undefined ? {} : { file: values.config }),
    env: process.env,
    overrides,
  });
  const node = await startNode(config);
  // Stop in reverse order on SIGINT/SIGTERM: finish requests in flight, flush the log.
  const stop = () => {
    void node.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return { node, json: values.json };
}

/** `verity node start`: runs a node until stopped. */
export async function runNodeStart(args: string[]): Promise<number> {
  const { node, json } = await start(args, {});
  const info = {
    url: node.url,
    address: node.context.keys.address,
    logKey: node.context.keys.logKey,
    dataDir: node.context.config.dataDir,
  };
  process.stdout.write(
    json
      ? `${JSON.stringify(info)}\n`
      : `Verity node ${info.address} listening on ${info.url}\n  log key ${info.logKey}\n  data ${info.dataDir}\n`,
  );
  return new Promise(() => {}); // runs until a signal stops it
}

interface Sample {
  readonly inputs: Record<string, unknown>;
}

/** `verity up`: a node with the example models loaded, and a copy-paste example. */
export async function runUp(args: string[]): Promise<number> {
  const { node, json } = await start(args, { logLevel: 'warn' });
  const client = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
  const loaded: { ref: string; id: string; sample?: Sample }[] = [];
  const files = existsSync(EXAMPLES_DIR)
    ? (await readdir(EXAMPLES_DIR)).filter((f) => f.endsWith('.onnx') || f.endsWith('.gguf')).sort()
    : [];
  for (const file of files) {
    const name = file.replace(/\.(onnx|gguf)$/, '');
    const path = join(EXAMPLES_DIR, file);
    const model = await client.pushModel({
      name,
      version: '1.0.0',
      format: file.endsWith('.gguf') ? 'gguf' : 'onnx',
      data: createReadStream(path) as AsyncIterable<Uint8Array>,
      size: statSync(path).size,
      description: `Verity example model ${name}`,
    });
    let sample: Sample | undefined;
    const samplesPath = join(EXAMPLES_DIR, `${name}.samples.json`);
    if (existsSync(samplesPath)) {
      const parsed = JSON.parse(await readFile(samplesPath, 'utf8')) as unknown;
      const first = (parsed as { samples?: unknown[] }).samples?.[0];
      if (first && typeof first === 'object' && 'inputs' in first) sample = first as Sample;
    }
    loaded.push({ ref: model.ref, id: model.id, ...(sample === undefined ? {} : { sample }) });
  }
  const info = {
    url: node.url,
    address: node.context.keys.address,
    logKey: node.context.keys.logKey,
    dataDir: node.context.config.dataDir,
    models: loaded.map(({ ref, id }) => ({ ref, id })),
  };
  if (json) {
    process.stdout.write(`${JSON.stringify(info)}\n`);
  } else {
    const lines = [
      `Verity is up at ${node.url}`,
      `  node ${info.address}`,
      `  log key ${info.logKey}`,
      ...loaded.map((m) => `  model ${m.ref}  ${m.id}`),
    ];
    const example = loaded.find((m) => m.sample && m.ref.startsWith('iris@')) ?? loaded.find((m) => m.sample);
    if (example?.sample) {
      const input = JSON.stringify(example.sample.inputs);
      lines.push(
        '',
        'Try it (in another terminal):',
        `  npm run verity -- infer ${example.ref} --url ${node.url} --input '${input}' --out bundle.json`,
        '  npm run verity -- verify bundle.json --trust-bundle-nodes',
        `  curl -s ${node.url}/v1/infer -H 'content-type: application/json' -d '${JSON.stringify({ model: example.ref, input: example.sample.inputs })}'`,
      );
    }
    const llm = loaded.find((m) => m.ref.startsWith('tiny-chat@'));
    if (llm) {
      lines.push(
        `  npm run verity -- chat ${llm.ref} --url ${node.url} --message 'Hello!' --seed 7   (a tiny random-weight LLM: gibberish, verified)`,
        `  any OpenAI client: base URL ${node.url}/v1, model "${llm.ref}"`,
      );
    }
    lines.push('', 'Ctrl-C stops the node (requests in flight finish, the log is flushed).');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return new Promise(() => {});
}
