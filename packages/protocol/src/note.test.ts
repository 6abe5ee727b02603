import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, toHex } from './bytes.js';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint } from './checkpoint.js';
import { isVerityError } from './errors.js';
import { createMemoryTree, hashLeaf } from './merkle.js';
import {
  createEd25519Signer,
  encodeSignerKey,
  encodeVerifierKey,
  generateNoteKey,
  openNote,
  parseSignerKey,
  parseVerifierKey,
  signNote,
} from './note.js';
import { codeOf } from './test-support/errors.js';

// Vectors of independent provenance: golang.org/x/mod/sumdb/note, note_test.go (TestNewVerifier,
// TestSign, TestOpen). Go's signer and Verity's must agree byte for byte (Ed25519 is deterministic).
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SKEY = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG =
  '\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG =
  '\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';

describe('signed-note keys (Go sumdb/note vectors)', () => {
  it('parses the reference verifier key and signer key', () => {
    const v = parseVerifierKey(PETER_VKEY);
    expect(v.name).toBe('PeterNeumann');
    expect(v.keyId.toString(16)).toBe('c74f20a3');
    const s = parseSignerKey(PETER_SKEY);
    expect(s.keyId).toBe(v.keyId);
  });
  it('re-encodes the keys byte for byte', () => {
    const seed = fromBase64('AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz').subarray(1);
    expect(encodeSignerKey('PeterNeumann', seed)).toBe(PETER_SKEY);
    expect(generateNoteKey('PeterNeumann', seed).verifierKey).toBe(PETER_VKEY);
    const pub = fromBase64('ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW').subarray(1);
    expect(encodeVerifierKey('PeterNeumann', pub)).toBe(PETER_VKEY);
  });
  it('rejects every substring and every single-byte mangling of the verifier key', () => {
    for (let i = 0; i <= PETER_VKEY.length; i++) {
      for (let j = i + 1; j <= PETER_VKEY.length; j++) {
        if (i === 0 && j === PETER_VKEY.length) continue;
        expect(
          codeOf(() => parseVerifierKey(PETER_VKEY.slice(i, j))),
          PETER_VKEY.slice(i, j),
        ).toBe('NOTE_KEY_INVALID');
      }
    }
    for (let i = 0; i < PETER_VKEY.length; i++) {
      const bad = PETER_VKEY.slice(0, i) + String.fromCharCode(PETER_VKEY.charCodeAt(i) + 1) + PETER_VKEY.slice(i + 1);
      expect(
        codeOf(() => parseVerifierKey(bad)),
        bad,
      ).toBe('NOTE_KEY_INVALID');
    }
    // From TestNewVerifier: right key material, wrong key ID.
    expect(codeOf(() => parseVerifierKey('PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'))).toBe(
      'NOTE_KEY_INVALID',
    );
  });
});

describe('signNote / openNote', () => {
  it('produces exactly the note Go produces', () => {
    expect(signNote(TEXT, [parseSignerKey(PETER_SKEY)])).toBe(`${TEXT}\n${PETER_SIG}`);
  });
  it('opens with one known and one unknown key (TestOpen)', () => {
    const n = openNote(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}`, [parseVerifierKey(PETER_VKEY)]);
    expect(n.text).toBe(TEXT);
    expect(n.signatures.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(n.unverified.map((s) => [s.name, s.keyId.toString(16)])).toEqual([['EnochRoot', 'af0cfe78']]);
    const both = openNote(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}`, [
      parseVerifierKey(PETER_VKEY),
      parseVerifierKey(ENOCH_VKEY),
    ]);
    expect(both.signatures.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
  });
  it('needs a signature from a known key', () => {
    expect(codeOf(() => openNote(`${TEXT}\n${PETER_SIG}${ENOCH_SIG}`, []))).toBe('NOTE_UNKNOWN_KEY');
  });
  it('rejects ambiguous verifiers only when they are used', () => {
    const e = parseVerifierKey(ENOCH_VKEY);
    const p = parseVerifierKey(PETER_VKEY);
    expect(codeOf(() => openNote(`${TEXT}\n${ENOCH_SIG}`, [e, p, e]))).toBe('NOTE_KEY_INVALID');
    expect(codeOf(() => openNote(`${TEXT}\n${PETER_SIG}`, [e, p, e]))).toBeUndefined();
  });
  it('rejects a corrupted signature from a known key and a changed text', () => {
    const p = [parseVerifierKey(PETER_VKEY)];
    expect(codeOf(() => openNote(`${TEXT}\n${PETER_SIG.slice(0, 60)}ABCD${PETER_SIG.slice(60)}`, p))).toBe(
      'NOTE_SIGNATURE_INVALID',
    );
    expect(codeOf(() => openNote(`${TEXT.replace('cryptography', 'cryptographY')}\n${PETER_SIG}`, p))).toBe(
      'NOTE_SIGNATURE_INVALID',
    );
  });
  it('drops duplicate signatures', () => {
    const n = openNote(`${TEXT}\n${PETER_SIG}${PETER_SIG}${ENOCH_SIG}${ENOCH_SIG}`, [parseVerifierKey(PETER_VKEY)]);
    expect(n.signatures).toHaveLength(1);
    expect(n.unverified).toHaveLength(1);
  });
  it('rejects malformed notes (TestOpen badMsgs, plus too many signatures)', () => {
    const p = [parseVerifierKey(PETER_VKEY)];
    const bad = [
      TEXT,
      `${TEXT}\n`,
      `${TEXT}\n${PETER_SIG.slice(0, -1)}`,
      `\u0001${TEXT}\n${PETER_SIG}`,
      `\ud800${TEXT}\n${PETER_SIG}`,
      `${TEXT}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`,
      `${TEXT}\n${PETER_SIG}Unexpected line.\n`,
      `${TEXT}\n${PETER_SIG.repeat(101)}`,
    ];
    for (const m of bad)
      expect(
        codeOf(() => openNote(m, p)),
        JSON.stringify(m),
      ).toBe('NOTE_MALFORMED');
  });
  it('round-trips signing with fresh keys', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.stringMatching(/^[a-z0-9./-]{1,20}$/),
        (seed, name) => {
          const { signerKey, verifierKey } = generateNoteKey(name, seed);
          const note = signNote('a\nb\n', [parseSignerKey(signerKey)]);
          expect(openNote(note, [parseVerifierKey(verifierKey)]).text).toBe('a\nb\n');
        },
      ),
      { numRuns: 20 },
    );
  });
  it('garbage never raises anything but a typed error', () => {
    const p = [parseVerifierKey(PETER_VKEY)];
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        for (const fn of [() => openNote(s, p), () => openNote(`${TEXT}\n${s}`, p), () => parseVerifierKey(s)]) {
          try {
            fn();
          } catch (e) {
            expect(isVerityError(e)).toBe(true);
          }
        }
      }),
    );
  });
});

describe('checkpoints (C2SP tlog-checkpoint)', () => {
  const seed = new Uint8Array(32).fill(7);
  const signer = createEd25519Signer('example.com/log', seed);
  const { verifierKey } = generateNoteKey('example.com/log', seed);
  const tree = createMemoryTree(['a', 'b', 'c'].map((s) => hashLeaf(new TextEncoder().encode(s))));

  it('formats the body exactly as the spec example lays it out', () => {
    // Root of the 8-leaf RFC 6962 test tree; base64 from `echo 5dc9…4328 | xxd -r -p | base64`.
    const rootHash = fromBase64('XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=');
    expect(toHex(rootHash)).toBe('5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328');
    const text = formatCheckpoint({ origin: 'example.com/log', size: 8, rootHash, extensions: [] });
    expect(text).toBe('example.com/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n');
    expect(parseCheckpoint(text)).toEqual({ origin: 'example.com/log', size: 8, rootHash, extensions: [] });
  });
  it('signs and opens, checking the origin', () => {
    const note = signCheckpoint(
      { origin: 'example.com/log', size: 3, rootHash: tree.root(), extensions: ['x y'] },
      signer,
    );
    const { checkpoint } = openCheckpoint(note, [parseVerifierKey(verifierKey)], 'example.com/log');
    expect(checkpoint.size).toBe(3);
    expect(toBase64(checkpoint.rootHash)).toBe(toBase64(tree.root()));
    expect(checkpoint.extensions).toEqual(['x y']);
    expect(codeOf(() => openCheckpoint(note, [parseVerifierKey(verifierKey)], 'other.log'))).toBe(
      'CHECKPOINT_ORIGIN_MISMATCH',
    );
  });
  it('rejects malformed bodies', () => {
    const root = toBase64(tree.root());
    for (const bad of [
      `o\n3\n${root}`,
      `o\n03\n${root}\n`,
      `o\n-3\n${root}\n`,
      `o\n+3\n${root}\n`,
      `o\n9007199254740993\n${root}\n`,
      `o\n3\n${root.slice(4)}\n`,
      `o\n3\n${root}\n\n`,
      `\n3\n${root}\n`,
      'o\n3\n',
    ]) {
      expect(
        codeOf(() => parseCheckpoint(bad)),
        JSON.stringify(bad),
      ).toBe('CHECKPOINT_MALFORMED');
    }
  });
});
