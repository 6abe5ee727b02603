/**
 * Multi-party ceremonies on a real anvil with the real Ceremony contract and real snarkjs files:
 * phase 1 (2^6) and phase 2 (the iris circuit over the cached local-dev 2^10 ptau), each with
 * three contributors (three dev accounts) and a beacon from the block hash the chain fixed, then
 * checked from the final file + the chain record alone. Named tampered transcripts, each with
 * the code it must produce.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ceremonyChain,
  closeCeremony,
  contributeToCeremony,
  finalizeCeremony,
  openCeremony,
  readBeaconHash,
  readCeremony,
} from '../../contracts/src/ceremony.js';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import {
  beaconPtau,
  type CeremonyRecordLike,
  contributePtau,
  contributeZkey,
  contributionName,
  type Hash32,
  newPtau,
  phase1Subject,
  preparePtau,
  ptauInitialHash,
  ptauTranscript,
  verifyTranscript,
  zkeyTranscript,
} from './ceremony.js';
import { type CeremonyChain, type CeremonyParty, localParty, runPhase2 } from './ceremony-run.js';
import { compileCircom } from './circom-compile.js';
import { compileModel, samplesFromJson } from './compile-model.js';
import { localPowersOfTau } from './setup.js';
import { loadSnarkjs, releaseCurves } from './snarkjs.js';
import { irisOnnx, irisSamplesJson, ptauCacheDir, TEST_ENTROPY } from './test-support/models.js';

let chain: TestChain;
let ceremony: Address;

beforeAll(async () => {
  chain = await startTestChain();
  ceremony = (await chain.deploy()).contracts.ceremony as Address;
}, 120_000);
afterAll(async () => {
  await chain.stop();
  await releaseCurves();
});

const id = (n: number): Hash32 => `0x${n.toString(16).padStart(64, '0')}`;
/** anvil mines only on transactions: mine empty blocks while a ceremony waits for its beacon block. */
const chainOf = (i: number): CeremonyChain =>
  ceremonyChain(chain.clients(i), ceremony, { pollMs: 20, whileWaiting: () => chain.testClient.mine({ blocks: 1 }) });
const party = (i: number): CeremonyParty =>
  localParty({
    account: chain.address(i),
    label: `party-${i}`,
    record: (p) => contributeToCeremony(chain.clients(i), { ceremony, ...p }),
  });

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code ?? String(e),
  );
}

/** A copy of `bytes` with one byte flipped at the first occurrence of `marker` plus `offset`. */
function flipAt(bytes: Uint8Array, marker: string, offset: number): Uint8Array {
  const at = Buffer.from(bytes).indexOf(Buffer.from(marker));
  expect(at).toBeGreaterThan(0);
  const copy = new Uint8Array(bytes);
  copy[at + offset] = (copy[at + offset] as number) ^ 0x01;
  return copy;
}

describe('phase 1: a powers-of-tau ceremony with three contributors and a beacon', () => {
  const POWER = 6;
  let final: Uint8Array;
  let beforeBeacon: Uint8Array;
  let afterFirst: Uint8Array;
  let record: CeremonyRecordLike;
  let beacon: Hash32;

  beforeAll(async () => {
    const initialHash = await ptauInitialHash(POWER);
    await openCeremony(chain.clients(0), {
      ceremony,
      id: id(1),
      kind: 1,
      subject: phase1Subject(POWER),
      initialHash,
      contributors: [1, 2, 3].map((i) => chain.address(i)),
    });
    let file = await newPtau(POWER);
    let head = initialHash;
    for (const i of [1, 2, 3]) {
      // Each contributor adds its secrets and records the hash from its own account.
      const step = await contributePtau(file, { name: contributionName(chain.address(i), `party-${i}`) });
      await contributeToCeremony(chain.clients(i), { ceremony, id: id(1), prevHash: head, newHash: step.hash });
      file = step.file;
      head = step.hash;
      if (i === 1) afterFirst = file;
    }
    beforeBeacon = file;
    const closed = await closeCeremony(chain.clients(0), { ceremony, id: id(1) });
    await chain.testClient.mine({ blocks: 1 });
    beacon = (await readBeaconHash(chain.publicClient, closed.blockNumber + 1n)) as Hash32;
    const last = await beaconPtau(file, beacon);
    await finalizeCeremony(chain.clients(4), { ceremony, id: id(1), finalHash: last.hash });
    final = last.file;
    record = await readCeremony(chain.publicClient, ceremony, id(1));
  }, 300_000);

  it('verifies from the final file and the chain record alone', async () => {
    const t = await verifyTranscript(1, final, record);
    expect(t.contributions.map((c) => c.name)).toEqual(
      [1, 2, 3].map((i) => `${chain.address(i).toLowerCase()} party-${i}`),
    );
    expect(t.contributions.map((c) => c.hash)).toEqual(record.contributions.map((c) => c.hash));
    expect(record.contributions.map((c) => c.contributor)).toEqual([1, 2, 3].map((i) => chain.address(i)));
    expect(t.beacon?.beacon).toEqual({ hash: beacon.slice(2), iterationsExp: 10 });
    expect(t.beacon?.hash).toBe(record.finalHash);
    // Prepared for phase 2, the file keeps its transcript and still verifies against the record.
    const prepared = await preparePtau(final);
    expect((await verifyTranscript(1, prepared, record)).contributions).toEqual(t.contributions);
    // Independent provenance: snarkjs's own JSON export reads the same beacon and names.
    const snarkjs = (await loadSnarkjs()) as unknown as {
      powersOfTau: { exportJson(f: unknown): Promise<{ contributions: { name: string; type: number }[] }> };
    };
    const json = await snarkjs.powersOfTau.exportJson({ type: 'mem', data: prepared });
    expect(json.contributions.map((c) => [c.name, c.type])).toEqual([
      ...t.contributions.map((c) => [c.name, 0]),
      ['beacon', 1],
    ]);
  }, 300_000);

  it('refuses tampered transcripts, each with its code', async () => {
    const { contributions, beacon: _b, finalHash: _f, ...rest } = record;
    const [c1, c2, c3] = contributions as [
      CeremonyRecordLike['contributions'][number],
      CeremonyRecordLike['contributions'][number],
      CeremonyRecordLike['contributions'][number],
    ];
    // A point of contribution 2 altered (its entry starts where contribution 1's name ends).
    const name1 = `${chain.address(1).toLowerCase()} party-1`;
    const pointAltered = flipAt(final, name1, name1.length + 10);
    // Contribution 2's stored name altered: snarkjs does not check names, the record does.
    const nameAltered = flipAt(final, `${chain.address(2).toLowerCase()} party-2`, 3);
    // The same contributors in another order (2 and 3 swapped), finished with the right beacon.
    let swapped = afterFirst;
    for (const i of [3, 2]) {
      swapped = (await contributePtau(swapped, { name: contributionName(chain.address(i), `party-${i}`) })).file;
    }
    swapped = (await beaconPtau(swapped, beacon)).file;
    // The right contributions, finished with a beacon that is not the recorded block hash.
    const otherBeacon = (await beaconPtau(beforeBeacon, `0x${'ab'.repeat(32)}`)).file;
    // The recorded beacon, but with another iteration count (a choice of final keys for whoever finalizes).
    const snarkjs = await loadSnarkjs();
    const otherCount = { type: 'mem' as const, data: undefined as Uint8Array | undefined };
    await snarkjs.powersOfTau.beacon({ type: 'mem', data: beforeBeacon }, otherCount, 'beacon', beacon.slice(2), 11);
    // A contribution added after the beacon.
    const afterBeacon = (await contributePtau(final, { name: contributionName(chain.address(5), 'late') })).file;
    const cases: [string, () => Promise<unknown>, string][] = [
      ['a point of a contribution altered', () => verifyTranscript(1, pointAltered, record), 'ZK_CEREMONY_INVALID'],
      ['not a ptau file at all', () => verifyTranscript(1, new Uint8Array(100), record), 'ZK_CEREMONY_INVALID'],
      ['a contribution name altered', () => verifyTranscript(1, nameAltered, record), 'ZK_TRANSCRIPT_MISMATCH'],
      [
        'contributions in another order than recorded',
        () => verifyTranscript(1, swapped, record),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'a beacon that is not the recorded block hash',
        () => verifyTranscript(1, otherBeacon, record),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'the beacon hashed 2^11 times instead of 2^10',
        () => verifyTranscript(1, otherCount.data as Uint8Array, record),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      ['a contribution after the beacon', () => verifyTranscript(1, afterBeacon, record), 'ZK_TRANSCRIPT_MISMATCH'],
      [
        'the record lists the hashes out of order',
        () => verifyTranscript(1, final, { ...record, contributions: [c1, c3, c2] }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'a hash recorded by another account than the contribution names',
        () =>
          verifyTranscript(1, final, { ...record, contributions: [c1, { ...c2, contributor: chain.address(6) }, c3] }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'a contribution missing from the record',
        () => verifyTranscript(1, final, { ...record, contributions: [c1, c2] }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'another beacon on chain',
        () => verifyTranscript(1, final, { ...record, beacon: id(7) }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'another final hash on chain',
        () => verifyTranscript(1, final, { ...record, finalHash: id(7) }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'the record of another power',
        () => verifyTranscript(1, final, { ...record, subject: phase1Subject(7) }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'a record not finalized yet',
        () => verifyTranscript(1, final, { ...rest, contributions }),
        'ZK_CEREMONY_UNFINISHED',
      ],
    ];
    for (const [what, run, code] of cases) expect(await codeOf(run()), what).toBe(code);
  }, 300_000);

  it('reads the transcript of an unfinished file, refuses garbage, and starts where snarkjs starts', async () => {
    const t = await ptauTranscript(beforeBeacon);
    expect(t.beacon).toBeUndefined();
    expect(t.contributions.map((c) => c.hash)).toEqual(record.contributions.map((c) => c.hash));
    expect(t).toMatchObject({ power: POWER, ceremonyPower: POWER });
    expect(await codeOf(ptauTranscript(new TextEncoder().encode('ptau but short')))).toBe('ZK_CEREMONY_INVALID');
    // The initial hash from snarkjs itself: `powersoftau new` returns its first challenge hash.
    const snarkjs = await loadSnarkjs();
    const curve = await snarkjs.curves.getCurveFromName('bn128');
    const first = (await snarkjs.powersOfTau.newAccumulator(curve, POWER, { type: 'mem' })) as Uint8Array;
    expect(await ptauInitialHash(POWER)).toBe(`0x${createHash('sha256').update(first).digest('hex')}`);
  });
});

describe('phase 2: the iris circuit, three contributors and a beacon, run by runPhase2', () => {
  let r1cs: Uint8Array;
  let ptau: Uint8Array;

  beforeAll(async () => {
    const model = compileModel(irisOnnx(), { samples: samplesFromJson(irisSamplesJson(), 'x') });
    r1cs = (await compileCircom(model.circom)).r1cs;
    const cached = await localPowersOfTau(10, { cacheDir: ptauCacheDir(), entropy: TEST_ENTROPY });
    ptau = new Uint8Array(await readFile(cached.path));
  }, 600_000);

  it('runs the ceremony and verifies its transcript; tampering is refused', async () => {
    const result = await runPhase2({ r1cs, ptau, parties: [1, 2, 3].map(party), chain: chainOf(0), id: id(21) });
    const record = await readCeremony(chain.publicClient, ceremony, id(21));
    expect(record.contributions.map((c) => c.contributor)).toEqual([1, 2, 3].map((i) => chain.address(i)));
    expect(record.opener).toBe(chain.address(0));
    const t = await verifyTranscript(2, result.zkey, record, { r1cs, ptau });
    expect(t.contributions).toHaveLength(3);
    expect(t.beacon?.beacon?.hash).toBe(record.beacon?.slice(2));
    expect(result.verificationKey).toMatchObject({ protocol: 'groth16', curve: 'bn128', nPublic: 7 });
    expect((await zkeyTranscript(result.zkey)).initialHash).toBe(record.initialHash);

    const { beacon: _b, finalHash: _f, ...unfinished } = record;
    const [c1, c2, c3] = record.contributions;
    const name2 = `${chain.address(2).toLowerCase()} party-2`;
    // Contribution 3's deltaAfter altered (its entry starts where contribution 2's name ends).
    const deltaAltered = flipAt(result.zkey, name2, name2.length + 5);
    const otherModel = compileModel(irisOnnx(), {
      samples: samplesFromJson(irisSamplesJson(), 'x'),
      params: { fracBits: 12, valueBits: 20 },
    });
    const otherR1cs = (await compileCircom(otherModel.circom)).r1cs;
    const cases: [string, () => Promise<unknown>, string][] = [
      [
        'a delta of a contribution altered',
        () => verifyTranscript(2, deltaAltered, record, { r1cs, ptau }),
        'ZK_CEREMONY_INVALID',
      ],
      [
        'the keys checked against another circuit',
        () => verifyTranscript(2, result.zkey, record, { r1cs: otherR1cs, ptau }),
        'ZK_CEREMONY_INVALID',
      ],
      [
        'the record lists the hashes out of order',
        () =>
          verifyTranscript(
            2,
            result.zkey,
            { ...record, contributions: [c1, c3, c2] as typeof record.contributions },
            { r1cs, ptau },
          ),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'a hash recorded by another account than the contribution names',
        () =>
          verifyTranscript(
            2,
            result.zkey,
            {
              ...record,
              contributions: [
                c1,
                c2,
                { ...(c3 as NonNullable<typeof c3>), contributor: chain.address(7) },
              ] as typeof record.contributions,
            },
            { r1cs, ptau },
          ),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'another beacon on chain',
        () => verifyTranscript(2, result.zkey, { ...record, beacon: id(9) }, { r1cs, ptau }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      [
        'a phase-1 record',
        () => verifyTranscript(2, result.zkey, { ...record, kind: 1 }, { r1cs, ptau }),
        'ZK_TRANSCRIPT_MISMATCH',
      ],
      ['not finalized', () => verifyTranscript(2, result.zkey, unfinished, { r1cs, ptau }), 'ZK_CEREMONY_UNFINISHED'],
    ];
    for (const [what, run, code] of cases) expect(await codeOf(run()), what).toBe(code);
  }, 600_000);

  it('names a party that records something else than it returns or hands on a broken file, and an RPC that lies about the beacon', async () => {
    // Party 2 records a hash, then hands on a file with another contribution than the one recorded.
    const liar: CeremonyParty = {
      account: chain.address(2),
      async contribute(step) {
        await party(2).contribute(step);
        return (await contributeZkey(step.file, { name: contributionName(chain.address(2), 'party-2') })).file;
      },
    };
    expect(await codeOf(runPhase2({ r1cs, ptau, parties: [party(1), liar], chain: chainOf(0), id: id(22) }))).toBe(
      'ZK_TRANSCRIPT_MISMATCH',
    );
    // Account 2 records the hash of a contribution that names account 1 (not its own).
    const thief: CeremonyParty = {
      account: chain.address(2),
      async contribute(step) {
        const made = localParty({
          account: chain.address(1),
          label: 'party-1',
          record: (p) => contributeToCeremony(chain.clients(2), { ceremony, ...p }),
        });
        return made.contribute(step);
      },
    };
    expect(await codeOf(runPhase2({ r1cs, ptau, parties: [thief], chain: chainOf(0), id: id(23) }))).toBe(
      'ZK_TRANSCRIPT_MISMATCH',
    );
    // Party 2 records its true hash but hands on a file with a key point damaged (outside its
    // contribution's entry, so the hash still matches): named at once with checkEachStep, and
    // refused at the end without it.
    const vandal: CeremonyParty = {
      account: chain.address(2),
      async contribute(step) {
        const made = await party(2).contribute(step);
        const broken = new Uint8Array(made);
        const mid = Math.floor(broken.length / 2);
        broken[mid] = (broken[mid] as number) ^ 0x01;
        return broken;
      },
    };
    const named = await runPhase2({
      r1cs,
      ptau,
      parties: [party(1), vandal, party(3)],
      chain: chainOf(0),
      id: id(25),
      checkEachStep: true,
    }).catch((e: { code: string; details: unknown }) => e);
    expect(named).toMatchObject({ code: 'ZK_CEREMONY_INVALID', details: { index: 1, account: chain.address(2) } });
    expect(await codeOf(runPhase2({ r1cs, ptau, parties: [vandal], chain: chainOf(0), id: id(26) }))).toBe(
      'ZK_CEREMONY_INVALID',
    );
    // The RPC endpoint answers another hash for the beacon block than the chain stores.
    const honest = chainOf(0);
    const lying: CeremonyChain = {
      ...honest,
      blockHash: async (block) => {
        await honest.blockHash(block); // mined, so finalize goes through
        return id(0xbad);
      },
    };
    expect(await codeOf(runPhase2({ r1cs, ptau, parties: [party(1)], chain: lying, id: id(24) }))).toBe(
      'ZK_TRANSCRIPT_MISMATCH',
    );
  }, 600_000);
});
