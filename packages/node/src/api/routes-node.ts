import type { FastifyInstance } from 'fastify';
import type { NodeContext } from '../context.js';

/** A verification mode a node serves (docs/design.md §2.6). */
export type ServedMode = 'signed' | 'quorum' | 'audited' | 'zk';

/**
 * The modes a node serves: `signed` always; `zk` always (every node carries `@verity/zk`; a
 * request needs a model pushed with `--zk`, else `ZK_MODEL_UNSUPPORTED`); `quorum` only on a
 * chain, where the registry names the peers to ask. `GET /v1/node` and the capabilities a node
 * registers on chain both come from here, so they cannot disagree.
 */
export function servedModes(onChain: boolean): ServedMode[] {
  return onChain ? ['signed', 'quorum', 'audited', 'zk'] : ['signed', 'audited', 'zk'];
}

/**
 * The LLM runtime as its records will carry it. With `gpu: auto` the execution profile (`cpu`, or
 * the GPU backend llama.cpp picks) is known only once the binding is loaded (`verity node start`
 * does that at start, off the start-up path; otherwise the first GGUF model does): until then
 * `profile` is absent, never `auto`, a value no record carries. Identity requests never wait on
 * loading llama.cpp.
 */
function llmRuntimeInfo(ctx: NodeContext) {
  const profile = ctx.llm.settledProfile();
  return { id: ctx.llm.id, version: ctx.llm.version, ...(profile === undefined ? {} : { profile }), formats: ['gguf'] };
}

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
      ...[ctx.runtime, ctx.portable.runtime].map((r) => ({
        id: r.id,
        version: r.version,
        profile: r.profile,
        formats: ['onnx'],
      })),
      llmRuntimeInfo(ctx),
    ],
    modes: servedModes(ctx.chain !== undefined),
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
