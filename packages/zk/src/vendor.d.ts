// Just enough typing for the untyped packages this one calls.

declare module 'circom2' {
  /** WASI host bindings; `fs` must be a Node-compatible `fs`. */
  export interface CircomBindings {
    [key: string]: unknown;
    fs?: unknown;
  }
  export interface CircomRunnerOptions {
    args: string[];
    env?: Record<string, string>;
    preopens?: Record<string, string>;
    bindings?: CircomBindings;
  }
  /** Runs circom.wasm under WASI. */
  export class CircomRunner {
    constructor(options: CircomRunnerOptions);
    compile(wasm: Uint8Array): Promise<WebAssembly.Module>;
    execute(wasm: Uint8Array): Promise<WebAssembly.Instance>;
  }
  export const bindings: CircomBindings;
  export const preopens: Record<string, string>;
}

declare module 'snarkjs' {
  /** An in-memory file (fastfile): snarkjs fills `data` when writing. */
  export interface MemFile {
    type: 'mem';
    data?: Uint8Array | undefined;
  }
  export type FileArg = string | MemFile | Uint8Array;
  export type Logger = unknown;

  export interface Groth16Proof {
    pi_a: string[];
    pi_b: string[][];
    pi_c: string[];
    protocol: string;
    curve: string;
  }

  export interface Curve {
    terminate(): Promise<void>;
  }

  export const groth16: {
    fullProve(
      input: Record<string, unknown>,
      wasm: FileArg,
      zkey: FileArg,
      logger?: Logger,
    ): Promise<{ proof: Groth16Proof; publicSignals: string[] }>;
    prove(zkey: FileArg, witness: FileArg, logger?: Logger): Promise<{ proof: Groth16Proof; publicSignals: string[] }>;
    verify(vk: unknown, publicSignals: unknown, proof: unknown, logger?: Logger): Promise<boolean>;
    /** `[a],[[b]],[c],[inputs]` as Solidity call data text (hex strings; pi_b's coordinates swapped). */
    exportSolidityCallData(proof: unknown, publicSignals: unknown): Promise<string>;
  };
  export const powersOfTau: {
    newAccumulator(curve: Curve, power: number, out: FileArg, logger?: Logger): Promise<unknown>;
    contribute(input: FileArg, out: FileArg, name: string, entropy: string, logger?: Logger): Promise<unknown>;
    preparePhase2(input: FileArg, out: FileArg, logger?: Logger): Promise<unknown>;
    /** A contribution derived from a public beacon (hex, no 0x); `false` if the arguments are refused. */
    beacon(
      input: FileArg,
      out: FileArg,
      name: string,
      beaconHash: string,
      numIterationsExp: number,
      logger?: Logger,
    ): Promise<unknown>;
    /** Checks every contribution of a ptau file (a public ceremony's, before trusting it). */
    verify(input: FileArg, logger?: Logger): Promise<boolean>;
  };
  export const zKey: {
    newZKey(r1cs: FileArg, ptau: FileArg, out: FileArg, logger?: Logger): Promise<unknown>;
    contribute(input: FileArg, out: FileArg, name: string, entropy: string, logger?: Logger): Promise<unknown>;
    /** A phase-2 contribution derived from a public beacon (hex, no 0x); `false` if refused. */
    beacon(
      input: FileArg,
      out: FileArg,
      name: string,
      beaconHash: string,
      numIterationsExp: number,
      logger?: Logger,
    ): Promise<unknown>;
    verifyFromR1cs(r1cs: FileArg, ptau: FileArg, zkey: FileArg, logger?: Logger): Promise<boolean>;
    exportVerificationKey(zkey: FileArg, logger?: Logger): Promise<Record<string, unknown>>;
    /** Renders `templates[protocol]` (an ejs template) with the zkey's verification key. */
    exportSolidityVerifier(zkey: FileArg, templates: Record<string, string>, logger?: Logger): Promise<string>;
  };
  export const wtns: {
    calculate(input: Record<string, unknown>, wasm: FileArg, out: FileArg, options?: unknown): Promise<void>;
  };
  export const curves: {
    getCurveFromName(name: string, options?: { singleThread?: boolean }): Promise<Curve>;
  };
}
