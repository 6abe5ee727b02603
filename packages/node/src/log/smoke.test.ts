import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyReceipt } from '@verity/protocol';
import { expect, test } from 'vitest';
import { openLog } from './index.js';
import { makeRecord, signer, TRUST } from './test-support/log-fixtures.js';

test('smoke', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'log-'));
  const log = await openLog({ dir, signer });
  const rs = await Promise.all(Array.from({ length: 1000 }, (_, i) => log.append(makeRecord(i))));
  for (const r of rs) expect(verifyReceipt(r, TRUST)).toMatchObject({ ok: true });
  console.log(new Set(rs.map((r) => r.checkpoint)).size, log.size);
  await log.close();
  const log2 = await openLog({ dir, signer });
  expect(log2.size).toBe(1000);
  expect(verifyReceipt(log2.receiptByRequestId('req-5'), TRUST)).toMatchObject({ ok: true });
  await log2.close();
});
