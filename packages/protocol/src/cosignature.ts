/**
 * Witness cosignatures in the C2SP tlog-cosignature format (https://c2sp.org/tlog-cosignature),
 * Ed25519 `cosignature/v1`: a witness states that, as of a time, the checkpoint is the largest
 * consistent tree head it has seen for the log. A cosignature is a signed-note signature line on
 * the checkpoint:
 *
 * ```
 * — <witness name> base64(key ID[4] ‖ timestamp[8, big-endian] ‖ Ed25519 signature[64])
 * ```
 *
 * The key ID is SHA-256(name ‖ 0x0A ‖ 0x04 ‖ public key)[:4] (type 0x04, not the 0x01 of a log
 * key: one key cannot be mistaken for the other), and the signed message is
 * `cosignature/v1\ntime <timestamp>\n` followed by the whole checkpoint body.
 *
 * A cosigned checkpoint is still one signed note (the log's signature, then the witnesses'), so
 * any C2SP tool reads it; {@link verifyWitnessPolicy} opens it with the witness keys a verifier
 * names and counts the distinct witnesses that cosigned it.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { fromBase64, toBase64, utf8 } from './bytes.js';
import { fail, isVerityError, VerityError } from './errors.js';
import {
  createEd25519Signer,
  decodeVerifierKey,
  encodeVerifierKey,
  type NoteSignature,
  type NoteVerifier,
  noteKeyId,
  openNote,
} from './note.js';

/** The signature type byte of Ed25519 `cosignature/v1` witness keys (tlog-cosignature §Format). */
export const ALG_COSIGNATURE_V1 = 0x04;
/** The header line of the signed message: domain separation from every other use of the key. */
export const COSIGNATURE_V1_HEADER = 'cosignature/v1';
/** Bytes after the key ID: u64 timestamp ‖ Ed25519 signature. */
const TIMESTAMPED_SIGNATURE_SIZE = 8 + 64;
/** tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1; ours are also safe integers. */
const MAX_TIMESTAMP = Number.MAX_SAFE_INTEGER;
const SIG_PREFIX = '\u2014 ';

/** A witness's public key, parsed from its verifier key `name+keyid+base64(0x04 ‖ key)`. */
export interface WitnessKey {
  readonly name: string;
  readonly keyId: number;
  readonly publicKey: Uint8Array;
  /** The verifier key text it was parsed from (canonical). */
  readonly verifierKey: string;
}

/** A witness's signing key: makes cosignature lines. */
export interface Cosigner {
  readonly name: string;
  readonly keyId: number;
  /** The public verifier key (`name+keyid+B…`, type 0x04) to give to verifiers. */
  readonly verifierKey: string;
  /** The cosignature line (ending in a newline) over a checkpoint body, at `timestamp` (POSIX seconds). */
  cosign(checkpointBody: string, timestamp: number): string;
}

/** A cosignature that verified. */
export interface VerifiedCosignature {
  readonly witness: string;
  readonly keyId: number;
  /** POSIX seconds at which the witness cosigned. */
  readonly timestamp: number;
}

/**
 * A trust policy on witnesses: at least `threshold` of the named witness keys must have cosigned
 * the checkpoint.
 */
export interface WitnessPolicy {
  /** Witness verifier keys (type 0x04), e.g. `witness.example/w1+1234abcd+B…`. */
  readonly keys: readonly string[];
  /** How many distinct witnesses of `keys` must cosign (1 ≤ threshold ≤ keys.length). */
  readonly threshold: number;
}

function assertTimestamp(timestamp: number): void {
  if (!Number.isSafeInteger(timestamp) || timestamp < 0 || timestamp > MAX_TIMESTAMP) {
    fail('INVALID_ARGUMENT', 'a cosignature timestamp must be a non-negative safe integer', { timestamp });
  }
}

/**
 * Parses a witness verifier key (type 0x04). Throws `NOTE_KEY_INVALID`.
 *
 * @example
 * ```ts
 * parseWitnessKey('remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2').name; // 'remora.n621.de'
 * ```
 */
export function parseWitnessKey(verifierKey: string): WitnessKey {
  const { name, keyId, publicKey } = decodeVerifierKey(verifierKey, ALG_COSIGNATURE_V1);
  return { name, keyId, publicKey, verifierKey: encodeVerifierKey(name, publicKey, ALG_COSIGNATURE_V1) };
}

/**
 * The message a `cosignature/v1` signs: `cosignature/v1\ntime <timestamp>\n` ‖ checkpoint body.
 *
 * @example
 * ```ts
 * cosignatureMessage('example.com/log\n1\nAAAA…=\n', 1679315147); // bytes of 'cosignature/v1\ntime 1679315147\nexample.com/log\n…'
 * ```
 */
export function cosignatureMessage(checkpointBody: string, timestamp: number): Uint8Array {
  assertTimestamp(timestamp);
  return utf8(`${COSIGNATURE_V1_HEADER}\ntime ${timestamp}\n${checkpointBody}`);
}

/**
 * A cosigner for an Ed25519 seed under a witness name.
 *
 * @example
 * ```ts
 * const w = createCosigner('witness.example/w1', seed);
 * const line = w.cosign(checkpointBody, Math.floor(Date.now() / 1000)); // '— witness.example/w1 …\n'
 * ```
 */
export function createCosigner(name: string, seed: Uint8Array): Cosigner {
  // The note signer checks the name and the seed; its key ID (type 0x01) is not the one used here.
  createEd25519Signer(name, seed);
  const publicKey = ed25519.getPublicKey(seed);
  const keyId = noteKeyId(name, publicKey, ALG_COSIGNATURE_V1);
  const verifierKey = encodeVerifierKey(name, publicKey, ALG_COSIGNATURE_V1);
  return {
    name,
    keyId,
    verifierKey,
    cosign(checkpointBody, timestamp) {
      const signature = ed25519.sign(cosignatureMessage(checkpointBody, timestamp), seed);
      const blob = new Uint8Array(4 + TIMESTAMPED_SIGNATURE_SIZE);
      const view = new DataView(blob.buffer);
      view.setUint32(0, keyId);
      view.setBigUint64(4, BigInt(timestamp));
      blob.set(signature, 12);
      return `${SIG_PREFIX}${name} ${toBase64(blob)}\n`;
    },
  };
}

/**
 * The timestamp of a cosignature line's signature (the 8 bytes after the key ID), or throws
 * `COSIGNATURE_MALFORMED` when the signature is not a `timestamped_signature` of Ed25519.
 *
 * @example
 * ```ts
 * cosignatureTimestamp({ name, keyId, base64: 'jWbPPwAAAABkGFDL…' }); // 1679315147
 * ```
 */
export function cosignatureTimestamp(signature: Pick<NoteSignature, 'base64'>): number {
  let raw: Uint8Array;
  try {
    raw = fromBase64(signature.base64);
  } catch (cause) {
    throw new VerityError('COSIGNATURE_MALFORMED', 'cosignature is not valid base64', { cause });
  }
  if (raw.length !== 4 + TIMESTAMPED_SIGNATURE_SIZE) {
    fail('COSIGNATURE_MALFORMED', 'a cosignature/v1 signature is key ID ‖ u64 timestamp ‖ 64-byte signature', {
      length: raw.length,
    });
  }
  const t = new DataView(raw.buffer, raw.byteOffset + 4, 8).getBigUint64(0);
  if (t > BigInt(MAX_TIMESTAMP)) fail('COSIGNATURE_MALFORMED', 'cosignature timestamp out of range');
  return Number(t);
}

/**
 * A signed-note verifier for a witness key: it checks `cosignature/v1` signatures, so
 * {@link openNote} verifies a cosigned checkpoint as it verifies the log's own signature.
 *
 * @example
 * ```ts
 * const note = openNote(cosignedCheckpoint, [logVerifier, createCosignatureVerifier(parseWitnessKey(w))]);
 * ```
 */
export function createCosignatureVerifier(key: WitnessKey): NoteVerifier {
  return {
    name: key.name,
    keyId: key.keyId,
    verify(message, signature) {
      if (signature.length !== TIMESTAMPED_SIGNATURE_SIZE) return false;
      const t = new DataView(signature.buffer, signature.byteOffset, 8).getBigUint64(0);
      if (t > BigInt(MAX_TIMESTAMP)) return false;
      const text = new TextDecoder().decode(message);
      try {
        return ed25519.verify(signature.subarray(8), cosignatureMessage(text, Number(t)), key.publicKey, {
          zip215: false,
        });
      } catch {
        return false;
      }
    },
  };
}

/**
 * Parses a witness policy's keys and checks its threshold. Throws `WITNESS_POLICY_INVALID`.
 *
 * @example
 * ```ts
 * const keys = parseWitnessPolicy({ keys: [w1, w2, w3], threshold: 2 });
 * ```
 */
export function parseWitnessPolicy(policy: WitnessPolicy): WitnessKey[] {
  if (typeof policy !== 'object' || policy === null || !Array.isArray(policy.keys)) {
    fail('WITNESS_POLICY_INVALID', 'a witness policy is { keys: string[], threshold: number }');
  }
  const keys: WitnessKey[] = [];
  for (const k of policy.keys) {
    try {
      keys.push(parseWitnessKey(k));
    } catch (cause) {
      throw new VerityError('WITNESS_POLICY_INVALID', `not a witness key (type 0x04): ${String(k)}`, { cause });
    }
  }
  const names = new Set(keys.map((k) => k.name));
  const raw = new Set(keys.map((k) => toBase64(k.publicKey)));
  // Distinct names and keys: one witness listed twice must not count twice toward the threshold.
  if (names.size !== keys.length || raw.size !== keys.length) {
    fail('WITNESS_POLICY_INVALID', 'a witness policy names each witness (name and key) once');
  }
  if (!Number.isSafeInteger(policy.threshold) || policy.threshold < 1 || policy.threshold > keys.length) {
    fail('WITNESS_POLICY_INVALID', 'the threshold must be between 1 and the number of witness keys', {
      threshold: policy.threshold,
      keys: keys.length,
    });
  }
  return keys;
}

/**
 * Verifies that at least `policy.threshold` of the named witnesses cosigned a signed checkpoint
 * note (its other signature lines, the log's among them, are ignored here: the log's signature is
 * checked by {@link openCheckpoint}). Throws `WITNESS_POLICY_INVALID`, `COSIGNATURE_INVALID` (a
 * line under a named witness's name and key ID whose signature does not verify: forged, or the
 * checkpoint altered), `COSIGNATURE_MALFORMED`, `NOTE_MALFORMED`, or `WITNESS_QUORUM_UNMET`.
 *
 * @example
 * ```ts
 * const cosigs = verifyWitnessPolicy(receipt.checkpoint, { keys: [w1, w2, w3], threshold: 2 });
 * ```
 */
export function verifyWitnessPolicy(noteText: string, policy: WitnessPolicy): VerifiedCosignature[] {
  const keys = parseWitnessPolicy(policy);
  let signatures: readonly NoteSignature[] = [];
  try {
    signatures = openNote(noteText, keys.map(createCosignatureVerifier)).signatures;
  } catch (e) {
    if (isVerityError(e, 'NOTE_SIGNATURE_INVALID')) {
      throw new VerityError('COSIGNATURE_INVALID', 'a named witness’s cosignature does not verify', {
        cause: e,
        details: e.details,
      });
    }
    if (!isVerityError(e, 'NOTE_UNKNOWN_KEY')) throw e;
  }
  const verified = signatures.map((s) => ({
    witness: s.name,
    keyId: s.keyId,
    timestamp: cosignatureTimestamp(s),
  }));
  if (verified.length < policy.threshold) {
    fail('WITNESS_QUORUM_UNMET', `${verified.length} of the ${policy.threshold} witness cosignatures required`, {
      threshold: policy.threshold,
      cosigned: verified.map((v) => v.witness),
    });
  }
  return verified;
}

/**
 * Adds cosignature lines to a signed checkpoint note (as tlog-witness suggests: the client
 * concatenates the witness's response to the checkpoint), skipping lines it already carries.
 *
 * @example
 * ```ts
 * const cosigned = addCosignatures(checkpointNote, witnessResponseBody);
 * ```
 */
export function addCosignatures(noteText: string, lines: string): string {
  if (!noteText.endsWith('\n') || !noteText.includes('\n\n')) fail('NOTE_MALFORMED', 'not a signed note');
  if (lines !== '' && !lines.endsWith('\n')) fail('COSIGNATURE_MALFORMED', 'signature lines end with a newline');
  const have = new Set(noteText.slice(noteText.lastIndexOf('\n\n') + 2).split('\n'));
  let out = noteText;
  for (const line of lines.split('\n')) {
    if (line === '') continue;
    if (!line.startsWith(SIG_PREFIX)) fail('COSIGNATURE_MALFORMED', 'a signature line starts with "— "');
    if (!have.has(line)) {
      out += `${line}\n`;
      have.add(line);
    }
  }
  return out;
}
