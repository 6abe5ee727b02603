import { secp256k1 } from '@noble/curves/secp256k1.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex, utf8 } from './bytes.js';
import { isVerityError } from './errors.js';
import {
  addressFromPrivateKey,
  addressFromPublicKey,
  isAddress,
  keccak256,
  parseAddress,
  personalMessageHash,
  personalSign,
  recoverPersonalSigner,
  toChecksumAddress,
} from './eth.js';
import { expectCode } from './test-support/errors.js';

const N = secp256k1.Point.Fn.ORDER;

describe('EIP-55 (test cases of https://eips.ethereum.org/EIPS/eip-55, "Test Cases")', () => {
  const allCaps = ['0x52908400098527886E0F7030069857D2E4169EE7', '0x8617E340B3D01FA5F11F306F4090FD50E238070D'];
  const allLower = ['0xde709f2102306220921060314715629080e2fb77', '0x27b1fdb04752bbc536007a920d24acb045561c26'];
  const normal = [
    '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
    '0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359',
    '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB',
    '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb',
  ];
  it('checksums the spec addresses to themselves', () => {
    for (const a of [...allCaps, ...allLower, ...normal]) {
      expect(toChecksumAddress(a.toLowerCase())).toBe(a);
      expect(toChecksumAddress(fromHex(a))).toBe(a);
      expect(parseAddress(a)).toBe(a);
      expect(isAddress(a)).toBe(true);
    }
  });
  it('accepts checksum-free all-lower and all-upper text, and normalizes it', () => {
    for (const a of normal) {
      expect(parseAddress(a.toLowerCase())).toBe(a);
      expect(parseAddress(`0x${a.slice(2).toUpperCase()}`)).toBe(a);
    }
  });
  it('rejects a mixed-case address whose checksum is wrong, and malformed text', () => {
    const typo = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD'; // last letter's case flipped
    expectCode(() => parseAddress(typo), 'ENCODING_INVALID');
    for (const bad of [
      '',
      '0x',
      '5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed',
      '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe',
      '0xZZ',
      `${normal[0]} `,
    ]) {
      expectCode(() => parseAddress(bad), 'ENCODING_INVALID');
      expect(isAddress(bad)).toBe(false);
    }
    expect(isAddress(42)).toBe(false);
    expectCode(() => toChecksumAddress(new Uint8Array(19)), 'ENCODING_INVALID');
  });
  it('flipping the case of any letter of a checksummed address is detected (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.nat({ max: 39 }), (bytes, i) => {
        const a = toChecksumAddress(bytes);
        const c = a[2 + i] as string;
        if (!/[a-fA-F]/.test(c)) return;
        const flipped =
          a.slice(0, 2 + i) + (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) + a.slice(3 + i);
        const digits = flipped.slice(2);
        if (digits === digits.toLowerCase() || digits === digits.toUpperCase()) return; // no checksum left
        expect(isAddress(flipped)).toBe(false);
      }),
    );
  });
});

describe('keys and addresses', () => {
  // web3.js: the key of its accounts.sign docs example; its address is what eth-account's docs
  // (Account.recover_transaction doctest, a transaction signed with this key) print.
  // web3.js docs, accounts.privateKeyToAccount; eth-account docs, Account.from_key.
  const vectors: [string, string][] = [
    [
      '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318',
      '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23',
    ],
    [
      '0x348ce564d427a3311b6536bbcff9390d69395b06ed6c486954e971d960fe8709',
      '0xb8CE9ab6943e0eCED004cDe8e3bBed6568B2Fa01',
    ],
    [
      '0xb25c7db31feed9122727bf0939dc769a96564b2de4c4726d035b36ecf1e5b364',
      '0x5ce9454909639D2D17A3F753ce7d93fa0b9aB12E',
    ],
  ];
  for (const [key, address] of vectors) {
    it(`${key.slice(0, 10)}… → ${address}`, () => {
      expect(addressFromPrivateKey(key)).toBe(address);
      expect(addressFromPrivateKey(key.slice(2))).toBe(address);
      expect(addressFromPrivateKey(fromHex(key))).toBe(address);
      const pub = secp256k1.getPublicKey(fromHex(key), false);
      expect(addressFromPublicKey(pub)).toBe(address);
      expect(addressFromPublicKey(secp256k1.getPublicKey(fromHex(key), true))).toBe(address);
      expect(addressFromPublicKey(pub.subarray(1))).toBe(address);
      expect(addressFromPublicKey(`0x${toHex(pub)}`)).toBe(address);
    });
  }
  it('rejects invalid private keys with INVALID_ARGUMENT and invalid public keys with ENCODING_INVALID', () => {
    for (const bad of ['0x00', `0x${'00'.repeat(32)}`, `0x${N.toString(16)}`, 'zz'.repeat(32), new Uint8Array(31)]) {
      expectCode(() => addressFromPrivateKey(bad), 'INVALID_ARGUMENT');
    }
    expectCode(() => addressFromPublicKey(new Uint8Array(65)), 'ENCODING_INVALID');
    expectCode(() => addressFromPublicKey(Uint8Array.of(2, ...new Uint8Array(32).fill(0xff))), 'ENCODING_INVALID');
    expectCode(() => addressFromPublicKey('0xnothex'), 'ENCODING_INVALID');
  });
  it('hashes with Keccak-256, not SHA3-256', () => {
    // Keccak-256 of the empty string, as in the Ethereum Yellow Paper (KEC of ()).
    expect(toHex(keccak256(new Uint8Array()))).toBe('c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470');
  });
});

describe('EIP-191 personal_sign', () => {
  // web3.js docs, web3.eth.accounts.sign('Some data', '0x4c08…2318')
  // (https://docs.web3js.org/api/web3-eth-accounts/function/sign): messageHash and signature.
  it('matches the web3.js "Some data" example', () => {
    const key = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
    const signature =
      '0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c';
    expect(toHex(personalMessageHash('Some data'))).toBe(
      '1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655',
    );
    expect(personalSign('Some data', key)).toBe(signature);
    expect(personalSign(utf8('Some data'), fromHex(key))).toBe(signature);
    expect(recoverPersonalSigner('Some data', signature)).toBe('0x2c7536E3605D9C16a7a3D7b1898e529396a65c23');
    expect(recoverPersonalSigner(utf8('Some data'), fromHex(signature))).toBe(
      '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23',
    );
  });

  // web3.js docs, web3.eth.accounts.recover (https://docs.web3js.org/api/web3-eth-accounts/function/recover):
  // the same message under another key gives v = 0x1b.
  it('matches the web3.js recover example (v = 27)', () => {
    const key = '0xbe6383dad004f233317e46ddb46ad31b16064d14447a95cc1d8c8d4bc61c3728';
    const signature =
      '0xa8037a6116c176a25e6fc224947fde9e79a2deaa0dd8b67b366fbdfdbffc01f953e41351267b20d4a89ebfe9c8f03c04de9b345add4a52f15bd026b63c8fb1501b';
    expect(personalSign('Some data', key)).toBe(signature);
    expect(recoverPersonalSigner('Some data', signature)).toBe(addressFromPrivateKey(key));
  });

  // eth-account docs (Account.sign_message and Account.recover_message doctests): a message whose
  // UTF-8 is longer than its UTF-16 length ("I♥SF" is 4 characters, 6 bytes; the prefix says 6).
  it('matches the eth-account "I♥SF" example', () => {
    const key = '0xb25c7db31feed9122727bf0939dc769a96564b2de4c4726d035b36ecf1e5b364';
    const signature =
      '0xe6ca9bba58c88611fad66a6ce8f996908195593807c4b38bd528d2cff09d4eb33e5bfbbf4d3e39b1a2fd816a7680c19ebebaf3a141b239934ad43cb33fcec8ce1c';
    expect(toHex(personalMessageHash('I♥SF'))).toBe('1476abb745d423bf09273f1afd887d951181d25adc66c4834a70491911b7f750');
    expect(personalSign('I♥SF', key)).toBe(signature);
    expect(recoverPersonalSigner('I♥SF', signature)).toBe('0x5ce9454909639D2D17A3F753ce7d93fa0b9aB12E');
  });

  it('round-trips any message and key; another message recovers another address', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((k) => secp256k1.utils.isValidSecretKey(k)),
        fc.oneof(fc.string(), fc.uint8Array({ maxLength: 200 })),
        (key, message) => {
          const sig = personalSign(message, key);
          expect(sig).toMatch(/^0x[0-9a-f]{128}(1b|1c)$/);
          expect(recoverPersonalSigner(message, sig)).toBe(addressFromPrivateKey(key));
          const other = typeof message === 'string' ? `${message}.` : Uint8Array.of(...message, 0);
          expect(recoverPersonalSigner(other, sig)).not.toBe(addressFromPrivateKey(key));
        },
      ),
      { numRuns: 30 },
    );
  });

  describe('malformed signatures are rejected with ENCODING_INVALID (named negative fixtures)', () => {
    const good =
      '0xb91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c';
    const r = good.slice(2, 66);
    const s = good.slice(66, 130);
    const highS = (N - BigInt(`0x${s}`)).toString(16).padStart(64, '0');
    const fixtures: [string, unknown][] = [
      ['64 bytes (no v)', good.slice(0, 130)],
      ['66 bytes', `${good}00`],
      ['no 0x prefix', good.slice(2)],
      ['not hex', `0x${'zz'.repeat(65)}`],
      ['v = 0 (the raw recovery id, which wallets like Ledger emit)', `0x${r}${s}00`],
      ['v = 29', `0x${r}${s}1d`],
      ['v = 37 (EIP-155 style)', `0x${r}${s}25`],
      ['high s: the malleable twin (r, n − s) with the other v (EIP-2)', `0x${r}${highS}1b`],
      ['r = 0', `0x${'00'.repeat(32)}${s}1c`],
      ['s = 0', `0x${r}${'00'.repeat(32)}1c`],
      ['r = n', `0x${N.toString(16)}${s}1c`],
      ['not a string nor bytes', 42],
    ];
    for (const [what, sig] of fixtures) {
      it(what, () => expectCode(() => recoverPersonalSigner('Some data', sig as string), 'ENCODING_INVALID'));
    }
    it('r that is no x coordinate on the curve', () => {
      // x = 5 has no y on secp256k1 (5^3 + 7 = 132 is not a square mod p).
      expectCode(() => recoverPersonalSigner('Some data', `0x${'00'.repeat(31)}05${s}1c`), 'ENCODING_INVALID');
    });
  });

  it('never throws anything but ENCODING_INVALID on garbage signatures', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ minLength: 65, maxLength: 65 }), fc.string()), (sig) => {
        try {
          recoverPersonalSigner('m', sig);
        } catch (e) {
          expect(isVerityError(e, 'ENCODING_INVALID')).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
