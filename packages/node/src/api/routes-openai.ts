/**
 * The OpenAI-compatible routes (docs/design.md §2.8): `POST /v1/chat/completions` and
 * `POST /v1/completions` (`GET /v1/models` is shared with the model routes), so the official
 * `openai` client and tools built on it work unchanged. Every answer carries a receipt: a
 * `verity` field in the body and an `x-verity-receipt` header, or, when streamed, a last chunk
 * before `[DONE]` whose `verity` field holds it.
 *
 * The record's digests are those of `@verity/protocol`'s `llm.ts`: the input is the request as the
 * caller sent it plus the effective sampling `params` (returned in `verity.params`, so the caller
 * can recompute every digest), the output is the message or text returned.
 */
import { createHash, randomInt } from 'node:crypto';
import {
  fail,
  type InferenceRecord,
  type LlmAssistantMessage,
  type LlmInput,
  type LlmOutput,
  type LlmParams,
  llmChatInput,
  llmCompletionInput,
  llmInputDigest,
  llmOutputDigest,
  llmParamsDigest,
  VerityError,
} from '@verity/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeContext } from '../context.js';
import { resolveOrFetch } from '../peers/model-source.js';
import {
  type ChatMessage,
  checkJsonSchema,
  type LlmJob,
  type LlmResult,
  type LoadedLlm,
  type OutputFormat,
  type ToolSpec,
} from '../runtimes/llm.js';
import type { StoredModel } from '../store/index.js';
import { QUORUM_MEMBER_HEADER, runQuorum } from './quorum.js';
import { NONCE, requestIdFor } from './request-ids.js';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function bad(param: string, message: string): never {
  return fail('INVALID_ARGUMENT', message, { param });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(b: Record<string, unknown>, key: string, min: number, max: number, fallback: number): number {
  const v = b[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max)
    bad(key, `${key} must be a number from ${min} to ${max}`);
  return v;
}

function int(b: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) {
    bad(key, `${key} must be an integer from ${min} to ${max}`);
  }
  return v as number;
}

/** Message text: a string, or an array of `{ type: 'text', text }` parts (joined). */
function contentText(v: unknown, param: string, nullable: boolean): string | null {
  if (v === null || v === undefined) {
    if (nullable) return null;
    return bad(param, 'content is required');
  }
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    return v
      .map((part, i) => {
        if (!isObject(part) || part.type !== 'text' || typeof part.text !== 'string') {
          return bad(`${param}[${i}]`, 'only text content parts are supported');
        }
        return part.text;
      })
      .join('');
  }
  return bad(param, 'content must be a string or an array of text parts');
}

function parseMessages(v: unknown, max: number, maxChars: number): ChatMessage[] {
  if (!Array.isArray(v) || v.length === 0) bad('messages', 'messages must be a non-empty array');
  if (v.length > max) bad('messages', `at most ${max} messages`);
  let chars = 0;
  const callIds = new Set<string>();
  const out = (v as unknown[]).map((m, i): ChatMessage => {
    const p = `messages[${i}]`;
    if (!isObject(m)) bad(p, 'each message must be an object');
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      bad(`${p}.role`, `role must be one of ${[...ROLES].join(', ')}`);
    }
    const role = m.role as ChatMessage['role'];
    const content = contentText(m.content, `${p}.content`, role === 'assistant');
    chars += content?.length ?? 0;
    const msg: ChatMessage = { role, content };
    if (role === 'assistant' && m.tool_calls !== undefined && m.tool_calls !== null) {
      if (!Array.isArray(m.tool_calls)) bad(`${p}.tool_calls`, 'tool_calls must be an array');
      msg.tool_calls = (m.tool_calls as unknown[]).map((c, j) => {
        const f = isObject(c) ? c.function : undefined;
        if (!isObject(c) || typeof c.id !== 'string' || c.type !== 'function' || !isObject(f)) {
          return bad(`${p}.tool_calls[${j}]`, 'a tool call is { id, type: "function", function: { name, arguments } }');
        }
        if (typeof f.name !== 'string' || typeof f.arguments !== 'string') {
          return bad(`${p}.tool_calls[${j}].function`, 'name and arguments must be strings');
        }
        callIds.add(c.id);
        chars += f.arguments.length;
        return { id: c.id, type: 'function', function: { name: f.name, arguments: f.arguments } };
      });
    }
    if (role === 'tool') {
      if (typeof m.tool_call_id !== 'string' || !callIds.has(m.tool_call_id)) {
        bad(`${p}.tool_call_id`, 'a tool message must answer an earlier tool call by its id');
      }
      msg.tool_call_id = m.tool_call_id as string;
    }
    return msg;
  });
  if (chars > maxChars) bad('messages', `the messages hold more than ${maxChars} characters`);
  return out;
}

function parseTools(b: Record<string, unknown>): { tools: ToolSpec[]; choice: NonNullable<LlmJob['toolChoice']> } {
  const tools: ToolSpec[] = [];
  if (b.tools !== undefined && b.tools !== null) {
    if (!Array.isArray(b.tools) || b.tools.length > 128)
      bad('tools', 'tools must be an array of at most 128 functions');
    for (const [i, t] of (b.tools as unknown[]).entries()) {
      const f = isObject(t) ? t.function : undefined;
      if (!isObject(t) || t.type !== 'function' || !isObject(f))
        bad(`tools[${i}]`, 'a tool is { type: "function", function }');
      if (typeof f.name !== 'string' || !TOOL_NAME.test(f.name))
        bad(`tools[${i}].function.name`, 'names match [A-Za-z0-9_-]{1,64}');
      if (f.parameters !== undefined && !isObject(f.parameters)) {
        bad(`tools[${i}].function.parameters`, 'parameters must be a JSON Schema object');
      }
      if (f.description !== undefined && typeof f.description !== 'string') {
        bad(`tools[${i}].function.description`, 'description must be a string');
      }
      tools.push({
        name: f.name,
        ...(f.description === undefined ? {} : { description: f.description as string }),
        ...(f.parameters === undefined ? {} : { parameters: f.parameters as Record<string, unknown> }),
      });
    }
  }
  const c = b.tool_choice;
  let choice: NonNullable<LlmJob['toolChoice']> = tools.length > 0 ? 'auto' : 'none';
  if (c !== undefined && c !== null) {
    if (c === 'none' || c === 'auto' || c === 'required') choice = c;
    else if (isObject(c) && c.type === 'function' && isObject(c.function) && typeof c.function.name === 'string') {
      choice = { name: c.function.name };
    } else bad('tool_choice', 'tool_choice is none, auto, required or { type: "function", function: { name } }');
    if (choice !== 'none' && tools.length === 0) bad('tool_choice', 'tool_choice needs tools');
    if (typeof choice === 'object' && !tools.some((t) => t.name === (choice as { name: string }).name)) {
      bad('tool_choice', `no tool is named ${choice.name}`);
    }
  }
  // A forced call's arguments are written under the grammar of their schema: it must be one the
  // grammar enforces exactly, as for response_format (and the arguments of calls the model
  // chooses are checked against it).
  if (choice !== 'none') {
    for (const [i, t] of tools.entries()) {
      if (t.parameters === undefined) continue;
      try {
        checkJsonSchema(t.parameters);
      } catch (e) {
        if (!(e instanceof VerityError)) throw e;
        throw new VerityError(e.code, e.message, {
          details: { ...e.details, param: `tools[${i}].function.parameters` },
        });
      }
    }
  }
  return { tools, choice };
}

function parseFormat(v: unknown): OutputFormat | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) return bad('response_format', 'response_format must be an object');
  if (v.type === 'text' || v.type === 'json_object') return { type: v.type };
  if (v.type === 'json_schema') {
    const js = v.json_schema;
    if (!isObject(js) || typeof js.name !== 'string' || !isObject(js.schema)) {
      fail('JSON_SCHEMA_INVALID', 'response_format.json_schema needs a name and a schema object', {
        param: 'response_format.json_schema',
      });
    }
    checkJsonSchema(js.schema);
    return { type: 'json_schema', schema: js.schema as object };
  }
  return bad('response_format.type', 'response_format.type is text, json_object or json_schema');
}

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.length > 4 || !list.every((s) => typeof s === 'string' && s.length > 0)) {
    return bad('stop', 'stop is a string or up to 4 non-empty strings');
  }
  return list as string[];
}

function parseLogitBias(v: unknown): Record<string, number> {
  if (v === undefined || v === null) return {};
  if (!isObject(v) || Object.keys(v).length > 1024)
    return bad('logit_bias', 'logit_bias maps up to 1024 token ids to biases');
  const out: Record<string, number> = {};
  for (const [token, bias] of Object.entries(v)) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(token)) bad('logit_bias', 'logit_bias keys are token ids');
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100) {
      bad('logit_bias', 'logit_bias values are numbers from -100 to 100');
    }
    out[token] = bias;
  }
  return out;
}

/** The sampling settings: the caller's, defaults for the rest, a drawn seed when none was given. */
function parseParams(b: Record<string, unknown>, contextSize: number): { params: LlmParams; maxTokensGiven: boolean } {
  if (b.n !== undefined && b.n !== null && b.n !== 1) bad('n', 'this node returns one choice (n = 1)');
  if (b.logprobs === true) bad('logprobs', 'logprobs are not supported');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean')
    bad('stream', 'stream must be a boolean');
  const max = int(b, 'max_completion_tokens', 1, 0xffffffff) ?? int(b, 'max_tokens', 1, 0xffffffff);
  return {
    params: {
      temperature: num(b, 'temperature', 0, 2, 1),
      top_p: num(b, 'top_p', 0, 1, 1),
      top_k: int(b, 'top_k', 0, 1_000_000) ?? 0,
      min_p: num(b, 'min_p', 0, 1, 0),
      presence_penalty: num(b, 'presence_penalty', -2, 2, 0),
      frequency_penalty: num(b, 'frequency_penalty', -2, 2, 0),
      seed: int(b, 'seed', 0, 0xffffffff) ?? randomInt(0, 0x7fffffff),
      max_tokens: max ?? contextSize,
      stop: parseStop(b.stop),
      logit_bias: parseLogitBias(b.logit_bias),
    },
    maxTokensGiven: max !== undefined,
  };
}

/** A language model by the name the caller gave. */
async function languageModel(ctx: NodeContext, ref: unknown): Promise<{ stored: StoredModel; model: LoadedLlm }> {
  if (typeof ref !== 'string' || ref === '') bad('model', 'model is required');
  const stored = await resolveOrFetch(ctx, ref);
  if (stored.manifest.format !== 'gguf') {
    bad('model', `${ref} is not a language model (format ${stored.manifest.format}); use POST /v1/infer`);
  }
  return { stored, model: await ctx.llms.get(stored.manifestCid, stored.artifactPath) };
}

function nonceFrom(request: FastifyRequest): string | undefined {
  const v = request.headers['x-verity-client-nonce'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !NONCE.test(v))
    bad('x-verity-client-nonce', 'x-verity-client-nonce is 1–64 bytes of lower-case hex');
  return v;
}

/**
 * Mode `quorum` on the OpenAI routes (docs/api.md): `x-verity-mode: quorum`, with `x-verity-k`
 * (default 3) and `x-verity-block` (default the head); the caller's `x-verity-client-nonce` seeds
 * the selection. Undefined for a plain (signed) request.
 */
function quorumFrom(request: FastifyRequest): { k: number; block?: number } | undefined {
  const mode = request.headers['x-verity-mode'];
  if (mode === undefined || mode === 'signed') return undefined;
  if (mode !== 'quorum') bad('x-verity-mode', 'x-verity-mode is "signed" or "quorum"');
  const header = (name: string, min: number, max: number): number | undefined => {
    const v = request.headers[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^[0-9]{1,15}$/.test(v) || Number(v) < min || Number(v) > max) {
      bad(name, `${name} must be an integer from ${min} to ${max}`);
    }
    return Number(v);
  };
  const block = header('x-verity-block', 0, Number.MAX_SAFE_INTEGER);
  return { k: header('x-verity-k', 1, 16) ?? 3, ...(block === undefined ? {} : { block }) };
}

/** Tool call ids that depend only on the input: the same request and seed give the same message. */
function toolCallId(inputDigest: string, i: number): string {
  return `call_${createHash('sha256').update(`${inputDigest}:${i}`).digest('hex').slice(0, 24)}`;
}

function chatMessage(result: LlmResult, inputDigest: string): LlmAssistantMessage {
  if (result.toolCalls.length === 0) return { role: 'assistant', content: result.text };
  return {
    role: 'assistant',
    content: result.text === '' ? null : result.text,
    tool_calls: result.toolCalls.map((c, i) => ({
      id: toolCallId(inputDigest, i),
      type: 'function',
      function: { name: c.name, arguments: c.arguments },
    })),
  };
}

/**
 * Server-sent events on the raw response, started at the first event. The first event goes out
 * at once (time to first token); later ones are gathered for up to `flushMs` and written
 * together, because one socket write per token costs more (≈0.1 ms of syscall on loopback, and as
 * much again in the client) than generating a small model's token. `end` sends what is left and
 * the closing events in one write.
 */
class EventStream {
  private started = false;
  private pending = '';
  private timer: ReturnType<typeof setTimeout> | undefined;
  constructor(
    private readonly reply: FastifyReply,
    private readonly flushMs: number,
  ) {}
  get isStarted(): boolean {
    return this.started;
  }
  private static frame(data: unknown): string {
    return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
  }
  send(data: unknown): void {
    const raw = this.reply.raw;
    if (!this.started) {
      this.started = true;
      this.reply.hijack();
      raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      this.pending = EventStream.frame(data);
      // Same tick (the role chunk and the first token): one write.
      setImmediate(() => this.flush());
      return;
    }
    this.pending += EventStream.frame(data);
    if (this.flushMs === 0 || this.pending.length > 16_384) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }
  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending !== '' && !this.reply.raw.destroyed) this.reply.raw.write(this.pending);
    this.pending = '';
  }
  /** Writes `last` events and what is pending, and ends the response. */
  end(...last: unknown[]): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const tail = this.pending + last.map(EventStream.frame).join('');
    this.pending = '';
    if (!this.reply.raw.destroyed) this.reply.raw.end(tail);
  }
}

interface Exchange {
  endpoint: 'chat.completions' | 'completions';
  body: Record<string, unknown>;
  stored: StoredModel;
  model: LoadedLlm;
  job: Omit<LlmJob, 'onText' | 'signal'>;
  stream: boolean;
  includeUsage: boolean;
}

/** `POST /v1/chat/completions` and `POST /v1/completions`. */
export function registerOpenAiRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const runtime = () => ({ id: ctx.llm.id, version: ctx.llm.version, profile: ctx.llm.profile });

  /** Runs the exchange, logs the record, and answers (JSON or SSE). */
  const serve = async (request: FastifyRequest, reply: FastifyReply, x: Exchange) => {
    const requestId = requestIdFor(ctx.log, request.headers['x-verity-request-id'], 'x-verity-request-id');
    const clientNonce = nonceFrom(request);
    const created = Math.floor(Date.now() / 1000);
    const prefix = x.endpoint === 'chat.completions' ? 'chatcmpl' : 'cmpl';
    const id = `${prefix}-${requestId}`;
    const object = x.endpoint === 'chat.completions' ? 'chat.completion.chunk' : 'text_completion';
    const modelName = x.body.model as string;
    const sse = new EventStream(reply, ctx.config.llm.streamFlushMs);
    const controller = new AbortController();
    // The caller hung up before the answer was complete: stop generating, free the sequence.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    const chunk = (choice: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) => ({
      id,
      object,
      created,
      model: modelName,
      system_fingerprint: fingerprint,
      choices: choice ? [choice] : [],
      ...extra,
    });
    const fingerprint = `verity-${ctx.llm.id}-${ctx.llm.version}-${ctx.llm.profile}`;
    const onText = x.stream
      ? (text: string) => {
          if (text === '') return;
          if (x.endpoint === 'chat.completions') {
            if (!sse.isStarted)
              sse.send(chunk({ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }));
            sse.send(chunk({ index: 0, delta: { content: text }, finish_reason: null }));
          } else sse.send(chunk({ index: 0, text, finish_reason: null, logprobs: null }));
        }
      : undefined;

    let result: LlmResult;
    const started = performance.now();
    try {
      result = await ctx.executor.run(
        x.stored.manifestCid,
        x.model,
        { ...x.job, ...(onText ? { onText } : {}), signal: controller.signal },
        { timeoutMs: ctx.config.llm.timeoutMs },
      );
    } catch (e) {
      controller.abort(); // a timed-out job stops generating too
      if (!sse.isStarted) throw e;
      const err = e instanceof VerityError ? e : new VerityError('INFERENCE_FAILED', 'generation failed', { cause: e });
      sse.end({ error: { ...err.toJSON(), type: 'server_error', param: null } });
      return;
    }
    ctx.metrics.inferenceSeconds.observe({ model: x.stored.manifest.name }, (performance.now() - started) / 1000);

    const params: LlmParams = { ...x.job.params, max_tokens: result.maxTokens };
    const input: LlmInput =
      x.endpoint === 'chat.completions' ? llmChatInput(x.body, params) : llmCompletionInput(x.body, params);
    const inputDigest = llmInputDigest(input);
    const message = x.endpoint === 'chat.completions' ? chatMessage(result, inputDigest) : undefined;
    const output: LlmOutput = message
      ? { endpoint: 'chat.completions', message, finish_reason: result.finishReason }
      : { endpoint: 'completions', text: result.text, finish_reason: result.finishReason };
    // A quorum member logs mode `quorum` (the coordinator asked it, with the caller's nonce).
    const member = request.headers[QUORUM_MEMBER_HEADER] === '1' && quorumFrom(request) !== undefined;
    const record: InferenceRecord = {
      version: 1,
      kind: 'llm',
      mode: member ? 'quorum' : 'signed',
      model: x.stored.manifestCid,
      runtime: runtime(),
      inputDigest,
      outputDigest: llmOutputDigest(output),
      paramsDigest: llmParamsDigest(params),
      requestId,
      ...(clientNonce === undefined ? {} : { clientNonce }),
      timestamp: Date.now(),
      node: ctx.keys.address,
    };
    const receipt = await ctx.log.append(record);
    const verity = { requestId, model: x.stored.manifestCid, params, receipt };
    const usage = {
      prompt_tokens: result.promptTokens,
      completion_tokens: result.completionTokens,
      total_tokens: result.promptTokens + result.completionTokens,
    };

    if (x.stream) {
      if (message) {
        if (!sse.isStarted)
          sse.send(chunk({ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }));
        if (message.tool_calls) {
          sse.send(
            chunk({
              index: 0,
              delta: { tool_calls: message.tool_calls.map((c, index) => ({ index, ...c })) },
              finish_reason: null,
            }),
          );
        }
        sse.send(chunk({ index: 0, delta: {}, finish_reason: result.finishReason }));
      } else sse.send(chunk({ index: 0, text: '', finish_reason: result.finishReason, logprobs: null }));
      // The receipt comes last, in a chunk with no choices (like the usage chunk), so clients
      // that do not know it pass over it.
      sse.end(...(x.includeUsage ? [chunk(undefined, { usage })] : []), chunk(undefined, { verity }), '[DONE]');
      return;
    }
    reply.header('x-verity-request-id', requestId);
    reply.header('x-verity-receipt', Buffer.from(JSON.stringify(receipt)).toString('base64'));
    return reply.send({
      id,
      object: message ? 'chat.completion' : 'text_completion',
      created,
      model: modelName,
      system_fingerprint: fingerprint,
      choices: [
        message
          ? { index: 0, message, finish_reason: result.finishReason, logprobs: null }
          : { index: 0, text: result.text, finish_reason: result.finishReason, logprobs: null },
      ],
      usage,
      verity,
    });
  };

  /**
   * Coordinates a quorum for a language model: every member runs the same request with the same
   * sampling parameters (the seed fixed here when the caller gave none, max_tokens required) and
   * the model by its manifest CID, so on one runtime and execution profile they give the same
   * tokens; the answer is the first agreeing member's completion with the quorum in `verity`.
   */
  const coordinateLlm = async (
    request: FastifyRequest,
    endpoint: Exchange['endpoint'],
    body: Record<string, unknown>,
    stored: StoredModel,
    params: LlmParams,
    maxTokensGiven: boolean,
    quorum: { k: number; block?: number },
  ) => {
    if (body.stream === true) bad('stream', 'mode quorum answers whole completions (stream: false)');
    if (!maxTokensGiven) bad('max_tokens', 'mode quorum needs max_tokens: every member must run the same parameters');
    const requestId = requestIdFor(ctx.log, request.headers['x-verity-request-id'], 'x-verity-request-id');
    const clientNonce = nonceFrom(request);
    const { stream_options: _, max_completion_tokens: __, ...rest } = body;
    const forwarded = {
      ...rest,
      model: stored.manifestCid,
      seed: params.seed,
      max_tokens: params.max_tokens,
      stream: false,
    };
    const input =
      endpoint === 'chat.completions' ? llmChatInput(forwarded, params) : llmCompletionInput(forwarded, params);
    const answer = await runQuorum(ctx, {
      model: stored.manifestCid,
      inputDigest: llmInputDigest(input),
      requestId,
      clientNonce,
      k: quorum.k,
      ...(quorum.block === undefined ? {} : { block: quorum.block }),
      // Like with like: members on another llama.cpp build or profile are skipped, not outvoted.
      runtime: { id: ctx.llm.id, version: ctx.llm.version, profile: await ctx.llm.ready() },
      member: {
        path: endpoint === 'chat.completions' ? '/v1/chat/completions' : '/v1/completions',
        body: JSON.stringify(forwarded),
        headers: {
          'x-verity-mode': 'quorum',
          'x-verity-request-id': requestId,
          ...(clientNonce === undefined ? {} : { 'x-verity-client-nonce': clientNonce }),
        },
        read: (json) => ({
          receipt: (json as { verity?: { receipt?: unknown } } | undefined)?.verity?.receipt,
          output: json,
        }),
      },
    });
    const completion = answer.output as Record<string, unknown>;
    return {
      ...completion,
      verity: {
        requestId,
        model: stored.manifestCid,
        params,
        receipt: answer.receipts[0],
        receipts: answer.receipts,
        nodes: answer.nodes,
        quorum: answer.quorum,
      },
    };
  };

  const limits = ctx.config.llm;

  app.post('/v1/chat/completions', async (request, reply) => {
    const body = request.body;
    if (!isObject(body)) return bad('body', 'the body must be a JSON object');
    const messages = parseMessages(body.messages, limits.maxMessages, limits.maxPromptChars);
    const { tools, choice } = parseTools(body);
    const format = parseFormat(body.response_format);
    if (format && format.type !== 'text' && typeof choice === 'object') {
      bad('response_format', 'response_format cannot be combined with a forced tool call');
    }
    const { stored, model } = await languageModel(ctx, body.model);
    const { params, maxTokensGiven } = parseParams(body, model.contextSize);
    if (maxTokensGiven && params.max_tokens > model.contextSize) {
      fail('CONTEXT_LENGTH_EXCEEDED', `max_tokens is more than this model's context (${model.contextSize} tokens)`, {
        param: 'max_tokens',
        contextSize: model.contextSize,
      });
    }
    const quorum = quorumFrom(request);
    if (quorum && request.headers[QUORUM_MEMBER_HEADER] !== '1') {
      return coordinateLlm(request, 'chat.completions', body, stored, params, maxTokensGiven, quorum);
    }
    const stream = body.stream === true;
    return serve(request, reply, {
      endpoint: 'chat.completions',
      body,
      stored,
      model,
      stream,
      includeUsage: isObject(body.stream_options) && body.stream_options.include_usage === true,
      job: {
        endpoint: 'chat.completions',
        messages,
        params,
        maxTokensGiven,
        ...(format ? { format } : {}),
        tools,
        toolChoice: choice,
      },
    });
  });

  app.post('/v1/completions', async (request, reply) => {
    const body = request.body;
    if (!isObject(body)) return bad('body', 'the body must be a JSON object');
    if (typeof body.prompt !== 'string') bad('prompt', 'prompt must be a string');
    if ((body.prompt as string).length > limits.maxPromptChars) {
      bad('prompt', `the prompt holds more than ${limits.maxPromptChars} characters`);
    }
    if (body.suffix !== undefined && body.suffix !== null) bad('suffix', 'suffix is not supported');
    if (body.echo === true) bad('echo', 'echo is not supported');
    const { stored, model } = await languageModel(ctx, body.model);
    const { params, maxTokensGiven } = parseParams(body, model.contextSize);
    if (maxTokensGiven && params.max_tokens > model.contextSize) {
      fail('CONTEXT_LENGTH_EXCEEDED', `max_tokens is more than this model's context (${model.contextSize} tokens)`, {
        param: 'max_tokens',
        contextSize: model.contextSize,
      });
    }
    const quorum = quorumFrom(request);
    if (quorum && request.headers[QUORUM_MEMBER_HEADER] !== '1') {
      return coordinateLlm(request, 'completions', body, stored, params, maxTokensGiven, quorum);
    }
    return serve(request, reply, {
      endpoint: 'completions',
      body,
      stored,
      model,
      stream: body.stream === true,
      includeUsage: isObject(body.stream_options) && body.stream_options.include_usage === true,
      job: { endpoint: 'completions', prompt: body.prompt as string, params, maxTokensGiven },
    });
  });
}
