/**
 * On-chain verification of Groth16 proofs: a Solidity verifier per circuit (snarkjs' own
 * template, rendered with the circuit's verification key), compiled with solc-js, and the
 * `verifyProof(a, b, c, input)` arguments of a proof.
 *
 * The generated contract (`Groth16Verifier`) is a pure function of the verification key and the
 * snarkjs template: the same keys always give the same source, and with the same solc version and
 * settings ({@link VERIFIER_SOLC_SETTINGS}) the same bytecode. `verifyProof` is a `view` that
 * answers `false` (never reverts) for a public signal ≥ the field prime, a point that is not on
 * the curve (the precompile fails: that call burns the gas it was given) or a pairing that does
 * not hold.
 *
 * `solc` is loaded on first use (its compiler is ~8 MB of asm.js, ~1 s to load).
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fail, VerityError } from '@verity/protocol';
import type { Groth16Proof } from 'snarkjs';
import type { CircuitKeys } from './setup.js';
import { loadSnarkjs } from './snarkjs.js';

/** The name of the contract the snarkjs template defines. */
export const VERIFIER_CONTRACT = 'Groth16Verifier';

/**
 * solc settings of every verifier: part of the bytecode's identity. Shanghai (PUSH0) runs on
 * anvil and every current EVM chain, like the Verity contracts.
 */
export const VERIFIER_SOLC_SETTINGS = {
  optimizer: { enabled: true, runs: 200 },
  evmVersion: 'shanghai',
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
} as const;

/** A compiled verifier. */
export interface CompiledVerifier {
  /** The contract's ABI as solc reports it (one function, `verifyProof`). */
  abi: readonly Record<string, unknown>[];
  /** Creation bytecode, `0x`-prefixed (the contract has no constructor arguments). */
  bytecode: `0x${string}`;
  /** `solc` version that compiled it, e.g. `0.8.37+commit.….Emscripten.clang`. */
  compiler: string;
}

/** `verifyProof`'s arguments: `a` (G1), `b` (G2, each coordinate as `[c1, c0]`), `c` (G1), the public signals. */
export type SolidityCallArgs = readonly [
  readonly [bigint, bigint],
  readonly [readonly [bigint, bigint], readonly [bigint, bigint]],
  readonly [bigint, bigint],
  readonly bigint[],
];

/**
 * The ABI of `verifyProof` for a circuit with `nPublic` public signals (what
 * {@link compileVerifier} returns, without compiling): enough to call a deployed verifier.
 *
 * @example
 * ```ts
 * await publicClient.readContract({ address, abi: verifierAbi(7), functionName: 'verifyProof', args });
 * ```
 */
export function verifierAbi(nPublic: number) {
  if (!Number.isSafeInteger(nPublic) || nPublic < 1) fail('INVALID_ARGUMENT', 'nPublic must be ≥ 1', { nPublic });
  return [
    {
      type: 'function',
      name: 'verifyProof',
      stateMutability: 'view',
      inputs: [
        { name: '_pA', type: 'uint256[2]', internalType: 'uint256[2]' },
        { name: '_pB', type: 'uint256[2][2]', internalType: 'uint256[2][2]' },
        { name: '_pC', type: 'uint256[2]', internalType: 'uint256[2]' },
        { name: '_pubSignals', type: `uint256[${nPublic}]`, internalType: `uint256[${nPublic}]` },
      ],
      outputs: [{ name: '', type: 'bool', internalType: 'bool' }],
    },
  ] as const;
}

let template: Promise<string> | undefined;

/** snarkjs' `templates/verifier_groth16.sol.ejs` (shipped in its npm package). */
function groth16Template(): Promise<string> {
  template ??= (async () => {
    // `snarkjs` resolves (for require) to `<pkg>/build/main.cjs`; the templates sit beside `build/`.
    const main = createRequire(import.meta.url).resolve('snarkjs');
    return readFile(join(dirname(dirname(main)), 'templates', 'verifier_groth16.sol.ejs'), 'utf8');
  })();
  template.catch(() => {
    template = undefined;
  });
  return template;
}

/**
 * The Solidity source of a Groth16 verifier for these keys (snarkjs' template, contract
 * {@link VERIFIER_CONTRACT}): deterministic for a given verification key.
 *
 * @example
 * ```ts
 * const source = await solidityVerifier(keys);
 * const { abi, bytecode } = compileVerifier(source);
 * ```
 */
export async function solidityVerifier(keys: Pick<CircuitKeys, 'zkey'>): Promise<string> {
  const snarkjs = await loadSnarkjs();
  const source = await snarkjs.zKey.exportSolidityVerifier(
    { type: 'mem', data: keys.zkey },
    { groth16: await groth16Template() },
  );
  if (!source.includes(`contract ${VERIFIER_CONTRACT}`)) {
    fail('INTERNAL', 'snarkjs did not render a Groth16 verifier (is the key a Groth16 key?)');
  }
  return source;
}

interface Solc {
  compile(input: string): string;
  version(): string;
}
let solc: Solc | undefined;

function loadSolc(): Solc {
  solc ??= createRequire(import.meta.url)('solc') as Solc;
  return solc;
}

interface SolcOutput {
  errors?: { severity: string; formattedMessage?: string; message: string }[];
  contracts?: Record<string, Record<string, { abi: Record<string, unknown>[]; evm: { bytecode: { object: string } } }>>;
}

/**
 * Compiles a verifier's source with solc-js (standard JSON, {@link VERIFIER_SOLC_SETTINGS}).
 * Synchronous and CPU-bound (~1 s for a small circuit, plus ~1 s to load solc the first time).
 *
 * @example
 * ```ts
 * const { abi, bytecode } = compileVerifier(await solidityVerifier(keys));
 * await walletClient.deployContract({ abi, bytecode });
 * ```
 */
export function compileVerifier(source: string): CompiledVerifier {
  const compiler = loadSolc();
  const input = {
    language: 'Solidity',
    sources: { 'Verifier.sol': { content: source } },
    settings: VERIFIER_SOLC_SETTINGS,
  };
  const output = JSON.parse(compiler.compile(JSON.stringify(input))) as SolcOutput;
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    fail('INVALID_ARGUMENT', 'the verifier does not compile', {
      errors: errors.map((e) => e.formattedMessage ?? e.message),
    });
  }
  const contract = output.contracts?.['Verifier.sol']?.[VERIFIER_CONTRACT];
  if (contract === undefined) fail('INVALID_ARGUMENT', `the source defines no contract ${VERIFIER_CONTRACT}`);
  return { abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}`, compiler: compiler.version() };
}

const UINT256_MAX = (1n << 256n) - 1n;

function uint(value: unknown, what: string): bigint {
  if (typeof value !== 'string' || !/^[0-9]{1,78}$/.test(value)) {
    fail('INVALID_ARGUMENT', `${what} must be a decimal string`, { value: String(value) });
  }
  const v = BigInt(value);
  if (v > UINT256_MAX) fail('INVALID_ARGUMENT', `${what} does not fit in a uint256`, { value });
  return v;
}

function pair(list: unknown, what: string): [unknown, unknown] {
  if (!Array.isArray(list) || list.length < 2) fail('INVALID_ARGUMENT', `${what} must be a list of coordinates`);
  return [list[0], list[1]];
}

/**
 * The arguments of the verifier's `verifyProof(a, b, c, input)` for a snarkjs proof: the affine
 * coordinates of `pi_a` and `pi_c`, `pi_b`'s Fp2 coordinates each swapped to `[c1, c0]` (the EVM
 * pairing precompile's order, as `groth16.exportSolidityCallData` does), and the public signals.
 * Values are not checked against the field: that is the contract's job (a signal ≥ p is answered
 * `false`). Throws `INVALID_ARGUMENT` for anything that cannot be ABI-encoded.
 *
 * @example
 * ```ts
 * const args = solidityCallArgs(proof, publicSignals);
 * await publicClient.readContract({ address, abi, functionName: 'verifyProof', args }); // true
 * ```
 */
export function solidityCallArgs(
  proof: Pick<Groth16Proof, 'pi_a' | 'pi_b' | 'pi_c'>,
  publicSignals: readonly string[],
): SolidityCallArgs {
  if (typeof proof !== 'object' || proof === null) throw new VerityError('INVALID_ARGUMENT', 'not a Groth16 proof');
  const [ax, ay] = pair(proof.pi_a, 'pi_a');
  const [bx, by] = pair(proof.pi_b, 'pi_b');
  const [bx0, bx1] = pair(bx, 'pi_b[0]');
  const [by0, by1] = pair(by, 'pi_b[1]');
  const [cx, cy] = pair(proof.pi_c, 'pi_c');
  if (!Array.isArray(publicSignals)) fail('INVALID_ARGUMENT', 'publicSignals must be a list');
  return [
    [uint(ax, 'pi_a[0]'), uint(ay, 'pi_a[1]')],
    [
      [uint(bx1, 'pi_b[0][1]'), uint(bx0, 'pi_b[0][0]')],
      [uint(by1, 'pi_b[1][1]'), uint(by0, 'pi_b[1][0]')],
    ],
    [uint(cx, 'pi_c[0]'), uint(cy, 'pi_c[1]')],
    publicSignals.map((s, i) => uint(s, `publicSignals[${i}]`)),
  ];
}
