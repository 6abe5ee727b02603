/**
 * Offline, trustless bundles (docs/design.md §2.6a, docs/protocol.md §13). A bundle carries
 * `NodeRegistry` at a block B with EIP-1186 proofs (`registryProof`); a verifier that pins B —
 * its number and hash, or its header, from any source it trusts — gets the registry from the
 * bundle itself, with no RPC, in Node or a browser.
 *
 * Two steps, as everywhere in Verity: {@link trustFromRegistryProof} is the trust-gathering step
 * (done offline: it checks the proofs against the pin and the deployment), and `verifyBundle`
 * does the rest with that trust. {@link verifyBundleOffline} chains them.
 */
import { getRegistryProof } from '@verity/contracts';
import {
  type Bundle,
  isVerityError,
  type PinnedBlock,
  parseBundle,
  type RegistryDeployment,
  registrySnapshotFromProof,
  type Trust,
  type TrustedNode,
  type VerifyOptions,
  type VerifyResult,
  VerityError,
  verifyBundle,
} from '@verity/protocol';
import { createPublicClient, http, type PublicClient } from 'viem';

/** Where the registry proof is read from. */
export interface RegistryProofSource {
  /** JSON-RPC URL of a node that serves `eth_getProof` for block B (an archive node for old blocks). */
  readonly rpcUrl: string;
  /** The `NodeRegistry` address (from the deployment file). */
  readonly nodeRegistry: `0x${string}`;
  /** A client to read with (default: one made for `rpcUrl`). */
  readonly publicClient?: PublicClient;
}

/**
 * `bundle` with `registryProof` set: `NodeRegistry` at `block` (default: the latest) with the
 * proofs that let a verifier check it offline against that block. In `quorum` mode prove the
 * block the selection was made at, so the verifier recomputes the ranking from the same registry.
 *
 * @example
 * ```ts
 * const { bundle } = await verity.infer({ model: 'iris@1.0.0', input });
 * const offline = await withRegistryProof({ rpcUrl, nodeRegistry }, bundle());
 * await writeFile('answer.bundle.json', JSON.stringify(offline));
 * ```
 */
export async function withRegistryProof(source: RegistryProofSource, bundle: Bundle, block?: bigint): Promise<Bundle> {
  const publicClient = source.publicClient ?? (createPublicClient({ transport: http(source.rpcUrl) }) as PublicClient);
  const registryProof = await getRegistryProof(publicClient, {
    nodeRegistry: source.nodeRegistry,
    ...(block === undefined ? {} : { blockNumber: block }),
  });
  return { ...bundle, registryProof };
}

/** What an offline verifier trusts. */
export interface OfflineTrustOptions {
  /** The block it pins: `{ number, hash }` or `{ header }` (RLP hex), from a source it trusts. */
  readonly block: PinnedBlock;
  /** The deployment it trusts (its deployment file): chain id, `NodeRegistry`, `minStake`. */
  readonly deployment: RegistryDeployment;
  /** Keys pinned by hand, trusted besides the registry (default none). */
  readonly nodes?: readonly TrustedNode[];
}

/**
 * The trust a bundle's `registryProof` yields under a pinned block: `Trust.registry` is the
 * registry at that block, every registered and unbonding node. Reads nothing from the network.
 * Throws `REGISTRY_PROOF_MISSING` for a bundle without proof, or the proof's own code
 * (`REGISTRY_HEADER_MISMATCH`, `REGISTRY_STORAGE_PROOF_INVALID`, … see `registrySnapshotFromProof`).
 *
 * @example
 * ```ts
 * const trust = await trustFromRegistryProof(bundle, { block: { number: 120, hash }, deployment });
 * const result = verifyBundle(bundle, trust);
 * ```
 */
export async function trustFromRegistryProof(bundle: unknown, options: OfflineTrustOptions): Promise<Trust> {
  const parsed = parseBundle(bundle);
  if (parsed.registryProof === undefined) {
    throw new VerityError('REGISTRY_PROOF_MISSING', 'the bundle carries no registry proof to verify offline');
  }
  const registry = await registrySnapshotFromProof(parsed.registryProof, options.block, options.deployment);
  return { nodes: options.nodes ?? [], registry };
}

/**
 * Verifies a bundle fully offline: its registry proof against the pinned block, then the bundle
 * against that registry. Never throws for a bad bundle: every failure is a result with its code.
 *
 * @example
 * ```ts
 * const result = await verifyBundleOffline(bundle, { block: { number: 120, hash }, deployment });
 * if (!result.ok) console.log(result.code);
 * ```
 */
export async function verifyBundleOffline(
  bundle: unknown,
  trust: OfflineTrustOptions,
  options: VerifyOptions = {},
): Promise<VerifyResult> {
  let gathered: Trust;
  try {
    gathered = await trustFromRegistryProof(bundle, trust);
  } catch (e) {
    if (!isVerityError(e)) throw e;
    const error = e as VerityError;
    return { ok: false, code: error.code, error };
  }
  return verifyBundle(bundle, gathered, options);
}
