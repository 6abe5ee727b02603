/**
 * zk routes beyond inference: the final proving key of a zk model this node serves, for replicas
 * and auditors (`GET /v1/zk/:manifestCid/zkey`, content-addressed by its SHA-256 in `ETag`; what
 * the key is for, anyone checks from the model and the public transcripts), and this node's
 * contribution to a phase-2 ceremony it was drawn for (`POST /v1/zk/ceremonies/:id/contribute`,
 * the ceremony's current zkey as the body, the next one as the answer; zk-ceremony.ts).
 */
import { hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { fail, isCid, zkFacts } from '@verity/protocol';
import type { FastifyInstance } from 'fastify';
import type { NodeContext } from '../context.js';
import { readBounded } from '../peers/fetch-zkey.js';
import { contributeToPhase2, maxZkeyBytes } from '../zk-ceremony.js';
import { runZkTask } from '../zk-lane.js';

export function registerZkRoutes(app: FastifyInstance, ctx: NodeContext): void {
  app.get('/v1/zk/:manifestCid/zkey', async (request, reply) => {
    const { manifestCid } = request.params as { manifestCid: string };
    if (!isCid(manifestCid)) fail('INVALID_ARGUMENT', 'a manifest CID is required');
    // Only a model held here, never fetched on behalf of the asker.
    const stored = ctx.store.resolve(manifestCid);
    zkFacts(stored.manifest); // ZK_MODEL_UNSUPPORTED unless pushed with zk
    const zkey = await ctx.zk.storedZkey(stored.manifest);
    if (zkey === undefined) fail('NOT_FOUND', 'this node holds no checked proving key for this model');
    const sha256 = hash('sha256', zkey, 'hex');
    reply.header('etag', `"${sha256}"`);
    reply.header('x-verity-zkey-sha256', sha256);
    reply.header('cache-control', 'public, max-age=29030400, immutable');
    if (request.headers['if-none-match'] === `"${sha256}"`) return reply.status(304).send();
    return reply.type('application/octet-stream').send(Buffer.from(zkey.buffer, zkey.byteOffset, zkey.byteLength));
  });

  app.post('/v1/zk/ceremonies/:id/contribute', async (request, reply) => {
    const { id } = request.params as { id: string };
    const body = request.body;
    if (!(body instanceof Readable)) fail('UNSUPPORTED_MEDIA_TYPE', 'send the zkey as application/octet-stream');
    const zkey = await readBounded(body, maxZkeyBytes(ctx));
    // Through the zk lane: one contribution or proof at a time, bounded queue, timeout.
    const next = await runZkTask(ctx, () => contributeToPhase2(ctx, id, zkey));
    return reply.type('application/octet-stream').send(Buffer.from(next.buffer, next.byteOffset, next.byteLength));
  });
}
