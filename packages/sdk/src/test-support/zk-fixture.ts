/**
 * Builds zk bundles for the trust tests (zk-trust.test.ts) and the browser fixture
 * (`packages/sdk/fixtures/zk-iris.json`): iris compiled to a circuit by `@verity/zk`, real Groth16
 * keys and proofs (snarkjs), records in a signed in-memory log, manifests signed by their
 * publisher. Three bundles:
 * - `genuine`: keys from a phase 2 of two contributors and a beacon over the zk tests' ptau file,
 *   manifest `multi-party`, signed by the publisher; with the audit record of it. A FIXTURE: the
 *   contributions are made here, the ceremony references are placeholders (no chain record).
 * - `ownKeys`: the node's own key pair for the same circuit, under a manifest the node signed
 *   itself (same name and version, its own vk): everything checks but the audit and the registry.
 * - `ownCircuit`: the node's own circuit (not the generator's from the model), its own keys, its own signed
 *   manifest; `audit` is what an auditor recompiling the model finds (another R1CS).
 * snarkjs mixes system randomness into contributions: rebuilt files differ byte for byte, and
 * verify the same.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  addressFromPrivateKey,
  BUNDLE_MEDIA_TYPE,
  type Bundle,
  CODEC_RAW,
  cidForBytes,
  createEd25519Signer,
  createMemoryLog,
  formatCid,
  generateNoteKey,
  type InferenceRecord,
  type Manifest,
  manifestCid,
  paramsDigest,
  sha256,
  signManifest,
  type Trust,
  tensorsDigest,
  tensorsFromJson,
  tensorsToExactJson,
  toChecksumAddress,
  toHex,
  type ZkAudit,
  type ZkFacts,
  type ZkGroth16Proof,
  zkMetadata,
  zkOutputTensors,
  zkVkDigest,
} from '@verity/protocol';
import * as zk from '@verity/zk';

const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../../../examples/models/iris.samples.json', import.meta.url));

/** Placeholder `Ceremony` contract and ids: the fixture's phases are not recorded on any chain. */
const CEREMONY = toChecksumAddress(`0x${'cec0'.padStart(40, '0')}`);
const PHASE2_ID = `0x${'02'.repeat(32)}`;
const BEACON = `0x${'be'.repeat(32)}`;

type MemFile = { type: 'mem'; data?: Uint8Array };
interface Snarkjs {
  zKey: {
    newZKey(r1cs: MemFile, ptau: MemFile, out: MemFile, logger?: unknown): Promise<unknown>;
    contribute(input: MemFile, out: MemFile, name: string, entropy: string, logger?: unknown): Promise<unknown>;
    beacon(
      input: MemFile,
      out: MemFile,
      name: string,
      beacon: string,
      iterationsExp: number,
      logger?: unknown,
    ): Promise<unknown>;
    exportVerificationKey(zkey: MemFile, logger?: unknown): Promise<Record<string, unknown>>;
  };
}
const SNARKJS = 'snarkjs';

/** Keys and parties of the fixture. */
export interface ZkFixtureKeys {
  /** The publisher's account key (signs the genuine manifest; publishes it in ModelRegistry). */
  readonly publisherKey: string;
  /** The node's account key: it logs the records and signs manifests of its own. */
  readonly nodeKey: string;
  /** Phase-2 contributors recorded in the audit (accounts), in order. */
  readonly contributors: readonly string[];
  /** Chain id the manifests' ceremony references name. */
  readonly chainId: number;
}

export interface ZkFixture {
  readonly description: string;
  readonly trust: Trust;
  readonly genuine: { readonly bundle: Bundle; readonly audit: ZkAudit };
  readonly ownKeys: { readonly bundle: Bundle };
  readonly ownCircuit: { readonly bundle: Bundle; readonly audit: ZkAudit };
}

const GENERATED_AT = '2026-12-02T21:00:00Z';

function manifestOf(publisher: string, facts: ZkFacts, generator: string): Manifest {
  const onnx = new Uint8Array(readFileSync(IRIS));
  return {
    schema: 'verity.manifest/v1',
    name: 'iris-zk',
    version: '1.0.0',
    format: 'onnx',
    artifact: { cid: formatCid(cidForBytes(CODEC_RAW, onnx)), size: onnx.length },
    inputs: [{ name: facts.io.input.name, dtype: 'float32', shape: ['batch', facts.io.input.size] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 3] }],
    profiles: ['native'],
    publisher,
    createdAt: GENERATED_AT,
    metadata: zkMetadata(facts, generator),
  };
}

/**
 * Builds the fixture: compiling and proving, seconds on two cores. `ptauDir`: the zk tests’ cache of
 * local powers of tau (one large enough for iris is made there if none is).
 */
export async function buildZkFixture(ptauDir: string, keys: ZkFixtureKeys): Promise<ZkFixture> {
  const snarkjs = (await import(SNARKJS)) as Snarkjs;
  const onnx = new Uint8Array(readFileSync(IRIS));
  const samples = zk.samplesFromJson(JSON.parse(readFileSync(SAMPLES, 'utf8')), 'x');
  const compile = async (optimization: 1 | 2 = 2) => {
    const model = zk.compileModel(onnx, { samples });
    return { model, circuit: await zk.compileCircom(model.circom, { optimization }) };
  };
  const honest = await compile();
  const ptau = await zk.localPowersOfTau(zk.ptauPowerFor(honest.circuit.info), { cacheDir: ptauDir });
  const ptauBytes = new Uint8Array(readFileSync(ptau.path));
  const ptauFile = () => ({ type: 'mem' as const, data: ptauBytes });
  const generator = `${zk.GENERATOR}; ${await zk.circomCompilerVersion()} --O2`;
  const publisher = addressFromPrivateKey(keys.publisherKey);
  const nodeAccount = addressFromPrivateKey(keys.nodeKey);

  /** A phase 2: `contributors` contributions, then (optionally) the beacon. */
  const phase2 = async (r1cs: Uint8Array, names: readonly string[], beacon: boolean) => {
    let zkey: MemFile = { type: 'mem' };
    await snarkjs.zKey.newZKey({ type: 'mem', data: r1cs }, ptauFile(), zkey);
    for (const name of names) {
      const next: MemFile = { type: 'mem' };
      await snarkjs.zKey.contribute(zkey, next, name, `fixture entropy of ${name}`);
      zkey = next;
    }
    if (beacon) {
      const next: MemFile = { type: 'mem' };
      await snarkjs.zKey.beacon(zkey, next, 'beacon', BEACON.slice(2), 10);
      zkey = next;
    }
    const data = zkey.data as Uint8Array;
    return { zkey: data, vk: await snarkjs.zKey.exportVerificationKey({ type: 'mem', data }) };
  };

  const seed = new Uint8Array(32).fill(7);
  const origin = `fixtures.verity.test/log/${nodeAccount.toLowerCase()}`;
  const log = createMemoryLog(createEd25519Signer(origin, seed));
  const trust: Trust = { nodes: [{ address: nodeAccount, logKey: generateNoteKey(origin, seed).verifierKey }] };
  const input = { x: { dtype: 'float32', shape: [1, 4], data: [5.1, 3.5, 1.4, 0.2] } };
  const row = Float32Array.from([5.1, 3.5, 1.4, 0.2]);

  let requests = 0;
  /** Proves, logs a zk record for `signed`'s CID, and returns the bundle. */
  const bundleOf = async (
    built: Awaited<ReturnType<typeof compile>>,
    key: { zkey: Uint8Array; vk: Record<string, unknown> },
    facts: ZkFacts,
    signed: ReturnType<typeof signManifest>,
  ): Promise<Bundle> => {
    const p = await zk.prove(
      built.circuit,
      { zkey: key.zkey, r1csHash: built.circuit.r1csHash, setup: 'local-dev' },
      zk.encodeInput(built.model, row),
    );
    const output = zkOutputTensors(facts.io, p.publicSignals);
    const record: InferenceRecord = {
      version: 1,
      kind: 'zk',
      mode: 'zk',
      model: manifestCid(signed.manifest),
      runtime: { id: 'snarkjs', version: '0.7.6', profile: 'groth16-bn128' },
      inputDigest: toHex(tensorsDigest(tensorsFromJson(input))),
      outputDigest: toHex(tensorsDigest(output)),
      paramsDigest: paramsDigest({}),
      requestId: `zk-fixture-${++requests}`,
      timestamp: Date.parse(GENERATED_AT) + requests * 1000,
      node: nodeAccount,
    };
    const receipt = log.receipt(log.append(record));
    return {
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts: [receipt],
      input,
      output: tensorsToExactJson(output),
      zk: {
        proof: p.proof as ZkGroth16Proof,
        publicSignals: p.publicSignals,
        vk: key.vk,
        setup: facts.setup,
        manifest: signed,
      },
    } as Bundle;
  };
  const auditOf = (cid: string, facts: ZkFacts, r1cs = facts.r1cs): ZkAudit => ({
    version: 1,
    manifestCid: cid,
    r1cs,
    vk: facts.vk,
    setup: facts.setup,
    phase1: facts.phase1,
    phase2: facts.phase2 ?? null,
    contributors: facts.setup === 'multi-party' ? [...keys.contributors] : [],
    beacon: facts.setup === 'multi-party' ? BEACON : null,
    checkedAt: GENERATED_AT,
    generator,
  });

  // The genuine model: a multi-party phase 2 over a ptau file.
  const honestKeys = await phase2(honest.circuit.r1cs, ['alice', 'bob'], true);
  const multiParty = {
    setup: 'multi-party' as const,
    phase1: { kind: 'file' as const, sha256: toHex(sha256(ptauBytes)) },
    phase2: { chainId: keys.chainId, address: CEREMONY, id: PHASE2_ID },
  };
  const factsOf = (built: Awaited<ReturnType<typeof compile>>, vk: unknown): ZkFacts => ({
    params: { fracBits: built.model.params.fracBits, valueBits: built.model.params.valueBits },
    io: built.model.io,
    r1cs: built.circuit.r1csHash,
    vk: zkVkDigest(vk),
    ...multiParty,
  });
  const genuineFacts = factsOf(honest, honestKeys.vk);
  const genuineSigned = signManifest(manifestOf(publisher, genuineFacts, generator), keys.publisherKey);
  const genuine = {
    bundle: await bundleOf(honest, honestKeys, genuineFacts, genuineSigned),
    audit: auditOf(manifestCid(genuineSigned.manifest), genuineFacts),
  };

  // The node's own keys for the same circuit (one contribution: its own), its own signed manifest.
  const nodeKeys = await phase2(honest.circuit.r1cs, ['node'], false);
  const ownKeysFacts = factsOf(honest, nodeKeys.vk);
  const ownKeysSigned = signManifest(manifestOf(nodeAccount, ownKeysFacts, generator), keys.nodeKey);
  const ownKeys = { bundle: await bundleOf(honest, nodeKeys, ownKeysFacts, ownKeysSigned) };

  // The node's own circuit: not the one the generator makes from the model and its zk.params (a
  // stand-in for any circuit of its choosing: the same source compiled at --O1, another R1CS).
  const other = await compile(1);
  const otherKeys = await phase2(other.circuit.r1cs, ['node'], false);
  const otherFacts = factsOf(other, otherKeys.vk);
  const otherSigned = signManifest(manifestOf(nodeAccount, otherFacts, generator), keys.nodeKey);
  const ownCircuit = {
    bundle: await bundleOf(other, otherKeys, otherFacts, otherSigned),
    // What an auditor finds: the model under the manifest's zk.params compiles to the honest R1CS.
    audit: auditOf(manifestCid(otherSigned.manifest), otherFacts, honest.circuit.r1csHash),
  };
  return {
    description:
      'TEST FIXTURE (packages/sdk/src/test-support/zk-fixture.ts): iris zk bundles with real Groth16 proofs. ' +
      'The "multi-party" phase 2 is two local test contributions and a fixed beacon over the zk tests’ local ptau; ' +
      'the ceremony references are placeholders. Never a trust root.',
    trust,
    genuine,
    ownKeys,
    ownCircuit,
  };
}
