/**
 * An OpenAI request read and checked (docs/api.md "Language models: the OpenAI API"): the body of
 * `POST /v1/chat/completions` or `POST /v1/completions`, the language model it names (resolved,
 * loaded), its sampling parameters, and the `x-verity-*` headers (mode, request id, client nonce).
 * Everything that can refuse the request refuses it here, before the model runs.
 */
import { fail } from '@verity/protocol';
import type { FastifyRequest } from 'fastify';
import type { NodeContext } from '../context.js';
import { resolveOrFetch } from '../peers/model-source.js';
import type { LlmJob, LoadedLlm } from '../runtimes/llm.js';
import type { StoredModel } from '../store/index.js';
import { bad, chatParts, isObject, parseParams } from './llm-request.js';
import { NONCE } from './request-ids.js';

/** The two OpenAI endpoints, as protocol `llm.ts` names them. */
export type OpenAiEndpoint = 'chat.completions' | 'completions';

/** The mode of an OpenAI request, from its `x-verity-mode` header. */
export type OpenAiMode = { mode: 'signed' } | { mode: 'audited' } | { mode: 'quorum'; k: number; block?: number };

/** A checked OpenAI request. */
export interface CompletionRequest {
  readonly endpoint: OpenAiEndpoint;
  /** The body as the caller sent it (its digest is over it and the effective params). */
  readonly body: Record<string, unknown>;
  readonly stored: StoredModel;
  readonly model: LoadedLlm;
  /** What the runtime runs: messages or prompt, tools, format and the sampling params. */
  readonly job: Omit<LlmJob, 'onText' | 'signal'>;
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly mode: OpenAiMode;
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

/** The caller's `x-verity-client-nonce`, lower-case hex. */
export function nonceFrom(request: FastifyRequest): string | undefined {
  const v = request.headers['x-verity-client-nonce'];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !NONCE.test(v))
    bad('x-verity-client-nonce', 'x-verity-client-nonce is 1–64 bytes of lower-case hex');
  return v;
}

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
 * Reads and checks an OpenAI request to `endpoint`: its body (messages, tools and format; or the
 * prompt), the model (resolved and loaded), the sampling params against the model's context, and
 * the mode header.
 */
export async function readCompletionRequest(
  ctx: NodeContext,
  endpoint: OpenAiEndpoint,
  request: FastifyRequest,
): Promise<CompletionRequest> {
  const limits = ctx.config.llm;
  const body = request.body;
  if (!isObject(body)) return bad('body', 'the body must be a JSON object');
  let input: Pick<LlmJob, 'endpoint' | 'messages' | 'tools' | 'toolChoice' | 'format' | 'prompt'>;
  if (endpoint === 'chat.completions') input = { endpoint, ...chatParts(body, limits) };
  else {
    if (typeof body.prompt !== 'string') bad('prompt', 'prompt must be a string');
    if ((body.prompt as string).length > limits.maxPromptChars) {
      bad('prompt', `the prompt holds more than ${limits.maxPromptChars} characters`);
    }
    if (body.suffix !== undefined && body.suffix !== null) bad('suffix', 'suffix is not supported');
    if (body.echo === true) bad('echo', 'echo is not supported');
    input = { endpoint, prompt: body.prompt as string };
  }
  const { stored, model } = await languageModel(ctx, body.model);
  const { params, maxTokensGiven } = parseParams(body, model.contextSize);
  if (maxTokensGiven && params.max_tokens > model.contextSize) {
    fail('CONTEXT_LENGTH_EXCEEDED', `max_tokens is more than this model's context (${model.contextSize} tokens)`, {
      param: 'max_tokens',
      contextSize: model.contextSize,
    });
  }
  return {
    endpoint,
    body,
    stored,
    model,
    job: { ...input, params, maxTokensGiven },
    stream: body.stream === true,
    includeUsage: isObject(body.stream_options) && body.stream_options.include_usage === true,
    mode: modeFrom(request),
  };
}
