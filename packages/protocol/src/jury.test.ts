import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { drawJury, type JuryCandidate, juryPool, jurySeed } from './jury.js';
import type { RegistryNode, RegistrySnapshot } from './registry.js';
import { expectCode } from './test-support/errors.js';

const ETHER = 10n ** 18n;
const node = (n: number, stake: bigint, more: Partial<RegistryNode> = {}): RegistryNode => ({
  address: `0x${n.toString(16).padStart(2, '0').repeat(20)}`,
  logKey: `vector.test/log/${n}+00000000+AA==`,
  stake,
  status: 'registered',
  capabilities: 1n,
  endpoint: `http://127.0.0.1:${9000 + n}`,
  ...more,
});

/** The registry of docs/protocol.md §11.4; a jury needs no capability, so 0x66… is eligible. */
const SNAPSHOT: Pick<RegistrySnapshot, 'minStake' | 'nodes'> = {
  minStake: 1n * ETHER,
  nodes: [
    node(0x55, 1n * ETHER),
    node(0x11, 4n * ETHER),
    node(0x33, 2n * ETHER),
    node(0x22, 1n * ETHER),
    node(0x44, 8n * ETHER),
    node(0x66, 9n * ETHER),
    node(0x77, 9n * ETHER, { status: 'unbonding' }), // not active
    node(0x88, ETHER - 1n), // below minStake
  ],
};
const ACCUSED = `0x${'44'.repeat(20)}`;
const CHALLENGER = `0x${'22'.repeat(20)}`;
const BLOCK_HASH = `0x${'ab'.repeat(32)}`;
/** docs/protocol.md §15.3: drawJury, the WebCrypto loop below and a Python loop agree. */
const VECTOR = {
  seed: 'b00d864b9e1738b9711fa679b15f14905cd9f450e76a30e45d5b4bd6518a5ca2',
  pool: ['0x11', '0x33', '0x55', '0x66'],
  jury: ['0x66', '0x55', '0x11'],
};

/**
 * An independent reading of §15.3 (not of jury.ts or quorum.ts): WebCrypto's SHA-256, the
 * dispute id written as 32 big-endian bytes by hand, the pick found by subtracting stakes.
 */
async function referenceJury(pool: readonly JuryCandidate[], blockHash: string, id: bigint, seats: number) {
  const sha = async (bytes: Uint8Array<ArrayBuffer>) => new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const hexBytes = (h: string) => Uint8Array.from(h.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
  const idBytes = new Uint8Array(32);
  for (let i = 31, v = id; i >= 0; i--, v >>= 8n) idBytes[i] = Number(v & 0xffn);
  const domain = new TextEncoder().encode('verity/jury/v1');
  const seed = await sha(new Uint8Array([...domain, ...hexBytes(blockHash.slice(2)), ...idBytes]));
  let left = pool.map((c) => [c.address, c.stake] as const);
  const jury: string[] = [];
  for (let i = 0; i < seats && left.length > 0; i++) {
    const h = await sha(new Uint8Array([...seed, 0, 0, 0, i]));
    let x = h.reduce((acc, b) => acc * 256n + BigInt(b), 0n) % left.reduce((s, [, st]) => s + st, 0n);
    const k = left.findIndex(([, st]) => {
      if (x < st) return true;
      x -= st;
      return false;
    });
    jury.push((left[k] as readonly [string, bigint])[0]);
    left = left.filter((_, j) => j !== k);
  }
  return jury;
}

describe('jury draw (docs/protocol.md §15.3)', () => {
  it('matches the vector', async () => {
    const seed = jurySeed(BLOCK_HASH, 1n);
    expect(toHex(seed)).toBe(VECTOR.seed);
    const pool = juryPool(SNAPSHOT, { node: ACCUSED, challenger: CHALLENGER });
    expect(pool.map((c) => c.address.slice(0, 4))).toEqual(VECTOR.pool);
    expect(drawJury(pool, seed, 3).map((c) => c.address.slice(0, 4))).toEqual(VECTOR.jury);
    expect(await referenceJury(pool, BLOCK_HASH, 1n, 3)).toEqual(drawJury(pool, seed, 3).map((c) => c.address));
  });

  it('agrees with the independent loop over many seeds, sizes and ids', async () => {
    const pool: JuryCandidate[] = Array.from({ length: 12 }, (_, i) => ({
      address: `0x${(0x10 + i * 7).toString(16).padStart(2, '0').repeat(20)}`,
      stake: BigInt(1 + ((i * 37) % 11)) * ETHER + BigInt(i),
    }));
    for (let k = 0; k < 30; k++) {
      const hash = `0x${((k * 2654435761) >>> 0).toString(16).padStart(8, '0').repeat(8)}`;
      const id = BigInt(k + 1) * 1_000_003n;
      const seats = 1 + 2 * (k % 5);
      const expected = await referenceJury(pool, hash, id, seats);
      expect(drawJury(pool, jurySeed(hash, id), seats).map((c) => c.address)).toEqual(expected);
    }
  });

  it('takes everyone when the pool is smaller than the jury, and nobody from an empty pool', () => {
    const seed = jurySeed(BLOCK_HASH, 7n);
    const pool = juryPool(SNAPSHOT, { node: ACCUSED, challenger: CHALLENGER });
    expect(new Set(drawJury(pool, seed, 15).map((c) => c.address))).toEqual(new Set(pool.map((c) => c.address)));
    expect(drawJury([], seed, 3)).toEqual([]);
  });

  it('refuses bad arguments', () => {
    expectCode(() => jurySeed('0xab', 1n), 'INVALID_ARGUMENT');
    expectCode(() => jurySeed(BLOCK_HASH, 0n), 'INVALID_ARGUMENT');
    expectCode(() => jurySeed(BLOCK_HASH, 2n ** 256n), 'INVALID_ARGUMENT');
    const pool = juryPool(SNAPSHOT, { node: ACCUSED, challenger: CHALLENGER });
    const seed = jurySeed(BLOCK_HASH, 1n);
    expectCode(() => drawJury(pool, seed.subarray(1), 3), 'INVALID_ARGUMENT');
    expectCode(() => drawJury(pool, seed, 0), 'INVALID_ARGUMENT');
    // A pool out of address order (or with a node twice) is not a pool.
    expectCode(() => drawJury([...pool].reverse(), seed, 3), 'INVALID_ARGUMENT');
    expectCode(() => drawJury([pool[0] as JuryCandidate, pool[0] as JuryCandidate], seed, 1), 'INVALID_ARGUMENT');
  });
});
