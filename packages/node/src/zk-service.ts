/**
 * Mode `zk` on the node (docs/design.md §2.6): at push, the ONNX model is compiled to a fixed-point
 * circuit and given Groth16 keys (cached on disk per R1CS hash under `zk.cacheDir`, default
 * `<dataDir>/zk`); the manifest's metadata commits to the fixed-point parameters, the circuit's
 * public layout, the R1CS hash, the verification key's digest and the kind of setup. Per request,
 * the circuit (rebuilt from the model bytes and the recorded parameters once per process, checked
 * against the manifest's R1CS and key digests) proves the inference.
 *
 * Keys are derived, not trusted (issue 11.7): the final proving key of every zk model this node
 * serves is kept as `<cacheDir>/zkeys/<vk digest>.zkey` only once checked — made here at push, or,
 * on a replica, fetched from a peer and checked: the circuit recompiled from the artifact and the
 * signed manifest's `zk.params` (its R1CS hash = `zk.r1cs`, else `ZK_CIRCUIT_MISMATCH`), `zkey
 * verify` against that R1CS and the phase-1 file `zk.phase1` names (`ZK_CEREMONY_INVALID`), for a
 * multi-party setup the phase-2 transcript against the on-chain ceremony record, and the
 * verification key's digest = `zk.vk` (`ZK_VK_MISMATCH`). Nothing else is ever proved with.
 *
 * Fixed-point parameters at push: given (`zkFracBits` + `zkValueBits`), or chosen by
 * `@verity/zk`'s `chooseFixedPoint` from synthetic sample rows: every input in
 * [−inputRange, inputRange] (default 10), 64 seeded pseudo-random rows plus the two constant rows
 * ±inputRange. Inputs outside the range the parameters allow are refused at inference.
 *
 * `@verity/zk` (circom2, snarkjs) is imported on first use: a node that never sees zk pays nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  bindZkModel,
  type ChainClients,
  getZkBinding,
  resolveModel,
  type ZkProofCall,
  zkVerifierCreationCode,
  zkVerifierOf,
} from '@verity/contracts';
import {
  fail,
  isVerityError,
  type Manifest,
  parseAddress,
  parseZkAudit,
  type TensorMap,
  VerityError,
  ZK_METADATA,
  type ZkAudit,
  type ZkBinding,
  type ZkFacts,
  type ZkGroth16Proof,
  type ZkPhase1,
  type ZkPhase2,
  type ZkSetup,
  zkFacts,
  zkMetadata,
  zkOutputTensors,
  zkVkDigest,
  zkVkKey,
} from '@verity/protocol';
import type { CeremonyRecordLike, CircuitArtifacts, CompiledModel, VerificationKey } from '@verity/zk';

export type { CeremonyRecordLike } from '@verity/zk';

import type { Abi, Address, Hex, PublicClient } from 'viem';
import type { ZkSettings } from './config.js';

type ZkModule = typeof import('@verity/zk');
let zkModule: Promise<ZkModule> | undefined;
function loadZk(): Promise<ZkModule> {
  zkModule ??= import('@verity/zk');
  return zkModule;
}

/** How to choose the fixed-point parameters at push. */
export interface ZkPushOptions {
  params?: { fracBits: number; valueBits: number };
  /** Inputs are assumed within [−inputRange, inputRange] when choosing the scale. Default 10. */
  inputRange?: number;
}

/** A proving key and its verification key, checked against a manifest's commitments. */
interface Keys {
  zkey: Uint8Array;
  verificationKey: VerificationKey;
}

/** A circuit ready to prove. */
interface Ready {
  model: CompiledModel;
  circuit: CircuitArtifacts;
  keys: Keys;
  facts: ZkFacts;
}

/** A zkey a peer offered for a model (a replica checks it before anything else). */
export interface OfferedZkey {
  /** Who offered it (for the error details). */
  readonly peer: string;
  readonly zkey: Uint8Array;
}

/** Runs a phase-2 ceremony for a circuit (`runPushPhase2`); undefined: nobody to run it with. */
export type Phase2Runner = (circuit: {
  readonly r1cs: Uint8Array;
  readonly r1csHash: string;
  readonly ptau: Uint8Array;
}) => Promise<{ zkey: Uint8Array; verificationKey: VerificationKey; ceremony: ZkPhase2 } | undefined>;

/** What the zk service needs from the rest of the node, bound late (the chain starts after it). */
export interface ZkServiceDeps {
  /** Proving keys peers offer for a model, one at a time (a replica's source); none: no replica zk. */
  peerZkeys?(manifestCid: string, maxBytes: number): AsyncIterable<OfferedZkey>;
  /** The on-chain record of a ceremony a manifest names (a multi-party setup); none: no chain. */
  ceremonyRecord?(ref: ZkPhase2): Promise<CeremonyRecordLike>;
  /** The phase-1 ceremony `zk.phase1Ceremony` names on the node's chain, if configured and on a chain. */
  phase1Ceremony?(): ZkPhase2 | undefined;
}

/** The proof of one inference, and the output it proves (decoded from the public signals). */
export interface ZkInference {
  proof: ZkGroth16Proof;
  publicSignals: string[];
  vk: Record<string, unknown>;
  setup: ZkSetup;
  output: TensorMap;
}

/** A zk model's verifier on a chain: registered in `ZkVerifierRegistry` under its key (recorded next to the keys, per chain). */
export interface ZkVerifierInfo {
  chainId: number;
  address: Address;
  /** Digest of the verification key the contract checks against (the manifest's `zk.vk`). */
  vk: string;
  /** The key's id in the registry: protocol `zkVkKey(vk)`. */
  vkKey: Hex;
  /** The `ZkVerifierRegistry` it is registered in. */
  registry: Address;
  /** Gas this node spent deploying and registering it ("0" when someone else had). */
  deployGas: string;
}

/** What deploying and registering a verifier needs from the chain service. */
export interface VerifierChain {
  readonly deployment: { readonly chainId: number; readonly contracts: { readonly zkVerifiers: Address } };
  readonly publicClient: PublicClient;
  deployContract(abi: Abi, bytecode: Hex): Promise<{ address: Address; gasUsed: bigint }>;
  registerZkVerifier(verifier: Address): Promise<{ vkKey: Hex; verifier: Address; gasUsed: bigint }>;
}

/** What binding a model on chain needs from the chain service. */
export interface BindingChain {
  readonly deployment: { readonly contracts: { readonly zkVerifiers: Address; readonly modelRegistry: Address } };
  readonly publicClient: PublicClient;
  /** Runs `fn` with the node's wallet, after the node's other transactions. */
  transact<T>(fn: (clients: ChainClients) => Promise<T>): Promise<T>;
}

/** The node's zk service. */
export interface ZkService {
  /**
   * Compiles, sets up and describes a model for its manifest's metadata (push time). With
   * `phase2`, over a phase 1 that is not local-dev, the keys come from the multi-party phase 2 it
   * runs (undefined from it: no one to run it with, local-dev keys).
   */
  prepare(onnxPath: string, options: ZkPushOptions, phase2?: Phase2Runner): Promise<Record<string, string>>;
  /** Proves one inference with a model pushed with zk. */
  prove(manifestCid: string, manifest: Manifest, artifactPath: string, inputs: TensorMap): Promise<ZkInference>;
  /**
   * The model's verifier on this chain, as `ZkVerifierRegistry` has it for the key: the recorded
   * one if the registry still maps the key to it, else whichever the registry has (anyone may
   * have registered it), else deployed (template ‖ key, `@verity/contracts` `zkVerifierCode`),
   * registered and recorded. Idempotent: a key is registered once per chain.
   */
  verifier(
    manifestCid: string,
    manifest: Manifest,
    artifactPath: string,
    chain: VerifierChain,
  ): Promise<ZkVerifierInfo>;
  /**
   * The model's zk binding on this chain (docs/protocol.md §12 "The zk binding"): the one there,
   * else, when this node's account published the model's `ModelRegistry` version, bound now to
   * the node's key and the manifest's layout (so that a dispute over its zk records is settled by
   * a proof). `undefined` when unbound and published by someone else (theirs to bind).
   */
  bind(
    manifestCid: string,
    manifest: Manifest,
    artifactPath: string,
    chain: BindingChain,
  ): Promise<ZkBinding | undefined>;
  /** A proof as the arguments of `verifyProof` / `Disputes.settleByProof` (`@verity/zk` `solidityCallArgs`). */
  callArgs(proof: ZkGroth16Proof, publicSignals: readonly string[]): Promise<ZkProofCall>;
  /** The verifier recorded for a zk model on a chain, if any (a file read, no chain call). */
  recordedVerifier(manifest: Manifest, chainId: number): ZkVerifierInfo | undefined;
  /**
   * The checked final proving key of a zk model this node serves (made here, or a peer's that
   * passed every check), or undefined: what `GET /v1/zk/:manifestCid/zkey` serves.
   */
  storedZkey(manifest: Manifest): Promise<Uint8Array | undefined>;
  /**
   * Audits a zk model from its artifact and a proving key given for it (`verity zk audit`):
   * recompiles the circuit, checks the R1CS hash, `zkey verify` against the phase 1, the phase-2
   * transcript against the chain (multi-party), and the vk digest against the manifest; answers
   * the audit record. Throws the code of the first check that fails. Keeps nothing.
   */
  audit(
    manifestCid: string,
    manifest: Manifest,
    artifactPath: string,
    zkey: Uint8Array,
  ): Promise<{ audit: ZkAudit; verificationKey: VerificationKey }>;
  /** Releases snarkjs' worker threads. */
  close(): Promise<void>;
}

/** Bytes of a Groth16 proving key per element of the circuit's FFT domain (measured: iris 0.5 MB / 2^10, MLP 2.4 MB / 2^12). */
const ZKEY_BYTES_PER_DOMAIN = 640;

/**
 * Estimated peak memory of one Groth16 proof in snarkjs: the proving key held in memory and read
 * once more by the multi-exponentiations, and the witness evaluations (A, B, C and their FFTs,
 * 32-byte field elements) over the FFT domain. Before the key exists, its size is estimated from
 * the domain.
 *
 * @example
 * ```ts
 * zkProvingBytes(2_400_000, 4096); // ≈ 6.9 MB for the 5.2k MLP
 * ```
 */
export function zkProvingBytes(zkeyBytes: number | undefined, domainSize: number): number {
  return 2 * (zkeyBytes ?? ZKEY_BYTES_PER_DOMAIN * domainSize) + 16 * 32 * domainSize;
}

/** `park–miller` rows in [−range, range]: deterministic synthetic samples. */
function syntheticRows(size: number, range: number): number[][] {
  let x = 1;
  const next = () => {
    x = (x * 48271) % 2147483647;
    return ((x / 2147483647) * 2 - 1) * range;
  };
  const rows = Array.from({ length: 64 }, () => Array.from({ length: size }, next));
  rows.push(new Array<number>(size).fill(range), new Array<number>(size).fill(-range));
  return rows;
}

export function createZkService(settings: ZkSettings, dataDir: string, deps: ZkServiceDeps = {}): ZkService {
  const cacheDir = settings.cacheDir ?? join(dataDir, 'zk');
  const setupOptions = {
    cacheDir,
    ...(settings.ptauDir === undefined ? {} : { ptauDir: settings.ptauDir }),
    ...(settings.ptauPath === undefined ? {} : { ptauPath: settings.ptauPath }),
  };
  const ready = new Map<string, Promise<Ready>>();

  const compile = async (onnx: Uint8Array, options: ZkPushOptions) => {
    const zk = await loadZk();
    try {
      if (options.params !== undefined) return zk.compileModel(onnx, { params: options.params });
      const graph = zk.importOnnx(onnx);
      return zk.compileModel(onnx, { samples: syntheticRows(graph.input.size, options.inputRange ?? 10) });
    } catch (e) {
      if (isVerityError(e) && e.code === 'MODEL_INVALID' && Array.isArray(e.details?.unsupported)) {
        const ops = (e.details.unsupported as { opType: string; reason: string }[]).map(
          (u) => `${u.opType}: ${u.reason}`,
        );
        throw new VerityError('ZK_MODEL_UNSUPPORTED', `this model cannot be proved in zk mode: ${ops.join('; ')}`, {
          details: e.details,
          cause: e,
        });
      }
      throw e;
    }
  };

  /** `ZK_KEY_TOO_LARGE` when one proof of this circuit (with this key, if known) would need more than the bound. */
  const checkMemory = async (circuit: CircuitArtifacts, zkeyBytes?: number) => {
    const zk = await loadZk();
    const domainSize = 2 ** zk.ptauPowerFor(circuit.info);
    const bytes = zkProvingBytes(zkeyBytes, domainSize);
    if (bytes > settings.maxProvingBytes) {
      fail(
        'ZK_KEY_TOO_LARGE',
        'proving this circuit would need more memory than this node allows (zk.maxProvingBytes)',
        {
          estimatedBytes: bytes,
          maxProvingBytes: settings.maxProvingBytes,
          constraints: circuit.info.constraints,
          domainSize,
          ...(zkeyBytes === undefined ? {} : { zkeyBytes }),
        },
      );
    }
  };

  /** The circuit of a model: compiled from its bytes and parameters, memory-checked. */
  const circuitOf = async (onnx: Uint8Array, options: ZkPushOptions) => {
    const zk = await loadZk();
    const model = await compile(onnx, options);
    const circuit = await zk.compileCircom(model.circom);
    await checkMemory(circuit); // before any key is made or read
    return { model, circuit };
  };

  // Checked final proving keys, by verification-key digest.
  const zkeyPath = (vk: string) => join(cacheDir, 'zkeys', `${vk}.zkey`);
  const keepZkey = async (vk: string, zkey: Uint8Array) => {
    await mkdir(join(cacheDir, 'zkeys'), { recursive: true });
    const tmp = `${zkeyPath(vk)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, zkey);
    await rename(tmp, zkeyPath(vk));
  };
  const readZkey = async (vk: string): Promise<Uint8Array | undefined> => {
    try {
      const b = await readFile(zkeyPath(vk));
      return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    } catch {
      return undefined;
    }
  };

  /** The prepared powers of tau a manifest's phase 1 names, from this node's own files. */
  const phase1Ptau = async (phase1: ZkPhase1, circuit: CircuitArtifacts): Promise<Uint8Array> => {
    const zk = await loadZk();
    if (phase1.kind === 'local-dev') {
      // One party's phase 1: checkable only against the same file (nodes sharing a ptau dir, as
      // `verity up`'s do). Never generated here: a new one could not match.
      const dir = settings.ptauDir ?? cacheDir;
      const needed = zk.ptauPowerFor(circuit.info);
      const names = new Set(await readdir(dir).catch(() => [] as string[]));
      for (let p = needed; p <= 28; p++) {
        const name = `local-dev-bn128-2p${p}.ptau`;
        if (names.has(name)) return new Uint8Array(await readFile(join(dir, name)));
      }
      return fail('ZK_SETUP_UNTRUSTED', 'this key was made over a local-dev phase 1 this node does not hold', {
        phase1,
      });
    }
    // A public ceremony's file, or a `verity ceremony`'s final file: the node's `zk.ptauPath`.
    if (settings.ptauPath === undefined) {
      return fail('ZK_SETUP_UNTRUSTED', 'the manifest’s phase 1 is not configured on this node (zk.ptauPath)', {
        phase1,
      });
    }
    const ptau = new Uint8Array(await readFile(settings.ptauPath));
    if (phase1.kind === 'file' && createHash('sha256').update(ptau).digest('hex') !== phase1.sha256) {
      fail('ZK_SETUP_UNTRUSTED', 'zk.ptauPath is not the phase-1 file the manifest names', { phase1 });
    }
    if (phase1.kind === 'ceremony') await checkPhase1(ptau, phase1);
    return ptau;
  };

  // Phase-1 files checked against their ceremony, by SHA-256 and ceremony id (once per process).
  const phase1Checked = new Map<string, Promise<void>>();
  /**
   * A phase-1 file against its on-chain ceremony: `powersoftau verify`, every contribution the
   * recorded one in order by its recorder, the beacon (`ZK_CEREMONY_INVALID`,
   * `ZK_TRANSCRIPT_MISMATCH`, `ZK_CEREMONY_UNFINISHED`).
   */
  const checkPhase1 = (ptau: Uint8Array, ref: ZkPhase2): Promise<void> => {
    const key = `${createHash('sha256').update(ptau).digest('hex')}/${ref.chainId}/${ref.address}/${ref.id}`;
    let p = phase1Checked.get(key);
    if (p === undefined) {
      p = (async () => {
        if (deps.ceremonyRecord === undefined) {
          fail('ZK_SETUP_UNTRUSTED', 'a phase-1 ceremony is checked on chain: this node has no chain');
        }
        const zk = await loadZk();
        await zk.verifyTranscript(1, ptau, await deps.ceremonyRecord(ref));
      })();
      p.catch(() => phase1Checked.delete(key));
      phase1Checked.set(key, p);
    }
    return p;
  };

  /**
   * Everything a node checks before it proves with a key it did not make (see the module comment).
   * Returns the key's verification key.
   */
  const checkZkey = async (
    facts: ZkFacts,
    circuit: CircuitArtifacts,
    zkey: Uint8Array,
  ): Promise<{ verificationKey: VerificationKey; record?: CeremonyRecordLike }> => {
    await checkMemory(circuit, zkey.length); // before snarkjs reads it
    const zk = await loadZk();
    const ptau = await phase1Ptau(facts.phase1, circuit);
    let record: CeremonyRecordLike | undefined;
    let verificationKey: VerificationKey;
    if (facts.phase2 === undefined) {
      verificationKey = await zk.verifyZkey(circuit.r1cs, ptau, zkey);
    } else {
      if (deps.ceremonyRecord === undefined) {
        fail(
          'ZK_SETUP_UNTRUSTED',
          'a multi-party key is checked against its ceremony on chain: this node has no chain',
        );
      }
      record = await deps.ceremonyRecord(facts.phase2);
      // zkey verify against the R1CS and ptau, and the transcript against the record.
      await checkPhase2Transcript(zkey, record, circuit.r1cs, ptau);
      verificationKey = await zk.zkeyVerificationKey(zkey);
    }
    if (zkVkDigest(verificationKey) !== facts.vk) {
      fail('ZK_VK_MISMATCH', 'the proving key’s verification key is not the one the manifest commits to', {
        expected: facts.vk,
        actual: zkVkDigest(verificationKey),
      });
    }
    return { verificationKey, ...(record === undefined ? {} : { record }) };
  };

  /** A checked key: kept, or fetched from peers and checked (the first that passes). */
  const keysFor = async (manifestCid: string, facts: ZkFacts, circuit: CircuitArtifacts): Promise<Keys> => {
    const zk = await loadZk();
    const kept = await readZkey(facts.vk);
    if (kept !== undefined) {
      await checkMemory(circuit, kept.length);
      const verificationKey = (await zk.zkeyVerificationKey(kept)) as VerificationKey;
      // A torn or foreign file is not a key for this manifest.
      if (zkVkDigest(verificationKey) === facts.vk) return { zkey: kept, verificationKey };
    }
    if (deps.peerZkeys === undefined) {
      fail('ZK_VK_MISMATCH', 'this node holds no proving key for the manifest’s verification key');
    }
    let refused: unknown;
    for await (const offer of deps.peerZkeys(manifestCid, Math.floor(settings.maxProvingBytes / 2))) {
      try {
        const { verificationKey } = await checkZkey(facts, circuit, offer.zkey);
        await keepZkey(facts.vk, offer.zkey);
        return { zkey: offer.zkey, verificationKey };
      } catch (e) {
        if (!isVerityError(e)) throw e;
        e.details.peer = offer.peer;
        refused ??= e; // refused: ask the next peer
      }
    }
    if (refused !== undefined) throw refused;
    return fail('MODEL_NOT_FOUND', 'no peer could provide the proving key of this zk model', { manifestCid });
  };

  /** The circuit of a zk manifest's model, compiled from the artifact and the signed zk.params; `ZK_CIRCUIT_MISMATCH` unless its R1CS is the manifest's. */
  const committedCircuit = async (facts: ZkFacts, artifactPath: string) => {
    const built = await circuitOf(new Uint8Array(await readFile(artifactPath)), { params: facts.params });
    // Derived from the artifact and the signed parameters, never taken from whoever made the manifest.
    if (built.circuit.r1csHash !== facts.r1cs) {
      fail('ZK_CIRCUIT_MISMATCH', 'the circuit compiled from the model is not the one the manifest commits to', {
        expected: facts.r1cs,
        actual: built.circuit.r1csHash,
      });
    }
    return built;
  };

  const load = (manifestCid: string, manifest: Manifest, artifactPath: string): Promise<Ready> => {
    let p = ready.get(manifestCid);
    if (p === undefined) {
      p = (async () => {
        const facts = zkFacts(manifest);
        const { model, circuit } = await committedCircuit(facts, artifactPath);
        return { model, circuit, keys: await keysFor(manifestCid, facts, circuit), facts };
      })();
      p.catch(() => ready.delete(manifestCid));
      ready.set(manifestCid, p);
    }
    return p;
  };

  const verifierPath = (vk: string, chainId: number) => join(cacheDir, 'verifiers', `${vk}-${chainId}.json`);
  const recordedVerifier = (manifest: Manifest, chainId: number): ZkVerifierInfo | undefined => {
    try {
      const vk = zkFacts(manifest).vk;
      const info = JSON.parse(readFileSync(verifierPath(vk, chainId), 'utf8')) as ZkVerifierInfo;
      return info.vk === vk && info.chainId === chainId ? info : undefined;
    } catch {
      return undefined;
    }
  };
  const deploying = new Map<string, Promise<ZkVerifierInfo>>();

  return {
    recordedVerifier,
    async bind(manifestCid, manifest, artifactPath, chain) {
      const { zkVerifiers, modelRegistry } = chain.deployment.contracts;
      const existing = await getZkBinding(chain.publicClient, { zkVerifiers, manifestCid });
      if (existing !== undefined) return existing;
      const published = await resolveModel(chain.publicClient, {
        modelRegistry,
        name: manifest.name,
        version: manifest.version,
      });
      if (published === undefined || published.manifestCid !== manifestCid) return undefined;
      const vk = (await load(manifestCid, manifest, artifactPath)).keys.verificationKey;
      const bound = await chain.transact(async (clients) => {
        if (published.publisher.toLowerCase() !== clients.walletClient.account.address.toLowerCase()) return false;
        const io = zkFacts(manifest).io;
        await bindZkModel(clients, {
          zkVerifiers,
          name: manifest.name,
          version: manifest.version,
          manifestCid,
          vk,
          io,
        });
        return true;
      });
      return bound ? getZkBinding(chain.publicClient, { zkVerifiers, manifestCid }) : undefined;
    },
    async callArgs(proof, publicSignals) {
      return (await loadZk()).solidityCallArgs(proof, publicSignals) as ZkProofCall;
    },
    verifier(manifestCid, manifest, artifactPath, chain) {
      const chainId = chain.deployment.chainId;
      const facts = zkFacts(manifest);
      const path = verifierPath(facts.vk, chainId);
      let p = deploying.get(path);
      if (p === undefined) {
        p = (async () => {
          const known = recordedVerifier(manifest, chainId);
          const zkVerifiers = chain.deployment.contracts.zkVerifiers;
          // A chain reset (a fresh anvil) forgets the registry's entry: register again.
          if (
            known !== undefined &&
            known.registry === zkVerifiers &&
            (await zkVerifierOf(chain.publicClient, { zkVerifiers, vkKey: known.vkKey })) === known.address
          ) {
            return known;
          }
          const vk = (await load(manifestCid, manifest, artifactPath)).keys.verificationKey;
          const vkKey = zkVkKey(vk);
          let address = await zkVerifierOf(chain.publicClient, { zkVerifiers, vkKey });
          let gas = 0n;
          if (address === undefined) {
            const deployed = await chain.deployContract([], zkVerifierCreationCode(vk));
            const registered = await chain.registerZkVerifier(deployed.address);
            address = registered.verifier;
            gas = deployed.gasUsed + registered.gasUsed;
          }
          const info: ZkVerifierInfo = {
            chainId,
            address,
            vk: facts.vk,
            vkKey,
            registry: zkVerifiers,
            deployGas: gas.toString(),
          };
          await mkdir(join(cacheDir, 'verifiers'), { recursive: true });
          const tmp = `${path}.${process.pid}.tmp`;
          await writeFile(tmp, JSON.stringify(info));
          await rename(tmp, path);
          return info;
        })();
        const settled = p.finally(() => deploying.delete(path));
        settled.catch(() => undefined);
        deploying.set(path, p);
      }
      return p;
    },
    async prepare(onnxPath, options, phase2) {
      const zk = await loadZk();
      const { model, circuit } = await circuitOf(new Uint8Array(await readFile(onnxPath)), options);
      const ptau = settings.ptauPath === undefined ? undefined : new Uint8Array(await readFile(settings.ptauPath));
      const ceremony = settings.phase1Ceremony === undefined ? undefined : deps.phase1Ceremony?.();
      if (settings.phase1Ceremony !== undefined && ceremony === undefined) {
        fail('ZK_SETUP_UNTRUSTED', 'zk.phase1Ceremony is checked on chain: this node runs on no chain with a Ceremony');
      }
      const phase1: ZkPhase1 =
        ptau === undefined
          ? { kind: 'local-dev' }
          : ceremony !== undefined
            ? { kind: 'ceremony', ...ceremony }
            : { kind: 'file', sha256: createHash('sha256').update(ptau).digest('hex') };
      // A ceremony's file is used only once it matches its record on chain.
      if (ptau !== undefined && ceremony !== undefined) await checkPhase1(ptau, ceremony);
      // A multi-party phase 2 over a phase 1 no single party made; else local-dev keys (this node
      // alone made phase 2: it could forge proofs, and the manifest says so).
      const party =
        ptau === undefined || phase2 === undefined
          ? undefined
          : await phase2({ r1cs: circuit.r1cs, r1csHash: circuit.r1csHash, ptau });
      const keys = party ?? (await zk.setupCircuit(circuit, setupOptions));
      await checkMemory(circuit, keys.zkey.length);
      const facts: ZkFacts = {
        params: { fracBits: model.params.fracBits, valueBits: model.params.valueBits },
        io: model.io,
        r1cs: circuit.r1csHash,
        vk: zkVkDigest(keys.verificationKey),
        setup: party === undefined ? 'local-dev' : 'multi-party',
        phase1,
        ...(party === undefined ? {} : { phase2: party.ceremony }),
      };
      await keepZkey(facts.vk, keys.zkey);
      return zkMetadata(facts, `${zk.GENERATOR}; ${await zk.circomCompilerVersion()} --O2`);
    },
    async audit(manifestCid, manifest, artifactPath, zkey) {
      const zk = await loadZk();
      const facts = zkFacts(manifest);
      const { circuit } = await committedCircuit(facts, artifactPath);
      const { record, verificationKey } = await checkZkey(facts, circuit, zkey);
      const audit = parseZkAudit({
        version: 1,
        manifestCid,
        r1cs: circuit.r1csHash,
        vk: facts.vk,
        setup: facts.setup,
        phase1: facts.phase1,
        phase2: facts.phase2 ?? null,
        contributors: (record?.contributions ?? []).map((c) => parseAddress(c.contributor)),
        beacon: record?.beacon?.toLowerCase() ?? null,
        checkedAt: new Date().toISOString(),
        generator: `${zk.GENERATOR}; ${await zk.circomCompilerVersion()} --O2`,
      });
      return { audit, verificationKey };
    },
    async storedZkey(manifest) {
      const vk = zkFacts(manifest).vk;
      const zkey = await readZkey(vk);
      if (zkey === undefined) return undefined;
      const zk = await loadZk();
      return zkVkDigest(await zk.zkeyVerificationKey(zkey)) === vk ? zkey : undefined;
    },
    async prove(manifestCid, manifest, artifactPath, inputs) {
      const zk = await loadZk();
      const r = await load(manifestCid, manifest, artifactPath);
      const t = inputs[r.model.io.input.name];
      if (t === undefined || !(t.data instanceof Float32Array || t.data instanceof Float64Array)) {
        fail('INVALID_ARGUMENT', `zk mode takes one float tensor "${r.model.io.input.name}"`);
      }
      if (t.data.length !== r.model.io.input.size) {
        fail('INVALID_ARGUMENT', `zk mode proves one row of ${r.model.io.input.size} values (batch size 1)`, {
          values: t.data.length,
        });
      }
      const p = await zk.prove(
        r.circuit,
        { zkey: r.keys.zkey, r1csHash: r.facts.r1cs, setup: 'local-dev' },
        zk.encodeInput(r.model, t.data),
      );
      return {
        proof: p.proof as ZkGroth16Proof,
        publicSignals: p.publicSignals,
        vk: r.keys.verificationKey as Record<string, unknown>,
        setup: r.facts.setup,
        output: zkOutputTensors(r.facts.io, p.publicSignals),
      };
    },
    async close() {
      if (zkModule !== undefined) await (await zkModule).releaseCurves();
    },
  };
}

/**
 * The phase-2 transcript of a multi-party key against its on-chain ceremony record: every
 * contribution in the file is the recorded one, in order, by the account it names, and the last
 * step is the beacon from the record's block hash (`verifyTranscript` of `@verity/zk`'s ceremony
 * module: `ZK_TRANSCRIPT_MISMATCH`, `ZK_CEREMONY_UNFINISHED`).
 */
async function checkPhase2Transcript(
  zkey: Uint8Array,
  record: CeremonyRecordLike,
  r1cs: Uint8Array,
  ptau: Uint8Array,
): Promise<void> {
  await (await loadZk()).verifyTranscript(2, zkey, record, { r1cs, ptau });
}

/** Whether a manifest is of a model pushed with zk. */
export function isZkManifest(manifest: Manifest): boolean {
  return manifest.metadata?.[ZK_METADATA.vk] !== undefined;
}
