/**
 * What an LLM record's digests cover (docs/design.md §2.8, docs/protocol.md §10).
 *
 * A language model is called through the OpenAI API, so its "input" is a request body and its
 * "output" a message, not tensors. Each is reduced to a small canonical JSON object and hashed
 * with SHA-256 over its RFC 8785 bytes:
 *
 * - **input** `{ endpoint, model, messages | prompt, tools?, tool_choice?, response_format?, params }`:
 *   the fields of the request that decide the answer, taken as the caller sent them (so the caller
 *   can recompute the digest from its own request), plus the effective sampling `params`.
 * - **params** the effective sampling settings, every one present (defaults filled in, the seed
 *   the node drew when the caller gave none); the record's `paramsDigest` is theirs.
 * - **output** `{ endpoint, message, finish_reason }` (chat) or `{ endpoint, text, finish_reason }`
 *   (completions): exactly what the caller received.
 *
 * Fields that do not change the answer (`stream`, `stream_options`, `user`, `n`, `logprobs`…)
 * are left out, so a streamed and a non-streamed call of the same request have the same digest.
 */

import { toHex } from './bytes.js';
import { canonicalJsonBytes, type JsonValue } from './canonical-json.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';
import { paramsDigest } from './record.js';

/** The two OpenAI endpoints an LLM record can come from. */
export const LLM_ENDPOINTS = ['chat.completions', 'completions'] as const;
/** An OpenAI endpoint, as named in an LLM input. */
export type LlmEndpoint = (typeof LLM_ENDPOINTS)[number];

/**
 * The effective sampling settings of one LLM call: every field present. Their
 * {@link paramsDigest} is the record's `paramsDigest`.
 */
export interface LlmParams {
  /** 0 means greedy decoding. */
  temperature: number;
  top_p: number;
  /** 0 means no top-k cut. */
  top_k: number;
  min_p: number;
  presence_penalty: number;
  frequency_penalty: number;
  /** The sampler's seed: the caller's, or one the node drew (a re-run with it reproduces the tokens). */
  seed: number;
  /** Most tokens generated. */
  max_tokens: number;
  /** Stop sequences (none: `[]`). */
  stop: string[];
  /** Token id (decimal string) → bias added to its logit, -100 (never) to 100 (none: `{}`). */
  logit_bias: { [token: string]: number };
}

/** The parameter names of {@link LlmParams}, in canonical (sorted) order. */
export const LLM_PARAM_NAMES = [
  'frequency_penalty',
  'logit_bias',
  'max_tokens',
  'min_p',
  'presence_penalty',
  'seed',
  'stop',
  'temperature',
  'top_k',
  'top_p',
] as const;

/** A chat message as it enters an input digest: the fields that reach the model. */
export type LlmMessage = { [key: string]: JsonValue };

/** The canonical input of a `chat.completions` call. */
export interface LlmChatInput {
  endpoint: 'chat.completions';
  /** The model as the caller named it (the record's `model` is the manifest CID it resolved to). */
  model: string;
  messages: LlmMessage[];
  tools?: JsonValue[];
  tool_choice?: JsonValue;
  response_format?: JsonValue;
  params: LlmParams;
}

/** The canonical input of a `completions` call. */
export interface LlmCompletionInput {
  endpoint: 'completions';
  model: string;
  prompt: string;
  params: LlmParams;
}

/** The canonical input of an LLM call. */
export type LlmInput = LlmChatInput | LlmCompletionInput;

/** A tool call the model made, as OpenAI returns it. */
export interface LlmToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The assistant message a chat call returned. */
export interface LlmAssistantMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: LlmToolCall[];
}

/** The canonical output of a `chat.completions` call. */
export interface LlmChatOutput {
  endpoint: 'chat.completions';
  message: LlmAssistantMessage;
  /** `stop`, `length` or `tool_calls`. */
  finish_reason: string;
}

/** The canonical output of a `completions` call. */
export interface LlmCompletionOutput {
  endpoint: 'completions';
  text: string;
  finish_reason: string;
}

/** The canonical output of an LLM call. */
export type LlmOutput = LlmChatOutput | LlmCompletionOutput;

const MESSAGE_FIELDS = ['role', 'content', 'name', 'tool_calls', 'tool_call_id'] as const;
const FINISH_REASONS = new Set(['stop', 'length', 'tool_calls', 'content_filter']);

function invalid(path: string, message: string): never {
  return fail('LLM_INPUT_INVALID', message, { path });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function finite(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    return invalid(path, `expected a number from ${min} to ${max}`);
  }
  return v;
}

function integer(v: unknown, path: string, min: number, max: number): number {
  if (!Number.isSafeInteger(v)) return invalid(path, 'expected an integer');
  return finite(v, path, min, max);
}

/**
 * Checks that `value` is a complete {@link LlmParams} object and nothing else.
 *
 * @example
 * ```ts
 * const params = parseLlmParams(response.verity.params);
 * ```
 */
export function parseLlmParams(value: unknown, path = '/params'): LlmParams {
  if (!isObject(value)) return invalid(path, 'expected an object');
  for (const k of Object.keys(value)) {
    if (!(LLM_PARAM_NAMES as readonly string[]).includes(k)) invalid(`${path}/${k}`, `unknown parameter "${k}"`);
  }
  const stop = value.stop;
  if (!Array.isArray(stop) || stop.length > 16 || !stop.every((s) => typeof s === 'string' && s.length > 0)) {
    invalid(`${path}/stop`, 'expected up to 16 non-empty strings');
  }
  const bias = value.logit_bias;
  if (!isObject(bias) || Object.keys(bias).length > 1024)
    invalid(`${path}/logit_bias`, 'expected an object of up to 1024 entries');
  const logitBias: { [token: string]: number } = {};
  for (const [token, b] of Object.entries(bias as Record<string, unknown>)) {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(token)) invalid(`${path}/logit_bias`, 'keys are token ids (decimal integers)');
    logitBias[token] = finite(b, `${path}/logit_bias/${token}`, -100, 100);
  }
  return {
    logit_bias: logitBias,
    temperature: finite(value.temperature, `${path}/temperature`, 0, 2),
    top_p: finite(value.top_p, `${path}/top_p`, 0, 1),
    top_k: integer(value.top_k, `${path}/top_k`, 0, 1_000_000),
    min_p: finite(value.min_p, `${path}/min_p`, 0, 1),
    presence_penalty: finite(value.presence_penalty, `${path}/presence_penalty`, -2, 2),
    frequency_penalty: finite(value.frequency_penalty, `${path}/frequency_penalty`, -2, 2),
    seed: integer(value.seed, `${path}/seed`, 0, 0xffffffff),
    max_tokens: integer(value.max_tokens, `${path}/max_tokens`, 1, 0xffffffff),
    stop: [...(stop as string[])],
  };
}

/** A JSON value with `undefined` members dropped (as `JSON.stringify` sends it). */
function json(value: unknown, path: string): JsonValue {
  try {
    return JSON.parse(JSON.stringify(value)) as JsonValue;
  } catch {
    return invalid(path, 'not representable as JSON');
  }
}

function canonicalMessage(m: unknown, i: number): LlmMessage {
  const path = `/messages/${i}`;
  if (!isObject(m)) return invalid(path, 'expected an object');
  if (typeof m.role !== 'string') return invalid(`${path}/role`, 'expected a string');
  const out: LlmMessage = {};
  for (const k of MESSAGE_FIELDS) {
    if (m[k] !== undefined) out[k] = json(m[k], `${path}/${k}`);
  }
  return out;
}

/**
 * The canonical input of a chat call, from the request body as the caller sent it and the
 * effective sampling parameters.
 *
 * @example
 * ```ts
 * const input = llmChatInput({ model: 'tiny-chat', messages: [{ role: 'user', content: 'Hi' }] }, params);
 * llmInputDigest(input) === record.inputDigest;
 * ```
 */
export function llmChatInput(request: unknown, params: LlmParams): LlmChatInput {
  if (!isObject(request)) return invalid('', 'expected an object');
  if (typeof request.model !== 'string') invalid('/model', 'expected a string');
  if (!Array.isArray(request.messages)) invalid('/messages', 'expected an array');
  const input: LlmChatInput = {
    endpoint: 'chat.completions',
    model: request.model as string,
    messages: (request.messages as unknown[]).map(canonicalMessage),
    params: parseLlmParams(params),
  };
  if (request.tools !== undefined && request.tools !== null) {
    if (!Array.isArray(request.tools)) invalid('/tools', 'expected an array');
    input.tools = json(request.tools, '/tools') as JsonValue[];
  }
  if (request.tool_choice !== undefined && request.tool_choice !== null) {
    input.tool_choice = json(request.tool_choice, '/tool_choice');
  }
  if (request.response_format !== undefined && request.response_format !== null) {
    input.response_format = json(request.response_format, '/response_format');
  }
  return input;
}

/**
 * The canonical input of a completions call.
 *
 * @example
 * ```ts
 * const input = llmCompletionInput({ model: 'tiny-chat', prompt: 'Once upon' }, params);
 * ```
 */
export function llmCompletionInput(request: unknown, params: LlmParams): LlmCompletionInput {
  if (!isObject(request)) return invalid('', 'expected an object');
  if (typeof request.model !== 'string') invalid('/model', 'expected a string');
  if (typeof request.prompt !== 'string') invalid('/prompt', 'expected a string');
  return {
    endpoint: 'completions',
    model: request.model as string,
    prompt: request.prompt as string,
    params: parseLlmParams(params),
  };
}

/**
 * Checks a carried LLM input (e.g. `bundle.input`): a known endpoint, a model, complete params.
 *
 * @example
 * ```ts
 * const input = parseLlmInput(bundle.input);
 * ```
 */
export function parseLlmInput(value: unknown): LlmInput {
  if (!isObject(value)) return invalid('', 'expected an object');
  const params = parseLlmParams(value.params);
  if (value.endpoint === 'chat.completions') {
    for (const k of Object.keys(value)) {
      if (!['endpoint', 'model', 'messages', 'tools', 'tool_choice', 'response_format', 'params'].includes(k))
        invalid(`/${k}`, `unknown field "${k}"`);
    }
    const input = llmChatInput(value, params);
    // The canonical form must be what was carried: nothing dropped on the way.
    if (!equalJson(input, value)) invalid('', 'not in canonical form');
    return input;
  }
  if (value.endpoint === 'completions') {
    for (const k of Object.keys(value)) {
      if (!['endpoint', 'model', 'prompt', 'params'].includes(k)) invalid(`/${k}`, `unknown field "${k}"`);
    }
    return llmCompletionInput(value, params);
  }
  return invalid('/endpoint', `expected one of ${LLM_ENDPOINTS.join(', ')}`);
}

function equalJson(a: unknown, b: unknown): boolean {
  return toHex(canonicalJsonBytes(a)) === toHex(canonicalJsonBytes(b));
}

/**
 * Checks a carried LLM output (e.g. `bundle.output`).
 *
 * @example
 * ```ts
 * const output = parseLlmOutput(bundle.output);
 * ```
 */
export function parseLlmOutput(value: unknown): LlmOutput {
  if (!isObject(value)) return invalid('', 'expected an object');
  if (typeof value.finish_reason !== 'string' || !FINISH_REASONS.has(value.finish_reason)) {
    invalid('/finish_reason', 'expected stop, length, tool_calls or content_filter');
  }
  if (value.endpoint === 'completions') {
    if (typeof value.text !== 'string') invalid('/text', 'expected a string');
    return { endpoint: 'completions', text: value.text as string, finish_reason: value.finish_reason as string };
  }
  if (value.endpoint !== 'chat.completions') invalid('/endpoint', `expected one of ${LLM_ENDPOINTS.join(', ')}`);
  const m = value.message;
  if (!isObject(m) || m.role !== 'assistant') return invalid('/message', 'expected an assistant message');
  if (m.content !== null && typeof m.content !== 'string') invalid('/message/content', 'expected a string or null');
  const message: LlmAssistantMessage = { role: 'assistant', content: m.content as string | null };
  if (m.tool_calls !== undefined) {
    if (!Array.isArray(m.tool_calls)) invalid('/message/tool_calls', 'expected an array');
    message.tool_calls = (m.tool_calls as unknown[]).map((c, i) => {
      const path = `/message/tool_calls/${i}`;
      if (!isObject(c) || c.type !== 'function' || typeof c.id !== 'string' || !isObject(c.function)) {
        return invalid(path, 'expected { id, type: "function", function }');
      }
      const { name, arguments: args } = c.function;
      if (typeof name !== 'string' || typeof args !== 'string')
        invalid(`${path}/function`, 'expected name and arguments');
      return { id: c.id, type: 'function', function: { name: name as string, arguments: args as string } };
    });
  }
  return { endpoint: 'chat.completions', message, finish_reason: value.finish_reason as string };
}

/**
 * SHA-256 (hex) of an LLM input's RFC 8785 bytes: the record's `inputDigest`.
 *
 * @example
 * ```ts
 * llmInputDigest(llmChatInput(request, params)) === record.inputDigest;
 * ```
 */
export function llmInputDigest(input: LlmInput): string {
  return toHex(sha256(canonicalJsonBytes(input)));
}

/**
 * SHA-256 (hex) of an LLM output's RFC 8785 bytes: the record's `outputDigest`.
 *
 * @example
 * ```ts
 * llmOutputDigest({ endpoint: 'chat.completions', message, finish_reason: 'stop' }) === record.outputDigest;
 * ```
 */
export function llmOutputDigest(output: LlmOutput): string {
  return toHex(sha256(canonicalJsonBytes(output)));
}

/**
 * The record's `paramsDigest` for these settings.
 *
 * @example
 * ```ts
 * llmParamsDigest(params) === record.paramsDigest;
 * ```
 */
export function llmParamsDigest(params: LlmParams): string {
  return paramsDigest(params as unknown as { [key: string]: JsonValue });
}

/**
 * Checks that the effective `params` honour every sampling setting the request gave explicitly
 * (a node may fill in defaults and draw a seed, but not change what was asked). Throws
 * `RECEIPT_PARAMS_MISMATCH` naming the first setting that differs.
 *
 * @example
 * ```ts
 * assertParamsHonourRequest({ temperature: 0, seed: 7 }, response.verity.params);
 * ```
 */
export function assertParamsHonourRequest(request: unknown, params: LlmParams): void {
  if (!isObject(request)) return;
  const asked: [keyof LlmParams, unknown][] = [
    ['temperature', request.temperature],
    ['top_p', request.top_p],
    ['top_k', request.top_k],
    ['min_p', request.min_p],
    ['presence_penalty', request.presence_penalty],
    ['frequency_penalty', request.frequency_penalty],
    ['seed', request.seed],
    ['max_tokens', request.max_completion_tokens ?? request.max_tokens],
    ['stop', typeof request.stop === 'string' ? [request.stop] : request.stop],
    ['logit_bias', request.logit_bias],
  ];
  for (const [name, value] of asked) {
    if (value === undefined || value === null) continue;
    if (!equalJson(value, params[name])) {
      fail('RECEIPT_PARAMS_MISMATCH', `the node used ${name} ${JSON.stringify(params[name])}, not the one asked for`, {
        param: name,
      });
    }
  }
}
