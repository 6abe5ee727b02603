/**
 * The OpenAI-compatible routes (docs/design.md §2.8): `POST /v1/chat/completions` and
 * `POST /v1/completions` (`GET /v1/models` is shared with the model routes), so the official
 * `openai` client and tools built on it work unchanged. Every answer carries a receipt: a
 * `verity` field in the body and an `x-verity-receipt` header, or, when streamed, a last chunk
 * before `[DONE]` whose `verity` field holds it.
 *
 * The record's digests are those of `@verity/protocol`'s `llm.ts`: the input is the request as the
 * caller sent it plus the effective sampling `params` (returned in `verity.params`, so the caller
 * can recompute every digest), the output is the message or text returned. `x-verity-mode` picks
 * the mode: `signed`, `audited` (the RFC 8785 bytes of input and output kept as the payload, so
 * jurors and auditors can re-execute the record: `disputes/reexecute.ts` runs them through
 * `llm-request.ts`, as this route does) or `quorum`.
 */
import {
  canonicalJsonBytes,
  fail,
  type InferenceRecord,
  type LlmInput,
  type LlmParams,
  llmChatInput,
  llmCompletionInput,
  llmInputDigest,
  llmParamsDigest,
  sha256,
  toHex,
  VerityError,
} from '@verity/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeContext } from '../context.js';
import { resolveOrFetch } from '../peers/model-source.js';
import type { LlmJob, LlmResult, LoadedLlm } from '../runtimes/llm.js';
import type { StoredModel } from '../store/index.js';
import { appendAudited } from './audited.js';
import { bad, chatParts, isObject, llmOutputOf, parseParams } from './llm-request.js';
import { QUORUM_MEMBER_HEADER, runQuorum } from './quorum.js';
import { NONCE, requestIdFor } from './request-ids.js';

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

/** The mode of an OpenAI request, from its `x-verity-mode` header. */
type OpenAiMode = { mode: 'signed' } | { mode: 'audited' } | { mode: 'quorum'; k: number; block?: number };

/**
 * The mode of an OpenAI request (docs/api.md): `x-verity-mode` is `signed` (the default),
 * `audited` (the payload is kept for the challenge window) or `quorum`, with `x-verity-k`
 * (default 3) and `x-verity-block` (default the head); the caller's `x-verity-client-nonce` seeds
 * the selection.
 */
function modeFrom(request: FastifyRequest): OpenAiMode {
  const mode = request.headers['x-verity-mode'];
  if (mode === undefined || mode === 'signed') return { mode: 'signed' };
  if (mode === 'audited') return { mode: 'audited' };
  if (mode !== 'quorum') bad('x-verity-mode', 'x-verity-mode is "signed", "audited" or "quorum"');
  const header = (name: string, min: number, max: number): number | undefined => {
    const v = request.headers[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !/^[0-9]{1,15}$/.test(v) || Number(v) < min || Number(v) > max) {
      bad(name, `${name} must be an integer from ${min} to ${max}`);
    }
    return Number(v);
  };
  const block = header('x-verity-block', 0, Number.MAX_SAFE_INTEGER);
  return { mode: 'quorum', k: header('x-verity-k', 1, 16) ?? 3, ...(block === undefined ? {} : { block }) };
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
    // The digests are SHA-256 of these bytes (§10.2, §10.3): an audited record keeps them.
    const inputBytes = canonicalJsonBytes(input);
    const inputDigest = toHex(sha256(inputBytes));
    const output = llmOutputOf(x.endpoint, result, inputDigest);
    const message = output.endpoint === 'chat.completions' ? output.message : undefined;
    const outputBytes = canonicalJsonBytes(output);
    // A quorum member logs mode `quorum` (the coordinator asked it, with the caller's nonce).
    const asked = modeFrom(request).mode;
    const mode = asked === 'quorum' ? (request.headers[QUORUM_MEMBER_HEADER] === '1' ? 'quorum' : 'signed') : asked;
    const record: InferenceRecord & { kind: 'llm' } = {
      version: 1,
      kind: 'llm',
      mode,
      model: x.stored.manifestCid,
      runtime: runtime(),
      inputDigest,
      outputDigest: toHex(sha256(outputBytes)),
      paramsDigest: llmParamsDigest(params),
      requestId,
      ...(clientNonce === undefined ? {} : { clientNonce }),
      timestamp: Date.now(),
      node: ctx.keys.address,
    };
    // Mode audited: the payload is kept durably before the record is logged.
    const { receipt, audit } =
      mode === 'audited'
        ? await appendAudited(ctx, record, inputBytes, outputBytes)
        : { receipt: await ctx.log.append(record), audit: undefined };
    const verity = { requestId, model: x.stored.manifestCid, params, receipt, ...(audit ? { audit } : {}) };
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
    const parts = chatParts(body, limits);
    const { stored, model } = await languageModel(ctx, body.model);
    const { params, maxTokensGiven } = parseParams(body, model.contextSize);
    if (maxTokensGiven && params.max_tokens > model.contextSize) {
      fail('CONTEXT_LENGTH_EXCEEDED', `max_tokens is more than this model's context (${model.contextSize} tokens)`, {
        param: 'max_tokens',
        contextSize: model.contextSize,
      });
    }
    const quorum = modeFrom(request);
    if (quorum.mode === 'quorum' && request.headers[QUORUM_MEMBER_HEADER] !== '1') {
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
      job: { endpoint: 'chat.completions', ...parts, params, maxTokensGiven },
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
    const quorum = modeFrom(request);
    if (quorum.mode === 'quorum' && request.headers[QUORUM_MEMBER_HEADER] !== '1') {
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
