/**
 * Groth16 end to end on the iris example and the 64→64→16 MLP: local-dev setup (powers of tau
 * cached across runs, keys per run), proofs whose public outputs equal the TypeScript fixed-point
 * evaluation exactly, every iris test row proved with the float model's class, and named
 * negative fixtures (tampered proof, public signal, verification key) all rejected.
 *
 * The first run generates a 2^12 powers of tau (~1 min on 2 cores) into `ptauCacheDir()`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CircuitArtifacts, compileCircom } from './circom-compile.js';
import {
  type CompiledModel,
  compileModel,
  decodePublicSignals,
  encodeInput,
  evaluateModel,
  samplesFromJson,
} from './compile-model.js';
import { encodeSignals, FIELD_PRIME } from './field.js';
import { computeWitness, type Groth16Proof, prove, proveWitness, verifyProof, type ZkProof } from './prove.js';
import { checkWitness, parseR1cs, parseSym } from './r1cs.js';
import { type CircuitKeys, setupCircuit } from './setup.js';
import { releaseCurves } from './snarkjs.js';
import {
  irisOnnx,
  irisSamplesJson,
  irisTestRows,
  MLP,
  mlpOnnx,
  ptauCacheDir,
  runOrt,
  TEST_ENTROPY,
  uniformRows,
} from './test-support/models.js';

interface Ready {
  model: CompiledModel;
  circuit: CircuitArtifacts;
  keys: CircuitKeys;
}

let keysDir: string;
let iris: Ready;
let mlp: Ready;

async function ready(onnx: Uint8Array, samples: number[][]): Promise<Ready> {
  const model = compileModel(onnx, { samples });
  const circuit = await compileCircom(model.circom);
  // One 2^12 ptau serves both circuits (iris alone would need 2^10).
  const keys = await setupCircuit(circuit, {
    cacheDir: keysDir,
    ptauDir: ptauCacheDir(),
    entropy: TEST_ENTROPY,
    minPtauPower: 12,
  });
  return { model, circuit, keys };
}

/** The public signals a proof for `row` must carry, from the TypeScript evaluation. */
function expectedSignals(r: Ready, row: readonly number[]): string[] {
  const decoded = evaluateModel(r.model, row);
  const outputs = r.model.io.outputs.flatMap((o) => decoded.fixedOutputs[o.name] as bigint[]);
  return encodeSignals([...outputs, ...decoded.input]);
}

beforeAll(async () => {
  keysDir = await mkdtemp(join(tmpdir(), 'verity-zk-keys-'));
  mlp = await ready(mlpOnnx(), uniformRows(16, MLP.inputs, 1));
  iris = await ready(irisOnnx(), samplesFromJson(irisSamplesJson(), 'x'));
}, 600_000);

afterAll(async () => {
  await releaseCurves();
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

describe('setup', () => {
  it('makes local-dev keys sized to the circuit, and finds them in the cache the second time', async () => {
    expect(mlp.keys).toMatchObject({ setup: 'local-dev', ptauPower: 12, r1csHash: mlp.circuit.r1csHash });
    expect(mlp.keys.verificationKey).toMatchObject({ protocol: 'groth16', curve: 'bn128', nPublic: 80 });
    expect(iris.keys.verificationKey.nPublic).toBe(7);
    const again = await setupCircuit(mlp.circuit, { cacheDir: keysDir, ptauDir: ptauCacheDir() });
    // (Buffer.equals: a deep equality over 2.4 MB of bytes takes seconds.)
    expect(Buffer.from(again.zkey).equals(Buffer.from(mlp.keys.zkey))).toBe(true);
    expect(again.verificationKey).toEqual(mlp.keys.verificationKey);
  });
});

describe('proofs', () => {
  it('MLP: public signals equal the TypeScript fixed-point evaluation; the proof verifies and is < 1 KB', async () => {
    for (const row of uniformRows(3, MLP.inputs, 5)) {
      const { proof, publicSignals, setup, r1csHash } = await prove(mlp.circuit, mlp.keys, encodeInput(mlp.model, row));
      expect({ setup, r1csHash }).toEqual({ setup: 'local-dev', r1csHash: mlp.circuit.r1csHash });
      expect(publicSignals).toEqual(expectedSignals(mlp, row));
      expect(await verifyProof(mlp.keys.verificationKey, proof, publicSignals)).toBe(true);
      expect(JSON.stringify(proof).length).toBeLessThan(1024);
    }
  });

  it('iris, the whole test set: every row proved and verified, with the class of onnxruntime’s float model', async () => {
    const rows = irisTestRows();
    const labels = await runOrt(
      irisOnnx(),
      'x',
      [4],
      rows.map((r) => r.x),
      'label',
    );
    let agree = 0;
    for (const [i, row] of rows.entries()) {
      const { proof, publicSignals } = await prove(iris.circuit, iris.keys, encodeInput(iris.model, row.x));
      expect(publicSignals).toEqual(expectedSignals(iris, row.x));
      expect(await verifyProof(iris.keys.verificationKey, proof, publicSignals)).toBe(true);
      if (decodePublicSignals(iris.model.io, publicSignals).head.label?.[0] === labels[i]?.[0]) agree++;
    }
    expect(agree).toBe(rows.length);
  }, 120_000);
});

describe('tampering is rejected', () => {
  let good: ZkProof;

  beforeAll(async () => {
    good = await prove(iris.circuit, iris.keys, encodeInput(iris.model, [6.5, 3, 5.8, 2.2]));
    expect(await verifyProof(iris.keys.verificationKey, good.proof, good.publicSignals)).toBe(true);
  });

  const clone = <T>(v: T): T => structuredClone(v);
  const bump = (s: string) => ((BigInt(s) + 1n) % FIELD_PRIME).toString();

  // Each fixture: what is wrong with it. verifyProof must answer false (never throw).
  const proofFixtures: { name: string; tamper: (p: Groth16Proof) => unknown }[] = [
    {
      name: 'pi_a x coordinate + 1 (not on the curve)',
      tamper: (p) => ({ ...p, pi_a: [bump(p.pi_a[0] as string), ...p.pi_a.slice(1)] }),
    },
    {
      name: 'pi_a negated (a valid point, the wrong one)',
      tamper: (p) => ({ ...p, pi_a: [p.pi_a[0], negate(p.pi_a[1] as string), p.pi_a[2]] }),
    },
    { name: 'pi_c replaced by pi_a', tamper: (p) => ({ ...p, pi_c: clone(p.pi_a) }) },
    {
      name: 'pi_b coordinates of x swapped',
      tamper: (p) => ({ ...p, pi_b: [[p.pi_b[0]?.[1], p.pi_b[0]?.[0]], ...p.pi_b.slice(1)] }),
    },
    { name: 'pi_c missing', tamper: (p) => ({ ...p, pi_c: undefined }) },
    { name: 'not a proof at all', tamper: () => 'proof' },
    { name: 'coordinates as numbers, not strings', tamper: (p) => ({ ...p, pi_a: p.pi_a.map(Number) }) },
  ];
  for (const f of proofFixtures) {
    it(`proof: ${f.name}`, async () => {
      const tampered = f.tamper(clone(good.proof)) as Groth16Proof;
      expect(await verifyProof(iris.keys.verificationKey, tampered, good.publicSignals)).toBe(false);
    });
  }

  const signalFixtures: { name: string; tamper: (s: string[]) => string[] }[] = [
    { name: 'an output (logit) + 1 unit: another answer', tamper: (s) => [bump(s[0] as string), ...s.slice(1)] },
    { name: 'the winning logit swapped with another', tamper: (s) => [s[2], s[1], s[0], ...s.slice(3)] as string[] },
    {
      name: 'an input changed: the proof is about another question',
      tamper: (s) => [...s.slice(0, 3), bump(s[3] as string), ...s.slice(4)],
    },
    {
      name: 'a value ≥ p (non-canonical encoding of the same element)',
      tamper: (s) => [(BigInt(s[0] as string) + FIELD_PRIME).toString(), ...s.slice(1)],
    },
    { name: 'one signal missing', tamper: (s) => s.slice(1) },
    { name: 'one signal too many', tamper: (s) => [...s, '0'] },
    { name: 'a negative number instead of p − |v|', tamper: (s) => ['-1', ...s.slice(1)] },
  ];
  for (const f of signalFixtures) {
    it(`public signals: ${f.name}`, async () => {
      expect(await verifyProof(iris.keys.verificationKey, good.proof, f.tamper([...good.publicSignals]))).toBe(false);
    });
  }

  const keyFixtures: { name: string; tamper: (vk: Record<string, unknown>) => unknown }[] = [
    {
      name: 'IC[1] and IC[2] swapped (inputs bound to the wrong positions)',
      tamper: (vk) => ({ ...vk, IC: swap(vk.IC as unknown[], 1, 2) }),
    },
    { name: 'vk_alpha_1 replaced by IC[0]', tamper: (vk) => ({ ...vk, vk_alpha_1: (vk.IC as unknown[])[0] }) },
    { name: 'vk_delta_2 replaced by vk_gamma_2', tamper: (vk) => ({ ...vk, vk_delta_2: vk.vk_gamma_2 }) },
    { name: 'nPublic off by one', tamper: (vk) => ({ ...vk, nPublic: (vk.nPublic as number) + 1 }) },
    { name: 'the MLP’s key', tamper: () => mlp.keys.verificationKey },
  ];
  for (const f of keyFixtures) {
    it(`verification key: ${f.name}`, async () => {
      const vk = f.tamper(clone(iris.keys.verificationKey)) as CircuitKeys['verificationKey'];
      expect(await verifyProof(vk, good.proof, good.publicSignals)).toBe(false);
    });
  }

  it('a proof made from a doctored witness (logit 0 raised by 1000 units) fails for the signals it carries', async () => {
    const witness = await computeWitness(iris.circuit.wasm, encodeInput(iris.model, [6.5, 3, 5.8, 2.2]));
    const r1cs = parseR1cs(iris.circuit.r1cs);
    const sym = parseSym(iris.circuit.sym);
    const out0 = sym.get('main.out[0]') as number;
    witness[out0] = ((witness[out0] as bigint) + 1000n) % FIELD_PRIME;
    expect(checkWitness(r1cs, witness).ok).toBe(false);
    const forged = await proveWitness(iris.keys.zkey, witness);
    expect(forged.publicSignals[0]).toBe(witness[out0]?.toString());
    expect(await verifyProof(iris.keys.verificationKey, forged.proof, forged.publicSignals)).toBe(false);
  });
});

/** The y coordinate of −P on BN254's base field. */
function negate(y: string): string {
  const q = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;
  return ((q - BigInt(y)) % q).toString();
}

function swap<T>(list: readonly T[], i: number, j: number): T[] {
  const copy = [...list];
  [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  return copy;
}
