/**
 * On-chain verification on a real anvil with real snarkjs keys and proofs (iris, 7 public
 * signals; the 5.2k MLP, 80): the verifier of a key is the fixed `Groth16Verifier` template
 * followed by the encoded key (protocol `zkVkEncoding`, checked here against the constants
 * snarkjs' own Solidity template renders for the same key: independent provenance for the G2
 * coordinate order), `ZkVerifierRegistry` accepts exactly that code for a key and refuses
 * substitutes, `verifyProof` answers true for real proofs and false (never reverting) for
 * tampered ones, and auditors' attestations round-trip. Prints the gas of deployment,
 * registration and `verifyProof` as a transaction.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sha256, toHex, zkManifestDigest, zkVkEncoding, zkVkKey } from '@verity/protocol';
import { type Address, encodeFunctionData, type Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deployment } from '../../contracts/src/deploy.js';
import { zkVerifierRegistryAbi } from '../../contracts/src/generated/zk-verifier-registry.js';
import { expectRevert, startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import {
  attestZkAudit,
  deployZkVerifier,
  readZkAttestation,
  registerZkVerifier,
  ZK_VERIFIER_TEMPLATE,
  zkVerifierAbi,
  zkVerifierCode,
  zkVerifierOf,
} from '../../contracts/src/zk-verifiers.js';
import { type CircuitArtifacts, compileCircom } from './circom-compile.js';
import { type CompiledModel, compileModel, encodeInput, samplesFromJson } from './compile-model.js';
import { FIELD_PRIME } from './field.js';
import { type SolidityCallArgs, solidityCallArgs } from './onchain.js';
import { type Groth16Proof, prove, verifyProof, type ZkProof } from './prove.js';
import { type CircuitKeys, setupCircuit } from './setup.js';
import { loadSnarkjs, releaseCurves } from './snarkjs.js';
import {
  irisOnnx,
  irisSamplesJson,
  MLP,
  mlpOnnx,
  ptauCacheDir,
  TEST_ENTROPY,
  uniformRows,
} from './test-support/models.js';

interface Ready {
  model: CompiledModel;
  circuit: CircuitArtifacts;
  keys: CircuitKeys;
  good: ZkProof;
  verifier: Address;
  vkKey: Hex;
  deployGas: bigint;
  registerGas: bigint;
}

const Q = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;

let keysDir: string;
let chain: TestChain;
let deployment: Deployment;
let iris: Ready;
let mlp: Ready;

async function ready(onnx: Uint8Array, samples: number[][], row: readonly number[]): Promise<Ready> {
  const model = compileModel(onnx, { samples });
  const circuit = await compileCircom(model.circom);
  const keys = await setupCircuit(circuit, {
    cacheDir: keysDir,
    ptauDir: ptauCacheDir(),
    entropy: TEST_ENTROPY,
    minPtauPower: 12,
  });
  const good = await prove(circuit, keys, encodeInput(model, row));
  // Deployed from one account, registered from another: anyone may do either.
  const deployed = await deployZkVerifier(chain.clients(1), { vk: keys.verificationKey });
  const registered = await registerZkVerifier(chain.clients(2), {
    zkVerifiers: deployment.contracts.zkVerifiers,
    verifier: deployed.address,
  });
  return {
    model,
    circuit,
    keys,
    good,
    verifier: deployed.address,
    vkKey: registered.vkKey,
    deployGas: deployed.receipt.gasUsed,
    registerGas: registered.receipt.gasUsed,
  };
}

beforeAll(async () => {
  keysDir = await mkdtemp(join(tmpdir(), 'verity-zk-onchain-'));
  chain = await startTestChain();
  deployment = await chain.deploy();
  iris = await ready(irisOnnx(), samplesFromJson(irisSamplesJson(), 'x'), [6.5, 3, 5.8, 2.2]);
  mlp = await ready(mlpOnnx(), uniformRows(16, MLP.inputs, 1), uniformRows(1, MLP.inputs, 9)[0] as number[]);
}, 600_000);

afterAll(async () => {
  await releaseCurves();
  await chain?.stop();
  if (keysDir) await rm(keysDir, { recursive: true, force: true });
});

const verifyOnChain = (address: Address, args: SolidityCallArgs, gas?: bigint) =>
  chain.publicClient.readContract({
    address,
    abi: zkVerifierAbi,
    functionName: 'verifyProof',
    args: args as never,
    ...(gas === undefined ? {} : { gas }),
  });

/** Deploys raw runtime code (through the same 10-byte creation prefix as every verifier). */
async function deployRaw(runtime: Hex): Promise<Address> {
  const length = (runtime.length - 2) / 2;
  const { walletClient } = chain.clients(3);
  const hash = await walletClient.sendTransaction({
    data: `0x61${length.toString(16).padStart(4, '0')}80600a5f395ff3${runtime.slice(2)}`,
    account: walletClient.account,
    chain: walletClient.chain,
  });
  const receipt = await chain.publicClient.waitForTransactionReceipt({ hash });
  expect(receipt.status).toBe('success');
  return receipt.contractAddress as Address;
}

/** `code` with the byte at `offset` (from the start of the runtime code) XOR-ed with 1. */
function flipByte(code: Hex, offset: number): Hex {
  const i = 2 + offset * 2;
  const byte = Number.parseInt(code.slice(i, i + 2), 16) ^ 1;
  return `${code.slice(0, i)}${byte.toString(16).padStart(2, '0')}${code.slice(i + 2)}` as Hex;
}

const register = (verifier: Address) =>
  registerZkVerifier(chain.clients(4), { zkVerifiers: deployment.contracts.zkVerifiers, verifier });

describe('the verification key’s encoding', () => {
  it('holds the constants snarkjs’ own Solidity template renders for the key, in its order, n last', async () => {
    // snarkjs' verifier_groth16.sol.ejs names every constant: an encoding made independently of ours.
    const snarkjs = await loadSnarkjs();
    const main = createRequire(import.meta.url).resolve('snarkjs');
    const template = await readFile(join(dirname(dirname(main)), 'templates', 'verifier_groth16.sol.ejs'), 'utf8');
    const source = await snarkjs.zKey.exportSolidityVerifier(
      { type: 'mem', data: iris.keys.zkey },
      { groth16: template },
    );
    const constant = (name: string) => {
      const m = new RegExp(`uint256 constant ${name}\\s*=\\s*([0-9]+);`).exec(source);
      if (m === null) throw new Error(`snarkjs' verifier has no ${name}`);
      return BigInt(m[1] as string);
    };
    const n = iris.keys.verificationKey.nPublic;
    const names = ['alphax', 'alphay'];
    for (const g of ['beta', 'gamma', 'delta']) names.push(`${g}x1`, `${g}x2`, `${g}y1`, `${g}y2`);
    for (let i = 0; i <= n; i++) names.push(`IC${i}x`, `IC${i}y`);
    const words = [...names.map(constant), BigInt(n)];
    const encoding = zkVkEncoding(iris.keys.verificationKey);
    expect(encoding.length).toBe(32 * (2 * n + 17));
    expect(`0x${toHex(encoding)}`).toBe(`0x${words.map((w) => w.toString(16).padStart(64, '0')).join('')}`);
    expect(zkVkKey(iris.keys.verificationKey)).toBe(`0x${toHex(sha256(encoding))}`);
    expect(zkVerifierCode(iris.keys.verificationKey)).toBe(`${ZK_VERIFIER_TEMPLATE}${toHex(encoding)}`);
  });

  it('refuses keys that are not affine Groth16 bn128 keys', () => {
    const vk = iris.keys.verificationKey as unknown as Record<string, unknown>;
    const alpha = vk.vk_alpha_1 as string[];
    const ic = vk.IC as string[][];
    const bad: [string, unknown][] = [
      ['plonk', { ...vk, protocol: 'plonk' }],
      ['IC one short of nPublic + 1', { ...vk, IC: ic.slice(1) }],
      ['alpha off the curve', { ...vk, vk_alpha_1: [alpha[0], (BigInt(alpha[1] as string) + 1n).toString(), '1'] }],
      ['alpha at infinity', { ...vk, vk_alpha_1: ['0', '1', '0'] }],
      ['a coordinate ≥ q', { ...vk, vk_alpha_1: [(BigInt(alpha[0] as string) + Q).toString(), alpha[1], '1'] }],
      ['delta not affine', { ...vk, vk_delta_2: [...(vk.vk_delta_2 as unknown[]).slice(0, 2), ['0', '1']] }],
    ];
    for (const [name, key] of bad) expect(() => zkVkEncoding(key), name).toThrow(/not a Groth16 bn128/);
  });

  it('manifestDigest is the SHA-256 inside the CID', () => {
    // `ipfs add --cid-version 1 --raw-leaves` of "hello world" (no newline): its digest is SHA-256("hello world").
    expect(zkManifestDigest('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')).toBe(
      '0xb94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9',
    );
  });
});

describe('ZkVerifierRegistry', () => {
  it('maps each key to its verifier, whose code is template ‖ key', async () => {
    for (const r of [iris, mlp]) {
      expect(r.vkKey).toBe(zkVkKey(r.keys.verificationKey));
      expect(
        await zkVerifierOf(chain.publicClient, { zkVerifiers: deployment.contracts.zkVerifiers, vkKey: r.vkKey }),
      ).toBe(r.verifier);
      expect(await chain.publicClient.getCode({ address: r.verifier })).toBe(zkVerifierCode(r.keys.verificationKey));
    }
    // The registry's template is the one clients hold.
    expect(
      await chain.publicClient.readContract({
        address: deployment.contracts.zkVerifiers,
        abi: zkVerifierRegistryAbi,
        functionName: 'template',
      }),
    ).toBe(ZK_VERIFIER_TEMPLATE);
    expect(
      await chain.publicClient.readContract({ address: iris.verifier, abi: zkVerifierAbi, functionName: 'nPublic' }),
    ).toBe(BigInt(iris.keys.verificationKey.nPublic));
    const unknown = `0x${'ab'.repeat(32)}` as Hex;
    expect(
      await zkVerifierOf(chain.publicClient, { zkVerifiers: deployment.contracts.zkVerifiers, vkKey: unknown }),
    ).toBeUndefined();
    process.stdout.write(
      `ZkVerifierRegistry deployment; verifier deployment / registration gas: iris (7 signals) ` +
        `${iris.deployGas} / ${iris.registerGas}; MLP (80 signals) ${mlp.deployGas} / ${mlp.registerGas}\n`,
    );
  });

  it('registering again, or another deployment of the same code, changes nothing (first wins)', async () => {
    const again = await register(iris.verifier);
    expect(again).toMatchObject({ vkKey: iris.vkKey, verifier: iris.verifier });
    const second = await deployZkVerifier(chain.clients(5), { vk: iris.keys.verificationKey });
    expect(second.address).not.toBe(iris.verifier);
    expect(await register(second.address)).toMatchObject({ vkKey: iris.vkKey, verifier: iris.verifier });
  });

  // Named substitutes: each is refused with its code (the revert name says which check failed).
  it('refuses a contract that always answers true', async () => {
    // PUSH1 1, PUSH0, MSTORE, PUSH1 32, PUSH0, RETURN: `true` for any call, verifyProof included.
    const yes = await deployRaw('0x60015f5260205ff3');
    const args = solidityCallArgs(iris.good.proof, iris.good.publicSignals);
    expect(await verifyOnChain(yes, args)).toBe(true); // it would "verify" anything
    await expectRevert(register(yes), 'ZK_VERIFIER_CODE_MISMATCH', 'VerifierCodeMismatch');
  });

  it('refuses an account without code, and the template alone', async () => {
    await expectRevert(register(chain.address(7)), 'ZK_VERIFIER_CODE_MISMATCH', 'VerifierCodeMismatch');
    const bare = await deployRaw(ZK_VERIFIER_TEMPLATE);
    await expectRevert(register(bare), 'ZK_VERIFIER_CODE_MISMATCH', 'VerifierCodeMismatch');
  });

  it('refuses the template with one byte changed (the key intact)', async () => {
    const code = flipByte(zkVerifierCode(iris.keys.verificationKey), 40);
    await expectRevert(register(await deployRaw(code)), 'ZK_VERIFIER_CODE_MISMATCH', 'VerifierCodeMismatch');
  });

  it('refuses the template with a malformed key: alpha off the curve, a coordinate ≥ q, n wrong', async () => {
    const code = zkVerifierCode(iris.keys.verificationKey);
    const template = (ZK_VERIFIER_TEMPLATE.length - 2) / 2;
    const size = (code.length - 2) / 2;
    const word = (i: number, value: bigint) =>
      `${code.slice(0, 2 + (template + 32 * i) * 2)}${value.toString(16).padStart(64, '0')}${code.slice(2 + (template + 32 * (i + 1)) * 2)}` as Hex;
    const alphaY = BigInt(`0x${code.slice(2 + (template + 32) * 2, 2 + (template + 64) * 2)}`);
    const malformed: [string, Hex][] = [
      ['alpha.y low byte flipped (off the curve)', flipByte(code, template + 63)],
      ['alpha.y + q (same residue, ≥ q)', word(1, alphaY + Q)],
      ['n + 1 (the key is shorter than it claims)', flipByte(code, size - 1)],
      ['an IC point off the curve', flipByte(code, template + 32 * 15 + 31)],
    ];
    for (const [, bad] of malformed) {
      await expectRevert(register(await deployRaw(bad)), 'ZK_VERIFIER_CODE_MISMATCH', 'VerificationKeyMalformed');
    }
  });

  it('a verifier of another key, or of a changed but well-formed key, is filed under that key only', async () => {
    // The MLP's verifier is registered, under the MLP's key: looking up iris's key never finds it.
    expect(await register(mlp.verifier)).toMatchObject({ vkKey: mlp.vkKey, verifier: mlp.verifier });
    // delta.x.c1's low byte flipped: the G2 points are not checked on registration (a bad one makes
    // every pairing fail), so it registers — as the verifier of that other key.
    const template = (ZK_VERIFIER_TEMPLATE.length - 2) / 2;
    const changed = flipByte(zkVerifierCode(iris.keys.verificationKey), template + 32 * 10 + 31);
    const registered = await register(await deployRaw(changed));
    expect(registered.vkKey).not.toBe(iris.vkKey);
    expect(registered.vkKey).toBe(
      `0x${toHex(sha256(new Uint8Array(Buffer.from(changed.slice(2 + template * 2), 'hex'))))}`,
    );
    expect(
      await zkVerifierOf(chain.publicClient, { zkVerifiers: deployment.contracts.zkVerifiers, vkKey: iris.vkKey }),
    ).toBe(iris.verifier);
    // And it verifies nothing: the real proof fails under the changed key.
    const args = solidityCallArgs(iris.good.proof, iris.good.publicSignals);
    expect(await verifyOnChain(registered.verifier, args)).toBe(false);
  });
});

describe('verifyProof on anvil', () => {
  /** The gas of verifyProof sent as a transaction (21,000 intrinsic and calldata included). */
  async function txGas(r: Ready, args: SolidityCallArgs): Promise<bigint> {
    const { walletClient } = chain.clients(6);
    const hash = await walletClient.sendTransaction({
      to: r.verifier,
      data: encodeFunctionData({ abi: zkVerifierAbi, functionName: 'verifyProof', args: args as never }),
      gas: 2_000_000n,
      account: walletClient.account,
      chain: walletClient.chain,
    });
    return (await chain.publicClient.waitForTransactionReceipt({ hash })).gasUsed;
  }

  it('real proofs verify (iris and the 5.2k MLP); gas reported', async () => {
    const gas: bigint[] = [];
    for (const r of [iris, mlp]) {
      const args = solidityCallArgs(r.good.proof, r.good.publicSignals);
      expect(await verifyOnChain(r.verifier, args)).toBe(true);
      gas.push(await txGas(r, args));
    }
    process.stdout.write(
      `verifyProof as a transaction: iris (7 signals) ${gas[0]} gas; MLP 64→64→16 (80 signals) ${gas[1]} gas\n`,
    );
    // The pairing alone is 45,000 + 4 × 34,000 (EIP-1108); at most one ecMul (6,000) per signal.
    expect(gas[0]).toBeGreaterThan(181_000n);
    expect(gas[1]).toBeLessThan(181_000n + 80n * 6_500n + 100_000n);
  });

  it('a proof verifies only under its own key: the MLP’s verifier refuses iris’s proof', async () => {
    expect(await verifyOnChain(mlp.verifier, solidityCallArgs(iris.good.proof, iris.good.publicSignals))).toBe(false);
  });

  const bump = (s: string) => ((BigInt(s) + 1n) % FIELD_PRIME).toString();
  // `lenient`: snarkjs reduces coordinates mod q off chain and accepts the same point; on chain a
  // coordinate ≥ q is refused.
  const proofFixtures: { name: string; tamper: (p: Groth16Proof) => Groth16Proof; lenient?: true }[] = [
    {
      name: 'pi_a negated (a valid point, the wrong one)',
      tamper: (p) => ({ ...p, pi_a: [p.pi_a[0] as string, (Q - BigInt(p.pi_a[1] as string)).toString(), '1'] }),
    },
    {
      name: 'pi_a x coordinate + 1 (off the curve: refused before any precompile)',
      tamper: (p) => ({ ...p, pi_a: [bump(p.pi_a[0] as string), ...p.pi_a.slice(1)] }),
    },
    {
      name: 'pi_a y + q (the same residue, not a canonical coordinate)',
      tamper: (p) => ({ ...p, pi_a: [p.pi_a[0] as string, (BigInt(p.pi_a[1] as string) + Q).toString(), '1'] }),
      lenient: true,
    },
    { name: 'pi_c replaced by pi_a', tamper: (p) => ({ ...p, pi_c: [...p.pi_a] }) },
    { name: 'pi_c at infinity', tamper: (p) => ({ ...p, pi_c: ['0', '0', '1'] }) },
    {
      name: 'pi_b x coordinates swapped (off the twist: the pairing precompile fails)',
      tamper: (p) => ({ ...p, pi_b: [[p.pi_b[0]?.[1], p.pi_b[0]?.[0]] as string[], ...p.pi_b.slice(1)] }),
    },
  ];
  for (const r of ['iris', 'mlp'] as const) {
    for (const f of proofFixtures) {
      it(`${r}: tampered proof → false: ${f.name}`, async () => {
        const { keys, good, verifier } = r === 'iris' ? iris : mlp;
        const tampered = f.tamper(structuredClone(good.proof));
        expect(await verifyProof(keys.verificationKey, tampered, good.publicSignals)).toBe(f.lenient === true);
        expect(await verifyOnChain(verifier, solidityCallArgs(tampered, good.publicSignals))).toBe(false);
      });
    }
  }

  const signalFixtures: { name: string; tamper: (s: string[]) => string[] }[] = [
    { name: 'an output (logit) + 1 unit', tamper: (s) => [bump(s[0] as string), ...s.slice(1)] },
    { name: 'two outputs swapped', tamper: (s) => [s[2], s[1], s[0], ...s.slice(3)] as string[] },
    { name: 'the last input changed', tamper: (s) => [...s.slice(0, -1), bump(s.at(-1) as string)] },
    {
      name: 'a value ≥ r (non-canonical encoding of the same element)',
      tamper: (s) => [(BigInt(s[0] as string) + FIELD_PRIME).toString(), ...s.slice(1)],
    },
    { name: 'one signal fewer', tamper: (s) => s.slice(1) },
    { name: 'one signal more', tamper: (s) => [...s, '1'] },
    { name: 'no signals', tamper: () => [] },
  ];
  for (const r of ['iris', 'mlp'] as const) {
    for (const f of signalFixtures) {
      it(`${r}: tampered public signals → false: ${f.name}`, async () => {
        const { good, verifier } = r === 'iris' ? iris : mlp;
        const args = solidityCallArgs(good.proof, f.tamper([...good.publicSignals]));
        expect(await verifyOnChain(verifier, args)).toBe(false);
      });
    }
  }

  it('a gas limit too short for the precompiles answers false, not true', async () => {
    const args = solidityCallArgs(iris.good.proof, iris.good.publicSignals);
    expect(await verifyOnChain(iris.verifier, args, 100_000n)).toBe(false);
  });
});

describe('audit attestations', () => {
  it('round-trip: attest, read, attest the same again, refuse another key for the same manifest', async () => {
    const zkVerifiers = deployment.contracts.zkVerifiers;
    const auditor = chain.clients(8);
    const manifestDigest = zkManifestDigest('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e');
    const read = (who: Address) => readZkAttestation(chain.publicClient, { zkVerifiers, auditor: who, manifestDigest });
    expect(await read(chain.address(8))).toBeUndefined();
    const receipt = await attestZkAudit(auditor, { zkVerifiers, manifestDigest, vkKey: iris.vkKey });
    expect(receipt.status).toBe('success');
    expect(await read(chain.address(8))).toBe(iris.vkKey);
    expect(await read(chain.address(7))).toBeUndefined(); // only the auditor's own word
    await attestZkAudit(auditor, { zkVerifiers, manifestDigest, vkKey: iris.vkKey });
    await expectRevert(
      attestZkAudit(auditor, { zkVerifiers, manifestDigest, vkKey: mlp.vkKey }),
      'CHAIN_REVERTED',
      'AttestationConflict',
    );
    await expectRevert(
      attestZkAudit(auditor, { zkVerifiers, manifestDigest, vkKey: `0x${'00'.repeat(32)}` }),
      'INVALID_ARGUMENT',
      'AttestationInvalid',
    );
    expect(await read(chain.address(8))).toBe(iris.vkKey);
  });
});
