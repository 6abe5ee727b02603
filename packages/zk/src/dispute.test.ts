/**
 * A zk-settled dispute on a real anvil (issue 12, docs/protocol.md §15.7): the iris model compiled
 * to a circuit, real Groth16 keys (`local-dev`, for speed) and real proofs; the model published in
 * `ModelRegistry` and bound by its publisher to its key and public layout
 * (`ZkVerifierRegistry.bindModel`); a node's `zk` records logged and anchored, then challenged.
 * - An honest record: the node's proof settles the dispute at once; the challenger loses its bond,
 *   the jurors already drawn lose nothing.
 * - A lying record (the logged output is not the circuit's): the challenger's proof slashes the node,
 *   balances before and after checked.
 * - Each forgery is refused with its own code: a proof of another input, a tampered proof,
 *   malformed signals, another record or input, a model never bound or bound after the record,
 *   an `onnx` record, a settled dispute; a binding by anyone but the publisher, twice, of another
 *   CID, of an unregistered key or of a layout with another number of signals than the key.
 * - The node-side check: the binding on chain equals the manifest's zk facts (`zkBindingMismatch`).
 * Prints the gas of `bindModel` and `settleByProof`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkZkBinding,
  createMemoryTree,
  createTensor,
  encodeRecord,
  encodeTensors,
  type InferenceRecord,
  inclusionProofFromReader,
  isVerityError,
  type Manifest,
  manifestCid,
  paramsDigest,
  parseRecord,
  recordLeafHash,
  rootFromReader,
  sha256,
  type TensorMap,
  toHex,
  type VerityError,
  ZK_FIELD_PRIME,
  ZK_RUNTIME,
  type ZkFacts,
  zkBindingMismatch,
  zkMetadata,
  zkOutputTensors,
  zkVkDigest,
} from '@verity/protocol';
import { type Address, type Hex, parseEther, type TransactionReceipt } from 'viem';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deployment } from '../../contracts/src/deploy.js';
import {
  challengeRecord,
  commitVote,
  drawDisputeJury,
  getDispute,
  getDisputeCredit,
  resolveDispute,
  withdrawDisputeCredit,
} from '../../contracts/src/disputes.js';
import { anchorCheckpoint } from '../../contracts/src/log-anchor.js';
import { publishModel } from '../../contracts/src/model-registry.js';
import { getNode, registerNode } from '../../contracts/src/node-registry.js';
import {
  expectRevert,
  fill32,
  startTestChain,
  TEST_DISPUTE_RULES,
  type TestChain,
} from '../../contracts/src/test-support/chain.js';
import { settleDisputeByProof, type ZkProofCall } from '../../contracts/src/zk-disputes.js';
import { bindZkModel, deployZkVerifier, getZkBinding, registerZkVerifier } from '../../contracts/src/zk-verifiers.js';
import { type CircuitArtifacts, compileCircom } from './circom-compile.js';
import { type CompiledModel, compileModel, encodeInput, samplesFromJson } from './compile-model.js';
import { solidityCallArgs } from './onchain.js';
import { prove, type ZkProof } from './prove.js';
import { type CircuitKeys, setupCircuit } from './setup.js';
import { releaseCurves } from './snarkjs.js';
import { irisOnnx, irisSamplesJson, ptauCacheDir, TEST_ENTROPY } from './test-support/models.js';

const RULES = TEST_DISPUTE_RULES;
const BURN = '0x000000000000000000000000000000000000dEaD' as Address;
/** Account 1 is the node on trial, 2–5 other nodes (jurors), 6 challenges, 7 publishes the model. */
const NODE = 1;
const CHALLENGER = 6;
const PUBLISHER = 7;
const STAKES: Record<number, bigint> = {
  1: parseEther('2'),
  2: parseEther('1'),
  3: parseEther('3'),
  4: parseEther('2'),
  5: parseEther('1.5'),
};
const ROW_A = Float32Array.from([6.5, 3, 5.8, 2.2]);
const ROW_B = Float32Array.from([5.1, 3.5, 1.4, 0.2]);

let keysDir: string;
let chain: TestChain;
let model: CompiledModel;
let circuit: CircuitArtifacts;
let keys: CircuitKeys;
let proofA: ZkProof;
let proofB: ZkProof;
const gas: Record<string, bigint> = {};

beforeAll(async () => {
  keysDir = await mkdtemp(join(tmpdir(), 'verity-zk-dispute-'));
  chain = await startTestChain();
  model = compileModel(irisOnnx(), { samples: samplesFromJson(irisSamplesJson(), 'x') });
  circuit = await compileCircom(model.circom);
  const setup = { cacheDir: keysDir, ptauDir: ptauCacheDir(), entropy: TEST_ENTROPY, minPtauPower: 12 };
  keys = await setupCircuit(circuit, setup);
  proofA = await prove(circuit, keys, encodeInput(model, ROW_A));
  proofB = await prove(circuit, keys, encodeInput(model, ROW_B));
}, 600_000);

afterAll(async () => {
  console.log(
    `zk dispute gas: ${Object.entries(gas)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  await releaseCurves();
  await chain?.stop();
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

const hex = (b: Uint8Array): Hex => `0x${toHex(b)}`;
const inputOf = (row: Float32Array): TensorMap => ({ x: createTensor('float32', [1, 4], row) }) as TensorMap;
/** A well-formed key that is not the circuit's: its first two IC points swapped. */
function otherKey(): Record<string, unknown> {
  const vk = keys.verificationKey as unknown as Record<string, unknown>;
  const [ic0, ic1, ...rest] = vk.IC as unknown[];
  return { ...vk, IC: [ic1, ic0, ...rest] };
}
const call = (p: ZkProof): ZkProofCall => solidityCallArgs(p.proof, p.publicSignals) as ZkProofCall;

function factsOf(vk: unknown): ZkFacts {
  return {
    params: { fracBits: model.params.fracBits, valueBits: model.params.valueBits },
    io: model.io,
    r1cs: circuit.r1csHash,
    vk: zkVkDigest(vk),
    setup: 'local-dev',
    phase1: { kind: 'local-dev' },
  };
}

/** The model's manifest (version 1.0.0 is bound; 2.0.0, same circuit, is published unbound). */
function manifestOf(version: string, facts: ZkFacts): Manifest {
  return {
    schema: 'verity.manifest/v1',
    name: 'iris-zk',
    version,
    format: 'onnx',
    artifact: { cid: 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e', size: 11 },
    inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 3] }],
    profiles: ['native'],
    publisher: chain.address(PUBLISHER),
    createdAt: '2026-12-03T07:00:00Z',
    metadata: zkMetadata(facts),
  };
}

interface World {
  d: Deployment;
  disputes: Address;
  manifest: Manifest;
  cid: string;
  unboundCid: string;
  boundAt: number;
}
let w: World;

beforeEach(async () => {
  const d = await chain.deploy(RULES);
  for (const i of [1, 2, 3, 4, 5]) {
    await registerNode(chain.clients(i), {
      nodeRegistry: d.contracts.nodeRegistry,
      logKey: fill32(i),
      origin: `verity.test/node-${i}`,
      endpoint: `http://127.0.0.1:${8000 + i}`,
      capabilities: ['mode:zk'],
      stake: STAKES[i] as bigint,
    });
  }
  // Anyone deploys and registers the verifier.
  const { address } = await deployZkVerifier(chain.clients(8), { vk: keys.verificationKey });
  await registerZkVerifier(chain.clients(8), { zkVerifiers: d.contracts.zkVerifiers, verifier: address });
  const manifest = manifestOf('1.0.0', factsOf(keys.verificationKey));
  const cid = manifestCid(manifest);
  const unboundCid = manifestCid(manifestOf('2.0.0', factsOf(keys.verificationKey)));
  const publisher = chain.clients(PUBLISHER);
  await publishModel(publisher, {
    modelRegistry: d.contracts.modelRegistry,
    name: 'iris-zk',
    version: '1.0.0',
    manifestCid: cid,
  });
  await publishModel(publisher, {
    modelRegistry: d.contracts.modelRegistry,
    name: 'iris-zk',
    version: '2.0.0',
    manifestCid: unboundCid,
  });
  const bound = await bindZkModel(publisher, {
    zkVerifiers: d.contracts.zkVerifiers,
    name: 'iris-zk',
    version: '1.0.0',
    manifestCid: cid,
    vk: keys.verificationKey,
    io: model.io,
  });
  gas.bindModel = bound.gasUsed;
  const boundAt = Number((await chain.publicClient.getBlock({ blockNumber: bound.blockNumber })).timestamp);
  w = { d, disputes: d.contracts.disputes as Address, manifest, cid, unboundCid, boundAt };
});

const outputDigest = (p: ZkProof) => sha256(encodeTensors(zkOutputTensors(model.io, p.publicSignals)));
/** A digest that is no output of the circuit for these rows. */
const WRONG = sha256(new TextEncoder().encode('not the circuit’s output'));

function record(requestId: string, over: Partial<InferenceRecord> & { row: Float32Array; output: Uint8Array }) {
  const { row, output, ...rest } = over;
  return parseRecord({
    version: 1,
    kind: 'zk',
    mode: 'zk',
    model: w.cid,
    runtime: { id: ZK_RUNTIME.id, version: '0.7.6', profile: ZK_RUNTIME.profile },
    inputDigest: toHex(sha256(encodeTensors(inputOf(row)))),
    outputDigest: toHex(output),
    paramsDigest: paramsDigest({}),
    requestId,
    timestamp: w.boundAt * 1000,
    node: chain.address(NODE),
    ...rest,
  });
}

/**
 * The node's log, anchored at its size: `honest` (row A, the circuit's output), `lie` (row A, a
 * wrong output), `onnx` (an onnx record of row A), `unbound` (a zk record of the unbound version),
 * `early` (stamped a second before the binding, anchored after it).
 */
async function nodeLog() {
  const honest = outputDigest(proofA);
  const records = {
    honest: record('zk-honest', { row: ROW_A, output: honest }),
    lie: record('zk-lie', { row: ROW_A, output: WRONG }),
    onnx: record('onnx-row', {
      row: ROW_A,
      output: WRONG,
      kind: 'onnx',
      mode: 'audited',
      runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    }),
    unbound: record('zk-unbound', { row: ROW_A, output: WRONG, model: w.unboundCid }),
    early: record('zk-early', { row: ROW_A, output: WRONG, timestamp: (w.boundAt - 1) * 1000 }),
  };
  const list = Object.values(records);
  const tree = createMemoryTree(list.map(recordLeafHash));
  await anchorCheckpoint(chain.clients(NODE), {
    logAnchor: w.d.contracts.logAnchor,
    treeSize: list.length,
    rootHash: rootFromReader(tree, list.length),
    consistency: [],
  });
  /** Challenges a record of the log from the challenger's account. */
  const challenge = async (name: keyof typeof records, claimedOutput: Uint8Array) => {
    const index = Object.keys(records).indexOf(name);
    const r = records[name];
    const bytes = encodeRecord(r);
    const { id, receipt } = await challengeRecord(chain.clients(CHALLENGER), {
      disputes: w.disputes,
      record: bytes,
      leafIndex: index,
      treeSize: list.length,
      proof: inclusionProofFromReader(tree, index, list.length),
      input: encodeTensors(inputOf(ROW_A)),
      claimedOutput,
    });
    return { id, bytes, receipt };
  };
  return { records, honest, challenge };
}

const stake = async (i: number) =>
  (await getNode(chain.publicClient, { nodeRegistry: w.d.contracts.nodeRegistry, node: chain.address(i) }))?.stake;
const credit = (account: Address) => getDisputeCredit(chain.publicClient, { disputes: w.disputes, account });
const balance = (address: Address) => chain.publicClient.getBalance({ address });
const fee = (r: TransactionReceipt) => r.gasUsed * r.effectiveGasPrice;
const INPUT_A = () => encodeTensors(inputOf(ROW_A));

describe('a zk-settled dispute', () => {
  it('an honest zk record: the node’s proof settles at once, the challenger loses its bond, the jurors nothing', async () => {
    const log = await nodeLog();
    const challengerBefore = await balance(chain.address(CHALLENGER));
    const { id, bytes, receipt: challenged } = await log.challenge('honest', WRONG);
    // The jury is drawn already: it is released without penalty.
    await chain.testClient.mine({ blocks: 1 });
    const drawn = await drawDisputeJury(chain.clients(8), { disputes: w.disputes, id });
    const jurorStakes = await Promise.all([2, 3, 4, 5].map(stake));
    const juror = [2, 3, 4, 5].find((i) => drawn.jurors.includes(chain.address(i))) as number;
    await commitVote(chain.clients(juror), { disputes: w.disputes, id, outputDigest: WRONG, salt: fill32(9) });

    const burnBefore = await balance(BURN);
    const settled = await settleDisputeByProof(chain.clients(NODE), {
      disputes: w.disputes,
      id,
      record: bytes,
      input: INPUT_A(),
      proof: call(proofA),
    });
    gas.settleChallengeFailed = settled.receipt.gasUsed;
    expect(settled.outcome).toBe('challenge-failed');
    expect(settled.provenOutput).toBe(hex(log.honest));
    expect(settled.slashed).toBe(0n);
    // The node gets the bond less the jurors' share, which is burned (no juror decided).
    const jurorsShare = (RULES.challengeBond * BigInt(RULES.jurorShareBps)) / 10_000n;
    expect(settled.burned).toBe(jurorsShare);
    expect(await credit(chain.address(NODE))).toBe(RULES.challengeBond - jurorsShare);
    expect(await credit(chain.address(CHALLENGER))).toBe(0n);
    expect((await balance(BURN)) - burnBefore).toBe(jurorsShare);
    expect(await balance(chain.address(CHALLENGER))).toBe(challengerBefore - RULES.challengeBond - fee(challenged));
    expect(await stake(NODE)).toBe(STAKES[NODE]);
    expect(await Promise.all([2, 3, 4, 5].map(stake))).toEqual(jurorStakes);
    const state = await getDispute(chain.publicClient, { disputes: w.disputes, id });
    expect({ phase: state.phase, outcome: state.outcome }).toEqual({ phase: 'resolved', outcome: 'challenge-failed' });
    // Settled: nothing more happens to it.
    await expectRevert(
      settleDisputeByProof(chain.clients(NODE), {
        disputes: w.disputes,
        id,
        record: bytes,
        input: INPUT_A(),
        proof: call(proofA),
      }),
      'DISPUTE_WRONG_PHASE',
      'WrongPhase',
    );
    await expectRevert(resolveDispute(chain.clients(NODE), { disputes: w.disputes, id }), 'DISPUTE_WRONG_PHASE');
    await expectRevert(
      commitVote(chain.clients(juror), { disputes: w.disputes, id, outputDigest: WRONG, salt: fill32(8) }),
      'DISPUTE_WRONG_PHASE',
    );
  });

  it('a lying zk record: the challenger’s proof slashes the node', async () => {
    const log = await nodeLog();
    const { id, bytes } = await log.challenge('lie', log.honest);
    const before = {
      node: await stake(NODE),
      burn: await balance(BURN),
      challenger: await balance(chain.address(CHALLENGER)),
    };
    const settled = await settleDisputeByProof(chain.clients(CHALLENGER), {
      disputes: w.disputes,
      id,
      record: bytes,
      input: INPUT_A(),
      proof: call(proofA),
    });
    gas.settleNodeLied = settled.receipt.gasUsed;
    expect(settled.outcome).toBe('node-lied');
    expect(settled.provenOutput).toBe(hex(log.honest));
    expect(settled.slashed).toBe(RULES.slashAmount);
    const reward = (RULES.slashAmount * BigInt(RULES.challengerShareBps)) / 10_000n;
    expect(settled.challengerPaid).toBe(RULES.challengeBond + reward);
    expect(settled.burned).toBe(RULES.slashAmount - reward);
    // Node 2 → 1 ETH; challenger credited bond + 40 % of the slash; the rest (60 %) burned.
    expect(await stake(NODE)).toBe((before.node as bigint) - RULES.slashAmount);
    expect((await balance(BURN)) - before.burn).toBe(RULES.slashAmount - reward);
    const withdrawn = await withdrawDisputeCredit(chain.clients(CHALLENGER), { disputes: w.disputes });
    expect(await balance(chain.address(CHALLENGER))).toBe(
      before.challenger - fee(settled.receipt) + RULES.challengeBond + reward - fee(withdrawn),
    );
    // The record is never slashed again.
    await expectRevert(log.challenge('lie', log.honest), 'DISPUTE_CONFLICT', 'RecordAlreadySlashed');
  });
});

describe('forgeries are refused', () => {
  it('a proof of another input, a tampered proof, malformed signals, another record or input', async () => {
    const log = await nodeLog();
    const { id, bytes } = await log.challenge('honest', WRONG);
    const settle = (over: { record?: Uint8Array; input?: Uint8Array; proof?: ZkProofCall }) =>
      settleDisputeByProof(chain.clients(CHALLENGER), {
        disputes: w.disputes,
        id,
        record: over.record ?? bytes,
        input: over.input ?? INPUT_A(),
        proof: over.proof ?? call(proofA),
      });
    // A valid proof, but of row B: its input signals are not the challenge's input.
    expect(await expectRevert(settle({ proof: call(proofB) }), 'DISPUTE_ZK_INPUT_MISMATCH', 'ZkInputMismatch')).toEqual(
      ['0'],
    );
    // Proof A with row B's input signals (and its outputs): refused as another input first.
    const [a, b, c, signals] = call(proofA);
    const mixed = [...signals.slice(0, 3), ...call(proofB)[3].slice(3)];
    await expectRevert(settle({ proof: [a, b, c, mixed] }), 'DISPUTE_ZK_INPUT_MISMATCH', 'ZkInputMismatch');
    // Proof A with another output signal: the pairing check fails.
    const otherOut = [(signals[0] as bigint) + 1n, ...signals.slice(1)];
    await expectRevert(settle({ proof: [a, b, c, otherOut] }), 'DISPUTE_ZK_PROOF_INVALID', 'ZkProofInvalid');
    // A tampered point.
    await expectRevert(
      settle({ proof: [[a[0], a[1]], b, [c[0], (c[1] + 1n) % ZK_FIELD_PRIME], signals] }),
      'DISPUTE_ZK_PROOF_INVALID',
      'ZkProofInvalid',
    );
    // Malformed signals: one short, one too many, one ≥ p.
    for (const bad of [signals.slice(1), [...signals, 0n], [ZK_FIELD_PRIME, ...signals.slice(1)]]) {
      await expectRevert(settle({ proof: [a, b, c, bad] }), 'DISPUTE_ZK_SIGNALS_INVALID', 'ZkSignalsMalformed');
    }
    // Another record's bytes, another input's bytes.
    await expectRevert(
      settle({ record: encodeRecord(log.records.lie) }),
      'DISPUTE_RECORD_INVALID',
      'RecordNotDisputed',
    );
    await expectRevert(
      settle({ input: encodeTensors(inputOf(ROW_B)) }),
      'DISPUTE_INPUT_MISMATCH',
      'InputDigestMismatch',
    );
    // Unknown dispute.
    await expectRevert(
      settleDisputeByProof(chain.clients(CHALLENGER), {
        disputes: w.disputes,
        id: 99n,
        record: bytes,
        input: INPUT_A(),
        proof: call(proofA),
      }),
      'DISPUTE_NOT_FOUND',
    );
    // Nothing of this settled it.
    expect((await getDispute(chain.publicClient, { disputes: w.disputes, id })).phase).toBe('awaiting-draw');
  });

  it('an onnx record, a model never bound', async () => {
    const log = await nodeLog();
    for (const [name, code, revert] of [
      ['onnx', 'DISPUTE_ZK_NOT_ZK_RECORD', 'NotZkRecord'],
      ['unbound', 'DISPUTE_ZK_UNBOUND', 'ZkModelUnbound'],
    ] as const) {
      const { id, bytes } = await log.challenge(name, log.honest);
      await expectRevert(
        settleDisputeByProof(chain.clients(CHALLENGER), {
          disputes: w.disputes,
          id,
          record: bytes,
          input: INPUT_A(),
          proof: call(proofA),
        }),
        code,
        revert,
      );
      // The jury path is still open for it.
      expect((await getDispute(chain.publicClient, { disputes: w.disputes, id })).phase).toBe('awaiting-draw');
    }
  });

  it('the binding counts from the record’s first anchor: a backdated lie is settled, a record anchored before the binding is not', async () => {
    // Stamped a second before the binding but anchored after it: the node's timestamp does not
    // take the record out of the proof's reach.
    const log = await nodeLog();
    const early = await log.challenge('early', log.honest);
    const settled = await settleDisputeByProof(chain.clients(CHALLENGER), {
      disputes: w.disputes,
      id: early.id,
      record: early.bytes,
      input: INPUT_A(),
      proof: call(proofA),
    });
    expect(settled.outcome).toBe('node-lied');
    // Another node's zk record of version 2.0.0, anchored while that version was unbound; its
    // publisher binds it afterwards (a later block time): the record was made under no binding.
    const other = 2;
    const r = record('zk-before-binding', {
      row: ROW_A,
      output: WRONG,
      model: w.unboundCid,
      node: chain.address(other),
    });
    const leaf = recordLeafHash(r);
    await anchorCheckpoint(chain.clients(other), {
      logAnchor: w.d.contracts.logAnchor,
      treeSize: 1,
      rootHash: leaf,
      consistency: [],
    });
    await chain.testClient.increaseTime({ seconds: 5 });
    await bindZkModel(chain.clients(PUBLISHER), {
      zkVerifiers: w.d.contracts.zkVerifiers,
      name: 'iris-zk',
      version: '2.0.0',
      manifestCid: w.unboundCid,
      vk: keys.verificationKey,
      io: model.io,
    });
    const bytes = encodeRecord(r);
    const { id } = await challengeRecord(chain.clients(CHALLENGER), {
      disputes: w.disputes,
      record: bytes,
      leafIndex: 0,
      treeSize: 1,
      proof: [],
      input: INPUT_A(),
      claimedOutput: log.honest,
    });
    await expectRevert(
      settleDisputeByProof(chain.clients(CHALLENGER), {
        disputes: w.disputes,
        id,
        record: bytes,
        input: INPUT_A(),
        proof: call(proofA),
      }),
      'DISPUTE_ZK_UNBOUND',
      'ZkModelUnbound',
    );
    expect((await getDispute(chain.publicClient, { disputes: w.disputes, id })).phase).toBe('awaiting-draw');
  });

  it('bindings: only the publisher, once, of a registered key with as many signals as the layout', async () => {
    const zkVerifiers = w.d.contracts.zkVerifiers;
    const bind = (i: number, over: Partial<Parameters<typeof bindZkModel>[1]> = {}) =>
      bindZkModel(chain.clients(i), {
        zkVerifiers,
        name: 'iris-zk',
        version: '2.0.0',
        manifestCid: w.unboundCid,
        vk: keys.verificationKey,
        io: model.io,
        ...over,
      });
    await expectRevert(bind(NODE), 'UNAUTHORIZED', 'NotModelPublisher');
    await expectRevert(bind(PUBLISHER, { manifestCid: w.cid }), 'ZK_BINDING_INVALID', 'ManifestDigestMismatch');
    // The key takes 7 signals; a layout of 5 inputs describes 8.
    const wider = { ...model.io, input: { ...model.io.input, shape: [5], size: 5 } };
    expect(await expectRevert(bind(PUBLISHER, { io: wider }), 'ZK_BINDING_INVALID', 'LayoutMismatch')).toEqual([
      '7',
      '8',
    ]);
    await expectRevert(
      bind(PUBLISHER, { version: '1.0.0', manifestCid: w.cid }),
      'ZK_BINDING_CONFLICT',
      'BindingExists',
    );
    await expectRevert(bind(PUBLISHER, { version: '9.9.9' }), 'MODEL_NOT_FOUND', 'UnknownVersion');
    // A key nobody registered a verifier for.
    await expectRevert(bind(PUBLISHER, { vk: otherKey() }), 'ZK_VERIFIER_UNREGISTERED', 'VerifierUnregistered');
  });
});

describe('the node-side check', () => {
  it('the binding on chain is exactly the manifest’s zk facts and key', async () => {
    const binding = await getZkBinding(chain.publicClient, {
      zkVerifiers: w.d.contracts.zkVerifiers,
      manifestCid: w.cid,
    });
    if (binding === undefined) throw new Error('no binding');
    expect(binding.publisher).toBe(chain.address(PUBLISHER));
    expect(binding.boundAt).toBe(w.boundAt);
    expect(zkBindingMismatch(binding, w.manifest, keys.verificationKey)).toEqual([]);
    // Another key than the manifest's (and than the binding's).
    expect(zkBindingMismatch(binding, w.manifest, otherKey())).toEqual(['vk', 'vkKey']);
    // A manifest whose layout differs (other fixed-point bits), by another publisher.
    const other = manifestOf('1.0.0', {
      ...factsOf(keys.verificationKey),
      io: { ...model.io, fracBits: 12 },
      params: { fracBits: 12, valueBits: model.params.valueBits },
    });
    expect(zkBindingMismatch(binding, { ...other, publisher: chain.address(NODE) }, keys.verificationKey)).toEqual([
      'layout',
      'publisher',
    ]);
    // The unbound version has none.
    const none = await getZkBinding(chain.publicClient, {
      zkVerifiers: w.d.contracts.zkVerifiers,
      manifestCid: w.unboundCid,
    });
    expect(none).toBeUndefined();
    // The node's check, as a refusal with its code.
    checkZkBinding(binding, w.manifest, keys.verificationKey);
    for (const [b, vk, mismatches] of [
      [none, keys.verificationKey, ['unbound']],
      [binding, otherKey(), ['vk', 'vkKey']],
    ] as const) {
      let error: unknown;
      try {
        checkZkBinding(b, w.manifest, vk);
      } catch (e) {
        error = e;
      }
      expect(isVerityError(error, 'ZK_BINDING_MISMATCH')).toBe(true);
      expect((error as VerityError).details.mismatches).toEqual(mismatches);
    }
  });
});
