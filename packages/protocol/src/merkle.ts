/**
 * Merkle tree math of RFC 6962 §2.1 / RFC 9162 §2.1: leaf and node hashes, tree heads, inclusion
 * and consistency proofs, and their verification.
 *
 * Sizes and indices are plain numbers, exact up to 2^53 − 1. JavaScript bit operators work on
 * 32 bits, so every "shift" here is arithmetic (`Math.floor(x / 2)`), never `>>`.
 */
import { equalBytes } from './bytes.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';

/** Byte length of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

/** MTH({}) = SHA-256 of the empty string (RFC 6962 §2.1). */
export const EMPTY_ROOT: Uint8Array = sha256(new Uint8Array(0));

/**
 * Leaf hash: SHA-256(0x00 ‖ data) (RFC 6962 §2.1, domain-separated from interior nodes).
 *
 * @example
 * ```ts
 * toHex(hashLeaf(new Uint8Array())) // '6e340b9c…a01d'
 * ```
 */
export function hashLeaf(data: Uint8Array): Uint8Array {
  const buf = new Uint8Array(data.length + 1);
  buf.set(data, 1);
  return sha256(buf);
}

/**
 * Interior node hash: SHA-256(0x01 ‖ left ‖ right) (RFC 6962 §2.1).
 *
 * @example
 * ```ts
 * const root2 = hashChildren(hashLeaf(a), hashLeaf(b));
 * ```
 */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  const buf = new Uint8Array(1 + left.length + right.length);
  buf[0] = 1;
  buf.set(left, 1);
  buf.set(right, 1 + left.length);
  return sha256(buf);
}

/** Largest power of two strictly smaller than `n` (n ≥ 2): the split point k of RFC 6962 §2.1. */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  while (n % 2 === 0) n /= 2;
  return n === 1;
}

function assertSize(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 0)
    fail('INVALID_ARGUMENT', `${name} must be a non-negative safe integer`, { [name]: n });
}

/**
 * Read access to the hashes of a tree's complete (perfect) subtrees: `subtree(level, index)` is
 * the root of leaves `[index·2^level, (index+1)·2^level)`; level 0 is the leaf hashes themselves.
 * These are exactly what tlog tiles store, so proofs can be served from tiles, memory or disk.
 */
export interface MerkleHashReader {
  subtree(level: number, index: number): Uint8Array;
}

/** MTH(D[start:end]) for a range that the RFC 6962 recursion produces (start aligned to the split). */
function rangeHash(reader: MerkleHashReader, start: number, end: number): Uint8Array {
  const n = end - start;
  if (isPowerOfTwo(n)) {
    let level = 0;
    for (let m = n; m > 1; m /= 2) level++;
    return reader.subtree(level, start / n);
  }
  const k = splitPoint(n);
  return hashChildren(rangeHash(reader, start, start + k), rangeHash(reader, start + k, end));
}

/**
 * The tree head MTH(D[0:size]) (RFC 6962 §2.1).
 *
 * @example
 * ```ts
 * const tree = createMemoryTree(); tree.append(hashLeaf(data));
 * rootFromReader(tree, 1) // equals hashLeaf(data)
 * ```
 */
export function rootFromReader(reader: MerkleHashReader, size: number): Uint8Array {
  assertSize('size', size);
  return size === 0 ? EMPTY_ROOT : rangeHash(reader, 0, size);
}

/**
 * Inclusion proof PATH(index, D[0:size]) (RFC 9162 §2.1.3.1), leaf-side first.
 *
 * @example
 * ```ts
 * const proof = inclusionProofFromReader(tree, 5, 8);
 * verifyInclusion(leafHash, 5, 8, proof, root);
 * ```
 */
export function inclusionProofFromReader(reader: MerkleHashReader, index: number, size: number): Uint8Array[] {
  assertSize('size', size);
  assertSize('index', index);
  if (index >= size) fail('MERKLE_INDEX_OUT_OF_RANGE', 'leaf index is not below the tree size', { index, size });
  const proof: Uint8Array[] = [];
  // Walk down from the root, collecting siblings; emitted bottom-up as the RFC orders them.
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index < start + k) {
      proof.push(rangeHash(reader, start + k, end));
      end = start + k;
    } else {
      proof.push(rangeHash(reader, start, start + k));
      start += k;
    }
  }
  return proof.reverse();
}

/**
 * Consistency proof PROOF(size1, D[0:size2]) (RFC 9162 §2.1.4.1).
 *
 * @example
 * ```ts
 * const proof = consistencyProofFromReader(tree, 6, 8);
 * verifyConsistency(6, 8, proof, root6, root8);
 * ```
 */
export function consistencyProofFromReader(reader: MerkleHashReader, size1: number, size2: number): Uint8Array[] {
  assertSize('size1', size1);
  assertSize('size2', size2);
  if (size1 > size2) fail('MERKLE_INDEX_OUT_OF_RANGE', 'size1 must not exceed size2', { size1, size2 });
  if (size1 === 0 || size1 === size2) return [];
  const proof: Uint8Array[] = [];
  // SUBPROOF(m, D[start:end], b), unrolled.
  let m = size1;
  let start = 0;
  let end = size2;
  let complete = true;
  while (true) {
    const n = end - start;
    if (m === n) {
      if (!complete) proof.push(rangeHash(reader, start, end));
      break;
    }
    const k = splitPoint(n);
    if (m <= k) {
      proof.push(rangeHash(reader, start + k, end));
      end = start + k;
    } else {
      proof.push(rangeHash(reader, start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  return proof.reverse();
}

/** An in-memory tree that keeps every complete subtree hash: for tests, tools and small logs. */
export interface MemoryTree extends MerkleHashReader {
  /** Number of leaves. */
  readonly size: number;
  /** Appends a leaf hash (already `hashLeaf`ed); returns its index. */
  append(leafHash: Uint8Array): number;
  /** Tree head at `size` (default: current size). */
  root(size?: number): Uint8Array;
  inclusionProof(index: number, size?: number): Uint8Array[];
  consistencyProof(size1: number, size2?: number): Uint8Array[];
}

/**
 * Creates a {@link MemoryTree}. Appending is amortised O(1) hashes.
 *
 * @example
 * ```ts
 * const tree = createMemoryTree();
 * for (const d of data) tree.append(hashLeaf(d));
 * const proof = tree.inclusionProof(3);
 * ```
 */
export function createMemoryTree(leafHashes: Iterable<Uint8Array> = []): MemoryTree {
  const levels: Uint8Array[][] = [[]];
  const tree: MemoryTree = {
    get size() {
      return (levels[0] as Uint8Array[]).length;
    },
    subtree(level, index) {
      const h = levels[level]?.[index];
      if (h === undefined) fail('MERKLE_INDEX_OUT_OF_RANGE', 'no such complete subtree', { level, index });
      return h;
    },
    append(leafHash) {
      if (leafHash.length !== HASH_SIZE) fail('INVALID_ARGUMENT', 'leaf hash must be 32 bytes');
      const l0 = levels[0] as Uint8Array[];
      const index = l0.length;
      l0.push(leafHash);
      // Complete every subtree that this leaf closes.
      let level = 0;
      let i = index;
      let h = leafHash;
      while (i % 2 === 1) {
        const left = (levels[level] as Uint8Array[])[i - 1] as Uint8Array;
        h = hashChildren(left, h);
        level++;
        i = (i - 1) / 2;
        if (levels[level] === undefined) levels[level] = [];
        (levels[level] as Uint8Array[]).push(h);
      }
      return index;
    },
    root(size = tree.size) {
      if (size > tree.size) fail('MERKLE_INDEX_OUT_OF_RANGE', 'size beyond the tree', { size, treeSize: tree.size });
      return rootFromReader(tree, size);
    },
    inclusionProof(index, size = tree.size) {
      if (size > tree.size) fail('MERKLE_INDEX_OUT_OF_RANGE', 'size beyond the tree', { size, treeSize: tree.size });
      return inclusionProofFromReader(tree, index, size);
    },
    consistencyProof(size1, size2 = tree.size) {
      if (size2 > tree.size) fail('MERKLE_INDEX_OUT_OF_RANGE', 'size beyond the tree', { size2, treeSize: tree.size });
      return consistencyProofFromReader(tree, size1, size2);
    },
  };
  for (const h of leafHashes) tree.append(h);
  return tree;
}

function assertHashes(what: string, hashes: readonly Uint8Array[]): void {
  for (const h of hashes) {
    if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
      fail('MERKLE_PROOF_MALFORMED', `${what}: every hash must be ${HASH_SIZE} bytes`);
    }
  }
}

/**
 * Root implied by an inclusion proof (RFC 9162 §2.1.3.2 steps 1–4). Throws
 * `MERKLE_INDEX_OUT_OF_RANGE` or `MERKLE_PROOF_MALFORMED` (wrong proof length or hash size).
 *
 * @example
 * ```ts
 * equalBytes(rootFromInclusionProof(leafHash, 5, 8, proof), root)
 * ```
 */
export function rootFromInclusionProof(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): Uint8Array {
  assertSize('size', size);
  assertSize('index', index);
  if (index >= size) fail('MERKLE_INDEX_OUT_OF_RANGE', 'leaf index is not below the tree size', { index, size });
  assertHashes('leaf hash', [leafHash]);
  assertHashes('inclusion proof', proof);
  let fn = index;
  let sn = size - 1;
  let r = leafHash;
  for (const p of proof) {
    if (sn === 0) fail('MERKLE_PROOF_MALFORMED', 'inclusion proof is too long', { index, size, length: proof.length });
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('MERKLE_PROOF_MALFORMED', 'inclusion proof is too short', { index, size, length: proof.length });
  return r;
}

/**
 * Verifies an inclusion proof against a tree head (RFC 9162 §2.1.3.2). Throws
 * `INCLUSION_PROOF_INVALID` when the computed root differs, `MERKLE_PROOF_MALFORMED` or
 * `MERKLE_INDEX_OUT_OF_RANGE` when the proof cannot even be evaluated.
 *
 * @example
 * ```ts
 * verifyInclusion(hashLeaf(recordBytes), receipt.leafIndex, checkpoint.size, proof, checkpoint.rootHash);
 * ```
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  const got = rootFromInclusionProof(leafHash, index, size, proof);
  if (!equalBytes(got, root))
    fail('INCLUSION_PROOF_INVALID', 'inclusion proof does not lead to the root', { index, size });
}

/**
 * Verifies that the tree of `size2` with head `root2` extends the tree of `size1` with head
 * `root1` (RFC 9162 §2.1.4.2). Throws `CONSISTENCY_PROOF_INVALID` or `MERKLE_PROOF_MALFORMED`.
 *
 * @example
 * ```ts
 * verifyConsistency(old.size, latest.size, proof, old.rootHash, latest.rootHash);
 * ```
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  assertSize('size1', size1);
  assertSize('size2', size2);
  if (size2 < size1) fail('CONSISTENCY_PROOF_INVALID', 'size2 is smaller than size1', { size1, size2 });
  assertHashes('consistency proof', proof);
  if (size1 === size2) {
    if (proof.length !== 0) fail('MERKLE_PROOF_MALFORMED', 'equal sizes need an empty proof', { size1, size2 });
    if (!equalBytes(root1, root2)) fail('CONSISTENCY_PROOF_INVALID', 'equal sizes with different roots', { size1 });
    return;
  }
  if (size1 === 0) {
    // Every tree extends the empty tree; the proof is empty by definition.
    if (proof.length !== 0) fail('MERKLE_PROOF_MALFORMED', 'a proof from size 0 must be empty', { size2 });
    return;
  }
  if (proof.length === 0) fail('MERKLE_PROOF_MALFORMED', 'consistency proof is empty', { size1, size2 });
  assertHashes('roots', [root1, root2]);
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) fail('MERKLE_PROOF_MALFORMED', 'consistency proof is too long', { size1, size2 });
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('MERKLE_PROOF_MALFORMED', 'consistency proof is too short', { size1, size2 });
  if (!equalBytes(fr, root1)) fail('CONSISTENCY_PROOF_INVALID', 'proof does not lead to the first root', { size1 });
  if (!equalBytes(sr, root2)) fail('CONSISTENCY_PROOF_INVALID', 'proof does not lead to the second root', { size2 });
}
