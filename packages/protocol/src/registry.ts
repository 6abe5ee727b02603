/**
 * The chain registry as verification sees it (docs/design.md §2.6a): the root of trust.
 *
 * A {@link RegistrySnapshot} is `NodeRegistry` read at one block — every registered or unbonding
 * entry, with its stake — plus what identifies the block. It is gathered outside verification
 * (over JSON-RPC by the SDK, or from EIP-1186 storage proofs carried in a bundle against a block
 * the verifier pins) and handed to `verifyBundle` through `Trust.registry`. What a node says about
 * itself is never a snapshot.
 */

/** One `NodeRegistry` entry at the snapshot's block. */
export interface RegistryNode {
  /** Ethereum account (EIP-55); the records' `node`. */
  readonly address: string;
  /** C2SP Ed25519 verifier key of the node's log (`origin+keyid+key`); its name is the origin. */
  readonly logKey: string;
  /** Stake in wei. */
  readonly stake: bigint;
  /** `registered`, `unbonding` or `exited` (the contract's `Status`). */
  readonly status: 'registered' | 'unbonding' | 'exited';
  /** Capability bitmask (`@verity/contracts` capabilities). */
  readonly capabilities: bigint;
  /** Base URL of the node's API as registered. */
  readonly endpoint: string;
}

/** `NodeRegistry` at one block. */
export interface RegistrySnapshot {
  /** EIP-155 chain id. */
  readonly chainId: number;
  /** Address of the `NodeRegistry` contract the entries were read from. */
  readonly nodeRegistry: string;
  /** The block: number and hash (0x-prefixed, 32 bytes hex). */
  readonly block: { readonly number: number; readonly hash: string };
  /** The registry's `minStake` (an entry is active when registered and staked at least this). */
  readonly minStake: bigint;
  /** Every registered or unbonding entry at the block (the contract's `listNodes`). */
  readonly nodes: readonly RegistryNode[];
}

/**
 * Whether a registry entry may vouch for answers at the snapshot's block: registered (not
 * unbonding or exited) and staked at least `minStake`.
 *
 * @example
 * ```ts
 * const active = snapshot.nodes.filter((n) => isActiveNode(snapshot, n));
 * ```
 */
export function isActiveNode(snapshot: RegistrySnapshot, node: RegistryNode): boolean {
  return node.status === 'registered' && node.stake >= snapshot.minStake;
}
