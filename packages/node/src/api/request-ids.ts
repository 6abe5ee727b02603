/**
 * Request ids and client nonces, as every route takes them (docs/protocol.md §5: the record's
 * `requestId` and `clientNonce`; the rule in docs/api.md "Request ids").
 *
 * The rule, and the attack it answers (issue 10): a request id names one record of the log, first
 * come first served. Were ids guessable, anyone could pre-claim the id an honest request is about
 * to get (the honest request would then fail) or replay a request under its id. So:
 * - the node makes every id it is not given from 128 random bits (32 hex digits): nobody can name
 *   it before the node does;
 * - an id a caller gives must be at least 22 characters (room for 128 random bits; the SDK draws
 *   them), else `REQUEST_ID_INVALID`;
 * - an id already in the log, or waiting to be, is refused before anything runs with
 *   `REQUEST_ID_TAKEN`: a replay adds no record, and `GET /v1/receipts/:id` keeps returning the
 *   first one;
 * - what ties a record to its caller is the caller's nonce (`clientNonce`), recorded in every mode
 *   and on every route; the SDK checks it.
 */
import { randomFillSync } from 'node:crypto';
import { fail } from '@verity/protocol';
import type { NodeLog } from '../log/index.js';

/** Any request id a record may carry (and `GET /v1/receipts/:id` looks up): 1–64 of `[A-Za-z0-9._:-]`. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** A request id a caller may give: 22–64 of `[A-Za-z0-9._:-]` (room for ≥ 128 random bits). */
export const CALLER_REQUEST_ID = /^[A-Za-z0-9._:-]{22,64}$/;
/** A client nonce: 1–64 bytes of lower-case hex. */
export const NONCE = /^(?:[0-9a-f]{2}){1,64}$/;

// Random bytes drawn 4 KiB at a time: one system call per 256 ids, not one per request.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/**
 * A fresh request id: 128 bits from the system's CSPRNG as 32 lower-case hex digits, so that no
 * one can predict (and pre-claim) the id of another request.
 *
 * @example
 * ```ts
 * newRequestId(); // '3f9c0b5e7a2d41c8b6e0f1a29d4c7e58'
 * ```
 */
export function newRequestId(): string {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const id = pool.toString('hex', poolAt, poolAt + 16);
  poolAt += 16;
  return id;
}

/**
 * The request id of a new request: `given` (`REQUEST_ID_INVALID` unless it matches
 * {@link CALLER_REQUEST_ID}; `REQUEST_ID_TAKEN` when `log` already has it), else a fresh one.
 * `param` names where the caller put it (body field or header), for the error's details.
 *
 * @example
 * ```ts
 * const requestId = requestIdFor(ctx.log, body.requestId, 'requestId');
 * ```
 */
export function requestIdFor(log: NodeLog, given: unknown, param: string): string {
  if (given === undefined) return newRequestId();
  if (typeof given !== 'string' || !CALLER_REQUEST_ID.test(given)) {
    return fail(
      'REQUEST_ID_INVALID',
      `${param} must be 22–64 of [A-Za-z0-9._:-] (make it from at least 128 random bits, or leave it out)`,
      { param },
    );
  }
  if (log.hasRequestId(given)) {
    fail('REQUEST_ID_TAKEN', 'a request with this id is already in the log; pick a fresh random id', {
      param,
      requestId: given,
    });
  }
  return given;
}
