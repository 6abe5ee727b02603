/**
 * Request ids and client nonces, as every route takes them (docs/protocol.md §5: the record's
 * `requestId` and `clientNonce`), and the ids the node makes when the caller gives none.
 */
import { randomBytes } from 'node:crypto';
import { toHex } from '@verity/protocol';

/** A request id: 1–64 of `[A-Za-z0-9._:-]`. */
export const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** A client nonce: 1–64 bytes of lower-case hex. */
export const NONCE = /^(?:[0-9a-f]{2}){1,64}$/;

/**
 * A fresh request id: time, then a random prefix drawn once per process, then a counter — unique
 * across restarts, processes and routes without drawing random bytes for every request.
 */
const ID_PREFIX = toHex(randomBytes(6));
let idCounter = 0;
export function newRequestId(): string {
  idCounter = (idCounter + 1) % 0x100000000;
  return `${Date.now().toString(36)}-${ID_PREFIX}${idCounter.toString(36)}`;
}
