/**
 * Mode zk on a chain, over HTTP: a node on anvil pushed iris with zk deploys the model's Solidity
 * verifier from its own account, shows it in the model view (`zk.verifier`), keeps it across a
 * restart and a re-push; a zk bundle's proof verifies on chain with `verifyZkProofOnChain` (a
 * view call), and tampered proofs or signals do not.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeDeploymentFile } from '@verity/contracts/node';
import { loadConfig, openKeystore, startNode, type VerityNode } from '@verity/node';
import { type Bundle, ZK_FIELD_PRIME, type ZkEvidence } from '@verity/protocol';
import { type Address, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { createClient, releaseZk, verifyZkProofOnChain } from './index.js';

const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const PTAU_DIR = process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');

let chain: TestChain;
let deploymentFile: string;
let dataDir: string;
let node: VerityNode;

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
  zk?: { verifier: { chainId: number; address: Address; deployGas: string } };
}

async function modelView(ref: string): Promise<View> {
  return (await (await fetch(`${node.url}/v1/models/${ref}`)).json()) as View;
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  dataDir = await mkdtemp(join(tmpdir(), 'verity-sdk-zk-chain-'));
  deploymentFile = join(dataDir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  node = await nodeOnChain();
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await chain?.stop();
  await releaseZk();
});

describe('zk verifier on chain', () => {
  let address: Address;
  let zk: ZkEvidence;

  it('push deploys the model’s verifier from the node’s account and shows it in the model view', async () => {
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    const pushed = await admin.pushModel({ name: 'iris-zk', data: new Uint8Array(readFileSync(IRIS)), zk: true });
    const view = await modelView('iris-zk@1.0.0');
    expect(view.id).toBe(pushed.id);
    expect(view.zk?.verifier).toMatchObject({ chainId: chain.anvil.chainId });
    address = view.zk?.verifier.address as Address;
    expect(await chain.publicClient.getCode({ address })).toMatch(/^0x[0-9a-f]{100,}$/);
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
    expect(await verifyZkProofOnChain(chain.publicClient, address, zk)).toBe(true);

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
      ['a signal missing (reverts: short calldata)', { proof: p, publicSignals: s.slice(1) }],
      ['not a decimal', { proof: { ...p, pi_a: ['x', 'y'] }, publicSignals: s }],
    ];
    for (const [name, evidence] of bad) {
      expect(await verifyZkProofOnChain(chain.publicClient, address, evidence), name).toBe(false);
    }
    // An extra signal after the contract's fixed array would be ignored by the contract itself;
    // with the verification key the helper refuses it.
    expect(await verifyZkProofOnChain(chain.publicClient, address, { ...zk, publicSignals: [...s, '1'] })).toBe(false);
  }, 120_000);

  it('the verifier survives a restart and a re-push (no second deployment)', async () => {
    await node.stop();
    node = await nodeOnChain();
    expect((await modelView('iris-zk@1.0.0')).zk?.verifier.address).toBe(address);
    const nonce = await chain.publicClient.getTransactionCount({ address: node.context.keys.address as Address });
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    await admin.pushModel({ name: 'iris-zk', data: new Uint8Array(readFileSync(IRIS)), zk: true });
    expect((await modelView('iris-zk@1.0.0')).zk?.verifier.address).toBe(address);
    expect(await chain.publicClient.getTransactionCount({ address: node.context.keys.address as Address })).toBe(nonce);
    expect(await verifyZkProofOnChain(chain.publicClient, address, zk)).toBe(true);
  }, 120_000);
});
