/**
 * Payloads of `audited` requests (issue 12.3, docs/api.md "Mode audited"): the canonical input and
 * output bytes (docs/design.md §2.2) of each audited record, kept until its challenge window closes
 * so that an auditor can re-execute it and a challenger can put the input bytes on chain. One file
 * per request, `<dir>/<hex of the request id>.json`, written atomically and durably *before* the record is
 * logged: every audited record in the log has its payload, whatever the crash. A crash between the
 * two leaves a payload without a record, which no one can ask for by a receipt and which is pruned
 * with its window.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBase64, toBase64, utf8, VerityError } from '@verity/protocol';
import { fsyncDir, writeFileAtomic } from './atomic-file.js';

/** What `GET /v1/payloads/:requestId` answers. */
export interface AuditPayload {
  readonly version: 1;
  readonly requestId: string;
  /** The model's manifest CID. */
  readonly model: string;
  /** Hex SHA-256 of `input` / `output` (= the record's inputDigest / outputDigest). */
  readonly inputDigest: string;
  readonly outputDigest: string;
  /** The canonical tensor encoding of the input and the output, base64 (RFC 4648 §4). */
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

export interface PayloadStore {
  /** Keeps `payload` durably (before its record is logged). */
  put(payload: AuditPayload): Promise<void>;
  /** The payload of `requestId` while its window is open; `undefined` otherwise. */
  get(requestId: string, now?: number): Promise<AuditPayload | undefined>;
  /** Removes the payload of a request that was not logged after all. */
  remove(requestId: string): Promise<void>;
  /** Removes every payload whose window closed before `now`; how many. */
  prune(now?: number): Promise<number>;
}

/** Opens (creating) the payload store in `dir`. */
export async function openPayloadStore(dir: string): Promise<PayloadStore> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tempDir = join(dir, '.tmp');
  await rm(tempDir, { recursive: true, force: true }); // temporaries of a crashed writer
  await mkdir(tempDir, { recursive: true });
  const pathOf = (requestId: string) => {
    if (!REQUEST_ID.test(requestId)) throw new VerityError('PAYLOAD_NOT_FOUND', 'no payload for this request id');
    return join(dir, `${Buffer.from(requestId, 'utf8').toString('hex')}.json`);
  };
  const read = async (path: string): Promise<AuditPayload | undefined> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    return JSON.parse(text) as AuditPayload;
  };
  return {
    async put(payload) {
      // Refuse what the reader could not give back bit for bit.
      fromBase64(payload.input);
      fromBase64(payload.output);
      await writeFileAtomic(pathOf(payload.requestId), utf8(JSON.stringify(payload)), tempDir);
    },
    async get(requestId, now = Date.now()) {
      if (!REQUEST_ID.test(requestId)) return undefined;
      const payload = await read(pathOf(requestId));
      return payload !== undefined && payload.windowClosesAt >= now ? payload : undefined;
    },
    async remove(requestId) {
      await rm(pathOf(requestId), { force: true });
      await fsyncDir(dir);
    },
    async prune(now = Date.now()) {
      let removed = 0;
      for (const name of await readdir(dir)) {
        if (!name.endsWith('.json')) continue;
        const path = join(dir, name);
        const payload = await read(path).catch(() => undefined);
        if (payload === undefined || payload.windowClosesAt < now) {
          await rm(path, { force: true });
          removed++;
        }
      }
      if (removed > 0) await fsyncDir(dir);
      return removed;
    },
  };
}

/** The payload of an audited request from its canonical bytes. */
export function auditPayload(p: {
  requestId: string;
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
    model: p.model,
    inputDigest: p.inputDigest,
    outputDigest: p.outputDigest,
    input: toBase64(p.input),
    output: toBase64(p.output),
    windowClosesAt: p.windowClosesAt,
  };
}
