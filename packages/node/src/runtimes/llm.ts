/**
 * The LLM runtime: GGUF models through `node-llama-cpp` (docs/design.md §2.8), behind the same
 * {@link Runtime} interface as ONNX. CPU by default; with `gpu: 'auto'` node-llama-cpp picks its
 * CUDA (or Vulkan, Metal) build where the machine has one.
 *
 * A loaded model owns one llama.cpp context with `sequences` independent sequences: that many
 * generations run at once (the executor's lane for the model has that concurrency), each on a
 * fresh sequence that is released when it ends, whether it finished, failed or was aborted.
 * A fresh sequence per request keeps a run independent of what ran before it, so a fixed seed
 * (or temperature 0) reproduces the tokens on the same build and profile.
 */
import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { fail, type LlmParams, VerityError } from '@verity/protocol';
import type {
  ChatHistoryItem,
  ChatModelFunctionCall,
  ChatModelFunctions,
  Llama,
  LlamaContext,
  LlamaGrammar,
  LlamaModel,
  Token,
  TokenBias,
} from 'node-llama-cpp';

type Lib = typeof import('node-llama-cpp');
let libPromise: Promise<Lib> | undefined;
/** node-llama-cpp, loaded on first use: commands and nodes that never touch an LLM skip its ~0.3 s import. */
function lib(): Promise<Lib> {
  libPromise ??= import('node-llama-cpp');
  return libPromise;
}

import type { ArtifactDescription } from '../store/index.js';
import { checkStructuredOutput, compileJsonSchema, jsonObjectGrammar } from './json-schema.js';
import type { Runtime } from './runtime.js';

/** The runtime's id in records. */
export const LLM_RUNTIME_ID = 'node-llama-cpp';
/** node-llama-cpp's version (kept with the dependency in package.json). */
export const LLM_RUNTIME_VERSION = '3.22.1';

/** Settings of the LLM runtime. */
export interface LlmRuntimeOptions {
  /** `'auto'`: CUDA/Vulkan/Metal where present, else CPU. `false`: always CPU. */
  gpu?: 'auto' | false;
  /** Generations that run at once per model (llama.cpp context sequences). */
  sequences?: number;
  /** Tokens of context per sequence, at most the model's training context. */
  contextSize?: number;
  /**
   * CPU threads per evaluation (0: half the cores, at least one). llama.cpp's threads spin while
   * they wait, so more threads than free cores slows generation down by orders of magnitude when
   * the HTTP server and other work share the machine (measured: 2 threads on 2 busy cores, 2 s
   * for 7 tokens; 1 thread, 3 ms).
   */
  threads?: number;
}

/** One message of a chat, as the OpenAI API sends it (already checked by the HTTP layer). */
export interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content: string | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

/** A function the model may call. */
export interface ToolSpec {
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. */
  parameters?: Record<string, unknown>;
}

/** What the model's output must be. */
export type OutputFormat = { type: 'text' } | { type: 'json_object' } | { type: 'json_schema'; schema: object };

/** One generation. */
export interface LlmJob {
  /** A chat (`messages`) or a plain completion (`prompt`). */
  readonly endpoint: 'chat.completions' | 'completions';
  readonly messages?: readonly ChatMessage[];
  readonly prompt?: string;
  /** Sampling; `max_tokens` is an upper bound (the context may allow fewer). */
  readonly params: LlmParams;
  /** When the caller gave no `max_tokens`: the rest of the context. */
  readonly maxTokensGiven: boolean;
  readonly format?: OutputFormat;
  readonly tools?: readonly ToolSpec[];
  /** `auto` lets the model choose; `required` or a name forces a call (arguments by grammar). */
  readonly toolChoice?: 'none' | 'auto' | 'required' | { name: string };
  /** Called with each piece of text as it is generated (streaming). */
  readonly onText?: (text: string) => void;
  /** Stops the generation (client gone, timeout): the job rejects with `INFERENCE_FAILED`. */
  readonly signal?: AbortSignal;
}

/** The result of a generation. */
export interface LlmResult {
  /** The text (for a forced tool call, empty). */
  readonly text: string;
  readonly toolCalls: readonly { name: string; arguments: string }[];
  readonly finishReason: 'stop' | 'length' | 'tool_calls';
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** The effective token limit (the caller's, or what the context left). */
  readonly maxTokens: number;
}

/** A GGUF model loaded into the LLM runtime. */
export interface LoadedLlm {
  readonly kind: 'llm';
  /** Never batched by concatenation: sequences run side by side inside llama.cpp instead. */
  readonly batchable: false;
  /** Generations at once (the context's sequences). */
  readonly concurrency: number;
  /** Tokens of context per sequence. */
  readonly contextSize: number;
  run(job: LlmJob): Promise<LlmResult>;
  /** Sequences free now (all of them when idle: nothing leaks). */
  sequencesLeft(): number;
  close(): Promise<void>;
}

/** The LLM runtime. */
export interface LlmRuntime extends Runtime<LoadedLlm> {
  /**
   * Loads the llama.cpp binding and resolves the execution profile: `cpu`, or the GPU backend
   * (`cuda`, `vulkan`, `metal`) it picked. `profile` reads `auto` until then, a value no record
   * carries: advertise {@link settledProfile} instead.
   */
  ready(): Promise<string>;
  /** The profile records will carry, once {@link ready} has resolved (or `cpu` when set so); else undefined. */
  settledProfile(): string | undefined;
  /** Reads a GGUF file's header into manifest facts; `MODEL_INVALID` when it is not GGUF. */
  describe(path: string): Promise<ArtifactDescription>;
}

const GGUF_MAGIC = 'GGUF';

let llamas = new Map<string, Promise<Llama>>();

/** One llama.cpp binding per process and GPU setting (loading it costs ~0.3 s). */
function llamaFor(gpu: 'auto' | false): Promise<Llama> {
  const key = String(gpu);
  let p = llamas.get(key);
  if (!p) {
    p = lib().then(({ getLlama, LlamaLogLevel }) =>
      getLlama({ gpu, build: 'never', logLevel: LlamaLogLevel.error, logger: () => {} }),
    );
    p.catch(() => llamas.delete(key));
    llamas.set(key, p);
  }
  return p;
}

/** Drops the cached bindings (tests that check the process exits). */
export function resetLlmBindings(): void {
  llamas = new Map();
}

function fileTypeName(names: Lib['GgufFileType'], t: unknown): string | undefined {
  if (typeof t !== 'number') return undefined;
  return (names as unknown as Record<number, string>)[t];
}

/**
 * Manifest facts from a GGUF header: architecture, context length, chat template, parameter
 * count, quantization, and the model's own name and license.
 */
export async function describeGguf(path: string): Promise<ArtifactDescription> {
  const { readGgufFileInfo, GgufFileType } = await lib();
  let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
  try {
    const head = await import('node:fs/promises').then((fs) => fs.open(path, 'r'));
    try {
      const buf = Buffer.alloc(4);
      await head.read(buf, 0, 4, 0);
      if (buf.toString('latin1') !== GGUF_MAGIC) fail('MODEL_INVALID', 'not a GGUF file (bad magic)');
    } finally {
      await head.close();
    }
    info = await readGgufFileInfo(path, { sourceType: 'filesystem', logWarnings: false });
  } catch (e) {
    if (e instanceof VerityError) throw e;
    throw new VerityError('MODEL_INVALID', 'the GGUF file could not be read', {
      details: { reason: e instanceof Error ? e.message : String(e) },
      cause: e,
    });
  }
  const general = info.metadata.general as unknown as Record<string, unknown>;
  const arch = info.architectureMetadata as unknown as Record<string, unknown>;
  const tokenizer = (info.metadata as unknown as { tokenizer?: Record<string, unknown> }).tokenizer;
  let params = 0n;
  for (const t of info.tensorInfo ?? []) {
    params += t.dimensions.reduce<bigint>((a, d) => a * BigInt(d), 1n);
  }
  const metadata: Record<string, string> = {};
  const put = (k: string, v: unknown) => {
    if (typeof v === 'string' && v.length > 0) metadata[k] = v;
    else if (typeof v === 'number' || typeof v === 'bigint') metadata[k] = String(v);
  };
  put('gguf.version', info.version);
  put('general.architecture', general.architecture);
  put('general.name', general.name);
  put('general.license', general.license);
  put('general.file_type', fileTypeName(GgufFileType, general.file_type));
  put('context_length', arch.context_length);
  put('embedding_length', arch.embedding_length);
  put('block_count', arch.block_count);
  put('parameter_count', params);
  put('tokenizer.model', tokenizer?.ggml && (tokenizer.ggml as Record<string, unknown>).model);
  put('tokenizer.chat_template', tokenizer?.chat_template);
  const ggml = tokenizer?.ggml as Record<string, unknown> | undefined;
  if (Array.isArray(ggml?.tokens)) put('vocab_size', ggml.tokens.length);
  put('tokenizer.bos_token_id', ggml?.bos_token_id);
  put('tokenizer.eos_token_id', ggml?.eos_token_id);
  put('tokenizer.eot_token_id', ggml?.eot_token_id);
  if (metadata['general.architecture'] === undefined) fail('MODEL_INVALID', 'the GGUF file names no architecture');
  return { inputs: [], outputs: [], metadata };
}

/** OpenAI messages → node-llama-cpp chat history, ending with the (empty) response to generate. */
function toHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  const calls = new Map<string, ChatModelFunctionCall>();
  for (const m of messages) {
    const text = m.content ?? '';
    switch (m.role) {
      case 'system':
      case 'developer':
        history.push({ type: 'system', text });
        break;
      case 'user':
        history.push({ type: 'user', text });
        break;
      case 'assistant': {
        const response: (string | ChatModelFunctionCall)[] = text === '' ? [] : [text];
        for (const c of m.tool_calls ?? []) {
          let params: unknown;
          try {
            params = JSON.parse(c.function.arguments);
          } catch {
            params = c.function.arguments;
          }
          const call: ChatModelFunctionCall = { type: 'functionCall', name: c.function.name, params, result: null };
          calls.set(c.id, call);
          response.push(call);
        }
        history.push({ type: 'model', response });
        break;
      }
      case 'tool': {
        const call = calls.get(m.tool_call_id ?? '');
        if (!call) fail('INVALID_ARGUMENT', 'a tool message answers no earlier tool call', { param: 'messages' });
        call.result = text;
        break;
      }
    }
  }
  history.push({ type: 'model', response: [] });
  return history;
}

/**
 * Checks a response_format schema before anything runs: `JSON_SCHEMA_INVALID` when it is not a
 * schema, `JSON_SCHEMA_UNSUPPORTED` when the grammar cannot enforce it exactly (json-schema.ts).
 */
export function checkJsonSchema(schema: unknown): void {
  compileJsonSchema(schema);
}

/**
 * A grammar from GBNF text. Not node-llama-cpp's `trimWhitespaceSuffix`: our grammars end on a
 * bracket or a literal, never on whitespace, and that option dropped a space from the middle of a
 * whole answer that the same answer streamed kept (two texts, two output digests, one request).
 */
function gbnfGrammar(llama: Llama, grammar: string): Promise<LlamaGrammar> {
  return llama.createGrammar({ grammar });
}

/** A schema whose JSON is one call: `{ name, arguments }` among the given tools. */
function callSchema(tools: readonly ToolSpec[]): object {
  const variants = tools.map((t) => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: t.parameters ?? { type: 'object', properties: {} } },
    required: ['name', 'arguments'],
    additionalProperties: false,
  }));
  return variants.length === 1 ? (variants[0] as object) : { oneOf: variants };
}

function toolInstruction(tools: readonly ToolSpec[]): string {
  const list = tools
    .map(
      (t) =>
        `- ${t.name}${t.description ? `: ${t.description}` : ''}\n  arguments: ${JSON.stringify(t.parameters ?? {})}`,
    )
    .join('\n');
  return `Call one of these functions. Reply only with JSON {"name": ..., "arguments": {...}}.\n${list}`;
}

/** OpenAI's `logit_bias` as node-llama-cpp's token bias: -100 bans a token, others add to its logit. */
function tokenBias(
  TokenBiasClass: Lib['TokenBias'],
  model: LlamaModel,
  vocabSize: number,
  bias: LlmParams['logit_bias'],
): TokenBias | undefined {
  const entries = Object.entries(bias);
  if (entries.length === 0) return undefined;
  const out = new TokenBiasClass(model.tokenizer);
  for (const [token, value] of entries) {
    const id = Number(token);
    if (id >= vocabSize) {
      fail('INVALID_ARGUMENT', `logit_bias names token ${token}; the vocabulary has ${vocabSize}`, {
        param: 'logit_bias',
      });
    }
    // node-llama-cpp never biases end-of-generation tokens; refusing is the honest answer, since
    // the params digest would otherwise claim a bias that was not applied.
    if (model.tokenizer.isEogToken(id as Token)) {
      fail('INVALID_ARGUMENT', `logit_bias cannot change token ${token}: it ends the generation`, {
        param: 'logit_bias',
      });
    }
    out.set(id as Token, value <= -100 ? 'never' : { logit: value });
  }
  return out;
}

function samplingOptions(p: LlmParams, bias: TokenBias | undefined) {
  return {
    ...(bias ? { tokenBias: bias } : {}),
    temperature: p.temperature,
    topP: p.top_p,
    topK: p.top_k,
    minP: p.min_p,
    seed: p.seed,
    ...(p.presence_penalty === 0 && p.frequency_penalty === 0
      ? { repeatPenalty: false as const }
      : {
          repeatPenalty: {
            penalty: 1,
            presencePenalty: p.presence_penalty,
            frequencyPenalty: p.frequency_penalty,
          },
        }),
    ...(p.stop.length > 0 ? { customStopTriggers: p.stop } : {}),
  };
}

async function loadLlm(llama: Llama, path: string, options: Required<LlmRuntimeOptions>): Promise<LoadedLlm> {
  const { LlamaChat, LlamaCompletion, TokenBias, resolveChatWrapper } = await lib();
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: path });
  } catch (e) {
    throw new VerityError('MODEL_INVALID', 'the GGUF model could not be loaded', {
      details: { reason: e instanceof Error ? e.message : String(e) },
      cause: e,
    });
  }
  let context: LlamaContext;
  try {
    context = await model.createContext({
      sequences: options.sequences,
      contextSize: Math.min(options.contextSize, model.trainContextSize),
      threads: options.threads,
    });
  } catch (e) {
    await model.dispose();
    throw new VerityError('MODEL_INVALID', 'no context could be created for the model', {
      details: { reason: e instanceof Error ? e.message : String(e) },
      cause: e,
    });
  }
  const contextSize = context.contextSize;
  // A pool of the context's sequences, made once: a job takes one and gives it back with its
  // history cleared (so every run starts from an empty state). node-llama-cpp frees a disposed
  // sequence's slot asynchronously, so disposing and re-creating per job races the next job.
  const free = Array.from({ length: options.sequences }, () => context.getSequence());
  const acquire = () => {
    const s = free.pop();
    if (!s) fail('QUEUE_FULL', 'every sequence of this model is busy; retry later');
    return s;
  };
  const release = async (s: (typeof free)[number]) => {
    try {
      await s.clearHistory();
      free.push(s);
    } catch {
      // A sequence that cannot be cleared is not reused: replace it.
      s.dispose();
      free.push(context.getSequence());
    }
  };
  // Resolving the chat wrapper (matching the GGUF chat template against the known formats) costs
  // ~150 ms: once per model, not per request.
  const chatWrapper = resolveChatWrapper(model);
  const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer
    ?.ggml?.tokens;
  const vocabSize = Array.isArray(tokens) ? tokens.length : 0;
  let closed = false;
  let running = 0;
  let drained: (() => void) | undefined;

  const generate = async (job: LlmJob): Promise<LlmResult> => {
    const sequence = acquire();
    const meter = sequence.tokenMeter;
    const before = meter.getState();
    const signalOptions = job.signal ? { signal: job.signal, stopOnAbortSignal: false } : {};
    try {
      if (job.endpoint === 'completions') {
        const prompt = job.prompt ?? '';
        const promptTokens = model.tokenize(prompt).length;
        const maxTokens = checkBudget(job, promptTokens, contextSize);
        const completion = new LlamaCompletion({ contextSequence: sequence, autoDisposeSequence: false });
        const pieces = textPieces(job.onText);
        try {
          const grammar = await formatGrammar(llama, job.format);
          const res = await completion.generateCompletionWithMeta(prompt, {
            ...samplingOptions(job.params, tokenBias(TokenBias, model, vocabSize, job.params.logit_bias)),
            maxTokens,
            ...(grammar ? { grammar } : {}),
            onTextChunk: pieces.add,
            ...signalOptions,
          });
          checkFinished(job.format, pieces.text(), res.metadata.stopReason);
          return {
            text: pieces.text(),
            toolCalls: [],
            finishReason: res.metadata.stopReason === 'maxTokens' ? 'length' : 'stop',
            promptTokens,
            completionTokens: meter.getState().usedOutputTokens - before.usedOutputTokens,
            maxTokens,
          };
        } finally {
          completion.dispose({ disposeSequence: false });
        }
      }

      const chat = new LlamaChat({
        contextSequence: sequence,
        autoDisposeSequence: false,
        ...(chatWrapper ? { chatWrapper } : {}),
      });
      try {
        const tools = job.toolChoice === 'none' ? [] : (job.tools ?? []);
        const forced =
          job.toolChoice === 'required'
            ? tools
            : typeof job.toolChoice === 'object'
              ? tools.filter((t) => t.name === (job.toolChoice as { name: string }).name)
              : undefined;
        let history = toHistory(job.messages ?? []);
        if (forced) {
          // A forced call: the model writes `{ name, arguments }` under a grammar that only
          // admits the allowed functions with their argument schemas (constrained decoding).
          history = [{ type: 'system', text: toolInstruction(forced) }, ...history];
        }
        const functions: ChatModelFunctions | undefined =
          !forced && tools.length > 0
            ? Object.fromEntries(
                tools.map((t) => [
                  t.name,
                  { ...(t.description ? { description: t.description } : {}), params: t.parameters as never },
                ]),
              )
            : undefined;
        const state = chat.chatWrapper.generateContextState({
          chatHistory: history,
          ...(functions ? { availableFunctions: functions, documentFunctionParams: true } : {}),
        });
        const promptTokens = state.contextText.tokenize(model.tokenizer).length;
        const maxTokens = checkBudget(job, promptTokens, contextSize);
        // A forced call is not streamed as text: it arrives whole, as a tool call.
        const pieces = textPieces(forced ? undefined : job.onText);
        const grammar = forced
          ? await gbnfGrammar(llama, compileJsonSchema(callSchema(forced)))
          : await formatGrammar(llama, job.format);
        const res = await chat.generateResponse(history, {
          ...samplingOptions(job.params, tokenBias(TokenBias, model, vocabSize, job.params.logit_bias)),
          maxTokens,
          ...(grammar ? { grammar } : {}),
          ...(functions ? { functions, documentFunctionParams: true } : {}),
          onTextChunk: pieces.add,
          ...signalOptions,
          contextShift: { strategy: 'eraseFirstResponseAndKeepFirstSystem' },
        } as never);
        const completionTokens = meter.getState().usedOutputTokens - before.usedOutputTokens;
        const stop = res.metadata.stopReason;
        if (forced) {
          if (stop === 'maxTokens') {
            return {
              text: pieces.text(),
              toolCalls: [],
              finishReason: 'length',
              promptTokens,
              completionTokens,
              maxTokens,
            };
          }
          checkStructuredOutput(pieces.text(), callSchema(forced));
          const call = JSON.parse(pieces.text()) as { name: string; arguments: unknown };
          return {
            text: '',
            toolCalls: [{ name: call.name, arguments: JSON.stringify(call.arguments) }],
            finishReason: 'tool_calls',
            promptTokens,
            completionTokens,
            maxTokens,
          };
        }
        const functionCalls = (res as { functionCalls?: { functionName: string; params: unknown }[] }).functionCalls;
        const calls = (functionCalls ?? []).map((c) => ({
          name: c.functionName,
          arguments: JSON.stringify(c.params ?? {}),
        }));
        // With calls, node-llama-cpp's response holds the text beside them; without, the text
        // is what was streamed.
        const text = calls.length > 0 ? res.response : pieces.text();
        if (calls.length === 0) checkFinished(job.format, text, stop);
        // Calls the model chose are written by node-llama-cpp's function-calling grammar, which
        // enforces less than ours (no number bounds, patterns or most formats): arguments that
        // break their schema fail the request rather than come back as if they were valid.
        for (const c of calls) {
          const spec = tools.find((t) => t.name === c.name);
          if (spec?.parameters) checkStructuredOutput(c.arguments, spec.parameters);
        }
        return {
          text,
          toolCalls: calls,
          finishReason: calls.length > 0 ? 'tool_calls' : stop === 'maxTokens' ? 'length' : 'stop',
          promptTokens,
          completionTokens,
          maxTokens,
        };
      } finally {
        chat.dispose({ disposeSequence: false });
      }
    } catch (e) {
      if (e instanceof VerityError) throw e;
      if (job.signal?.aborted) {
        throw new VerityError('INFERENCE_FAILED', 'the generation was stopped', { cause: e });
      }
      throw new VerityError('INFERENCE_FAILED', 'the model failed to generate', {
        details: { reason: e instanceof Error ? e.message : String(e) },
        cause: e,
      });
    } finally {
      await release(sequence);
    }
  };

  return {
    kind: 'llm',
    batchable: false,
    concurrency: options.sequences,
    contextSize,
    async run(job) {
      if (closed) fail('INFERENCE_FAILED', 'the model is closed');
      running++;
      try {
        return await generate(job);
      } finally {
        running--;
        if (running === 0) drained?.();
      }
    },
    sequencesLeft: () => free.length,
    async close() {
      if (closed) return;
      closed = true;
      if (running > 0) await new Promise<void>((r) => (drained = r));
      await context.dispose();
      await model.dispose();
    },
  };
}

/**
 * The answer's text as the pieces generated, joined: what a streaming client receives. Not the
 * runtime's final response, which detokenizes all tokens at once and, for tokenizers that "clean
 * spaces", drops a space before `,` `.` `?` `!` that the streamed pieces kept: the same request
 * streamed and whole would then differ (and a streamed answer would not match its digest).
 */
function textPieces(forward?: (text: string) => void): { add: (text: string) => void; text: () => string } {
  const pieces: string[] = [];
  return {
    add: (t) => {
      pieces.push(t);
      forward?.(t);
    },
    text: () => pieces.join(''),
  };
}

/** The token limit of a job: the caller's, checked against the context, or what is left of it. */
function checkBudget(job: LlmJob, promptTokens: number, contextSize: number): number {
  const left = contextSize - promptTokens;
  if (left <= 0 || (job.maxTokensGiven && job.params.max_tokens > left)) {
    fail(
      'CONTEXT_LENGTH_EXCEEDED',
      `this model's context is ${contextSize} tokens; the prompt has ${promptTokens} and max_tokens asks for ${job.params.max_tokens}`,
      { param: job.maxTokensGiven ? 'max_tokens' : 'messages', contextSize, promptTokens },
    );
  }
  return Math.min(job.params.max_tokens, left);
}

async function formatGrammar(llama: Llama, format: OutputFormat | undefined): Promise<LlamaGrammar | undefined> {
  if (!format || format.type === 'text') return undefined;
  return gbnfGrammar(llama, format.type === 'json_object' ? jsonObjectGrammar() : compileJsonSchema(format.schema));
}

/**
 * The check of a finished structured answer. One cut short by max_tokens or by a stop sequence
 * the caller gave is returned as it is, as OpenAI does (finish_reason "length" or "stop").
 */
function checkFinished(format: OutputFormat | undefined, text: string, stop: string): void {
  if (!format || format.type === 'text' || stop === 'maxTokens' || stop === 'customStopTrigger') return;
  checkStructuredOutput(text, format.type === 'json_schema' ? format.schema : undefined);
}

/**
 * Creates the LLM runtime.
 *
 * @example
 * ```ts
 * const runtime = createLlmRuntime({ gpu: false, sequences: 2 });
 * const model = await runtime.load('tiny-chat.gguf');
 * const out = await model.run({ endpoint: 'chat.completions', messages: [{ role: 'user', content: 'Hi' }], params, maxTokensGiven: true });
 * ```
 */
export function createLlmRuntime(options: LlmRuntimeOptions = {}): LlmRuntime {
  const settings: Required<LlmRuntimeOptions> = {
    gpu: options.gpu ?? false,
    sequences: options.sequences ?? 2,
    contextSize: options.contextSize ?? 4096,
    threads: options.threads || Math.max(1, Math.floor(availableParallelism() / 2)),
  };
  let profile: string = settings.gpu === false ? 'cpu' : 'auto';
  const ready = async () => {
    const llama = await llamaFor(settings.gpu);
    profile = llama.gpu === false ? 'cpu' : llama.gpu;
    return llama;
  };
  return {
    id: LLM_RUNTIME_ID,
    version: LLM_RUNTIME_VERSION,
    get profile() {
      return profile;
    },
    ready: async () => {
      await ready();
      return profile;
    },
    settledProfile: () => (profile === 'auto' ? undefined : profile),
    describe: describeGguf,
    async load(bytesOrPath) {
      if (typeof bytesOrPath !== 'string') fail('MODEL_INVALID', 'the LLM runtime loads GGUF files by path');
      try {
        await stat(bytesOrPath);
      } catch {
        fail('MODEL_NOT_FOUND', 'no model file at this path', { path: bytesOrPath });
      }
      await describeGguf(bytesOrPath); // MODEL_INVALID before llama.cpp sees a bad file
      return loadLlm(await ready(), bytesOrPath, settings);
    },
  };
}
