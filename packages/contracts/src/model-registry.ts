/**
 * Actions on `ModelRegistry` (contracts/ModelRegistry.sol): `name@version` → manifest CID.
 */
import { isVerityError } from '@verity/protocol';
import type { Address, PublicClient, TransactionReceipt } from 'viem';
import { address, type ChainClients, type ReadOptions, read, sendAndConfirm } from './clients.js';
import { modelRegistryAbi } from './generated/model-registry.js';

/** A published version, as read at some block. */
export interface ModelVersion {
  readonly name: string;
  readonly version: string;
  /** CID of the manifest (docs/design.md §2.1). */
  readonly manifestCid: string;
  readonly publisher: Address;
  /** Block in which it was published. */
  readonly publishedAt: bigint;
  readonly deprecated: boolean;
}

/** Parameters of {@link publishModel}. */
export interface PublishModelParams {
  readonly modelRegistry: Address;
  /** `[a-z0-9][a-z0-9._-]{0,63}`, as in manifests. */
  readonly name: string;
  /** A semantic version. */
  readonly version: string;
  readonly manifestCid: string;
}

/**
 * Publishes `name@version`. The first publisher of a name owns it; a published version can never
 * be changed (`MODEL_CONFLICT`), only deprecated.
 *
 * @example
 * ```ts
 * await publishModel(clients, { modelRegistry, name: 'iris', version: '1.2.0', manifestCid: 'bagaaiera…' });
 * ```
 */
export async function publishModel(clients: ChainClients, params: PublishModelParams): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'publish', () =>
    walletClient.writeContract({
      address: address(params.modelRegistry, 'modelRegistry'),
      abi: modelRegistryAbi,
      functionName: 'publish',
      args: [params.name, params.version, params.manifestCid],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Marks `name@version` deprecated (owner only); it still resolves, for old records. */
export async function deprecateModel(
  clients: ChainClients,
  params: { readonly modelRegistry: Address; readonly name: string; readonly version: string; readonly reason: string },
): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'deprecate', () =>
    walletClient.writeContract({
      address: address(params.modelRegistry, 'modelRegistry'),
      abi: modelRegistryAbi,
      functionName: 'deprecate',
      args: [params.name, params.version, params.reason],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Hands the ownership of a name to another account (owner only). */
export async function transferModelName(
  clients: ChainClients,
  params: { readonly modelRegistry: Address; readonly name: string; readonly to: Address },
): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'transferName', () =>
    walletClient.writeContract({
      address: address(params.modelRegistry, 'modelRegistry'),
      abi: modelRegistryAbi,
      functionName: 'transferName',
      args: [params.name, address(params.to, 'to')],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/**
 * `name@version` at a block (default: latest), or `undefined` if it was not published.
 *
 * @example
 * ```ts
 * const v = await resolveModel(publicClient, { modelRegistry, name: 'iris', version: '1.2.0' });
 * ```
 */
export async function resolveModel(
  publicClient: PublicClient,
  params: { readonly modelRegistry: Address; readonly name: string; readonly version: string } & ReadOptions,
): Promise<ModelVersion | undefined> {
  const call = read('resolveModel', () =>
    publicClient.readContract({
      address: params.modelRegistry,
      abi: modelRegistryAbi,
      functionName: 'resolve',
      args: [params.name, params.version],
      blockNumber: params.blockNumber,
    }),
  );
  return call.then(
    (v): ModelVersion => ({ name: params.name, version: params.version, ...v }),
    // The contract reverts `UnknownVersion`: an answer here, not an error.
    (e: unknown) => {
      if (isVerityError(e, 'MODEL_NOT_FOUND')) return undefined;
      throw e;
    },
  );
}

/** Every published version of a name, oldest first (deprecated ones included). */
export async function listModelVersions(
  publicClient: PublicClient,
  params: { readonly modelRegistry: Address; readonly name: string } & ReadOptions,
): Promise<readonly string[]> {
  return read('listModelVersions', () =>
    publicClient.readContract({
      address: params.modelRegistry,
      abi: modelRegistryAbi,
      functionName: 'versionsOf',
      args: [params.name],
      blockNumber: params.blockNumber,
    }),
  );
}

/** The owner of a name, or `undefined` if nobody published it yet. */
export async function getModelOwner(
  publicClient: PublicClient,
  params: { readonly modelRegistry: Address; readonly name: string } & ReadOptions,
): Promise<Address | undefined> {
  return read('getModelOwner', async () => {
    const owner = await publicClient.readContract({
      address: params.modelRegistry,
      abi: modelRegistryAbi,
      functionName: 'ownerOf',
      args: [params.name],
      blockNumber: params.blockNumber,
    });
    return /^0x0{40}$/.test(owner) ? undefined : owner;
  });
}
