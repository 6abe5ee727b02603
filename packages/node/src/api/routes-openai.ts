/**
 * The OpenAI-compatible routes (docs/design.md §2.8): `POST /v1/chat/completions` and
 * `POST /v1/completions` (`GET /v1/models` is shared with the model routes), so the official
 * `openai` client and tools built on it work unchanged. Every answer carries a receipt: a
 * `verity` field in the body and an `x-verity-receipt` header, or, when streamed, a last chunk
 * before `[DONE]` whose `verity` field holds it.
 *
 * The request path of docs/architecture.md §2, top-down: the request read and checked
 * (`openai-request.ts`: body, model, params, `x-verity-mode` — `signed`, `audited` or `quorum`),
 * generated on the executor and logged (`run-llm.ts`), answered as JSON or SSE
 * (`openai-response.ts`, `openai-stream.ts`). A quorum is coordinated by `quorum.ts`.
 */
import { fail, type Receipt, type SettleResponse } from '@verity/protocol';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeContext } from '../context.js';
import {
  chargeOf,
  commitmentOf,
  meteredMaximum,
  paymentFor,
  receiptPaymentFor,
  releasePayment,
  sendReplay,
  settlePayment,
} from '../payments/http.js';
import type { PaymentCheck } from '../payments/index.js';
import type { LlmResult } from '../runtimes/llm.js';
import { type CompletionRequest, nonceFrom, type OpenAiEndpoint, readCompletionRequest } from './openai-request.js';
import { CompletionAnswer } from './openai-response.js';
import { coordinateLlmQuorum, coordinatesQuorum } from './quorum.js';
import { requestIdFor } from './request-ids.js';
import { logLlmAnswer, runLlm } from './run-llm.js';

/** `POST /v1/chat/completions` and `POST /v1/completions`. */
export function registerOpenAiRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const fingerprint = () => `verity-${ctx.llm.id}-${ctx.llm.version}-${ctx.llm.profile}`;

  const complete = (endpoint: OpenAiEndpoint) => async (request: FastifyRequest, reply: FastifyReply) => {
    const req = await readCompletionRequest(ctx, endpoint, request);
    // A paid model (docs/api.md "Payments"): 402 unless paid, for at most every token of the
    // context as prompt plus max_tokens generated (metered); a retried payment gets its answer again.
    const priced = {
      cid: req.stored.manifestCid,
      name: req.stored.manifest.name,
      version: req.stored.manifest.version,
    };
    const maxAmount = meteredMaximum(ctx, priced, req.model.contextSize, req.job.params.max_tokens);
    const paid = await paymentFor(ctx, request, priced, maxAmount === undefined ? {} : { maxAmount });
    if (paid.kind === 'replay') return sendReplay(reply, paid);
    try {
      return await answer(request, reply, req, paid);
    } catch (e) {
      releasePayment(ctx, paid);
      throw e;
    }
  };

  /** The rest of a completion, its payment (if any) verified: generate, log, settle, answer. */
  const answer = async (request: FastifyRequest, reply: FastifyReply, req: CompletionRequest, paid: PaymentCheck) => {
    if (req.mode.mode === 'quorum' && coordinatesQuorum(req.mode.mode, request.headers)) {
      // Each member would be paid its share: not offered yet for a priced model.
      if (paid.kind === 'paid') fail('INVALID_ARGUMENT', 'mode quorum is not offered for paid models yet');
      return coordinateLlmQuorum(ctx, request, { ...req, mode: req.mode });
    }
    const requestId = requestIdFor(ctx.log, request.headers['x-verity-request-id'], 'x-verity-request-id');
    const clientNonce = nonceFrom(request);
    const completion = new CompletionAnswer(reply, req, requestId, fingerprint(), ctx.config.llm.streamFlushMs);
    const controller = new AbortController();
    // The caller hung up before the answer was complete: stop generating, free the sequence.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    let result: LlmResult;
    try {
      result = await runLlm(ctx, req, { onText: completion.onText, signal: controller.signal });
    } catch (e) {
      controller.abort(); // a timed-out job stops generating too
      if (completion.fail(e)) return;
      throw e;
    }
    const priced = {
      cid: req.stored.manifestCid,
      name: req.stored.manifest.name,
      version: req.stored.manifest.version,
    };
    const amount = chargeOf(ctx, paid, priced, result);
    const logged = await logLlmAnswer(ctx, req, result, { requestId, clientNonce }, commitmentOf(ctx, paid, amount));
    const receiptPayment = receiptPaymentFor(paid);
    const { message } = logged;
    const verity =
      receiptPayment === undefined
        ? logged.verity
        : { ...logged.verity, receipt: { ...(logged.verity.receipt as Receipt), payment: receiptPayment } };
    // Journaled as the whole answer in one JSON object (a retry gets it so, streamed or not), then
    // settled; a failed settlement ends a stream with its error event and withholds the receipt.
    let settled: SettleResponse | undefined;
    if (paid.kind === 'paid') {
      try {
        settled = await settlePayment(ctx, paid, amount, {
          contentType: 'application/json; charset=utf-8',
          body: JSON.stringify(completion.completion(result, message, verity)),
        });
      } catch (e) {
        if (completion.fail(e)) return;
        throw e;
      }
    }
    return completion.send(result, message, verity, settled);
  };

  app.post('/v1/chat/completions', complete('chat.completions'));
  app.post('/v1/completions', complete('completions'));
}
