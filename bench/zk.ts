/**
 * zk mode: the iris example (4→16→3), a 64→64→16 MLP (5,200 parameters, seeded random weights,
 * as in the zk tests) and the digits CNN (examples/digits: 52,522 parameters, MNIST 14×14), side
 * by side in one run, through the whole `@verity/zk` pipeline: compile (compileModel + circom
 * --O2), Groth16 setup, prove (cold and warm), verify, proof size, on-chain verification gas, the
 * fixed-point error against the float model; and, for the MLP, PLONK and FFLONK next to Groth16.
 *
 *   npm run bench:zk          (or: node bench/dist/zk.js [proofs] [coldProcesses])
 *
 * - Compile: `compileModel` (ONNX → fixed point → circom text) and `compileCircom` (`--O2`), once
 *   each. circom2's WebAssembly module is compiled once per process, before both (its own line).
 * - Powers of tau: each circuit gets the local-dev ptau setupCircuit would size for it (iris 2^10,
 *   MLP 2^12, CNN 2^15: ~10 min on 2 busy cores), generated once and cached, with the time it took, in
 *   `$VERITY_BENCH_ZK_CACHE` or `<tmp>/verity-bench-zk` (one folder per power, so the 2^12 file is
 *   never reused for iris). Delete the folder to measure the generation again (~70 s for 2^12).
 * - Setup (ptau cached): `setupCircuit` into a fresh keys folder, every run: zkey new, one
 *   phase-2 contribution, `zkey verify`, verification key export, keys written.
 * - Prove, cold: a fresh child process per proof (`coldProcesses` per model, default 3; median):
 *   process start → keys loaded from the keys folder (zkey SHA-256 checked) → first proof; the
 *   process start → module body part is Node's boot and the imports.
 * - Prove, warm: `proofs` proofs (default 10) per model in this process after one warm-up, the
 *   two models interleaved (order reversed every other round); median and range. Every proof's
 *   public signals are checked against the TypeScript fixed-point evaluation and verified.
 * - Verify: median over the warm proofs (this process, curve built); cold: a fresh process per
 *   verification, process start → verified.
 * - Error: dequantized proved outputs (the TypeScript evaluator, equal to the circuit's bit for
 *   bit) against the float64 model: iris on its 30 held-out rows, the MLP on 200 random rows, the
 *   CNN on its 1,996 held-out digits (the data set fetched by examples/digits/data.ts; without it,
 *   its 10 samples).
 * - On chain: each verifier (packages/zk/src/onchain.ts: snarkjs' Groth16 template, solc-js) on a
 *   fresh anvil: deployment gas, and `verifyProof` of a real proof as a transaction (gasUsed, the
 *   21,000 intrinsic included), after an `eth_call` answered true.
 * - PLONK and FFLONK (snarkjs) on the MLP's circuit with the 2^15 ptau (FFLONK refuses 2^14 for
 *   it): setup (no phase 2), prove warm (witness included, as Groth16's row), verify, proof size.
 * - Verify in a browser: Debian's Chromium (`$CHROMIUM_PATH` or /usr/bin/chromium, as the tests use)
 *   through Playwright, snarkjs' browser build, each model's last proof verified in the page
 *   (the first call, with the curve's setup, and the warm median); "no Chromium" without one.
 *
 * Targets (docs/design.md §5, issue 11), for the ~5k-parameter MLP: prove ≤ 1 s warm on 2 cores,
 * verify ≤ 20 ms, proof ≤ 1 KB, on-chain verify ≤ 300k gas; for the CNN: prove ≤ 30 s warm.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  argMax,
  type CircuitArtifacts,
  type CircuitKeys,
  type CompiledModel,
  circomCompilerVersion,
  compileCircom,
  compileModel,
  computeWitness,
  encodeInput,
  encodeSignals,
  evaluateFloat,
  evaluateModel,
  type Groth16Proof,
  localPowersOfTau,
  prove,
  ptauPowerFor,
  r1csInfo,
  releaseCurves,
  type ScaleOptions,
  samplesFromJson,
  setupCircuit,
  solidityCallArgs,
  type VerificationKey,
  verifyProof,
} from '@verity/zk';
import type { Abi, Address } from 'viem';

const SELF = fileURLToPath(import.meta.url);
const MODELS_DIR = fileURLToPath(new URL('../../examples/models/', import.meta.url));
const PTAU_CACHE = process.env.VERITY_BENCH_ZK_CACHE ?? join(tmpdir(), 'verity-bench-zk');

// ---------------------------------------------------------------------------------------------
// Child processes: `--prove DIR NAME` and `--verify DIR NAME`, print one JSON line

interface ColdProve {
  /** Process start → module body (Node's boot, the imports). */
  boot: number;
  /** Module body → keys in memory (files read, R1CS hash, keys from the cache, zkey hash checked). */
  load: number;
  /** The first proof: snarkjs import, curve and workers, witness, prove. */
  prove: number;
  /** Process start → proof. */
  total: number;
  proof: Groth16Proof;
  publicSignals: string[];
}

interface ColdVerify {
  boot: number;
  verify: number;
  total: number;
  ok: boolean;
}

async function proveChild(dir: string, name: string): Promise<void> {
  const boot = performance.now();
  const r1cs = new Uint8Array(readFileSync(join(dir, `${name}.r1cs`)));
  const wasm = new Uint8Array(readFileSync(join(dir, `${name}.wasm`)));
  const input = (JSON.parse(readFileSync(join(dir, `${name}.input.json`), 'utf8')) as string[]).map(BigInt);
  const r1csHash = createHash('sha256').update(r1cs).digest('hex');
  const keys = await setupCircuit({ r1cs, r1csHash, info: r1csInfo(r1cs) }, { cacheDir: dir });
  const loaded = performance.now();
  const { proof, publicSignals } = await prove({ wasm }, keys, input);
  const done = performance.now();
  const out: ColdProve = { boot, load: loaded - boot, prove: done - loaded, total: done, proof, publicSignals };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await releaseCurves();
}

async function verifyChild(dir: string, name: string): Promise<void> {
  const boot = performance.now();
  const vk = JSON.parse(readFileSync(join(dir, `${name}.vk.json`), 'utf8')) as VerificationKey;
  const { proof, publicSignals } = JSON.parse(readFileSync(join(dir, `${name}.proof.json`), 'utf8')) as {
    proof: Groth16Proof;
    publicSignals: string[];
  };
  const ok = await verifyProof(vk, proof, publicSignals);
  const done = performance.now();
  const out: ColdVerify = { boot, verify: done - boot, total: done, ok };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await releaseCurves();
}

function runChild<T>(mode: '--prove' | '--verify', dir: string, name: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, mode, dir, name], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) reject(new Error(`${mode} ${name}: child exited with ${code}`));
      else resolve(JSON.parse(out.trim().split('\n').at(-1) as string) as T);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The models

interface Subject {
  readonly name: string;
  readonly label: string;
  readonly onnx: Uint8Array;
  readonly samples: number[][];
  /** How the fixed-point scale is chosen from the samples (default: compileModel's). */
  readonly scale?: ScaleOptions;
  /** Rows proved (cycled) and rows the error is measured on. */
  readonly proveRows: number[][];
  readonly errorRows: number[][];
  readonly errorLabel: string;
}

async function subjects(): Promise<Subject[]> {
  const { irisSplit } = await import('@verity/examples/dist/iris/train.js');
  const irisTest = irisSplit().test.map((r) => r.x);
  const iris: Subject = {
    name: 'iris',
    label: 'iris 4→16→3',
    onnx: new Uint8Array(readFileSync(join(MODELS_DIR, 'iris.onnx'))),
    samples: samplesFromJson(JSON.parse(readFileSync(join(MODELS_DIR, 'iris.samples.json'), 'utf8')), 'x'),
    proveRows: irisTest,
    errorRows: irisTest,
    errorLabel: '30 held-out iris rows',
  };
  const mlp: Subject = {
    name: 'mlp',
    label: 'MLP 64→64→16',
    onnx: await mlpOnnx(7),
    samples: await uniformRows(16, 64, 1),
    proveRows: await uniformRows(32, 64, 5),
    errorRows: await uniformRows(200, 64, 3),
    errorLabel: '200 random rows',
  };
  const { DIGITS_ZK_SCALE } = await import('@verity/examples/dist/digits/train.js');
  const { digitsSplit } = await import('@verity/examples/dist/digits/data.js');
  const digitsSamples = samplesFromJson(JSON.parse(readFileSync(join(MODELS_DIR, 'digits.samples.json'), 'utf8')), 'x');
  let digitsTest: number[][] | undefined;
  try {
    digitsTest = digitsSplit().test.map((r) => r.x);
  } catch (e) {
    console.warn(`the MNIST data set is unavailable (${String(e)}): the CNN is measured on its 10 samples only`);
  }
  const cnn: Subject = {
    name: 'cnn',
    label: 'CNN digits (14×14, 2 conv)',
    onnx: new Uint8Array(readFileSync(join(MODELS_DIR, 'digits.onnx'))),
    samples: digitsSamples,
    scale: DIGITS_ZK_SCALE,
    proveRows: digitsTest?.slice(0, 32) ?? digitsSamples,
    errorRows: digitsTest ?? digitsSamples,
    errorLabel: digitsTest ? `all ${digitsTest.length} held-out digits` : 'its 10 samples (no data set)',
  };
  return [iris, mlp, cnn];
}

/** The zk tests' MLP (`packages/zk/src/test-support/models.ts`, same seed → same bytes): 5,200 parameters. */
async function mlpOnnx(seed: number): Promise<Uint8Array> {
  const { createRandom } = await import('@verity/examples/dist/deterministic.js');
  const w = await import('@verity/examples/dist/onnx-writer.js');
  const random = createRandom(seed);
  const [n, h, k] = [64, 64, 16];
  const xavier = (fanIn: number, fanOut: number, count: number) => {
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return Array.from({ length: count }, () => (2 * random() - 1) * limit);
  };
  const bias = (count: number) => Array.from({ length: count }, () => 0.1 * (2 * random() - 1));
  return w.encodeModel({
    name: 'mlp_64_64_16',
    inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', n] }],
    outputs: [
      { name: 'logits', elemType: 'float32', shape: ['batch', k] },
      { name: 'label', elemType: 'int64', shape: ['batch'] },
    ],
    initializers: [
      w.floatInitializer('W1', [n, h], xavier(n, h, n * h)),
      w.floatInitializer('B1', [h], bias(h)),
      w.floatInitializer('W2', [k, h], xavier(h, k, k * h)),
      w.floatInitializer('B2', [k], bias(k)),
    ],
    nodes: [
      { opType: 'Flatten', inputs: ['x'], outputs: ['xf'], attributes: { axis: { int: 1 } } },
      w.matMul('xf', 'W1', 'h1'),
      w.add('h1', 'B1', 'h1b'),
      w.relu('h1b', 'h1r'),
      w.gemm('h1r', 'W2', 'B2', 'logits', { transB: true }),
      w.argMax('logits', 'label', 1, false),
    ],
  });
}

async function uniformRows(count: number, size: number, seed: number): Promise<number[][]> {
  const { createRandom } = await import('@verity/examples/dist/deterministic.js');
  const random = createRandom(seed);
  return Array.from({ length: count }, () => Array.from({ length: size }, () => Math.fround(2 * random() - 1)));
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface Ptau {
  power: number;
  /** Generation time, ms (measured in this run, or read back from the cache). */
  ms: number | null;
  when: string;
}

/** The local-dev ptau of exactly `power`, generated and timed once, then cached with its time. */
async function ptauFor(power: number): Promise<{ dir: string; ptau: Ptau }> {
  const dir = join(PTAU_CACHE, `2p${power}`);
  const meta = join(dir, 'bench-generated.json');
  // Another process generating this ptau (its pid in the marker): wait for it rather than generate it twice.
  const marker = join(dir, 'generating.pid');
  while (!existsSync(meta) && existsSync(marker) && alive(Number(readFileSync(marker, 'utf8')))) {
    await new Promise((resolve) => setTimeout(resolve, 5000));
  }
  if (existsSync(join(dir, `local-dev-bn128-2p${power}.ptau`))) {
    const known = existsSync(meta)
      ? (JSON.parse(readFileSync(meta, 'utf8')) as { ms: number; date: string; load1: number })
      : undefined;
    return {
      dir,
      ptau: {
        power,
        ms: known?.ms ?? null,
        when: known ? `cached, measured ${known.date.slice(0, 16)}Z at load ${known.load1.toFixed(1)}` : 'cached',
      },
    };
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(marker, String(process.pid));
  try {
    const load1 = loadavg()[0] as number;
    const t0 = performance.now();
    const made = await localPowersOfTau(power, { cacheDir: dir });
    const ms = performance.now() - t0;
    if (made.power !== power) throw new Error(`expected a 2^${power} ptau, got 2^${made.power}`);
    writeFileSync(meta, JSON.stringify({ ms, date: new Date().toISOString(), load1 }));
    return { dir, ptau: { power, ms, when: 'measured in this run' } };
  } finally {
    rmSync(marker, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface Result {
  subject: Subject;
  model: CompiledModel;
  circuit: CircuitArtifacts;
  keys: CircuitKeys;
  compileModelMs: number;
  circomMs: number;
  ptau: Ptau;
  setupMs: number;
  coldProve: ColdProve[];
  coldVerify: ColdVerify[];
  warmProve: number[];
  witness: number[];
  verify: number[];
  proofJson: number;
  proofRaw: number;
  signalsJson: number;
  /** The last warm proof (for the on-chain check). */
  last?: { proof: Groth16Proof; publicSignals: string[] };
  error: { maxAbs: number; maxRelative: number; agree: number; rows: number };
  /** Verification in Chromium: the first call (curve set up in the page), then warm calls; or why not. */
  browserVerify?: { first: number; warm: number[] } | string;
  /** The Solidity verifier on anvil: runtime size, deployment gas, `verifyProof` as a transaction. */
  onchain?: { codeBytes: number; deployGas: bigint | null; verifyGas: bigint | null; note?: string };
}

/** PLONK or FFLONK (snarkjs) on the same circuit, next to Groth16. */
interface Universal {
  system: 'plonk' | 'fflonk';
  /** R1CS constraints of the circuit compiled at `--O1` (its linear constraints kept sparse: fewer gates). */
  r1csConstraints: number;
  /** PLONK gates snarkjs made of them (its setup log), when it says. */
  gates?: number;
  ptauPower: number;
  setupMs: number;
  zkeyBytes: number;
  /** Witness + prove, as Groth16's `prove` row. */
  prove: number[];
  verify: number[];
  proofJson: number;
  error?: string;
}

/** The public signals a proof for `row` must carry: the TypeScript fixed-point evaluation. */
function expectedSignals(model: CompiledModel, row: readonly number[]): string[] {
  const d = evaluateModel(model, row);
  return encodeSignals([...model.io.outputs.flatMap((o) => d.fixedOutputs[o.name] as bigint[]), ...d.input]);
}

function fixedVsFloat(model: CompiledModel, rows: readonly number[][]): Result['error'] {
  let maxAbs = 0;
  let maxOut = 0;
  let agree = 0;
  for (const row of rows) {
    const floats = evaluateFloat(model.graph, row);
    const fixed = evaluateModel(model, row).outputs;
    for (const o of model.io.outputs) {
      const id = model.graph.outputs[model.io.outputs.indexOf(o)] as number;
      const f = floats[id] as Float64Array;
      const q = fixed[o.name] as number[];
      f.forEach((v, i) => {
        maxAbs = Math.max(maxAbs, Math.abs((q[i] as number) - v));
        maxOut = Math.max(maxOut, Math.abs(v));
      });
      if (o === model.io.outputs[0] && argMax(f) === argMax(q)) agree++;
    }
  }
  return { maxAbs, maxRelative: maxAbs / maxOut, agree, rows: rows.length };
}

function proofBytes(proof: Groth16Proof): number {
  // Affine coordinates (snarkjs adds a projective z = 1 to each point): A and C in G1, B in G2, 32 bytes each.
  const coordinates =
    proof.pi_a.slice(0, 2).length + proof.pi_b.slice(0, 2).flat().length + proof.pi_c.slice(0, 2).length;
  return coordinates * 32;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const timed = async <T>(f: () => Promise<T> | T): Promise<[T, number]> => {
  const t0 = performance.now();
  const value = await f();
  return [value, performance.now() - t0];
};

async function main(): Promise<void> {
  const proofs = Number(process.argv[2] ?? 10);
  const coldProcesses = Number(process.argv[3] ?? 3);
  const load0 = loadavg()[0] as number;
  const keysDir = mkdtempSync(join(tmpdir(), 'verity-bench-zk-keys-'));
  try {
    const list = await subjects();
    const [compiler, circomInitMs] = await timed(() => circomCompilerVersion());
    const results: Result[] = [];
    for (const subject of list) {
      const [model, compileModelMs] = await timed(() =>
        compileModel(subject.onnx, {
          samples: subject.samples,
          ...(subject.scale === undefined ? {} : { scale: subject.scale }),
        }),
      );
      const [circuit, circomMs] = await timed(() => compileCircom(model.circom, { optimization: 2 }));
      if (circuit.info.constraints !== model.report.estimatedConstraints) {
        throw new Error(
          `${subject.name}: ${circuit.info.constraints} constraints, predicted ${model.report.estimatedConstraints}`,
        );
      }
      const { dir: ptauDir, ptau } = await ptauFor(ptauPowerFor(circuit.info));
      const [keys, setupMs] = await timed(() => setupCircuit(circuit, { cacheDir: keysDir, ptauDir }));
      if (keys.ptauPower !== ptau.power) throw new Error(`${subject.name}: setup used 2^${keys.ptauPower}`);
      const row = subject.proveRows[0] as number[];
      writeFileSync(join(keysDir, `${subject.name}.r1cs`), circuit.r1cs);
      writeFileSync(join(keysDir, `${subject.name}.wasm`), circuit.wasm);
      writeFileSync(join(keysDir, `${subject.name}.input.json`), JSON.stringify(encodeInput(model, row).map(String)));
      writeFileSync(join(keysDir, `${subject.name}.vk.json`), JSON.stringify(keys.verificationKey));
      results.push({
        subject,
        model,
        circuit,
        keys,
        compileModelMs,
        circomMs,
        ptau,
        setupMs,
        coldProve: [],
        coldVerify: [],
        warmProve: [],
        witness: [],
        verify: [],
        proofJson: 0,
        proofRaw: 0,
        signalsJson: 0,
        error: fixedVsFloat(model, subject.errorRows),
      });
    }

    // Cold: a fresh process per proof, the models alternating.
    for (let i = 0; i < coldProcesses; i++) {
      for (const r of results) {
        const cold = await runChild<ColdProve>('--prove', keysDir, r.subject.name);
        const expected = expectedSignals(r.model, r.subject.proveRows[0] as number[]);
        if (JSON.stringify(cold.publicSignals) !== JSON.stringify(expected)) {
          throw new Error(`${r.subject.name}: the cold proof's public signals differ from the TypeScript evaluation`);
        }
        r.coldProve.push(cold);
      }
    }
    for (const r of results) {
      const last = r.coldProve.at(-1) as ColdProve;
      writeFileSync(
        join(keysDir, `${r.subject.name}.proof.json`),
        JSON.stringify({ proof: last.proof, publicSignals: last.publicSignals }),
      );
    }
    for (let i = 0; i < coldProcesses; i++) {
      for (const r of results) {
        const cold = await runChild<ColdVerify>('--verify', keysDir, r.subject.name);
        if (!cold.ok) throw new Error(`${r.subject.name}: the cold verifier rejected a good proof`);
        r.coldVerify.push(cold);
      }
    }

    // Warm: this process (curve and workers built by the setup), one warm-up, then interleaved rounds.
    for (let round = -1; round < proofs; round++) {
      for (const r of round % 2 === 0 ? results : [...results].reverse()) {
        const rows = r.subject.proveRows;
        const row = rows[(round + 1) % rows.length] as number[];
        const input = encodeInput(r.model, row);
        const [p, proveMs] = await timed(() => prove(r.circuit, r.keys, input));
        const [ok, verifyMs] = await timed(() => verifyProof(r.keys.verificationKey, p.proof, p.publicSignals));
        const [, witnessMs] = await timed(() => computeWitness(r.circuit.wasm, input));
        if (!ok) throw new Error(`${r.subject.name}: a good proof did not verify`);
        if (JSON.stringify(p.publicSignals) !== JSON.stringify(expectedSignals(r.model, row))) {
          throw new Error(`${r.subject.name}: public signals differ from the TypeScript evaluation`);
        }
        if (round < 0) continue;
        r.warmProve.push(proveMs);
        r.verify.push(verifyMs);
        r.witness.push(witnessMs);
        r.proofJson = Buffer.byteLength(JSON.stringify(p.proof));
        r.proofRaw = proofBytes(p.proof);
        r.signalsJson = Buffer.byteLength(JSON.stringify(p.publicSignals));
        r.last = { proof: p.proof, publicSignals: p.publicSignals };
      }
    }

    try {
      await browserVerify(results, proofs);
    } catch (e) {
      for (const r of results) r.browserVerify = `failed: ${String(e).slice(0, 120)}`;
    }
    try {
      await onchainGas(results);
    } catch (e) {
      console.warn(`on-chain measurement failed: ${String(e).slice(0, 300)}`);
    }
    const mlp = results.find((r) => r.subject.name === 'mlp') as Result;
    const universal: Universal[] = [];
    for (const system of ['plonk', 'fflonk'] as const)
      universal.push(await universalSystem(system, mlp, Math.min(proofs, 3)));

    report(results, universal, { proofs, coldProcesses, compiler, circomInitMs, load0 });
  } finally {
    await releaseCurves();
    rmSync(keysDir, { recursive: true, force: true });
  }
}

function report(
  results: Result[],
  universal: Universal[],
  run: { proofs: number; coldProcesses: number; compiler: string; circomInitMs: number; load0: number },
): void {
  const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`);
  const med = (f: (r: Result) => number[]) => results.map((r) => ms(median(f(r))));
  const range = (xs: number[]) => `${ms(median(xs))} (${ms(Math.min(...xs))}–${ms(Math.max(...xs))})`;
  const mb = (n: number) => `${(n / 2 ** 20).toFixed(2)} MB`;
  const rows: [string, string[]][] = [
    ['ONNX parameters (weights + biases)', results.map((r) => r.model.report.parameters.toLocaleString('en-US'))],
    ['constraints (`--O2`; = predicted)', results.map((r) => r.circuit.info.constraints.toLocaleString('en-US'))],
    ['constraints per parameter', results.map((r) => r.model.report.constraintsPerParameter.toFixed(3))],
    [
      'public signals (out + in)',
      results.map((r) => `${r.circuit.info.publicOutputs} + ${r.circuit.info.publicInputs}`),
    ],
    [
      'fixed point s / b (accumulator bits)',
      results.map(
        (r) => `${r.model.params.fracBits} / ${r.model.params.valueBits} (${r.model.report.accumulatorBits})`,
      ),
    ],
    ['compile: `compileModel`', results.map((r) => ms(r.compileModelMs))],
    ['compile: `compileCircom` --O2', results.map((r) => ms(r.circomMs))],
    ['compile: total', results.map((r) => ms(r.compileModelMs + r.circomMs))],
    [
      'local-dev ptau, generated once',
      results.map((r) => `2^${r.ptau.power}: ${r.ptau.ms === null ? '?' : ms(r.ptau.ms)} (${r.ptau.when})`),
    ],
    ['setup, ptau cached (zkey new + contribute + verify)', results.map((r) => ms(r.setupMs))],
    ['setup including the ptau generation', results.map((r) => (r.ptau.ms === null ? '?' : ms(r.ptau.ms + r.setupMs)))],
    ['zkey', results.map((r) => mb(r.keys.zkey.length))],
    [
      `prove, cold: fresh process start → proof (median of ${run.coldProcesses})`,
      med((r) => r.coldProve.map((c) => c.total)),
    ],
    ['  of which Node boot + imports', med((r) => r.coldProve.map((c) => c.boot))],
    ['  of which keys from cache (read, SHA-256)', med((r) => r.coldProve.map((c) => c.load))],
    ['  of which first proof (snarkjs load, curve, witness, prove)', med((r) => r.coldProve.map((c) => c.prove))],
    [`prove, warm (median of ${run.proofs}, min–max)`, results.map((r) => range(r.warmProve))],
    ['  witness alone (`computeWitness`, median)', med((r) => r.witness)],
    [`verify, warm (median of ${run.proofs}, min–max)`, results.map((r) => range(r.verify))],
    [
      `verify, cold: fresh process start → verified (median of ${run.coldProcesses})`,
      med((r) => r.coldVerify.map((c) => c.total)),
    ],
    [
      'verify in Chromium: first call (curve set up) / warm (median, min–max)',
      results.map((r) =>
        typeof r.browserVerify === 'object'
          ? `${ms(r.browserVerify.first)} / ${range(r.browserVerify.warm)}`
          : (r.browserVerify ?? '?'),
      ),
    ],
    ['proof (JSON / raw affine points)', results.map((r) => `${r.proofJson} B / ${r.proofRaw} B`)],
    ['public signals (JSON)', results.map((r) => `${r.signalsJson} B`)],
    [
      'Solidity verifier runtime code',
      results.map((r) => (r.onchain ? `${r.onchain.codeBytes.toLocaleString('en-US')} B` : '?')),
    ],
    ['verifier deployment gas', results.map((r) => gasCell(r.onchain?.deployGas, r.onchain?.note))],
    [
      '`verifyProof` as a transaction, gas (21,000 intrinsic incl.)',
      results.map((r) => gasCell(r.onchain?.verifyGas, r.onchain?.note)),
    ],
    [
      'max \\|fixed − float\\| of the outputs (relative)',
      results.map(
        (r) =>
          `${r.error.maxAbs.toExponential(1)} (${r.error.maxRelative.toExponential(1)}) on ${r.subject.errorLabel}`,
      ),
    ],
    ['argmax, fixed = float', results.map((r) => `${r.error.agree}/${r.error.rows}`)],
  ];
  const cores = availableParallelism();
  console.log(
    `zk mode (Groth16, snarkjs, BN254) — ${run.compiler}, node ${process.version}, ${cores} cores, ` +
      `load average ${run.load0.toFixed(1)} at start, ${(loadavg()[0] as number).toFixed(1)} at end`,
  );
  console.log(`| | ${results.map((r) => r.subject.label).join(' | ')} |`);
  console.log(`|---|${results.map(() => '---:').join('|')}|`);
  for (const [name, cells] of rows) console.log(`| ${name} | ${cells.join(' | ')} |`);
  console.log(
    `\ncircom2's WebAssembly compiled once per process before the first circuit: ${ms(run.circomInitMs)} (not in the rows above). ` +
      `ptau cache: ${PTAU_CACHE} (VERITY_BENCH_ZK_CACHE; delete it to time the generation again). Every proof's public signals = the TypeScript fixed-point evaluation.`,
  );
  const mlp = results.find((r) => r.subject.name === 'mlp') as Result;
  console.log(
    `\n${mlp.subject.label} under three proof systems (snarkjs), same process, same rows, each proof verified:`,
  );
  console.log('| | Groth16 | PLONK | FFLONK |');
  console.log('|---|---:|---:|---:|');
  const u = (f: (x: Universal) => string) => universal.map((x) => (x.error ? `failed: ${x.error}` : f(x)));
  const uRows: [string, string[]][] = [
    [
      'circuit',
      [
        `--O2: ${mlp.circuit.info.constraints.toLocaleString('en-US')} R1CS constraints`,
        ...universal.map(
          (x) =>
            `--O1: ${x.r1csConstraints.toLocaleString('en-US')} R1CS constraints${x.gates === undefined ? '' : `, ${x.gates.toLocaleString('en-US')} PLONK gates`}`,
        ),
      ],
    ],
    ['powers of tau used', [`2^${mlp.ptau.power}`, ...u((x) => `2^${x.ptauPower}`)]],
    ['setup (ptau cached)', [ms(mlp.setupMs), ...u((x) => ms(x.setupMs))]],
    ['zkey', [mb(mlp.keys.zkey.length), ...u((x) => mb(x.zkeyBytes))]],
    ['prove, warm (median)', [ms(median(mlp.warmProve)), ...u((x) => `${ms(median(x.prove))} (${x.prove.length})`)]],
    ['verify (median)', [ms(median(mlp.verify)), ...u((x) => ms(median(x.verify)))]],
    ['proof (JSON)', [`${mlp.proofJson} B`, ...u((x) => `${x.proofJson} B`)]],
    ['keys derived without a phase 2', ['no: needs a circuit-specific ceremony', 'yes', 'yes']],
  ];
  for (const [name, cells] of uRows) console.log(`| ${name} | ${cells.join(' | ')} |`);
  const cnn = results.find((r) => r.subject.name === 'cnn');
  if (cnn) {
    const cnnWarm = median(cnn.warmProve);
    console.log(
      `target (issue 11, the CNN): prove ≤ 30 s warm: ${ms(cnnWarm)}, ${cnnWarm <= 30_000 ? 'met' : 'MISSED'}`,
    );
  }
  const warm = median(mlp.warmProve);
  const verify = median(mlp.verify);
  const mark = (ok: boolean) => (ok ? 'met' : 'MISSED');
  console.log(
    `target (docs/design.md §5, the ~5k-parameter MLP): prove ≤ 1 s warm on 2 cores: ${ms(warm)}, ${mark(warm <= 1000)}; ` +
      `verify ≤ 20 ms: ${ms(verify)}, ${mark(verify <= 20)}; proof ≤ 1 KB: ${mlp.proofJson} B JSON, ${mark(mlp.proofJson <= 1024)}`,
  );
}

function gasCell(gas: bigint | null | undefined, note?: string): string {
  if (gas === undefined) return '?';
  if (gas === null) return note ?? 'n/a';
  return gas.toLocaleString('en-US');
}

/** EIP-170: the most runtime code a contract may have on Ethereum mainnet. */
const EIP170_CODE_LIMIT = 24_576;

/**
 * Each model's last proof verified in Debian's Chromium (headless, through Playwright) with
 * snarkjs' browser build: the page's first call (it sets the curve up), then `count` warm calls,
 * each checked true. Without a browser binary each model says so.
 */
async function browserVerify(results: Result[], count: number): Promise<void> {
  const executablePath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(executablePath)) {
    for (const r of results) r.browserVerify = `no Chromium at ${executablePath}`;
    return;
  }
  const { chromium } = await import('playwright');
  const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    // The package's `umd` export (its subpaths are not exported): next to its Node entry, main.js.
    const umd = fileURLToPath(new URL('build/snarkjs.min.js', import.meta.resolve('snarkjs')));
    await page.addScriptTag({ path: umd });
    for (const r of results) {
      const last = r.last as NonNullable<Result['last']>;
      const times = await page.evaluate(
        async ({ vk, proof, signals, calls }) => {
          // biome-ignore lint/suspicious/noExplicitAny: snarkjs' browser build is an untyped global
          const snarkjs = (globalThis as any).snarkjs;
          const out: number[] = [];
          for (let i = 0; i <= calls; i++) {
            const t = performance.now();
            if ((await snarkjs.groth16.verify(vk, signals, proof)) !== true) throw new Error('rejected a good proof');
            out.push(performance.now() - t);
          }
          return out;
        },
        { vk: r.keys.verificationKey, proof: last.proof, signals: last.publicSignals, calls: count },
      );
      r.browserVerify = { first: times[0] as number, warm: times.slice(1) };
    }
  } finally {
    await browser.close();
  }
}

/**
 * Each model's Groth16 verifier (packages/contracts `zkVerifierCreationCode`: `Groth16Verifier`'s
 * runtime code followed by the key's encoding, what `ZkVerifierRegistry` accepts) on a fresh anvil: deployment gas, and `verifyProof` of its last warm proof sent as a transaction
 * (after an `eth_call` answered true). A verifier over EIP-170's code limit is reported, not deployed.
 */
async function onchainGas(results: Result[]): Promise<void> {
  const { startAnvil } = await import('@verity/contracts/node');
  const { zkVerifierAbi, zkVerifierCreationCode } = await import('@verity/contracts');
  const viem = await import('viem');
  const { privateKeyToAccount } = await import('viem/accounts');
  const anvil = await startAnvil();
  try {
    const chain = anvil.chain;
    const transport = viem.http(anvil.rpcUrl);
    const publicClient = viem.createPublicClient({ chain, transport, pollingInterval: 20 });
    const account = privateKeyToAccount(anvil.privateKeys[0] as `0x${string}`);
    const wallet = viem.createWalletClient({ account, chain, transport });
    for (const r of results) {
      const abi = zkVerifierAbi as Abi;
      let address: Address;
      let deployGas: bigint;
      let creationBytes = 0;
      try {
        const bytecode = zkVerifierCreationCode(r.keys.verificationKey);
        creationBytes = (bytecode.length - 2) / 2;
        const deployed = await publicClient.waitForTransactionReceipt({
          hash: await wallet.sendTransaction({ data: bytecode, account, chain }),
        });
        if (deployed.status !== 'success') throw new Error('deployment reverted');
        address = deployed.contractAddress as Address;
        deployGas = deployed.gasUsed;
      } catch (e) {
        const over =
          creationBytes > EIP170_CODE_LIMIT
            ? `, creation code ${creationBytes} B > EIP-170's ${EIP170_CODE_LIMIT}`
            : '';
        r.onchain = { codeBytes: creationBytes, deployGas: null, verifyGas: null, note: `not deployable${over}` };
        console.warn(`${r.subject.name}: verifier deployment failed: ${String(e).slice(0, 200)}`);
        continue;
      }
      const code = await publicClient.getCode({ address });
      const codeBytes = ((code?.length ?? 2) - 2) / 2;
      const last = r.last as NonNullable<Result['last']>;
      const args = solidityCallArgs(last.proof, last.publicSignals) as unknown as unknown[];
      const data = viem.encodeFunctionData({ abi, functionName: 'verifyProof', args });
      const answer = await publicClient.call({ to: address, data, gas: 25_000_000n });
      const ok = viem.decodeFunctionResult({ abi, functionName: 'verifyProof', data: answer.data ?? '0x' });
      if (ok !== true) throw new Error(`${r.subject.name}: the Solidity verifier rejected a good proof`);
      const sent = await wallet.sendTransaction({ to: address, data, gas: 25_000_000n, account, chain });
      const receipt = await publicClient.waitForTransactionReceipt({ hash: sent });
      r.onchain = { codeBytes, deployGas, verifyGas: receipt.gasUsed };
    }
  } finally {
    await anvil.stop();
  }
}

/** The smallest cached local-dev ptau of at least 2^15 (FFLONK needs it for the MLP; PLONK takes the same file). */
async function universalPtau(): Promise<{ path: string; power: number }> {
  const { dir, ptau } = await ptauFor(15);
  return { path: join(dir, `local-dev-bn128-2p${ptau.power}.ptau`), power: ptau.power };
}

/**
 * PLONK or FFLONK (snarkjs 0.7) on `r`'s model: the circuit compiled at `--O1` (at `--O2` circom
 * folds the linear constraints into long combinations, each term of which becomes a PLONK
 * addition gate: 19,184 gates for the MLP instead of 11,264, and twice the proving time), setup
 * from the ptau (no phase 2), `count` proofs (witness + prove) of the subject's rows, each verified
 * and its public signals checked.
 */
async function universalSystem(system: 'plonk' | 'fflonk', r: Result, count: number): Promise<Universal> {
  const name = 'snarkjs';
  // biome-ignore lint/suspicious/noExplicitAny: snarkjs is untyped; its typings live in @verity/zk
  const snarkjs: any = await import(name);
  const { path, power } = await universalPtau();
  const circuit = await compileCircom(r.model.circom, { optimization: 1 });
  const out: Universal = {
    system,
    r1csConstraints: circuit.info.constraints,
    ptauPower: power,
    setupMs: 0,
    zkeyBytes: 0,
    prove: [],
    verify: [],
    proofJson: 0,
  };
  const quiet = () => {};
  const logger = {
    info(message: unknown) {
      const gates = /^Plonk constraints: (\d+)/.exec(String(message));
      if (gates) out.gates = Number(gates[1]);
    },
    warn: quiet,
    error: quiet,
    debug: quiet,
  };
  const silent = { info: quiet, warn: quiet, error: quiet, debug: quiet };
  try {
    const zkey: { type: 'mem'; data?: Uint8Array } = { type: 'mem' };
    const t0 = performance.now();
    await snarkjs[system].setup({ type: 'mem', data: circuit.r1cs }, path, zkey, logger);
    out.setupMs = performance.now() - t0;
    const data = zkey.data as Uint8Array;
    out.zkeyBytes = data.length;
    const vk = await snarkjs.zKey.exportVerificationKey({ type: 'mem', data });
    for (let i = -1; i < count; i++) {
      const row = r.subject.proveRows[(i + 1) % r.subject.proveRows.length] as number[];
      const [p, proveMs] = await timed(async () => {
        const wtns: { type: 'mem'; data?: Uint8Array } = { type: 'mem' };
        await snarkjs.wtns.calculate({ in: encodeSignals(encodeInput(r.model, row)) }, circuit.wasm, wtns);
        return snarkjs[system].prove({ type: 'mem', data }, wtns, silent);
      });
      const [ok, verifyMs] = await timed(() => snarkjs[system].verify(vk, p.publicSignals, p.proof, silent));
      if (ok !== true) throw new Error('a good proof did not verify');
      if (JSON.stringify(p.publicSignals) !== JSON.stringify(expectedSignals(r.model, row))) {
        throw new Error('public signals differ from the TypeScript evaluation');
      }
      if (i < 0) continue;
      out.prove.push(proveMs);
      out.verify.push(verifyMs);
      out.proofJson = Buffer.byteLength(JSON.stringify(p.proof));
    }
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    // FFLONK's setup needs 9 × its domain (+ 18) G1 powers: a 2^k ptau has 2^(k+1) − 1.
    out.error = /Section 2 too small/.test(message)
      ? `2^${power} ptau refused ("Section 2 too small": FFLONK needs 9 × its domain in G1 powers)`
      : message.slice(0, 120);
  }
  return out;
}

if (process.argv[2] === '--prove' || process.argv[2] === '--verify') {
  const [mode, dir, name] = process.argv.slice(2) as [string, string, string];
  await (mode === '--prove' ? proveChild(dir, name) : verifyChild(dir, name));
} else {
  await main();
}
