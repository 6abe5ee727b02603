/**
 * `verity zk audit`, the independent check of issue 11 ("Must show"): a second process with a
 * clean data dir confirms, from the model artifact and the public transcripts, that a zk model's
 * verification key belongs to the model's circuit. Real anvil; three real nodes; A pushes iris
 * with zk and its keys come from a phase-2 ceremony on chain (A and the drawn nodes contribute,
 * beacon from a later block hash). The CLI, as a child process, fetches the model by CID,
 * recompiles, checks the R1CS hash, fetches the zkey, runs zkey verify and the transcript check
 * against the chain, compares the vk digest, writes the audit and attests it on chain. Served a
 * swapped key (through a proxy in front of A), it refuses with the code and writes nothing.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readZkAttestation } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import type { VerityNode } from '@verity/node';
import { parseZkAudit, zkAuditMismatch, zkFacts, zkManifestDigest, zkVkKey } from '@verity/protocol';
import { compileCircom, compileModel, releaseCurves, setupCircuit, zkeyVerificationKey } from '@verity/zk';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { IRIS, PHASE1_PTAU as PTAU, pushZk, startPhase2Nodes } from '../../node/src/test-support/zk-network.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const AUDITOR = 7; // an anvil dev account that is no node
const dirs: string[] = [];
let chain: TestChain;
let deploymentFile: string;
let nodes: VerityNode[] = [];
let cid: string;
let manifest: never;
let miner: ReturnType<typeof setInterval> | undefined;
let proxy: Server | undefined;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verity-zk-audit-'));
  dirs.push(dir);
  return dir;
}

function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { timeout: 300_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  deploymentFile = join(await tempDir(), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  nodes = await startPhase2Nodes(chain, { deploymentFile, tempDir, count: 3 });
  // anvil mines a block per transaction only: the beacon block (one after the close) needs another.
  miner = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 500);
  ({ id: cid, manifest } = await pushZk(nodes[0] as VerityNode));
  expect(zkFacts(manifest).setup).toBe('multi-party');
}, 600_000);

afterAll(async () => {
  if (miner) clearInterval(miner);
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await Promise.all(nodes.map((n) => n.stop()));
  await chain?.stop();
  await releaseCurves();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  nodes = [];
});

describe('verity zk audit', () => {
  it('a second process with a clean data dir confirms from the artifact and the public transcripts that the vk belongs to the model’s circuit, and attests it', async () => {
    const dataDir = await tempDir();
    const chainFlags = ['--rpc', chain.anvil.rpcUrl, '--deployment', deploymentFile];
    const key = chain.anvil.privateKeys[AUDITOR] as string;
    const r = await verity(
      'zk',
      'audit',
      cid,
      '--url',
      nodes[0]?.url as string,
      '--data-dir',
      dataDir,
      ...chainFlags,
      '--ptau',
      PTAU,
      '--attest',
      '--account-key',
      key,
      '--json',
    );
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { path: string; attestation: { auditor: string } };
    expect(out.path).toBe(join(dataDir, 'zk', 'audits', `${cid}.json`));
    const audit = parseZkAudit(JSON.parse(readFileSync(out.path, 'utf8')));
    // It vouches for exactly the manifest's commitments…
    expect(zkAuditMismatch(audit, cid, zkFacts(manifest))).toEqual([]);
    expect(audit.setup).toBe('multi-party');
    // …with the transcript read from the chain: the publisher and the two drawn nodes, the beacon.
    expect(audit.contributors.map((c) => c.toLowerCase()).sort()).toEqual(
      nodes.map((n) => n.context.keys.address.toLowerCase()).sort(),
    );
    expect(audit.beacon).toMatch(/^0x[0-9a-f]{64}$/);
    // And the attestation is on chain, by the auditor's account, for the manifest and this key.
    const served = new Uint8Array(await (await fetch(`${nodes[0]?.url}/v1/zk/${cid}/zkey`)).arrayBuffer());
    const attested = await readZkAttestation(chain.publicClient, {
      zkVerifiers: JSON.parse(readFileSync(deploymentFile, 'utf8')).contracts.zkVerifiers as Address,
      auditor: chain.address(AUDITOR),
      manifestDigest: zkManifestDigest(cid),
    });
    expect(attested).toBe(zkVkKey(await zkeyVerificationKey(served)));
    expect(out.attestation.auditor).toBe(chain.address(AUDITOR));
  }, 600_000);

  it('served a swapped key for the same circuit, the audit refuses it (transcript ≠ chain) and writes nothing', async () => {
    // Someone else's valid key for the same circuit and phase 1: zkey verify alone would pass.
    const circuit = await compileCircom(
      compileModel(new Uint8Array(readFileSync(IRIS)), { params: zkFacts(manifest).params }).circom,
    );
    const swapped = (await setupCircuit(circuit, { cacheDir: await tempDir(), ptauPath: PTAU, verify: false })).zkey;
    const a = nodes[0] as VerityNode;
    proxy = createServer(async (req, res) => {
      if (req.url?.endsWith('/zkey')) {
        res.setHeader('content-type', 'application/octet-stream');
        res.end(swapped);
        return;
      }
      const upstream = await fetch(`${a.url}${req.url}`, { headers: { accept: req.headers.accept ?? '*/*' } });
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream',
      });
      res.end(new Uint8Array(await upstream.arrayBuffer()));
    });
    await new Promise<void>((r) => proxy?.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const dataDir = await tempDir();
    const r = await verity(
      'zk',
      'audit',
      cid,
      '--url',
      url,
      '--data-dir',
      dataDir,
      '--rpc',
      chain.anvil.rpcUrl,
      '--deployment',
      deploymentFile,
      '--ptau',
      PTAU,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ZK_TRANSCRIPT_MISMATCH/);
    expect(existsSync(join(dataDir, 'zk', 'audits', `${cid}.json`))).toBe(false);
  }, 600_000);
});
