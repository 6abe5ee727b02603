/**
 * A model file coming in (an upload, or a replica from a peer): streamed to a temporary directory
 * while it is hashed (UnixFS, 1 MiB raw leaves: docs/protocol.md §3.3) under the size limits, its
 * dag-pb nodes written beside it; then described by the caller's parser, and its manifest built,
 * validated and (optionally) signed. Nothing here touches the store's committed files
 * (model-store.ts commits).
 */
import { hash } from 'node:crypto';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CODEC_DAG_PB,
  createUnixfsHasher,
  fail,
  isVerityError,
  MANIFEST_SCHEMA,
  type Manifest,
  manifestCid,
  parseCid,
  parseManifest,
  type UnixfsBlock,
  VerityError,
  verifySignedManifest,
} from '@verity/protocol';
import { writeAll } from './atomic-file.js';
import type { ArtifactDescription, PutArtifactOptions } from './model-store.js';
import { isPlainObject, type Leaf } from './store-layout.js';

/** A placeholder artifact (the empty file) used to validate options before any byte is read. */
export const PROBE_ARTIFACT = { cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', size: 0 };
export const PROBE_CREATED_AT = '2000-01-01T00:00:00Z';

/** A file received into a temporary directory, hashed. */
export interface Received {
  cid: string;
  size: number;
  leaves: Leaf[];
  nodes: string[];
  /** Temporary directory holding the dag-pb nodes, one file per CID. */
  nodesDir: string;
  /** The temporary file. */
  file: string;
}

/** A manifest built for an upload: its CID and, when signed, the checked signature. */
export interface Prepared {
  manifest: Manifest;
  cid: string;
  signature?: string;
}

export function checkSize(value: unknown, name: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail('INVALID_ARGUMENT', `${name} must be a non-negative integer`, { [name]: String(value) });
  }
}

/** Builds and validates a manifest from upload options and what `describe` found. */
export function buildManifest(
  o: PutArtifactOptions,
  artifact: { cid: string; size: number },
  described: ArtifactDescription,
  createdAt: string,
): Manifest {
  const m: Record<string, unknown> = {
    schema: MANIFEST_SCHEMA,
    name: o.name,
    version: o.version,
    format: o.format,
    artifact,
    inputs: described.inputs,
    outputs: described.outputs,
    profiles: o.profiles,
    publisher: o.publisher,
    createdAt,
  };
  if (o.license !== undefined) m.license = o.license;
  if (o.description !== undefined) m.description = o.description;
  if (described.metadata !== undefined) m.metadata = described.metadata;
  return parseManifest(m);
}

/** The manifest, its CID and (with `sign`) a checked signature. */
export function prepare(o: PutArtifactOptions, received: Received, described: ArtifactDescription, createdAt: string) {
  let manifest: Manifest;
  try {
    manifest = buildManifest(o, { cid: received.cid, size: received.size }, described, createdAt);
  } catch (e) {
    // The options passed the same checks before the upload, so what fails here is what the file
    // describes (its tensor signatures or metadata): the model is not one Verity can serve.
    if (isVerityError(e, 'MANIFEST_INVALID')) {
      throw new VerityError('MODEL_INVALID', `the model's description is not a valid manifest: ${e.message}`, {
        details: e.details,
        cause: e,
      });
    }
    throw e;
  }
  const cid = manifestCid(manifest);
  const prepared: Prepared = { manifest, cid };
  if (o.sign !== undefined) {
    const signature = o.sign(cid);
    if (typeof signature !== 'string') fail('MANIFEST_SIGNATURE_INVALID', 'sign() must return a 0x-hex signature');
    verifySignedManifest({ manifest, signature });
    prepared.signature = signature.toLowerCase();
  }
  return prepared;
}

/** What the caller's parser says of the file; a parser error is `MODEL_INVALID`. */
export async function describeArtifact(
  describe: PutArtifactOptions['describe'],
  path: string,
): Promise<ArtifactDescription> {
  let d: unknown;
  try {
    d = await describe(path);
  } catch (e) {
    if (isVerityError(e)) throw e;
    throw new VerityError('MODEL_INVALID', 'the model file could not be read', {
      details: { reason: e instanceof Error ? e.message : String(e) },
      cause: e,
    });
  }
  if (!isPlainObject(d)) return fail('MODEL_INVALID', 'the model file has no description');
  return d as unknown as ArtifactDescription;
}

/** Reads the upload into `work`, hashing it and enforcing the size limits as it goes. */
export async function receiveArtifact(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  work: string,
  o: Pick<PutArtifactOptions, 'format' | 'maxSize' | 'declaredSize'>,
): Promise<Received> {
  const nodesDir = join(work, 'blocks');
  await mkdir(nodesDir);
  const file = join(work, `model.${o.format}`);
  const leaves: Leaf[] = [];
  const nodes: string[] = [];
  const written = new Set<string>();
  const pending: UnixfsBlock[] = [];
  let leafOffset = 0;
  // Raw leaves are ranges of the file being written: only their place is kept. dag-pb nodes
  // wait in `pending` until the current piece has been written (onBlock is synchronous).
  const hasher = createUnixfsHasher({
    // node:crypto: ~10× the portable SHA-256, the same digests (the store hashes every byte).
    sha256: (bytes) => hash('sha256', bytes, 'buffer'),
    onBlock: (b) => {
      if (parseCid(b.cid).codec === CODEC_DAG_PB) {
        pending.push(b);
      } else {
        leaves.push({ cid: b.cid, offset: leafOffset, length: b.bytes.length });
        leafOffset += b.bytes.length;
      }
    },
  });
  const flushNodes = async (): Promise<void> => {
    for (let b = pending.shift(); b !== undefined; b = pending.shift()) {
      if (written.has(b.cid)) continue; // the same subtree twice in one file
      written.add(b.cid);
      nodes.push(b.cid);
      const handle = await open(join(nodesDir, b.cid), 'wx', 0o644);
      try {
        await writeAll(handle, b.bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
  };

  const handle = await open(file, 'wx', 0o644);
  let size = 0;
  let cid: string;
  try {
    for await (const piece of source) {
      if (!(piece instanceof Uint8Array)) fail('INVALID_ARGUMENT', 'an upload is a stream of Uint8Array pieces');
      size += piece.length;
      // Checked before the piece is used: leaving the loop stops reading the source at once.
      if (o.declaredSize !== undefined && size > o.declaredSize) {
        fail('UPLOAD_SIZE_MISMATCH', 'the upload is longer than its declared size', {
          declaredSize: o.declaredSize,
          received: size,
        });
      }
      if (size > o.maxSize) {
        fail('MODEL_TOO_LARGE', 'the model is larger than the node accepts', { maxSize: o.maxSize });
      }
      hasher.update(piece);
      await writeAll(handle, piece);
      await flushNodes();
    }
    if (o.declaredSize !== undefined && size !== o.declaredSize) {
      fail('UPLOAD_SIZE_MISMATCH', 'the upload is shorter than its declared size', {
        declaredSize: o.declaredSize,
        received: size,
      });
    }
    cid = hasher.digest().cid;
    await flushNodes();
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { cid, size, leaves, nodes, nodesDir, file };
}
