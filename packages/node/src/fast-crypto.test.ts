import { generateNoteKey, openNote, parseSignerKey, parseVerifierKey, signNote } from '@verity/protocol';
import { describe, expect, it } from 'vitest';
import { createFastSigner, createFastVerifier } from './fast-crypto.js';

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
