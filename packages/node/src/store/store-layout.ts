/**
 * The model store's files on disk (layout and reasons: model-store.ts): the formats of
 * `names.json`, `manifests/<cid>.json` and `leaves/<cid>.json`, written as canonical JSON and read
 * back, checked, when the store opens. A file that contradicts itself or the others is corrupt
 * (`INTERNAL`): the store refuses to open rather than serve wrong data.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CODEC_DAG_PB,
  CODEC_JSON,
  CODEC_RAW,
  canonicalJsonBytes,
  isCid,
  type Manifest,
  manifestBytes,
  manifestCid,
  parseCid,
  parseManifest,
  VerityError,
} from '@verity/protocol';
import { isModelName, isModelVersion } from './model-ref.js';

export const NAMES_FILE = 'names.json';
const NAMES_FORMAT = 1;
const SIGNATURE_RE = /^0x[0-9a-f]{130}$/;

/** A raw leaf of an artifact: its CID and the byte range of the artifact file it is. */
export interface Leaf {
  cid: string;
  offset: number;
  length: number;
}

/** A stored artifact: its file, its leaves, its dag-pb nodes. */
export interface ArtifactEntry {
  cid: string;
  size: number;
  path: string;
  leaves: Leaf[];
  /** The artifact's dag-pb nodes, each once. */
  nodes: string[];
}

/** `INTERNAL`: the store's files contradict each other. */
export function corrupt(message: string, details: Record<string, unknown>, cause?: unknown): never {
  throw new VerityError('INTERNAL', `model store is corrupt: ${message}`, { details, cause });
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === code;
}

/** A manifest file's bytes: the manifest's canonical bytes, or `{ manifest, signature }` when signed. */
export function manifestFileBytes(manifest: Manifest, signature: string | undefined): Uint8Array {
  return signature === undefined ? manifestBytes(manifest) : canonicalJsonBytes({ manifest, signature });
}

/** A leaf index file's bytes. */
export function leafIndexBytes(a: ArtifactEntry): Uint8Array {
  return canonicalJsonBytes({
    artifact: a.cid,
    size: a.size,
    leaves: a.leaves.map((l) => [l.cid, l.offset, l.length]),
    nodes: a.nodes,
  });
}

/** names.json's bytes: name@version → manifest CID, and the replicas. */
export function namesFileBytes(names: Map<string, string>, replicas: Set<string>): Uint8Array {
  const models: Record<string, string> = {};
  for (const [k, v] of names) models[k] = v;
  const file = { version: NAMES_FORMAT, models, ...(replicas.size === 0 ? {} : { replicas: [...replicas].sort() }) };
  return canonicalJsonBytes(file);
}

/** names.json (none: an empty store), checked: name@version keys, manifest CIDs. */
export async function readNames(namesPath: string): Promise<{ names: Map<string, string>; replicas: Set<string> }> {
  let text: string;
  try {
    text = await readFile(namesPath, 'utf8');
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return { names: new Map(), replicas: new Set() };
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return corrupt('names.json is not JSON', { path: namesPath }, e);
  }
  if (!isPlainObject(json) || json.version !== NAMES_FORMAT || !isPlainObject(json.models)) {
    return corrupt('names.json has an unknown format', { path: namesPath });
  }
  const names = new Map<string, string>();
  for (const [key, cid] of Object.entries(json.models)) {
    const at = key.indexOf('@');
    if (
      !isModelName(key.slice(0, at)) ||
      !isModelVersion(key.slice(at + 1)) ||
      typeof cid !== 'string' ||
      !isCid(cid)
    ) {
      return corrupt('bad names.json entry', { key });
    }
    if (parseCid(cid).codec !== CODEC_JSON) corrupt('names.json entry is not a manifest CID', { key });
    names.set(key, cid);
  }
  // `replicas` (optional: stores written before it existed have none).
  const replicas = new Set<string>();
  if (json.replicas !== undefined) {
    if (!Array.isArray(json.replicas)) return corrupt('names.json replicas is not a list', { path: namesPath });
    for (const cid of json.replicas as unknown[]) {
      if (typeof cid !== 'string' || !isCid(cid) || parseCid(cid).codec !== CODEC_JSON) {
        return corrupt('bad names.json replica', { cid: String(cid) });
      }
      replicas.add(cid);
    }
  }
  return { names, replicas };
}

/**
 * The manifest file of `cid` in `manifestsDir`: the manifest, and the publisher's signature when
 * stored signed. `INTERNAL` (corrupt) when unreadable or not of that CID.
 */
export async function readManifestFile(
  manifestsDir: string,
  cid: string,
): Promise<{ manifest: Manifest; signature: string | undefined }> {
  const path = join(manifestsDir, `${cid}.json`);
  let manifest: Manifest;
  let signature: string | undefined;
  try {
    const json: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (isPlainObject(json) && Object.hasOwn(json, 'signature')) {
      manifest = parseManifest(json.manifest);
      if (typeof json.signature !== 'string' || !SIGNATURE_RE.test(json.signature)) throw new Error('bad signature');
      signature = json.signature;
    } else {
      manifest = parseManifest(json);
    }
  } catch (e) {
    return corrupt('unreadable manifest', { cid }, e);
  }
  if (manifestCid(manifest) !== cid) corrupt('manifest does not match its CID', { cid });
  return { manifest, signature };
}

/**
 * The leaf index of artifact `cid` (in `leavesDir`), checked against itself and the artifact file
 * (in `artifactsDir`): leaves that tile the file, dag-pb node CIDs, the file's size.
 */
export async function readLeafIndex(leavesDir: string, artifactsDir: string, cid: string): Promise<ArtifactEntry> {
  const path = join(artifactsDir, cid);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(join(leavesDir, `${cid}.json`), 'utf8'));
  } catch (e) {
    return corrupt('unreadable leaf index', { cid }, e);
  }
  const o = isPlainObject(json) ? json : {};
  const { size } = o;
  if (o.artifact !== cid || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    return corrupt('bad leaf index', { cid });
  }
  if (!Array.isArray(o.leaves) || !Array.isArray(o.nodes)) return corrupt('bad leaf index', { cid });
  const leaves: Leaf[] = [];
  let offset = 0;
  for (const l of o.leaves as unknown[]) {
    const [leafCid, leafOffset, length] = Array.isArray(l) ? l : [];
    if (typeof leafCid !== 'string' || !isCid(leafCid) || parseCid(leafCid).codec !== CODEC_RAW) {
      return corrupt('bad leaf in leaf index', { cid });
    }
    if (leafOffset !== offset || typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
      return corrupt('leaves do not tile the file', { cid });
    }
    leaves.push({ cid: leafCid, offset, length });
    offset += length;
  }
  if (offset !== size || leaves.length === 0) corrupt('leaves do not cover the file', { cid });
  const nodes: string[] = [];
  for (const n of o.nodes as unknown[]) {
    if (typeof n !== 'string' || !isCid(n) || parseCid(n).codec !== CODEC_DAG_PB) {
      return corrupt('bad node in leaf index', { cid });
    }
    nodes.push(n);
  }
  let fileSize: number;
  try {
    fileSize = (await stat(path)).size;
  } catch (e) {
    return corrupt('artifact file missing', { cid }, e);
  }
  if (fileSize !== size) corrupt('artifact file has the wrong size', { cid, size, fileSize });
  return { cid, size, path, leaves, nodes };
}
