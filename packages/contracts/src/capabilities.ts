/**
 * What a node announces it can do, as the `uint64` bitmask stored in `NodeRegistry`.
 *
 * A bitmask rather than a list of strings: one storage slot, a fixed cost to read, and a client
 * filters nodes with one AND. The contract never interprets the bits; their meaning is fixed here
 * and never reassigned (new capabilities take new bits).
 */
import { fail } from '@verity/protocol';

/**
 * Bit positions. Modes are the verification modes of docs/design.md §2.6 (in the order of the record's
 * `mode` codes), runtimes the model kinds and execution profiles a node hosts, roles the extra
 * work it offers peers.
 */
export const CAPABILITY_BITS = {
  'mode:signed': 0,
  'mode:quorum': 1,
  'mode:audited': 2,
  'mode:zk': 3,
  'mode:tee': 4,
  'runtime:onnx-native': 16,
  'runtime:onnx-portable': 17,
  'runtime:llm': 18,
  'runtime:zk': 19,
  'role:witness': 32,
  'role:auditor': 33,
} as const;

/** One capability name. */
export type Capability = keyof typeof CAPABILITY_BITS;

const NAMES = Object.keys(CAPABILITY_BITS) as Capability[];

/**
 * The bitmask for a list of capabilities.
 *
 * @example
 * ```ts
 * encodeCapabilities(['mode:signed', 'runtime:onnx-native']); // 0x10001n
 * ```
 */
export function encodeCapabilities(capabilities: readonly Capability[]): bigint {
  let bits = 0n;
  for (const c of capabilities) {
    const bit = CAPABILITY_BITS[c];
    if (bit === undefined) fail('INVALID_ARGUMENT', `unknown capability ${String(c)}`, { capability: c });
    bits |= 1n << BigInt(bit);
  }
  return bits;
}

/**
 * The known capabilities in a bitmask, in the order of {@link CAPABILITY_BITS}; unknown bits
 * (set by newer software) are ignored.
 *
 * @example
 * ```ts
 * decodeCapabilities(0x10001n); // ['mode:signed', 'runtime:onnx-native']
 * ```
 */
export function decodeCapabilities(bits: bigint): Capability[] {
  return NAMES.filter((c) => ((bits >> BigInt(CAPABILITY_BITS[c])) & 1n) === 1n);
}

/** A bitmask from either form; checks that it fits the contract's `uint64`. */
export function capabilityBits(capabilities: readonly Capability[] | bigint): bigint {
  const bits = typeof capabilities === 'bigint' ? capabilities : encodeCapabilities(capabilities);
  if (bits < 0n || bits >= 1n << 64n) fail('INVALID_ARGUMENT', 'capabilities must fit in 64 bits');
  return bits;
}
