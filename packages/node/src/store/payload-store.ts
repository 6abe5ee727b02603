/**
 * Payloads of `audited` requests (issue 12.3, docs/api.md "Mode audited"): the canonical input and
 * output bytes of each audited record (the bytes its digests are SHA-256 of: the tensor encoding
 * of docs/protocol.md §2.3 for `onnx`, the RFC 8785 JSON of §10.2 / §10.3 for `llm`), kept until its challenge window closes
 * so that an auditor can re-execute it and a challenger can put the input bytes on chain. One file
 * per request, written atomically and durably *before* the record is logged: every audited record
 * in the log has its payload, whatever the crash (the audit flow: docs/architecture.md §6). A
 * crash between the two leaves a payload without a record, which no one can ask for by a receipt
 * and which is pruned with its window.
 *
 * Files are kept in buckets by when their window closes, `<dir>/<bucket start, ms>/<hex of the
 * request id>.json`, one bucket per `bucketMs` (an hour by default). Pruning removes whole buckets
 * that closed before now, reading no payload: its cost follows the number of buckets in a window
 * (72 for three days), not the number of requests, so a busy node with a long window prunes as
 * cheaply as an idle one. A payload whose window closed stays on disk until its bucket ends (at
 * most `bucketMs` longer) but is never served after its window. A lookup by request id tries the
 * buckets still open, newest first (auditors ask for a sample, not for every request).
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBase64, toBase64, utf8, VerityError } from '@verity/protocol';
import { fsyncDir, writeFileAtomic } from './atomic-file.js';

/** What `GET /v1/payloads/:requestId` answers. */
export interface AuditPayload {
  readonly version: 1;
  readonly requestId: string;
  /**
   * The record's kind, which says what the bytes are: `onnx`, the canonical tensor encoding
   * (docs/protocol.md §2.3); `llm`, the RFC 8785 JSON of the canonical input and output (§10.2,
   * §10.3). A payload written before kinds were recorded has none and is `onnx`.
   */
  readonly kind: 'onnx' | 'llm';
  /** The model's manifest CID. */
  readonly model: string;
  /** Hex SHA-256 of `input` / `output` (= the record's inputDigest / outputDigest). */
  readonly inputDigest: string;
  readonly outputDigest: string;
  /** The canonical bytes of the input and the output (see `kind`), base64 (RFC 4648 §4). */
  readonly input: string;
  readonly output: string;
  /**
   * Until when the payload is kept and served (ms since the epoch): the record's timestamp + the
   * window (+ a margin on a chain, where the window runs from the record's first anchor).
   */
  readonly windowClosesAt: number;
}

/** Request ids as the node accepts them (api/request-ids.ts); each is kept under its hex spelling. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** A bucket's directory name: the start of its span of closing times, in ms since the epoch. */
const BUCKET = /^[0-9]{1,16}$/;

export interface PayloadStore {
  /** Keeps `payload` durably (before its record is logged). */
  put(payload: AuditPayload): Promise<void>;
  /** The payload of `requestId` while its window is open; `undefined` otherwise. */
  get(requestId: string, now?: number): Promise<AuditPayload | undefined>;
  /** Removes the payload of a request that was not logged after all. */
  remove(requestId: string): Promise<void>;
  /**
   * Removes every bucket whose span of closing times ended before `now` (so every payload whose
   * window closed at least `bucketMs` ago, and possibly later ones of the same bucket); how many
   * payloads went with them.
   */
  prune(now?: number): Promise<number>;
}

export interface PayloadStoreOptions {
  /** The span of closing times one bucket holds (ms; default an hour). */
  readonly bucketMs?: number;
}

/** Opens (creating) the payload store in `dir`. */
export async function openPayloadStore(dir: string, options: PayloadStoreOptions = {}): Promise<PayloadStore> {
  const bucketMs = options.bucketMs ?? 3_600_000;
  if (!Number.isSafeInteger(bucketMs) || bucketMs <= 0) throw new RangeError('bucketMs must be a positive integer');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tempDir = join(dir, '.tmp');
  await rm(tempDir, { recursive: true, force: true }); // temporaries of a crashed writer
  await mkdir(tempDir, { recursive: true });
  const fileOf = (requestId: string) => {
    if (!REQUEST_ID.test(requestId)) throw new VerityError('PAYLOAD_NOT_FOUND', 'no payload for this request id');
    return `${Buffer.from(requestId, 'utf8').toString('hex')}.json`;
  };
  const bucketOf = (windowClosesAt: number) => String(Math.floor(windowClosesAt / bucketMs) * bucketMs);
  /** The buckets on disk, newest first. */
  const buckets = async () => (await readdir(dir)).filter((n) => BUCKET.test(n)).sort((a, b) => Number(b) - Number(a));
  const made = new Set<string>();
  const ensureBucket = async (bucket: string) => {
    if (made.has(bucket)) return;
    await mkdir(join(dir, bucket), { recursive: true });
    await fsyncDir(dir); // the bucket's own entry, before any file in it counts as durable
    made.add(bucket);
  };
  const read = async (path: string): Promise<AuditPayload | undefined> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    // Written before payloads named their kind: every one of them was ONNX.
    return { kind: 'onnx', ...(JSON.parse(text) as Omit<AuditPayload, 'kind'>) } as AuditPayload;
  };

  // Payloads kept flat in `dir` by a node from before the buckets: move each into its bucket once.
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.json')) continue;
    const payload = await read(join(dir, name)).catch(() => undefined);
    if (payload === undefined || !Number.isSafeInteger(payload.windowClosesAt)) {
      await rm(join(dir, name), { force: true });
      continue;
    }
    const bucket = bucketOf(payload.windowClosesAt);
    await ensureBucket(bucket);
    await rename(join(dir, name), join(dir, bucket, name));
    await fsyncDir(join(dir, bucket));
    await fsyncDir(dir);
  }

  /** Where `requestId`'s payload lies among the buckets that may still hold an open window. */
  const find = async (requestId: string, now: number): Promise<string | undefined> => {
    const file = fileOf(requestId);
    for (const bucket of await buckets()) {
      if (Number(bucket) + bucketMs <= now) break; // every window in it and in older ones closed
      const path = join(dir, bucket, file);
      if ((await read(path)) !== undefined) return path;
    }
    return undefined;
  };

  return {
    async put(payload) {
      // Refuse what the reader could not give back bit for bit.
      fromBase64(payload.input);
      fromBase64(payload.output);
      if (!Number.isSafeInteger(payload.windowClosesAt) || payload.windowClosesAt < 0) {
        throw new RangeError('windowClosesAt must be a non-negative integer (ms)');
      }
      const bucket = bucketOf(payload.windowClosesAt);
      await ensureBucket(bucket);
      await writeFileAtomic(join(dir, bucket, fileOf(payload.requestId)), utf8(JSON.stringify(payload)), tempDir);
    },
    async get(requestId, now = Date.now()) {
      if (!REQUEST_ID.test(requestId)) return undefined;
      const path = await find(requestId, now);
      const payload = path === undefined ? undefined : await read(path);
      return payload !== undefined && payload.windowClosesAt >= now ? payload : undefined;
    },
    async remove(requestId) {
      const path = await find(requestId, Number.NEGATIVE_INFINITY);
      if (path === undefined) return;
      await rm(path, { force: true });
      await fsyncDir(join(path, '..'));
    },
    async prune(now = Date.now()) {
      let removed = 0;
      let changed = false;
      for (const bucket of await buckets()) {
        if (Number(bucket) + bucketMs > now) continue; // may hold a window still open
        const path = join(dir, bucket);
        removed += (await readdir(path)).filter((n) => n.endsWith('.json')).length;
        await rm(path, { recursive: true, force: true });
        made.delete(bucket);
        changed = true;
      }
      if (changed) await fsyncDir(dir);
      return removed;
    },
  };
}

/** The payload of an audited request from its canonical bytes. */
export function auditPayload(p: {
  requestId: string;
  kind: AuditPayload['kind'];
  model: string;
  inputDigest: string;
  outputDigest: string;
  input: Uint8Array;
  output: Uint8Array;
  windowClosesAt: number;
}): AuditPayload {
  return {
    version: 1,
    requestId: p.requestId,
    kind: p.kind,
    model: p.model,
    inputDigest: p.inputDigest,
    outputDigest: p.outputDigest,
    input: toBase64(p.input),
    output: toBase64(p.output),
    windowClosesAt: p.windowClosesAt,
  };
}
