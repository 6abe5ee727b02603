import { isVerityError, TLOG_SIZE_CONTENT_TYPE } from '@verity/protocol';
import type { FastifyInstance } from 'fastify';
import type { NodeContext } from '../context.js';

/**
 * The node as a C2SP tlog-witness (docs/api.md "Witness"): submission and monitoring prefixes are
 * the node's base URL.
 *
 * - `POST /add-checkpoint`: old size line, proof lines, blank line, signed checkpoint → 200 with
 *   the cosignature line; 409 with the latest size (`text/x.tlog.size`) when the old size is
 *   stale; the other refusals are the usual JSON error body with the spec's status.
 * - `GET /<sha256(origin) hex>/checkpoint`: the latest checkpoint it cosigned for that log.
 * - `GET /v1/witness`: its name and verifier key (type 0x04).
 * - `GET /v1/log/witnessed`: this node's latest checkpoint with its witnesses' cosignatures.
 */
export function registerWitnessRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.register(async (scope) => {
    // The body is text whatever the client labels it (the spec names no content type).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => done(null, body));
    scope.post('/add-checkpoint', async (request, reply) => {
      try {
        const lines = await ctx.witness.addCheckpoint(typeof request.body === 'string' ? request.body : '');
        return reply.type('text/plain; charset=utf-8').send(lines);
      } catch (e) {
        if (isVerityError(e, 'WITNESS_OLD_SIZE_CONFLICT')) {
          return reply
            .status(409)
            .type(TLOG_SIZE_CONTENT_TYPE)
            .send(`${String(e.details.latestSize)}\n`);
        }
        throw e;
      }
    });
  });
  app.get('/:originHash/checkpoint', async (request, reply) => {
    const note = await ctx.witness.latest((request.params as { originHash: string }).originHash);
    if (note === undefined) {
      return reply
        .status(404)
        .type('application/json')
        .send({ error: { code: 'NOT_FOUND', message: 'no checkpoint cosigned for that log', details: {} } });
    }
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(note);
  });
  app.get('/v1/log/witnessed', async (_request, reply) => {
    const note = ctx.witnessed();
    if (note === undefined) {
      return reply
        .status(404)
        .type('application/json')
        .send({ error: { code: 'NOT_FOUND', message: 'no checkpoint cosigned yet', details: {} } });
    }
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(note);
  });
  app.get('/v1/witness', async () => ({ name: ctx.witness.name, verifierKey: ctx.witness.verifierKey }));
}
