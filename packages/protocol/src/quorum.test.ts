import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { QUORUM_CAPABILITY, quorumCandidates, quorumSeed, rankQuorum } from './quorum.js';
import type { RegistryNode, RegistrySnapshot } from './registry.js';
import { expectCode } from './test-support/errors.js';

const ETHER = 10n ** 18n;
const QUORUM_BITS = 0b11n; // mode:signed | mode:quorum
const node = (n: number, stake: bigint, more: Partial<RegistryNode> = {}): RegistryNode => ({
  address: `0x${n.toString(16).padStart(2, '0').repeat(20)}`,
  logKey: `vector.test/log/${n}+00000000+AA==`,
  stake,
  status: 'registered',
  capabilities: QUORUM_BITS,
  endpoint: `http://127.0.0.1:${9000 + n}`,
  ...more,
});

/** The vector's registry (docs/protocol.md §11.4): five candidates and three nodes that are not. */
const VECTOR_SNAPSHOT: RegistrySnapshot = {
  chainId: 31337,
  nodeRegistry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  block: { number: 42, hash: `0x${'ab'.repeat(32)}` },
  minStake: 1n * ETHER,
  nodes: [
    node(0x55, 1n * ETHER),
    node(0x11, 4n * ETHER),
    node(0x33, 2n * ETHER),
    node(0x22, 1n * ETHER),
    node(0x44, 8n * ETHER),
    node(0x66, 9n * ETHER, { capabilities: 1n }), // signed only: not a candidate
    node(0x77, 9n * ETHER, { status: 'unbonding' }), // not active
    node(0x88, ETHER - 1n), // below minStake
  ],
};
const VECTOR_NONCE = '00112233445566778899aabbccddeeff';
/** SHA-256("verity/quorum/v1" ‖ 0xabab…ab ‖ 0x0011…ff), as `sha256sum` prints it for those bytes. */
const VECTOR_SEED = '326a8cdbf2a93cbea146d19c76732873bb238b5706ed5127709fa56788c3154d';
/** The ranking (address prefixes): rankQuorum, the WebCrypto loop below and a Python loop agree. */
const VECTOR_RANKING = ['0x44', '0x11', '0x33', '0x22', '0x55'];

/**
 * An independent reading of §11, written from the text and not from quorum.ts: WebCrypto's
 * SHA-256, big-endian bytes folded into a bigint by hand, the pool kept as an array of
 * [address, stake] in address order, and the pick found by subtracting stakes from x until it
 * falls inside one.
 */
async function referenceRanking(snapshot: RegistrySnapshot, blockHash: string, nonce: string): Promise<string[]> {
  const sha = async (bytes: Uint8Array<ArrayBuffer>) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const hexBytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
  const domain = new TextEncoder().encode('verity/quorum/v1');
  const seed = await sha(new Uint8Array([...domain, ...hexBytes(blockHash.slice(2)), ...hexBytes(nonce)]));
  let pool = snapshot.nodes
    .filter(
      (n) =>
        n.status === 'registered' &&
        n.stake >= snapshot.minStake &&
        n.stake > 0n &&
        ((n.capabilities >> 1n) & 1n) === 1n,
    )
    .map((n) => [n.address.toLowerCase(), n.stake] as [string, bigint])
    .sort((a, b) => a[0].localeCompare(b[0]));
  const out: string[] = [];
  for (let i = 0; pool.length > 0; i++) {
    const counter = [(i >>> 24) & 255, (i >>> 16) & 255, (i >>> 8) & 255, i & 255];
    const digest = await sha(new Uint8Array([...seed, ...counter]));
    let x = digest.reduce((acc, b) => acc * 256n + BigInt(b), 0n);
    x %= pool.reduce((acc, [, s]) => acc + s, 0n);
    const j = pool.findIndex(([, s]) => {
      if (x < s) return true;
      x -= s;
      return false;
    });
    out.push((pool[j] as [string, bigint])[0]);
    pool = pool.filter((_, idx) => idx !== j);
  }
  return out;
}

const short = (a: string) => a.slice(0, 4).toLowerCase();

describe('quorum selection (docs/protocol.md §11)', () => {
  it('vector: the seed and the ranking, equal to an independent implementation', async () => {
    const seed = quorumSeed(VECTOR_SNAPSHOT.block.hash, VECTOR_NONCE);
    expect(toHex(seed)).toBe(VECTOR_SEED);
    const ranking = rankQuorum(VECTOR_SNAPSHOT, seed).map((n) => short(n.address));
    expect(ranking).toEqual(VECTOR_RANKING);
    const reference = await referenceRanking(VECTOR_SNAPSHOT, VECTOR_SNAPSHOT.block.hash, VECTOR_NONCE);
    expect(reference.map(short)).toEqual(VECTOR_RANKING);
  });

  it('agrees with the independent implementation over many nonces and a random registry', async () => {
    const nodes = Array.from({ length: 12 }, (_, i) => node(i + 1, BigInt(1 + ((i * 7919) % 13)) * ETHER));
    const snapshot = { ...VECTOR_SNAPSHOT, nodes };
    for (let t = 0; t < 40; t++) {
      const nonce = t.toString(16).padStart(32, '0');
      const hash = `0x${(t * 31).toString(16).padStart(64, 'c')}`;
      const mine = rankQuorum(snapshot, quorumSeed(hash, nonce)).map((n) => n.address.toLowerCase());
      expect(mine).toEqual(await referenceRanking(snapshot, hash, nonce));
    }
  });

  it('ignores the listing order of the snapshot, and draws only `depth` places', () => {
    const seed = quorumSeed(VECTOR_SNAPSHOT.block.hash, VECTOR_NONCE);
    const reversed = { ...VECTOR_SNAPSHOT, nodes: [...VECTOR_SNAPSHOT.nodes].reverse() };
    expect(rankQuorum(reversed, seed).map((n) => short(n.address))).toEqual(VECTOR_RANKING);
    expect(rankQuorum(VECTOR_SNAPSHOT, seed, 2).map((n) => short(n.address))).toEqual(VECTOR_RANKING.slice(0, 2));
    expect(quorumCandidates(VECTOR_SNAPSHOT)).toHaveLength(5);
    expect(QUORUM_CAPABILITY).toBe(2n);
  });

  it('refuses a bad block hash, a short nonce, a node listed twice', () => {
    expectCode(() => quorumSeed('0xab', VECTOR_NONCE), 'INVALID_ARGUMENT');
    expectCode(() => quorumSeed(VECTOR_SNAPSHOT.block.hash, '00'.repeat(15)), 'INVALID_ARGUMENT');
    expectCode(() => quorumSeed(VECTOR_SNAPSHOT.block.hash, VECTOR_NONCE.toUpperCase()), 'INVALID_ARGUMENT');
    const twice = { ...VECTOR_SNAPSHOT, nodes: [node(1, ETHER), node(1, ETHER)] };
    expectCode(() => rankQuorum(twice, new Uint8Array(32)), 'INVALID_ARGUMENT');
  });

  // The Sybil attack: one operator splits its stake over many accounts to hold more seats. Seats
  // follow stake, not accounts: its share of first seats is its share of stake (30 %), not of
  // accounts (10 of 17), and it holds all three seats about f^3 of the time.
  it('Sybil accounts splitting one stake gain nothing: first seats follow stake, all k seats ≤ f^k', () => {
    const honest = Array.from({ length: 7 }, (_, i) => node(0x10 + i, 10n * ETHER));
    const sybils = Array.from({ length: 10 }, (_, i) => node(0x80 + i, 3n * ETHER));
    const snapshot = { ...VECTOR_SNAPSHOT, nodes: [...honest, ...sybils] };
    const isSybil = (n: RegistryNode) => n.address.toLowerCase() >= '0x80';
    const trials = 3000;
    let first = 0;
    let all = 0;
    for (let t = 0; t < trials; t++) {
      const nonce = (t * 2654435761).toString(16).padStart(32, '0');
      const [a, b, c] = rankQuorum(snapshot, quorumSeed(VECTOR_SNAPSHOT.block.hash, nonce), 3) as RegistryNode[];
      if (isSybil(a as RegistryNode)) first++;
      if ([a, b, c].every((n) => isSybil(n as RegistryNode))) all++;
    }
    // Stake share 0.30 (±3 standard deviations of 3000 draws ≈ ±0.025); account share would be 0.59.
    expect(first / trials).toBeGreaterThan(0.27);
    expect(first / trials).toBeLessThan(0.33);
    // f^3 = 0.027; the split gets a little less (each seat removes only a tenth of its stake).
    expect(all / trials).toBeLessThan(0.027 + 0.01);
  });
});
