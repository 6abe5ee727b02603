import { describe, expect, it } from 'vitest';
import type { ReceiptFixture } from './test-support/receipt-fixtures.js';
import { type Trust, verifyBundle } from './verify.js';
import { verifyBundleChecks } from './verify-checks.js';

// Every check as a row (the explorer's Verify page), against the committed fixtures: the verdict
// is verifyBundle's, the first failing row carries its code, and a valid bundle has no red row.
const files = import.meta.glob<{ default: ReceiptFixture }>('../fixtures/receipts/*.json', { eager: true });
const trustFile = import.meta.glob<{ default: Trust }>('../fixtures/receipts/_trust.json', { eager: true });
const defaultTrust = Object.values(trustFile)[0]?.default as Trust;
const fixtures = Object.entries(files)
  .filter(([path]) => !path.endsWith('_trust.json'))
  .map(([, m]) => m.default);
const byName = (name: string) => fixtures.find((f) => f.name === name) as ReceiptFixture;

describe('verifyBundleChecks', () => {
  for (const f of fixtures) {
    it(`${f.name}: the rows explain ${f.expect}`, () => {
      const trust = f.trust ?? defaultTrust;
      const { result, checks } = verifyBundleChecks(f.bundle, trust, f.options ?? {});
      expect(result).toEqual(verifyBundle(f.bundle, trust, f.options ?? {}));
      const failed = checks.filter((c) => c.status === 'fail');
      if (f.expect === 'ok') expect(failed).toEqual([]);
      else expect(failed[0]?.code, JSON.stringify(checks)).toBe(f.expect);
    });
  }

  it('a valid bundle: every check of a receipt and of its content passes', () => {
    const f = byName('valid-receipt');
    const { checks } = verifyBundleChecks(f.bundle, defaultTrust, f.options ?? {});
    const status = Object.fromEntries(checks.map((c) => [c.check, c.status]));
    expect(status).toMatchObject({
      bundle: 'pass',
      trust: 'pass',
      node: 'pass',
      checkpoint: 'pass',
      'leaf-index': 'pass',
      inclusion: 'pass',
      'receipts-agree': 'pass',
      input: 'pass',
      output: 'pass',
      anchors: 'pass',
    });
  });

  it('a tampered output: the signature and inclusion rows stay green, the output row is red', () => {
    const f = byName('bundle-output-tampered');
    const { checks } = verifyBundleChecks(f.bundle, defaultTrust);
    const row = (id: string) => checks.find((c) => c.check === id);
    expect(row('checkpoint')?.status).toBe('pass');
    expect(row('inclusion')?.status).toBe('pass');
    expect(row('output')).toMatchObject({ status: 'fail', code: 'RECEIPT_OUTPUT_DIGEST_MISMATCH' });
  });

  it('an untrusted node: its row is red, the checks that need its key are skipped, the content still checked', () => {
    const f = byName('record-node-unknown');
    const { checks } = verifyBundleChecks(f.bundle, f.trust ?? defaultTrust);
    const row = (id: string) => checks.find((c) => c.check === id);
    expect(row('node')).toMatchObject({ status: 'fail', code: 'RECEIPT_NODE_UNKNOWN' });
    expect(row('checkpoint')?.status).toBe('skip');
    expect(row('inclusion')?.status).toBe('skip');
    expect(row('anchors')?.status).toBe('skip');
  });

  it('a bundle that does not parse is one red row', () => {
    const { result, checks } = verifyBundleChecks({ mediaType: 'nope' }, defaultTrust);
    expect(result.ok).toBe(false);
    expect(checks).toEqual([
      expect.objectContaining({ check: 'bundle', status: 'fail', code: 'BUNDLE_VERSION_UNSUPPORTED' }),
    ]);
  });
});
