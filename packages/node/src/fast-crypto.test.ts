import {
  concatBytes,
  createPlatformEd25519Check,
  generateNoteKey,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
  verifierPublicKey,
} from '@verity/protocol';
import { describe, expect, it } from 'vitest';
import { createFastSigner, createFastVerifier, nodeEd25519 } from './fast-crypto.js';

// The Go sumdb/note reference key: the fast signer must produce Go's signature byte for byte.
const SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const SIG =
  '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';

describe('node:crypto Ed25519 signer', () => {
  it('matches the reference vector and the portable signer', () => {
    expect(signNote(TEXT, [createFastSigner(SKEY)])).toBe(`${TEXT}\n${SIG}`);
    for (let i = 0; i < 20; i++) {
      const { signerKey, verifierKey } = generateNoteKey(`n${i}.example/log`);
      const message = new TextEncoder().encode(`message ${i}\n`);
      const fast = createFastSigner(signerKey);
      expect(fast.sign(message)).toEqual(parseSignerKey(signerKey).sign(message));
      expect(openNote(signNote(`m${i}\n`, [fast]), [parseVerifierKey(verifierKey)]).text).toBe(`m${i}\n`);
    }
  });
  it('refuses a malformed key with the protocol code', () => {
    expect(() => createFastSigner('PRIVATE+KEY+x+00000000+AQ==')).toThrowError(
      expect.objectContaining({ code: 'NOTE_KEY_INVALID' }),
    );
  });
});

// Go's reference verifier key for PeterNeumann.
const VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';

describe('node:crypto Ed25519 verifier', () => {
  it('accepts the reference signature and agrees with the portable verifier on tampered ones', () => {
    expect(openNote(`${TEXT}\n${SIG}`, [createFastVerifier(VKEY)]).text).toBe(TEXT);
    const fast = createFastVerifier(VKEY);
    const slow = parseVerifierKey(VKEY);
    expect([fast.name, fast.keyId]).toEqual([slow.name, slow.keyId]);
    const message = new TextEncoder().encode(TEXT);
    const sig = parseSignerKey(SKEY).sign(message);
    for (let i = 0; i < 64; i++) {
      const bad = sig.slice();
      bad[i] = (bad[i] as number) ^ 1;
      expect(fast.verify(message, bad)).toBe(slow.verify(message, bad));
      expect(fast.verify(message, bad)).toBe(false);
    }
    expect(fast.verify(message, sig)).toBe(true);
    expect(fast.verify(message, sig.subarray(0, 63))).toBe(false);
  });
});

describe('node:crypto Ed25519 as the protocol platform verifier (nodeEd25519)', () => {
  const message = new TextEncoder().encode(TEXT);
  const sig = parseSignerKey(SKEY).sign(message);
  const slow = parseVerifierKey(VKEY);

  it("accepts Go's reference signature and refuses every one-bit change, as the portable verifier", async () => {
    const check = await createPlatformEd25519Check(verifierPublicKey(VKEY), nodeEd25519);
    if (check === undefined) throw new Error('node:crypto has Ed25519');
    expect(await check(message, sig)).toBe(true);
    for (let i = 0; i < 64; i++) {
      const bad = sig.slice();
      bad[i] = (bad[i] as number) ^ (1 << (i % 8));
      expect(await check(message, bad)).toBe(slow.verify(message, bad));
    }
    expect(await check(concatBytes(message, new Uint8Array([0])), sig)).toBe(false);
    expect(await check(message, sig.subarray(0, 63))).toBe(false);
  });

  it('refuses what strict RFC 8032 refuses: S + L, a small-order key', async () => {
    const check = await createPlatformEd25519Check(verifierPublicKey(VKEY), nodeEd25519);
    // S + L: the same point, a non-canonical scalar (RFC 8032 §5.1.7 requires S < L).
    const L = 2n ** 252n + 27742317777372353535851937790883648493n;
    let s = 0n;
    for (let i = 31; i >= 0; i--) s = (s << 8n) | BigInt(sig[32 + i] as number);
    const sPlusL = new Uint8Array(32);
    let t = s + L;
    for (let i = 0; i < 32; i++, t >>= 8n) sPlusL[i] = Number(t & 0xffn);
    const malleated = concatBytes(sig.subarray(0, 32), sPlusL);
    expect(slow.verify(message, malleated)).toBe(false);
    expect(await check?.(message, malleated)).toBe(false);
    // The identity as key, R = identity and S = 0: the cofactorless equation holds for every message.
    const identity = new Uint8Array(32);
    identity[0] = 1; // y = 1, x = 0 (RFC 8032 §5.1.2 encoding)
    const lax = concatBytes(identity, new Uint8Array(32));
    expect(await (await createPlatformEd25519Check(identity, nodeEd25519))?.(message, lax)).toBe(false);
  });
});
