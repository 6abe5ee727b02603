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
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { NodeContext } from '../context.js';
import type { LlmResult } from '../runtimes/llm.js';
import { nonceFrom, type OpenAiEndpoint, readCompletionRequest } from './openai-request.js';
import { CompletionAnswer } from './openai-response.js';
import { coordinateLlmQuorum, coordinatesQuorum } from './quorum.js';
import { requestIdFor } from './request-ids.js';
import { logLlmAnswer, runLlm } from './run-llm.js';

/** `POST /v1/chat/completions` and `POST /v1/completions`. */
export function registerOpenAiRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const fingerprint = () => `verity-${ctx.llm.id}-${ctx.llm.version}-${ctx.llm.profile}`;

  const complete = (endpoint: OpenAiEndpoint) => async (request: FastifyRequest, reply: FastifyReply) => {
    const req = await readCompletionRequest(ctx, endpoint, request);
    if (req.mode.mode === 'quorum' && coordinatesQuorum(req.mode.mode, request.headers)) {
      return coordinateLlmQuorum(ctx, request, { ...req, mode: req.mode });
    }
    const requestId = requestIdFor(ctx.log, request.headers['x-verity-request-id'], 'x-verity-request-id');
    const clientNonce = nonceFrom(request);
    const answer = new CompletionAnswer(reply, req, requestId, fingerprint(), ctx.config.llm.streamFlushMs);
    const controller = new AbortController();
    // The caller hung up before the answer was complete: stop generating, free the sequence.
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    let result: LlmResult;
    try {
      result = await runLlm(ctx, req, { onText: answer.onText, signal: controller.signal });
    } catch (e) {
      controller.abort(); // a timed-out job stops generating too
      if (answer.fail(e)) return;
      throw e;
    }
    const { message, verity } = await logLlmAnswer(ctx, req, result, { requestId, clientNonce });
    return answer.send(result, message, verity);
  };

  app.post('/v1/chat/completions', complete('chat.completions'));
  app.post('/v1/completions', complete('completions'));
}
