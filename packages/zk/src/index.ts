/**
 * `@verity/zk`: Verity's `zk` mode (issue 6) — ONNX models compiled to fixed-point circom
 * circuits, proved with Groth16. Under construction.
 *
 * @packageDocumentation
 */
export {};
