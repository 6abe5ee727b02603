/**
 * On-chain verification on a real anvil: the iris circuit's Solidity verifier (snarkjs template,
 * solc-js), deployed and called as a view with a real proof (true) and tampered ones (false: the
 * generated `verifyProof` never reverts on bad points or signals, it answers false). Prints the
 * deployment gas and the `estimateGas` of a verifying call.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Abi, type Address, encodeFunctionData } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { type CircuitArtifacts, compileCircom } from './circom-compile.js';
import { type CompiledModel, compileModel, encodeInput, samplesFromJson } from './compile-model.js';
import { FIELD_PRIME } from './field.js';
import { compileVerifier, type SolidityCallArgs, solidityCallArgs, solidityVerifier, verifierAbi } from './onchain.js';
import { type Groth16Proof, prove, verifyProof, type ZkProof } from './prove.js';
import { type CircuitKeys, setupCircuit } from './setup.js';
import { loadSnarkjs, releaseCurves } from './snarkjs.js';
import { irisOnnx, irisSamplesJson, ptauCacheDir, TEST_ENTROPY } from './test-support/models.js';

let keysDir: string;
let model: CompiledModel;
let circuit: CircuitArtifacts;
let keys: CircuitKeys;
let chain: TestChain;
let source: string;
let abi: Abi;
let address: Address;
let deployGas: bigint;
let good: ZkProof;

beforeAll(async () => {
  keysDir = await mkdtemp(join(tmpdir(), 'verity-zk-onchain-'));
  model = compileModel(irisOnnx(), { samples: samplesFromJson(irisSamplesJson(), 'x') });
  circuit = await compileCircom(model.circom);
  keys = await setupCircuit(circuit, {
    cacheDir: keysDir,
    ptauDir: ptauCacheDir(),
    entropy: TEST_ENTROPY,
    minPtauPower: 12,
  });
  chain = await startTestChain();
  source = await solidityVerifier(keys);
  const compiled = compileVerifier(source);
  abi = compiled.abi as Abi;
  const { walletClient } = chain.clients(0);
  const hash = await walletClient.deployContract({
    abi,
    bytecode: compiled.bytecode,
    args: [],
    account: walletClient.account,
    chain: walletClient.chain,
  });
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  expect(receipt.status).toBe('success');
  address = receipt.contractAddress as Address;
  deployGas = receipt.gasUsed;
  good = await prove(circuit, keys, encodeInput(model, [6.5, 3, 5.8, 2.2]));
}, 600_000);

afterAll(async () => {
  await releaseCurves();
  await chain?.stop();
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

const verifyOnChain = (args: SolidityCallArgs, gas?: bigint) =>
  chain.publicClient.readContract({
    address,
    abi,
    functionName: 'verifyProof',
    args: args as unknown as unknown[],
    ...(gas === undefined ? {} : { gas }),
  });

describe('the Solidity verifier', () => {
  it('is deterministic for a verification key, and carries its constants and arity', async () => {
    expect(await solidityVerifier(keys)).toBe(source);
    expect(source).toContain('contract Groth16Verifier');
    expect(source).toContain('uint[7] calldata _pubSignals');
    const alpha = (keys.verificationKey.vk_alpha_1 as string[])[0] as string;
    expect(source).toContain(`uint256 constant alphax  = ${alpha};`);
    expect(compileVerifier(source).bytecode).toBe(compileVerifier(source).bytecode);
  });

  it('has the ABI verifierAbi(nPublic) describes', () => {
    expect(abi).toEqual(verifierAbi(keys.verificationKey.nPublic));
  });

  it('call arguments equal snarkjs’ exportSolidityCallData (pi_b coordinates swapped)', async () => {
    const snarkjs = await loadSnarkjs();
    const text = await snarkjs.groth16.exportSolidityCallData(good.proof, good.publicSignals);
    const parsed = JSON.parse(`[${text}]`, (_k, v: unknown) => (typeof v === 'string' ? BigInt(v) : v));
    expect(solidityCallArgs(good.proof, good.publicSignals)).toEqual(parsed);
    const b = solidityCallArgs(good.proof, good.publicSignals)[1];
    expect(b[0][0]).toBe(BigInt(good.proof.pi_b[0]?.[1] as string));
  });

  it('refuses what cannot be ABI-encoded', () => {
    expect(() => solidityCallArgs({ ...good.proof, pi_c: [] }, good.publicSignals)).toThrow(/pi_c/);
    expect(() => solidityCallArgs(good.proof, ['-1'])).toThrow(/decimal/);
    expect(() => solidityCallArgs(good.proof, [(1n << 256n).toString()])).toThrow(/uint256/);
  });
});

describe('verification on anvil', () => {
  it('a real proof verifies (gas reported: as a transaction, and the least gas a call needs to answer true)', async () => {
    const args = solidityCallArgs(good.proof, good.publicSignals);
    expect(await verifyOnChain(args)).toBe(true);
    const data = encodeFunctionData({ abi, functionName: 'verifyProof', args: args as unknown as unknown[] });
    // The verifier never reverts: short of gas, its precompile calls fail and it answers false.
    // So eth_estimateGas (the least gas with no revert) finds the gas of a `false`, not of a check.
    const estimate = await chain.publicClient.estimateGas({ to: address, data, account: chain.address(1) });
    expect(await verifyOnChain(args, estimate)).toBe(false);
    // The real cost: a transaction with ample gas (21,000 intrinsic + calldata included)...
    const { walletClient } = chain.clients(1);
    const hash = await walletClient.sendTransaction({
      to: address,
      data,
      gas: 1_000_000n,
      account: walletClient.account,
      chain: walletClient.chain,
    });
    const txGas = (await chain.publicClient.waitForTransactionReceipt({ hash })).gasUsed;
    // ...and the least gas limit with which eth_call answers true (bisection).
    let lo = estimate;
    let hi = 1_000_000n;
    while (hi - lo > 1n) {
      const mid = (lo + hi) / 2n;
      if (await verifyOnChain(args, mid)) hi = mid;
      else lo = mid;
    }
    process.stdout.write(
      `iris Groth16 verifier (7 public signals): deployment ${deployGas} gas; verifyProof as a transaction ` +
        `${txGas} gas; least eth_call gas answering true ${hi}; eth_estimateGas ${estimate} (answers false)\n`,
    );
    expect(deployGas).toBeGreaterThan(100_000n);
    expect(txGas).toBeGreaterThan(181_000n); // the pairing alone: 45,000 + 4 × 34,000 (EIP-1108)
    expect(txGas).toBeLessThan(400_000n);
    expect(hi).toBeGreaterThan(181_000n);
  });

  it('a proof of another row verifies with its own signals, not with the first one’s', async () => {
    const other = await prove(circuit, keys, encodeInput(model, [5.1, 3.5, 1.4, 0.2]));
    expect(await verifyOnChain(solidityCallArgs(other.proof, other.publicSignals))).toBe(true);
    expect(await verifyOnChain(solidityCallArgs(other.proof, good.publicSignals))).toBe(false);
    expect(await verifyOnChain(solidityCallArgs(good.proof, other.publicSignals))).toBe(false);
  });

  const bump = (s: string) => ((BigInt(s) + 1n) % FIELD_PRIME).toString();
  const q = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;
  const proofFixtures: { name: string; tamper: (p: Groth16Proof) => Groth16Proof }[] = [
    {
      name: 'pi_a negated (a valid point, the wrong one)',
      tamper: (p) => ({ ...p, pi_a: [p.pi_a[0] as string, (q - BigInt(p.pi_a[1] as string)).toString(), '1'] }),
    },
    {
      name: 'pi_a x coordinate + 1 (not on the curve: the precompile fails)',
      tamper: (p) => ({ ...p, pi_a: [bump(p.pi_a[0] as string), ...p.pi_a.slice(1)] }),
    },
    { name: 'pi_c replaced by pi_a', tamper: (p) => ({ ...p, pi_c: [...p.pi_a] }) },
    {
      name: 'pi_b x coordinates swapped',
      tamper: (p) => ({ ...p, pi_b: [[p.pi_b[0]?.[1], p.pi_b[0]?.[0]] as string[], ...p.pi_b.slice(1)] }),
    },
  ];
  for (const f of proofFixtures) {
    it(`tampered proof → false: ${f.name}`, async () => {
      const tampered = f.tamper(structuredClone(good.proof));
      expect(await verifyProof(keys.verificationKey, tampered, good.publicSignals)).toBe(false);
      expect(await verifyOnChain(solidityCallArgs(tampered, good.publicSignals))).toBe(false);
    });
  }

  const signalFixtures: { name: string; tamper: (s: string[]) => string[] }[] = [
    { name: 'an output (logit) + 1 unit', tamper: (s) => [bump(s[0] as string), ...s.slice(1)] },
    { name: 'the winning logit swapped with another', tamper: (s) => [s[2], s[1], s[0], ...s.slice(3)] as string[] },
    { name: 'an input changed', tamper: (s) => [...s.slice(0, 3), bump(s[3] as string), ...s.slice(4)] },
    {
      name: 'a value ≥ p (non-canonical encoding of the same element)',
      tamper: (s) => [(BigInt(s[0] as string) + FIELD_PRIME).toString(), ...s.slice(1)],
    },
  ];
  for (const f of signalFixtures) {
    it(`tampered public signals → false: ${f.name}`, async () => {
      expect(await verifyOnChain(solidityCallArgs(good.proof, f.tamper([...good.publicSignals])))).toBe(false);
    });
  }

  it('the wrong number of public signals is refused before the call (ABI encoding)', async () => {
    await expect(verifyOnChain(solidityCallArgs(good.proof, good.publicSignals.slice(1)))).rejects.toThrow();
  });
});
