/**
 * The charge limit of a paid quorum's coordinator (docs/protocol.md §17.5, `quorumCharges`): the
 * caller's authorized value less what the members the coordinator paid left unspent. Only the
 * arithmetic is here; signed receipts of real nodes are checked end to end in
 * packages/node/src/payments/quorum-llm-payments.test.ts (QUORUM_CHARGE_EXCESS).
 */
import { describe, expect, it } from 'vitest';
import { type PaidReceipt, quorumCharges, type ReceiptPayment } from './payment.js';

const COORDINATOR = '0x1111111111111111111111111111111111111111';
const OTHER = '0x2222222222222222222222222222222222222222';
const TOKEN = '0x3333333333333333333333333333333333333333';

function paid(node: string, from: string, value: bigint, amount: bigint, asset = TOKEN): PaidReceipt {
  const payment = {
    scheme: 'metered',
    network: 'eip155:31337',
    asset,
    name: 'vUSD',
    version: '1',
    authorization: { from, to: asset, value: value.toString(), validAfter: '0', validBefore: '1', nonce: '0x' },
    signature: '0x',
    salt: '0x',
  } as ReceiptPayment;
  return { record: { node, payment: { digest: '00'.repeat(32), amount: amount.toString() } }, payment };
}

describe('quorumCharges', () => {
  it('subtracts what the coordinator’s members left unspent; counts what they charged', () => {
    const caller = paid(COORDINATOR, OTHER, 3200n, 284n);
    const members = [
      paid('0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', COORDINATOR.toUpperCase().replace('0X', '0x'), 1080n, 108n),
      paid('0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb', COORDINATOR, 544n, 58n),
      // Paid by someone else, in another token, or not at all: not the coordinator's members.
      paid('0xcccccccccccccccccccccccccccccccccccccccc', OTHER, 900n, 1n),
      paid('0xdddddddddddddddddddddddddddddddddddddddd', COORDINATOR, 900n, 1n, OTHER),
      { record: { node: '0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee' } },
    ];
    // 3200 − (1080 − 108) − (544 − 58) = 1742; the members charged 108 + 58.
    expect(quorumCharges(caller, members)).toEqual({ limit: 1742n, members: 166n });
  });

  it('exact prices: members charge their whole authorization, the limit is the caller’s value', () => {
    const caller = paid(COORDINATOR, OTHER, 1500n, 1500n);
    expect(quorumCharges(caller, [paid(OTHER, COORDINATOR, 200n, 200n)])).toEqual({ limit: 1500n, members: 200n });
  });

  it('a receipt without a payment has no limit', () => {
    expect(quorumCharges({ record: { node: COORDINATOR } }, [])).toBeUndefined();
  });
});
