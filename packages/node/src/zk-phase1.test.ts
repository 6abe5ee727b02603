/**
 * A node's phase 1 from a `verity ceremony` recorded on chain (issue 11.2 with 11.1): real anvil,
 * a phase-1 ceremony of two parties (each records its hash with its own account) and a beacon,
 * run with @verity/zk's `runPhase1`; a node given the prepared file and the ceremony's id checks
 * the file against the record before it uses it, and its zk manifests name the ceremony
 * (`zk.phase1` kind `ceremony`) over a multi-party phase 2. A node given another file under that
 * ceremony's name refuses to push.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ceremonyChain, contributeToCeremony } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { zkFacts } from '@verity/protocol';
import { localParty, releaseCurves, runPhase1 } from '@verity/zk';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import type { VerityNode } from './node.js';
import { startChainNode } from './test-support/chain-node.js';
import { PHASE1_PTAU, PTAU_DIR, pushZk } from './test-support/zk-network.js';

const dirs: string[] = [];
let chain: TestChain;
let deploymentFile: string;
let ceremony: Address;
let phase1Id: string;
let phase1File: string;
const nodes: VerityNode[] = [];
let miner: ReturnType<typeof setInterval> | undefined;

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'verity-zk-phase1-'));
  dirs.push(dir);
  return dir;
}

async function node(ptauPath: string): Promise<VerityNode> {
  const n = await startChainNode(chain, {
    dataDir: await tempDir(),
    deploymentFile,
    overrides: {
      peers: { localNetwork: true },
      zk: { ptauDir: PTAU_DIR, ptauPath, phase1Ceremony: phase1Id, phase2Contributors: 1 },
    },
  });
  nodes.push(n);
  return n;
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  ceremony = deployment.contracts.ceremony as Address;
  deploymentFile = join(await tempDir(), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  miner = setInterval(() => void chain.testClient.mine({ blocks: 1 }).catch(() => undefined), 500);
  // Two parties (dev accounts 3 and 4), each recording its own contribution, then the beacon.
  const parties = [3, 4].map((i) =>
    localParty({
      account: chain.address(i),
      record: ({ id, prevHash, newHash }) =>
        contributeToCeremony(chain.clients(i), { ceremony, id, prevHash, newHash }),
    }),
  );
  const result = await runPhase1({ power: 10, parties, chain: ceremonyChain(chain.clients(2), ceremony) });
  phase1Id = result.id;
  phase1File = join(await tempDir(), 'phase1.ptau');
  await writeFile(phase1File, result.prepared);
}, 600_000);

afterAll(async () => {
  if (miner) clearInterval(miner);
  await Promise.all(nodes.map((n) => n.stop()));
  await chain?.stop();
  await releaseCurves();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('phase 1 from a ceremony on chain', () => {
  it('a node checks the file against the record and names the ceremony in its zk manifests', async () => {
    const a = await node(phase1File);
    await node(phase1File); // a second node to contribute to phase 2
    const { manifest } = await pushZk(a);
    const facts = zkFacts(manifest);
    expect(facts.phase1).toEqual({ kind: 'ceremony', chainId: 31337, address: ceremony, id: phase1Id });
    expect(facts.setup).toBe('multi-party');
  }, 600_000);

  it('a node given another file under the ceremony’s name refuses to push', async () => {
    const liar = await node(PHASE1_PTAU); // a local-dev file, not the ceremony's
    await expect(pushZk(liar, 'iris-zk-2')).rejects.toThrow(/ZK_TRANSCRIPT_MISMATCH|ZK_CEREMONY_INVALID/);
  }, 600_000);
});
