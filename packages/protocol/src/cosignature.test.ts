import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from './bytes.js';
import { formatCheckpoint, signCheckpoint } from './checkpoint.js';
import {
  addCosignatures,
  cosignatureMessage,
  cosignatureTimestamp,
  createCosignatureVerifier,
  createCosigner,
  parseWitnessKey,
  parseWitnessPolicy,
  verifyWitnessPolicy,
} from './cosignature.js';
import { createMemoryTree, hashLeaf } from './merkle.js';
import { createEd25519Signer, encodeVerifierKey, generateNoteKey, noteKeyId, openNote } from './note.js';
import { codeOf, expectCode } from './test-support/errors.js';
import { buildReceiptFixtures } from './test-support/receipt-fixtures.js';
import { createVerifyCache, type Trust, verifyBundle } from './verify.js';

// Vectors of independent provenance.
// 1. A production witness: remora.n621.de's verifier key (type 0x04), as listed in
//    transparency-dev/formats note/note_cosigv1_test.go (TestCoSigV1NewVerifier), and its real
//    cosignature on a checkpoint of the transparency.dev staging CT log arche2025h1 (the cosigned
//    note is a test fixture of a third-party Python checkpoint library). Verity did not make it.
const REMORA_VKEY = 'remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2';
const ARCHE_BODY =
  'arche2025h1.staging.ct.transparency.dev\n1432088532\nU7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n';
const ARCHE_NOTE = `${ARCHE_BODY}
\u2014 arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
\u2014 arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
\u2014 transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
\u2014 witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
\u2014 remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
\u2014 witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
`;
const REMORA_TIMESTAMP = 1779573024; // 0x6a122120, the 8 bytes after the key ID
// 2. The C2SP tlog-cosignature spec's example line: key ID 0x8d66cf3f, time 1679315147 (the
//    spec's example message says `time 1679315147`).
const SPEC_LINE_B64 =
  'jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==';
// 3. transparency-dev/formats TestCosignatureTimestamp: this signature's timestamp is 1727964367.
const FORMATS_B64 =
  'ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==';
// ...and its "wrong type of signature" (a plain 0x01 note signature: no room for a timestamp).
const FORMATS_PLAIN_B64 =
  'eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=';

const remoraPolicy = { keys: [REMORA_VKEY], threshold: 1 };

describe('cosignature/v1 against independent vectors', () => {
  it('parses a production witness key: its key ID is computed with type 0x04', () => {
    const k = parseWitnessKey(REMORA_VKEY);
    expect(k.name).toBe('remora.n621.de');
    expect(k.keyId.toString(16)).toBe('da77ade7');
    expect(k.verifierKey).toBe(REMORA_VKEY);
    // The same key under type 0x01 has another ID: the two kinds of key are never confused.
    expect(noteKeyId(k.name, k.publicKey)).not.toBe(k.keyId);
  });

  it("verifies remora.n621.de's real cosignature on a CT log checkpoint and reads its timestamp", () => {
    const [c] = verifyWitnessPolicy(ARCHE_NOTE, remoraPolicy);
    expect(c).toEqual({ witness: 'remora.n621.de', keyId: 0xda77ade7, timestamp: REMORA_TIMESTAMP });
  });

  it('reads the timestamps of the spec example and of transparency-dev/formats', () => {
    expect(cosignatureTimestamp({ base64: SPEC_LINE_B64 })).toBe(1679315147);
    expect(cosignatureTimestamp({ base64: FORMATS_B64 })).toBe(1727964367);
    expect(codeOf(() => cosignatureTimestamp({ base64: FORMATS_PLAIN_B64 }))).toBe('COSIGNATURE_MALFORMED');
    expect(codeOf(() => cosignatureTimestamp({ base64: '5%/$!\n 2' }))).toBe('COSIGNATURE_MALFORMED');
  });

  it('signs the message the spec spells out', () => {
    expect(
      new TextDecoder().decode(cosignatureMessage('example.com/behind-the-sofa\n20852163\nCsUY\n', 1679315147)),
    ).toBe('cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUY\n');
  });

  it('refuses a log key (type 0x01) as a witness key', () => {
    expectCode(
      () => parseWitnessKey('PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
      'NOTE_KEY_INVALID',
    );
    // A right key with a wrong key ID.
    expectCode(() => parseWitnessKey(REMORA_VKEY.replace('da77ade7', 'da77ade8')), 'NOTE_KEY_INVALID');
  });
});

describe('tampered cosignatures (named fixtures)', () => {
  // Each: what is wrong, and the code it must produce.
  const remoraLine = ARCHE_NOTE.split('\n').find((l) => l.startsWith('\u2014 remora')) as string;
  const b64 = remoraLine.split(' ')[2] as string;
  const bytes = fromBase64(b64);
  const flip = (i: number) => {
    const b = bytes.slice();
    b[i] = (b[i] as number) ^ 1;
    return ARCHE_NOTE.replace(b64, toBase64(b));
  };
  const fixtures: [string, string, string][] = [
    [
      'the tree size changed (another checkpoint)',
      ARCHE_NOTE.replace('1432088532', '1432088533'),
      'COSIGNATURE_INVALID',
    ],
    ['the timestamp changed (bytes 4..11)', flip(11), 'COSIGNATURE_INVALID'],
    ['a bit of the Ed25519 signature flipped', flip(40), 'COSIGNATURE_INVALID'],
    ['the key ID changed: the line is no longer the named witness’s', flip(0), 'WITNESS_QUORUM_UNMET'],
    ['the remora line removed', ARCHE_NOTE.replace(`${remoraLine}\n`, ''), 'WITNESS_QUORUM_UNMET'],
    [
      'the signature cut to a plain note signature (no timestamp)',
      ARCHE_NOTE.replace(b64, toBase64(bytes.subarray(0, 68))),
      'COSIGNATURE_INVALID',
    ],
  ];
  for (const [what, note, code] of fixtures) {
    it(`${what} → ${code}`, () => {
      expect(codeOf(() => verifyWitnessPolicy(note, remoraPolicy))).toBe(code);
    });
  }
});

describe('cosigners and witness policies', () => {
  const tree = createMemoryTree([hashLeaf(new Uint8Array([1])), hashLeaf(new Uint8Array([2]))]);
  const log = createEd25519Signer('example.com/log', new Uint8Array(32).fill(7));
  const note = signCheckpoint({ origin: 'example.com/log', size: 2, rootHash: tree.root(), extensions: [] }, log);
  const body = formatCheckpoint({ origin: 'example.com/log', size: 2, rootHash: tree.root(), extensions: [] });
  const w = [1, 2, 3].map((i) => createCosigner(`witness.example/w${i}`, new Uint8Array(32).fill(i)));
  const keys = w.map((c) => c.verifierKey);

  it('a cosigned checkpoint is still a signed note the log key opens, and meets m of n', () => {
    const cosigned = addCosignatures(note, w[0]?.cosign(body, 1700000000) + (w[2]?.cosign(body, 1700000001) ?? ''));
    const logVerifier = { ...log, verify: () => true };
    expect(openNote(cosigned, [logVerifier]).unverified.map((u) => u.name)).toEqual([
      'witness.example/w1',
      'witness.example/w3',
    ]);
    const got = verifyWitnessPolicy(cosigned, { keys, threshold: 2 });
    expect(got.map((c) => [c.witness, c.timestamp])).toEqual([
      ['witness.example/w1', 1700000000],
      ['witness.example/w3', 1700000001],
    ]);
    expect(codeOf(() => verifyWitnessPolicy(cosigned, { keys, threshold: 3 }))).toBe('WITNESS_QUORUM_UNMET');
    // One witness cosigning twice (two timestamps) counts once.
    const twice = addCosignatures(note, (w[0]?.cosign(body, 1) ?? '') + (w[0]?.cosign(body, 2) ?? ''));
    expect(codeOf(() => verifyWitnessPolicy(twice, { keys, threshold: 2 }))).toBe('WITNESS_QUORUM_UNMET');
    // Adding the same lines again changes nothing.
    expect(addCosignatures(cosigned, w[0]?.cosign(body, 1700000000) ?? '')).toBe(cosigned);
  });

  it('a log key signing as if it were a witness does not count (its key ID is of type 0x01)', () => {
    const sameSeed = createEd25519Signer('witness.example/w1', new Uint8Array(32).fill(1));
    const impostor = addCosignatures(
      note,
      `\u2014 witness.example/w1 ${toBase64(new Uint8Array([...new Uint8Array(4).map((_, i) => (sameSeed.keyId >>> (24 - 8 * i)) & 255), ...sameSeed.sign(new TextEncoder().encode(body))]))}\n`,
    );
    expect(codeOf(() => verifyWitnessPolicy(impostor, { keys, threshold: 1 }))).toBe('WITNESS_QUORUM_UNMET');
  });

  it('refuses malformed policies with WITNESS_POLICY_INVALID', () => {
    const bad: [string, unknown][] = [
      ['threshold 0', { keys, threshold: 0 }],
      ['threshold above the keys', { keys, threshold: 4 }],
      ['one witness twice', { keys: [keys[0], keys[0]], threshold: 2 }],
      ['a log key', { keys: [generateNoteKey('x').verifierKey], threshold: 1 }],
      ['no keys array', { threshold: 1 }],
    ];
    for (const [, policy] of bad) {
      expect(codeOf(() => parseWitnessPolicy(policy as never))).toBe('WITNESS_POLICY_INVALID');
    }
  });

  it('round trip: any checkpoint and timestamp cosigned verifies; under another witness key it does not', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 0, max: 2 ** 40 }), (root, t) => {
        const text = formatCheckpoint({ origin: 'example.com/log', size: 5, rootHash: root, extensions: ['ext'] });
        const line = w[1]?.cosign(text, t) as string;
        const raw = fromBase64(line.trim().split(' ')[2] as string);
        const v = createCosignatureVerifier(parseWitnessKey(keys[1] as string));
        expect(v.verify(new TextEncoder().encode(text), raw.subarray(4))).toBe(true);
        const other = createCosignatureVerifier(parseWitnessKey(keys[0] as string));
        expect(other.verify(new TextEncoder().encode(text), raw.subarray(4))).toBe(false);
        expect(cosignatureTimestamp({ base64: toBase64(raw) })).toBe(t);
      }),
      { numRuns: 25 },
    );
  });

  it('verifier keys of both types encode with their type byte', () => {
    const pk = parseWitnessKey(keys[0] as string).publicKey;
    expect(fromBase64((keys[0] as string).split('+')[2] as string)[0]).toBe(0x04);
    expect(fromBase64(encodeVerifierKey('witness.example/w1', pk).split('+')[2] as string)[0]).toBe(0x01);
  });
});

describe('witness policies in verifyBundle with a cache', () => {
  it('a cached cosigned checkpoint does not let a forged one through, and the same answers come back', () => {
    const { fixtures } = buildReceiptFixtures();
    const get = (name: string) => fixtures.find((f) => f.name === name) as (typeof fixtures)[number];
    const valid = get('valid-witnessed');
    const forged = get('witness-cosignature-forged');
    const cache = createVerifyCache();
    for (let i = 0; i < 2; i++) {
      const ok = verifyBundle(valid.bundle, valid.trust as Trust, { cache });
      expect(ok.ok && ok.receipts[0]?.cosignatures?.map((c) => c.witness)).toEqual([
        'fixtures.verity.test/witness/w1',
        'fixtures.verity.test/witness/w3',
      ]);
      const bad = verifyBundle(forged.bundle, forged.trust as Trust, { cache });
      expect(bad.ok ? 'ok' : bad.code).toBe('COSIGNATURE_INVALID');
      // The same bundle under a stricter policy is not answered from the cache of the looser one.
      const strict = { ...(valid.trust as Trust), witnesses: { ...(valid.trust as Trust).witnesses!, threshold: 3 } };
      const unmet = verifyBundle(valid.bundle, strict, { cache });
      expect(unmet.ok ? 'ok' : unmet.code).toBe('WITNESS_QUORUM_UNMET');
    }
  });
});
