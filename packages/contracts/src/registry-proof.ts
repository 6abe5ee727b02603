/**
 * Gathers the EIP-1186 evidence of `NodeRegistry` at a block (the bundle's `registryProof`,
 * docs/protocol.md §13) over JSON-RPC: the block header (RLP, re-encoded from
 * `eth_getBlockByNumber` and checked against the block hash), and `eth_getProof` for exactly the
 * slots the verifier reads. Which slots those are is not repeated here: the protocol's layout
 * walk (`readNodeRegistryStorage`) runs over `eth_getStorageAt` and records them. Browser-safe.
 */
import {
  fail,
  isVerityError,
  keccak256,
  type RegistryProofEvidence,
  readNodeRegistryStorage,
  registrySlotKey,
  registrySnapshotFromProof,
  toHex,
  VerityError,
} from '@verity/protocol';
import { type Address, getAddress, type Hex, hexToBytes, type PublicClient, pad, toRlp } from 'viem';
import { address, read } from './clients.js';

/** Slots per `eth_getProof` call (providers bound the request size). */
const PROOF_BATCH = 128;

/** A block as `eth_getBlockByNumber` returns it (the fields a header is made of). */
export type RpcBlock = Record<string, unknown>;

/**
 * Header fields in RLP order (Yellow Paper §4.3, then EIP-1559, EIP-4895, EIP-4844, EIP-4788,
 * EIP-7685): name in the JSON-RPC block, and whether it is a quantity (minimal big-endian, zero
 * is the empty string) or fixed bytes. The fields after `nonce` come with forks, each only after
 * all before it.
 */
const HEADER_FIELDS = [
  ['parentHash', 'bytes'],
  ['sha3Uncles', 'bytes'],
  ['miner', 'bytes'],
  ['stateRoot', 'bytes'],
  ['transactionsRoot', 'bytes'],
  ['receiptsRoot', 'bytes'],
  ['logsBloom', 'bytes'],
  ['difficulty', 'quantity'],
  ['number', 'quantity'],
  ['gasLimit', 'quantity'],
  ['gasUsed', 'quantity'],
  ['timestamp', 'quantity'],
  ['extraData', 'bytes'],
  ['mixHash', 'bytes'],
  ['nonce', 'bytes'],
  ['baseFeePerGas', 'quantity'],
  ['withdrawalsRoot', 'bytes'],
  ['blobGasUsed', 'quantity'],
  ['excessBlobGas', 'quantity'],
  ['parentBeaconBlockRoot', 'bytes'],
  ['requestsHash', 'bytes'],
] as const;
/** Fields every header has (up to `nonce`). */
const REQUIRED_FIELDS = 15;

function rpcHex(block: RpcBlock, name: string): Hex {
  const v = block[name];
  if (typeof v !== 'string' || !/^0x[0-9a-fA-F]*$/.test(v)) {
    fail('RESPONSE_INVALID', `block field ${name} is not hex`, { field: name });
  }
  return v.toLowerCase() as Hex;
}

/**
 * The RLP encoding of a block's header, from the JSON-RPC block: the fields present, in order.
 * Its Keccak-256 is the block hash (callers check that: {@link getRegistryProof} does).
 *
 * @example
 * ```ts
 * const block = await publicClient.request({ method: 'eth_getBlockByNumber', params: ['0x10', false] });
 * const header = encodeBlockHeader(block);
 * ```
 */
export function encodeBlockHeader(block: RpcBlock): Hex {
  const items: Hex[] = [];
  let ended = false;
  for (const [i, [name, kind]] of HEADER_FIELDS.entries()) {
    if (block[name] === undefined || block[name] === null) {
      if (i < REQUIRED_FIELDS) fail('RESPONSE_INVALID', `block has no ${name}`, { field: name });
      ended = true;
      continue;
    }
    if (ended) fail('RESPONSE_INVALID', `block has ${name} without the fork fields before it`, { field: name });
    const hex = rpcHex(block, name);
    if (kind === 'bytes') {
      if (hex.length % 2 !== 0) fail('RESPONSE_INVALID', `block field ${name} has odd hex length`, { field: name });
      items.push(hex);
    } else {
      const n = BigInt(hex === '0x' ? 0 : hex);
      const digits = n === 0n ? '' : n.toString(16);
      items.push(`0x${digits.length % 2 === 0 ? digits : `0${digits}`}`);
    }
  }
  return toRlp(items);
}

/** Parameters of {@link getRegistryProof}. */
export interface GetRegistryProofParams {
  readonly nodeRegistry: Address;
  /** The block to prove the registry at (default: latest). */
  readonly blockNumber?: bigint;
}

/**
 * `NodeRegistry` at a block with its proofs, ready to be carried in a bundle as `registryProof`:
 * the header, the account proof and one storage proof per slot the verifier reads (every
 * registered and unbonding node). The evidence is checked as a verifier will check it before it
 * is returned: `RESPONSE_INVALID` when it does not verify (an inconsistent endpoint, a reorg
 * between the calls, a header field this encoder does not know), `REGISTRY_DEPLOYMENT_MISMATCH`
 * when no registry is at the address at that block.
 *
 * @example
 * ```ts
 * const registryProof = await getRegistryProof(publicClient, { nodeRegistry, blockNumber: 120n });
 * const offline = { ...bundle, registryProof };
 * ```
 */
export async function getRegistryProof(
  publicClient: PublicClient,
  params: GetRegistryProofParams,
): Promise<RegistryProofEvidence> {
  const nodeRegistry = getAddress(address(params.nodeRegistry, 'nodeRegistry'));
  return read('getRegistryProof', async () => {
    const blockNumber = params.blockNumber ?? (await publicClient.getBlockNumber({ cacheTime: 0 }));
    const [chainId, block] = await Promise.all([
      publicClient.getChainId(),
      publicClient.request({ method: 'eth_getBlockByNumber', params: [`0x${blockNumber.toString(16)}`, false] }),
    ]);
    if (block === null || typeof block !== 'object') {
      return fail('BLOCK_NOT_FOUND', `no block ${blockNumber}`, { blockNumber: blockNumber.toString() });
    }
    const header = encodeBlockHeader(block as RpcBlock);
    const hash = `0x${toHex(keccak256(hexToBytes(header)))}`;
    if (hash !== rpcHex(block as RpcBlock, 'hash')) {
      fail('RESPONSE_INVALID', 'the re-encoded block header does not hash to the block hash', {
        blockNumber: blockNumber.toString(),
        hash: (block as RpcBlock).hash,
        encoded: hash,
      });
    }
    // Walk the layout over eth_getStorageAt, one batch at a time (its reads are independent, so
    // concurrent), recording the slots in the order they are asked for.
    const slots: Hex[] = [];
    await readNodeRegistryStorage({
      read: (reads) =>
        Promise.all(
          reads.map(async ({ slot }) => {
            const key = registrySlotKey(slot) as Hex;
            slots.push(key);
            const value = await publicClient.getStorageAt({ address: nodeRegistry, slot: key, blockNumber });
            // Left-padded: a storage word is a big-endian number.
            return hexToBytes(pad(value ?? '0x0', { size: 32 }));
          }),
        ),
    });
    let accountProof: readonly Hex[] | undefined;
    const storageProof: { key: string; proof: string[] }[] = [];
    for (let i = 0; i < slots.length; i += PROOF_BATCH) {
      const batch = slots.slice(i, i + PROOF_BATCH);
      const p = await publicClient.getProof({ address: nodeRegistry, storageKeys: batch, blockNumber });
      accountProof ??= p.accountProof;
      if (p.storageProof.length !== batch.length) {
        fail('RESPONSE_INVALID', 'eth_getProof returned another number of storage proofs', { asked: batch.length });
      }
      p.storageProof.forEach((s, j) => {
        storageProof.push({ key: batch[j] as string, proof: s.proof.map((n) => n.toLowerCase()) });
      });
    }
    if (accountProof === undefined) return fail('INTERNAL', 'no storage slot was read');
    const evidence = {
      chainId,
      nodeRegistry,
      header,
      accountProof: accountProof.map((n) => n.toLowerCase()),
      storageProof,
    };
    // Checked as a verifier will check it: an endpoint that answered inconsistently (or a reorg
    // between the calls) is caught here, not by whoever receives the bundle.
    try {
      await registrySnapshotFromProof(
        evidence,
        { number: Number(blockNumber), hash },
        { chainId, nodeRegistry, minStake: 0n },
      );
    } catch (cause) {
      // No registry at that block, or one too large to prove: the chain's state, said as such.
      if (isVerityError(cause, 'REGISTRY_DEPLOYMENT_MISMATCH') || isVerityError(cause, 'REGISTRY_ENTRY_INVALID')) {
        throw cause;
      }
      throw new VerityError('RESPONSE_INVALID', 'the registry proof read from the endpoint does not verify', {
        cause,
        details: { blockNumber: blockNumber.toString() },
      });
    }
    return evidence;
  });
}
