/**
 * Replicas serve zk models with keys derived, not trusted (issue 11.7). Real anvil, two real
 * nodes over HTTP (A publishes iris with zk, B replicates it), and an attacker peer registered on
 * chain that offers swapped proving keys: one for the same circuit made by someone else (it
 * verifies against the circuit and phase 1, but its vk is not the manifest's) and one for another
 * circuit. B recompiles the circuit from the artifact and the signed manifest, checks the R1CS
 * hash, `zkey verify` against the phase 1, the vk digest; it refuses each swapped key with its
 * code and does not serve zk for the model; given A's key, it proves, and serves the same key.
 * Last, a publisher that signs a manifest committing to its own circuit (one that ignores the
 * model, whose proofs verify under its own key) is caught by the audit's recompilation.
 */
import { hash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerNode } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { type Manifest, ZK_METADATA, zkFacts, zkVkDigest } from '@verity/protocol';
import { compileCircom, compileModel, prove, releaseCurves, setupCircuit, verifyProof } from '@verity/zk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MIN_STAKE, startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { DEFAULT_CONFIG } from '../config.js';
import type { VerityNode } from '../node.js';
import { startChainNode } from '../test-support/chain-node.js';
import { IRIS, PTAU_DIR, pushZk } from '../test-support/zk-network.js';
import { createZkService } from '../zk-service.js';

const SAMPLE = { x: [[5.1, 3.5, 1.4, 0.2]] };
const dirs: string[] = [];
let chain: TestChain;
let deploymentFile: string;
let a: VerityNode;
let b: VerityNode;
let cid: string;
let vk: string;
// The attacker's peer: serves `offered` as every model's zkey.
let attacker: Server;
let offered: Uint8Array = new Uint8Array();

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verity-zk-replica-'));
  dirs.push(dir);
  return dir;
}

const node = async () =>
  startChainNode(chain, {
    dataDir: await tempDir(),
    deploymentFile,
    overrides: { peers: { localNetwork: true }, zk: { ptauDir: PTAU_DIR } },
  });

async function inferZk(n: VerityNode) {
  const res = await fetch(`${n.url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: cid, input: SAMPLE, mode: 'zk' }),
  });
  return {
    status: res.status,
    body: (await res.json()) as { zk?: { vk: unknown }; error?: { code: string; details: Record<string, unknown> } },
  };
}

const zkeyOf = (n: VerityNode) => fetch(`${n.url}/v1/zk/${cid}/zkey`);

/** A valid zkey that is not A's: the same circuit (or iris at other parameters), someone else's phase 2. */
async function foreignZkey(params: { fracBits: number; valueBits: number }): Promise<Uint8Array> {
  const circuit = await compileCircom(compileModel(new Uint8Array(readFileSync(IRIS)), { params }).circom);
  const keys = await setupCircuit(circuit, { cacheDir: await tempDir(), ptauDir: PTAU_DIR, verify: false });
  return keys.zkey;
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  deploymentFile = join(await tempDir(), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  attacker = createServer((_req, res) => {
    res.setHeader('content-type', 'application/octet-stream');
    res.end(offered);
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  await registerNode(chain.clients(1), {
    nodeRegistry: deployment.contracts.nodeRegistry,
    logKey: `0x${randomBytes(32).toString('hex')}`,
    origin: 'attacker.example/log/1',
    endpoint: `http://127.0.0.1:${(attacker.address() as AddressInfo).port}`,
    capabilities: ['mode:signed', 'mode:zk'],
    stake: MIN_STAKE,
  });
  a = await node();
  const view = await pushZk(a);
  cid = view.id;
  vk = zkFacts(view.manifest).vk;
  b = await node();
}, 600_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await new Promise<void>((r) => (attacker ? attacker.close(() => r()) : r()));
  await chain?.stop();
  await releaseCurves();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('a replica serves a zk model only with a key it derived the checks for', () => {
  it('the publisher serves its final zkey by manifest CID, content-addressed by SHA-256', async () => {
    const res = await zkeyOf(a);
    expect(res.status).toBe(200);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect(res.headers.get('etag')).toBe(`"${hash('sha256', bytes, 'hex')}"`);
    expect(res.headers.get('cache-control')).toContain('immutable');
    const again = await fetch(`${a.url}/v1/zk/${cid}/zkey`, {
      headers: { 'if-none-match': res.headers.get('etag') ?? '' },
    });
    expect(again.status).toBe(304);
  });

  it('a swapped key is refused with its code, and the replica serves no zk for the model', async () => {
    // A does not answer for its key for now: the attacker's key is all B is offered.
    const kept = join(a.context.config.dataDir, 'zk', 'zkeys', `${vk}.zkey`);
    await rename(kept, `${kept}.away`);
    try {
      const params = zkFacts(a.context.store.resolve(cid).manifest).params;
      // The same circuit, someone else's phase 2: it verifies against the circuit and phase 1,
      // but its verification key is not the manifest's.
      offered = await foreignZkey(params);
      const sameCircuit = await inferZk(b);
      expect(sameCircuit.status).toBe(400);
      expect(sameCircuit.body.error?.code).toBe('ZK_VK_MISMATCH');
      // A key for another circuit (iris at other fixed-point parameters): zkey verify fails.
      offered = await foreignZkey({ fracBits: params.fracBits - 2, valueBits: params.valueBits - 2 });
      const otherCircuit = await inferZk(b);
      expect(otherCircuit.status).toBe(400);
      expect(otherCircuit.body.error?.code).toBe('ZK_CEREMONY_INVALID');
      // Garbage.
      offered = randomBytes(4096);
      expect((await inferZk(b)).body.error?.code).toBe('ZK_CEREMONY_INVALID');
      // Nothing was kept: B serves no key, and no proof.
      expect((await zkeyOf(b)).status).toBe(404);
    } finally {
      await rename(`${kept}.away`, kept);
    }
  }, 600_000);

  it('given the publisher’s key, the replica checks it, proves with it and serves the same key', async () => {
    const r = await inferZk(b);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(zkVkDigest(r.body.zk?.vk)).toBe(vk);
    const fromA = new Uint8Array(await (await zkeyOf(a)).arrayBuffer());
    const fromB = await zkeyOf(b);
    expect(fromB.status).toBe(200);
    expect(hash('sha256', new Uint8Array(await fromB.arrayBuffer()), 'hex')).toBe(hash('sha256', fromA, 'hex'));
  }, 600_000);

  it('a publisher that commits its manifest to a circuit that ignores the model is caught: the circuit recompiled from the artifact differs (ZK_CIRCUIT_MISMATCH)', async () => {
    // The dishonest party makes and signs the manifest itself (a node that is also the publisher):
    // its circuit takes iris' public input and outputs what it likes; its keys are its own.
    const trivial = await compileCircom(
      [
        'pragma circom 2.1.0;',
        'template Model() {',
        '  signal input in[4];',
        '  signal output out[3];',
        '  signal t;',
        '  t <== in[0] * in[1];',
        '  for (var i = 0; i < 3; i++) out[i] <== t;',
        '}',
        'component main {public [in]} = Model();',
        '',
      ].join('\n'),
    );
    const keys = await setupCircuit(trivial, { cacheDir: await tempDir(), ptauDir: PTAU_DIR, verify: false });
    // Without the check the attack works: its proofs verify under its own key.
    const forgedProof = await prove(trivial, keys, [5n, 7n, 1n, 2n]);
    expect(await verifyProof(keys.verificationKey, forgedProof.proof, forgedProof.publicSignals)).toBe(true);

    const genuine = a.context.store.resolve(cid);
    const forged: Manifest = {
      ...genuine.manifest,
      metadata: {
        ...genuine.manifest.metadata,
        [ZK_METADATA.r1cs]: keys.r1csHash,
        [ZK_METADATA.vk]: zkVkDigest(keys.verificationKey),
      },
    };
    const service = createZkService({ ...DEFAULT_CONFIG.zk, ptauDir: PTAU_DIR }, await tempDir());
    try {
      // The control: the same auditor accepts the genuine manifest with A's key.
      const genuineZkey = new Uint8Array(await (await zkeyOf(a)).arrayBuffer());
      const { audit } = await service.audit(cid, genuine.manifest, genuine.artifactPath, genuineZkey);
      expect(audit.r1cs).toBe(zkFacts(genuine.manifest).r1cs);
      // The forgery: refused before its key is even looked at, whichever key comes with it.
      for (const zkey of [keys.zkey, genuineZkey]) {
        await expect(service.audit(cid, forged, genuine.artifactPath, zkey)).rejects.toMatchObject({
          code: 'ZK_CIRCUIT_MISMATCH',
          details: { expected: keys.r1csHash, actual: audit.r1cs },
        });
      }
    } finally {
      await service.close();
    }
  }, 600_000);
});
