/**
 * An OpenAI request run on this node (modes `signed`, `audited`, and `quorum` as a member): the
 * executor → runtime → log steps of docs/architecture.md §2 for a language model. The record's
 * digests are those of `@verity/protocol`'s `llm.ts`: the input is the request as the caller sent
 * it plus the effective sampling `params` (returned in `verity.params`, so the caller can
 * recompute every digest), the output is the message or text returned. Mode `audited` keeps the
 * RFC 8785 bytes of input and output as the payload, so jurors and auditors can re-execute the
 * record (`disputes/reexecute.ts` runs them through `llm-request.ts`, as the route does).
 */
import {
  canonicalJsonBytes,
  type LlmAssistantMessage,
  type LlmInput,
  type LlmParams,
  llmChatInput,
  llmCompletionInput,
  llmParamsDigest,
  type PaymentCommitment,
  type SettleResponse,
  sha256,
  toHex,
} from '@verity/protocol';
import type { NodeContext } from '../context.js';
import type { LlmJob, LlmResult } from '../runtimes/llm.js';
import { type AuditMember, logAnswer } from './answer-record.js';
import { llmOutputOf } from './llm-request.js';
import type { CompletionRequest } from './openai-request.js';

/**
 * Generates the answer to `req` on the executor (the model's queue, `llm.timeoutMs`); `onText`
 * receives the text as it comes, `signal` stops it.
 */
export async function runLlm(
  ctx: NodeContext,
  req: CompletionRequest,
  stream: { readonly onText: LlmJob['onText'] | undefined; readonly signal: AbortSignal },
): Promise<LlmResult> {
  const started = performance.now();
  const result = await ctx.executor.run(
    req.stored.manifestCid,
    req.model,
    { ...req.job, ...(stream.onText ? { onText: stream.onText } : {}), signal: stream.signal },
    { timeoutMs: ctx.config.llm.timeoutMs },
  );
  ctx.metrics.inferenceSeconds.observe({ model: req.stored.manifest.name }, (performance.now() - started) / 1000);
  return result;
}

/** The `verity` member of an OpenAI answer. */
export interface VerityMember {
  readonly requestId: string;
  readonly model: string;
  readonly params: LlmParams;
  readonly receipt: unknown;
  readonly audit?: AuditMember;
  /** A paid answer: the settlement (x402 `SettleResponse`), here when streamed (no header then). */
  readonly payment?: SettleResponse;
}

/** What a generation's record digests (§10.2, §10.3): its effective params, input and output as bytes and digests. */
export interface LlmAnswerParts {
  readonly params: LlmParams;
  readonly inputBytes: Uint8Array;
  readonly inputDigest: string;
  readonly outputBytes: Uint8Array;
  readonly outputDigest: string;
  /** The assistant's message (chat). */
  readonly message: LlmAssistantMessage | undefined;
}

/** The digested parts of the answer to `req` (known before the record is logged: a paid quorum's coordinator logs last). */
export function llmAnswerParts(req: CompletionRequest, result: LlmResult): LlmAnswerParts {
  const params: LlmParams = { ...req.job.params, max_tokens: result.maxTokens };
  const input: LlmInput =
    req.endpoint === 'chat.completions' ? llmChatInput(req.body, params) : llmCompletionInput(req.body, params);
  // The digests are SHA-256 of these bytes (§10.2, §10.3): an audited record keeps them.
  const inputBytes = canonicalJsonBytes(input);
  const inputDigest = toHex(sha256(inputBytes));
  const output = llmOutputOf(req.endpoint, result, inputDigest);
  const message = output.endpoint === 'chat.completions' ? output.message : undefined;
  const outputBytes = canonicalJsonBytes(output);
  return { params, inputBytes, inputDigest, outputBytes, outputDigest: toHex(sha256(outputBytes)), message };
}

/**
 * Logs the record of a generation (an audited one with its payload, kept first); the message
 * (chat) and the answer's `verity` member.
 */
export async function logLlmAnswer(
  ctx: NodeContext,
  req: CompletionRequest,
  result: LlmResult,
  ids: { readonly requestId: string; readonly clientNonce: string | undefined },
  payment?: PaymentCommitment,
  parts: LlmAnswerParts = llmAnswerParts(req, result),
): Promise<{ message: LlmAssistantMessage | undefined; verity: VerityMember }> {
  const { params, inputBytes, inputDigest, outputBytes, outputDigest, message } = parts;
  const { receipt, audit } = await logAnswer(
    ctx,
    {
      kind: 'llm',
      // A quorum member logs mode `quorum` (the coordinator asked it, with the caller's nonce).
      mode: req.mode.mode,
      model: req.stored.manifestCid,
      runtime: { id: ctx.llm.id, version: ctx.llm.version, profile: ctx.llm.profile },
      inputDigest,
      outputDigest,
      paramsDigest: llmParamsDigest(params),
      requestId: ids.requestId,
      clientNonce: ids.clientNonce,
      ...(payment === undefined ? {} : { payment }),
    },
    { input: inputBytes, output: outputBytes },
  );
  const verity = {
    requestId: ids.requestId,
    model: req.stored.manifestCid,
    params,
    receipt,
    ...(audit ? { audit } : {}),
  };
  return { message, verity };
}
