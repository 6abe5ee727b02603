import { describe, expect, it } from 'vitest';
import { addressFromPrivateKey } from './eth.js';
import { type Manifest, manifestCid, signManifest } from './manifest.js';
import { createTensor } from './tensor.js';
import {
  checkZkSignals,
  decodeZkSignal,
  encodeZkSignal,
  isSignedZkManifest,
  isZkBundle,
  parseZkAudit,
  parseZkEvidence,
  ZK_FIELD_PRIME,
  type ZkIo,
  zkAuditMismatch,
  zkFacts,
  zkInputSignals,
  zkMetadata,
  zkOutputTensors,
  zkQuantize,
} from './zk.js';

const io: ZkIo = {
  fracBits: 4,
  valueBits: 12,
  input: { name: 'x', shape: [2], size: 2 },
  outputs: [{ name: 'logits', shape: [3], offset: 0, size: 3 }],
  head: [
    { kind: 'softmax', node: 's', input: 'logits', output: 'probabilities', keepdims: false },
    { kind: 'argmax', node: 'a', input: 'probabilities', output: 'label', keepdims: false },
  ],
};

describe('zk public signals', () => {
  it('encodes negatives as p − |v| and back', () => {
    expect(encodeZkSignal(-1n)).toBe((ZK_FIELD_PRIME - 1n).toString());
    for (const v of [0n, 1n, -1n, 123456789n, -(2n ** 200n)]) expect(decodeZkSignal(encodeZkSignal(v))).toBe(v);
  });

  it('quantizes half up, negatives included', () => {
    expect(zkQuantize(0.03125, 4)).toBe(1n); // 0.5 → 1
    expect(zkQuantize(-0.03125, 4)).toBe(0n); // −0.5 → 0
    expect(zkQuantize(-1.5, 4)).toBe(-24n);
  });

  it('decodes outputs to float64 and ArgMax (through Softmax) to int64', () => {
    const signals = [...[-16n, 40n, 8n].map(encodeZkSignal), ...[-24n, 2n].map(encodeZkSignal)];
    const out = zkOutputTensors(io, signals);
    expect(Array.from(out.logits?.data as Float64Array)).toEqual([-1, 2.5, 0.5]);
    expect(out.logits?.shape).toEqual([1, 3]);
    expect(Array.from(out.label?.data as BigInt64Array)).toEqual([1n]);
    expect(out.probabilities).toBeUndefined();
    const input = { x: createTensor('float32', [1, 2], new Float32Array([-1.5, 0.125])) };
    expect(zkInputSignals(io, input)).toEqual(signals.slice(3));
    expect(() => checkZkSignals(io, signals, input, out)).not.toThrow();
    const other = { x: createTensor('float32', [1, 2], new Float32Array([-1.5, 0.25])) };
    expect(() => checkZkSignals(io, signals, other, out)).toThrow(
      expect.objectContaining({ code: 'ZK_PUBLIC_INPUT_MISMATCH' }),
    );
    expect(() => zkInputSignals(io, { x: createTensor('float32', [1, 2], new Float32Array([1000, 0])) })).toThrow(
      expect.objectContaining({ code: 'ZK_PUBLIC_INPUT_MISMATCH' }),
    );
  });

  it('parses the bundle member strictly', () => {
    const ok = {
      proof: {
        pi_a: ['1', '2', '1'],
        pi_b: [
          ['1', '2'],
          ['3', '4'],
          ['1', '0'],
        ],
        pi_c: ['1', '2', '1'],
        protocol: 'groth16',
        curve: 'bn128',
      },
      publicSignals: ['0', '1'],
      vk: { protocol: 'groth16', curve: 'bn128', nPublic: 2 },
      setup: 'local-dev',
    };
    expect(parseZkEvidence(ok).setup).toBe('local-dev');
    for (const bad of [
      { ...ok, extra: 1 },
      { ...ok, setup: 'trusted' },
      { ...ok, publicSignals: [ZK_FIELD_PRIME.toString()] },
      { ...ok, publicSignals: ['01'] },
      { ...ok, proof: { ...ok.proof, pi_a: ['1', '2'] } },
    ]) {
      expect(() => parseZkEvidence(bad)).toThrow(expect.objectContaining({ code: 'BUNDLE_MALFORMED' }));
    }
  });
});

// The web3.js docs key (see eth.test.ts): a publisher for sample manifests.
const KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const CEREMONY = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
const ID1 = `0x${'11'.repeat(32)}`;
const ID2 = `0x${'22'.repeat(32)}`;

function zkManifest(setup: 'local-dev' | 'multi-party', extra: Record<string, string> = {}): Manifest {
  const facts = {
    params: { fracBits: 4, valueBits: 12 },
    io,
    r1cs: 'a'.repeat(64),
    vk: 'b'.repeat(64),
    setup,
    phase1:
      setup === 'multi-party'
        ? ({ kind: 'ceremony', chainId: 31337, address: CEREMONY, id: ID1 } as const)
        : ({ kind: 'local-dev' } as const),
    ...(setup === 'multi-party' ? { phase2: { chainId: 31337, address: CEREMONY, id: ID2 } } : {}),
  };
  return {
    schema: 'verity.manifest/v1',
    name: 'iris',
    version: '1.0.0',
    format: 'onnx',
    artifact: { cid: 'bafybeigmix7t42i6jacydtquhet7srwvgpizfg7gjbq7627d35mjomtu64', size: 1_048_577 },
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: [1, 3] }],
    profiles: ['native'],
    publisher: addressFromPrivateKey(KEY),
    createdAt: '2026-12-02T12:00:00Z',
    metadata: { ...zkMetadata(facts), ...extra },
  };
}

function audit(manifest: Manifest, change: Record<string, unknown> = {}): unknown {
  const f = zkFacts(manifest);
  return {
    version: 1,
    manifestCid: manifestCid(manifest),
    r1cs: f.r1cs,
    vk: f.vk,
    setup: f.setup,
    phase1: f.phase1,
    phase2: f.phase2 ?? null,
    contributors: f.setup === 'multi-party' ? [addressFromPrivateKey(KEY)] : [],
    beacon: f.setup === 'multi-party' ? `0x${'33'.repeat(32)}` : null,
    checkedAt: '2026-12-02T12:30:00.123Z',
    generator: '@verity/zk 0.1.0; circom 2.2.3 --O2',
    ...change,
  };
}

describe('zk manifest facts', () => {
  it('reads the setup and both phases, canonical and consistent', () => {
    const multi = zkFacts(zkManifest('multi-party'));
    expect(multi.setup).toBe('multi-party');
    expect(multi.phase1).toEqual({ kind: 'ceremony', chainId: 31337, address: CEREMONY, id: ID1 });
    expect(multi.phase2).toEqual({ chainId: 31337, address: CEREMONY, id: ID2 });
    // local-dev without zk.phase1 reads as a local-dev phase 1 (manifests before the phases).
    const m = zkManifest('local-dev');
    delete m.metadata?.['zk.phase1'];
    expect(zkFacts(m)).toMatchObject({ setup: 'local-dev', phase1: { kind: 'local-dev' } });
    expect(zkFacts(m).phase2).toBeUndefined();
    const file = { kind: 'file', sha256: 'c'.repeat(64) };
    expect(zkFacts(zkManifest('multi-party', { 'zk.phase1': JSON.stringify(file) })).phase1).toEqual(file);
  });

  const refused: [string, 'local-dev' | 'multi-party', Record<string, string>][] = [
    ['the old ptau-file setup', 'local-dev', { 'zk.setup': 'ptau-file' }],
    ['multi-party without a phase-2 ceremony', 'multi-party', { 'zk.phase2': '' }],
    ['multi-party over a local-dev phase 1', 'multi-party', { 'zk.phase1': '{"kind":"local-dev"}' }],
    ['multi-party without phase 1', 'multi-party', { 'zk.phase1': '' }],
    [
      'local-dev with a phase-2 ceremony',
      'local-dev',
      { 'zk.phase2': `{"address":"${CEREMONY}","chainId":1,"id":"${ID2}"}` },
    ],
    [
      'a phase 1 that is not canonical JSON',
      'multi-party',
      { 'zk.phase1': `{ "kind":"file","sha256":"${'c'.repeat(64)}"}` },
    ],
    ['an unknown phase-1 kind', 'multi-party', { 'zk.phase1': '{"kind":"trusted"}' }],
    [
      'an unknown phase-2 field',
      'multi-party',
      { 'zk.phase2': `{"address":"${CEREMONY}","chainId":1,"extra":1,"id":"${ID2}"}` },
    ],
    ['a bad ceremony id', 'multi-party', { 'zk.phase2': `{"address":"${CEREMONY}","chainId":1,"id":"0x12"}` }],
    [
      'a bad checksum',
      'multi-party',
      { 'zk.phase2': `{"address":"${CEREMONY.replace('b', 'B')}","chainId":1,"id":"${ID2}"}` },
    ],
  ];
  for (const [what, setup, change] of refused) {
    it(`refuses ${what} (MANIFEST_INVALID)`, () => {
      const m = zkManifest(setup, change);
      for (const [k, v] of Object.entries(change)) if (v === '') delete m.metadata?.[k];
      expect(() => zkFacts(m)).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
    });
  }
});

describe('zk audit records', () => {
  it('parses a multi-party and a local-dev audit, and matches them to their manifest', () => {
    for (const setup of ['multi-party', 'local-dev'] as const) {
      const m = zkManifest(setup);
      const a = parseZkAudit(JSON.parse(JSON.stringify(audit(m))));
      expect(a.manifestCid).toBe(manifestCid(m));
      expect(zkAuditMismatch(a, manifestCid(m), zkFacts(m))).toEqual([]);
    }
  });

  it('names every fact an audit disagrees with: a mismatching audit is not an audit', () => {
    const m = zkManifest('multi-party');
    const cid = manifestCid(m);
    const other = zkManifest('multi-party', { 'zk.r1cs': 'd'.repeat(64), 'zk.vk': 'e'.repeat(64) });
    const a = parseZkAudit(audit(m));
    expect(zkAuditMismatch(a, cid, zkFacts(other))).toEqual(['r1cs', 'vk']);
    expect(zkAuditMismatch(a, manifestCid(other), zkFacts(m))).toEqual(['manifestCid']);
    const phases = zkManifest('multi-party', {
      'zk.phase1': `{"kind":"file","sha256":"${'c'.repeat(64)}"}`,
      'zk.phase2': `{"address":"${CEREMONY}","chainId":31337,"id":"${ID1}"}`,
    });
    expect(zkAuditMismatch(a, cid, zkFacts(phases))).toEqual(['phase1', 'phase2']);
    expect(zkAuditMismatch(parseZkAudit(audit(zkManifest('local-dev'))), cid, zkFacts(m))).toEqual(
      expect.arrayContaining(['setup', 'phase1', 'phase2']),
    );
  });

  const m = zkManifest('multi-party');
  const bad: [string, Record<string, unknown>][] = [
    ['an unknown field', { extra: 1 }],
    ['a missing field', { generator: undefined }],
    ['another version', { version: 2 }],
    ['a bad CID', { manifestCid: 'bafy-not-a-cid' }],
    ['a bad r1cs digest', { r1cs: 'A'.repeat(64) }],
    ['an unknown setup', { setup: 'ptau-file' }],
    ['multi-party without contributors', { contributors: [] }],
    ['multi-party without a beacon', { beacon: null }],
    ['multi-party without phase 2', { phase2: null }],
    ['a contributor that is no account', { contributors: ['0x12'] }],
    ['a bad time', { checkedAt: '2026-12-02 12:30' }],
    ['a local-dev audit with contributors', { setup: 'local-dev', phase1: { kind: 'local-dev' }, phase2: null }],
  ];
  for (const [what, change] of bad) {
    it(`refuses ${what} (INVALID_ARGUMENT)`, () => {
      const value = JSON.parse(JSON.stringify(audit(m, change)));
      expect(() => parseZkAudit(value)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    });
  }
});

describe('the signed zk manifest of a bundle', () => {
  const evidence = (manifest: unknown) => ({
    proof: {
      pi_a: ['1', '2', '1'],
      pi_b: [
        ['1', '2'],
        ['3', '4'],
        ['1', '0'],
      ],
      pi_c: ['1', '2', '1'],
      protocol: 'groth16',
      curve: 'bn128',
    },
    publicSignals: ['0', '1'],
    vk: { protocol: 'groth16', curve: 'bn128', nPublic: 2 },
    setup: 'local-dev',
    manifest,
  });

  it('keeps a signed manifest, and an old bare one only as such (to be refused by name)', () => {
    const signed = signManifest(zkManifest('local-dev'), KEY);
    const parsed = parseZkEvidence(evidence(signed)).manifest;
    expect(parsed && isSignedZkManifest(parsed)).toBe(true);
    const bare = parseZkEvidence(evidence(signed.manifest)).manifest;
    expect(bare && isSignedZkManifest(bare)).toBe(false);
    for (const malformed of [
      { ...signed, extra: 1 },
      { manifest: signed.manifest },
      { ...signed, signature: '0x12' },
      { ...signed, manifest: { ...signed.manifest, name: 'No Name' } },
    ]) {
      expect(() => parseZkEvidence(evidence(malformed))).toThrow(expect.objectContaining({ code: 'BUNDLE_MALFORMED' }));
    }
  });
});

describe('isZkBundle', () => {
  it('routes by the zk member or a zk record, stripped or not', () => {
    const receipt = (kind: string, mode: string) => ({ record: { kind, mode } });
    expect(isZkBundle({ receipts: [receipt('onnx', 'signed')], zk: {} })).toBe(true);
    expect(isZkBundle({ receipts: [receipt('zk', 'zk')] })).toBe(true);
    expect(isZkBundle({ receipts: [receipt('onnx', 'zk')] })).toBe(true);
    expect(isZkBundle({ receipts: [receipt('onnx', 'signed')] })).toBe(false);
    for (const v of [null, [], 'zk', { receipts: 'x' }, { receipts: [null] }]) expect(isZkBundle(v)).toBe(false);
  });
});
