import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from './bytes.js';
import { isVerityError } from './errors.js';
import {
  createMemoryTree,
  EMPTY_ROOT,
  hashLeaf,
  rootFromInclusionProof,
  verifyConsistency,
  verifyInclusion,
} from './merkle.js';
import { codeOf } from './test-support/errors.js';

// Vectors of independent provenance: the RFC 6962 test data used by Certificate Transparency and
// kept in github.com/transparency-dev/merkle (proof/verify_test.go: `leaves`, `roots`,
// `inclusionProofs`, `consistencyProofs`). There `leaf` is 1-based; here indices are 0-based.
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
const ROOTS = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION: { index: number; size: number; proof: string[] }[] = [
  { index: 0, size: 1, proof: [] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  { index: 2, size: 3, proof: ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125'] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
];
const CONSISTENCY: { size1: number; size2: number; proof: string[] }[] = [
  { size1: 1, size2: 1, proof: [] },
  {
    size1: 1,
    size2: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  },
  {
    size1: 6,
    size2: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
  {
    size1: 2,
    size2: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  },
  {
    size1: 6,
    size2: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  },
];

const tree = createMemoryTree(LEAVES.map((l) => hashLeaf(fromHex(l))));
const root = (size: number) => fromHex(ROOTS[size - 1] as string);
describe('RFC 6962 tree heads', () => {
  it('empty tree is SHA-256("")', () => {
    expect(toHex(EMPTY_ROOT)).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(toHex(createMemoryTree().root())).toBe(toHex(EMPTY_ROOT));
  });
  it('matches the CT roots for sizes 1..8', () => {
    for (let n = 1; n <= 8; n++) expect(toHex(tree.root(n)), `size ${n}`).toBe(ROOTS[n - 1]);
  });
});

describe('inclusion proofs', () => {
  for (const v of INCLUSION) {
    it(`generates and verifies leaf ${v.index} of ${v.size}`, () => {
      expect(tree.inclusionProof(v.index, v.size).map(toHex)).toEqual(v.proof);
      const leaf = hashLeaf(fromHex(LEAVES[v.index] as string));
      verifyInclusion(leaf, v.index, v.size, v.proof.map(fromHex), root(v.size));
    });
  }
  it('rejects each corruption of a valid proof (the CT corruption probes)', () => {
    const v = INCLUSION[2]!;
    const leaf = hashLeaf(fromHex(LEAVES[v.index] as string));
    const proof = v.proof.map(fromHex);
    const r = root(v.size);
    const wrongs: [string, () => unknown][] = [
      ['index - 1', () => verifyInclusion(leaf, v.index - 1, v.size, proof, r)],
      ['index + 1', () => verifyInclusion(leaf, v.index + 1, v.size, proof, r)],
      ['index ^ 2', () => verifyInclusion(leaf, v.index ^ 2, v.size, proof, r)],
      ['size * 2', () => verifyInclusion(leaf, v.index, v.size * 2, proof, r)],
      ['size / 2', () => verifyInclusion(leaf, v.index, v.size / 2, proof, r)],
      ['wrong leaf', () => verifyInclusion(hashLeaf(new Uint8Array([1])), v.index, v.size, proof, r)],
      ['empty root', () => verifyInclusion(leaf, v.index, v.size, proof, EMPTY_ROOT)],
      ['trailing root', () => verifyInclusion(leaf, v.index, v.size, [...proof, r], r)],
      ['preceding root', () => verifyInclusion(leaf, v.index, v.size, [r, ...proof], r)],
      ['removed component', () => verifyInclusion(leaf, v.index, v.size, proof.slice(0, -1), r)],
      ['short hash', () => verifyInclusion(leaf, v.index, v.size, [proof[0]!.subarray(1), ...proof.slice(1)], r)],
    ];
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map((p) => p.slice());
      bad[i]![0]! ^= 8;
      wrongs.push([`bit flip in proof[${i}]`, () => verifyInclusion(leaf, v.index, v.size, bad, r)]);
    }
    for (const [what, fn] of wrongs) {
      expect(['INCLUSION_PROOF_INVALID', 'MERKLE_PROOF_MALFORMED', 'MERKLE_INDEX_OUT_OF_RANGE'], what).toContain(
        codeOf(fn),
      );
    }
    expect(codeOf(() => verifyInclusion(leaf, 8, 8, proof, r))).toBe('MERKLE_INDEX_OUT_OF_RANGE');
    expect(codeOf(() => verifyInclusion(leaf, v.index, v.size, proof, EMPTY_ROOT))).toBe('INCLUSION_PROOF_INVALID');
  });
});

describe('consistency proofs', () => {
  for (const v of CONSISTENCY) {
    it(`generates and verifies ${v.size1} → ${v.size2}`, () => {
      expect(tree.consistencyProof(v.size1, v.size2).map(toHex)).toEqual(v.proof);
      verifyConsistency(v.size1, v.size2, v.proof.map(fromHex), root(v.size1), root(v.size2));
    });
  }
  it('accepts the trivially consistent cases and rejects the impossible ones (Go tlog semantics)', () => {
    const a = root(1);
    const b = root(2);
    expect(codeOf(() => verifyConsistency(0, 0, [], a, a))).toBeUndefined();
    expect(codeOf(() => verifyConsistency(0, 1, [], a, b))).toBeUndefined();
    expect(codeOf(() => verifyConsistency(1, 1, [], b, b))).toBeUndefined();
    expect(codeOf(() => verifyConsistency(1, 1, [], a, b))).toBe('CONSISTENCY_PROOF_INVALID');
    expect(codeOf(() => verifyConsistency(2, 1, [], a, b))).toBe('CONSISTENCY_PROOF_INVALID');
    expect(codeOf(() => verifyConsistency(1, 2, [], a, b))).toBe('MERKLE_PROOF_MALFORMED');
    expect(codeOf(() => verifyConsistency(1, 1, [EMPTY_ROOT], a, a))).toBe('MERKLE_PROOF_MALFORMED');
  });
  it('rejects each corruption of a valid proof', () => {
    const v = CONSISTENCY[2]!;
    const proof = v.proof.map(fromHex);
    const [r1, r2] = [root(v.size1), root(v.size2)];
    const wrongs: [string, () => unknown][] = [
      ['size1 - 1', () => verifyConsistency(v.size1 - 1, v.size2, proof, r1, r2)],
      ['size1 + 1', () => verifyConsistency(v.size1 + 1, v.size2, proof, r1, r2)],
      ['size2 * 2', () => verifyConsistency(v.size1, v.size2 * 2, proof, r1, r2)],
      ['size2 / 2', () => verifyConsistency(v.size1, v.size2 / 2, proof, r1, r2)],
      ['swapped roots', () => verifyConsistency(v.size1, v.size2, proof, r2, r1)],
      ['empty proof', () => verifyConsistency(v.size1, v.size2, [], r1, r2)],
      ['trailing root2', () => verifyConsistency(v.size1, v.size2, [...proof, r2], r1, r2)],
      ['preceding root1', () => verifyConsistency(v.size1, v.size2, [r1, ...proof], r1, r2)],
      ['truncated', () => verifyConsistency(v.size1, v.size2, proof.slice(0, -1), r1, r2)],
    ];
    for (let i = 0; i < proof.length; i++) {
      const bad = proof.map((p) => p.slice());
      bad[i]![0]! ^= 16;
      wrongs.push([`bit flip in proof[${i}]`, () => verifyConsistency(v.size1, v.size2, bad, r1, r2)]);
    }
    for (const [what, fn] of wrongs) {
      expect(['CONSISTENCY_PROOF_INVALID', 'MERKLE_PROOF_MALFORMED'], what).toContain(codeOf(fn));
    }
  });
});

describe('properties', () => {
  const treeArb = fc.integer({ min: 1, max: 300 }).map((n) => {
    const t = createMemoryTree();
    for (let i = 0; i < n; i++) t.append(hashLeaf(new Uint8Array([i & 255, i >> 8])));
    return t;
  });
  it('every generated inclusion proof verifies, for every prefix size', () => {
    fc.assert(
      fc.property(treeArb, fc.nat(), fc.nat(), (t, a, b) => {
        const size = 1 + (a % t.size);
        const index = b % size;
        const leaf = t.subtree(0, index);
        expect(rootFromInclusionProof(leaf, index, size, t.inclusionProof(index, size))).toEqual(t.root(size));
      }),
      { numRuns: 200 },
    );
  });
  it('every generated consistency proof verifies', () => {
    fc.assert(
      fc.property(treeArb, fc.nat(), fc.nat(), (t, a, b) => {
        const size2 = 1 + (a % t.size);
        const size1 = b % (size2 + 1);
        verifyConsistency(size1, size2, t.consistencyProof(size1, size2), t.root(size1), t.root(size2));
      }),
      { numRuns: 200 },
    );
  });
  it('garbage proofs only ever raise typed errors', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 40 }), { maxLength: 70 }),
        fc.integer({ min: -3, max: 2 ** 54 }),
        fc.integer({ min: -3, max: 2 ** 54 }),
        (proof, index, size) => {
          for (const fn of [
            () => verifyInclusion(EMPTY_ROOT, index, size, proof, EMPTY_ROOT),
            () => verifyConsistency(index, size, proof, EMPTY_ROOT, EMPTY_ROOT),
          ]) {
            try {
              fn();
            } catch (e) {
              expect(isVerityError(e)).toBe(true);
            }
          }
        },
      ),
    );
  });
  it('handles indices beyond 2^32 without 32-bit overflow', () => {
    // A right-edge leaf of a huge tree: the proof has one hash per level (~2^40 leaves → 40 hashes
    // at most); verification must walk the levels with arithmetic, not 32-bit shifts.
    const size = 2 ** 40 + 3;
    const index = 2 ** 40 + 2;
    const proof = [EMPTY_ROOT, EMPTY_ROOT];
    expect(codeOf(() => verifyInclusion(EMPTY_ROOT, index, size, proof, EMPTY_ROOT))).toBe('INCLUSION_PROOF_INVALID');
  });
});
