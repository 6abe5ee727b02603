/**
 * The shape of an OpenAI answer (docs/api.md "Language models: the OpenAI API"): OpenAI's
 * `chat.completion` / `text_completion` objects, or their streamed chunks, plus the receipt — a
 * `verity` member and an `x-verity-receipt` header, or, streamed, a last chunk with no choices
 * before `[DONE]` whose `verity` member holds it.
 */
import {
  encodePaymentHeader,
  type LlmAssistantMessage,
  PAYMENT_HEADERS,
  type SettleResponse,
  VerityError,
} from '@verity/protocol';
import type { FastifyReply } from 'fastify';
import type { LlmResult } from '../runtimes/llm.js';
import type { CompletionRequest } from './openai-request.js';
import { EventStream } from './openai-stream.js';

/** Token counts as OpenAI reports them. */
export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

/** The usage of a generation. */
export function usageOf(result: LlmResult): Usage {
  return {
    prompt_tokens: result.promptTokens,
    completion_tokens: result.completionTokens,
    total_tokens: result.promptTokens + result.completionTokens,
  };
}

/**
 * One answer to an OpenAI request, from its first streamed token to its end: `onText` streams
 * text as it is generated (streamed requests only), `fail` ends a stream already started with an
 * error event, `send` writes the final answer with its `verity` member.
 */
export class CompletionAnswer {
  private readonly id: string;
  private readonly created = Math.floor(Date.now() / 1000);
  private readonly object: string;
  private readonly modelName: string;
  private readonly sse: EventStream;
  /** Streams generated text (undefined unless the request streams). */
  readonly onText: ((text: string) => void) | undefined;

  constructor(
    private readonly reply: FastifyReply,
    private readonly req: CompletionRequest,
    requestId: string,
    /** `system_fingerprint`: the runtime, its version and profile. */
    private readonly fingerprint: string,
    flushMs: number,
  ) {
    const chat = req.endpoint === 'chat.completions';
    this.id = `${chat ? 'chatcmpl' : 'cmpl'}-${requestId}`;
    this.object = chat ? 'chat.completion.chunk' : 'text_completion';
    this.modelName = req.body.model as string;
    this.sse = new EventStream(reply, flushMs);
    this.onText = req.stream
      ? (text: string) => {
          if (text === '') return;
          if (chat) {
            this.startChat();
            this.sse.send(this.chunk({ index: 0, delta: { content: text }, finish_reason: null }));
          } else this.sse.send(this.chunk({ index: 0, text, finish_reason: null, logprobs: null }));
        }
      : undefined;
  }

  private chunk(choice: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}) {
    return {
      id: this.id,
      object: this.object,
      created: this.created,
      model: this.modelName,
      system_fingerprint: this.fingerprint,
      choices: choice ? [choice] : [],
      ...extra,
    };
  }

  /** A chat stream opens with the assistant's role. */
  private startChat(): void {
    if (!this.sse.isStarted)
      this.sse.send(this.chunk({ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }));
  }

  /**
   * After a failed generation: a stream already started ends with an error event (true); else
   * nothing was sent and the error is answered as any other (false).
   */
  fail(e: unknown): boolean {
    if (!this.sse.isStarted) return false;
    const err = e instanceof VerityError ? e : new VerityError('INFERENCE_FAILED', 'generation failed', { cause: e });
    this.sse.end({ error: { ...err.toJSON(), type: 'server_error', param: null } });
    return true;
  }

  /**
   * The end of the answer: for a stream, the finish chunk, the usage chunk (when asked) and the
   * receipt chunk, then `[DONE]`; else the completion object, with the receipt in a header too.
   */
  send(
    result: LlmResult,
    message: LlmAssistantMessage | undefined,
    verity: { readonly requestId: string; readonly receipt: unknown },
    /** A paid answer's settlement: the `PAYMENT-RESPONSE` header, or streamed, in `verity.payment`. */
    payment?: SettleResponse,
  ) {
    const usage = usageOf(result);
    if (this.req.stream) {
      if (payment !== undefined) verity = { ...verity, payment } as typeof verity;
      if (message) {
        this.startChat();
        if (message.tool_calls) {
          this.sse.send(
            this.chunk({
              index: 0,
              delta: { tool_calls: message.tool_calls.map((c, index) => ({ index, ...c })) },
              finish_reason: null,
            }),
          );
        }
        this.sse.send(this.chunk({ index: 0, delta: {}, finish_reason: result.finishReason }));
      } else this.sse.send(this.chunk({ index: 0, text: '', finish_reason: result.finishReason, logprobs: null }));
      // The receipt comes last, in a chunk with no choices (like the usage chunk), so clients
      // that do not know it pass over it.
      this.sse.end(
        ...(this.req.includeUsage ? [this.chunk(undefined, { usage })] : []),
        this.chunk(undefined, { verity }),
        '[DONE]',
      );
      return;
    }
    this.reply.header('x-verity-request-id', verity.requestId);
    this.reply.header('x-verity-receipt', Buffer.from(JSON.stringify(verity.receipt)).toString('base64'));
    if (payment !== undefined) this.reply.header(PAYMENT_HEADERS.response, encodePaymentHeader(payment));
    return this.reply.send(this.completion(result, message, verity));
  }

  /** The answer as one JSON object (`chat.completion` / `text_completion`), as a non-streamed request gets it. */
  completion(
    result: LlmResult,
    message: LlmAssistantMessage | undefined,
    verity: { readonly requestId: string; readonly receipt: unknown },
  ): Record<string, unknown> {
    const usage = usageOf(result);
    return {
      id: this.id,
      object: message ? 'chat.completion' : 'text_completion',
      created: this.created,
      model: this.modelName,
      system_fingerprint: this.fingerprint,
      choices: [
        message
          ? { index: 0, message, finish_reason: result.finishReason, logprobs: null }
          : { index: 0, text: result.text, finish_reason: result.finishReason, logprobs: null },
      ],
      usage,
      verity,
    };
  }
}
