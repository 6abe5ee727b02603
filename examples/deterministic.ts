/**
 * Arithmetic that gives the same bits on every JavaScript engine, so that re-running a training
 * script reproduces the committed model bytes exactly.
 *
 * ECMAScript fixes `+ - * /`, `Math.sqrt`, `Math.round`, `Math.fround` and `Math.imul` to the bit,
 * but leaves `Math.exp`, `Math.sin` and friends "implementation-approximated": two engines (or two
 * versions of one) may differ in the last bit. The training scripts use only the functions below,
 * built from the exact operations.
 */

/**
 * A seeded PRNG (mulberry32): 32-bit integer steps, uniform floats in [0, 1).
 *
 * @example
 * ```ts
 * const random = createRandom(42);
 * random(); // the same number on every run and engine
 * ```
 */
export function createRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * An approximately standard normal sample: the sum of 12 uniforms minus 6 (Irwin–Hall), which
 * needs no logarithm or cosine.
 *
 * @example
 * ```ts
 * const noise = 0.3 * gaussian(random);
 * ```
 */
export function gaussian(random: () => number): number {
  let sum = 0;
  for (let i = 0; i < 12; i++) sum += random();
  return sum - 6;
}

// ln 2 split in two (as in fdlibm's e_exp.c): LN2_HI has its low bits zero, so k · LN2_HI is exact
// for |k| < 2^11 and x − k·ln 2 keeps its precision.
const LN2_HI = 0.6931471803691238; // 0x3fe62e42fee00000
const LN2_LO = 1.9082149292705877e-10; // 0x3dea39ef35793c76

/** 2^k for an integer k in [-1022, 1023], built from its IEEE 754 bits. */
function pow2(k: number): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setUint32(0, (k + 1023) << 20);
  return view.getFloat64(0);
}

/**
 * e^x to within a few ulps: x = k·ln 2 + r with |r| ≤ ln 2 / 2, then a degree-16 Taylor polynomial in r.
 * Clamped to [-700, 700] (enough for softmax, which subtracts the maximum first).
 *
 * @example
 * ```ts
 * exp(1); // 2.718281828459045
 * ```
 */
export function exp(x: number): number {
  if (Number.isNaN(x)) return x;
  const clamped = x < -700 ? -700 : x > 700 ? 700 : x;
  const k = Math.round(clamped / Math.LN2);
  const r = clamped - k * LN2_HI - k * LN2_LO;
  let term = 1;
  let sum = 1;
  for (let n = 1; n <= 16; n++) {
    term = (term * r) / n;
    sum += term;
  }
  return sum * pow2(k);
}

const TWO_PI = 2 * Math.PI;

/**
 * sin(x): reduced to [-π/2, π/2] (x − 2πk, then π − r), then a Taylor polynomial to degree 23.
 *
 * @example
 * ```ts
 * sin(Math.PI / 6); // 0.49999999999999994
 * ```
 */
export function sin(x: number): number {
  let r = x - Math.round(x / TWO_PI) * TWO_PI;
  if (r > Math.PI / 2) r = Math.PI - r;
  else if (r < -Math.PI / 2) r = -Math.PI - r;
  const r2 = r * r;
  let term = r;
  let sum = r;
  for (let n = 3; n <= 23; n += 2) {
    term = (-term * r2) / ((n - 1) * n);
    sum += term;
  }
  return sum;
}
