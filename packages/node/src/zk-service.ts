/**
 * Mode `zk` on the node (docs/design.md §2.6): at push, the ONNX model is compiled to a fixed-point
 * circuit and given Groth16 keys (cached on disk per R1CS hash under `zk.cacheDir`, default
 * `<dataDir>/zk`); the manifest's metadata commits to the fixed-point parameters, the circuit's
 * public layout, the R1CS hash, the verification key's digest and the kind of setup. Per request,
 * the circuit (rebuilt from the model bytes and the recorded parameters once per process, checked
 * against the manifest's R1CS and key digests) proves the inference.
 *
 * Fixed-point parameters at push: given (`zkFracBits` + `zkValueBits`), or chosen by
 * `@verity/zk`'s `chooseFixedPoint` from synthetic sample rows: every input in
 * [−inputRange, inputRange] (default 10), 64 seeded pseudo-random rows plus the two constant rows
 * ±inputRange. Inputs outside the range the parameters allow are refused at inference.
 *
 * `@verity/zk` (circom2, snarkjs) is imported on first use: a node that never sees zk pays nothing.
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  fail,
  isVerityError,
  type Manifest,
  sha256,
  type TensorMap,
  toHex,
  VerityError,
  ZK_METADATA,
  type ZkFacts,
  type ZkGroth16Proof,
  type ZkSetup,
  zkFacts,
  zkMetadata,
  zkOutputTensors,
  zkVkDigest,
} from '@verity/protocol';
import type { CircuitArtifacts, CircuitKeys, CompiledModel } from '@verity/zk';
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

/** A circuit ready to prove. */
interface Ready {
  model: CompiledModel;
  circuit: CircuitArtifacts;
  keys: CircuitKeys;
  facts: ZkFacts;
}

/** The proof of one inference, and the output it proves (decoded from the public signals). */
export interface ZkInference {
  proof: ZkGroth16Proof;
  publicSignals: string[];
  vk: Record<string, unknown>;
  setup: ZkSetup;
  output: TensorMap;
}

/** Where a zk model's Solidity verifier is deployed (recorded next to the keys, per chain). */
export interface ZkVerifierInfo {
  chainId: number;
  address: Address;
  /** Digest of the verification key the contract checks against (the manifest's). */
  vk: string;
  /** Gas the deployment used. */
  deployGas: string;
  /** solc that compiled it. */
  compiler: string;
}

/** What deploying a verifier needs from the chain service. */
export interface VerifierChain {
  readonly deployment: { readonly chainId: number };
  readonly publicClient: PublicClient;
  deployContract(abi: Abi, bytecode: Hex): Promise<{ address: Address; gasUsed: bigint }>;
}

/** The node's zk service. */
export interface ZkService {
  /** Compiles, sets up and describes a model for its manifest's metadata (push time). */
  prepare(onnxPath: string, options: ZkPushOptions): Promise<Record<string, string>>;
  /** Proves one inference with a model pushed with zk. */
  prove(manifestCid: string, manifest: Manifest, artifactPath: string, inputs: TensorMap): Promise<ZkInference>;
  /**
   * The model's Solidity verifier on this chain: the recorded one if its code is still there,
   * else generated from the keys (snarkjs template), compiled (solc-js), deployed and recorded.
   */
  verifier(
    manifestCid: string,
    manifest: Manifest,
    artifactPath: string,
    chain: VerifierChain,
  ): Promise<ZkVerifierInfo>;
  /** The verifier recorded for a zk model on a chain, if any (a file read, no chain call). */
  recordedVerifier(manifest: Manifest, chainId: number): ZkVerifierInfo | undefined;
  /** Releases snarkjs' worker threads. */
  close(): Promise<void>;
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

export function createZkService(settings: ZkSettings, dataDir: string): ZkService {
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

  const build = async (onnx: Uint8Array, options: ZkPushOptions): Promise<Ready> => {
    const zk = await loadZk();
    const model = await compile(onnx, options);
    const circuit = await zk.compileCircom(model.circom);
    const keys = await zk.setupCircuit(circuit, setupOptions);
    const facts: ZkFacts = {
      params: { fracBits: model.params.fracBits, valueBits: model.params.valueBits },
      io: model.io,
      r1cs: circuit.r1csHash,
      vk: zkVkDigest(keys.verificationKey),
      // Keys this node made alone are one party's, over whichever phase 1 (issue 11: a multi-party
      // phase 2 is made at push by a ceremony, not here).
      setup: 'local-dev',
      phase1:
        keys.setup === 'local-dev' || settings.ptauPath === undefined
          ? { kind: 'local-dev' }
          : { kind: 'file', sha256: toHex(sha256(new Uint8Array(await readFile(settings.ptauPath)))) },
    };
    return { model, circuit, keys, facts };
  };

  const load = (manifestCid: string, manifest: Manifest, artifactPath: string): Promise<Ready> => {
    let p = ready.get(manifestCid);
    if (p === undefined) {
      p = (async () => {
        const facts = zkFacts(manifest);
        const r = await build(new Uint8Array(await readFile(artifactPath)), { params: facts.params });
        // The circuit and keys must be those the manifest commits to (a changed generator or a
        // foreign key in the cache would otherwise prove something else).
        if (r.facts.r1cs !== facts.r1cs) {
          fail('INTERNAL', 'the rebuilt circuit is not the one the manifest commits to', {
            expected: facts.r1cs,
            actual: r.facts.r1cs,
          });
        }
        if (r.facts.vk !== facts.vk) fail('ZK_VK_MISMATCH', 'the cached verification key is not the manifest’s');
        return r;
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
    verifier(manifestCid, manifest, artifactPath, chain) {
      const chainId = chain.deployment.chainId;
      const facts = zkFacts(manifest);
      const path = verifierPath(facts.vk, chainId);
      let p = deploying.get(path);
      if (p === undefined) {
        p = (async () => {
          const known = recordedVerifier(manifest, chainId);
          // A chain reset (a fresh anvil) forgets the contract: deploy again.
          if (
            known !== undefined &&
            ((await chain.publicClient.getCode({ address: known.address })) ?? '0x') !== '0x'
          ) {
            return known;
          }
          const zk = await loadZk();
          const r = await load(manifestCid, manifest, artifactPath);
          const compiled = zk.compileVerifier(await zk.solidityVerifier(r.keys));
          const deployed = await chain.deployContract(compiled.abi as Abi, compiled.bytecode);
          const info: ZkVerifierInfo = {
            chainId,
            address: deployed.address,
            vk: facts.vk,
            deployGas: deployed.gasUsed.toString(),
            compiler: compiled.compiler,
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
    async prepare(onnxPath, options) {
      const zk = await loadZk();
      const r = await build(new Uint8Array(await readFile(onnxPath)), options);
      return zkMetadata(r.facts, `${zk.GENERATOR}; ${await zk.circomCompilerVersion()} --O2`);
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
      const p = await zk.prove(r.circuit, r.keys, zk.encodeInput(r.model, t.data));
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

/** Whether a manifest is of a model pushed with zk. */
export function isZkManifest(manifest: Manifest): boolean {
  return manifest.metadata?.[ZK_METADATA.vk] !== undefined;
}
