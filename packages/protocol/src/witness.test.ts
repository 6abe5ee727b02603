import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { toBase64 } from './bytes.js';
import { signCheckpoint } from './checkpoint.js';
import { createMemoryTree, EMPTY_ROOT, hashLeaf } from './merkle.js';
import { createEd25519Signer, createEd25519Verifier } from './note.js';
import { compareHeads } from './split-view.js';
import { codeOf } from './test-support/errors.js';
import { checkAddCheckpoint, formatAddCheckpoint, parseAddCheckpoint } from './witness.js';

// The C2SP tlog-witness spec's example request body (independent provenance: its format).
const SPEC_REQUEST = `old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

\u2014 example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
\u2014 example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
`;

describe('add-checkpoint request body', () => {
  it('parses the spec example and formats it back byte for byte', () => {
    const r = parseAddCheckpoint(SPEC_REQUEST);
    expect(r.oldSize).toBe(20852014);
    expect(r.proof.map(toBase64)[3]).toBe('/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=');
    expect(r.checkpoint.startsWith('example.com/behind-the-sofa\n20852163\n')).toBe(true);
    expect(formatAddCheckpoint(r)).toBe(SPEC_REQUEST);
  });

  it('refuses malformed bodies with WITNESS_REQUEST_MALFORMED (HTTP 400)', () => {
    const bad: [string, string][] = [
      ['no blank line', 'old 0\nexample.com/log\n'],
      ['no old line', `\n\n${SPEC_REQUEST.split('\n\n')[1]}`],
      ['old size with a leading zero', SPEC_REQUEST.replace('old 20852014', 'old 020852014')],
      ['old size negative', SPEC_REQUEST.replace('old 20852014', 'old -1')],
      ['a proof line that is not base64', SPEC_REQUEST.replace('PlRNCrwH', 'PlRN*rwH')],
      [
        'a proof line of 31 bytes',
        SPEC_REQUEST.replace('PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=', toBase64(new Uint8Array(31))),
      ],
      ['64 proof lines', `old 1\n${`${toBase64(new Uint8Array(32))}\n`.repeat(64)}\nx\n`],
      ['nothing after the blank line', 'old 0\n\n'],
    ];
    for (const [what, body] of bad)
      expect([what, codeOf(() => parseAddCheckpoint(body))]).toEqual([what, 'WITNESS_REQUEST_MALFORMED']);
  });

  it('round trips any request', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
        fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 63 }),
        (oldSize, proof) => {
          const r = { oldSize, proof, checkpoint: 'example.com/log\n1\nAAAA\n\n\u2014 x AAAA\n' };
          expect(parseAddCheckpoint(formatAddCheckpoint(r))).toEqual(r);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('the witness decision (tlog-witness rules, one code each)', () => {
  const origin = 'example.com/log';
  const log = createEd25519Signer(origin, new Uint8Array(32).fill(9));
  const logKeys = [createEd25519Verifier(origin, ed25519.getPublicKey(new Uint8Array(32).fill(9)))];
  const tree = createMemoryTree();
  for (let i = 0; i < 10; i++) tree.append(hashLeaf(new Uint8Array([i])));
  const head = (size: number, root = tree.root(size), signer = log) =>
    signCheckpoint({ origin, size, rootHash: root, extensions: [] }, signer);
  const stored = { size: 4, rootHash: tree.root(4) };
  const good = { oldSize: 4, proof: tree.consistencyProof(4, 7), checkpoint: head(7) };

  it('accepts a consistent checkpoint, from 0 and from the stored size', () => {
    expect(checkAddCheckpoint({ oldSize: 0, proof: [], checkpoint: head(4) }, logKeys, undefined).size).toBe(4);
    expect(checkAddCheckpoint(good, logKeys, stored).size).toBe(7);
    expect(checkAddCheckpoint({ oldSize: 4, proof: [], checkpoint: head(4) }, logKeys, stored).size).toBe(4);
    expect(
      checkAddCheckpoint({ oldSize: 0, proof: [], checkpoint: head(0, EMPTY_ROOT) }, logKeys, undefined).size,
    ).toBe(0);
  });

  // Named fixtures: what is wrong → the code (and its HTTP status in docs/api.md).
  const other = createEd25519Signer(origin, new Uint8Array(32).fill(8));
  const forkRoot = hashLeaf(new Uint8Array([0xff]));
  const fixtures: [string, Parameters<typeof checkAddCheckpoint>, string][] = [
    ['an origin it does not witness (404)', [good, undefined, stored], 'WITNESS_UNKNOWN_LOG'],
    [
      'signed by another key only (403)',
      [{ ...good, checkpoint: head(7, tree.root(7), other) }, logKeys, stored],
      'WITNESS_LOG_UNSIGNED',
    ],
    [
      'the log signature broken: the size edited after signing (403)',
      [{ ...good, checkpoint: head(7).replace('\n7\n', '\n8\n') }, logKeys, stored],
      'WITNESS_LOG_SIGNATURE_INVALID',
    ],
    [
      'old size above the checkpoint size (400)',
      [{ ...good, oldSize: 8 }, logKeys, stored],
      'WITNESS_OLD_SIZE_INVALID',
    ],
    [
      'old size stale: not the latest cosigned (409)',
      [{ ...good, oldSize: 3, proof: tree.consistencyProof(3, 7) }, logKeys, stored],
      'WITNESS_OLD_SIZE_CONFLICT',
    ],
    [
      'old size 0 when it cosigned 4 (409)',
      [{ oldSize: 0, proof: [], checkpoint: head(7) }, logKeys, stored],
      'WITNESS_OLD_SIZE_CONFLICT',
    ],
    [
      'a consistency proof that does not verify (422)',
      [{ ...good, proof: tree.consistencyProof(5, 7) }, logKeys, stored],
      'WITNESS_CONSISTENCY_INVALID',
    ],
    [
      'a forked tree: size 7 with another root (422)',
      [{ ...good, checkpoint: head(7, forkRoot) }, logKeys, stored],
      'WITNESS_CONSISTENCY_INVALID',
    ],
    [
      'same size, another root (422)',
      [{ oldSize: 4, proof: [], checkpoint: head(4, forkRoot) }, logKeys, stored],
      'WITNESS_CONSISTENCY_INVALID',
    ],
    [
      'a non-empty proof from size 0 (422)',
      [{ oldSize: 0, proof: [forkRoot], checkpoint: head(4) }, logKeys, undefined],
      'WITNESS_CONSISTENCY_INVALID',
    ],
    [
      'an empty tree whose root is not SHA-256("") (422)',
      [{ oldSize: 0, proof: [], checkpoint: head(0, forkRoot) }, logKeys, undefined],
      'WITNESS_CONSISTENCY_INVALID',
    ],
    ['not a checkpoint note (400)', [{ ...good, checkpoint: 'hello\n' }, logKeys, stored], 'WITNESS_REQUEST_MALFORMED'],
  ];
  for (const [what, args, code] of fixtures) {
    it(`${what} → ${code}`, () => {
      expect(codeOf(() => checkAddCheckpoint(...args))).toBe(code);
    });
  }

  it('a 409 tells the latest size', () => {
    try {
      checkAddCheckpoint({ ...good, oldSize: 3 }, logKeys, stored);
    } catch (e) {
      expect((e as { details: { latestSize: number } }).details.latestSize).toBe(4);
    }
  });
});

describe('split views', () => {
  const origin = 'example.com/log';
  const tree = createMemoryTree();
  for (let i = 0; i < 6; i++) tree.append(hashLeaf(new Uint8Array([i])));
  const fork = createMemoryTree();
  for (let i = 0; i < 6; i++) fork.append(hashLeaf(new Uint8Array([i === 4 ? 0xee : i])));
  const seen = (t: typeof tree, size: number, source: string) => ({
    checkpoint: { origin, size, rootHash: t.root(size), extensions: [] },
    note: `note ${source}`,
    source,
  });

  it('two heads of one size with different roots are a split view, with both as evidence', () => {
    const e = compareHeads(seen(tree, 6, 'node'), seen(fork, 6, 'witness'));
    expect(e?.reason).toBe('same-size');
    expect([e?.first.note, e?.second.note]).toEqual(['note node', 'note witness']);
    expect(compareHeads(seen(tree, 6, 'a'), seen(tree, 6, 'b'))).toBeUndefined();
  });

  it('a growing log with a valid proof is no split view; a fork whose proof fails is one', () => {
    expect(compareHeads(seen(tree, 3, 'a'), seen(tree, 6, 'b'), tree.consistencyProof(3, 6))).toBeUndefined();
    expect(compareHeads(seen(tree, 6, 'b'), seen(tree, 3, 'a'), tree.consistencyProof(3, 6))).toBeUndefined();
    const e = compareHeads(seen(tree, 5, 'a'), seen(fork, 6, 'b'), fork.consistencyProof(5, 6));
    expect(e?.reason).toBe('inconsistent');
    expect(e?.proof?.length).toBeGreaterThan(0);
  });
});
