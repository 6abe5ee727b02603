/**
 * The viem clients that the actions of this package take, and the one place where a write is sent
 * and confirmed.
 */
import { fail } from '@verity/protocol';
import type {
  Account,
  Address,
  Chain,
  Hash,
  Hex,
  PublicClient,
  TransactionReceipt,
  Transport,
  WalletClient,
} from 'viem';
import { isAddress, isHex } from 'viem';
import { chainError } from './chain-error.js';

/** A reading client and a signing client on the same chain; writes are signed by `walletClient.account`. */
export interface ChainClients {
  readonly publicClient: PublicClient;
  readonly walletClient: WalletClient<Transport, Chain | undefined, Account>;
}

/** Reads at a block (default: latest), e.g. a registry entry as it was when a receipt was made. */
export interface ReadOptions {
  readonly blockNumber?: bigint;
}

/**
 * Sends a transaction and waits for its receipt; any failure (a revert, the RPC endpoint down) is
 * a `VerityError` (see `chainError`).
 */
export async function sendAndConfirm(
  clients: ChainClients,
  action: string,
  send: () => Promise<Hash>,
): Promise<TransactionReceipt> {
  try {
    const hash = await send();
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash });
    // Gas estimation catches reverts before sending; a receipt can still say reverted when the
    // state moved between estimation and inclusion.
    if (receipt.status !== 'success') {
      fail('INVALID_ARGUMENT', `${action}: the transaction reverted`, { action, transactionHash: hash });
    }
    return receipt;
  } catch (e) {
    throw chainError(e, action);
  }
}

/** Runs a read, mapping failures to `VerityError`s. */
export async function read<T>(action: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw chainError(e, action);
  }
}

/** A 32-byte value (log key, root hash) from bytes or hex, as the hex that viem wants. */
export function bytes32(value: Uint8Array | Hex, what: string): Hex {
  if (value instanceof Uint8Array) {
    if (value.length !== 32) fail('INVALID_ARGUMENT', `${what} must be 32 bytes`, { length: value.length });
    let hex = '0x';
    for (const b of value) hex += b.toString(16).padStart(2, '0');
    return hex as Hex;
  }
  if (!isHex(value, { strict: true }) || value.length !== 66) {
    fail('INVALID_ARGUMENT', `${what} must be 32 bytes of hex`, { value });
  }
  return value.toLowerCase() as Hex;
}

/** Checks an address argument (any case; viem checks EIP-55 checksums where mixed case). */
export function address(value: string, what: string): Address {
  if (!isAddress(value, { strict: false })) fail('INVALID_ARGUMENT', `${what} is not an address`, { value });
  return value;
}
