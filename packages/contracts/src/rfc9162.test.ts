/**
 * `contracts/lib/Rfc9162.sol` on a real anvil, through `contracts/test/Rfc9162Harness.sol`: the
 * Solidity verifiers accept proofs of independent provenance (the RFC 6962 vectors of
 * transparency-dev/merkle; proofs made by Go's golang.org/x/mod/sumdb/tlog in
 * fixtures/rfc9162/tlog.json), and agree with `@verity/protocol`'s merkle.ts on every honest proof
 * over many tree sizes and on every tampered one.
 */
import { readFileSync } from 'node:fs';
import {
  createMemoryTree,
  fromHex,
  hashChildren,
  hashLeaf,
  isVerityError,
  type MemoryTree,
  toHex,
  verifyConsistency,
  verifyInclusion,
} from '@verity/protocol';
import { type Address, createPublicClient, type Hex, http, type PublicClient } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sendAndConfirm } from './clients.js';
import { rfc9162HarnessAbi, rfc9162HarnessBytecode } from './generated/rfc9162-harness.js';
import { startTestChain, type TestChain } from './test-support/chain.js';

let chain: TestChain;
let harness: Address;
// JSON-RPC batching: hundreds of eth_calls per test travel in a few HTTP requests.
let client: PublicClient;

beforeAll(async () => {
  chain = await startTestChain();
  client = createPublicClient({ transport: http(chain.anvil.rpcUrl, { batch: { batchSize: 200 } }) });
  const deployer = chain.clients(0);
  const receipt = await sendAndConfirm(deployer, 'deploy Rfc9162Harness', () =>
    deployer.walletClient.deployContract({
      abi: rfc9162HarnessAbi,
      bytecode: rfc9162HarnessBytecode,
      account: deployer.walletClient.account,
      chain: deployer.walletClient.chain,
    }),
  );
  harness = receipt.contractAddress as Address;
});
afterAll(() => chain.stop());

const hex = (b: Uint8Array): Hex => `0x${toHex(b)}`;

/** A tree of `n` leaves whose data are the big-endian bytes of their index. */
function treeOf(n: number): MemoryTree {
  const tree = createMemoryTree();
  for (let i = 0; i < n; i++) tree.append(hashLeaf(new Uint8Array([i >> 8, i & 0xff])));
  return tree;
}

interface InclusionCase {
  readonly what: string;
  readonly leaf: Uint8Array;
  readonly index: number;
  readonly size: number;
  readonly proof: readonly Uint8Array[];
  readonly root: Uint8Array;
}

interface ConsistencyCase {
  readonly what: string;
  readonly size1: number;
  readonly root1: Uint8Array;
  readonly size2: number;
  readonly root2: Uint8Array;
  readonly proof: readonly Uint8Array[];
}

/** merkle.ts's verdict: true when it verifies, false when it throws a VerityError. */
function tsVerdict(check: () => void): boolean {
  try {
    check();
    return true;
  } catch (e) {
    if (!isVerityError(e)) throw e;
    return false;
  }
}

const flip = (h: Uint8Array): Uint8Array => {
  const c = h.slice();
  c[7] = (c[7] as number) ^ 0x01;
  return c;
};

/** Honest case and named tampered variants (what is wrong is in `what`). */
function tamperedInclusion(c: InclusionCase, extra: Uint8Array): InclusionCase[] {
  const out: InclusionCase[] = [
    c,
    { ...c, what: `${c.what}: wrong index`, index: c.index + 1 },
    // RFC 9162 verification does not bind the size alone: where size + 1 gives the path the same
    // shape, the proof still verifies (in merkle.ts and Go's tlog too); the signed size binds it.
    { ...c, what: `${c.what}: size + 1 (may coincide)`, size: c.size + 1 },
    { ...c, what: `${c.what}: size doubled`, size: c.size * 2 },
    { ...c, what: `${c.what}: proof too long`, proof: [...c.proof, extra] },
    { ...c, what: `${c.what}: wrong leaf`, leaf: flip(c.leaf) },
    { ...c, what: `${c.what}: wrong root`, root: flip(c.root) },
  ];
  if (c.index > 0) out.push({ ...c, what: `${c.what}: index - 1`, index: c.index - 1 });
  if (c.proof.length > 0) {
    out.push({ ...c, what: `${c.what}: proof too short`, proof: c.proof.slice(0, -1) });
    for (let k = 0; k < c.proof.length; k++) {
      const proof = c.proof.slice();
      proof[k] = flip(proof[k] as Uint8Array);
      out.push({ ...c, what: `${c.what}: byte flipped in proof[${k}]`, proof });
    }
  }
  return out;
}

function tamperedConsistency(c: ConsistencyCase, extra: Uint8Array): ConsistencyCase[] {
  const out: ConsistencyCase[] = [
    c,
    { ...c, what: `${c.what}: wrong size1`, size1: c.size1 + 1 },
    { ...c, what: `${c.what}: size2 + 1 (may coincide)`, size2: c.size2 + 1 },
    { ...c, what: `${c.what}: size2 doubled`, size2: c.size2 * 2 },
    { ...c, what: `${c.what}: proof too long`, proof: [...c.proof, extra] },
    { ...c, what: `${c.what}: wrong root1`, root1: flip(c.root1) },
    { ...c, what: `${c.what}: wrong root2`, root2: flip(c.root2) },
    { ...c, what: `${c.what}: sizes swapped`, size1: c.size2, size2: c.size1, root1: c.root2, root2: c.root1 },
  ];
  if (c.size1 > 1) out.push({ ...c, what: `${c.what}: size1 - 1`, size1: c.size1 - 1 });
  if (c.proof.length > 0) {
    out.push({ ...c, what: `${c.what}: proof too short`, proof: c.proof.slice(0, -1) });
    for (let k = 0; k < c.proof.length; k++) {
      const proof = c.proof.slice();
      proof[k] = flip(proof[k] as Uint8Array);
      out.push({ ...c, what: `${c.what}: byte flipped in proof[${k}]`, proof });
    }
  }
  return out;
}

const onChainInclusion = (c: InclusionCase) =>
  client.readContract({
    address: harness,
    abi: rfc9162HarnessAbi,
    functionName: 'verifyInclusion',
    args: [hex(c.leaf), BigInt(c.index), BigInt(c.size), c.proof.map(hex), hex(c.root)],
  });

const onChainConsistency = (c: ConsistencyCase) =>
  client.readContract({
    address: harness,
    abi: rfc9162HarnessAbi,
    functionName: 'verifyConsistency',
    args: [BigInt(c.size1), hex(c.root1), BigInt(c.size2), hex(c.root2), c.proof.map(hex)],
  });

// Sizes around powers of two (where the proof shapes change) and a few odd ones.
const SIZES = [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257];
const BIG = treeOf(257);

describe('Rfc9162.sol', () => {
  it('hashes leaves as merkle.ts does (SHA-256(0x00 ‖ data))', async () => {
    for (const data of [new Uint8Array(0), new Uint8Array([0]), new Uint8Array(100).fill(7)]) {
      const got = await client.readContract({
        address: harness,
        abi: rfc9162HarnessAbi,
        functionName: 'leafHash',
        args: [hex(data)],
      });
      expect(got).toBe(hex(hashLeaf(data)));
    }
  });

  it('accepts the RFC 6962 vectors of transparency-dev/merkle', async () => {
    // proof/verify_test.go: leaves '' … '606162…6f'; inclusion of leaf 6 (1-based) in 8, and
    // consistency 6 → 8, with the roots listed there.
    const root6 = fromHex('76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef');
    const root8 = fromHex('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    const consistency = [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(fromHex);
    const inclusion = [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(fromHex);
    const leaf5 = hashLeaf(fromHex('40414243'));
    expect(
      await onChainConsistency({ what: '6→8', size1: 6, root1: root6, size2: 8, root2: root8, proof: consistency }),
    ).toBe(true);
    expect(
      await onChainInclusion({ what: '5 in 8', leaf: leaf5, index: 5, size: 8, proof: inclusion, root: root8 }),
    ).toBe(true);
  });

  it("accepts Go's sumdb/tlog proofs (fixtures/rfc9162/tlog.json) and refuses them flipped", async () => {
    const go = JSON.parse(readFileSync(new URL('../fixtures/rfc9162/tlog.json', import.meta.url), 'utf8')) as {
      roots: Record<string, string>;
      inclusion: { index: number; size: number; leaf: string; proof: string[] }[];
      consistency: { size1: number; size2: number; proof: string[] }[];
    };
    const root = (n: number) => fromHex(go.roots[String(n)] as string);
    const inclusion: InclusionCase[] = go.inclusion.map((v) => ({
      what: `go: leaf ${v.index} of ${v.size}`,
      leaf: fromHex(v.leaf),
      index: v.index,
      size: v.size,
      proof: v.proof.map(fromHex),
      root: root(v.size),
    }));
    const consistency: ConsistencyCase[] = go.consistency.map((v) => ({
      what: `go: ${v.size1} → ${v.size2}`,
      size1: v.size1,
      root1: root(v.size1),
      size2: v.size2,
      root2: root(v.size2),
      proof: v.proof.map(fromHex),
    }));
    expect(inclusion.length + consistency.length).toBeGreaterThan(100);
    // The same leaves as treeOf: Go's tree heads are merkle.ts's too.
    for (const n of [1, 33, 257]) expect(toHex(root(n))).toBe(toHex(BIG.root(n)));
    const flipLast = <T extends { proof: readonly Uint8Array[] }>(c: T): T =>
      c.proof.length === 0 ? c : { ...c, proof: [...c.proof.slice(0, -1), flip(c.proof.at(-1) as Uint8Array)] };
    const honest = [
      ...(await Promise.all(inclusion.map(onChainInclusion))),
      ...(await Promise.all(consistency.map(onChainConsistency))),
    ];
    expect(honest.every((ok) => ok)).toBe(true);
    const flippedInclusion = inclusion.filter((c) => c.proof.length > 0).map(flipLast);
    const flippedConsistency = consistency.filter((c) => c.proof.length > 0).map(flipLast);
    const flipped = [
      ...(await Promise.all(flippedInclusion.map(onChainInclusion))),
      ...(await Promise.all(flippedConsistency.map(onChainConsistency))),
    ];
    expect(flipped.some((ok) => ok)).toBe(false);
  });

  it('agrees with merkle.ts on inclusion proofs, honest and tampered, over many sizes', async () => {
    const extra = hashChildren(hashLeaf(new Uint8Array([1])), hashLeaf(new Uint8Array([2])));
    const cases: InclusionCase[] = [];
    for (const size of SIZES) {
      const root = BIG.root(size);
      const indices = new Set([0, 1, Math.floor(size / 2), size - 2, size - 1].filter((i) => i >= 0 && i < size));
      for (const index of indices) {
        const honest = {
          what: `leaf ${index} of ${size}`,
          leaf: BIG.subtree(0, index),
          index,
          size,
          proof: BIG.inclusionProof(index, size),
          root,
        };
        cases.push(...tamperedInclusion(honest, extra));
      }
    }
    const got = await Promise.all(cases.map(onChainInclusion));
    const want = cases.map((c) => tsVerdict(() => verifyInclusion(c.leaf, c.index, c.size, c.proof, c.root)));
    const disagree = cases.filter((_, i) => got[i] !== want[i]).map((c) => c.what);
    expect(disagree).toEqual([]);
    // Every honest proof verifies; every named tampering is refused (but the coincidences above).
    const verdicts = new Map(
      cases.map((c, i) => [c.what, got[i]] as const).filter(([what]) => !what.endsWith('(may coincide)')),
    );
    const surprises = [...verdicts].filter(([what, ok]) => ok !== !what.includes(': ')).map(([what]) => what);
    expect(surprises).toEqual([]);
  });

  it('agrees with merkle.ts on consistency proofs, honest and tampered, over many sizes', async () => {
    const extra = hashChildren(hashLeaf(new Uint8Array([3])), hashLeaf(new Uint8Array([4])));
    const cases: ConsistencyCase[] = [];
    for (const size2 of SIZES) {
      for (const size1 of SIZES.filter((s) => s <= size2 && (s < 10 || s * 2 >= size2 || s === size2))) {
        const honest = {
          what: `${size1} → ${size2}`,
          size1,
          root1: BIG.root(size1),
          size2,
          root2: BIG.root(size2),
          proof: BIG.consistencyProof(size1, size2),
        };
        cases.push(...tamperedConsistency(honest, extra));
      }
    }
    // Every tree extends the empty one with an empty proof (merkle.ts and the contract alike).
    cases.push({ what: '0 → 5', size1: 0, root1: BIG.root(0), size2: 5, root2: BIG.root(5), proof: [] });
    const got = await Promise.all(cases.map(onChainConsistency));
    const want = cases.map((c) => tsVerdict(() => verifyConsistency(c.size1, c.size2, c.proof, c.root1, c.root2)));
    const disagree = cases.filter((_, i) => got[i] !== want[i]).map((c) => c.what);
    expect(disagree).toEqual([]);
    const verdicts = new Map(
      cases.map((c, i) => [c.what, got[i]] as const).filter(([what]) => !what.endsWith('(may coincide)')),
    );
    // Equal sizes with swapped roots are the same honest case; everything else named is refused.
    const honest = (what: string) => !what.includes(': ') || /^(\d+) → \1: sizes swapped$/.test(what);
    const surprises = [...verdicts].filter(([what, ok]) => ok !== honest(what)).map(([what]) => what);
    expect(surprises).toEqual([]);
  });
});
