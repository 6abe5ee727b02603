/**
 * Actions on `Ceremony` (contracts/Ceremony.sol): the on-chain transcript of a multi-party
 * Groth16 setup (docs/design.md §2.6). A contributor records the hash of its contribution from its
 * own account; the opener closes; anyone finalizes with the beacon block's hash. What the hashes
 * are (and how a final file is checked against a record) is defined in packages/zk/README.md.
 */
import { fail } from '@verity/protocol';
import type { Address, Hex, PublicClient, TransactionReceipt } from 'viem';
import { address, bytes32, type ChainClients, type ReadOptions, read, sendAndConfirm } from './clients.js';
import { ceremonyAbi } from './generated/ceremony.js';

/** 1: phase 1 (powers of tau); 2: phase 2 (one circuit's zkey). */
export type CeremonyKind = 1 | 2;

/** One recorded contribution. */
export interface CeremonyContribution {
  readonly contributor: Address;
  /** The contribution's hash (packages/zk/README.md), 32 bytes of hex. */
  readonly hash: Hex;
  /** Block in which it was recorded. */
  readonly block: bigint;
}

/** A ceremony as read from the chain. */
export interface CeremonyRecord {
  readonly id: Hex;
  readonly kind: CeremonyKind;
  readonly opener: Address;
  /** Phase 2: SHA-256 of the circuit's R1CS; phase 1: the power, as a 32-byte number. */
  readonly subject: Hex;
  readonly initialHash: Hex;
  /** The last recorded hash (`initialHash` before the first contribution). */
  readonly head: Hex;
  /** True when only the accounts listed at `open` may contribute. */
  readonly restricted: boolean;
  readonly contributions: readonly CeremonyContribution[];
  /** 0 until closed; then the block whose hash is the beacon. */
  readonly beaconBlock: bigint;
  /** `blockhash(beaconBlock)`, once finalized. */
  readonly beacon?: Hex;
  /** The final file's hash, once finalized. */
  readonly finalHash?: Hex;
}

/** Parameters of {@link openCeremony}. */
export interface OpenCeremonyParams {
  readonly ceremony: Address;
  readonly id: Uint8Array | Hex;
  readonly kind: CeremonyKind;
  readonly subject: Uint8Array | Hex;
  readonly initialHash: Uint8Array | Hex;
  /** Empty or absent: anyone may contribute (each account once). */
  readonly contributors?: readonly Address[];
}

const ZERO = `0x${'0'.repeat(64)}`;

function kindOf(value: number): CeremonyKind {
  if (value !== 1 && value !== 2) fail('INVALID_ARGUMENT', 'ceremony kind must be 1 or 2', { kind: value });
  return value;
}

/**
 * Opens a ceremony from the wallet's account (who alone may close it). The id must be new.
 *
 * @example
 * ```ts
 * await openCeremony(clients, { ceremony, id, kind: 2, subject: `0x${r1csHash}`, initialHash, contributors });
 * ```
 */
export async function openCeremony(clients: ChainClients, params: OpenCeremonyParams): Promise<TransactionReceipt> {
  const args = [
    bytes32(params.id, 'id'),
    kindOf(params.kind),
    bytes32(params.subject, 'subject'),
    bytes32(params.initialHash, 'initialHash'),
    (params.contributors ?? []).map((a) => address(a, 'contributor')),
  ] as const;
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'openCeremony', () =>
    walletClient.writeContract({
      address: address(params.ceremony, 'ceremony'),
      abi: ceremonyAbi,
      functionName: 'open',
      args,
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/**
 * Records the wallet's contribution `newHash` on top of `prevHash`, which must be the head
 * (`ZK_TRANSCRIPT_MISMATCH`, revert `HeadMismatch`, if another contribution came first).
 *
 * @example
 * ```ts
 * await contributeToCeremony(clients, { ceremony, id, prevHash: record.head, newHash: step.hash });
 * ```
 */
export async function contributeToCeremony(
  clients: ChainClients,
  params: {
    readonly ceremony: Address;
    readonly id: Uint8Array | Hex;
    readonly prevHash: Uint8Array | Hex;
    readonly newHash: Uint8Array | Hex;
  },
): Promise<TransactionReceipt> {
  const args = [
    bytes32(params.id, 'id'),
    bytes32(params.prevHash, 'prevHash'),
    bytes32(params.newHash, 'newHash'),
  ] as const;
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'contributeToCeremony', () =>
    walletClient.writeContract({
      address: address(params.ceremony, 'ceremony'),
      abi: ceremonyAbi,
      functionName: 'contribute',
      args,
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** Ends the contributions (opener only); the receipt's block + 1 is the beacon block. */
export async function closeCeremony(
  clients: ChainClients,
  params: { readonly ceremony: Address; readonly id: Uint8Array | Hex },
): Promise<TransactionReceipt> {
  const id = bytes32(params.id, 'id');
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'closeCeremony', () =>
    walletClient.writeContract({
      address: address(params.ceremony, 'ceremony'),
      abi: ceremonyAbi,
      functionName: 'close',
      args: [id],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/**
 * Stores the beacon (`blockhash(beaconBlock)`, taken by the contract) and the final file's hash.
 * Anyone may, once, after the beacon block is mined (`ZK_CEREMONY_UNFINISHED`, revert
 * `BeaconNotMined`, before) and within 256 blocks of it.
 */
export async function finalizeCeremony(
  clients: ChainClients,
  params: { readonly ceremony: Address; readonly id: Uint8Array | Hex; readonly finalHash: Uint8Array | Hex },
): Promise<TransactionReceipt> {
  const args = [bytes32(params.id, 'id'), bytes32(params.finalHash, 'finalHash')] as const;
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'finalizeCeremony', () =>
    walletClient.writeContract({
      address: address(params.ceremony, 'ceremony'),
      abi: ceremonyAbi,
      functionName: 'finalize',
      args,
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/**
 * A ceremony at a block (default: latest); `NOT_FOUND` if it was never opened.
 *
 * @example
 * ```ts
 * const record = await readCeremony(publicClient, ceremony, id);
 * record.contributions.map((c) => c.contributor);
 * ```
 */
export async function readCeremony(
  client: PublicClient | ChainClients,
  ceremony: Address,
  id: Uint8Array | Hex,
  options: ReadOptions = {},
): Promise<CeremonyRecord> {
  const publicClient = 'publicClient' in client ? client.publicClient : client;
  const key = bytes32(id, 'id');
  const at = { address: address(ceremony, 'ceremony'), abi: ceremonyAbi, blockNumber: options.blockNumber } as const;
  const [r, steps] = await read('readCeremony', () =>
    Promise.all([
      publicClient.readContract({ ...at, functionName: 'ceremony', args: [key] }),
      publicClient.readContract({ ...at, functionName: 'contributions', args: [key] }),
    ]),
  );
  if (/^0x0{40}$/.test(r.opener)) fail('NOT_FOUND', 'no such ceremony', { ceremony, id: key });
  return {
    id: key,
    kind: kindOf(r.kind),
    opener: r.opener,
    subject: r.subject,
    initialHash: r.initialHash,
    head: r.head,
    restricted: r.restricted,
    contributions: steps.map((s) => ({ contributor: s.contributor, hash: s.hash, block: s.blockNumber })),
    beaconBlock: r.beaconBlock,
    ...(r.beacon === ZERO ? {} : { beacon: r.beacon }),
    ...(r.finalHash === ZERO ? {} : { finalHash: r.finalHash }),
  };
}

/** True if `account` may still contribute to the ceremony (open, allowed, not yet contributed). */
export async function mayContributeToCeremony(
  publicClient: PublicClient,
  params: { readonly ceremony: Address; readonly id: Uint8Array | Hex; readonly account: Address },
): Promise<boolean> {
  const args = [bytes32(params.id, 'id'), address(params.account, 'account')] as const;
  return read('mayContributeToCeremony', () =>
    publicClient.readContract({
      address: address(params.ceremony, 'ceremony'),
      abi: ceremonyAbi,
      functionName: 'mayContribute',
      args,
    }),
  );
}

/**
 * The beacon of a closed ceremony as the chain will take it: the hash of block `beaconBlock`, or
 * `undefined` while that block is not mined yet. Read it to make the beacon step before
 * {@link finalizeCeremony} (which stores the same hash, taken on chain).
 */
export async function readBeaconHash(publicClient: PublicClient, beaconBlock: bigint): Promise<Hex | undefined> {
  if (beaconBlock <= 0n) fail('INVALID_ARGUMENT', 'the ceremony is not closed (no beacon block)', { beaconBlock });
  return read('readBeaconHash', async () => {
    const latest = await publicClient.getBlockNumber({ cacheTime: 0 });
    if (latest < beaconBlock) return undefined;
    const block = await publicClient.getBlock({ blockNumber: beaconBlock });
    return block.hash ?? undefined;
  });
}

/** Options of {@link ceremonyChain}. */
export interface CeremonyChainOptions {
  /** How often to look for the beacon block; default 1 s. */
  readonly pollMs?: number;
  /**
   * Called while waiting for the beacon block. A local chain that mines a block per transaction
   * (anvil's default) mines none while idle: pass e.g. `() => testClient.mine({ blocks: 1 })`.
   */
  readonly whileWaiting?: () => Promise<unknown>;
}

/**
 * The chain side of a ceremony run (`runCeremony`/`runPhase2` of @verity/zk take it): open,
 * close and finalize from the wallet's account, the beacon block's hash once mined, the record.
 * Contributions are recorded by each party with its own wallet ({@link contributeToCeremony}).
 *
 * @example
 * ```ts
 * await runPhase2({ r1cs, ptau, parties, chain: ceremonyChain(clients, deployment.contracts.ceremony) });
 * ```
 */
export function ceremonyChain(clients: ChainClients, ceremony: Address, options: CeremonyChainOptions = {}) {
  return {
    async open(p: {
      readonly id: Hex;
      readonly kind: CeremonyKind;
      readonly subject: Hex;
      readonly initialHash: Hex;
      readonly contributors: readonly string[];
    }): Promise<void> {
      await openCeremony(clients, { ceremony, ...p, contributors: p.contributors as Address[] });
    },
    async close(id: Hex): Promise<{ beaconBlock: bigint }> {
      const receipt = await closeCeremony(clients, { ceremony, id });
      return { beaconBlock: receipt.blockNumber + 1n };
    },
    async blockHash(block: bigint): Promise<Hex> {
      for (;;) {
        const hash = await readBeaconHash(clients.publicClient, block);
        if (hash !== undefined) return hash;
        await options.whileWaiting?.();
        await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 1000));
      }
    },
    async finalize(id: Hex, finalHash: Hex): Promise<void> {
      await finalizeCeremony(clients, { ceremony, id, finalHash });
    },
    read: (id: Hex): Promise<CeremonyRecord> => readCeremony(clients.publicClient, ceremony, id),
  };
}
