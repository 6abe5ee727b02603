/**
 * Multi-party setup ceremonies (docs/design.md §2.6): phase 1 (powers of tau) and phase 2 (one
 * circuit's Groth16 zkey) as file operations with snarkjs, and the check of a final file against
 * the ceremony's on-chain record (contracts/Ceremony.sol).
 *
 * The transcript is the final file plus the record: snarkjs keeps every contribution of a
 * ceremony in the file itself (ptau section 7, zkey section 10), so no intermediate file is
 * needed. What the chain records for each step is {@link stepHash}: SHA-256 of that step's entry
 * in the contributions section, byte for byte as snarkjs writes it (public key, resulting points,
 * challenge hashes, name, beacon parameters). The full definitions are in packages/zk/README.md
 * ("Ceremonies").
 *
 * The chain calls are not made here: see `ceremony-run.ts` for the injected interface.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fail, VerityError } from '@verity/protocol';
import type { MemFile } from 'snarkjs';
import { loadSnarkjs } from './snarkjs.js';

/** 1: phase 1 (powers of tau); 2: phase 2 (one circuit's zkey). As in `Ceremony.sol`. */
export type CeremonyKind = 1 | 2;

/** 32 bytes as `0x` + 64 lowercase hex digits, as the chain gives them. */
export type Hash32 = `0x${string}`;

/** One step of a ceremony as the final file records it. */
export interface TranscriptStep {
  /** The name snarkjs stored (Verity writes `<contributor address> <label>`, see {@link contributionName}). */
  readonly name: string;
  /** SHA-256 of the step's entry in the file's contributions section: what the chain records. */
  readonly hash: Hash32;
  /** For a beacon step: the beacon (hex, as stored) and log2 of its hash iterations. */
  readonly beacon?: { readonly hash: string; readonly iterationsExp: number };
}

/** What a ceremony file says about its own history. */
export interface Transcript {
  readonly kind: CeremonyKind;
  /**
   * Phase 1: SHA-256 of snarkjs's first challenge hash for the ceremony's power (computed only by
   * {@link verifyTranscript}, it hashes the whole empty accumulator); phase 2: SHA-256 of the
   * zkey's 64-byte circuit hash (`csHash`, a function of the R1CS and the ptau).
   */
  readonly initialHash?: Hash32;
  /** Every step but a final beacon, in order. */
  readonly contributions: readonly TranscriptStep[];
  /** The last step, if it is a beacon; its `hash` is the ceremony's final hash. */
  readonly beacon?: TranscriptStep;
  /** Phase 1: the power of the ceremony (of the file, if it was truncated: `power`). */
  readonly ceremonyPower?: number;
  readonly power?: number;
}

/**
 * The part of an on-chain ceremony record that a transcript is checked against (`readCeremony`
 * of @verity/contracts returns it).
 */
export interface CeremonyRecordLike {
  readonly kind: number;
  readonly subject: string;
  readonly initialHash: string;
  readonly contributions: readonly { readonly contributor: string; readonly hash: string }[];
  readonly beacon?: string;
  readonly finalHash?: string;
}

/** Options of a contribution. */
export interface ContributeOptions {
  /** Stored in the file (≤ 64 ASCII characters); see {@link contributionName}. */
  readonly name: string;
  /** Default: 32 random bytes. A fixed value only in tests. */
  readonly entropy?: string;
}

/** A file after one step, and the step's hash (for a beacon: the ceremony's final hash). */
export interface CeremonyStep {
  readonly file: Uint8Array;
  readonly hash: Hash32;
}

/**
 * log2 of the SHA-256 iterations of a beacon step (snarkjs's least; the beacon is a block hash).
 * {@link verifyTranscript} accepts no other count.
 */
export const BEACON_ITERATIONS_EXP = 10;

/**
 * The name Verity stores for a contribution: the contributor's account (lowercase), then a label.
 * {@link verifyTranscript} requires each contribution's name to start with the account that
 * recorded its hash, so a hash recorded by another account than the one named is refused.
 *
 * @example
 * ```ts
 * contributionName('0xAbC…', 'node-1'); // '0xabc… node-1'
 * ```
 */
export function contributionName(account: string, label = ''): string {
  if (!/^0x[0-9a-fA-F]{40}$/.test(account)) fail('INVALID_ARGUMENT', 'not an account address', { account });
  const name = label === '' ? account.toLowerCase() : `${account.toLowerCase()} ${label}`;
  checkName(name);
  return name;
}

function checkName(name: string): void {
  // snarkjs cuts names at 64 characters and stores the UTF-8 length in one byte.
  if (!/^[\x20-\x7e]{1,64}$/.test(name)) {
    fail('INVALID_ARGUMENT', 'a contribution name is 1 to 64 printable ASCII characters', { name });
  }
}

function memFile(): MemFile {
  return { type: 'mem' };
}

function mem(data: Uint8Array): MemFile {
  return { type: 'mem', data };
}

function sha256(...parts: Uint8Array[]): Hash32 {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return `0x${h.digest('hex')}`;
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function invalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): never {
  throw new VerityError('ZK_CEREMONY_INVALID', message, { details, ...(cause === undefined ? {} : { cause }) });
}

function mismatch(message: string, details: Record<string, unknown> = {}): never {
  throw new VerityError('ZK_TRANSCRIPT_MISMATCH', message, { details });
}

function beaconHex(beacon: string): string {
  const h = beacon.startsWith('0x') ? beacon.slice(2) : beacon;
  if (!/^([0-9a-fA-F]{2}){1,255}$/.test(h)) fail('INVALID_ARGUMENT', 'a beacon is 1 to 255 bytes of hex', { beacon });
  return h.toLowerCase();
}

// ---------------------------------------------------------------------------------------------
// The snarkjs binary container (@iden3/binfileutils): "ptau"/"zkey", version, sections of
// (type u32, size u64, bytes), little-endian. Only the contributions sections are read here.

interface Section {
  readonly start: number;
  readonly size: number;
}

class Reader {
  pos: number;
  constructor(
    readonly bytes: Uint8Array,
    readonly end: number,
    start: number,
  ) {
    this.pos = start;
  }
  take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.end) invalid('the file ends inside a section', { at: this.pos });
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u32(): number {
    const b = this.take(4);
    return ((b[0] as number) | ((b[1] as number) << 8) | ((b[2] as number) << 16)) + (b[3] as number) * 0x1000000;
  }
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    if (hi > 0x1fffff) invalid('a section size is too large', { at: this.pos });
    return hi * 0x100000000 + lo;
  }
}

function readSections(bytes: Uint8Array, magic: 'ptau' | 'zkey'): Map<number, Section[]> {
  const r = new Reader(bytes, bytes.length, 0);
  const m = new TextDecoder().decode(r.take(4));
  if (m !== magic) invalid(`not a ${magic} file`, { magic: m });
  r.u32(); // version
  const n = r.u32();
  const sections = new Map<number, Section[]>();
  for (let i = 0; i < n; i++) {
    const type = r.u32();
    const size = r.u64();
    const start = r.pos;
    r.take(size);
    const list = sections.get(type) ?? [];
    list.push({ start, size });
    sections.set(type, list);
  }
  return sections;
}

function unique(sections: Map<number, Section[]>, type: number, what: string): Section {
  const list = sections.get(type);
  if (list === undefined || list.length !== 1) invalid(`the file has no single ${what} section`, { section: type });
  return list[0] as Section;
}

/** The parameters after a contribution entry's fixed part: name, beacon iterations, beacon hash. */
function readParams(r: Reader): { name: string; iterationsExp?: number; beacon?: Uint8Array } {
  const length = r.u32();
  const end = r.pos + length;
  let name = '';
  let iterationsExp: number | undefined;
  let beacon: Uint8Array | undefined;
  let last = 0;
  while (r.pos < end) {
    const type = r.take(1)[0] as number;
    if (type <= last) invalid('contribution parameters out of order');
    last = type;
    if (type === 1) name = new TextDecoder().decode(r.take(r.take(1)[0] as number));
    else if (type === 2) iterationsExp = r.take(1)[0] as number;
    else if (type === 3) beacon = r.take(r.take(1)[0] as number);
    else invalid('unknown contribution parameter', { type });
  }
  if (r.pos !== end) invalid('contribution parameters overrun their length');
  return {
    name,
    ...(iterationsExp === undefined ? {} : { iterationsExp }),
    ...(beacon === undefined ? {} : { beacon }),
  };
}

/** Steps of a contributions section: each entry's bytes are `fixed` bytes, a type, then params. */
function readSteps(r: Reader, count: number, fixed: number): TranscriptStep[] {
  const steps: TranscriptStep[] = [];
  for (let i = 0; i < count; i++) {
    const start = r.pos;
    r.take(fixed);
    const type = r.u32();
    const p = readParams(r);
    const entry = r.bytes.subarray(start, r.pos);
    if (type === 1) {
      if (p.beacon === undefined || p.iterationsExp === undefined)
        invalid('a beacon step without its beacon', { step: i });
      steps.push({
        name: p.name,
        hash: sha256(entry),
        beacon: { hash: hex(p.beacon), iterationsExp: p.iterationsExp },
      });
    } else if (type === 0) {
      steps.push({ name: p.name, hash: sha256(entry) });
    } else {
      invalid('unknown contribution type', { step: i, type });
    }
  }
  if (r.pos !== r.end) invalid('the contributions section has trailing bytes');
  return steps;
}

function split(kind: CeremonyKind, steps: TranscriptStep[], extra: Partial<Transcript>): Transcript {
  const last = steps[steps.length - 1];
  if (last?.beacon !== undefined) return { kind, ...extra, contributions: steps.slice(0, -1), beacon: last };
  return { kind, ...extra, contributions: steps };
}

// bn128 only: field elements of 32 bytes, G1 points of 64 and G2 points of 128 (snarkjs's LEM form).
const N8 = 32;
const G1 = 2 * N8;
const G2 = 4 * N8;
/** ptau entry: tauG1, tauG2, alphaG1, betaG1, betaG2, public key (6 G1 + 3 G2), partial hash, next challenge. */
const PTAU_ENTRY = G1 + G2 + G1 + G1 + G2 + 6 * G1 + 3 * G2 + 216 + 64;
/** zkey entry: deltaAfter, g1_s, g1_sx, g2_spx, transcript. */
const ZKEY_ENTRY = 3 * G1 + G2 + 64;

function ptauHeader(bytes: Uint8Array, sections: Map<number, Section[]>): { power: number; ceremonyPower: number } {
  const h = unique(sections, 1, 'header');
  const r = new Reader(bytes, h.start + h.size, h.start);
  const n8 = r.u32();
  if (n8 !== N8) invalid('only bn128 powers of tau are supported', { n8 });
  r.take(n8);
  return { power: r.u32(), ceremonyPower: r.u32() };
}

/**
 * The transcript a powers-of-tau file carries (section 7). Parses only; {@link verifyTranscript}
 * checks it.
 *
 * @example
 * ```ts
 * const t = await ptauTranscript(ptau);
 * t.contributions.map((c) => c.name); t.beacon?.beacon?.hash;
 * ```
 */
export async function ptauTranscript(ptau: Uint8Array): Promise<Transcript> {
  const sections = readSections(ptau, 'ptau');
  const { power, ceremonyPower } = ptauHeader(ptau, sections);
  const s = unique(sections, 7, 'contributions');
  const r = new Reader(ptau, s.start + s.size, s.start);
  const count = r.u32();
  return split(1, readSteps(r, count, PTAU_ENTRY), { power, ceremonyPower });
}

/**
 * The transcript a zkey carries (section 10): the circuit hash, then each contribution.
 *
 * @example
 * ```ts
 * const t = await zkeyTranscript(zkey);
 * t.initialHash; // SHA-256 of the zkey's csHash
 * ```
 */
export async function zkeyTranscript(zkey: Uint8Array): Promise<Transcript> {
  const sections = readSections(zkey, 'zkey');
  const s = unique(sections, 10, 'MPC parameters');
  const r = new Reader(zkey, s.start + s.size, s.start);
  const csHash = r.take(64);
  const count = r.u32();
  return split(2, readSteps(r, count, ZKEY_ENTRY), { initialHash: sha256(csHash) });
}

/** A phase-1 ceremony's subject: the power as a 32-byte big-endian number. */
export function phase1Subject(power: number): Hash32 {
  if (!Number.isSafeInteger(power) || power < 1 || power > 255)
    fail('INVALID_ARGUMENT', 'power out of range', { power });
  return `0x${power.toString(16).padStart(64, '0')}`;
}

/** A phase-2 ceremony's subject: SHA-256 of the circuit's R1CS (`circuit.r1csHash` as 32 bytes). */
export function phase2Subject(r1cs: Uint8Array): Hash32 {
  return sha256(r1cs);
}

function lastStep(t: Transcript): TranscriptStep {
  const step = t.beacon ?? t.contributions[t.contributions.length - 1];
  if (step === undefined) fail('INTERNAL', 'a step was just added, yet the file has none');
  return step;
}

/** One contribution with snarkjs (`powersoftau contribute` / `zkey contribute`) and its step hash. */
async function contribution(kind: CeremonyKind, file: Uint8Array, options: ContributeOptions): Promise<CeremonyStep> {
  checkName(options.name);
  const snarkjs = await loadSnarkjs();
  const out = memFile();
  const entropy = options.entropy ?? randomBytes(32).toString('hex');
  try {
    if (kind === 1) await snarkjs.powersOfTau.contribute(mem(file), out, options.name, entropy);
    else await snarkjs.zKey.contribute(mem(file), out, options.name, entropy);
  } catch (cause) {
    invalid(`cannot contribute to this ${kind === 1 ? 'powers of tau' : 'zkey'}`, {}, cause);
  }
  const next = out.data as Uint8Array;
  return { file: next, hash: lastStep(await (kind === 1 ? ptauTranscript : zkeyTranscript)(next)).hash };
}

/** The beacon step with snarkjs (`powersoftau beacon` / `zkey beacon`); its hash is the final hash. */
async function beaconStep(
  kind: CeremonyKind,
  file: Uint8Array,
  beacon: string,
  options: { name?: string },
): Promise<CeremonyStep> {
  const name = options.name ?? 'beacon';
  checkName(name);
  const snarkjs = await loadSnarkjs();
  const out = memFile();
  const run = kind === 1 ? snarkjs.powersOfTau.beacon : snarkjs.zKey.beacon;
  const ok = await run(mem(file), out, name, beaconHex(beacon), BEACON_ITERATIONS_EXP);
  if (ok === false) fail('INVALID_ARGUMENT', 'snarkjs refused the beacon', { beacon });
  const next = out.data as Uint8Array;
  return { file: next, hash: lastStep(await (kind === 1 ? ptauTranscript : zkeyTranscript)(next)).hash };
}

// ---------------------------------------------------------------------------------------------
// Phase 1

/**
 * A fresh (uncontributed) bn128 powers of tau of 2^power, the start of a phase-1 ceremony.
 *
 * @example
 * ```ts
 * let ptau = await newPtau(12);
 * ```
 */
export async function newPtau(power: number): Promise<Uint8Array> {
  if (!Number.isSafeInteger(power) || power < 1 || power > 28)
    fail('INVALID_ARGUMENT', 'power must be 1 to 28', { power });
  const snarkjs = await loadSnarkjs();
  const curve = await snarkjs.curves.getCurveFromName('bn128');
  const out = memFile();
  await snarkjs.powersOfTau.newAccumulator(curve, power, out);
  return out.data as Uint8Array;
}

/**
 * Adds one contribution (fresh secrets from `entropy`) to a powers of tau.
 *
 * @example
 * ```ts
 * const step = await contributePtau(ptau, { name: contributionName(account, 'alice') });
 * await contributeToCeremony(clients, { ceremony, id, prevHash: record.head, newHash: step.hash });
 * ```
 */
export async function contributePtau(ptau: Uint8Array, options: ContributeOptions): Promise<CeremonyStep> {
  return contribution(1, ptau, options);
}

/**
 * The final step of a phase-1 ceremony: a contribution derived from the beacon (the block hash
 * the chain fixed at close). Its hash is the ceremony's final hash.
 */
export async function beaconPtau(
  ptau: Uint8Array,
  beacon: string,
  options: { name?: string } = {},
): Promise<CeremonyStep> {
  return beaconStep(1, ptau, beacon, options);
}

/** Prepares a phase-1 result for phase 2 (the Lagrange sections); the transcript is kept. */
export async function preparePtau(ptau: Uint8Array): Promise<Uint8Array> {
  const snarkjs = await loadSnarkjs();
  const out = memFile();
  try {
    await snarkjs.powersOfTau.preparePhase2(mem(ptau), out);
  } catch (cause) {
    invalid('cannot prepare this powers of tau for phase 2', {}, cause);
  }
  return out.data as Uint8Array;
}

/**
 * SHA-256 of snarkjs's first challenge hash for a ceremony of 2^power: BLAKE2b-512 of the empty
 * hash followed by the uncompressed generators of the fresh accumulator (as snarkjs's
 * `calculateFirstChallengeHash`). The initial hash of a phase-1 ceremony.
 */
export async function ptauInitialHash(power: number): Promise<Hash32> {
  const snarkjs = await loadSnarkjs();
  const curve = (await snarkjs.curves.getCurveFromName('bn128')) as unknown as {
    G1: { g: unknown; F: { n8: number }; toRprUncompressed(b: Uint8Array, o: number, p: unknown): void };
    G2: { g: unknown; F: { n8: number }; toRprUncompressed(b: Uint8Array, o: number, p: unknown): void };
  };
  const g1 = new Uint8Array(curve.G1.F.n8 * 2);
  const g2 = new Uint8Array(curve.G2.F.n8 * 2);
  curve.G1.toRprUncompressed(g1, 0, curve.G1.g);
  curve.G2.toRprUncompressed(g2, 0, curve.G2.g);
  const h = createHash('blake2b512');
  h.update(createHash('blake2b512').digest());
  const repeat = (point: Uint8Array, n: number) => {
    const block = Math.min(n, 16384);
    const big = new Uint8Array(block * point.length);
    for (let i = 0; i < block; i++) big.set(point, i * point.length);
    let left = n;
    while (left >= block) {
      h.update(big);
      left -= block;
    }
    if (left > 0) h.update(big.subarray(0, left * point.length));
  };
  repeat(g1, 2 ** power * 2 - 1);
  repeat(g2, 2 ** power);
  repeat(g1, 2 ** power);
  repeat(g1, 2 ** power);
  h.update(g2);
  return sha256(h.digest());
}

// ---------------------------------------------------------------------------------------------
// Phase 2

/** The initial zkey of a circuit from a prepared powers of tau (deterministic: anyone recomputes it). */
export async function newZkey(r1cs: Uint8Array, ptau: Uint8Array): Promise<Uint8Array> {
  const snarkjs = await loadSnarkjs();
  const out = memFile();
  try {
    await snarkjs.zKey.newZKey(mem(r1cs), mem(ptau), out);
  } catch (cause) {
    throw new VerityError('INVALID_ARGUMENT', 'groth16 setup failed (is the ptau prepared and large enough?)', {
      cause,
    });
  }
  return out.data as Uint8Array;
}

/** Adds one phase-2 contribution to a zkey. */
export async function contributeZkey(zkey: Uint8Array, options: ContributeOptions): Promise<CeremonyStep> {
  return contribution(2, zkey, options);
}

/** The final step of a phase-2 ceremony, from the beacon; its hash is the final hash. */
export async function beaconZkey(
  zkey: Uint8Array,
  beacon: string,
  options: { name?: string } = {},
): Promise<CeremonyStep> {
  return beaconStep(2, zkey, beacon, options);
}

// ---------------------------------------------------------------------------------------------
// Verification

/** What phase 2 is verified against. */
export interface Phase2Inputs {
  /** The circuit's R1CS (its SHA-256 is the ceremony's subject). */
  readonly r1cs: Uint8Array;
  /** The prepared powers of tau the zkey was made from (trusted separately: phase 1). */
  readonly ptau: Uint8Array;
}

/**
 * Checks a ceremony's final file against its on-chain record; returns the file's transcript.
 *
 * 1. The record must be finalized (a beacon and a final hash), else `ZK_CEREMONY_UNFINISHED`.
 * 2. The file must verify with snarkjs — every contribution's proofs and the points they lead to
 *    (`powersoftau verify`; `zkey verify` against the R1CS and the ptau) — else `ZK_CEREMONY_INVALID`.
 * 3. The file must be what the record says, else `ZK_TRANSCRIPT_MISMATCH`: same kind and subject,
 *    initial hash, the same contributions in the same order (hashes equal; each contribution's
 *    stored name starts with the account that recorded it), then exactly one beacon step whose
 *    beacon is the record's `beacon` (the block hash taken on chain) and whose hash is the
 *    record's `finalHash`.
 *
 * @example
 * ```ts
 * const record = await readCeremony(publicClient, deployment.contracts.ceremony, id);
 * await verifyTranscript(2, zkey, record, { r1cs, ptau });
 * ```
 */
export async function verifyTranscript(
  kind: 1,
  file: Uint8Array,
  record: CeremonyRecordLike,
  extra?: Record<string, never>,
): Promise<Transcript>;
export async function verifyTranscript(
  kind: 2,
  file: Uint8Array,
  record: CeremonyRecordLike,
  extra: Phase2Inputs,
): Promise<Transcript>;
export async function verifyTranscript(
  kind: CeremonyKind,
  file: Uint8Array,
  record: CeremonyRecordLike,
  extra?: Partial<Phase2Inputs>,
): Promise<Transcript> {
  if (record.beacon === undefined || record.finalHash === undefined) {
    throw new VerityError('ZK_CEREMONY_UNFINISHED', 'the ceremony has no beacon yet (not finalized on chain)', {
      details: { contributions: record.contributions.length },
    });
  }
  const snarkjs = await loadSnarkjs();
  let transcript: Transcript;
  let expectedSubject: string;
  if (kind === 1) {
    transcript = await ptauTranscript(file);
    let ok: boolean;
    try {
      ok = await snarkjs.powersOfTau.verify(mem(file));
    } catch (cause) {
      invalid('the powers of tau cannot be read as one', {}, cause);
    }
    if (!ok) invalid('the powers of tau does not verify (powersoftau verify)');
    const power = transcript.ceremonyPower as number;
    expectedSubject = phase1Subject(power);
    transcript = { ...transcript, initialHash: await ptauInitialHash(power) };
  } else {
    if (extra?.r1cs === undefined || extra.ptau === undefined) {
      fail('INVALID_ARGUMENT', 'phase 2 is verified against the R1CS and the ptau');
    }
    transcript = await zkeyTranscript(file);
    let ok: boolean;
    try {
      ok = await snarkjs.zKey.verifyFromR1cs(mem(extra.r1cs), mem(extra.ptau), mem(file));
    } catch (cause) {
      invalid('the zkey cannot be checked against the R1CS and ptau', {}, cause);
    }
    if (!ok) invalid('the zkey does not verify against the R1CS and ptau (zkey verify)');
    expectedSubject = phase2Subject(extra.r1cs);
  }
  checkAgainstRecord(transcript, record, expectedSubject);
  return transcript;
}

function same(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

function checkAgainstRecord(t: Transcript, record: CeremonyRecordLike, subject: string): void {
  if (record.kind !== t.kind)
    mismatch('the record is of another kind of ceremony', { record: record.kind, file: t.kind });
  if (!same(record.subject, subject)) {
    mismatch('the record is for another subject (circuit or power)', { record: record.subject, file: subject });
  }
  if (t.initialHash === undefined || !same(record.initialHash, t.initialHash)) {
    mismatch('the file starts from another initial state', { record: record.initialHash, file: t.initialHash });
  }
  const onChain = record.contributions;
  if (onChain.length !== t.contributions.length) {
    mismatch('the file and the record have different numbers of contributions', {
      record: onChain.length,
      file: t.contributions.length,
    });
  }
  t.contributions.forEach((step, i) => {
    const c = onChain[i] as CeremonyRecordLike['contributions'][number];
    if (!same(c.hash, step.hash))
      mismatch('a contribution differs from the one recorded', { index: i, record: c.hash, file: step.hash });
    // The account that recorded the hash is the one the contribution names.
    const named = step.name.split(' ')[0] ?? '';
    if (!same(named, c.contributor)) {
      mismatch('a contribution was recorded by another account than the one it names', {
        index: i,
        recordedBy: c.contributor,
        name: step.name,
      });
    }
  });
  const beacon = t.beacon;
  if (beacon?.beacon === undefined) mismatch('the file does not end with the beacon step');
  if (!same(`0x${beacon.beacon.hash}`, record.beacon as string)) {
    mismatch('the beacon step is not from the recorded beacon block hash', {
      record: record.beacon,
      file: `0x${beacon.beacon.hash}`,
    });
  }
  // One fixed iteration count: the beacon step is then a function of the block hash alone, and
  // whoever finalizes has no choice of final keys.
  if (beacon.beacon.iterationsExp !== BEACON_ITERATIONS_EXP) {
    mismatch('the beacon step uses another iteration count', {
      expected: BEACON_ITERATIONS_EXP,
      file: beacon.beacon.iterationsExp,
    });
  }
  if (!same(beacon.hash, record.finalHash as string)) {
    mismatch('the final step differs from the recorded final hash', { record: record.finalHash, file: beacon.hash });
  }
}
