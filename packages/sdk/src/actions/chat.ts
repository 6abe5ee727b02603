/**
 * Verified LLM calls. A node speaks the OpenAI API; each answer carries a `verity` field
 * (`{ requestId, model, params, receipt }`), in the body or in the last streamed chunk.
 *
 * - {@link verifyChatCompletion} / {@link verifyCompletion}: for people who call the node with
 *   the `openai` package. Pure: they take the request as sent, the response (or the streamed
 *   chunks) as received, and the trust material.
 * - {@link chat}: calls `POST /v1/chat/completions` itself (streaming), then verifies.
 */
import {
  assertParamsHonourRequest,
  BUNDLE_MEDIA_TYPE,
  type Bundle,
  type InferenceRecord,
  isVerityError,
  type LlmAssistantMessage,
  type LlmInput,
  type LlmOutput,
  type LlmParams,
  type LlmToolCall,
  llmChatInput,
  llmCompletionInput,
  llmInputDigest,
  llmOutputDigest,
  llmParamsDigest,
  type PaymentPolicy,
  parseLlmParams,
  primeVerifyCache,
  type Receipt,
  type Trust,
  type VerifyCache,
  VerityError,
  verifyReceipt,
} from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { request } from '../http.js';
import { answerPayment, askPayers, paymentOf, type VerifiedPayment } from '../payment.js';
import { sseData } from '../sse.js';
import { getModel } from './models.js';
import { bundleNodes, withTrust } from './node-info.js';

/** The `verity` field of an LLM answer. */
export interface VerityField {
  readonly requestId: string;
  /** Manifest CID of the model that answered. */
  readonly model: string;
  /** The effective sampling settings (the record's params digest is theirs). */
  readonly params: LlmParams;
  readonly receipt: Receipt;
  /**
   * Mode `audited`: when the challenge window closes (ms since the epoch, the node's statement;
   * `auditStatus` reads the chain's) and the payload's path on the node.
   */
  readonly audit?: { readonly windowClosesAt: number; readonly payload: string };
}

/** A verified LLM answer. */
export interface VerifiedLlmAnswer {
  readonly record: InferenceRecord;
  readonly verity: VerityField;
  readonly input: LlmInput;
  readonly output: LlmOutput;
  /** A self-contained bundle (receipt, node entry, canonical input and output) for `verity verify`. */
  bundle(): Bundle;
}

/** Options of the verify functions. */
export interface VerifyLlmOptions {
  /** A verification cache (checkpoint signatures, parsed keys) to share across calls. */
  readonly cache?: VerifyCache;
  /** The manifest CID the answer must come from. */
  readonly model?: string;
  /**
   * The mode the record must be logged in (default: any). `audited` also requires the answer's
   * `verity.audit` (an audited request answered as `signed` would escape audit).
   */
  readonly mode?: 'signed' | 'audited';
  /**
   * What a paid answer's payment must be (the protocol's payment policy): its chain and token,
   * and the payer signatures the chain vouched for (`vouched`, from `askPayers`: a contract
   * wallet's, which offline is `PAYMENT_SIGNATURE_NEEDS_CHAIN`).
   */
  readonly payment?: PaymentPolicy;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function invalid(message: string): never {
  throw new VerityError('RESPONSE_INVALID', message);
}

function verityOf(v: unknown): VerityField {
  if (!isObject(v) || typeof v.requestId !== 'string' || typeof v.model !== 'string' || !isObject(v.receipt)) {
    return invalid('the answer carries no verity receipt');
  }
  const a = v.audit;
  let audit: VerityField['audit'];
  if (a !== undefined) {
    if (!isObject(a) || typeof a.windowClosesAt !== 'number' || typeof a.payload !== 'string') {
      return invalid('a malformed audit member');
    }
    audit = { windowClosesAt: a.windowClosesAt, payload: a.payload };
  }
  return {
    requestId: v.requestId,
    model: v.model,
    params: parseLlmParams(v.params),
    receipt: v.receipt as unknown as Receipt,
    ...(audit === undefined ? {} : { audit }),
  };
}

function toolCalls(v: unknown): LlmToolCall[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) return invalid('tool_calls is not an array');
  return v.map((c) => {
    if (!isObject(c) || typeof c.id !== 'string' || !isObject(c.function)) return invalid('malformed tool call');
    const { name, arguments: args } = c.function;
    if (typeof name !== 'string' || typeof args !== 'string') return invalid('malformed tool call');
    return { id: c.id, type: 'function', function: { name, arguments: args } };
  });
}

/** The assistant message as the node sent it (fields a client library adds are left out). */
export function messageOf(m: unknown): LlmAssistantMessage {
  if (!isObject(m) || m.role !== 'assistant') return invalid('the answer has no assistant message');
  if (m.content !== null && typeof m.content !== 'string') invalid('message content is not a string');
  const calls = toolCalls(m.tool_calls);
  return { role: 'assistant', content: m.content as string | null, ...(calls ? { tool_calls: calls } : {}) };
}

/** What a streamed chat answer adds up to: the message, why it stopped, and the receipt. */
export function chatCompletionFromChunks(chunks: readonly unknown[]): {
  message: LlmAssistantMessage;
  finish_reason: string;
  verity: VerityField;
} {
  let content = '';
  let sawContent = false;
  let finish: string | undefined;
  let verity: VerityField | undefined;
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const chunk of chunks) {
    if (!isObject(chunk)) continue;
    if (chunk.verity !== undefined) verity = verityOf(chunk.verity);
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (!isObject(choice)) continue;
    if (typeof choice.finish_reason === 'string') finish = choice.finish_reason;
    const delta = choice.delta;
    if (!isObject(delta)) continue;
    if (typeof delta.content === 'string') {
      content += delta.content;
      sawContent ||= delta.content !== '';
    }
    if (Array.isArray(delta.tool_calls)) {
      for (const c of delta.tool_calls) {
        if (!isObject(c) || typeof c.index !== 'number') continue;
        const slot = calls[c.index] ?? { id: '', name: '', arguments: '' };
        calls[c.index] = slot;
        if (typeof c.id === 'string') slot.id = c.id;
        if (isObject(c.function)) {
          if (typeof c.function.name === 'string') slot.name += c.function.name;
          if (typeof c.function.arguments === 'string') slot.arguments += c.function.arguments;
        }
      }
    }
  }
  if (!verity) return invalid('the stream ended without a verity receipt');
  if (finish === undefined) return invalid('the stream ended without a finish reason');
  const message: LlmAssistantMessage =
    calls.length > 0
      ? {
          role: 'assistant',
          content: sawContent ? content : null,
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: 'function',
            function: { name: c.name, arguments: c.arguments },
          })),
        }
      : { role: 'assistant', content };
  return { message, finish_reason: finish, verity };
}

function check(
  endpoint: 'chat.completions' | 'completions',
  req: unknown,
  verity: VerityField,
  output: LlmOutput,
  trust: Trust,
  options: VerifyLlmOptions,
): VerifiedLlmAnswer {
  assertParamsHonourRequest(req, verity.params);
  const input =
    endpoint === 'chat.completions' ? llmChatInput(req, verity.params) : llmCompletionInput(req, verity.params);
  const result = verifyReceipt(verity.receipt, trust, {
    ...(options.cache ? { cache: options.cache } : {}),
    ...(options.payment ? { payment: options.payment } : {}),
    inputDigest: llmInputDigest(input),
    outputDigest: llmOutputDigest(output),
  });
  if (!result.ok) throw result.error;
  const record = (result.receipts[0] as { record: InferenceRecord }).record;
  if (record.kind !== 'llm') throw new VerityError('RESPONSE_INVALID', 'the receipt is not for an LLM answer');
  if (record.paramsDigest !== llmParamsDigest(verity.params)) {
    throw new VerityError('RECEIPT_PARAMS_MISMATCH', 'the receipt is for other sampling parameters');
  }
  if (record.model !== verity.model || (options.model !== undefined && record.model !== options.model)) {
    throw new VerityError('RESPONSE_INVALID', 'the receipt is for another model', {
      details: { expected: options.model ?? verity.model, actual: record.model },
    });
  }
  if (options.mode !== undefined && record.mode !== options.mode) {
    throw new VerityError('RESPONSE_INVALID', `the receipt is for mode ${record.mode}, not ${options.mode}`, {
      details: { expected: options.mode, actual: record.mode },
    });
  }
  if (options.mode === 'audited' && verity.audit === undefined) {
    throw new VerityError('RESPONSE_INVALID', 'an audited answer without its challenge window');
  }
  return {
    record,
    verity,
    input,
    output,
    bundle: () => ({
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts: [verity.receipt],
      nodes: bundleNodes(trust, [record.node]),
      input,
      output,
    }),
  };
}

/**
 * Verifies a chat completion obtained with any OpenAI client: the receipt verifies against the
 * trusted nodes, its input digest is that of `request` (as sent) with the answer's sampling
 * parameters, which honour every one the request set, and its output digest is that of the
 * message received. `response` is the completion object, or the list of streamed chunks.
 * Throws a VerityError (`RECEIPT_INPUT_DIGEST_MISMATCH`, `RECEIPT_OUTPUT_DIGEST_MISMATCH`,
 * `RECEIPT_PARAMS_MISMATCH`, `RECEIPT_NODE_UNKNOWN`…) when anything does not hold.
 *
 * @example
 * ```ts
 * const request = { model: 'tiny-chat', messages: [{ role: 'user', content: 'Hi' }], seed: 1 };
 * const completion = await openai.chat.completions.create(request);
 * const { record } = verifyChatCompletion(request, completion, trust);
 * ```
 */
export function verifyChatCompletion(
  request: unknown,
  response: unknown,
  trust: Trust,
  options: VerifyLlmOptions = {},
): VerifiedLlmAnswer {
  let message: LlmAssistantMessage;
  let finish: string;
  let verity: VerityField;
  if (Array.isArray(response)) {
    ({ message, finish_reason: finish, verity } = chatCompletionFromChunks(response));
  } else {
    if (!isObject(response) || !Array.isArray(response.choices)) return invalid('not a chat completion');
    const choice = response.choices[0];
    if (!isObject(choice) || typeof choice.finish_reason !== 'string') return invalid('the completion has no choice');
    message = messageOf(choice.message);
    finish = choice.finish_reason;
    verity = verityOf(response.verity);
  }
  return check(
    'chat.completions',
    request,
    verity,
    { endpoint: 'chat.completions', message, finish_reason: finish },
    trust,
    options,
  );
}

/**
 * Verifies a (legacy) text completion, as {@link verifyChatCompletion}; `response` is the
 * completion object or the list of streamed chunks.
 *
 * @example
 * ```ts
 * const completion = await openai.completions.create({ model: 'tiny-chat', prompt: 'Once', max_tokens: 8 });
 * verifyCompletion({ model: 'tiny-chat', prompt: 'Once', max_tokens: 8 }, completion, trust);
 * ```
 */
export function verifyCompletion(
  request: unknown,
  response: unknown,
  trust: Trust,
  options: VerifyLlmOptions = {},
): VerifiedLlmAnswer {
  const chunks = Array.isArray(response) ? response : [response];
  let text = '';
  let finish: string | undefined;
  let verity: VerityField | undefined;
  for (const chunk of chunks) {
    if (!isObject(chunk)) continue;
    if (chunk.verity !== undefined) verity = verityOf(chunk.verity);
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (!isObject(choice)) continue;
    if (typeof choice.text === 'string') text += choice.text;
    if (typeof choice.finish_reason === 'string') finish = choice.finish_reason;
  }
  if (!verity) return invalid('the answer carries no verity receipt');
  if (finish === undefined) return invalid('the answer has no finish reason');
  return check(
    'completions',
    request,
    verity,
    { endpoint: 'completions', text, finish_reason: finish },
    trust,
    options,
  );
}

/** A chat request (the OpenAI body, without `stream`). */
export interface ChatParams {
  readonly request: Record<string, unknown>;
  /** Called with each piece of text as it arrives. */
  readonly onText?: (text: string) => void;
  readonly signal?: AbortSignal;
  /**
   * `signed` (the default), or `audited`: the node keeps the canonical input and output for the
   * challenge window so that auditors can re-execute and challenge the record (docs/api.md "Mode
   * audited"); the answer's `verity.audit` says when the window closes. Quorum: {@link chatQuorum}.
   */
  readonly mode?: 'signed' | 'audited';
}

/**
 * Streams a chat completion from the node and verifies it (against the chain registry, or the
 * client's pinned keys) before returning.
 *
 * @example
 * ```ts
 * const answer = await chat(client, { request: { model: 'tiny-chat', messages }, onText: (t) => process.stdout.write(t) });
 * console.log(answer.record.outputDigest);
 * ```
 */
export async function chat(
  client: ClientBase,
  params: ChatParams,
): Promise<VerifiedLlmAnswer & { message: LlmAssistantMessage; payment?: VerifiedPayment }> {
  // With a chain, the name resolves through ModelRegistry and the answer must come from that CID.
  const expected = client.chain ? (await getModel(client, String(params.request.model))).id : undefined;
  const body = { ...params.request, ...(expected === undefined ? {} : { model: expected }), stream: true };
  const mode = params.mode ?? 'signed';
  const response = await request(client, 'POST', '/v1/chat/completions', {
    json: body,
    ...(mode === 'audited' ? { headers: { 'x-verity-mode': 'audited' } } : {}),
    ...(params.signal ? { signal: params.signal } : {}),
  });
  const paid = paymentOf(response);
  if (!response.body) return invalid('the node sent no stream');
  const chunks: unknown[] = [];
  for await (const data of sseData(response.body)) {
    if (data === '[DONE]') continue;
    let chunk: unknown;
    try {
      chunk = JSON.parse(data);
    } catch {
      invalid('the node sent a malformed event');
    }
    if (isObject(chunk) && isObject(chunk.error)) {
      const e = chunk.error;
      throw new VerityError('INFERENCE_FAILED', String(e.message ?? 'generation failed'), {
        details: { code: e.code },
      });
    }
    chunks.push(chunk);
    const choice = isObject(chunk) && Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    const delta = isObject(choice) ? choice.delta : undefined;
    if (isObject(delta) && typeof delta.content === 'string' && delta.content !== '') params.onText?.(delta.content);
  }
  const verified = await withTrust(client, async (trust) => {
    // The receipt rides in the last chunk: check its checkpoint's signature natively first.
    const last = chunks.at(-1);
    if (isObject(last) && isObject(last.verity)) await primeVerifyCache(last.verity.receipt, trust, client.cache);
    // The mode asked for is the mode logged: an audited request answered as `signed` escapes audit.
    const verifyWith = (payment?: PaymentPolicy) =>
      verifyChatCompletion(body, chunks, trust, {
        cache: client.cache,
        mode,
        ...(expected === undefined ? {} : { model: expected }),
        ...(payment === undefined ? {} : { payment }),
      });
    try {
      return verifyWith();
    } catch (e) {
      // Paid by a contract wallet: its signature is its own only if it says so on the chain.
      if (!isVerityError(e, 'PAYMENT_SIGNATURE_NEEDS_CHAIN') || !client.chain || !isObject(last)) throw e;
      const receipt = isObject(last.verity) ? last.verity.receipt : undefined;
      return verifyWith({ vouched: await askPayers(client.chain, [receipt]) });
    }
  });
  // A paid answer: its record commits to the payment made, and to what the tokens served cost
  // (a stream's settlement rides in its last chunk, which the paying fetch read as it passed);
  // with a chain, the payment is settled on it.
  const payment = await answerPayment(client.payer, client.chain, paid, verified.record);
  return {
    ...verified,
    message: (verified.output as { message: LlmAssistantMessage }).message,
    ...(payment === undefined ? {} : { payment }),
  };
}
