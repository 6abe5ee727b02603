import fc from 'fast-check';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { describe, expect, it } from 'vitest';
import { fromUtf8 } from './bytes.js';
import { canonicalize } from './canonical-json.js';
import { isVerityError } from './errors.js';
import { addressFromPrivateKey, personalSign } from './eth.js';
import { sha256 } from './hash.js';
import {
  type Manifest,
  manifestBytes,
  manifestCid,
  parseManifest,
  type SignedManifest,
  signManifest,
  verifySignedManifest,
} from './manifest.js';
import { MAX_TENSOR_RANK } from './tensor.js';
import { expectCode } from './test-support/errors.js';

// The web3.js docs key (see eth.test.ts) and a second key, for "someone else".
const KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const OTHER_KEY = '0xb25c7db31feed9122727bf0939dc769a96564b2de4c4726d035b36ecf1e5b364';
const PUBLISHER = addressFromPrivateKey(KEY); // 0x2c7536E3605D9C16a7a3D7b1898e529396a65c23

/** A sample manifest; the artifact is kubo's 1 MiB + 1 test file (see cid.test.ts). */
function sample(): Manifest {
  return {
    schema: 'verity.manifest/v1',
    name: 'iris',
    version: '1.2.0',
    format: 'onnx',
    artifact: { cid: 'bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64', size: 1_048_577 },
    inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
    outputs: [
      { name: 'label', dtype: 'int64', shape: ['batch'] },
      { name: 'probabilities', dtype: 'float32', shape: ['batch', 3] },
    ],
    profiles: ['native', 'portable'],
    license: 'MIT',
    description: 'Iris classifier (scikit-learn, converted with skl2onnx).',
    publisher: PUBLISHER,
    createdAt: '2025-01-31T12:00:00Z',
  };
}

/** The canonical JSON of sample(): members sorted, no whitespace (docs/protocol.md §4). */
const SAMPLE_CANONICAL =
  '{"artifact":{"cid":"bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64","size":1048577},' +
  '"createdAt":"2025-01-31T12:00:00Z","description":"Iris classifier (scikit-learn, converted with skl2onnx).",' +
  '"format":"onnx","inputs":[{"dtype":"float32","name":"input","shape":["batch",4]}],"license":"MIT",' +
  '"name":"iris","outputs":[{"dtype":"int64","name":"label","shape":["batch"]},' +
  '{"dtype":"float32","name":"probabilities","shape":["batch",3]}],"profiles":["native","portable"],' +
  '"publisher":"0x2c7536E3605D9C16a7a3D7b1898e529396a65c23","schema":"verity.manifest/v1","version":"1.2.0"}';

function expectInvalid(value: unknown, path: string): void {
  try {
    parseManifest(value);
  } catch (e) {
    expect(isVerityError(e, 'MANIFEST_INVALID')).toBe(true);
    expect((e as { details: { path: string } }).details.path).toBe(path);
    return;
  }
  throw new Error(`expected MANIFEST_INVALID at ${path}`);
}

/** Reverses the member order of every object, deep. */
function reorder(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reorder);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .reverse()
        .map(([k, v]) => [k, reorder(v)]),
    );
  }
  return value;
}

describe('manifest identity', () => {
  it('round-trips through JSON text', () => {
    const m = sample();
    expect(parseManifest(JSON.parse(JSON.stringify(m)))).toEqual(m);
  });

  it('is RFC 8785 canonical JSON, and its CID is json-codec sha2-256 of those bytes', () => {
    const bytes = manifestBytes(sample());
    expect(fromUtf8(bytes)).toBe(SAMPLE_CANONICAL);
    const cid = manifestCid(sample());
    // Cross-check the CID with multiformats (IPFS's JS implementation): codec 0x0200, sha2-256.
    expect(cid).toBe(CID.create(1, 0x0200, Digest.create(0x12, sha256(bytes))).toString());
    expect(cid.startsWith('bagaaiera')).toBe(true);
    // Pinned so that a change of canonical form or CID layout is noticed (docs/protocol.md §4);
    // also checked outside this code: `printf '%s' "$SAMPLE_CANONICAL" | sha256sum` gives
    // fc6ae2b3…0389b, and 01 8004 12 20 ‖ digest in base32 is this text.
    expect(cid).toBe('bagaaiera7rvofm7cyyicw4bosy4wnbvsztqzsjkaz5eewypgxtz5souahcnq');
    expect(bytes).toHaveLength(581);
  });

  it('does not depend on member order or whitespace of the source JSON', () => {
    const reordered = JSON.stringify(reorder(sample()), null, 2);
    expect(manifestCid(parseManifest(JSON.parse(reordered)))).toBe(manifestCid(sample()));
  });

  it('keeps optional fields out of the bytes when absent', () => {
    const { license: _l, description: _d, ...bare } = sample();
    expect(fromUtf8(manifestBytes(bare))).not.toContain('license');
    expect(manifestCid(bare)).not.toBe(manifestCid(sample()));
    const withMeta = { ...sample(), metadata: { 'general.architecture': 'llama', 'llama.context_length': '4096' } };
    expect(parseManifest(withMeta).metadata).toEqual(withMeta.metadata);
  });

  it('drops nothing silently: extra fields are errors, not ignored', () => {
    expectInvalid({ ...sample(), extra: 1 }, '/extra');
    expect(() => manifestBytes({ ...sample(), extra: 1 } as Manifest)).toThrow();
  });
});

describe('manifest signatures', () => {
  it('signs the CID text with personal_sign and verifies', () => {
    const signed = signManifest(sample(), KEY);
    expect(signed.signature).toBe(personalSign(manifestCid(sample()), KEY));
    // Pinned (RFC 6979 signatures are deterministic), as in docs/protocol.md §4.
    expect(signed.signature).toBe(
      '0xbb6576aa11112c15ffe7658d482d8fc4576f2b46573bfc1c084018b190dbc2526630d172d737783257d1e5cb91284fa1c817b44976eaf122a9477cacec9966a11b',
    );
    expect(verifySignedManifest(signed)).toEqual(sample());
    expect(verifySignedManifest(JSON.parse(JSON.stringify(reorder(signed))))).toEqual(sample());
  });

  it('refuses to sign with a key that is not the publisher', () => {
    expectCode(() => signManifest(sample(), OTHER_KEY), 'INVALID_ARGUMENT');
  });

  // Each fixture changes one field of a signed manifest: the CID changes, so the signature no
  // longer verifies, and the error must be MANIFEST_SIGNATURE_INVALID.
  const tampered: [string, (m: Manifest) => void][] = [
    ['name', (m) => (m.name = 'iris2')],
    ['version', (m) => (m.version = '1.2.1')],
    ['format', (m) => (m.format = 'gguf')],
    ['artifact.cid', (m) => (m.artifact.cid = 'bafybeihmf37wcuvtx4hpu7he5zl5qaf2ineo2lqlfrapokkm5zzw7zyhvm')],
    ['artifact.size', (m) => (m.artifact.size = 1_048_578)],
    ['an input dtype', (m) => ((m.inputs[0] as { dtype: string }).dtype = 'float64')],
    ['an input dimension', (m) => ((m.inputs[0] as { shape: unknown[] }).shape[1] = 5)],
    ['an output removed', (m) => m.outputs.pop()],
    ['profiles order', (m) => m.profiles.reverse()],
    ['license', (m) => (m.license = 'Apache-2.0')],
    ['description added', (m) => (m.description = 'x')],
    ['metadata added', (m) => (m.metadata = { a: 'b' })],
    ['createdAt', (m) => (m.createdAt = '2025-01-31T12:00:01Z')],
    ['publisher (someone else claims it)', (m) => (m.publisher = addressFromPrivateKey(OTHER_KEY))],
  ];
  for (const [what, change] of tampered) {
    it(`tampered ${what}: other CID, MANIFEST_SIGNATURE_INVALID`, () => {
      const signed = signManifest(sample(), KEY);
      const copy = JSON.parse(JSON.stringify(signed)) as SignedManifest;
      change(copy.manifest);
      expect(manifestCid(copy.manifest)).not.toBe(manifestCid(signed.manifest));
      expectCode(() => verifySignedManifest(copy), 'MANIFEST_SIGNATURE_INVALID');
    });
  }

  it('rejects a manifest re-signed by someone else for the original publisher', () => {
    const forged = { manifest: sample(), signature: personalSign(manifestCid(sample()), OTHER_KEY) };
    expectCode(() => verifySignedManifest(forged), 'MANIFEST_SIGNATURE_INVALID');
  });

  it('rejects malformed signatures with MANIFEST_SIGNATURE_INVALID', () => {
    const { signature } = signManifest(sample(), KEY);
    const n = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const highS = (n - BigInt(`0x${signature.slice(66, 130)}`)).toString(16).padStart(64, '0');
    const flippedV = signature.endsWith('1b') ? '1c' : '1b';
    const bad = [
      '',
      '0x',
      signature.slice(0, -2), // 64 bytes
      `${signature.slice(0, 66)}${highS}${flippedV}`, // malleable twin, EIP-2
      `${signature.slice(0, -2)}${flippedV}`, // other recovery id: another key
      `${signature.slice(0, 10)}${signature[10] === '0' ? '1' : '0'}${signature.slice(11)}`, // r changed
      42,
      null,
    ];
    for (const sig of bad)
      expectCode(() => verifySignedManifest({ manifest: sample(), signature: sig }), 'MANIFEST_SIGNATURE_INVALID');
  });

  it('reports invalid manifests inside a signed manifest under /manifest', () => {
    const signed = signManifest(sample(), KEY);
    try {
      verifySignedManifest({ ...signed, manifest: { ...signed.manifest, name: 'Iris' } });
      throw new Error('expected an error');
    } catch (e) {
      expect(isVerityError(e, 'MANIFEST_INVALID')).toBe(true);
      expect((e as { details: { path: string } }).details.path).toBe('/manifest/name');
    }
    expectCode(() => verifySignedManifest({ manifest: sample() }), 'MANIFEST_INVALID');
    expectCode(() => verifySignedManifest({ ...signed, extra: true }), 'MANIFEST_INVALID');
    expectCode(() => verifySignedManifest('nope'), 'MANIFEST_INVALID');
  });
});

describe('invalid manifests (named negative fixtures, each with the path it must report)', () => {
  const m = sample;
  const fixtures: [string, unknown, string][] = [
    ['not an object', [], ''],
    ['unknown top-level field', { ...m(), signature: '0x' }, '/signature'],
    ['missing field', (({ createdAt: _, ...rest }) => rest)(m()), '/createdAt'],
    ['other schema', { ...m(), schema: 'verity.manifest/v2' }, '/schema'],
    ['upper-case name', { ...m(), name: 'Iris' }, '/name'],
    ['name with a path separator', { ...m(), name: 'models/iris' }, '/name'],
    ['name starting with a dot', { ...m(), name: '..' }, '/name'],
    ['name of 65 characters', { ...m(), name: 'a'.repeat(65) }, '/name'],
    ['version without patch', { ...m(), version: '1.2' }, '/version'],
    ['version with leading zero', { ...m(), version: '01.2.0' }, '/version'],
    ['version with a "v"', { ...m(), version: 'v1.2.0' }, '/version'],
    ['unknown format', { ...m(), format: 'pytorch' }, '/format'],
    ['artifact CID garbage', { ...m(), artifact: { cid: 'Qmnope', size: 1 } }, '/artifact/cid'],
    [
      'artifact CID of codec json',
      { ...m(), artifact: { cid: 'bagaaiera7rvofm7cyyicw4bosy4wnbvsztqzsjkaz5eewypgxtz5souahcnq', size: 10 } },
      '/artifact/cid',
    ],
    [
      'raw artifact CID but more than 1 MiB',
      { ...m(), artifact: { cid: 'bafkreiacndfy443ter6qr2tmbbdhadvxxheowwf75s6zehscklu6ezxmta', size: 1_048_577 } },
      '/artifact/cid',
    ],
    [
      'dag-pb artifact CID but only 1 MiB',
      { ...m(), artifact: { cid: m().artifact.cid, size: 1_048_576 } },
      '/artifact/cid',
    ],
    ['negative size', { ...m(), artifact: { cid: m().artifact.cid, size: -1 } }, '/artifact/size'],
    ['fractional size', { ...m(), artifact: { cid: m().artifact.cid, size: 1.5e6 + 0.5 } }, '/artifact/size'],
    ['size as a string', { ...m(), artifact: { cid: m().artifact.cid, size: '1048577' } }, '/artifact/size'],
    ['extra field in artifact', { ...m(), artifact: { ...m().artifact, mime: 'x' } }, '/artifact/mime'],
    ['duplicate input names', { ...m(), inputs: [m().inputs[0], m().inputs[0]] }, '/inputs/1/name'],
    ['unknown dtype', { ...m(), inputs: [{ name: 'x', dtype: 'float16', shape: [] }] }, '/inputs/0/dtype'],
    ['negative dimension', { ...m(), inputs: [{ name: 'x', dtype: 'int8', shape: [-1] }] }, '/inputs/0/shape/0'],
    ['fractional dimension', { ...m(), outputs: [{ name: 'y', dtype: 'int8', shape: [1.5] }] }, '/outputs/0/shape/0'],
    [
      'numeric-looking symbolic dimension',
      { ...m(), inputs: [{ name: 'x', dtype: 'int8', shape: ['1'] }] },
      '/inputs/0/shape/0',
    ],
    ['empty symbolic dimension', { ...m(), inputs: [{ name: 'x', dtype: 'int8', shape: [''] }] }, '/inputs/0/shape/0'],
    [
      'rank above the limit',
      { ...m(), inputs: [{ name: 'x', dtype: 'int8', shape: new Array(MAX_TENSOR_RANK + 1).fill(1) }] },
      '/inputs/0/shape',
    ],
    ['empty tensor name', { ...m(), inputs: [{ name: '', dtype: 'int8', shape: [] }] }, '/inputs/0/name'],
    [
      'tensor name with a line feed',
      { ...m(), outputs: [{ name: 'a\nb', dtype: 'int8', shape: [] }] },
      '/outputs/0/name',
    ],
    [
      'tensor name of 257 bytes',
      { ...m(), inputs: [{ name: 'x'.repeat(257), dtype: 'int8', shape: [] }] },
      '/inputs/0/name',
    ],
    ['no profiles', { ...m(), profiles: [] }, '/profiles'],
    ['duplicate profile', { ...m(), profiles: ['native', 'native'] }, '/profiles/1'],
    ['profile with upper case', { ...m(), profiles: ['Native'] }, '/profiles/0'],
    ['publisher in lower case (not its EIP-55 form)', { ...m(), publisher: PUBLISHER.toLowerCase() }, '/publisher'],
    ['publisher with a wrong checksum', { ...m(), publisher: PUBLISHER.replace('E3605', 'e3605') }, '/publisher'],
    ['publisher not an address', { ...m(), publisher: 'alice' }, '/publisher'],
    ['createdAt with an offset', { ...m(), createdAt: '2025-01-31T13:00:00+01:00' }, '/createdAt'],
    ['createdAt in lower case', { ...m(), createdAt: '2025-01-31t12:00:00z' }, '/createdAt'],
    ['createdAt on 30 February', { ...m(), createdAt: '2024-02-30T00:00:00Z' }, '/createdAt'],
    ['createdAt with a leap second', { ...m(), createdAt: '2016-12-31T23:59:60Z' }, '/createdAt'],
    ['createdAt as a number', { ...m(), createdAt: 1738324800 }, '/createdAt'],
    ['empty license', { ...m(), license: '' }, '/license'],
    ['description with a NUL', { ...m(), description: 'a\u0000b' }, '/description'],
    ['description with a lone surrogate', { ...m(), description: 'a\ud800b' }, '/description'],
    [
      'metadata value not a string',
      { ...m(), metadata: { 'llama.context_length': 4096 } },
      '/metadata/llama.context_length',
    ],
    ['metadata key with a space', { ...m(), metadata: { 'a b': 'c' } }, '/metadata/a b'],
    ['metadata as an array', { ...m(), metadata: [] }, '/metadata'],
    // An own `__proto__` key (as JSON.parse makes it) would vanish on assignment and change the CID.
    ['metadata key __proto__', { ...m(), metadata: JSON.parse('{"__proto__":"x"}') }, '/metadata/__proto__'],
  ];
  for (const [what, value, path] of fixtures) it(what, () => expectInvalid(value, path));

  it('accepts the edge cases that are valid', () => {
    const ok: Manifest[] = [
      { ...m(), createdAt: '2024-02-29T23:59:59.123456789Z', version: '2.0.0-rc.1+build.5' },
      { ...m(), artifact: { cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', size: 0 } },
      { ...m(), format: 'gguf', inputs: [], outputs: [], profiles: ['llm-cpu'], metadata: { 'general.name': 'x\ny' } },
      {
        ...m(),
        name: '0',
        description: 'line 1\n\tline 2',
        inputs: [{ name: 'x:0', dtype: 'string', shape: [0, 'N', 'seq_len'] }],
      },
    ];
    for (const v of ok) expect(parseManifest(v)).toEqual(v);
  });
});

describe('garbage never throws anything but the manifest error codes', () => {
  const isManifestError = (e: unknown): boolean =>
    isVerityError(e, 'MANIFEST_INVALID') || isVerityError(e, 'MANIFEST_SIGNATURE_INVALID');

  it('arbitrary values', () => {
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withNullPrototype: true }), (v) => {
        try {
          parseManifest(v);
        } catch (e) {
          expect(isVerityError(e, 'MANIFEST_INVALID')).toBe(true);
        }
        try {
          verifySignedManifest(v);
        } catch (e) {
          expect(isManifestError(e)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('valid manifests with one field replaced by any JSON value', () => {
    const base = sample() as unknown as Record<string, unknown>;
    const keys = [...Object.keys(base), 'metadata', 'other'];
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.jsonValue(), fc.boolean(), (key, value, deep) => {
        const candidate = JSON.parse(JSON.stringify(base)) as Record<string, unknown>;
        if (deep && typeof candidate[key] === 'object' && candidate[key] !== null) {
          const inner = candidate[key] as Record<string, unknown>;
          const innerKeys = Object.keys(inner);
          if (innerKeys.length > 0) inner[innerKeys[0] as string] = value;
        } else candidate[key] = value;
        try {
          const parsed = parseManifest(candidate);
          // Whatever passes is a manifest with a CID and canonical bytes.
          expect(canonicalize(parsed)).toBe(fromUtf8(manifestBytes(parsed)));
        } catch (e) {
          expect(isVerityError(e, 'MANIFEST_INVALID')).toBe(true);
        }
        try {
          verifySignedManifest({ manifest: candidate, signature: signManifest(sample(), KEY).signature });
        } catch (e) {
          expect(isManifestError(e)).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
