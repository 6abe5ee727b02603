import { describe, expect, it } from 'vitest';
import { buildReceiptFixtures } from './test-support/receipt-fixtures.js';

// Keeps the committed fixture files equal to what the deterministic builder produces
// (Ed25519 signatures are deterministic). Regenerate with `npx vitest run -u fixtures.node`.
describe('fixture files', () => {
  const { trust, fixtures } = buildReceiptFixtures();
  it('_trust.json is current', async () => {
    await expect(`${JSON.stringify(trust, null, 2)}\n`).toMatchFileSnapshot('../fixtures/receipts/_trust.json');
  });
  for (const f of fixtures) {
    it(`${f.name}.json is current`, async () => {
      await expect(`${JSON.stringify(f, null, 2)}\n`).toMatchFileSnapshot(`../fixtures/receipts/${f.name}.json`);
    });
  }
});
