/**
 * The identity of a Groth16 verification key on chain (docs/design.md §2.6): its encoding, which
 * `ZkVerifierRegistry` and every verifier contract read (packages/contracts
 * `contracts/Groth16Verifier.sol`), its id `vkKey` = SHA-256 of that encoding, and the 32-byte
 * digest by which auditors name a manifest on chain. Pure and browser-safe.
 *
 * The encoding is 2·n + 17 words of 32 bytes, big-endian (the ABI encoding of a static tuple):
 *
 *     alpha (G1: x, y)
 *     beta, gamma, delta (G2: x.c1, x.c0, y.c1, y.c0 — EIP-197's order, imaginary part first)
 *     IC[0], …, IC[n] (G1: x, y)
 *     n (the number of public signals)
 *
 * n comes last so that a verifier finds the key from the end of its own code.
 */
import { toHex } from './bytes.js';
import { parseCid } from './cid.js';
import { fail } from './errors.js';
import { sha256 } from './hash.js';

/** BN254's base field modulus: every coordinate is below it. */
export const ZK_BASE_FIELD = 21888242871839275222246405745257275088696311157297823662689037894645226208583n;

/** The most public signals an encoded key may declare (the contracts' bound). */
export const ZK_MAX_PUBLIC = 65536;

const DECIMAL = /^(0|[1-9][0-9]{0,77})$/;

function bad(what: string): never {
  return fail('INVALID_ARGUMENT', `not a Groth16 bn128 verification key: ${what}`, { field: what });
}

function coordinate(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !DECIMAL.test(value)) bad(what);
  const v = BigInt(value);
  if (v >= ZK_BASE_FIELD) bad(what);
  return v;
}

/** An affine G1 point `[x, y, "1"]` (snarkjs' form); the point at infinity is refused. */
function g1(value: unknown, what: string): bigint[] {
  if (!Array.isArray(value) || value.length !== 3 || value[2] !== '1') bad(what);
  const x = coordinate(value[0], what);
  const y = coordinate(value[1], what);
  // y² = x³ + 3 over the base field (the registry checks the same).
  if ((y * y - (x * x * x + 3n)) % ZK_BASE_FIELD !== 0n) bad(what);
  return [x, y];
}

/** An affine G2 point `[[x.c0, x.c1], [y.c0, y.c1], ["1", "0"]]`, as EIP-197's `[x.c1, x.c0, y.c1, y.c0]`. */
function g2(value: unknown, what: string): bigint[] {
  const pair = (v: unknown) => Array.isArray(v) && v.length === 2;
  if (!Array.isArray(value) || value.length !== 3 || !pair(value[0]) || !pair(value[1])) bad(what);
  const z = value[2] as unknown;
  if (!Array.isArray(z) || z.length !== 2 || z[0] !== '1' || z[1] !== '0') bad(what);
  const [x, y] = value as [string[], string[]];
  return [coordinate(x[1], what), coordinate(x[0], what), coordinate(y[1], what), coordinate(y[0], what)];
}

/**
 * The encoding of a snarkjs Groth16 verification key (see the module comment): what a verifier
 * contract's code ends with. Throws `INVALID_ARGUMENT` for anything that is not an affine
 * Groth16 bn128 key (a coordinate ≥ q, a G1 point off the curve or at infinity, IC not n + 1 points).
 *
 * @example
 * ```ts
 * zkVkEncoding(vk).length === 32 * (2 * vk.nPublic + 17);
 * ```
 */
export function zkVkEncoding(vk: unknown): Uint8Array {
  if (typeof vk !== 'object' || vk === null || Array.isArray(vk)) bad('not an object');
  const k = vk as Record<string, unknown>;
  if (k.protocol !== 'groth16' || k.curve !== 'bn128') bad('protocol/curve');
  const n = k.nPublic;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > ZK_MAX_PUBLIC) bad('nPublic');
  if (!Array.isArray(k.IC) || k.IC.length !== n + 1) bad('IC');
  const words = [
    ...g1(k.vk_alpha_1, 'vk_alpha_1'),
    ...g2(k.vk_beta_2, 'vk_beta_2'),
    ...g2(k.vk_gamma_2, 'vk_gamma_2'),
    ...g2(k.vk_delta_2, 'vk_delta_2'),
    ...k.IC.flatMap((p: unknown, i: number) => g1(p, `IC[${i}]`)),
    BigInt(n),
  ];
  const out = new Uint8Array(words.length * 32);
  words.forEach((w, i) => {
    let v = w;
    for (let b = 31; b >= 0; b--) {
      out[i * 32 + b] = Number(v & 0xffn);
      v >>= 8n;
    }
  });
  return out;
}

/**
 * `vkKey`: SHA-256 of {@link zkVkEncoding}, `0x`-prefixed hex: the key under which
 * `ZkVerifierRegistry` files the key's verifier (it computes the same with the 0x02 precompile).
 *
 * @example
 * ```ts
 * const verifier = await zkVerifierOf(publicClient, { zkVerifiers, vkKey: zkVkKey(bundle.zk.vk) });
 * ```
 */
export function zkVkKey(vk: unknown): `0x${string}` {
  return `0x${toHex(sha256(zkVkEncoding(vk)))}`;
}

/**
 * The digest by which an auditor names a manifest on chain: the 32-byte SHA-256 digest inside
 * the manifest CID's multihash (the SHA-256 of the manifest's bytes), `0x`-prefixed hex.
 * Throws `CID_INVALID` for anything {@link parseCid} refuses.
 *
 * @example
 * ```ts
 * await attestZkAudit(clients, { zkVerifiers, manifestDigest: zkManifestDigest(manifestCid), vkKey });
 * ```
 */
export function zkManifestDigest(manifestCid: string): `0x${string}` {
  return `0x${toHex(parseCid(manifestCid).digest)}`;
}
