/**
 * The payment journal (journal.ts) on real files: what was acknowledged survives a reopen, with
 * its state; a torn last line (a crash while appending) is dropped, never half-read.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReceiptPayment } from '@verity/protocol';
import { describe, expect, it } from 'vitest';
import { openPaymentJournal } from './journal.js';

const PAYMENT: ReceiptPayment = {
  scheme: 'exact',
  network: 'eip155:31337',
  asset: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  name: 'Verity Test USD',
  version: '1',
  authorization: {
    from: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    to: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
    value: '1000',
    validAfter: '0',
    validBefore: '1893456000',
    nonce: `0x${'42'.repeat(32)}`,
  },
  signature: `0x${'11'.repeat(65)}`,
};
const entry = (id: string) => ({
  id,
  requestKey: 'k'.repeat(64),
  payment: PAYMENT,
  amount: '1000',
  answer: { status: 200, contentType: 'application/json', body: btoa('{"ok":true}') },
});

describe('payment journal', () => {
  it('keeps what was acknowledged across a reopen, and drops a torn last line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verity-journal-'));
    const j = await openPaymentJournal(dir, { fsync: true });
    await j.accept(entry('a'.repeat(64)));
    await j.accept(entry('b'.repeat(64)));
    await j.settled('a'.repeat(64), `0x${'cd'.repeat(32)}`);
    await j.close();
    // A crash in the middle of the next append: half a line, no newline.
    appendFileSync(join(dir, 'journal.jsonl'), '{"t":"accepted","id":"cccc');
    const k = await openPaymentJournal(dir, { fsync: true });
    expect(k.get('a'.repeat(64))).toMatchObject({ state: 'settled', transaction: `0x${'cd'.repeat(32)}` });
    expect(k.pending().map((e) => e.id)).toEqual(['b'.repeat(64)]);
    expect(k.get('cccc')).toBeUndefined();
    // Appends continue where the whole lines end: the torn bytes are gone from the file.
    await k.expired('b'.repeat(64));
    await k.close();
    const lines = readFileSync(join(dir, 'journal.jsonl'), 'utf8').split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines.slice(0, -1).map((l) => (JSON.parse(l) as { t: string }).t)).toEqual([
      'accepted',
      'accepted',
      'settled',
      'expired',
    ]);
    const l = await openPaymentJournal(dir, { fsync: false });
    expect(l.pending()).toEqual([]);
    expect(l.get('a'.repeat(64))?.answer.body).toBe(btoa('{"ok":true}'));
    await l.close();
  });

  it('commits lines appended together as a group, each acknowledged only once durable, none left behind', async () => {
    for (const fsync of [true, false]) {
      const dir = await mkdtemp(join(tmpdir(), 'verity-journal-group-'));
      const j = await openPaymentJournal(dir, { fsync });
      const ids = Array.from({ length: 20 }, (_, i) => i.toString(16).padStart(64, '0'));
      // All at once (concurrent paid requests), then their settlements, also at once.
      const accepted = await Promise.all(ids.map((id) => j.accept(entry(id))));
      expect(accepted.map((e) => e.state)).toEqual(ids.map(() => 'accepted'));
      await Promise.all(ids.map((id, i) => (i % 2 === 0 ? j.settled(id, `0x${'ab'.repeat(32)}`) : j.failed(id, 'X'))));
      // One more after a pause: the group's end did not stop the journal.
      await j.expired(ids[1] as string);
      await j.close();
      const k = await openPaymentJournal(dir, { fsync });
      expect(ids.map((id) => k.get(id)?.state)).toEqual(
        ids.map((_, i) => (i === 1 ? 'expired' : i % 2 === 0 ? 'settled' : 'failed')),
      );
      expect(readFileSync(join(dir, 'journal.jsonl'), 'utf8').split('\n')).toHaveLength(2 * ids.length + 2);
      await k.close();
    }
  });

  it('leaves out, on open, payments that are done and whose authorization expired', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verity-journal-'));
    const j = await openPaymentJournal(dir, { fsync: false });
    await j.accept(entry('a'.repeat(64))); // settled, expires at 1893456000
    await j.settled('a'.repeat(64), `0x${'cd'.repeat(32)}`);
    await j.accept(entry('b'.repeat(64))); // still to settle: kept whatever its time
    await j.close();
    // Before the authorization's validBefore: everything kept.
    const k = await openPaymentJournal(dir, { fsync: false, now: 1_893_455_000 });
    expect(k.get('a'.repeat(64))?.state).toBe('settled');
    await k.close();
    // After it: the settled one goes, the accepted one stays (its settlement is still to try).
    const l = await openPaymentJournal(dir, { fsync: true, now: 1_893_457_000 });
    expect(l.get('a'.repeat(64))).toBeUndefined();
    expect(l.pending().map((e) => e.id)).toEqual(['b'.repeat(64)]);
    await l.expired('b'.repeat(64));
    await l.close();
    const m = await openPaymentJournal(dir, { fsync: false, now: 1_893_457_000 });
    expect(m.get('b'.repeat(64))).toBeUndefined();
    expect(readFileSync(join(dir, 'journal.jsonl'), 'utf8')).toBe('');
    await m.close();
  });
});
