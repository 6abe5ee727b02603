import { fail } from '@verity/protocol';
import type { FastifyInstance } from 'fastify';
import type { NodeContext } from '../context.js';
import { parseTilePath } from '../log/index.js';

function int(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(value)) {
    fail('INVALID_ARGUMENT', `${name} must be a non-negative integer`);
  }
  return Number(value);
}

/**
 * The log: checkpoints, proofs, and static tiles in the C2SP tlog-tiles layout, so the log can be
 * mirrored by any CDN or object store and read by standard tlog clients.
 */
export function registerLogRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const checkpoint = async (
    _request: unknown,
    reply: { type(t: string): unknown; header(k: string, v: string): unknown },
  ) => {
    reply.type('text/plain; charset=utf-8');
    reply.header('cache-control', 'no-cache');
    return ctx.log.checkpoint();
  };
  app.get('/v1/log/checkpoint', checkpoint);
  app.get('/checkpoint', checkpoint);

  app.get('/tile/*', async (request, reply) => {
    const path = `tile/${(request.params as { '*': string })['*']}`;
    const tile = parseTilePath(path);
    const bytes =
      tile.kind === 'hash'
        ? ctx.log.tile(tile.level, tile.index, tile.width)
        : ctx.log.entryBundle(tile.index, tile.width);
    // Full tiles never change; partial ones are replaced by longer ones.
    reply.header('cache-control', tile.width === undefined ? 'public, max-age=31536000, immutable' : 'no-cache');
    return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  });

  // ?index=I[&size=N]: inclusion proof; ?from=M[&to=N]: consistency proof. Hashes are hex.
  app.get('/v1/log/proof', async (request) => {
    const q = request.query as Record<string, unknown>;
    const index = int(q.index, 'index');
    const from = int(q.from, 'from');
    if (index !== undefined) {
      const size = int(q.size, 'size') ?? ctx.log.size;
      return {
        type: 'inclusion',
        index,
        size,
        proof: ctx.log.inclusionProof(index, size),
        checkpoint: ctx.log.checkpoint(),
      };
    }
    if (from !== undefined) {
      const to = int(q.to, 'to') ?? ctx.log.size;
      return {
        type: 'consistency',
        from,
        to,
        proof: ctx.log.consistencyProof(from, to),
        checkpoint: ctx.log.checkpoint(),
      };
    }
    return fail('INVALID_ARGUMENT', 'give index (inclusion proof) or from (consistency proof)');
  });
}
