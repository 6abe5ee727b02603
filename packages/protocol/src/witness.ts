/**
 * The C2SP tlog-witness protocol (https://c2sp.org/tlog-witness), pure parts: the
 * `add-checkpoint` request body and the witness's decision on it. The node's witness
 * (`packages/node/src/witness/`) keeps the state and speaks HTTP; the statuses each refusal maps
 * to are those of the spec (docs/api.md).
 *
 * Request body:
 *
 * ```
 * old <size>\n
 * <consistency proof hash, base64>\n   (0 to 63 lines)
 * \n
 * <signed checkpoint note>
 * ```
 */
import { equalBytes, fromBase64, toBase64 } from './bytes.js';
import { type Checkpoint, parseCheckpoint } from './checkpoint.js';
import { fail, isVerityError, VerityError } from './errors.js';
import { EMPTY_ROOT, HASH_SIZE, verifyConsistency } from './merkle.js';
import { type NoteVerifier, openNote } from './note.js';

/** tlog-witness: a client MUST NOT send more than 63 consistency proof lines. */
export const ADD_CHECKPOINT_MAX_PROOF = 63;
/** The content type of a 409 Conflict body: the witness's latest size, decimal, and a newline. */
export const TLOG_SIZE_CONTENT_TYPE = 'text/x.tlog.size';

/** An `add-checkpoint` request. */
export interface AddCheckpointRequest {
  /** Size of the checkpoint the witness last cosigned for this log (0 if none). */
  readonly oldSize: number;
  /** RFC 6962 consistency proof from `oldSize` to the checkpoint's size. */
  readonly proof: readonly Uint8Array[];
  /** The signed checkpoint note (the log's signature, possibly others). */
  readonly checkpoint: string;
}

/** What a witness holds per log: the latest checkpoint it cosigned. */
export interface WitnessedHead {
  readonly size: number;
  readonly rootHash: Uint8Array;
}

const SIZE = /^(0|[1-9][0-9]*)$/;

function malformed(message: string, details?: Record<string, unknown>): never {
  return fail('WITNESS_REQUEST_MALFORMED', message, details);
}

/**
 * The `add-checkpoint` request body.
 *
 * @example
 * ```ts
 * formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: note }); // 'old 0\n\n' + note
 * ```
 */
export function formatAddCheckpoint(request: AddCheckpointRequest): string {
  if (!Number.isSafeInteger(request.oldSize) || request.oldSize < 0) malformed('old size must be a safe integer');
  if (request.proof.length > ADD_CHECKPOINT_MAX_PROOF) malformed('too many consistency proof lines');
  if (request.proof.some((h) => h.length !== HASH_SIZE)) malformed('a proof hash is 32 bytes');
  return `old ${request.oldSize}\n${request.proof.map((h) => `${toBase64(h)}\n`).join('')}\n${request.checkpoint}`;
}

/**
 * Parses an `add-checkpoint` request body. Throws `WITNESS_REQUEST_MALFORMED` (HTTP 400). The
 * checkpoint note is returned as text; {@link checkAddCheckpoint} verifies it.
 *
 * @example
 * ```ts
 * const { oldSize, proof, checkpoint } = parseAddCheckpoint(body);
 * ```
 */
export function parseAddCheckpoint(body: string): AddCheckpointRequest {
  if (typeof body !== 'string') malformed('the body must be text');
  const blank = body.indexOf('\n\n');
  if (blank < 0) malformed('no blank line before the checkpoint');
  const head = body.slice(0, blank).split('\n');
  const checkpoint = body.slice(blank + 2);
  const first = head[0] as string;
  if (!first.startsWith('old ') || !SIZE.test(first.slice(4))) malformed('the first line must be "old <size>"');
  const oldSize = Number(first.slice(4));
  if (!Number.isSafeInteger(oldSize)) malformed('old size is too large');
  const lines = head.slice(1);
  if (lines.length > ADD_CHECKPOINT_MAX_PROOF) malformed('more than 63 consistency proof lines');
  const proof = lines.map((line, i) => {
    let h: Uint8Array;
    try {
      h = fromBase64(line);
    } catch (cause) {
      throw new VerityError('WITNESS_REQUEST_MALFORMED', `proof line ${i} is not base64`, { cause });
    }
    if (h.length !== HASH_SIZE) malformed(`proof line ${i} is not a 32-byte hash`);
    return h;
  });
  if (checkpoint.length === 0) malformed('no checkpoint after the blank line');
  return { oldSize, proof, checkpoint };
}

/**
 * The checkpoint body (text before the signatures) of a signed note, parsed but NOT verified:
 * enough to read its origin and pick the keys to verify it with.
 *
 * @example
 * ```ts
 * const { origin } = peekCheckpoint(note);
 * ```
 */
export function peekCheckpoint(noteText: string): Checkpoint {
  const split = noteText.lastIndexOf('\n\n');
  if (split < 0) fail('NOTE_MALFORMED', 'note has no signature block');
  return parseCheckpoint(noteText.slice(0, split + 1));
}

/**
 * A witness's decision on an `add-checkpoint` request, in the order tlog-witness gives:
 * `WITNESS_UNKNOWN_LOG` (404) when `logKeys` is undefined (the origin is not one it witnesses),
 * `WITNESS_LOG_UNSIGNED` (403) without a signature by a trusted log key,
 * `WITNESS_LOG_SIGNATURE_INVALID` (403) for a bad one, `WITNESS_OLD_SIZE_INVALID` (400) when the
 * old size exceeds the checkpoint's, `WITNESS_OLD_SIZE_CONFLICT` (409, details.latestSize) when
 * the old size is not the size of `latest`, and `WITNESS_CONSISTENCY_INVALID` (422) when the
 * checkpoint does not extend `latest` (bad proof, a proof from 0, another root at the same size,
 * an empty tree with a non-empty root). Returns the verified checkpoint to cosign.
 *
 * @example
 * ```ts
 * const cp = checkAddCheckpoint(parseAddCheckpoint(body), [logVerifier], stored);
 * ```
 */
export function checkAddCheckpoint(
  request: AddCheckpointRequest,
  logKeys: readonly NoteVerifier[] | undefined,
  latest: WitnessedHead | undefined,
): Checkpoint {
  let body: Checkpoint;
  try {
    body = peekCheckpoint(request.checkpoint);
  } catch (cause) {
    throw new VerityError('WITNESS_REQUEST_MALFORMED', 'the checkpoint is not a signed checkpoint note', { cause });
  }
  if (logKeys === undefined || logKeys.length === 0) {
    fail('WITNESS_UNKNOWN_LOG', 'this witness does not witness that log', { origin: body.origin });
  }
  try {
    openNote(request.checkpoint, logKeys);
  } catch (e) {
    if (isVerityError(e, 'NOTE_UNKNOWN_KEY')) {
      throw new VerityError('WITNESS_LOG_UNSIGNED', 'no signature by a key trusted for this origin', { cause: e });
    }
    if (isVerityError(e, 'NOTE_SIGNATURE_INVALID')) {
      throw new VerityError('WITNESS_LOG_SIGNATURE_INVALID', 'the log signature does not verify', { cause: e });
    }
    throw new VerityError('WITNESS_REQUEST_MALFORMED', 'the checkpoint note is malformed', { cause: e });
  }
  const cp = body;
  if (request.oldSize > cp.size) {
    fail('WITNESS_OLD_SIZE_INVALID', 'the old size exceeds the checkpoint size', {
      oldSize: request.oldSize,
      size: cp.size,
    });
  }
  const latestSize = latest?.size ?? 0;
  if (request.oldSize !== latestSize) {
    fail('WITNESS_OLD_SIZE_CONFLICT', 'the old size is not the size of the latest checkpoint cosigned', {
      latestSize,
      oldSize: request.oldSize,
    });
  }
  if (cp.size === 0 && !equalBytes(cp.rootHash, EMPTY_ROOT)) {
    fail('WITNESS_CONSISTENCY_INVALID', 'an empty tree has the root hash of the empty string', { size: 0 });
  }
  try {
    verifyConsistency(request.oldSize, cp.size, request.proof, latest?.rootHash ?? EMPTY_ROOT, cp.rootHash);
  } catch (cause) {
    throw new VerityError('WITNESS_CONSISTENCY_INVALID', 'the checkpoint is not consistent with the one cosigned', {
      cause,
      details: { oldSize: request.oldSize, size: cp.size },
    });
  }
  return cp;
}
