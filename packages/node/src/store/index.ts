/**
 * The node's model store: model files by UnixFS CID, manifests by CID, names, raw blocks and CAR
 * streams for the trustless gateway routes. Layout and reasons: model-store.ts.
 */
export { CAR_CONTENT_TYPE, CAR_CONTENT_TYPE_DUPS } from '@verity/protocol';
export { compareVersions, isModelName, isModelVersion, type ModelRef, parseModelRef } from './model-ref.js';
export {
  type ArtifactDescription,
  type CarOptions,
  type ModelStore,
  type ModelStoreOptions,
  openModelStore,
  type PutArtifactOptions,
  type ReplicaOptions,
  type StoredModel,
} from './model-store.js';
export { type AuditPayload, auditPayload, openPayloadStore, type PayloadStore } from './payload-store.js';
