/**
 * `@verity/zk`: Verity's `zk` mode (docs/design.md §2.6) — ONNX models compiled to fixed-point circom
 * circuits, compiled with circom2 (`--O2`), proved and verified with snarkjs Groth16. Node only.
 *
 * The pipeline, each step a function:
 * 1. {@link compileModel}: ONNX bytes (+ sample inputs) → IR → fixed point → circom source, report.
 * 2. {@link compileCircom}: circom source → R1CS, witness wasm, R1CS hash (the binding to the model).
 * 3. {@link setupCircuit}: local-dev powers of tau (cached) → zkey, verification key (push time);
 *    or keys no single party controls: {@link runPhase2} (a multi-party phase 2 recorded on
 *    chain, over a phase-1 ceremony's ptau, {@link runPhase1}) checked by {@link verifyTranscript}.
 * 4. {@link prove}: quantized input ({@link encodeInput}) → Groth16 proof + public signals.
 * 5. {@link verifyProof} + {@link decodePublicSignals}: check, then read outputs and the head.
 *
 * Call {@link releaseCurves} when done with proving/verifying so the process can exit.
 *
 * @example
 * ```ts
 * const model = compileModel(onnxBytes, { samples });
 * const circuit = await compileCircom(model.circom);
 * const keys = await setupCircuit(circuit, { cacheDir: '.verity/zk' });
 * const { proof, publicSignals, setup } = await prove(circuit, keys, encodeInput(model, row)); // setup: 'local-dev'
 * await verifyProof(keys.verificationKey, proof, publicSignals); // true
 * decodePublicSignals(model.io, publicSignals).head.label; // [2]
 * await releaseCurves();
 * ```
 *
 * @packageDocumentation
 */
export {
  BEACON_ITERATIONS_EXP,
  beaconPtau,
  beaconZkey,
  type CeremonyKind,
  type CeremonyRecordLike,
  type CeremonyStep,
  type ContributeOptions,
  contributePtau,
  contributeZkey,
  contributionName,
  type Hash32,
  newPtau,
  newZkey,
  type Phase2Inputs,
  phase1Subject,
  phase2Subject,
  preparePtau,
  ptauInitialHash,
  ptauTranscript,
  type Transcript,
  type TranscriptStep,
  verifyTranscript,
  zkeyTranscript,
} from './ceremony.js';
export {
  type CeremonyChain,
  type CeremonyParty,
  type CeremonyResult,
  localParty,
  type RunCeremonyOptions,
  runCeremony,
  runPhase1,
  runPhase2,
} from './ceremony-run.js';
export {
  type CircuitArtifacts,
  type CompileCircomOptions,
  circomCompilerVersion,
  compileCircom,
} from './circom-compile.js';
export { type CircomHeader, generateCircom } from './circom-gen.js';
export {
  type CircuitIo,
  type CircuitOutput,
  type CompiledModel,
  type CompileOptions,
  type CompileReport,
  compileModel,
  type DecodedInference,
  decodePublicSignals,
  type ErrorReport,
  encodeInput,
  evaluateModel,
  GENERATOR,
  samplesFromJson,
} from './compile-model.js';
export { decodeSignal, decodeSignals, encodeSignal, encodeSignals, FIELD_PRIME } from './field.js';
export {
  chooseFixedPoint,
  dequantize,
  evaluateFixed,
  type FixedGraph,
  type FixedOp,
  type FixedPointParams,
  quantize,
  quantizeGraph,
  quantizeInput,
  rescale,
  type ScaleChoice,
  type ScaleOptions,
} from './fixed-point.js';
export { applyHead, argMax, evaluateFloat } from './float-eval.js';
export { GADGETS } from './gadgets.js';
export type { HeadOp, IrGraph, IrOp, IrTensor } from './ir.js';
export { SUPPORTED_OPS } from './ir.js';
export { type SolidityCallArgs, solidityCallArgs } from './onchain.js';
export { importOnnx, type UnsupportedNode } from './onnx-import.js';
export {
  computeWitness,
  type Groth16Proof,
  type InferenceProof,
  prove,
  proveWitness,
  verifyProof,
  type ZkProof,
} from './prove.js';
export {
  checkWitness,
  encodeWtns,
  parseR1cs,
  parseSym,
  parseWtns,
  type R1cs,
  type R1csInfo,
  r1csInfo,
  type WitnessCheck,
} from './r1cs.js';
export {
  type CircuitKeys,
  localPowersOfTau,
  ptauPowerFor,
  type SetupKind,
  type SetupOptions,
  setupCircuit,
  type VerificationKey,
  verifyPowersOfTau,
  verifyZkey,
  zkeyVerificationKey,
} from './setup.js';
export { releaseCurves } from './snarkjs.js';
