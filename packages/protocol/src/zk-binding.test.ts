/**
 * The binding layout (docs/protocol.md §12 "The zk binding"): a vector written field by field from
 * the spec's text, and the rules it shares with `zkOutputTensors` (names sorted as `VTN1` sorts
 * them, ArgMax heads through Softmax, heads of unproved tensors left out, a later tensor of the
 * same name replacing an earlier one). The Solidity parser is checked against it on chain
 * (packages/contracts/src/zk-codec.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { toHex } from './bytes.js';
import { isVerityError } from './errors.js';
import type { ZkIo } from './zk.js';
import { zkBindingLayout } from './zk-binding.js';

const IRIS: ZkIo = {
  fracBits: 16,
  valueBits: 48,
  input: { name: 'x', shape: [4], size: 4 },
  outputs: [{ name: 'logits', shape: [3], offset: 0, size: 3 }],
  head: [
    { kind: 'softmax', node: 'sm', input: 'logits', output: 'probabilities', keepdims: false },
    { kind: 'argmax', node: 'am', input: 'probabilities', output: 'label', keepdims: false },
  ],
};

describe('zkBindingLayout', () => {
  it('writes the iris layout field by field', () => {
    const fields = [
      '01', // version
      '10', // fracBits 16
      '30', // valueBits 48
      '00000003', // nOut
      '00000004', // nIn
      '0001', // input name length
      '78', // "x"
      '02', // two output tensors, in UTF-8 order: "label" < "logits"
      '0005',
      '6c6162656c', // "label"
      '01', // ArgMax (int64)
      '00000000', // over signals from 0
      '00000003', // 3 of them
      '00000003', // in rows of 3
      '01', // rank 1
      '00000001', // shape [1]
      '0006',
      '6c6f67697473', // "logits"
      '00', // proved output (float64)
      '00000000', // signals from 0
      '00000003', // 3 of them
      '00000000', // no rows
      '02', // rank 2
      '00000001',
      '00000003', // shape [1, 3]
    ];
    expect(toHex(zkBindingLayout(IRIS))).toBe(fields.join(''));
  });

  it('follows zkOutputTensors: keepdims, unproved heads left out, later names win', () => {
    const io: ZkIo = {
      fracBits: 8,
      valueBits: 32,
      input: { name: 'in', shape: [2], size: 2 },
      outputs: [
        { name: 'b', shape: [2, 2], offset: 0, size: 4 },
        { name: 'a', shape: [1], offset: 4, size: 1 },
      ],
      head: [
        { kind: 'argmax', node: 'n1', input: 'b', output: 'c', keepdims: true },
        { kind: 'argmax', node: 'n2', input: 'nowhere', output: 'd', keepdims: false },
        // Replaces the proved output "a" by an ArgMax over "b".
        { kind: 'argmax', node: 'n3', input: 'b', output: 'a', keepdims: false },
      ],
    };
    const hex = toHex(zkBindingLayout(io));
    // nOut counts every proved signal (5), even of a replaced tensor.
    expect(hex.slice(6, 14)).toBe('00000005');
    // Tensors: a (ArgMax over b, shape [1, 2]), b (float, [1, 2, 2]), c (ArgMax, keepdims: [1, 2, 1]); no d.
    const tensors = hex.slice(2 * (13 + 2) + 2);
    expect(tensors).toBe(
      [
        '0001',
        '61',
        '01',
        '00000000',
        '00000004',
        '00000002',
        '02',
        '00000001',
        '00000002',
        '0001',
        '62',
        '00',
        '00000000',
        '00000004',
        '00000000',
        '03',
        '00000001',
        '00000002',
        '00000002',
        '0001',
        '63',
        '01',
        '00000000',
        '00000004',
        '00000002',
        '03',
        '00000001',
        '00000002',
        '00000001',
      ].join(''),
    );
  });

  it('refuses names that are not tensor names', () => {
    const bad = { ...IRIS, input: { ...IRIS.input, name: '' } };
    let error: unknown;
    try {
      zkBindingLayout(bad);
    } catch (e) {
      error = e;
    }
    expect(isVerityError(error, 'INVALID_ARGUMENT')).toBe(true);
  });
});
