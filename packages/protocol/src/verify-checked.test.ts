import { describe, expect, it } from 'vitest';
import { buildReceiptFixtures } from './test-support/receipt-fixtures.js';
import { verifyBundle, verifyReceipt } from './verify.js';

// What a successful verification says about the input and output themselves (docs/protocol.md
// §9.2): a bundle without them verifies, but only the digests the node recorded are vouched for.
const { trust, fixtures } = buildReceiptFixtures();
const valid = fixtures.find((f) => f.name === 'valid-receipt')?.bundle as Record<string, unknown> & {
  receipts: { record: { inputDigest: string; outputDigest: string } }[];
};
const record = (valid.receipts[0] as (typeof valid.receipts)[0]).record;

describe('checked: what was compared with the records’ digests', () => {
  it('a bundle with its input and output: both checked', () => {
    expect(verifyBundle(valid, trust)).toMatchObject({ ok: true, checked: { input: true, output: true } });
  });
  it('a bundle whose output was deleted verifies, saying the output was not checked', () => {
    const { output: _, ...noOutput } = valid;
    expect(verifyBundle(noOutput, trust)).toMatchObject({ ok: true, checked: { input: true, output: false } });
    const { input: __, ...neither } = noOutput;
    expect(verifyBundle(neither, trust)).toMatchObject({ ok: true, checked: { input: false, output: false } });
  });
  it('a digest the caller holds counts as checked', () => {
    const { output: _, input: __, ...neither } = valid;
    const r = verifyBundle(neither, trust, { outputDigest: record.outputDigest });
    expect(r).toMatchObject({ ok: true, checked: { input: false, output: true } });
  });
  it('a lone receipt checks only the digests it is given', () => {
    const receipt = valid.receipts[0];
    expect(verifyReceipt(receipt, trust)).toMatchObject({ ok: true, checked: { input: false, output: false } });
    const both = { inputDigest: record.inputDigest, outputDigest: record.outputDigest };
    expect(verifyReceipt(receipt, trust, both)).toMatchObject({ ok: true, checked: { input: true, output: true } });
  });
});
