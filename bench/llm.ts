/**
 * LLM serving: bare node-llama-cpp against the same model behind a Verity node
 * (`POST /v1/chat/completions`, streamed over SSE, the receipt in the last chunk), in the same run,
 * on the same GGUF file with the same llama.cpp settings (CPU, 1 thread, same context size, greedy
 * decoding with a fixed seed, same prompt, same max_tokens).
 *
 *   npm run bench:llm          (or: node bench/dist/llm.js [rounds] [maxTokens])
 *
 * Paths:
 * - `bare`: node-llama-cpp in this process (`LlamaChat.generateResponse`, ChatML, `onTextChunk`).
 * - `bare + HTTP/SSE`: the same bare generation behind a minimal `node:http` server in a child
 *   process that streams OpenAI-shaped SSE chunks (one `JSON.stringify` and one write per text
 *   chunk) and logs nothing: what HTTP and SSE alone cost, to tell it apart from Verity's own cost.
 * - `verity`: a Verity node in a child process (fsync on, as in production), measured by a
 *   streaming HTTP client here; `verity (openai, non-streamed)`: the official `openai` client.
 * Servers run in child processes so the load generator does not share their event loop (it still
 * shares the 2 cores, as a local client would). The model (a random-weight llama, ~48 MB f16, a
 * few ms per token) is written to a temp file; its end-of-turn token is biased away, so every
 * answer runs to max_tokens.
 *
 * Measured per answer: TTFT (request start → first content chunk), decode tokens/s (completion
 * tokens − 1 over first → last content chunk), end-to-end tokens/s (completion tokens over request
 * start → end of the answer, receipt included), tail (last content chunk → end of the stream: for
 * Verity, the log append and signed checkpoint), and the server's JS-thread CPU per answer (from
 * /proc: where per-chunk costs show, whatever the noise on the cores). Rounds are interleaved,
 * their order reversed every other round, after a warm-up; the tables give medians. A second phase
 * runs 2 answers at once on 2 sequences (bare: two sequences of one context in parallel).
 *
 * Target (docs/design.md §5): Verity ≥ 0.97 of bare tokens/s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTinyLlama } from '@verity/examples/dist/llm/tiny-llama.js';
import { loadConfig, startNode } from '@verity/node';
import { createClient } from '@verity/sdk';
import { type ChatHistoryItem, getLlama, LlamaChat, LlamaLogLevel, resolveChatWrapper } from 'node-llama-cpp';
import OpenAI from 'openai';

const MODEL_OPTIONS = {
  layers: 8,
  embedding: 512,
  heads: 8,
  kvHeads: 4,
  feedForward: 1408,
  endOfTurnBias: -30,
  tensorType: 'f16',
} as const;
const CONTEXT_SIZE = 1024;
const THREADS = 1;
const SEED = 42;
const MODEL_NAME = 'bench-llm';
const MESSAGES = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: 'Tell me a long story about a lighthouse keeper and the sea.' },
] as const;
/** What the Verity runtime passes for temperature 0 and a seed (see `samplingOptions` there). */
const SAMPLING = {
  temperature: 0,
  topP: 1,
  topK: 0,
  minP: 0,
  seed: SEED,
  repeatPenalty: false,
  contextShift: { strategy: 'eraseFirstResponseAndKeepFirstSystem' },
} as const;
const SELF = fileURLToPath(import.meta.url);
const PROFILE_DIR = process.env.BENCH_CPU_PROF;

// ---------------------------------------------------------------------------------------------
// Bare node-llama-cpp (here and in the plain HTTP child)

interface Generation {
  text: string;
  tokens: number;
}

interface Engine {
  generate(maxTokens: number, onText: (text: string) => void): Promise<Generation>;
  close(): Promise<void>;
}

function history(): ChatHistoryItem[] {
  return [
    { type: 'system', text: MESSAGES[0].content },
    { type: 'user', text: MESSAGES[1].content },
    { type: 'model', response: [] },
  ];
}

/** One llama.cpp context with `sequences` sequences; each generation on a fresh one (as Verity does). */
async function openEngine(modelPath: string, sequences: number): Promise<Engine> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, logger: () => {} });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ sequences, contextSize: CONTEXT_SIZE, threads: THREADS });
  const chatWrapper = resolveChatWrapper(model);
  return {
    async generate(maxTokens, onText) {
      const sequence = context.getSequence();
      const before = sequence.tokenMeter.getState().usedOutputTokens;
      const chat = new LlamaChat({
        contextSequence: sequence,
        autoDisposeSequence: false,
        ...(chatWrapper ? { chatWrapper } : {}),
      });
      try {
        const res = await chat.generateResponse(history(), { ...SAMPLING, maxTokens, onTextChunk: onText });
        return { text: res.response, tokens: sequence.tokenMeter.getState().usedOutputTokens - before };
      } finally {
        chat.dispose({ disposeSequence: false });
        sequence.dispose();
      }
    },
    async close() {
      await context.dispose();
      await model.dispose();
      await llama.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes: `--serve verity|http MODEL DATADIR SEQUENCES`, prints `ready URL`

async function serveChild(kind: string, modelPath: string, dataDir: string, sequences: number): Promise<void> {
  let stop: () => Promise<void>;
  if (kind === 'verity') {
    const node = await startNode(
      loadConfig({
        overrides: {
          dataDir,
          port: 0,
          logLevel: 'silent',
          limits: { requestsPerSecond: 1e6, burst: 1e6 },
          llm: { gpu: 'cpu', sequences, contextSize: CONTEXT_SIZE, threads: THREADS },
        },
      }),
    );
    await createClient({ url: node.url, apiKey: node.context.keys.apiKey }).pushModel({
      name: MODEL_NAME,
      format: 'gguf',
      data: new Uint8Array(readFileSync(modelPath)),
    });
    stop = () => node.stop();
    process.stdout.write(`ready ${node.url}\n`);
  } else {
    // The bare engine behind plain HTTP: OpenAI-shaped SSE chunks, no executor, no log.
    const engine = await openEngine(modelPath, sequences);
    let n = 0;
    const server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => parts.push(d));
      req.on('end', async () => {
        const body = JSON.parse(Buffer.concat(parts).toString()) as { max_tokens: number; model: string };
        const id = `chatcmpl-${++n}`;
        const created = Math.floor(Date.now() / 1000);
        const chunk = (choice: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) => ({
          id,
          object: 'chat.completion.chunk',
          created,
          model: body.model,
          system_fingerprint: 'bare',
          choices: choice ? [choice] : [],
          ...extra,
        });
        const send = (data: unknown) =>
          res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
        let started = false;
        const out = await engine.generate(body.max_tokens, (text) => {
          if (text === '') return;
          if (!started) send(chunk({ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }));
          started = true;
          send(chunk({ index: 0, delta: { content: text }, finish_reason: null }));
        });
        send(chunk({ index: 0, delta: {}, finish_reason: 'length' }));
        const usage = { prompt_tokens: 0, completion_tokens: out.tokens, total_tokens: out.tokens };
        send(chunk(undefined, { usage }));
        send('[DONE]');
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    stop = async () => {
      server.close();
      await engine.close();
    };
    process.stdout.write(`ready http://127.0.0.1:${(server.address() as AddressInfo).port}\n`);
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}

interface Child {
  readonly url: string;
  readonly pid: number | undefined;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

async function startChild(kind: string, modelPath: string, sequences: number): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), `verity-bench-llm-${kind}-`));
  const flags = PROFILE_DIR === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`];
  const child = spawn(process.execPath, [...flags, SELF, '--serve', kind, modelPath, dir, String(sequences)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\S+)/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.on('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
  return {
    url,
    pid: child.pid,
    stop: async () => {
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.kill('SIGTERM');
      await exited;
      clearTimeout(timer);
      children.delete(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** CPU ms of a process's main thread (its JS thread), from schedstat (ns); NaN without /proc. */
function jsThreadMs(pid: number | undefined): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'latin1').split(' ')[0]) / 1e6;
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Sample {
  ttft: number;
  decodeTps: number;
  e2eTps: number;
  /** Last content chunk → end of the answer (receipt and [DONE] for streams). */
  tail: number;
  tokens: number;
  text: string;
}

function sample(t0: number, tFirst: number, tLast: number, tEnd: number, tokens: number, text: string): Sample {
  return {
    ttft: tFirst - t0,
    decodeTps: ((tokens - 1) * 1000) / (tLast - tFirst),
    e2eTps: (tokens * 1000) / (tEnd - t0),
    tail: tEnd - tLast,
    tokens,
    text,
  };
}

async function bareOnce(engine: Engine, maxTokens: number): Promise<Sample> {
  let tFirst = Number.NaN;
  let tLast = Number.NaN;
  const t0 = performance.now();
  const out = await engine.generate(maxTokens, (text) => {
    if (text === '') return;
    const now = performance.now();
    if (Number.isNaN(tFirst)) tFirst = now;
    tLast = now;
  });
  return sample(t0, tFirst, tLast, performance.now(), out.tokens, out.text);
}

/** One streamed chat completion over HTTP, parsing the SSE as a client would (receipt last, for Verity). */
function streamOnce(url: string, agent: Agent, maxTokens: number, receiptExpected: boolean): Promise<Sample> {
  const body = JSON.stringify({
    model: MODEL_NAME,
    messages: MESSAGES,
    max_tokens: maxTokens,
    temperature: 0,
    seed: SEED,
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise<Sample>((resolve, reject) => {
    let tFirst = Number.NaN;
    let tLast = Number.NaN;
    let tokens = 0;
    let text = '';
    let buffer = '';
    let done = false;
    let receipt = false;
    const t0 = performance.now();
    const req = request(
      `${url}/v1/chat/completions`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.setEncoding('utf8');
        if (res.statusCode !== 200) {
          let err = '';
          res.on('data', (d: string) => {
            err += d;
          });
          res.on('end', () => reject(new Error(`HTTP ${res.statusCode}: ${err}`)));
          return;
        }
        res.on('data', (d: string) => {
          const now = performance.now();
          buffer += d;
          for (let i = buffer.indexOf('\n\n'); i >= 0; i = buffer.indexOf('\n\n')) {
            const event = buffer.slice(0, i);
            buffer = buffer.slice(i + 2);
            if (!event.startsWith('data: ')) continue;
            const data = event.slice(6);
            if (data === '[DONE]') {
              done = true;
              continue;
            }
            const chunk = JSON.parse(data) as {
              error?: unknown;
              choices: { delta?: { content?: string } }[];
              usage?: { completion_tokens: number };
              verity?: unknown;
            };
            if (chunk.error) reject(new Error(`stream error: ${JSON.stringify(chunk.error)}`));
            const content = chunk.choices[0]?.delta?.content;
            if (content) {
              if (Number.isNaN(tFirst)) tFirst = now;
              tLast = now;
              text += content;
            }
            if (chunk.usage) tokens = chunk.usage.completion_tokens;
            if (chunk.verity) receipt = true;
          }
        });
        res.on('end', () => {
          if (!done) reject(new Error('the stream ended before [DONE]'));
          else if (receipt !== receiptExpected) reject(new Error(`receipt chunk: ${receipt}`));
          else resolve(sample(t0, tFirst, tLast, performance.now(), tokens, text));
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** One non-streamed chat completion through the official `openai` client: only end to end. */
async function openAiOnce(client: OpenAI, maxTokens: number): Promise<Sample> {
  const t0 = performance.now();
  const res = await client.chat.completions.create({
    model: MODEL_NAME,
    messages: [...MESSAGES],
    max_tokens: maxTokens,
    temperature: 0,
    seed: SEED,
  });
  const tEnd = performance.now();
  const tokens = res.usage?.completion_tokens ?? 0;
  const text = res.choices[0]?.message.content ?? '';
  return { ttft: Number.NaN, decodeTps: Number.NaN, e2eTps: (tokens * 1000) / (tEnd - t0), tail: 0, tokens, text };
}

/** `n` answers at once: mean TTFT, aggregate tokens/s (all tokens over the first start → last end). */
async function concurrent(n: number, one: () => Promise<Sample>): Promise<Sample> {
  const t0 = performance.now();
  const all = await Promise.all(Array.from({ length: n }, one));
  const tEnd = performance.now();
  const tokens = all.reduce((s, x) => s + x.tokens, 0);
  const avg = (f: (s: Sample) => number) => all.reduce((s, x) => s + f(x), 0) / n;
  return {
    ttft: avg((s) => s.ttft),
    decodeTps: all.reduce((s, x) => s + x.decodeTps, 0),
    e2eTps: (tokens * 1000) / (tEnd - t0),
    tail: avg((s) => s.tail),
    tokens,
    text: all[0]?.text ?? '',
  };
}

interface Path {
  readonly name: string;
  readonly once: () => Promise<Sample>;
  /** The process whose JS thread serves it. */
  readonly pid: number | undefined;
  readonly samples: Sample[];
  /** Its server's JS-thread CPU over the measured answers. */
  cpuMs: number;
  /** This process's JS-thread CPU while a server in a child process answered (the client's share). */
  clientMs: number;
}

function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function measure(paths: Path[], rounds: number, warmup: number): Promise<void> {
  for (let i = 0; i < warmup; i++) for (const p of paths) await p.once();
  for (let r = 0; r < rounds; r++) {
    // Bare first in even rounds, last in odd ones: drift in the machine's load weighs on all alike.
    for (const p of r % 2 === 0 ? paths : [...paths].reverse()) {
      const cpu0 = jsThreadMs(p.pid);
      const client0 = jsThreadMs(process.pid);
      p.samples.push(await p.once());
      p.cpuMs += jsThreadMs(p.pid) - cpu0;
      if (p.pid !== process.pid)
        p.clientMs = (Number.isNaN(p.clientMs) ? 0 : p.clientMs) + jsThreadMs(process.pid) - client0;
    }
  }
}

function table(title: string, paths: Path[]): void {
  const bare = paths[0] as Path;
  const bareDecode = median(bare.samples.map((s) => s.decodeTps));
  const bareE2e = median(bare.samples.map((s) => s.e2eTps));
  const f = (x: number, d = 1) => (Number.isNaN(x) ? '–' : x.toFixed(d));
  console.log(`\n${title}`);
  console.log(
    '| path | TTFT ms | tokens/s (decode) | ratio to bare | tokens/s (end to end) | ratio to bare | tail ms | server JS CPU ms | client JS CPU ms |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const p of paths) {
    const decode = median(p.samples.map((s) => s.decodeTps));
    const e2e = median(p.samples.map((s) => s.e2eTps));
    console.log(
      `| ${p.name} | ${f(median(p.samples.map((s) => s.ttft)))} | ${f(decode)} | ${f(decode / bareDecode, 3)} | ${f(e2e)} | ${f(e2e / bareE2e, 3)} | ${f(median(p.samples.map((s) => s.tail)))} | ${f(p.cpuMs / p.samples.length)} | ${f(p.clientMs / p.samples.length)} |`,
    );
  }
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 10);
  const maxTokens = Number(process.argv[3] ?? 128);
  const dir = mkdtempSync(join(tmpdir(), 'verity-bench-llm-'));
  const modelPath = join(dir, 'bench-llm.gguf');
  writeFileSync(modelPath, buildTinyLlama(MODEL_OPTIONS));
  const started: Child[] = [];
  const engines: Engine[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  try {
    console.log(
      `LLM serving: bare node-llama-cpp vs Verity — random llama ${MODEL_OPTIONS.layers}×${MODEL_OPTIONS.embedding} ${MODEL_OPTIONS.tensorType}, ` +
        `CPU, ${THREADS} thread, context ${CONTEXT_SIZE}, greedy, max_tokens ${maxTokens}, ${rounds} rounds (medians), node ${process.version}`,
    );
    for (const sequences of [1, 2]) {
      const engine = await openEngine(modelPath, sequences);
      engines.push(engine);
      const http = await startChild('http', modelPath, sequences);
      started.push(http);
      const verity = await startChild('verity', modelPath, sequences);
      started.push(verity);
      const openai = new OpenAI({ baseURL: `${verity.url}/v1`, apiKey: 'not-needed', maxRetries: 0 });
      const at = (one: () => Promise<Sample>) => (sequences === 1 ? one : () => concurrent(sequences, one));
      const paths: Path[] = [
        { name: 'bare node-llama-cpp', once: at(() => bareOnce(engine, maxTokens)), pid: process.pid },
        {
          name: 'bare + HTTP/SSE (no log)',
          once: at(() => streamOnce(http.url, agent, maxTokens, false)),
          pid: http.pid,
        },
        { name: 'verity, streamed', once: at(() => streamOnce(verity.url, agent, maxTokens, true)), pid: verity.pid },
        ...(sequences === 1
          ? [
              {
                name: 'verity, openai client, not streamed',
                once: () => openAiOnce(openai, maxTokens),
                pid: verity.pid,
              },
            ]
          : []),
      ].map((p) => ({ ...p, samples: [], cpuMs: 0, clientMs: Number.NaN }));
      await measure(paths, rounds, 2);
      const texts = new Set(paths.map((p) => p.samples.at(-1)?.text));
      const tokens = paths.map((p) => p.samples.at(-1)?.tokens);
      table(
        sequences === 1
          ? `One answer at a time (1 sequence); tokens per answer ${tokens.join('/')}, same text on all paths: ${texts.size === 1 ? 'yes' : 'NO'}`
          : `2 answers at once (2 sequences): TTFT is the mean of the two, tokens/s the sum (decode) or all tokens over the wall time (end to end); tokens per round ${tokens.join('/')}`,
        paths,
      );
      await Promise.all([http.stop(), verity.stop()]);
      started.length = 0;
      engines.length = 0;
      await engine.close();
    }
    console.log('\ntarget ≥ 0.97 of bare tokens/s (verity, streamed, decode and end to end)');
  } finally {
    agent.destroy();
    await Promise.all(started.map((c) => c.stop()));
    for (const e of engines) await e.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--serve') {
  const [kind, modelPath, dataDir, sequences] = process.argv.slice(3) as [string, string, string, string];
  await serveChild(kind, modelPath, dataDir, Number(sequences));
} else {
  await main();
}
