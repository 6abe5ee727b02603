/**
 * The node as a C2SP tlog-witness (docs/protocol.md "Witnesses"): it cosigns other logs'
 * checkpoints after checking each is consistent with the last one it cosigned for that origin
 * (docs/architecture.md §5).
 *
 * - Which logs: the registered nodes' log keys (chain registry, when the node runs on a chain)
 *   and the keys configured in `witness.logs`. The origin is the log key's name.
 * - State: per origin, the latest checkpoint it cosigned (with its own cosignature), one file
 *   `witness/<sha256(origin) hex>.json`, replaced atomically and durably (`writeFileAtomic`)
 *   BEFORE the cosignature is returned, as the spec requires. A restart after `kill -9` finds
 *   either the old state or the new, never a torn one.
 * - Atomicity: requests for one origin are handled one at a time (a promise chain per origin),
 *   so the check of the old size and the write of the new state cannot interleave (the spec's
 *   race: two requests checked against one state, the smaller written last, rolling the log back).
 * - Key: an Ed25519 `cosignature/v1` key derived from the log signer's seed under a domain
 *   separator, so it is stable across restarts and is never the log key itself (the spec wants a
 *   distinct key per cosigner).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type AddCheckpointRequest,
  addCosignatures,
  type Cosigner,
  checkAddCheckpoint,
  createCosigner,
  fail,
  fromBase64,
  isVerityError,
  type NoteVerifier,
  parseAddCheckpoint,
  parseVerifierKey,
  sha256,
  toBase64,
  toHex,
  utf8,
  type WitnessedHead,
} from '@verity/protocol';
import { writeFileAtomic } from '../store/atomic-file.js';

/** What a witness keeps per origin. */
interface StoredHead {
  readonly origin: string;
  readonly size: number;
  /** base64 */
  readonly rootHash: string;
  /** The checkpoint as cosigned: the log's signature(s) and this witness's cosignature. */
  readonly checkpoint: string;
}

export interface WitnessServiceOptions {
  /** Directory of the state files (created if missing). */
  readonly dir: string;
  /** The witness's cosigner. */
  readonly cosigner: Cosigner;
  /** The log verifier keys trusted for an origin, or `undefined` if the origin is not witnessed. */
  readonly logKeys: (origin: string) => Promise<readonly NoteVerifier[] | undefined>;
  /** POSIX seconds (default: the clock). */
  readonly now?: () => number;
}

export interface WitnessService {
  readonly name: string;
  /** The witness's verifier key (type 0x04). */
  readonly verifierKey: string;
  /**
   * Handles an `add-checkpoint` body: the cosignature line(s), or a VerityError whose code the
   * route maps to the spec's status (`WITNESS_OLD_SIZE_CONFLICT` carries `details.latestSize`).
   */
  addCheckpoint(body: string): Promise<string>;
  /** The latest cosigned checkpoint of an origin, by the hex SHA-256 of the origin. */
  latest(originHash: string): Promise<string | undefined>;
}

/** The seed of the witness key: SHA-256 of a domain separator and the log signer's seed. */
export function witnessSeed(logSignerKey: string): Uint8Array {
  // PRIVATE+KEY+<name>+<key id>+<base64(0x01 ‖ seed)>: the base64 may itself hold '+'.
  const rest = logSignerKey.slice('PRIVATE+KEY+'.length);
  const a = rest.indexOf('+');
  const raw = fromBase64(rest.slice(rest.indexOf('+', a + 1) + 1));
  if (raw.length !== 33) fail('KEYSTORE_INVALID', 'the log signer key is not an Ed25519 seed');
  const tag = utf8('verity/witness-key/v1\n');
  const input = new Uint8Array(tag.length + 32);
  input.set(tag);
  input.set(raw.subarray(1), tag.length);
  return sha256(input);
}

/** The witness name of a node: its log origin with `/witness` after it. */
export function witnessName(origin: string): string {
  return `${origin}/witness`;
}

/** The verifiers for a list of log keys, grouped by origin (the key name). */
export function logKeysByOrigin(keys: readonly string[]): Map<string, NoteVerifier[]> {
  const map = new Map<string, NoteVerifier[]>();
  for (const k of keys) {
    let v: NoteVerifier;
    try {
      v = parseVerifierKey(k);
    } catch {
      continue; // one unusable key (the registry does not check them) must not stop the others
    }
    const list = map.get(v.name) ?? [];
    if (!list.some((x) => x.keyId === v.keyId)) list.push(v);
    map.set(v.name, list);
  }
  return map;
}

/**
 * Creates the witness service.
 *
 * @example
 * ```ts
 * const w = createWitnessService({ dir, cosigner, logKeys: async (o) => byOrigin.get(o) });
 * const lines = await w.addCheckpoint(body);
 * ```
 */
export function createWitnessService(options: WitnessServiceOptions): WitnessService {
  const { dir, cosigner } = options;
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const heads = new Map<string, StoredHead | null>();
  const queues = new Map<string, Promise<void>>();
  let made: Promise<unknown> | undefined;
  const pathOf = (hash: string) => join(dir, `${hash}.json`);
  const hashOf = (origin: string) => toHex(sha256(utf8(origin)));

  async function load(hash: string): Promise<StoredHead | undefined> {
    const cached = heads.get(hash);
    if (cached !== undefined) return cached ?? undefined;
    let head: StoredHead | null = null;
    try {
      head = JSON.parse(await readFile(pathOf(hash), 'utf8')) as StoredHead;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    heads.set(hash, head);
    return head ?? undefined;
  }

  /** Check, cosign, persist: run for one origin at a time (see `addCheckpoint`). */
  async function handle(request: AddCheckpointRequest, keys: readonly NoteVerifier[], hash: string): Promise<string> {
    const stored = await load(hash);
    const latest: WitnessedHead | undefined =
      stored === undefined ? undefined : { size: stored.size, rootHash: fromBase64(stored.rootHash) };
    const cp = checkAddCheckpoint(request, keys, latest);
    const text = request.checkpoint.slice(0, request.checkpoint.lastIndexOf('\n\n') + 1);
    const line = cosigner.cosign(text, now());
    const next: StoredHead = {
      origin: cp.origin,
      size: cp.size,
      rootHash: toBase64(cp.rootHash),
      checkpoint: addCosignatures(request.checkpoint, line),
    };
    made ??= mkdir(dir, { recursive: true });
    await made;
    await writeFileAtomic(pathOf(hash), utf8(`${JSON.stringify(next)}\n`), dir);
    heads.set(hash, next);
    return line;
  }

  return {
    name: cosigner.name,
    verifierKey: cosigner.verifierKey,
    async addCheckpoint(body) {
      const request = parseAddCheckpoint(body);
      // The origin, unverified, only picks the keys; checkAddCheckpoint verifies the note with them.
      const origin = request.checkpoint.slice(0, request.checkpoint.indexOf('\n'));
      const keys = await options.logKeys(origin);
      // Not witnessed: refused (400 malformed, else 404) without touching any state.
      if (keys === undefined) return checkAddCheckpoint(request, undefined, undefined) as never;
      // One origin at a time: the check of the old size and the write of the new state never
      // interleave with another request for that log; other logs are not held up.
      const hash = hashOf(origin);
      const run = (queues.get(hash) ?? Promise.resolve()).then(() => handle(request, keys, hash));
      const tail = run.then(
        () => {},
        () => {},
      );
      queues.set(hash, tail);
      void tail.then(() => {
        if (queues.get(hash) === tail) queues.delete(hash);
      });
      return run;
    },
    async latest(originHash) {
      if (!/^[0-9a-f]{64}$/.test(originHash)) return undefined;
      try {
        return (await load(originHash))?.checkpoint;
      } catch (e) {
        if (isVerityError(e)) throw e;
        fail('INTERNAL', 'cannot read the witness state');
      }
    },
  };
}

/** A cosigner for the node's witness key. */
export function createNodeCosigner(origin: string, logSignerKey: string): Cosigner {
  return createCosigner(witnessName(origin), witnessSeed(logSignerKey));
}
