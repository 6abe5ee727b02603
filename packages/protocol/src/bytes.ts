/**
 * Byte helpers on plain `Uint8Array` (no `Buffer`: this package runs in browsers).
 */
import { fail } from './errors.js';

const HEX = '0123456789abcdef';
const utf8Encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is content, not a marker to drop (round trips must be exact).
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Lower-case hex of `bytes`, no prefix.
 *
 * @example
 * ```ts
 * toHex(new Uint8Array([0, 171])) // '00ab'
 * ```
 */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    out += HEX[b >> 4] + (HEX[b & 15] as string);
  }
  return out;
}

const HEX_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX_VALUE['0123456789abcdef'.charCodeAt(i)] = i;
  HEX_VALUE['0123456789ABCDEF'.charCodeAt(i)] = i;
}

/**
 * Parses hex (optional `0x`, either case). Throws `ENCODING_INVALID` on anything else.
 *
 * @example
 * ```ts
 * fromHex('0x00ab') // Uint8Array [0, 171]
 * ```
 */
export function fromHex(hex: string): Uint8Array {
  const start = hex.startsWith('0x') || hex.startsWith('0X') ? 2 : 0;
  if ((hex.length - start) % 2 !== 0) fail('ENCODING_INVALID', 'invalid hex string');
  const out = new Uint8Array((hex.length - start) / 2);
  for (let i = 0; i < out.length; i++) {
    const a = hex.charCodeAt(start + 2 * i);
    const b = hex.charCodeAt(start + 2 * i + 1);
    const hi = a < 128 ? (HEX_VALUE[a] as number) : -1;
    const lo = b < 128 ? (HEX_VALUE[b] as number) : -1;
    if (hi < 0 || lo < 0) fail('ENCODING_INVALID', 'invalid hex string');
    out[i] = (hi << 4) | lo;
  }
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Int16Array(128).fill(-1);
for (let i = 0; i < B64.length; i++) B64_INDEX[B64.charCodeAt(i)] = i;

/**
 * Standard base64 with padding (RFC 4648 §4), as used by signed notes and checkpoints.
 *
 * @example
 * ```ts
 * toBase64(utf8('foo')) // 'Zm9v'
 * ```
 */
export function toBase64(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number);
    out += (B64[n >> 18] as string) + B64[(n >> 12) & 63] + B64[(n >> 6) & 63] + B64[n & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = (bytes[i] as number) << 16;
    out += `${B64[n >> 18]}${B64[(n >> 12) & 63]}==`;
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8);
    out += `${B64[n >> 18]}${B64[(n >> 12) & 63]}${B64[(n >> 6) & 63]}=`;
  }
  return out;
}

/**
 * Strict standard base64 decoding (RFC 4648 §4): padding required, no whitespace, and non-zero
 * trailing bits rejected, so every byte string has exactly one accepted text form.
 *
 * @example
 * ```ts
 * fromBase64('Zm9v') // bytes of 'foo'; fromBase64('Zh==') throws ENCODING_INVALID
 * ```
 */
export function fromBase64(text: string): Uint8Array {
  if (text.length % 4 !== 0) fail('ENCODING_INVALID', 'invalid base64: length is not a multiple of 4');
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((text.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < text.length; i += 4) {
    const last = i + 4 === text.length;
    let n = 0;
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j);
      let v: number;
      if (c === 61 /* = */ && last && j >= 4 - pad) v = 0;
      else {
        v = c < 128 ? (B64_INDEX[c] as number) : -1;
        if (v < 0) fail('ENCODING_INVALID', 'invalid base64 character');
      }
      n = (n << 6) | v;
    }
    if (last && pad === 2 && (n & 0xffff) !== 0) fail('ENCODING_INVALID', 'invalid base64: non-canonical padding bits');
    if (last && pad === 1 && (n & 0xff) !== 0) fail('ENCODING_INVALID', 'invalid base64: non-canonical padding bits');
    out[o++] = n >> 16;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

/**
 * UTF-8 encoding of a string.
 *
 * @example
 * ```ts
 * utf8('é') // Uint8Array [0xc3, 0xa9]
 * ```
 */
export function utf8(text: string): Uint8Array {
  return utf8Encoder.encode(text);
}

/**
 * Strict UTF-8 decoding; invalid sequences throw `ENCODING_INVALID`.
 *
 * @example
 * ```ts
 * fromUtf8(new Uint8Array([0xc3, 0xa9])) // 'é'
 * ```
 */
export function fromUtf8(bytes: Uint8Array): string {
  try {
    return utf8Decoder.decode(bytes);
  } catch (cause) {
    return fail('ENCODING_INVALID', 'invalid UTF-8', { cause: String(cause) });
  }
}

/**
 * Concatenates byte arrays.
 *
 * @example
 * ```ts
 * concatBytes(new Uint8Array([0]), leaf) // 0x00 ‖ leaf
 * ```
 */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Byte-wise equality (not constant time; only public data is compared in Verity).
 *
 * @example
 * ```ts
 * equalBytes(computedRoot, checkpoint.rootHash)
 * ```
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True when `text` has no lone surrogates (so it has a UTF-8 encoding). Portable `isWellFormed`. */
export function isWellFormedUnicode(text: string): boolean {
  return !/\p{Surrogate}/u.test(text);
}
