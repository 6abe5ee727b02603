import type { Address, Hex, TransactionReceipt } from 'viem';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  closeCeremony,
  contributeToCeremony,
  finalizeCeremony,
  mayContributeToCeremony,
  openCeremony,
  readBeaconHash,
  readCeremony,
} from './ceremony.js';
import type { Deployment } from './deploy.js';
import { expectRevert, fill32, startTestChain, type TestChain } from './test-support/chain.js';

let chain: TestChain;
let d: Deployment;
let ceremony: Address;

beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(() => chain.stop());
beforeEach(async () => {
  d = await chain.deploy();
  ceremony = d.contracts.ceremony as Address;
});

const ID = fill32(0xc1);
const INITIAL = fill32(0x10);
const open = (i: number, contributors: Address[] = [], id: Hex = ID) =>
  openCeremony(chain.clients(i), { ceremony, id, kind: 2, subject: fill32(0x5b), initialHash: INITIAL, contributors });
const contribute = (i: number, prevHash: Hex, newHash: Hex, id: Hex = ID) =>
  contributeToCeremony(chain.clients(i), { ceremony, id, prevHash, newHash });
const close = (i: number) => closeCeremony(chain.clients(i), { ceremony, id: ID });
const finalize = (i: number, finalHash: Hex) => finalizeCeremony(chain.clients(i), { ceremony, id: ID, finalHash });
/** Mines one empty block (anvil mines a block per transaction, and none without one). */
const mine = () => chain.testClient.mine({ blocks: 1 });

describe('Ceremony', () => {
  it('records contributions in order, closes, and finalizes with the next block hash', async () => {
    const gas: Record<string, number> = {};
    const listed = [chain.address(1), chain.address(2), chain.address(3)];
    gas.open3 = Number((await open(0, listed)).gasUsed);
    let record = await readCeremony(chain.publicClient, ceremony, ID);
    expect(record).toEqual({
      id: ID,
      kind: 2,
      opener: chain.address(0),
      subject: fill32(0x5b),
      initialHash: INITIAL,
      head: INITIAL,
      restricted: true,
      contributions: [],
      beaconBlock: 0n,
    });
    const receipts: TransactionReceipt[] = [];
    receipts.push(await contribute(1, INITIAL, fill32(0xa1)));
    receipts.push(await contribute(2, fill32(0xa1), fill32(0xa2)));
    receipts.push(await contribute(3, fill32(0xa2), fill32(0xa3)));
    gas.contributeFirst = Number(receipts[0]?.gasUsed);
    gas.contributeNext = Number(receipts[1]?.gasUsed);
    record = await readCeremony(chain.clients(0), ceremony, ID);
    expect(record.head).toBe(fill32(0xa3));
    expect(record.contributions).toEqual(
      [1, 2, 3].map((i) => ({
        contributor: chain.address(i),
        hash: fill32(0xa0 + i),
        block: receipts[i - 1]?.blockNumber,
      })),
    );
    const closed = await close(0);
    gas.close = Number(closed.gasUsed);
    record = await readCeremony(chain.publicClient, ceremony, ID);
    expect(record.beaconBlock).toBe(closed.blockNumber + 1n);
    // The beacon block is not mined yet: nobody knows the beacon, nobody can finalize.
    expect(await readBeaconHash(chain.publicClient, record.beaconBlock)).toBeUndefined();
    await mine();
    const beacon = await readBeaconHash(chain.publicClient, record.beaconBlock);
    expect(beacon).toMatch(/^0x[0-9a-f]{64}$/);
    const finalized = await finalize(4, fill32(0xff));
    gas.finalize = Number(finalized.gasUsed);
    record = await readCeremony(chain.publicClient, ceremony, ID);
    expect(record).toMatchObject({ beacon, finalHash: fill32(0xff), head: fill32(0xa3) });
    // Past state reads: before the close, no beacon block.
    expect(
      (await readCeremony(chain.publicClient, ceremony, ID, { blockNumber: closed.blockNumber - 1n })).beaconBlock,
    ).toBe(0n);
    console.log('Ceremony gas used:', gas);
    // Ceilings ~20% above the measured values.
    // Measured: open (3 listed) 191,433; first contribution 124,569, next 107,469; close 31,176; finalize 70,905.
    expect(gas.open3).toBeLessThan(230_000);
    expect(gas.contributeFirst).toBeLessThan(150_000);
    expect(gas.contributeNext).toBeLessThan(130_000);
    expect(gas.close).toBeLessThan(40_000);
    expect(gas.finalize).toBeLessThan(85_000);
  });

  it('lets anyone contribute once when no contributors are listed', async () => {
    await open(0);
    expect(await mayContributeToCeremony(chain.publicClient, { ceremony, id: ID, account: chain.address(7) })).toBe(
      true,
    );
    await contribute(7, INITIAL, fill32(1));
    expect(await mayContributeToCeremony(chain.publicClient, { ceremony, id: ID, account: chain.address(7) })).toBe(
      false,
    );
    await contribute(8, fill32(1), fill32(2));
    await expectRevert(contribute(7, fill32(2), fill32(3)), 'ZK_CEREMONY_CONFLICT', 'AlreadyContributed');
    expect((await readCeremony(chain.publicClient, ceremony, ID)).restricted).toBe(false);
  });

  it('refuses each forbidden step with its own revert', async () => {
    // Each: the step, then the code and the contract's revert name it must produce.
    await expectRevert(contribute(1, INITIAL, fill32(1)), 'NOT_FOUND', 'UnknownCeremony');
    await expectRevert(readCeremony(chain.publicClient, ceremony, ID), 'NOT_FOUND');
    await expectRevert(
      openCeremony(chain.clients(0), { ceremony, id: ID, kind: 3 as 2, subject: fill32(1), initialHash: INITIAL }),
      'INVALID_ARGUMENT',
    );
    await expectRevert(
      openCeremony(chain.clients(0), { ceremony, id: ID, kind: 2, subject: fill32(1), initialHash: fill32(0) }),
      'INVALID_ARGUMENT',
      'HashInvalid',
    );
    await open(0, [chain.address(1), chain.address(2)]);
    // The same id again, even by another account.
    await expectRevert(open(5), 'ZK_CEREMONY_CONFLICT', 'CeremonyExists');
    // Close before anyone contributed.
    await expectRevert(close(0), 'ZK_CEREMONY_UNFINISHED', 'NoContributions');
    // Not on the list.
    expect(await expectRevert(contribute(3, INITIAL, fill32(1)), 'UNAUTHORIZED', 'NotContributor')).toEqual([
      chain.address(3),
    ]);
    // Not on top of the head (a stale or forged previous hash).
    expect(
      await expectRevert(contribute(1, fill32(0x99), fill32(1)), 'ZK_TRANSCRIPT_MISMATCH', 'HeadMismatch'),
    ).toEqual([INITIAL, fill32(0x99)]);
    await expectRevert(contribute(1, INITIAL, fill32(0)), 'INVALID_ARGUMENT', 'HashInvalid');
    await contribute(1, INITIAL, fill32(1));
    // Out of order: account 2 builds on the initial hash, not on account 1's contribution.
    await expectRevert(contribute(2, INITIAL, fill32(2)), 'ZK_TRANSCRIPT_MISMATCH', 'HeadMismatch');
    // Twice by the same account.
    await expectRevert(contribute(1, fill32(1), fill32(2)), 'ZK_CEREMONY_CONFLICT', 'AlreadyContributed');
    // Finalize before close.
    await expectRevert(finalize(0, fill32(0xff)), 'ZK_CEREMONY_UNFINISHED', 'NotClosed');
    // Close by anyone but the opener.
    await expectRevert(close(1), 'UNAUTHORIZED', 'NotOpener');
    const closed = await close(0);
    await expectRevert(close(0), 'ZK_CEREMONY_CONFLICT', 'ContributionsClosed');
    // Contribute after close (account 2 is listed and never contributed).
    await expectRevert(contribute(2, fill32(1), fill32(2)), 'ZK_CEREMONY_CONFLICT', 'ContributionsClosed');
    // Finalize before the beacon block is mined: the next transaction would be in the beacon block.
    const args = await expectRevert(finalize(0, fill32(0xff)), 'ZK_CEREMONY_UNFINISHED', 'BeaconNotMined');
    expect(args[0]).toBe((closed.blockNumber + 1n).toString());
    await mine();
    await expectRevert(finalize(0, fill32(0)), 'INVALID_ARGUMENT', 'HashInvalid');
    await finalize(0, fill32(0xff));
    // A second finalize, with the same or another hash.
    await expectRevert(finalize(2, fill32(0xee)), 'ZK_CEREMONY_CONFLICT', 'AlreadyFinalized');
    await expectRevert(finalize(0, fill32(0xff)), 'ZK_CEREMONY_CONFLICT', 'AlreadyFinalized');
  });

  it('refuses a beacon block older than 256 blocks', async () => {
    await open(0);
    await contribute(1, INITIAL, fill32(1));
    const closed = await close(0);
    await chain.testClient.mine({ blocks: 300 });
    await expectRevert(finalize(0, fill32(0xff)), 'ZK_CEREMONY_CONFLICT', 'BeaconExpired');
    expect(closed.blockNumber).toBeGreaterThan(0n);
  });
});
