/**
 * The caller's side of a quorum (docs/protocol.md §11), for ONNX (`infer`) and language models
 * (`chatQuorum`) alike: pick the seed (a random nonce and, with a registry, the head block),
 * check the coordinator drew with it, and gather the trust to verify the answer (the registry at
 * that block).
 */
import { QUORUM_NONCE, type QuorumEvidence, type Trust, toHex, VerityError } from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { gatherTrust } from './node-info.js';
import { registryClient, registrySnapshot } from './registry.js';

/** What the caller asks a quorum with. */
export interface QuorumAsk {
  readonly k: number;
  readonly nonce: string;
  /** The block named (only when the client knows the registry). */
  readonly block?: number;
}

/**
 * The seed of a quorum request: the caller's nonce (16 random bytes unless one is given) and, when
 * the client has `registry`, the latest block read from its own RPC endpoint.
 */
export async function askQuorum(client: ClientBase, k: number, nonce?: string): Promise<QuorumAsk> {
  const n = nonce ?? toHex(globalThis.crypto.getRandomValues(new Uint8Array(16)));
  if (!QUORUM_NONCE.test(n)) {
    throw new VerityError('INVALID_ARGUMENT', 'a quorum clientNonce is 16 to 64 random bytes of lower-case hex');
  }
  if (client.registry === undefined) return { k, nonce: n };
  const block = Number(await registryClient(client.registry).getBlockNumber({ cacheTime: 0 }));
  return { k, nonce: n, block };
}

/**
 * Checks that the answer's selection is the one asked for (the coordinator chose nothing in the
 * seed) and returns the trust to verify it with: the registry at the block; without a chain, the
 * keys pinned by hand, or — only with `insecureTrustNode` — the node entries the coordinator sent
 * (the selection is then not checked).
 */
export async function quorumTrust(client: ClientBase, asked: QuorumAsk, quorum: unknown): Promise<Trust> {
  const q = quorum as QuorumEvidence | undefined;
  if (typeof q !== 'object' || q === null) {
    throw new VerityError('RESPONSE_INVALID', 'a quorum answer without its selection (quorum)');
  }
  if (q.nonce !== asked.nonce || q.k !== asked.k || (asked.block !== undefined && q.block?.number !== asked.block)) {
    throw new VerityError('RESPONSE_INVALID', 'the quorum was drawn for another block, nonce or k than asked', {
      details: { block: asked.block, k: asked.k },
    });
  }
  if (client.registry) {
    const registry = await registrySnapshot(client.registry, BigInt(q.block.number));
    return { nodes: client.trust?.nodes ?? [], registry };
  }
  // No chain: keys pinned by hand, or (only when asked for, insecurely) the coordinator's list.
  if (client.insecureTrustNode && client.trust === undefined) return { nodes: [], insecureAcceptBundleNodes: true };
  return gatherTrust(client);
}
