/**
 * Groth16 setup for a compiled circuit: a local-dev powers of tau (phase 1), sized to the circuit
 * and cached on disk, then the circuit-specific phase 2 (zkey), checked against the R1CS and the
 * ptau (`zkey verify`), and the verification key.
 *
 * `local-dev` means one contributor on this machine: whoever ran it could forge proofs. Every
 * key (and so every proof) made this way says `setup: 'local-dev'`; a real network uses a public
 * ceremony's ptau instead (pass `ptauPath`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, VerityError } from '@verity/protocol';
import type { MemFile } from 'snarkjs';
import type { CircuitArtifacts } from './circom-compile.js';
import { loadSnarkjs } from './snarkjs.js';

const verifiedPtau = new Map<string, Promise<void>>();

/**
 * A ceremony's powers-of-tau file is checked (every contribution, `powersoftau verify`) before
 * the first key is made from it, once per file content per process: a corrupt or forged file would
 * make every proof from its keys worthless.
 */
export function verifyPowersOfTau(path: string): Promise<void> {
  const check = async () => {
    const data = new Uint8Array(await readFile(path));
    const snarkjs = await loadSnarkjs();
    let ok = false;
    try {
      ok = await snarkjs.powersOfTau.verify({ type: 'mem', data }, undefined);
    } catch (cause) {
      throw new VerityError('ZK_SETUP_UNTRUSTED', 'the powers-of-tau file cannot be read as one', {
        details: { path },
        cause,
      });
    }
    if (!ok) fail('ZK_SETUP_UNTRUSTED', 'the powers-of-tau file does not verify', { path });
  };
  let p = verifiedPtau.get(path);
  if (!p) {
    p = check();
    verifiedPtau.set(path, p);
    p.catch(() => verifiedPtau.delete(path));
  }
  return p;
}

/** Where a setup's trust comes from. */
export type SetupKind = 'local-dev' | 'ptau-file';

/** Groth16 keys for one circuit. */
export interface CircuitKeys {
  /** The proving key (`.zkey` bytes). */
  zkey: Uint8Array;
  /** snarkjs' verification key JSON (curve points as decimal strings). */
  verificationKey: VerificationKey;
  /** The R1CS hash the keys were made for. */
  r1csHash: string;
  /** `local-dev`: a single local contributor, for development and tests only. */
  setup: SetupKind;
  /** log2 of the powers of tau used. */
  ptauPower: number;
}

/** A Groth16 verification key as snarkjs exports it. */
export interface VerificationKey {
  protocol: string;
  curve: string;
  nPublic: number;
  [key: string]: unknown;
}

/** Options for {@link setupCircuit}. */
export interface SetupOptions {
  /** Folder for per-circuit keys (`<cacheDir>/keys/<r1csHash>.*`) and, unless `ptauDir`, the ptau. */
  cacheDir: string;
  /** Folder for local-dev powers of tau (shared between circuits). Default `cacheDir`. */
  ptauDir?: string;
  /**
   * Entropy for the local contributions. Default: 32 random bytes. Pass a fixed string only in
   * tests, where reproducible files are worth more than secrecy.
   */
  entropy?: string;
  /** Use at least this power of tau (share one ptau between circuits of different sizes). */
  minPtauPower?: number;
  /** A prepared (phase 2) ptau file from a public ceremony instead of a local one. */
  ptauPath?: string;
  /** Check the zkey against the R1CS and ptau (`zkey verify`). Default true; skipped on a cache hit. */
  verify?: boolean;
}

/** Largest ptau this package will generate locally (2^16 ≈ 65k constraints, ~15 min on 2 cores). */
const MAX_LOCAL_POWER = 16;

/**
 * log2 of the smallest powers of tau that fits a circuit: Groth16 in snarkjs needs
 * 2^power > constraints + public inputs + public outputs.
 *
 * @example
 * ```ts
 * ptauPowerFor(circuit.info); // 12
 * ```
 */
export function ptauPowerFor(info: { constraints: number; publicInputs: number; publicOutputs: number }): number {
  const needed = info.constraints + info.publicInputs + info.publicOutputs + 1;
  let power = 8;
  while (2 ** power < needed) power++;
  return power;
}

/**
 * The path of a local-dev prepared powers of tau of at least `power` in `cacheDir`, generating
 * (new → contribute → prepare phase 2) and caching 2^power if none is there.
 *
 * @example
 * ```ts
 * const ptau = await localPowersOfTau(12, { cacheDir }); // ~1 min the first time
 * ```
 */
export async function localPowersOfTau(
  power: number,
  options: { cacheDir: string; entropy?: string },
): Promise<{ path: string; power: number }> {
  if (!Number.isSafeInteger(power) || power < 1 || power > MAX_LOCAL_POWER) {
    fail('INVALID_ARGUMENT', `a local powers of tau is at most 2^${MAX_LOCAL_POWER}`, { power });
  }
  await mkdir(options.cacheDir, { recursive: true });
  const names = new Set(await readdir(options.cacheDir));
  for (let p = power; p <= MAX_LOCAL_POWER; p++) {
    if (names.has(ptauName(p))) return { path: join(options.cacheDir, ptauName(p)), power: p };
  }
  const snarkjs = await loadSnarkjs();
  const curve = await snarkjs.curves.getCurveFromName('bn128');
  const entropy = options.entropy ?? randomBytes(32).toString('hex');
  const fresh = memFile();
  await snarkjs.powersOfTau.newAccumulator(curve, power, fresh);
  const contributed = memFile();
  await snarkjs.powersOfTau.contribute(fresh, contributed, 'verity local-dev', entropy);
  const prepared = memFile();
  await snarkjs.powersOfTau.preparePhase2(contributed, prepared);
  const path = join(options.cacheDir, ptauName(power));
  await writeAtomic(path, prepared.data as Uint8Array);
  return { path, power };
}

/**
 * Groth16 keys for a circuit, from the cache (`<cacheDir>/keys/<r1csHash>.zkey`) or made now:
 * ptau (local-dev unless `ptauPath`), `zkey new`, one phase-2 contribution, `zkey verify`
 * against the R1CS and ptau, verification key export. Meant for push time, not per request.
 *
 * @example
 * ```ts
 * const keys = await setupCircuit(circuit, { cacheDir: '.verity/zk' });
 * keys.setup; // 'local-dev'
 * ```
 */
export async function setupCircuit(
  circuit: Pick<CircuitArtifacts, 'r1cs' | 'r1csHash' | 'info'>,
  options: SetupOptions,
): Promise<CircuitKeys> {
  const keysDir = join(options.cacheDir, 'keys');
  const base = join(keysDir, circuit.r1csHash);
  const cached = await readCached(base);
  if (cached !== undefined && cached.meta.r1csHash === circuit.r1csHash) return cached.keys;

  const needed = ptauPowerFor(circuit.info);
  let ptauPath: string;
  let ptauPower: number;
  let setup: SetupKind;
  if (options.ptauPath !== undefined) {
    ptauPath = options.ptauPath;
    ptauPower = needed;
    setup = 'ptau-file';
    await verifyPowersOfTau(ptauPath);
  } else {
    const ptau = await localPowersOfTau(Math.max(needed, options.minPtauPower ?? 0), {
      cacheDir: options.ptauDir ?? options.cacheDir,
      ...(options.entropy === undefined ? {} : { entropy: options.entropy }),
    });
    ptauPath = ptau.path;
    ptauPower = ptau.power;
    setup = 'local-dev';
  }
  const snarkjs = await loadSnarkjs();
  // Whole files in memory: snarkjs leaves file handles of paths it opens to the garbage collector.
  const ptau = { type: 'mem' as const, data: new Uint8Array(await readFile(ptauPath)) };
  const r1cs = { type: 'mem' as const, data: circuit.r1cs };
  const initial = memFile();
  try {
    await snarkjs.zKey.newZKey(r1cs, ptau, initial);
  } catch (cause) {
    throw new VerityError('INVALID_ARGUMENT', 'groth16 setup failed (is the ptau large enough?)', {
      details: { constraints: circuit.info.constraints, ptauPower },
      cause,
    });
  }
  const final = memFile();
  const entropy = options.entropy ?? randomBytes(32).toString('hex');
  await snarkjs.zKey.contribute(initial, final, 'verity local-dev', `${entropy}/phase2/${circuit.r1csHash}`);
  const zkey = final.data as Uint8Array;
  if (options.verify ?? true) {
    const ok = await snarkjs.zKey.verifyFromR1cs(r1cs, ptau, { type: 'mem', data: zkey });
    if (!ok) fail('INTERNAL', 'the new zkey does not match the circuit and ptau', { r1csHash: circuit.r1csHash });
  }
  const verificationKey = (await snarkjs.zKey.exportVerificationKey({ type: 'mem', data: zkey })) as VerificationKey;
  const keys: CircuitKeys = { zkey, verificationKey, r1csHash: circuit.r1csHash, setup, ptauPower };
  await mkdir(keysDir, { recursive: true });
  await writeAtomic(`${base}.zkey`, zkey);
  await writeAtomic(
    `${base}.json`,
    new TextEncoder().encode(
      JSON.stringify({
        r1csHash: circuit.r1csHash,
        setup,
        ptauPower,
        zkeySha256: createHash('sha256').update(zkey).digest('hex'),
        verificationKey,
      }),
    ),
  );
  return keys;
}

interface KeysMeta {
  r1csHash: string;
  setup: SetupKind;
  ptauPower: number;
  zkeySha256: string;
  verificationKey: VerificationKey;
}

async function readCached(base: string): Promise<{ keys: CircuitKeys; meta: KeysMeta } | undefined> {
  let meta: KeysMeta;
  let zkey: Uint8Array;
  try {
    meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as KeysMeta;
    const b = await readFile(`${base}.zkey`);
    zkey = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch {
    return undefined;
  }
  // A torn or foreign file is a cache miss, never a wrong key.
  if (createHash('sha256').update(zkey).digest('hex') !== meta.zkeySha256) return undefined;
  const keys: CircuitKeys = {
    zkey,
    verificationKey: meta.verificationKey,
    r1csHash: meta.r1csHash,
    setup: meta.setup,
    ptauPower: meta.ptauPower,
  };
  return { keys, meta };
}

function memFile(): MemFile {
  return { type: 'mem' };
}

function ptauName(power: number): string {
  return `local-dev-bn128-2p${power}.ptau`;
}

async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/**
 * Checks a proving key against a circuit and a prepared powers of tau (`zkey verify`: every
 * phase-2 contribution and the points they lead to) and returns its verification key.
 * `ZK_CEREMONY_INVALID` when it does not verify (a key for another circuit or another phase 1, or
 * a corrupt one). What a replica or an auditor runs on a zkey it was given.
 *
 * @example
 * ```ts
 * const vk = await verifyZkey(circuit.r1cs, ptau, zkey);
 * ```
 */
export async function verifyZkey(r1cs: Uint8Array, ptau: Uint8Array, zkey: Uint8Array): Promise<VerificationKey> {
  const snarkjs = await loadSnarkjs();
  const silent = { info() {}, warn() {}, error() {}, debug() {} };
  let ok = false;
  try {
    ok = await snarkjs.zKey.verifyFromR1cs(
      { type: 'mem', data: r1cs },
      { type: 'mem', data: ptau },
      { type: 'mem', data: zkey },
      silent,
    );
  } catch (cause) {
    throw new VerityError('ZK_CEREMONY_INVALID', 'the proving key cannot be read against this circuit and ptau', {
      cause,
    });
  }
  if (!ok)
    fail('ZK_CEREMONY_INVALID', 'the proving key does not verify against the circuit and the phase 1 (zkey verify)');
  return (await snarkjs.zKey.exportVerificationKey({ type: 'mem', data: zkey })) as VerificationKey;
}

/**
 * The verification key of a proving key (snarkjs `zkey export verificationkey`), without checking
 * the key: for a key checked before (see {@link verifyZkey}).
 */
export async function zkeyVerificationKey(zkey: Uint8Array): Promise<VerificationKey> {
  const snarkjs = await loadSnarkjs();
  return (await snarkjs.zKey.exportVerificationKey({ type: 'mem', data: zkey })) as VerificationKey;
}
