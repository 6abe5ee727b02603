import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from './bytes.js';
import { sha256, sha256Async } from './hash.js';

// FIPS 180-2 Appendix B examples (independent provenance): "abc" (the portable path) and one
// million "a" (the native path), and the empty input.
const ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const MILLION_A = 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0';
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('sha256Async', () => {
  it('gives the FIPS 180-2 digests, small and large, as the synchronous sha256 does', async () => {
    const million = new Uint8Array(1_000_000).fill(0x61);
    expect(toHex(await sha256Async(utf8('abc')))).toBe(ABC);
    expect(toHex(await sha256Async(new Uint8Array()))).toBe(EMPTY);
    expect(toHex(await sha256Async(million))).toBe(MILLION_A);
    expect(toHex(sha256(million))).toBe(MILLION_A);
    // A view into a larger buffer hashes its own bytes only.
    const padded = new Uint8Array(1_000_010).fill(0x62);
    padded.fill(0x61, 5, 1_000_005);
    expect(toHex(await sha256Async(padded.subarray(5, 1_000_005)))).toBe(MILLION_A);
  });
});
