/**
 * Running a whole ceremony with several parties: open on chain → each party adds its
 * contribution and records its hash from its OWN account → close → wait for the beacon block →
 * beacon step → finalize → check the final file against the record (`verifyTranscript`).
 *
 * The chain is injected ({@link CeremonyChain}): this package does not depend on
 * @verity/contracts; `ceremonyChain` there implements the interface with viem, and a party's
 * contribution may happen anywhere (another process, another node over HTTP) as long as it
 * returns the new file and has recorded its hash. Each returned file is checked here against
 * the chain before the next party gets it, so a party that records something else than it
 * returns is named at once (`ZK_TRANSCRIPT_MISMATCH`).
 */
import { randomBytes } from 'node:crypto';
import { fail, VerityError } from '@verity/protocol';
import {
  beaconPtau,
  beaconZkey,
  type CeremonyKind,
  type CeremonyRecordLike,
  contributePtau,
  contributeZkey,
  contributionName,
  type Hash32,
  newPtau,
  newZkey,
  phase1Subject,
  phase2Subject,
  preparePtau,
  ptauInitialHash,
  ptauTranscript,
  type Transcript,
  type TranscriptStep,
  verifyTranscript,
  zkeyTranscript,
} from './ceremony.js';
import type { VerificationKey } from './setup.js';
import { loadSnarkjs } from './snarkjs.js';

/** The chain calls of a ceremony, made from the opener's account (any account may finalize). */
export interface CeremonyChain {
  open(params: {
    readonly id: Hash32;
    readonly kind: CeremonyKind;
    readonly subject: Hash32;
    readonly initialHash: Hash32;
    /** Empty: anyone may contribute. */
    readonly contributors: readonly string[];
  }): Promise<void>;
  /** Closes the ceremony; answers the block whose hash will be the beacon. */
  close(id: Hash32): Promise<{ readonly beaconBlock: bigint }>;
  /** The hash of `block`, once it is mined (waits for it). */
  blockHash(block: bigint): Promise<Hash32>;
  finalize(id: Hash32, finalHash: Hash32): Promise<void>;
  /** The record as the chain has it now (`readCeremony`). */
  read(id: Hash32): Promise<CeremonyRecordLike & { readonly head: string }>;
}

/** A contributor: adds its contribution to the file and records the hash on chain itself. */
export interface CeremonyParty {
  /** The account that records this party's hash (and that its contribution's name starts with). */
  readonly account: string;
  /** Returns `file` with one more contribution, whose hash it has recorded on top of `head`. */
  contribute(step: {
    readonly id: Hash32;
    readonly kind: CeremonyKind;
    readonly file: Uint8Array;
    readonly head: Hash32;
  }): Promise<Uint8Array>;
}

/**
 * A party that contributes in this process (fresh random secrets unless `entropy`) and records
 * its hash with `record`, which must send from `account` (e.g. `contributeToCeremony` with the
 * party's own wallet).
 *
 * @example
 * ```ts
 * const party = localParty({ account, label: 'publisher', record: (p) => contributeToCeremony(clients, { ceremony, ...p }) });
 * ```
 */
export function localParty(options: {
  readonly account: string;
  readonly label?: string;
  readonly entropy?: string;
  readonly record: (params: { id: Hash32; prevHash: Hash32; newHash: Hash32 }) => Promise<unknown>;
}): CeremonyParty {
  const name = contributionName(options.account, options.label);
  return {
    account: options.account,
    async contribute({ id, kind, file, head }) {
      const opts = { name, ...(options.entropy === undefined ? {} : { entropy: options.entropy }) };
      const step = kind === 1 ? await contributePtau(file, opts) : await contributeZkey(file, opts);
      await options.record({ id, prevHash: head, newHash: step.hash });
      return step.file;
    },
  };
}

/** Options of {@link runCeremony}. */
export interface RunCeremonyOptions {
  readonly kind: CeremonyKind;
  /** Default: 32 random bytes. */
  readonly id?: Hash32;
  readonly subject: Hash32;
  readonly initialHash: Hash32;
  /** The starting file (a fresh ptau, or the circuit's initial zkey). */
  readonly file: Uint8Array;
  /** In order; at least one. Only their accounts may contribute (each once). */
  readonly parties: readonly CeremonyParty[];
  readonly chain: CeremonyChain;
  /** Checked after the beacon step: phase 2 needs the R1CS and ptau. */
  readonly phase2?: { readonly r1cs: Uint8Array; readonly ptau: Uint8Array };
  /**
   * Also verify each party's file with snarkjs as soon as it returns it, to name a party that
   * hands on a broken file (`ZK_CEREMONY_INVALID` with `details.index`/`account`) instead of
   * learning it at the end. Costs one `powersoftau verify` / `zkey verify` per party. Default false.
   */
  readonly checkEachStep?: boolean;
}

async function snarkjsVerifies(
  kind: CeremonyKind,
  file: Uint8Array,
  phase2: RunCeremonyOptions['phase2'],
): Promise<boolean> {
  const snarkjs = await loadSnarkjs();
  try {
    if (kind === 1) return await snarkjs.powersOfTau.verify({ type: 'mem', data: file });
    if (phase2 === undefined) return fail('INVALID_ARGUMENT', 'phase 2 needs r1cs and ptau');
    return await snarkjs.zKey.verifyFromR1cs(
      { type: 'mem', data: phase2.r1cs },
      { type: 'mem', data: phase2.ptau },
      { type: 'mem', data: file },
    );
  } catch {
    return false;
  }
}

/** A finished ceremony. */
export interface CeremonyResult {
  readonly id: Hash32;
  /** The final file (beacon included): the transcript with the chain record. */
  readonly file: Uint8Array;
  readonly record: CeremonyRecordLike;
  readonly transcript: Transcript;
}

function transcriptOf(kind: CeremonyKind, file: Uint8Array): Promise<Transcript> {
  return kind === 1 ? ptauTranscript(file) : zkeyTranscript(file);
}

function stepsOf(t: Transcript): TranscriptStep[] {
  return t.beacon === undefined ? [...t.contributions] : [...t.contributions, t.beacon];
}

/**
 * Runs a ceremony to its end (see the module comment) and returns the verified final file.
 *
 * @example
 * ```ts
 * const { file } = await runCeremony({ kind: 1, subject, initialHash, file: await newPtau(12), parties, chain });
 * ```
 */
export async function runCeremony(options: RunCeremonyOptions): Promise<CeremonyResult> {
  const { kind, chain, parties } = options;
  if (parties.length === 0) fail('INVALID_ARGUMENT', 'a ceremony needs at least one contributor');
  const id = options.id ?? (`0x${randomBytes(32).toString('hex')}` as Hash32);
  await chain.open({
    id,
    kind,
    subject: options.subject,
    initialHash: options.initialHash,
    contributors: parties.map((p) => p.account),
  });
  let file = options.file;
  let steps = stepsOf(await transcriptOf(kind, file));
  let head = options.initialHash;
  for (const [i, party] of parties.entries()) {
    const next = await party.contribute({ id, kind, file, head });
    const nextSteps = stepsOf(await transcriptOf(kind, next));
    const added = nextSteps[nextSteps.length - 1];
    const record = await chain.read(id);
    const recorded = record.contributions[i];
    const extends_ = nextSteps.length === steps.length + 1 && steps.every((s, j) => s.hash === nextSteps[j]?.hash);
    if (
      !extends_ ||
      added === undefined ||
      recorded === undefined ||
      record.contributions.length !== i + 1 ||
      recorded.hash.toLowerCase() !== added.hash ||
      recorded.contributor.toLowerCase() !== party.account.toLowerCase()
    ) {
      throw new VerityError('ZK_TRANSCRIPT_MISMATCH', 'a party returned a file that is not what it recorded', {
        details: {
          index: i,
          account: party.account,
          extendsPrevious: extends_,
          recorded: recorded ?? null,
          fileHash: added?.hash ?? null,
        },
      });
    }
    if (options.checkEachStep === true && !(await snarkjsVerifies(kind, next, options.phase2))) {
      throw new VerityError('ZK_CEREMONY_INVALID', 'a party returned a file that does not verify', {
        details: { index: i, account: party.account },
      });
    }
    file = next;
    steps = nextSteps;
    head = added.hash;
  }
  const { beaconBlock } = await chain.close(id);
  const beacon = await chain.blockHash(beaconBlock);
  const final = kind === 1 ? await beaconPtau(file, beacon) : await beaconZkey(file, beacon);
  await chain.finalize(id, final.hash);
  const record = await chain.read(id);
  const transcript =
    kind === 1
      ? await verifyTranscript(1, final.file, record)
      : await verifyTranscript(
          2,
          final.file,
          record,
          options.phase2 ?? fail('INVALID_ARGUMENT', 'phase 2 needs r1cs and ptau'),
        );
  return { id, file: final.file, record, transcript };
}

/**
 * A phase-1 ceremony of 2^power: a fresh accumulator, each party, the beacon; returns the final
 * file and the same file prepared for phase 2 (`prepared`, the one circuits use).
 */
export async function runPhase1(options: {
  readonly power: number;
  readonly parties: readonly CeremonyParty[];
  readonly chain: CeremonyChain;
  readonly id?: Hash32;
}): Promise<CeremonyResult & { readonly prepared: Uint8Array }> {
  const result = await runCeremony({
    kind: 1,
    subject: phase1Subject(options.power),
    initialHash: await ptauInitialHash(options.power),
    file: await newPtau(options.power),
    parties: options.parties,
    chain: options.chain,
    ...(options.id === undefined ? {} : { id: options.id }),
  });
  return { ...result, prepared: await preparePtau(result.file) };
}

/**
 * A phase-2 ceremony for one circuit: the initial zkey from (R1CS, prepared ptau), each party,
 * the beacon; returns the final zkey and its verification key. The ceremony's subject is the
 * R1CS's SHA-256; its initial hash is the zkey's circuit hash (so the record names the ptau too).
 *
 * @example
 * ```ts
 * const { zkey, verificationKey, id } = await runPhase2({ r1cs, ptau, parties, chain });
 * ```
 */
export async function runPhase2(options: {
  readonly r1cs: Uint8Array;
  readonly ptau: Uint8Array;
  readonly parties: readonly CeremonyParty[];
  readonly chain: CeremonyChain;
  readonly id?: Hash32;
  /** See {@link RunCeremonyOptions.checkEachStep}. */
  readonly checkEachStep?: boolean;
}): Promise<CeremonyResult & { readonly zkey: Uint8Array; readonly verificationKey: VerificationKey }> {
  const initial = await newZkey(options.r1cs, options.ptau);
  const { initialHash } = await zkeyTranscript(initial);
  const result = await runCeremony({
    kind: 2,
    subject: phase2Subject(options.r1cs),
    initialHash: initialHash as Hash32,
    file: initial,
    parties: options.parties,
    chain: options.chain,
    phase2: { r1cs: options.r1cs, ptau: options.ptau },
    ...(options.id === undefined ? {} : { id: options.id }),
    ...(options.checkEachStep === undefined ? {} : { checkEachStep: options.checkEachStep }),
  });
  const snarkjs = await loadSnarkjs();
  const verificationKey = (await snarkjs.zKey.exportVerificationKey({
    type: 'mem',
    data: result.file,
  })) as VerificationKey;
  return { ...result, zkey: result.file, verificationKey };
}
