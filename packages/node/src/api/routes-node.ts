import type { FastifyInstance } from 'fastify';
import type { NodeContext } from '../context.js';

/** Node identity and health: `GET /healthz`, `GET /metrics`, `GET /v1/node`. */
export function registerNodeRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get('/healthz', async () => ({
    status: ctx.closing ? 'shutting-down' : 'ok',
    logSize: ctx.log.size,
    models: ctx.store.list().length,
  }));
  app.get('/metrics', async (_request, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
  // What a verifier needs to trust this node's receipts (before a chain registry provides it).
  app.get('/v1/node', async () => ({
    address: ctx.keys.address,
    origin: ctx.keys.origin,
    logKey: ctx.keys.logKey,
    runtimes: [
      { id: ctx.runtime.id, version: ctx.runtime.version, profile: ctx.runtime.profile, formats: ['onnx'] },
      { id: ctx.llm.id, version: ctx.llm.version, profile: ctx.llm.profile, formats: ['gguf'] },
    ],
    modes: ['signed'],
    ...(ctx.chain
      ? {
          chain: {
            chainId: ctx.chain.deployment.chainId,
            contracts: ctx.chain.deployment.contracts,
            stake: ctx.chain.entry().stake.toString(),
          },
        }
      : {}),
  }));
}
