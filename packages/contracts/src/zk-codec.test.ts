/**
 * `contracts/lib/ZkCodec.sol` on a real anvil, through `contracts/test/ZkCodecHarness.sol`: the
 * Solidity re-encoding of a record's input tensor into fixed-point signals, and of output signals
 * into the `VTN1` output tensors and their digest, agrees
 * - with vectors of independent provenance (fixtures/zk-codec/vectors.json: Python's exact
 *   fractions and correctly rounded division, from the rules of docs/protocol.md §12), and
 * - with `@verity/protocol`'s `zkQuantize`, `zkInputSignals`, `zkOutputTensors` + `encodeTensors`
 *   on several layouts (ArgMax heads, keepdims, Softmax chains, several rows, names out of order)
 *   and on many values: negatives, rounding ties, subnormals, huge and out-of-range values.
 * Each malformed layout, input or signal list is refused with its own revert.
 */
import { readFileSync } from 'node:fs';
import {
  createTensor,
  encodeTensors,
  sha256,
  type TensorMap,
  toHex,
  ZK_FIELD_PRIME,
  type ZkIo,
  zkBindingLayout,
  zkInputSignals,
  zkOutputTensors,
  zkQuantize,
} from '@verity/protocol';
import fc from 'fast-check';
import { type Address, createPublicClient, type Hex, http, type PublicClient } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { read, sendAndConfirm } from './clients.js';
import { zkCodecHarnessAbi, zkCodecHarnessBytecode } from './generated/zk-codec-harness.js';
import { expectRevert, startTestChain, type TestChain } from './test-support/chain.js';

let chain: TestChain;
let harness: Address;
let client: PublicClient;

beforeAll(async () => {
  chain = await startTestChain();
  client = createPublicClient({ transport: http(chain.anvil.rpcUrl, { batch: { batchSize: 200 } }) });
  const deployer = chain.clients(0);
  const receipt = await sendAndConfirm(deployer, 'deploy ZkCodecHarness', () =>
    deployer.walletClient.deployContract({
      abi: zkCodecHarnessAbi,
      bytecode: zkCodecHarnessBytecode,
      account: deployer.walletClient.account,
      chain: deployer.walletClient.chain,
    }),
  );
  harness = receipt.contractAddress as Address;
});
afterAll(async () => {
  await chain?.stop();
});

const hex = (b: Uint8Array): Hex => `0x${toHex(b)}`;
const call = <const F extends 'validate' | 'quantize' | 'float64' | 'checkInput' | 'outputDigest'>(
  functionName: F,
  args: readonly unknown[],
) =>
  read('harness', () =>
    client.readContract({ address: harness, abi: zkCodecHarnessAbi, functionName, args: args as never }),
  );

/** Bits of a float64 (as a uint256) and of a float32. */
function f64Bits(x: number): bigint {
  const v = new DataView(new ArrayBuffer(8));
  v.setFloat64(0, x);
  return v.getBigUint64(0);
}
function f32Bits(x: number): bigint {
  const v = new DataView(new ArrayBuffer(4));
  v.setFloat32(0, x);
  return BigInt(v.getUint32(0));
}
function float64FromBits(bits: bigint): number {
  const v = new DataView(new ArrayBuffer(8));
  v.setBigUint64(0, bits);
  return v.getFloat64(0);
}

interface Vectors {
  quantize: { dtype: 'float32' | 'float64'; bits: string; s: number; q: string }[];
  float64: { signal: string; s: number; bits: string }[];
}
const VECTORS = JSON.parse(
  readFileSync(new URL('../fixtures/zk-codec/vectors.json', import.meta.url), 'utf8'),
) as Vectors;

describe('fixed point, against independent vectors (Python fractions)', () => {
  it('quantizes float64 and float32 values as round(x · 2^s) half up', async () => {
    const results = await Promise.all(
      VECTORS.quantize.map((v) => call('quantize', [BigInt(`0x${v.bits}`), v.dtype === 'float64', BigInt(v.s)])),
    );
    VECTORS.quantize.forEach((v, i) => {
      const [finite, inRange, q] = results[i] as readonly [boolean, boolean, bigint];
      expect(finite, v.bits).toBe(true);
      if (!inRange) {
        // Beyond 2^241: outside every layout's range (valueBits ≤ 240).
        expect(BigInt(v.q) >= 2n ** 240n || BigInt(v.q) <= -(2n ** 240n), v.bits).toBe(true);
        return;
      }
      expect(q.toString(), `${v.dtype} ${v.bits} s=${v.s}`).toBe(v.q);
      // The protocol's zkQuantize says the same (its x is the float's value as a JS number).
      const bits = BigInt(`0x${v.bits}`);
      const x =
        v.dtype === 'float64'
          ? float64FromBits(bits)
          : new DataView(Uint32Array.of(Number(bits)).buffer).getFloat32(0, true);
      expect(zkQuantize(x, v.s).toString(), `protocol ${v.bits}`).toBe(v.q);
    });
  });

  it('turns field elements into the float64 of q / 2^s (53 bits, ties to even)', async () => {
    const results = await Promise.all(VECTORS.float64.map((v) => call('float64', [BigInt(v.signal), BigInt(v.s)])));
    VECTORS.float64.forEach((v, i) => {
      expect((results[i] as bigint).toString(16).padStart(16, '0'), `${v.signal} s=${v.s}`).toBe(v.bits);
    });
  });

  it('refuses NaN and infinities', async () => {
    for (const x of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(await call('quantize', [f64Bits(x), true, 8n])).toEqual([false, false, 0n]);
      expect(await call('quantize', [f32Bits(x), false, 8n])).toEqual([false, false, 0n]);
    }
  });
});

describe('fixed point, against protocol zkQuantize', () => {
  it('agrees on random float64 and float32 bit patterns and on ties', async () => {
    const doubles = fc.sample(fc.double({ noNaN: true, noDefaultInfinity: true }), { numRuns: 150, seed: 21 });
    const floats = fc.sample(fc.float({ noNaN: true, noDefaultInfinity: true }), { numRuns: 100, seed: 22 });
    // Ties: (k + 1/2) / 2^s for k around 0, at the scales used.
    const ties = [1, 8, 16].flatMap((s) => [-3, -2, -1, 0, 1, 2].map((k) => ({ x: (k + 0.5) / 2 ** s, s })));
    const cases = [
      ...doubles.map((x, i) => ({ x, s: [1, 8, 16, 40, 120][i % 5] as number, f64: true })),
      ...floats.map((x, i) => ({ x, s: [1, 8, 16][i % 3] as number, f64: false })),
      ...ties.map((t) => ({ ...t, f64: true })),
      ...ties.map((t) => ({ ...t, f64: false })),
    ];
    const results = await Promise.all(
      cases.map((c) => call('quantize', [c.f64 ? f64Bits(c.x) : f32Bits(c.x), c.f64, BigInt(c.s)])),
    );
    cases.forEach((c, i) => {
      const [finite, inRange, q] = results[i] as readonly [boolean, boolean, bigint];
      expect(finite).toBe(true);
      const x = c.f64 ? c.x : Math.fround(c.x);
      if (!Number.isFinite(x * 2 ** c.s)) {
        // x · 2^s overflows a double: out of range for zkQuantize too.
        expect(inRange).toBe(false);
        expect(() => zkQuantize(x, c.s)).toThrow(/outside/);
        return;
      }
      const expected = zkQuantize(x, c.s);
      if (inRange) expect(q, `${c.x} s=${c.s}`).toBe(expected);
      else expect(expected >= 2n ** 240n || expected <= -(2n ** 240n), `${c.x}`).toBe(true);
    });
  });

  it('agrees with Number(q) / 2^s on random field elements', async () => {
    const qs = fc.sample(fc.bigInt({ min: -(ZK_FIELD_PRIME - 1n) / 2n, max: (ZK_FIELD_PRIME - 1n) / 2n }), {
      numRuns: 100,
      seed: 23,
    });
    const small = fc.sample(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), { numRuns: 100, seed: 24 });
    const cases = [...qs, ...small].map((q, i) => ({ q, s: [1, 16, 32, 120][i % 4] as number }));
    const results = await Promise.all(
      cases.map((c) => call('float64', [(c.q + ZK_FIELD_PRIME) % ZK_FIELD_PRIME, BigInt(c.s)])),
    );
    cases.forEach((c, i) => {
      expect(results[i], `${c.q} s=${c.s}`).toBe(f64Bits(Number(c.q) / 2 ** c.s));
    });
  });
});

/** Layouts exercising every rule of zkOutputTensors. */
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
const MULTI: ZkIo = {
  fracBits: 8,
  valueBits: 32,
  input: { name: 'input_0', shape: [2, 3], size: 6 },
  outputs: [
    { name: 'scores', shape: [2, 3], offset: 0, size: 6 },
    { name: 'Aux', shape: [2], offset: 6, size: 2 },
  ],
  head: [
    { kind: 'logSoftmax', node: 'ls', input: 'scores', output: 'logp', keepdims: false },
    { kind: 'argmax', node: 'a1', input: 'logp', output: 'class', keepdims: true },
    { kind: 'argmax', node: 'a2', input: 'Aux', output: 'aux_max', keepdims: false },
    // An ArgMax of something the circuit does not prove: not part of the output.
    { kind: 'argmax', node: 'a3', input: 'elsewhere', output: 'ignored', keepdims: false },
  ],
};
const SCALAR: ZkIo = {
  fracBits: 120,
  valueBits: 240,
  input: { name: 'z', shape: [1], size: 1 },
  outputs: [{ name: 'y', shape: [], offset: 0, size: 1 }],
  head: [],
};

function nOut(io: ZkIo): number {
  return io.outputs.reduce((n, o) => n + o.size, 0);
}

const field = (q: bigint) => ((q % ZK_FIELD_PRIME) + ZK_FIELD_PRIME) % ZK_FIELD_PRIME;

function inputOf(io: ZkIo, values: readonly number[], dtype: 'float32' | 'float64' = 'float32'): TensorMap {
  const data = dtype === 'float32' ? Float32Array.from(values) : Float64Array.from(values);
  return { [io.input.name]: createTensor(dtype, [1, ...io.input.shape], data) } as TensorMap;
}

describe('input signals', () => {
  const cases: [string, ZkIo, number[], 'float32' | 'float64'][] = [
    ['iris row', IRIS, [6.5, 3, 5.8, 2.2], 'float32'],
    ['negatives and ties at 2^-16', IRIS, [-0.5, -1.5 / 65536, 2.5 / 65536, -2.5 / 65536], 'float64'],
    ['subnormal, -0 and a tiny value', IRIS, [5e-324, -0, -1e-30, 1e-5], 'float64'],
    ['a 2×3 input', MULTI, [0.001953125, -0.001953125, 100.25, -100.75, 3, -3], 'float32'],
    ['s = 120', SCALAR, [-0.75], 'float64'],
  ];
  for (const [name, io, values, dtype] of cases) {
    it(`agrees with zkInputSignals: ${name}`, async () => {
      const input = inputOf(io, values, dtype);
      const signals = [
        ...Array.from({ length: nOut(io) }, (_, i) => BigInt(i)),
        ...zkInputSignals(io, input).map(BigInt),
      ];
      const layout = hex(zkBindingLayout(io));
      await call('checkInput', [layout, hex(encodeTensors(input)), signals]);
      // Each input signal off by one is refused at its index.
      for (let i = 0; i < io.input.size; i++) {
        const bad = [...signals];
        bad[nOut(io) + i] = ((bad[nOut(io) + i] as bigint) + 1n) % ZK_FIELD_PRIME;
        expect(
          await expectRevert(
            call('checkInput', [layout, hex(encodeTensors(input)), bad]),
            'DISPUTE_ZK_INPUT_MISMATCH',
            'ZkInputMismatch',
          ),
        ).toEqual([String(i)]);
      }
    });
  }

  it('refuses inputs that are not one float tensor of the circuit’s input', async () => {
    const layout = hex(zkBindingLayout(IRIS));
    const signals = [0n, 0n, 0n, ...zkInputSignals(IRIS, inputOf(IRIS, [1, 2, 3, 4])).map(BigInt)];
    const bad: [string, TensorMap][] = [
      ['another name', { y: createTensor('float32', [1, 4], Float32Array.of(1, 2, 3, 4)) }],
      ['int32', { x: createTensor('int32', [1, 4], Int32Array.of(1, 2, 3, 4)) }],
      ['5 values', { x: createTensor('float32', [1, 5], Float32Array.of(1, 2, 3, 4, 5)) }],
      [
        'two tensors',
        {
          x: createTensor('float32', [1, 4], Float32Array.of(1, 2, 3, 4)),
          z: createTensor('float32', [1], Float32Array.of(0)),
        },
      ],
    ];
    for (const [what, input] of bad) {
      await expectRevert(
        call('checkInput', [layout, hex(encodeTensors(input)), signals]),
        'DISPUTE_ZK_INPUT_MISMATCH',
        'ZkInputMalformed',
      ).then(
        () => undefined,
        (e) => expect.fail(`${what}: ${e}`),
      );
    }
    // A truncated encoding.
    const bytes = encodeTensors(inputOf(IRIS, [1, 2, 3, 4]));
    await expectRevert(
      call('checkInput', [layout, hex(bytes.subarray(0, bytes.length - 1)), signals]),
      'DISPUTE_ZK_INPUT_MISMATCH',
      'ZkInputMalformed',
    );
  });

  it('refuses non-finite and out-of-range values, as zkInputSignals does', async () => {
    const layout = hex(zkBindingLayout(IRIS));
    const zeros = Array.from({ length: 7 }, () => 0n);
    const nan = inputOf(IRIS, [0, Number.NaN, 3, 4]);
    expect(() => zkInputSignals(IRIS, nan)).toThrow(/non-finite/);
    expect(
      await expectRevert(
        call('checkInput', [layout, hex(encodeTensors(nan)), zeros]),
        'DISPUTE_ZK_INPUT_MISMATCH',
        'ZkInputNotFinite',
      ),
    ).toEqual(['1']);
    // 2^(48 − 1) / 2^16 = 2^31 is the first value out of range; just below it is in.
    const edge = inputOf(IRIS, [2 ** 31, 0, 0, 0], 'float64');
    expect(() => zkInputSignals(IRIS, edge)).toThrow(/outside/);
    await expectRevert(
      call('checkInput', [layout, hex(encodeTensors(edge)), zeros]),
      'DISPUTE_ZK_INPUT_MISMATCH',
      'ZkInputOutOfRange',
    );
    const inside = inputOf(IRIS, [0, 0, 0, -(2 ** 31)], 'float64');
    await call('checkInput', [
      layout,
      hex(encodeTensors(inside)),
      [0n, 0n, 0n, ...zkInputSignals(IRIS, inside).map(BigInt)],
    ]);
  });

  it('refuses a wrong number of signals and signals ≥ p', async () => {
    const layout = hex(zkBindingLayout(IRIS));
    const input = inputOf(IRIS, [1, 2, 3, 4]);
    const signals = [0n, 0n, 0n, ...zkInputSignals(IRIS, input).map(BigInt)];
    for (const bad of [signals.slice(1), [...signals, 0n], [ZK_FIELD_PRIME, ...signals.slice(1)]]) {
      await expectRevert(
        call('checkInput', [layout, hex(encodeTensors(input)), bad]),
        'DISPUTE_ZK_SIGNALS_INVALID',
        'ZkSignalsMalformed',
      );
    }
  });
});

describe('output digest', () => {
  /** Output signals: given signed values, then the inputs' (any: the digest ignores them). */
  const digestOf = async (io: ZkIo, outs: readonly bigint[]) => {
    const signals = [...outs.map(field), ...Array.from({ length: io.input.size }, () => 0n)];
    const expected = hex(sha256(encodeTensors(zkOutputTensors(io, signals.map(String)))));
    const actual = await call('outputDigest', [hex(zkBindingLayout(io)), signals]);
    return { expected, actual };
  };

  const cases: [string, ZkIo, bigint[]][] = [
    ['iris logits', IRIS, [12345n, -70000n, 65536n]],
    ['ArgMax tie: the first maximum', IRIS, [5n, 9n, 9n]],
    ['negative logits', IRIS, [-3n, -1n, -2n]],
    ['two rows, keepdims, an aux ArgMax, names out of order', MULTI, [1n, -2n, 3n, 7n, 7n, -9n, -1n, -5n]],
    ['beyond 2^53 (rounded to even)', MULTI, [2n ** 53n + 1n, 2n ** 53n + 3n, -(2n ** 60n) + 1n, 0n, 0n, 0n, 1n, 2n]],
    ['the extremes of the field', SCALAR, [(ZK_FIELD_PRIME - 1n) / 2n]],
    ['the most negative', SCALAR, [-(ZK_FIELD_PRIME - 1n) / 2n]],
    ['zero', SCALAR, [0n]],
  ];
  for (const [name, io, outs] of cases) {
    it(`agrees with zkOutputTensors + encodeTensors: ${name}`, async () => {
      const { expected, actual } = await digestOf(io, outs);
      expect(actual).toBe(expected);
    });
  }

  it('agrees on random signals', async () => {
    const rows = fc.sample(fc.array(fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }), { minLength: 8, maxLength: 8 }), {
      numRuns: 20,
      seed: 25,
    });
    for (const outs of rows) {
      const { expected, actual } = await digestOf(MULTI, outs);
      expect(actual, outs.join(',')).toBe(expected);
    }
  });
});

describe('binding layout', () => {
  const layout = zkBindingLayout(MULTI);
  const valid = async (bytes: Uint8Array) => call('validate', [hex(bytes)]);
  it('counts the public signals', async () => {
    expect(await valid(layout)).toBe(BigInt(nOut(MULTI) + MULTI.input.size));
    expect(await valid(zkBindingLayout(IRIS))).toBe(7n);
  });

  it('refuses malformed layouts at the offset where they break', async () => {
    const set = (at: number, byte: number) => {
      const b = Uint8Array.from(layout);
      b[at] = byte;
      return b;
    };
    // Offsets in MULTI's layout: header 13 + "input_0" (7) = 20 is the count; the first tensor
    // ("Aux", sorted first: u16 length at 21, name at 23, kind 26, offset 27, size 31, last 35,
    // rank 39, dims from 40).
    const bad: [string, Uint8Array][] = [
      ['version 2', set(0, 2)],
      ['fracBits 0', set(1, 0)],
      ['valueBits 241', set(2, 241)],
      ['no tensors', set(20, 0)],
      ['kind 2', set(26, 2)],
      ['a size past nOut', set(34, 200)],
      ['a float tensor with a row length', set(38, 1)],
      ['a shape that is not the size', set(43, 9)],
      ['truncated', layout.subarray(0, layout.length - 1)],
      ['a trailing byte', Uint8Array.from([...layout, 0])],
      ['names out of order', set(23, 0x7a)],
    ];
    for (const [what, bytes] of bad) {
      await expectRevert(valid(bytes), 'ZK_BINDING_INVALID', 'ZkLayoutMalformed').then(
        () => undefined,
        (e) => expect.fail(`${what}: ${e}`),
      );
    }
  });
});
