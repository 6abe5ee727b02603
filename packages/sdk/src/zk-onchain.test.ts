/**
 * Mode zk on a chain, over HTTP: a node on anvil pushed iris with zk deploys the model's verifier
 * (template ‖ key) from its own account and registers it in the deployment's ZkVerifierRegistry,
 * keeps it across a restart and a re-push; a zk bundle's proof verifies on chain with
 * `verifyZkProofOnChain`, which finds the verifier by the key in the registry (never by an
 * address a node gives), and tampered proofs or signals do not. A key nobody registered is
 * `ZK_VERIFIER_UNREGISTERED`; a registry that names a substitute (an always-true contract) is
 * `ZK_VERIFIER_CODE_MISMATCH`.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { zkVerifierOf } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, openKeystore, startNode, type VerityNode } from '@verity/node';
import { type Bundle, isVerityError, ZK_FIELD_PRIME, type ZkEvidence, zkVkKey } from '@verity/protocol';
import { type Address, type Hex, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { createClient, releaseZk, verifyZkProofOnChain } from './index.js';

const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const PTAU_DIR = process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');

let chain: TestChain;
let deploymentFile: string;
let dataDir: string;
let node: VerityNode;
let zkVerifiers: Address;

async function nodeOnChain(): Promise<VerityNode> {
  const keys = openKeystore(dataDir);
  await chain.testClient.setBalance({ address: keys.address as Address, value: parseEther('10') });
  return startNode(
    loadConfig({
      overrides: {
        dataDir,
        port: 0,
        logLevel: 'silent',
        zk: { ptauDir: PTAU_DIR },
        chain: { rpcUrl: chain.anvil.rpcUrl, deploymentFile, anchorIntervalMs: 0 },
      },
    }),
  );
}

interface View {
  id: string;
  zk?: { verifier: { chainId: number; address: Address; vkKey: Hex; registry: Address; deployGas: string } };
}

async function modelView(ref: string): Promise<View> {
  return (await (await fetch(`${node.url}/v1/models/${ref}`)).json()) as View;
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  zkVerifiers = deployment.contracts.zkVerifiers;
  dataDir = await mkdtemp(join(tmpdir(), 'verity-sdk-zk-chain-'));
  deploymentFile = join(dataDir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  node = await nodeOnChain();
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await chain?.stop();
  await releaseZk();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('zk verifier on chain', () => {
  let address: Address;
  let zk: ZkEvidence;

  it('push deploys and registers the model’s verifier from the node’s account; the model view shows it', async () => {
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    const pushed = await admin.pushModel({ name: 'iris-zk', data: new Uint8Array(readFileSync(IRIS)), zk: true });
    const view = await modelView('iris-zk@1.0.0');
    expect(view.id).toBe(pushed.id);
    expect(view.zk?.verifier).toMatchObject({ chainId: chain.anvil.chainId, registry: zkVerifiers });
    address = view.zk?.verifier.address as Address;
    const vkKey = view.zk?.verifier.vkKey as Hex;
    expect(await zkVerifierOf(chain.publicClient, { zkVerifiers, vkKey })).toBe(address);
    process.stdout.write(`node-deployed iris verifier: ${view.zk?.verifier.deployGas} gas at ${address}\n`);
    // A model pushed without zk has no verifier.
    await admin.pushModel({ name: 'iris-plain', data: new Uint8Array(readFileSync(IRIS)) });
    expect((await modelView('iris-plain@1.0.0')).zk).toBeUndefined();
  }, 300_000);

  it('a zk bundle’s proof verifies on chain; tampered proofs and signals do not', async () => {
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const result = await client.infer({
      model: 'iris-zk',
      input: { x: [[6.5, 3, 5.8, 2.2]] },
      mode: 'zk',
      acceptLocalDevSetup: true,
    });
    const bundle: Bundle = result.bundle();
    zk = bundle.zk as ZkEvidence;
    expect(zkVkKey(zk.vk)).toBe((await modelView('iris-zk@1.0.0')).zk?.verifier.vkKey);
    expect(await verifyZkProofOnChain(chain.publicClient, { zkVerifiers }, zk)).toBe(true);

    const bump = (s: string) => ((BigInt(s) + 1n) % ZK_FIELD_PRIME).toString();
    const s = zk.publicSignals;
    const p = zk.proof;
    const bad: [string, Pick<ZkEvidence, 'proof' | 'publicSignals'>][] = [
      ['a logit + 1', { proof: p, publicSignals: [bump(s[0] as string), ...s.slice(1)] }],
      ['an input + 1', { proof: p, publicSignals: [...s.slice(0, 3), bump(s[3] as string), ...s.slice(4)] }],
      ['pi_c = pi_a', { proof: { ...p, pi_c: p.pi_a }, publicSignals: s }],
      [
        'pi_a x + 1 (off the curve)',
        { proof: { ...p, pi_a: [bump(p.pi_a[0] as string), ...p.pi_a.slice(1)] }, publicSignals: s },
      ],
      ['a signal missing', { proof: p, publicSignals: s.slice(1) }],
      ['a signal more', { proof: p, publicSignals: [...s, '1'] }],
      ['not a decimal', { proof: { ...p, pi_a: ['x', 'y'] }, publicSignals: s }],
    ];
    for (const [name, evidence] of bad) {
      expect(await verifyZkProofOnChain(chain.publicClient, { zkVerifiers }, { ...evidence, vk: zk.vk }), name).toBe(
        false,
      );
    }
  }, 120_000);

  const codeOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'resolved',
      (e: unknown) => (isVerityError(e) ? e.code : String(e)),
    );

  it('a key nobody registered: ZK_VERIFIER_UNREGISTERED', async () => {
    // IC[1] negated: still a well-formed key (the point stays on the curve), a different one.
    const q = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;
    const ic = zk.vk.IC as string[][];
    const [x, y] = ic[1] as string[];
    const other = { ...zk.vk, IC: [ic[0], [x, (q - BigInt(y as string)).toString(), '1'], ...ic.slice(2)] };
    expect(await codeOf(verifyZkProofOnChain(chain.publicClient, { zkVerifiers }, { ...zk, vk: other }))).toBe(
      'ZK_VERIFIER_UNREGISTERED',
    );
  });

  it('a registry that names a substitute verifier (always true): ZK_VERIFIER_CODE_MISMATCH', async () => {
    const { walletClient } = chain.clients(5);
    const deploy = async (runtime: string) => {
      const length = (runtime.length - 2) / 2;
      const hash = await walletClient.sendTransaction({
        data: `0x61${length.toString(16).padStart(4, '0')}80600a5f395ff3${runtime.slice(2)}`,
        account: walletClient.account,
        chain: walletClient.chain,
      });
      return (await chain.publicClient.waitForTransactionReceipt({ hash })).contractAddress as Address;
    };
    // PUSH1 1, PUSH0, MSTORE, PUSH1 32, PUSH0, RETURN: answers true to anything.
    const yes = await deploy('0x60015f5260205ff3');
    // A "registry" whose verifierOf(anything) is `yes`: PUSH20 yes, PUSH0, MSTORE, PUSH1 32, PUSH0, RETURN.
    const liar = await deploy(`0x73${yes.slice(2).toLowerCase()}5f5260205ff3`);
    expect(await codeOf(verifyZkProofOnChain(chain.publicClient, { zkVerifiers: liar }, zk))).toBe(
      'ZK_VERIFIER_CODE_MISMATCH',
    );
    const tampered = {
      ...zk,
      publicSignals: [
        ((BigInt(zk.publicSignals[0] as string) + 1n) % ZK_FIELD_PRIME).toString(),
        ...zk.publicSignals.slice(1),
      ],
    };
    expect(await codeOf(verifyZkProofOnChain(chain.publicClient, { zkVerifiers: liar }, tampered))).toBe(
      'ZK_VERIFIER_CODE_MISMATCH',
    );
  });

  it('the verifier survives a restart and a re-push (no second deployment or registration)', async () => {
    await node.stop();
    node = await nodeOnChain();
    expect((await modelView('iris-zk@1.0.0')).zk?.verifier.address).toBe(address);
    const nonce = await chain.publicClient.getTransactionCount({ address: node.context.keys.address as Address });
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    await admin.pushModel({ name: 'iris-zk', data: new Uint8Array(readFileSync(IRIS)), zk: true });
    expect((await modelView('iris-zk@1.0.0')).zk?.verifier.address).toBe(address);
    expect(await chain.publicClient.getTransactionCount({ address: node.context.keys.address as Address })).toBe(nonce);
    expect(await verifyZkProofOnChain(chain.publicClient, { zkVerifiers }, zk)).toBe(true);
  }, 120_000);

  it('a node that lost its record finds the key’s verifier in the registry (no transaction)', async () => {
    await node.stop();
    await rm(join(dataDir, 'zk', 'verifiers'), { recursive: true, force: true });
    node = await nodeOnChain();
    const nonce = await chain.publicClient.getTransactionCount({ address: node.context.keys.address as Address });
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    await admin.pushModel({ name: 'iris-zk', data: new Uint8Array(readFileSync(IRIS)), zk: true });
    expect((await modelView('iris-zk@1.0.0')).zk?.verifier).toMatchObject({ address, deployGas: '0' });
    expect(await chain.publicClient.getTransactionCount({ address: node.context.keys.address as Address })).toBe(nonce);
  }, 120_000);
});
