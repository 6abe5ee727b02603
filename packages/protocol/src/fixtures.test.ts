import { describe, expect, it } from 'vitest';
import type { ErrorCode } from './errors.js';
import type { ReceiptFixture } from './test-support/receipt-fixtures.js';
import { type Trust, verifyBundle } from './verify.js';

// The committed fixture files (packages/protocol/fixtures/receipts), as another implementation
// would read them. fixtures.node.test.ts keeps them equal to what the builder produces.
const files = import.meta.glob<{ default: ReceiptFixture }>('../fixtures/receipts/*.json', { eager: true });
const trustFile = import.meta.glob<{ default: Trust }>('../fixtures/receipts/_trust.json', { eager: true });
const defaultTrust = Object.values(trustFile)[0]?.default as Trust;
const fixtures = Object.entries(files)
  .filter(([path]) => !path.endsWith('_trust.json'))
  .map(([, m]) => m.default);

describe('receipt and bundle fixtures', () => {
  it('are all present', () => {
    expect(defaultTrust.nodes.length).toBeGreaterThan(0);
    expect(fixtures.length).toBeGreaterThanOrEqual(35);
    expect(fixtures.filter((f) => f.expect === 'ok').length).toBeGreaterThanOrEqual(3);
  });
  for (const f of fixtures) {
    it(`${f.name}: ${f.expect}`, () => {
      const result = verifyBundle(f.bundle, f.trust ?? defaultTrust, f.options ?? {});
      const got: 'ok' | ErrorCode = result.ok ? 'ok' : result.code;
      expect(got, f.description).toBe(f.expect);
    });
  }
  it('every tampered fixture has a distinct name and a code', () => {
    const names = new Set(fixtures.map((f) => f.name));
    expect(names.size).toBe(fixtures.length);
  });
});
