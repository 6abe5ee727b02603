/**
 * Compiles circom source in-process with `circom2` (circom 2.2.x built for WASI), in a fresh
 * temporary folder: `circuit.circom --r1cs --wasm --sym --O2`. The R1CS hash (SHA-256 of the
 * `.r1cs` bytes) binds the circuit: anyone can regenerate the source from the model, compile it
 * with the same compiler version and compare.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerityError } from '@verity/protocol';
import { CircomRunner, bindings as defaultBindings } from 'circom2';
import { type R1csInfo, r1csInfo } from './r1cs.js';

const require = createRequire(import.meta.url);

/** The compiled circuit: everything proving and setup need, and its binding hash. */
export interface CircuitArtifacts {
  /** `.r1cs` bytes (the constraint system). */
  r1cs: Uint8Array;
  /** SHA-256 (hex) of `r1cs`: the circuit's identity. */
  r1csHash: string;
  /** The witness generator (`circuit_js/circuit.wasm`). */
  wasm: Uint8Array;
  /** `.sym`: signal names → witness indexes. */
  sym: string;
  info: R1csInfo;
  /** Compiler that produced it, e.g. `circom 2.2.3 (circom2 0.2.23)`. */
  compiler: string;
  /** Optimization level used (`--O2` unless asked otherwise). */
  optimization: 0 | 1 | 2;
}

/** Options for {@link compileCircom}. */
export interface CompileCircomOptions {
  /** circom's `--O0/1/2`. Default 2 (linear constraints substituted away). */
  optimization?: 0 | 1 | 2;
  /** Parent of the temporary folder. Default the OS temp folder. */
  tempDir?: string;
}

let circomModule: Promise<WebAssembly.Module> | undefined;

function circomWasm(): Promise<WebAssembly.Module> {
  circomModule ??= readFile(require.resolve('circom2/circom.wasm')).then((bytes) => WebAssembly.compile(bytes));
  return circomModule;
}

let compilerVersion: Promise<string> | undefined;

/**
 * The compiler's name and version as recorded next to an R1CS hash, e.g.
 * `circom 2.2.3 (circom2 0.2.23)` (asked from circom itself).
 *
 * @example
 * ```ts
 * await circomCompilerVersion(); // 'circom 2.2.3 (circom2 0.2.23)'
 * ```
 */
export function circomCompilerVersion(): Promise<string> {
  compilerVersion ??= (async () => {
    const pkg = require('circom2/package.json') as { version: string };
    const dir = await mkdtemp(join(tmpdir(), 'verity-circom-'));
    try {
      const printed = stripAnsi(await runCircom(dir, ['--version']));
      const version = /circom compiler (\S+)/.exec(printed)?.[1] ?? 'unknown';
      return `circom ${version} (circom2 ${pkg.version})`;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return compilerVersion;
}

/**
 * Compiles circom source to R1CS + witness generator.
 *
 * @example
 * ```ts
 * const circuit = await compileCircom(compiled.circom);
 * circuit.info.constraints; // 3120
 * circuit.r1csHash; // '6a1f…'
 * ```
 */
export async function compileCircom(source: string, options: CompileCircomOptions = {}): Promise<CircuitArtifacts> {
  const optimization = options.optimization ?? 2;
  const dir = await mkdtemp(join(options.tempDir ?? tmpdir(), 'verity-circom-'));
  try {
    await writeFile(join(dir, 'circuit.circom'), source);
    const log = await runCircom(dir, ['circuit.circom', '--r1cs', '--wasm', '--sym', `--O${optimization}`, '-o', '.']);
    const read = (path: string) =>
      readFile(join(dir, path)).then((b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    let r1cs: Uint8Array;
    let wasm: Uint8Array;
    let sym: string;
    try {
      [r1cs, wasm, sym] = await Promise.all([
        read('circuit.r1cs'),
        read('circuit_js/circuit.wasm'),
        readFile(join(dir, 'circuit.sym'), 'utf8'),
      ]);
    } catch (cause) {
      throw new VerityError('INTERNAL', 'circom reported success but wrote no circuit', { details: { log }, cause });
    }
    return {
      r1cs,
      r1csHash: createHash('sha256').update(r1cs).digest('hex'),
      wasm,
      sym,
      info: r1csInfo(r1cs),
      compiler: await circomCompilerVersion(),
      optimization,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs circom.wasm with `dir` as its working folder; returns what it printed. */
async function runCircom(dir: string, args: string[]): Promise<string> {
  const chunks: string[] = [];
  // circom writes its messages to fds 1 and 2: capture them instead of printing.
  const captureFs = {
    ...fs,
    writeSync(fd: number, buffer: Uint8Array, offset?: number, length?: number, position?: number | null): number {
      if (fd === 1 || fd === 2) {
        const start = offset ?? 0;
        const end = length === undefined ? buffer.byteLength : start + length;
        chunks.push(new TextDecoder().decode(buffer.subarray(start, end)));
        return end - start;
      }
      return fs.writeSync(fd, buffer, offset, length, position);
    },
  };
  const runner = new CircomRunner({
    args,
    env: {},
    preopens: { '.': dir },
    bindings: { ...defaultBindings, fs: captureFs },
  });
  const module = await circomWasm();
  runner.compile = async () => module;
  try {
    await runner.execute(new Uint8Array(0));
  } catch (cause) {
    const log = stripAnsi(chunks.join(''));
    throw new VerityError('INVALID_ARGUMENT', `circom failed to compile the circuit: ${lastLines(log)}`, {
      details: { log: log.slice(-8000), exitCode: (cause as { code?: unknown }).code ?? null },
      cause,
    });
  }
  return chunks.join('');
}

/** circom colours its messages: drop the escape sequences (ESC [ … m). */
function stripAnsi(text: string): string {
  return text
    .split(String.fromCharCode(27))
    .map((part, i) => (i === 0 ? part : part.replace(/^\[[0-9;]*m/, '')))
    .join('');
}

function lastLines(log: string): string {
  const errors = log.split('\n').filter((l) => /error/i.test(l));
  return (errors.length > 0 ? errors.slice(0, 3) : log.trim().split('\n').slice(-3)).join(' | ').slice(0, 500);
}
