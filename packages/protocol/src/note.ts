/**
 * C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, byte-compatible with Go's
 * `golang.org/x/mod/sumdb/note`: the same key names, key IDs, verifier/signer key strings and
 * signature lines, so Go tools and C2SP witnesses accept Verity's checkpoints as they are.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { concatBytes, fromBase64, isWellFormedUnicode, toBase64, utf8 } from './bytes.js';
import { fail, VerityError } from './errors.js';
import { sha256 } from './hash.js';

/** Signature algorithm byte for Ed25519 (signed-note §"Signature types"). */
export const ALG_ED25519 = 0x01;
/** Go's note.Open refuses notes with more signature lines than this. */
const MAX_SIGNATURES = 100;
const SIG_PREFIX = '\u2014 '; // EM DASH, SPACE

/** Checks a signature for one key; the name and key ID are what signature lines carry. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  verify(message: Uint8Array, signature: Uint8Array): boolean;
}

/** Produces signatures for one key. */
export interface NoteSigner {
  readonly name: string;
  readonly keyId: number;
  sign(message: Uint8Array): Uint8Array;
}

/** One signature line of a note. */
export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** base64 of keyId (4 bytes, big-endian) ‖ signature, as on the line. */
  readonly base64: string;
}

/** A note that {@link openNote} verified. */
export interface Note {
  /** The signed text, ending in a newline. */
  readonly text: string;
  /** Signatures by known keys, all verified. */
  readonly signatures: readonly NoteSignature[];
  /** Signatures by keys the caller does not know (ignored, as the spec requires). */
  readonly unverified: readonly NoteSignature[];
}

// Unicode White_Space characters (Go's unicode.IsSpace), which key names must not contain.
const SPACE = /[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;

/** A valid key name: non-empty, well-formed Unicode, no whitespace, no '+'. */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && isWellFormedUnicode(name) && !SPACE.test(name) && !name.includes('+');
}

/**
 * Key ID: the first 4 bytes, big-endian, of SHA-256(name ‖ 0x0A ‖ alg ‖ public key).
 *
 * @example
 * ```ts
 * noteKeyId('PeterNeumann', publicKey).toString(16) // 'c74f20a3'
 * ```
 */
export function noteKeyId(name: string, publicKey: Uint8Array, alg = ALG_ED25519): number {
  const h = sha256(concatBytes(utf8(name), new Uint8Array([0x0a, alg]), publicKey));
  return new DataView(h.buffer, h.byteOffset, 4).getUint32(0);
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function keyError(message: string): never {
  return fail('NOTE_KEY_INVALID', message);
}

/**
 * Splits `name+hash+base64` (the name is up to the first '+', the hash up to the second); the key
 * must be of signature type `alg` (its first byte) with a 32-byte key after it.
 */
function splitKey(text: string, alg = ALG_ED25519): { name: string; keyId: number; key: Uint8Array } {
  const a = text.indexOf('+');
  const b = a < 0 ? -1 : text.indexOf('+', a + 1);
  if (a < 0 || b < 0) keyError('key must be name+keyid+key');
  const name = text.slice(0, a);
  const id = text.slice(a + 1, b);
  if (!isValidKeyName(name)) keyError('invalid key name');
  if (!/^[0-9a-fA-F]{8}$/.test(id)) keyError('key ID must be 8 hex digits');
  let key: Uint8Array;
  try {
    key = fromBase64(text.slice(b + 1));
  } catch (cause) {
    throw new VerityError('NOTE_KEY_INVALID', 'key is not valid base64', { cause });
  }
  if (key.length !== 33 || key[0] !== alg) {
    keyError(`key must be of type 0x${alg.toString(16).padStart(2, '0')} with 32 bytes of key`);
  }
  return { name, keyId: Number.parseInt(id, 16), key: key.subarray(1) };
}

/**
 * Builds a verifier from a C2SP public key such as `PeterNeumann+c74f20a3+ARpc2QcU…`. Throws
 * `NOTE_KEY_INVALID` on a malformed key or a key ID that does not match the key.
 *
 * @example
 * ```ts
 * const v = parseVerifierKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW');
 * ```
 */
export function parseVerifierKey(verifierKey: string): NoteVerifier {
  const { name, keyId, key } = splitKey(verifierKey);
  if (noteKeyId(name, key) !== keyId) keyError('key ID does not match the key');
  return createEd25519Verifier(name, key);
}

/**
 * The raw 32-byte Ed25519 public key of a C2SP verifier key (`name+keyid+base64(0x01 ‖ key)`),
 * checked as {@link parseVerifierKey} checks it (`NOTE_KEY_INVALID`).
 *
 * @example
 * ```ts
 * verifierPublicKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW').length; // 32
 * ```
 */
export function verifierPublicKey(verifierKey: string): Uint8Array {
  return decodeVerifierKey(verifierKey).publicKey;
}

/**
 * The name, key ID and raw 32-byte public key of a verifier key of signature type `alg`
 * (0x01 Ed25519 note keys by default; 0x04 for tlog-cosignature witness keys), with its key ID
 * checked against the key (`NOTE_KEY_INVALID`).
 *
 * @example
 * ```ts
 * decodeVerifierKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2', 0x04).name; // 'remora.n621.de'
 * ```
 */
export function decodeVerifierKey(
  verifierKey: string,
  alg = ALG_ED25519,
): { name: string; keyId: number; publicKey: Uint8Array } {
  if (typeof verifierKey !== 'string') keyError('key must be a string');
  const { name, keyId, key } = splitKey(verifierKey, alg);
  if (noteKeyId(name, key, alg) !== keyId) keyError('key ID does not match the key');
  return { name, keyId, publicKey: key };
}

/**
 * A verifier for an Ed25519 public key. Verification is strict RFC 8032 (no ZIP-215 leniency),
 * like Go's crypto/ed25519.
 *
 * @example
 * ```ts
 * const v = createEd25519Verifier('verity.example/log', publicKey);
 * ```
 */
export function createEd25519Verifier(name: string, publicKey: Uint8Array): NoteVerifier {
  if (!isValidKeyName(name)) keyError('invalid key name');
  if (publicKey.length !== 32) keyError('Ed25519 public key must be 32 bytes');
  return {
    name,
    keyId: noteKeyId(name, publicKey),
    verify(message, signature) {
      if (signature.length !== 64) return false;
      try {
        return ed25519.verify(signature, message, publicKey, { zip215: false });
      } catch {
        return false;
      }
    },
  };
}

/**
 * Builds a signer from a C2SP private key `PRIVATE+KEY+name+keyid+base64(0x01 ‖ seed)`.
 *
 * @example
 * ```ts
 * const s = parseSignerKey('PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz');
 * ```
 */
export function parseSignerKey(signerKey: string): NoteSigner {
  if (!signerKey.startsWith('PRIVATE+KEY+')) keyError('signer key must start with PRIVATE+KEY+');
  const { name, keyId, key: seed } = splitKey(signerKey.slice('PRIVATE+KEY+'.length));
  const signer = createEd25519Signer(name, seed);
  if (signer.keyId !== keyId) keyError('key ID does not match the key');
  return signer;
}

/**
 * A signer for an Ed25519 seed (32-byte private key).
 *
 * @example
 * ```ts
 * const s = createEd25519Signer('verity.example/log', seed);
 * ```
 */
export function createEd25519Signer(name: string, seed: Uint8Array): NoteSigner {
  if (!isValidKeyName(name)) keyError('invalid key name');
  if (seed.length !== 32) keyError('Ed25519 seed must be 32 bytes');
  const publicKey = ed25519.getPublicKey(seed);
  return { name, keyId: noteKeyId(name, publicKey), sign: (message) => ed25519.sign(message, seed) };
}

/**
 * The C2SP verifier key string for an Ed25519 public key: `name+keyid+base64(0x01 ‖ key)`.
 *
 * @example
 * ```ts
 * encodeVerifierKey('PeterNeumann', publicKey) // 'PeterNeumann+c74f20a3+ARpc2QcU…'
 * ```
 */
export function encodeVerifierKey(name: string, publicKey: Uint8Array, alg = ALG_ED25519): string {
  if (!isValidKeyName(name)) keyError('invalid key name');
  if (publicKey.length !== 32) keyError('Ed25519 public key must be 32 bytes');
  return `${name}+${hex8(noteKeyId(name, publicKey, alg))}+${toBase64(concatBytes(new Uint8Array([alg]), publicKey))}`;
}

/**
 * The C2SP signer key string for an Ed25519 seed: `PRIVATE+KEY+name+keyid+base64(0x01 ‖ seed)`.
 *
 * @example
 * ```ts
 * encodeSignerKey('PeterNeumann', seed) // 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEK…'
 * ```
 */
export function encodeSignerKey(name: string, seed: Uint8Array): string {
  const { keyId } = createEd25519Signer(name, seed);
  return `PRIVATE+KEY+${name}+${hex8(keyId)}+${toBase64(concatBytes(new Uint8Array([ALG_ED25519]), seed))}`;
}

/**
 * Generates a fresh Ed25519 note key pair (or derives it from a given 32-byte seed).
 *
 * @example
 * ```ts
 * const { signerKey, verifierKey } = generateNoteKey('verity.example/log');
 * ```
 */
export function generateNoteKey(
  name: string,
  seed: Uint8Array = ed25519.utils.randomSecretKey(),
): { signerKey: string; verifierKey: string; publicKey: Uint8Array } {
  const publicKey = ed25519.getPublicKey(seed);
  return { signerKey: encodeSignerKey(name, seed), verifierKey: encodeVerifierKey(name, publicKey), publicKey };
}

/** The note text rules: non-empty, ends in '\n', well-formed Unicode, no control chars but '\n'. */
function assertNoteText(text: string): void {
  if (text.length === 0 || !text.endsWith('\n')) fail('NOTE_MALFORMED', 'note text must end with a newline');
  if (!isWellFormedUnicode(text)) fail('NOTE_MALFORMED', 'note text is not well-formed Unicode');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) fail('NOTE_MALFORMED', 'note text contains a control character');
}

/**
 * Signs `text` with each signer and returns the whole note: text, blank line, signature lines.
 *
 * @example
 * ```ts
 * const note = signNote('hello\n', [parseSignerKey(skey)]);
 * ```
 */
export function signNote(text: string, signers: readonly NoteSigner[]): string {
  assertNoteText(text);
  if (text.includes('\n\n')) fail('NOTE_MALFORMED', 'note text must not contain a blank line');
  const message = utf8(text);
  let out = `${text}\n`;
  for (const s of signers) {
    const id = new Uint8Array(4);
    new DataView(id.buffer).setUint32(0, s.keyId);
    out += `${SIG_PREFIX}${s.name} ${toBase64(concatBytes(id, s.sign(message)))}\n`;
  }
  return out;
}

/** A set of verifiers, looked up by (name, key ID). */
export type NoteVerifiers = readonly NoteVerifier[];

/**
 * Parses a signed note and verifies it against `verifiers`, with the semantics of Go's
 * `note.Open`: signatures from unknown keys are kept aside, a bad signature from a known key is
 * an error, and at least one known key must have signed. Throws `NOTE_MALFORMED`,
 * `NOTE_SIGNATURE_INVALID` or `NOTE_UNKNOWN_KEY` (no signature from any known key).
 *
 * @example
 * ```ts
 * const { text } = openNote(noteText, [parseVerifierKey(vkey)]);
 * ```
 */
export function openNote(message: string, verifiers: NoteVerifiers): Note {
  if (typeof message !== 'string') fail('NOTE_MALFORMED', 'note must be a string');
  assertNoteText(message);
  const split = message.lastIndexOf('\n\n');
  if (split < 0) fail('NOTE_MALFORMED', 'note has no signature block');
  const text = message.slice(0, split + 1);
  let sigs = message.slice(split + 2);
  if (sigs.length === 0) fail('NOTE_MALFORMED', 'note has no signatures');
  const textBytes = utf8(text);
  const signatures: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  let count = 0;
  while (sigs.length > 0) {
    const nl = sigs.indexOf('\n');
    const line = sigs.slice(0, nl);
    sigs = sigs.slice(nl + 1);
    if (!line.startsWith(SIG_PREFIX)) fail('NOTE_MALFORMED', 'signature line must start with "— "');
    const rest = line.slice(SIG_PREFIX.length);
    const sp = rest.indexOf(' ');
    const name = sp < 0 ? rest : rest.slice(0, sp);
    const b64 = sp < 0 ? '' : rest.slice(sp + 1);
    let raw: Uint8Array;
    try {
      raw = fromBase64(b64);
    } catch {
      return fail('NOTE_MALFORMED', 'signature is not valid base64');
    }
    if (!isValidKeyName(name) || b64 === '' || raw.length < 5) fail('NOTE_MALFORMED', 'malformed signature line');
    if (++count > MAX_SIGNATURES) fail('NOTE_MALFORMED', 'too many signatures');
    const keyId = new DataView(raw.buffer, raw.byteOffset, 4).getUint32(0);
    const sig: NoteSignature = { name, keyId, base64: b64 };
    const matches = verifiers.filter((v) => v.name === name && v.keyId === keyId);
    if (matches.length === 0) {
      if (!unverified.some((u) => u.name === name && u.base64 === b64)) unverified.push(sig);
      continue;
    }
    if (matches.length > 1) fail('NOTE_KEY_INVALID', 'ambiguous verifiers for one key', { name, keyId: hex8(keyId) });
    const id = `${name}+${keyId}`;
    if (seen.has(id)) continue; // repeated signatures by one key are dropped, as in Go
    seen.add(id);
    if (!(matches[0] as NoteVerifier).verify(textBytes, raw.subarray(4))) {
      fail('NOTE_SIGNATURE_INVALID', 'invalid signature', { name, keyId: hex8(keyId) });
    }
    signatures.push(sig);
  }
  if (signatures.length === 0) {
    fail('NOTE_UNKNOWN_KEY', 'no signature from a known key', {
      signers: unverified.map((u) => `${u.name}+${hex8(u.keyId)}`),
    });
  }
  return { text, signatures, unverified };
}
