import { timingSafeEqual } from 'node:crypto';
import { fail } from '@verity/protocol';
import type { FastifyRequest } from 'fastify';

/** Writes need `Authorization: Bearer <api key>`; reads and verification do not. */
export function requireApiKey(request: FastifyRequest, apiKey: string): void {
  const header = request.headers.authorization ?? '';
  const token = header.startsWith('Bearer ') ? header.slice(7) : '';
  const a = Buffer.from(token);
  const b = Buffer.from(apiKey);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    fail('UNAUTHORIZED', 'this operation needs the node API key (Authorization: Bearer …)');
  }
}
