/**
 * zk test networks: nodes on a test chain that run a push's phase 2 among themselves, and a zk
 * push, as the zk tests of the node and the CLI say them (one place for the same lines).
 *
 * ```ts
 * const nodes = await startPhase2Nodes(chain, { deploymentFile, tempDir, count: 3 });
 * const { id, manifest } = await pushZk(nodes[0]);
 * ```
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VerityNode } from '../node.js';
import { type FundingChain, startChainNode } from './chain-node.js';

/** The iris example model. */
export const IRIS = fileURLToPath(new URL('../../../../examples/models/iris.onnx', import.meta.url));
/** The zk tests' shared powers-of-tau cache. */
export const PTAU_DIR = process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau');
/** Its 2^10 file, given to nodes as a phase-1 file (as a public ceremony's would be). */
export const PHASE1_PTAU = join(PTAU_DIR, 'local-dev-bn128-2p10.ptau');

/**
 * `count` nodes on `chain` in local mode with the phase-1 file: a zk push on one of them runs a
 * phase 2 with the others (up to 2 drawn).
 */
export async function startPhase2Nodes(
  chain: FundingChain,
  params: { readonly deploymentFile: string; readonly tempDir: () => Promise<string>; readonly count: number },
): Promise<VerityNode[]> {
  const nodes: VerityNode[] = [];
  for (let i = 0; i < params.count; i++) {
    nodes.push(
      await startChainNode(chain, {
        dataDir: await params.tempDir(),
        deploymentFile: params.deploymentFile,
        overrides: {
          peers: { localNetwork: true },
          zk: { ptauDir: PTAU_DIR, ptauPath: PHASE1_PTAU, phase2Contributors: 2 },
        },
      }),
    );
  }
  return nodes;
}

/** Pushes iris with zk to `node` (its API key); the model view, or throws with the node's answer. */
export async function pushZk(node: VerityNode, name = 'iris-zk'): Promise<{ id: string; manifest: never }> {
  const res = await fetch(`${node.url}/v1/models?name=${name}&version=1.0.0&zk=1`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: readFileSync(IRIS),
  });
  if (res.status !== 201) throw new Error(`push failed: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; manifest: never };
}
