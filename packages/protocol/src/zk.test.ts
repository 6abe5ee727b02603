import { describe, expect, it } from 'vitest';
import { createTensor } from './tensor.js';
import {
  checkZkSignals,
  decodeZkSignal,
  encodeZkSignal,
  parseZkEvidence,
  ZK_FIELD_PRIME,
  type ZkIo,
  zkInputSignals,
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
