/**
 * The payment journal: a node's durable memory of the payments it accepted (docs/api.md
 * "Payments"). One JSON line per event in `<dataDir>/payments/journal.jsonl`, appended and
 * fdatasync'd before the event counts:
 *
 * - `accepted`: a verified payment, the request it paid for and the answer it bought, written
 *   before the node settles and before the answer leaves. A crash after it leaves a payment the
 *   node settles on restart (while the authorization is valid), and an answer the payer gets back
 *   by retrying with the same payment: money and answer are never both lost.
 * - `settled` (with its transaction), `failed` (the authorization can never settle: the payer
 *   keeps the money, the answer is withheld), `expired` (the window closed before a settlement).
 *
 * Keyed by payment id (the authorization's EIP-712 digest): an id is accepted once, for one
 * request, so the same payment retried for the same request gets the same answer and one
 * settlement, and for another request is `PAYMENT_REPLAYED`. A torn last line (a crash while
 * appending) is dropped on open: its payment was never acknowledged.
 *
 * Bounded by the payments' validity: on open, a payment that is done (settled, failed, expired)
 * and whose authorization expired is left out of the rewritten file. Nothing is lost: a retry of it
 * is refused by what the node checks anyway (PAYMENT_EXPIRED).
 */
import fs from 'node:fs';
import { join } from 'node:path';
import type { ReceiptPayment } from '@verity/protocol';
import { datasync, fsyncFd } from '../log/files.js';

/** The answer a payment bought, as it went out (replayed byte for byte to a retry). */
export interface StoredAnswer {
  readonly status: number;
  readonly contentType: string;
  /** Base64 of the body. */
  readonly body: string;
}

/** A payment the node accepted, and where it stands. */
export interface JournalEntry {
  /** Payment id: the authorization's EIP-712 digest, lower-case hex. */
  readonly id: string;
  /** Digest of the request it paid for (route and body). */
  readonly requestKey: string;
  readonly payment: ReceiptPayment;
  /** Atomic units charged (decimal string). */
  readonly amount: string;
  readonly answer: StoredAnswer;
  state: 'accepted' | 'settled' | 'failed' | 'expired';
  /** The settlement's transaction hash (`settled`; empty when found settled on chain after a crash). */
  transaction?: string;
  /** Why it failed (`failed`): an error code. */
  code?: string;
}

type Line =
  | { t: 'accepted'; id: string; requestKey: string; payment: ReceiptPayment; amount: string; answer: StoredAnswer }
  | { t: 'settled'; id: string; transaction: string }
  | { t: 'failed'; id: string; code: string }
  | { t: 'expired'; id: string };

/** An open journal. */
export interface PaymentJournal {
  get(id: string): JournalEntry | undefined;
  /** Entries still `accepted` (to settle on start). */
  pending(): JournalEntry[];
  /** Appends and syncs an accepted payment; resolves once it is durable. */
  accept(entry: Omit<JournalEntry, 'state' | 'transaction' | 'code'>): Promise<JournalEntry>;
  settled(id: string, transaction: string): Promise<void>;
  failed(id: string, code: string): Promise<void>;
  expired(id: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens (creating) the journal in `dir`, replaying its lines.
 *
 * @example
 * ```ts
 * const journal = await openPaymentJournal(join(dataDir, 'payments'), { fsync: true });
 * ```
 */
export async function openPaymentJournal(
  dir: string,
  options: { readonly fsync: boolean /** Unix seconds, for tests (default now). */; readonly now?: number },
): Promise<PaymentJournal> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'journal.jsonl');
  const created = !fs.existsSync(path);
  const entries = new Map<string, JournalEntry>();
  let good = 0;
  if (!created) {
    const text = fs.readFileSync(path, 'utf8');
    let at = 0;
    while (at < text.length) {
      const end = text.indexOf('\n', at);
      if (end < 0) break; // a torn last line: never acknowledged
      apply(entries, JSON.parse(text.slice(at, end)) as Line);
      at = end + 1;
    }
    good = Buffer.byteLength(text.slice(0, at));
    const now = BigInt(options.now ?? Math.floor(Date.now() / 1000));
    const done = [...entries.values()].filter(
      (e) => e.state !== 'accepted' && BigInt(e.payment.authorization.validBefore) < now,
    );
    if (done.length > 0) {
      for (const e of done) entries.delete(e.id);
      good = await rewrite(dir, path, [...entries.values()], options.fsync);
    }
  }
  const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
  fs.ftruncateSync(fd, good);
  let position = good;
  if (created && options.fsync) {
    const d = fs.openSync(dir, 'r');
    await fsyncFd(d);
    fs.closeSync(d);
  }
  // Group commit: one write and one sync at a time, carrying every line that arrived while the
  // previous one was being synced (concurrent paid requests share an fdatasync). Positions stay
  // contiguous, and a line counts (and its promise resolves) only once it is durable.
  interface Waiting {
    readonly line: Line;
    resolve(): void;
    reject(error: unknown): void;
  }
  let waiting: Waiting[] = [];
  let flushing = false;
  let flushed: Promise<void> = Promise.resolve();
  const flush = async () => {
    while (waiting.length > 0) {
      const batch = waiting;
      waiting = [];
      try {
        const bytes = Buffer.from(batch.map((w) => `${JSON.stringify(w.line)}\n`).join(''));
        fs.writeSync(fd, bytes, 0, bytes.length, position);
        position += bytes.length;
        if (options.fsync) await datasync(fd);
        for (const w of batch) apply(entries, w.line);
      } catch (e) {
        for (const w of batch) w.reject(e);
        continue;
      }
      for (const w of batch) w.resolve();
    }
    // In the same synchronous step as the last look at `waiting`: no line is left behind.
    flushing = false;
  };
  const append = (line: Line): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ line, resolve, reject });
      if (!flushing) {
        flushing = true;
        flushed = flush();
      }
    });
  return {
    get: (id) => entries.get(id),
    pending: () => [...entries.values()].filter((e) => e.state === 'accepted'),
    async accept(e) {
      await append({ t: 'accepted', ...e });
      return entries.get(e.id) as JournalEntry;
    },
    settled: (id, transaction) => append({ t: 'settled', id, transaction }),
    failed: (id, code) => append({ t: 'failed', id, code }),
    expired: (id) => append({ t: 'expired', id }),
    async close() {
      await flushed;
      fs.closeSync(fd);
    },
  };
}

/** The lines that say `entries` as they stand, written to a new file that replaces `path`; its size. */
async function rewrite(dir: string, path: string, entries: JournalEntry[], fsync: boolean): Promise<number> {
  const lines: Line[] = [];
  for (const e of entries) {
    lines.push({
      t: 'accepted',
      id: e.id,
      requestKey: e.requestKey,
      payment: e.payment,
      amount: e.amount,
      answer: e.answer,
    });
    if (e.state === 'settled') lines.push({ t: 'settled', id: e.id, transaction: e.transaction ?? '' });
    if (e.state === 'failed') lines.push({ t: 'failed', id: e.id, code: e.code ?? 'PAYMENT_SETTLEMENT_FAILED' });
    if (e.state === 'expired') lines.push({ t: 'expired', id: e.id });
  }
  const bytes = Buffer.from(lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const tmp = `${path}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  fs.writeSync(fd, bytes);
  if (fsync) await datasync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, path);
  if (fsync) {
    const d = fs.openSync(dir, 'r');
    await fsyncFd(d);
    fs.closeSync(d);
  }
  return bytes.length;
}

function apply(entries: Map<string, JournalEntry>, line: Line): void {
  if (line.t === 'accepted') {
    const { t: _, ...rest } = line;
    entries.set(line.id, { ...rest, state: 'accepted' });
    return;
  }
  const e = entries.get(line.id);
  if (e === undefined) return;
  e.state = line.t;
  if (line.t === 'settled') e.transaction = line.transaction;
  if (line.t === 'failed') e.code = line.code;
}
