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
import { encodePaymentHeader, PAYMENT_HEADERS, type Receipt, type SettleResponse } from '@verity/protocol';
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
import { coordinateLlmQuorum, coordinatesQuorum, type LlmQuorumHere, llmMemberBody } from './quorum.js';
import { type QuorumQuote, quorumCharge, quorumQuote } from './quorum-payments.js';
import { requestIdFor } from './request-ids.js';
import { type LlmAnswerParts, llmAnswerParts, logLlmAnswer, runLlm } from './run-llm.js';

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
    // A quorum of a priced model: at most this node's maximum plus each member's, as each
    // member's own 402 for the member call states it (quorum-payments.ts).
    const quote =
      req.mode.mode === 'quorum' && coordinatesQuorum(req.mode.mode, request.headers)
        ? await quorumQuote(ctx, {
            model: priced,
            clientNonce: nonceFrom(request),
            k: req.mode.k,
            ...(req.mode.block === undefined ? {} : { block: req.mode.block }),
            llm: {
              // The member call itself, unpaid, with a malformed request id: a priced member
              // answers its 402 (the payment is checked first), a free one refuses the id.
              probe: {
                path: endpoint === 'chat.completions' ? '/v1/chat/completions' : '/v1/completions',
                body: JSON.stringify(llmMemberBody(req)),
                headers: { 'x-verity-request-id': 'price-probe' },
              },
              ownMaximum: maxAmount,
            },
          })
        : undefined;
    const max = quote?.total ?? maxAmount;
    const paid = await paymentFor(ctx, request, priced, max === undefined ? {} : { maxAmount: max });
    if (paid.kind === 'replay') return sendReplay(reply, paid);
    try {
      return await answer(request, reply, req, paid, quote);
    } catch (e) {
      releasePayment(ctx, paid);
      throw e;
    }
  };

  /**
   * A paid quorum (docs/protocol.md §17.5): this node runs its part here, pays each member a
   * metered maximum, logs its own record last — committing to the caller's payment what
   * {@link quorumCharge} allows — and settles that; the rest returns to the caller.
   */
  const paidQuorum = async (
    request: FastifyRequest,
    reply: FastifyReply,
    req: CompletionRequest & { readonly mode: { readonly mode: 'quorum'; readonly k: number } },
    paid: PaymentCheck & { kind: 'paid' },
    quote: QuorumQuote,
  ) => {
    const priced = {
      cid: req.stored.manifestCid,
      name: req.stored.manifest.name,
      version: req.stored.manifest.version,
    };
    const callerPayment = paid.payment.receipt;
    let local:
      | {
          readonly req: CompletionRequest;
          readonly ids: { readonly requestId: string; readonly clientNonce: string | undefined };
          readonly result: LlmResult;
          readonly parts: LlmAnswerParts;
        }
      | undefined;
    let amount = 0n;
    const here: LlmQuorumHere = {
      payMember: (node) => quote.payMember(node),
      async run(member, ids) {
        const result = await runLlm(ctx, member, { onText: undefined, signal: new AbortController().signal });
        const parts = llmAnswerParts(member, result);
        local = { req: member, ids, result, parts };
        return parts.outputDigest;
      },
      async seal(members) {
        const { req: member, ids, result, parts } = local as NonNullable<typeof local>;
        amount = quorumCharge(ctx, chargeOf(ctx, paid, priced, result), callerPayment, members);
        const logged = await logLlmAnswer(ctx, member, result, ids, commitmentOf(ctx, paid, amount), parts);
        const receipt = { ...(logged.verity.receipt as Receipt), payment: callerPayment };
        const verity = { ...logged.verity, receipt };
        const answer = new CompletionAnswer(reply, member, ids.requestId, fingerprint(), ctx.config.llm.streamFlushMs);
        return {
          node: ctx.keys.address,
          record: receipt.record,
          receipt,
          output: answer.completion(result, logged.message, verity),
        };
      },
    };
    const body = JSON.stringify(
      await coordinateLlmQuorum(ctx, request, { ...req, mode: { ...req.mode, block: quote.block } }, here),
    );
    const settled = await settlePayment(ctx, paid, amount, { contentType: 'application/json; charset=utf-8', body });
    reply.header('content-type', 'application/json; charset=utf-8');
    if (settled !== undefined) reply.header(PAYMENT_HEADERS.response, encodePaymentHeader(settled));
    return body;
  };

  /** The rest of a completion, its payment (if any) verified: generate, log, settle, answer. */
  const answer = async (
    request: FastifyRequest,
    reply: FastifyReply,
    req: CompletionRequest,
    paid: PaymentCheck,
    quote: QuorumQuote | undefined,
  ) => {
    if (req.mode.mode === 'quorum' && coordinatesQuorum(req.mode.mode, request.headers)) {
      // A priced model has its quote (quorumQuote refused any other before the payment).
      if (paid.kind === 'paid')
        return paidQuorum(request, reply, { ...req, mode: req.mode }, paid, quote as QuorumQuote);
      return coordinateLlmQuorum(ctx, request, { ...req, mode: req.mode });
    }
    // After the payment check: a paid quorum's price probe (quorum-payments.ts) is refused here by
    // a free member (its malformed request id) and answered 402 above by a priced one.
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
