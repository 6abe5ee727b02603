import { describe, expect, it } from 'vitest';
import { AUDIT_SAMPLE_DOMAIN, auditSampled } from './audit-sample.js';
import { expectCode } from './test-support/errors.js';

const BLOCK_HASH = `0x${'ab'.repeat(32)}`;
const NODE = `0x${'44'.repeat(20)}`;
/**
 * docs/protocol.md §15.8 vector, computed by a Python loop written from that text
 * (hashlib.sha256(b'verity/audit/v1' + bytes.fromhex('ab'*32) + bytes.fromhex('44'*20) +
 * i.to_bytes(8, 'big')), first 8 bytes · 10⁶ < 250 000 · 2⁶⁴): indices 0–11 at 25 %.
 */
const SAMPLED_AT_25_PERCENT = [1, 3, 4, 5, 10];

describe('audit sample (docs/protocol.md §15.8)', () => {
  it('matches the vector, and the sample at a higher rate contains the lower one', () => {
    expect(AUDIT_SAMPLE_DOMAIN).toBe('verity/audit/v1');
    const at = (ppm: number) => [...Array(12).keys()].filter((i) => auditSampled(BLOCK_HASH, NODE, i, ppm));
    expect(at(250_000)).toEqual(SAMPLED_AT_25_PERCENT);
    // Index 10's hash starts 0x006c55…: below 0.2 % of 2^64, so in every sample from 2 000 ppm.
    expect(at(2_000)).toEqual([10]);
    expect(at(0)).toEqual([]);
    expect(at(1_000_000)).toEqual([...Array(12).keys()]);
    for (const ppm of [1_000, 10_000, 100_000, 500_000]) {
      const low = at(ppm);
      expect(at(ppm * 2).filter((i) => low.includes(i))).toEqual(low);
    }
    // Case of the hex does not matter.
    expect(auditSampled(BLOCK_HASH.toUpperCase().replace('0X', '0x'), NODE, 1, 250_000)).toBe(true);
  });

  it('samples about the rate', () => {
    let n = 0;
    for (let i = 0; i < 10_000; i++) if (auditSampled(BLOCK_HASH, NODE, i, 100_000)) n++;
    expect(n).toBeGreaterThan(800);
    expect(n).toBeLessThan(1200);
  });

  it('refuses malformed arguments', () => {
    expectCode(() => auditSampled('0xab', NODE, 0, 1), 'INVALID_ARGUMENT');
    expectCode(() => auditSampled(BLOCK_HASH, '0x44', 0, 1), 'INVALID_ARGUMENT');
    expectCode(() => auditSampled(BLOCK_HASH, NODE, -1, 1), 'INVALID_ARGUMENT');
    expectCode(() => auditSampled(BLOCK_HASH, NODE, 0, 1_000_001), 'INVALID_ARGUMENT');
  });
});
