import { generateNoteKey, openNote, parseSignerKey, parseVerifierKey, signNote } from '@verity/protocol';
import { describe, expect, it } from 'vitest';
import { createFastSigner } from './fast-crypto.js';

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
