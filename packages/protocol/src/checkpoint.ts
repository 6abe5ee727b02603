/**
 * Log checkpoints (tree heads) in the C2SP tlog-checkpoint format
 * (https://c2sp.org/tlog-checkpoint), carried in signed notes:
 *
 * ```
 * <origin>\n<tree size, decimal>\n<root hash, base64>\n[<extension line>\n]*
 * ```
 */
import { fromBase64, toBase64 } from './bytes.js';
import { fail, VerityError } from './errors.js';
import { HASH_SIZE } from './merkle.js';
import { type Note, type NoteSigner, type NoteVerifiers, openNote, signNote } from './note.js';

/** A parsed checkpoint body. */
export interface Checkpoint {
  /** Unique identifier of the log (first line), e.g. `verity.log/0x…`. */
  readonly origin: string;
  /** Number of leaves. */
  readonly size: number;
  /** RFC 6962 tree head of the first `size` leaves. */
  readonly rootHash: Uint8Array;
  /** Optional extension lines, opaque to Verity. */
  readonly extensions: readonly string[];
}

/**
 * The checkpoint body text.
 *
 * @example
 * ```ts
 * formatCheckpoint({ origin: 'example.com/log', size: 8, rootHash, extensions: [] })
 * // 'example.com/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n'
 * ```
 */
export function formatCheckpoint(cp: Checkpoint): string {
  if (!Number.isSafeInteger(cp.size) || cp.size < 0) fail('CHECKPOINT_MALFORMED', 'tree size must be a safe integer');
  if (cp.rootHash.length !== HASH_SIZE) fail('CHECKPOINT_MALFORMED', 'root hash must be 32 bytes');
  const lines = [cp.origin, String(cp.size), toBase64(cp.rootHash), ...cp.extensions];
  for (const l of lines)
    if (l.length === 0 || l.includes('\n')) fail('CHECKPOINT_MALFORMED', 'empty or multi-line field');
  return `${lines.join('\n')}\n`;
}

/**
 * Parses a checkpoint body (the note text, without signatures). Throws `CHECKPOINT_MALFORMED`.
 *
 * @example
 * ```ts
 * const cp = parseCheckpoint(openNote(noteText, verifiers).text);
 * ```
 */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) fail('CHECKPOINT_MALFORMED', 'checkpoint must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) fail('CHECKPOINT_MALFORMED', 'checkpoint needs origin, size and root lines');
  const [origin, sizeText, rootText, ...extensions] = lines as [string, string, string, ...string[]];
  if (origin.length === 0) fail('CHECKPOINT_MALFORMED', 'empty origin');
  // Decimal, no sign, no leading zeros: exactly one text per size.
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) fail('CHECKPOINT_MALFORMED', 'tree size is not a canonical decimal');
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) fail('CHECKPOINT_MALFORMED', 'tree size is too large', { size: sizeText });
  let rootHash: Uint8Array;
  try {
    rootHash = fromBase64(rootText);
  } catch (cause) {
    throw new VerityError('CHECKPOINT_MALFORMED', 'root hash is not valid base64', { cause });
  }
  if (rootHash.length !== HASH_SIZE) fail('CHECKPOINT_MALFORMED', 'root hash must be 32 bytes');
  if (extensions.some((e) => e.length === 0)) fail('CHECKPOINT_MALFORMED', 'empty extension line');
  return { origin, size, rootHash, extensions };
}

/**
 * Signs a checkpoint: returns the signed note text.
 *
 * @example
 * ```ts
 * const note = signCheckpoint({ origin, size: tree.size, rootHash: tree.root(), extensions: [] }, signer);
 * ```
 */
export function signCheckpoint(cp: Checkpoint, ...signers: NoteSigner[]): string {
  return signNote(formatCheckpoint(cp), signers);
}

/** A checkpoint that was opened and verified. */
export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  readonly note: Note;
}

/**
 * Verifies a signed checkpoint note and parses it. With `origin`, also requires that origin
 * (`CHECKPOINT_ORIGIN_MISMATCH`). Signature errors are those of {@link openNote}.
 *
 * @example
 * ```ts
 * const { checkpoint } = openCheckpoint(noteText, [parseVerifierKey(logKey)], 'verity.log/0xabc…');
 * ```
 */
export function openCheckpoint(noteText: string, verifiers: NoteVerifiers, origin?: string): OpenedCheckpoint {
  const note = openNote(noteText, verifiers);
  const checkpoint = parseCheckpoint(note.text);
  if (origin !== undefined && checkpoint.origin !== origin) {
    fail('CHECKPOINT_ORIGIN_MISMATCH', 'checkpoint is from another log', {
      expected: origin,
      actual: checkpoint.origin,
    });
  }
  return { checkpoint, note };
}
