/**
 * The HTTP API on Fastify: one error handler that maps codes to statuses, limits on every input
 * (body size, header and request timeouts against slow clients, per-client rate), metrics and
 * JSON logs. Routes live in `routes-*.ts`; they call the node's services and hold no protocol logic.
 * The request path through them is drawn in docs/architecture.md §2.
 */
import { encodePaymentHeader, PAYMENT_HEADERS, type PaymentRequired } from '@verity/protocol';
import Fastify, { type FastifyInstance, LogController } from 'fastify';
import type { NodeContext } from '../context.js';
import { isOpenAiRoute, openAiErrorFields, retryAfterOf, statusOf, toVerityError } from './http-errors.js';
import { createRateLimiter } from './rate-limit.js';
import { registerExplorerRoutes } from './routes-explorer.js';
import { registerInferRoutes } from './routes-infer.js';
import { registerLogRoutes } from './routes-log.js';
import { registerModelRoutes } from './routes-models.js';
import { registerNodeRoutes } from './routes-node.js';
import { registerOpenAiRoutes } from './routes-openai.js';
import { registerWitnessRoutes } from './routes-witness.js';
import { registerZkRoutes } from './routes-zk.js';

/** Builds the Fastify app for a node (not yet listening). */
export function createApi(ctx: NodeContext): FastifyInstance {
  const { limits } = ctx.config;
  const app = Fastify({
    logger: ctx.config.logLevel === 'silent' ? false : { level: ctx.config.logLevel },
    bodyLimit: limits.bodyBytes,
    // Slow clients (slowloris): headers and the whole request must arrive in time.
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: 5_000,
    // While closing, our own hook answers 503 SHUTTING_DOWN in the usual error shape.
    return503OnClosing: false,
    // Per-request log lines off: errors are logged by the error handler, traffic goes to /metrics.
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { maxParamLength: 256 },
  });
  app.server.headersTimeout = limits.headersTimeoutMs;

  const limiter = createRateLimiter(limits.requestsPerSecond, limits.burst);
  app.addHook('onRequest', async (request) => {
    if (ctx.closing) ctx.shuttingDown();
    if (!limiter.take(request.ip)) ctx.rateLimited();
  });
  // Reads are public: any page may read them (an explorer served by one node shows the others).
  // Writes are not opened to other origins (no preflight is answered), and no cookie is ever used.
  // A callback hook, not an async one: it runs on every answer, and a promise per answer is work
  // the baseline of bench/serve.ts does not do (it has no such hook).
  app.addHook('onSend', (request, reply, payload, done) => {
    if (request.method === 'GET' || request.method === 'HEAD') reply.header('access-control-allow-origin', '*');
    done(null, payload);
  });
  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.httpRequests.inc({
      route: request.routeOptions.url ?? 'unknown',
      method: request.method,
      status: String(reply.statusCode),
    });
  });

  app.setErrorHandler((error, request, reply) => {
    const e = toVerityError(error);
    const status = statusOf(e.code);
    if (status >= 500 && e.code !== 'OVERLOADED' && e.code !== 'SHUTTING_DOWN' && e.code !== 'INFERENCE_TIMEOUT') {
      request.log.error({ err: error, code: e.code }, 'request failed');
    }
    const retry = retryAfterOf(e.code);
    if (retry !== undefined) reply.header('retry-after', String(retry));
    // x402 v2: a refused payment says what is accepted in the PAYMENT-REQUIRED header (payments/).
    const required = e.details.paymentRequired;
    if (status === 402 && typeof required === 'object' && required !== null) {
      reply.header(PAYMENT_HEADERS.required, encodePaymentHeader(required as PaymentRequired));
    }
    // Never echo internals: a 500 says only that it happened.
    const body: Record<string, unknown> =
      status === 500 && e.code === 'INTERNAL' ? { code: e.code, message: 'internal error', details: {} } : e.toJSON();
    if (isOpenAiRoute(request.url)) Object.assign(body, openAiErrorFields(status, e.details));
    return reply.status(status).type('application/json').send({ error: body });
  });
  app.setNotFoundHandler((request, reply) => {
    return reply
      .status(404)
      .type('application/json')
      .send({
        error: {
          code: 'NOT_FOUND',
          message: `no route for ${request.method} ${request.url.split('?')[0]}`,
          details: {},
        },
      });
  });

  registerNodeRoutes(app, ctx);
  registerModelRoutes(app, ctx);
  registerInferRoutes(app, ctx);
  registerOpenAiRoutes(app, ctx);
  registerLogRoutes(app, ctx);
  registerZkRoutes(app, ctx);
  registerWitnessRoutes(app, ctx);
  registerExplorerRoutes(app, ctx);
  return app;
}
