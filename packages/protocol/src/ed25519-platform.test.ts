import { ed25519 } from '@noble/curves/ed25519.js';
import { describe, expect, it } from 'vitest';
import { concatBytes, fromBase64, fromHex, utf8 } from './bytes.js';
import { createPlatformEd25519Check, type Ed25519Platform, webCryptoEd25519 } from './ed25519-platform.js';
import { createEd25519Verifier, generateNoteKey, parseSignerKey, verifierPublicKey } from './note.js';
import { buildReceiptFixtures } from './test-support/receipt-fixtures.js';
import { createVerifyCache, primeVerifyCache, type TrustedNode, verifyBundle, verifyReceipt } from './verify.js';

// RFC 8032 §7.1 TEST 1–3 (public key, message, signature), and Go's sumdb/note PeterNeumann
// vector: independent provenance for both verifiers.
const RFC8032 = [
  {
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
].map((v) => ({ publicKey: fromHex(v.publicKey), message: fromHex(v.message), signature: fromHex(v.signature) }));
const GO_KEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const GO_SIG = 'x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=';
const VECTORS = [
  ...RFC8032,
  { publicKey: verifierPublicKey(GO_KEY), message: utf8(GO_TEXT), signature: fromBase64(GO_SIG).subarray(4) },
];

const portable = (publicKey: Uint8Array) => createEd25519Verifier('k', publicKey);
// Node 20+ and current Chromium have WebCrypto Ed25519; where it is missing the check is undefined.
const platform = await createPlatformEd25519Check(VECTORS[0]?.publicKey as Uint8Array);
const hasPlatform = platform !== undefined;

describe.runIf(hasPlatform)('platform Ed25519 (WebCrypto) agrees with the portable verifier', () => {
  it('accepts the RFC 8032 and Go vectors, and refuses every one-bit change of signature or message', async () => {
    for (const v of VECTORS) {
      const check = await createPlatformEd25519Check(v.publicKey);
      if (!check) throw new Error('platform Ed25519 expected');
      expect(portable(v.publicKey).verify(v.message, v.signature)).toBe(true);
      expect(await check(v.message, v.signature)).toBe(true);
      for (let i = 0; i < 64; i++) {
        const bad = v.signature.slice();
        bad[i] = (bad[i] as number) ^ (1 << (i % 8));
        expect(await check(v.message, bad)).toBe(portable(v.publicKey).verify(v.message, bad));
        expect(await check(v.message, bad)).toBe(false);
      }
      const other = concatBytes(v.message, new Uint8Array([0]));
      expect(await check(other, v.signature)).toBe(false);
      expect(await check(v.message, v.signature.subarray(0, 63))).toBe(false);
    }
  });

  it('agrees on fresh keys and messages', async () => {
    for (let i = 0; i < 16; i++) {
      const { signerKey, verifierKey } = generateNoteKey(`n${i}.example/log`);
      const publicKey = verifierPublicKey(verifierKey);
      const message = utf8(`message ${i}\n`);
      const signature = parseSignerKey(signerKey).sign(message);
      const check = await createPlatformEd25519Check(publicKey);
      expect(await check?.(message, signature)).toBe(true);
      expect(portable(publicKey).verify(message, signature)).toBe(true);
    }
  });

  it('refuses what strict RFC 8032 refuses even where a platform might not', async () => {
    const v = RFC8032[0] as (typeof RFC8032)[0];
    // S + L: the same point, a non-canonical scalar (RFC 8032 §5.1.7 requires S < L).
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(v.signature[32 + i] as number);
    const sPlusL = new Uint8Array(32);
    let t = s + L;
    for (let i = 0; i < 32; i++, t >>= 8n) sPlusL[i] = Number(t & 0xffn);
    const malleated = concatBytes(v.signature.subarray(0, 32), sPlusL);
    expect(portable(v.publicKey).verify(v.message, malleated)).toBe(false);
    expect(await platform?.(v.message, malleated)).toBe(false);
    // A small-order key (the identity), R = identity and S = 0 satisfy the cofactorless equation
    // for every message; the portable verifier refuses small-order keys, and so must this.
    const identity = ed25519.Point.ZERO.toBytes();
    const lax = concatBytes(identity, new Uint8Array(32));
    expect(portable(identity).verify(v.message, lax)).toBe(false);
    const check = await createPlatformEd25519Check(identity);
    expect(await check?.(v.message, lax)).toBe(false);
  });
});

describe('primeVerifyCache', () => {
  const { trust, fixtures } = buildReceiptFixtures();

  it('changes no outcome: every named fixture verifies the same, primed or not', async () => {
    for (const f of fixtures) {
      const t = f.trust ?? trust;
      const plain = verifyBundle(f.bundle, t, f.options ?? {});
      const cache = createVerifyCache();
      await primeVerifyCache(f.bundle, t, cache);
      const primed = verifyBundle(f.bundle, t, { ...f.options, cache });
      expect(primed.ok ? 'ok' : primed.code, f.name).toBe(plain.ok ? 'ok' : plain.code);
      expect(primed.ok ? 'ok' : primed.code, f.name).toBe(f.expect);
    }
  });

  it('a primed checkpoint needs no portable signature check; a forged one is not primed', async () => {
    const valid = fixtures.find((f) => f.name === 'valid-receipt')?.bundle as { receipts: unknown[] };
    const receipt = valid.receipts[0];
    let portableChecks = 0;
    const counting = trust.nodes.map((n: TrustedNode) => {
      const reference = createEd25519Verifier(n.logKey.slice(0, n.logKey.indexOf('+')), verifierPublicKey(n.logKey));
      return {
        ...n,
        verifier: {
          name: reference.name,
          keyId: reference.keyId,
          verify: (m: Uint8Array, s: Uint8Array) => {
            portableChecks++;
            return reference.verify(m, s);
          },
        },
      };
    });
    const counted = { ...trust, nodes: counting };
    const cache = createVerifyCache();
    await primeVerifyCache(receipt, counted, cache);
    expect(cache.checkpoints.size).toBe(hasPlatform ? 1 : 0);
    expect(verifyReceipt(receipt, counted, { cache }).ok).toBe(true);
    expect(portableChecks).toBe(hasPlatform ? 0 : 1);

    const forged = fixtures.find((f) => f.name === 'checkpoint-size-edited')?.bundle;
    const forgedCache = createVerifyCache();
    await primeVerifyCache(forged, trust, forgedCache);
    expect(forgedCache.checkpoints.size).toBe(0);
    const r = verifyBundle(forged, trust, { cache: forgedCache });
    expect(r.ok ? 'ok' : r.code).toBe('NOTE_SIGNATURE_INVALID');
  });

  it('checks a checkpoint that receipts arriving together share once, with the platform given', async () => {
    const valid = fixtures.find((f) => f.name === 'valid-receipt')?.bundle as { receipts: unknown[] };
    const receipt = valid.receipts[0];
    let checks = 0;
    const counting: Ed25519Platform = async (publicKey) => {
      const check = await webCryptoEd25519(publicKey);
      if (check === undefined) return undefined;
      return (m, s) => {
        checks++;
        return check(m, s);
      };
    };
    const cache = createVerifyCache(16, { ed25519: counting });
    await Promise.all([1, 2, 3].map(() => primeVerifyCache(receipt, trust, cache)));
    expect(checks).toBe(hasPlatform ? 1 : 0);
    expect(cache.checkpoints.size).toBe(hasPlatform ? 1 : 0);
    expect(cache.priming?.size).toBe(0);
    // The same checkpoint with its signature changed is another entry, never the cached verdict.
    const r = receipt as { checkpoint: string };
    const sigAt = r.checkpoint.lastIndexOf(' ') + 20; // past the key ID: in the signature itself
    const flipped = r.checkpoint[sigAt] === 'A' ? 'B' : 'A';
    const forged = { ...r, checkpoint: `${r.checkpoint.slice(0, sigAt)}${flipped}${r.checkpoint.slice(sigAt + 1)}` };
    await primeVerifyCache(forged, trust, cache);
    expect(cache.checkpoints.size).toBe(hasPlatform ? 1 : 0);
    const v = verifyReceipt(forged, trust, { cache });
    expect(v.ok ? 'ok' : v.code).toBe('NOTE_SIGNATURE_INVALID');
  });

  it('never throws, whatever it is given', async () => {
    for (const v of [undefined, null, 1, 'x', {}, { mediaType: 1 }, [], { receipts: [{}] }]) {
      await expect(primeVerifyCache(v, trust, createVerifyCache())).resolves.toBeUndefined();
    }
  });
});
