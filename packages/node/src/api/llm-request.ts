/**
 * What an OpenAI request asks a language model, checked, and what its answer is (docs/api.md,
 * docs/protocol.md §10): the request's messages, tools, output format and sampling settings become
 * the runtime's job; the runtime's result becomes the canonical output of §10.3. The OpenAI routes
 * read requests with it, and jurors and auditors read a record's canonical input (§10.2), which has
 * the same members, so a re-execution gives the runtime the same job as the request did
 * (`disputes/reexecute.ts`).
 */
import { createHash, randomInt } from 'node:crypto';
import { fail, type LlmAssistantMessage, type LlmOutput, type LlmParams, VerityError } from '@verity/protocol';
import {
  type ChatMessage,
  checkJsonSchema,
  type LlmJob,
  type LlmResult,
  type OutputFormat,
  type ToolSpec,
} from '../runtimes/llm.js';

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);
const TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** `INVALID_ARGUMENT` naming the request member at fault (OpenAI's `param`). */
export function bad(param: string, message: string): never {
  return fail('INVALID_ARGUMENT', message, { param });
}

export function isObject(v: unknown): v is Record<string, unknown> {
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
export function parseParams(
  b: Record<string, unknown>,
  contextSize: number,
): { params: LlmParams; maxTokensGiven: boolean } {
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
 * The canonical output (docs/protocol.md §10.3) of a generation: what the caller receives, and
 * what a juror re-executing the record compares (tool call ids come from the input digest).
 */
export function llmOutputOf(
  endpoint: 'chat.completions' | 'completions',
  result: LlmResult,
  inputDigest: string,
): LlmOutput {
  return endpoint === 'chat.completions'
    ? { endpoint, message: chatMessage(result, inputDigest), finish_reason: result.finishReason }
    : { endpoint, text: result.text, finish_reason: result.finishReason };
}

/**
 * What a chat body asks the model, checked: its messages, tools and output format. The route
 * reads a request's body with it, and a juror a record's canonical input (§10.2), which has the
 * same members: both give the runtime the same job.
 */
export function chatParts(
  body: Record<string, unknown>,
  limits: { readonly maxMessages: number; readonly maxPromptChars: number },
): Pick<LlmJob, 'messages' | 'tools' | 'toolChoice' | 'format'> {
  const messages = parseMessages(body.messages, limits.maxMessages, limits.maxPromptChars);
  const { tools, choice } = parseTools(body);
  const format = parseFormat(body.response_format);
  if (format && format.type !== 'text' && typeof choice === 'object') {
    bad('response_format', 'response_format cannot be combined with a forced tool call');
  }
  return { messages, ...(format ? { format } : {}), tools, toolChoice: choice };
}
