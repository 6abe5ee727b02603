/** Model references and version precedence live in the protocol core (the SDK resolves names too). */
export { compareVersions, isModelName, isModelVersion, type ModelRef, parseModelRef } from '@verity/protocol';
