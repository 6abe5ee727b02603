/**
 * The BN254 scalar field that circom and snarkjs' Groth16 work over, and the signed-integer view
 * of its elements that the fixed-point circuits use.
 *
 * A signed integer v with |v| < p/2 is the field element v mod p: non-negative values are
 * themselves, negative ones are p − |v| (what circom's witness calculator and snarkjs' public
 * signals show).
 */
import { fail } from '@verity/protocol';

/** The order of BN254's scalar field (snarkjs' `bn128` curve, circom's default prime). */
export const FIELD_PRIME = 21888242871839275222246405745257275088548364400416034343698204186575808495617n;

/** (p − 1) / 2: the largest signed value; field elements above it decode as negative. */
export const FIELD_HALF = (FIELD_PRIME - 1n) / 2n;

/**
 * The field element (as a canonical decimal string, what snarkjs takes and returns) for a signed
 * integer.
 *
 * @example
 * ```ts
 * encodeSignal(-1n); // '21888…95616' (p − 1)
 * ```
 */
export function encodeSignal(value: bigint): string {
  if (value > FIELD_HALF || value < -FIELD_HALF) {
    fail('INVALID_ARGUMENT', 'value is outside the signed range of the field', { value: value.toString() });
  }
  return (value < 0n ? FIELD_PRIME + value : value).toString();
}

/**
 * The signed integer a field element stands for: values above (p − 1)/2 are negative.
 *
 * @example
 * ```ts
 * decodeSignal(encodeSignal(-5n)); // -5n
 * ```
 */
export function decodeSignal(signal: string | bigint): bigint {
  const n = typeof signal === 'bigint' ? signal : parseFieldElement(signal);
  if (n < 0n || n >= FIELD_PRIME) fail('INVALID_ARGUMENT', 'not a canonical field element', { value: String(signal) });
  return n > FIELD_HALF ? n - FIELD_PRIME : n;
}

/** {@link encodeSignal} over an array. */
export function encodeSignals(values: readonly bigint[]): string[] {
  return values.map(encodeSignal);
}

/** {@link decodeSignal} over an array. */
export function decodeSignals(signals: readonly (string | bigint)[]): bigint[] {
  return signals.map(decodeSignal);
}

/** A canonical decimal string (no sign, no leading zeros) as a bigint. */
function parseFieldElement(text: string): bigint {
  if (typeof text !== 'string' || !/^(0|[1-9][0-9]{0,79})$/.test(text)) {
    fail('INVALID_ARGUMENT', 'a field element is a canonical decimal string', { value: String(text).slice(0, 100) });
  }
  return BigInt(text);
}

/**
 * ⌊a / b⌋ for b > 0 (bigint `/` truncates toward zero; this rounds toward −∞, like the
 * circuits' quotient).
 */
export function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n ? q - 1n : q;
}

/** a mod m in [0, m). */
export function mod(a: bigint, m: bigint = FIELD_PRIME): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** The number of bits of |v| (0 for 0). */
export function bitLength(v: bigint): number {
  let x = v < 0n ? -v : v;
  let n = 0;
  while (x > 0n) {
    x >>= 1n;
    n++;
  }
  return n;
}
