import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { isVerityError } from './errors.js';
import { sha256 } from './hash.js';
import { ZK_BASE_FIELD, zkManifestDigest, zkVkEncoding, zkVkKey } from './zk-verifier.js';

// BN254's generators: G1 = (1, 2); G2 as EIP-197 gives it (x = x.c1·i + x.c0).
const G2 = {
  xc0: '10857046999023057135944570762232829481370756359578518086990519993285655852781',
  xc1: '11559732032986387107991004021392285783925812861821192530917403151452391805634',
  yc0: '8495653923123431417604973247489272438418190587263600148770280649306958101930',
  yc1: '4082367875863433681332203403145435568316851327593401208105741076214120093531',
};
const g2 = [
  [G2.xc0, G2.xc1],
  [G2.yc0, G2.yc1],
  ['1', '0'],
];
/** A key of one public signal made of the generators (snarkjs' JSON shape). */
const vk = {
  protocol: 'groth16',
  curve: 'bn128',
  nPublic: 1,
  vk_alpha_1: ['1', '2', '1'],
  vk_beta_2: g2,
  vk_gamma_2: g2,
  vk_delta_2: g2,
  vk_alphabeta_12: [],
  IC: [
    ['1', '2', '1'],
    ['1', String(ZK_BASE_FIELD - 2n), '1'], // −G1
  ],
};

const word = (v: string | bigint) => BigInt(v).toString(16).padStart(64, '0');

describe('zkVkEncoding', () => {
  it('is alpha, beta, gamma, delta (x.c1, x.c0, y.c1, y.c0), IC, then n: 2n + 17 words', () => {
    const g2Words = [G2.xc1, G2.xc0, G2.yc1, G2.yc0].map(word).join('');
    const expected = [
      word(1n),
      word(2n),
      g2Words,
      g2Words,
      g2Words,
      word(1n),
      word(2n),
      word(1n),
      word(ZK_BASE_FIELD - 2n),
      word(1n),
    ].join('');
    const encoding = zkVkEncoding(vk);
    expect(encoding.length).toBe(32 * 19);
    expect(toHex(encoding)).toBe(expected);
    expect(zkVkKey(vk)).toBe(`0x${toHex(sha256(encoding))}`);
  });

  // Named malformed keys: each is INVALID_ARGUMENT.
  const bad: [string, unknown][] = [
    ['not an object', 'vk'],
    ['PLONK', { ...vk, protocol: 'plonk' }],
    ['another curve', { ...vk, curve: 'bls12381' }],
    ['nPublic not an integer', { ...vk, nPublic: 1.5 }],
    ['IC longer than nPublic + 1', { ...vk, IC: [...vk.IC, ['1', '2', '1']] }],
    ['alpha off the curve (1, 3)', { ...vk, vk_alpha_1: ['1', '3', '1'] }],
    ['alpha at infinity', { ...vk, vk_alpha_1: ['0', '1', '0'] }],
    ['a coordinate = q', { ...vk, vk_alpha_1: [String(ZK_BASE_FIELD + 1n), '2', '1'] }],
    ['a coordinate in hex', { ...vk, vk_alpha_1: ['0x1', '2', '1'] }],
    ['a leading zero', { ...vk, vk_alpha_1: ['01', '2', '1'] }],
    ['beta projective', { ...vk, vk_beta_2: [g2[0], g2[1], ['2', '0']] }],
    ['gamma with a missing coordinate', { ...vk, vk_gamma_2: [[G2.xc0], g2[1], g2[2]] }],
  ];
  for (const [name, key] of bad) {
    it(`refuses ${name}`, () => {
      let error: unknown;
      try {
        zkVkEncoding(key);
      } catch (e) {
        error = e;
      }
      expect(isVerityError(error, 'INVALID_ARGUMENT'), String(error)).toBe(true);
    });
  }

  it('throws nothing but INVALID_ARGUMENT for garbage', () => {
    fc.assert(
      fc.property(fc.anything(), (garbage) => {
        try {
          zkVkEncoding(garbage);
        } catch (e) {
          return isVerityError(e, 'INVALID_ARGUMENT');
        }
        return false;
      }),
    );
  });
});

describe('zkManifestDigest', () => {
  it('is the SHA-256 digest inside the CID (ipfs add of "hello world" as a raw leaf)', () => {
    expect(zkManifestDigest('bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e')).toBe(
      '0xb94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9',
    );
    expect(() => zkManifestDigest('QmNotAV1')).toThrow();
  });
});
