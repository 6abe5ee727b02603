/**
 * The node's model store (docs/design.md §3): model files by content, their manifests, and the names
 * that point at them, on local disk.
 *
 * Layout under the store directory, and why:
 *
 * ```
 * artifacts/<artifactCid>          each model file, whole, once
 * blocks/<cid>                     the dag-pb nodes of the files' UnixFS DAGs (a few KiB each)
 * leaves/<artifactCid>.json        leaf index: leaf CID → offset and length in the artifact file
 * manifests/<manifestCid>.json     a manifest: its canonical bytes, or {manifest, signature} when signed
 * names.json                       name@version → manifest CID, and the replicas' manifest CIDs:
 *                                  the one commit point of a model
 * tmp/                             uploads in progress and temporary files; emptied on open
 * ```
 *
 * - **Artifacts whole**: the runtimes load a model from a file path (GGUF loaders mmap the file),
 *   so each file is kept whole, exactly once, named by its UnixFS CID (docs/protocol.md §3.3).
 * - **Raw leaves are not copied**: a leaf is a 1 MiB range of the artifact file; the leaf index
 *   lets `getBlock` and CAR streams serve it from there, so a model takes its size on disk, not
 *   twice that. Only the dag-pb nodes (one per 174 MiB of file) are stored as blocks of their own.
 * - **Manifests by CID**: a manifest file's name is the CID of its canonical bytes, which the
 *   store computed itself; the signed form keeps the publisher's signature with it.
 * - **Replicas need not have a name**: a model copied from a peer is filed under its manifest's
 *   `name@version` only when the caller says the name is the registry's (`ReplicaOptions.named`);
 *   otherwise it is held by CID alone, listed in names.json's `replicas`, so that a manifest
 *   naming itself `iris@99.0.0` cannot shadow the real `iris` (issue 10). Replicas have quotas.
 * - **Names in one small file**: rewritten atomically, it is what makes a model appear. Every
 *   other file is written first, so a crash leaves at worst unreferenced files, which `open`
 *   removes; a half-written upload never appears.
 * - **Only computed CIDs become file names**: names, versions and every other untrusted text live
 *   inside JSON; the only path components are CIDs this store hashed itself (or parsed to their
 *   one canonical spelling and found in its own index).
 * - **Every write is atomic and durable**: temporary file in `tmp/` (same file system), fsync,
 *   rename into place, fsync of the directory (atomic-file.ts).
 *
 * In-memory indexes (names, manifests, leaf locations, dag-pb nodes) are rebuilt from these files
 * when the store is opened. One process owns a store directory at a time.
 *
 * The code, by concern: this file, the indexes and the commits (what makes a model appear);
 * `store-layout.ts`, the files' formats, read back and checked at open; `upload.ts`, a file coming
 * in (hashed under the size limits) and its manifest; `blocks.ts`, blocks checked against their
 * CIDs and CAR streams; `atomic-file.ts`, atomic durable writes.
 */
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import {
  CODEC_DAG_PB,
  CODEC_JSON,
  fail,
  type Manifest,
  manifestBytes,
  manifestCid,
  parseCid,
  type SignedManifest,
  type TensorSignature,
  verifySignedManifest,
} from '@verity/protocol';
import { fsyncDir, tempName, writeFileAtomic } from './atomic-file.js';
import { carStream, checkedBlock, readRange } from './blocks.js';
import { compareVersions, isModelName, isModelVersion, parseModelRef } from './model-ref.js';
import {
  type ArtifactEntry,
  corrupt,
  leafIndexBytes,
  manifestFileBytes,
  NAMES_FILE,
  namesFileBytes,
  readLeafIndex,
  readManifestFile,
  readNames,
} from './store-layout.js';
import {
  buildManifest,
  checkSize,
  describeArtifact,
  PROBE_ARTIFACT,
  PROBE_CREATED_AT,
  type Prepared,
  prepare,
  type Received,
  receiveArtifact,
} from './upload.js';

/** A model the store holds: its manifest, the manifest's CID, and where the model file is. */
export interface StoredModel {
  manifest: Manifest;
  manifestCid: string;
  /** The publisher's EIP-191 signature over `manifestCid` (docs/protocol.md §4.3), when signed. */
  signature?: string;
  /** Absolute path of the model file, for the runtimes. Never write to it. */
  artifactPath: string;
}

/** What a model file says about itself, as the caller's ONNX or GGUF parser reads it. */
export interface ArtifactDescription {
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  metadata?: Record<string, string>;
}

/** Options for {@link ModelStore.putArtifact}. */
export interface PutArtifactOptions {
  name: string;
  version: string;
  format: 'onnx' | 'gguf';
  /** The size the uploader announced (e.g. Content-Length); the stream must have exactly this many bytes. */
  declaredSize?: number;
  /** Largest file accepted; reading stops at the first byte beyond it. */
  maxSize: number;
  /**
   * Inspects the complete file at `path` (still in the temporary directory). Throws
   * `MODEL_INVALID` for a file that is not a valid model; any other VerityError passes through,
   * and a non-Verity error is reported as `MODEL_INVALID` with the error as `cause`.
   */
  describe: (path: string) => Promise<ArtifactDescription>;
  /** EIP-55 address of the publisher. */
  publisher: string;
  profiles: string[];
  license?: string;
  description?: string;
  /** Signs the manifest CID with the publisher's key (EIP-191); the signature is checked before it is stored. */
  sign?: (cid: string) => string;
}

/** Options for {@link ModelStore.putReplica}. */
export interface ReplicaOptions {
  /** Largest artifact accepted, bytes. */
  maxSize: number;
  /**
   * File the replica under its manifest's `name@version` (say so only when the registry maps that
   * name to this manifest CID). Default false: held by manifest CID alone. A name already taken
   * here by another manifest leaves the replica unnamed too (never `MODEL_CONFLICT`).
   */
  named?: boolean;
  /** Most replicas held (this one included), and most artifact bytes they take together. */
  maxReplicas?: number;
  maxReplicaBytes?: number;
}

/** Options for {@link ModelStore.car}. */
export interface CarOptions {
  /**
   * Send a block every time the DAG walk meets it (`dups=y`), so that a light client can drop
   * blocks once used. Default false: each block once (`dups=n`, the trustless gateway default).
   */
  dups?: boolean;
}

/** The node's model store. See the file header for the layout on disk. */
export interface ModelStore {
  /**
   * Streams a model file in and stores it with a new manifest. The file is hashed (UnixFS, 1 MiB
   * raw leaves: docs/protocol.md §3.3) while it is written to a temporary directory; `maxSize`
   * (`MODEL_TOO_LARGE`, reading stops at once) and `declaredSize` (`UPLOAD_SIZE_MISMATCH` when the
   * stream is shorter or longer) are enforced; then `describe` inspects the file, the manifest is
   * built and (optionally) signed, and the whole is committed by renames. On any failure nothing
   * is left behind.
   *
   * Idempotent: the same bytes under the same name@version give back the stored model (same
   * manifest CID: the first upload's `createdAt` is kept). The same name@version with another
   * file, or with other manifest fields, is `MODEL_CONFLICT`. A bad name or version is
   * `MODEL_NAME_INVALID` and other bad options `MANIFEST_INVALID`, before anything is read.
   */
  putArtifact(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    options: PutArtifactOptions,
  ): Promise<StoredModel>;
  /**
   * Adds a manifest signed by its publisher (`MANIFEST_INVALID`, `MANIFEST_SIGNATURE_INVALID`)
   * whose artifact is already stored (else `MODEL_NOT_FOUND`). Adding the signed form of a stored
   * unsigned manifest stores the signature with it.
   */
  putManifest(signed: SignedManifest): Promise<StoredModel>;
  /**
   * Stores a model published elsewhere (a replica fetched from a peer): the publisher's signed
   * manifest, and the artifact streamed from `source`, which must hash to the manifest's
   * artifact CID and size (`MODEL_INVALID` otherwise: nothing is kept). Named only with
   * `options.named` (see {@link ReplicaOptions}). Quotas are checked before `source` is read
   * (`REPLICA_QUOTA_EXCEEDED`). Idempotent.
   */
  putReplica(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    signed: SignedManifest,
    options: ReplicaOptions,
  ): Promise<StoredModel>;
  /**
   * A model by manifest CID, `name@version`, or `name` (the highest version by Semantic
   * Versioning precedence, pre-releases included, among the names of this store: unnamed replicas
   * never answer to a name). `MODEL_NAME_INVALID` for text that is none of these,
   * `MODEL_NOT_FOUND` when nothing matches.
   */
  resolve(ref: string): StoredModel;
  /** Every stored model, by name, then version precedence. */
  list(): StoredModel[];
  /**
   * A raw block by CID: a leaf or dag-pb node of a stored file, or a manifest (json codec, its
   * canonical bytes). The bytes are checked against the CID before they are returned.
   * `CID_INVALID` for bad CID text, `BLOCK_NOT_FOUND` when the store does not have it.
   */
  getBlock(cid: string): Promise<Uint8Array>;
  /**
   * The DAG rooted at `cid` as a CARv1 stream (trustless gateway, `application/vnd.ipld.car;
   * version=1; order=dfs; dups=n` by default, see `CAR_CONTENT_TYPE`): header with the one root,
   * then every block, depth first, root first. Throws `CID_INVALID` / `BLOCK_NOT_FOUND` at once,
   * before any byte, so a server can still answer 404.
   */
  car(cid: string, options?: CarOptions): AsyncIterable<Uint8Array>;
}

/** Options for {@link openModelStore}. */
export interface ModelStoreOptions {
  /** The store directory; created if missing. */
  dir: string;
}

function notFound(ref: string): never {
  return fail('MODEL_NOT_FOUND', 'no such model', { ref });
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

class FsModelStore implements ModelStore {
  private readonly artifactsDir: string;
  private readonly blocksDir: string;
  private readonly leavesDir: string;
  private readonly manifestsDir: string;
  private readonly tmpDir: string;
  private readonly namesPath: string;

  /** name@version → manifest CID, as in names.json. */
  private names = new Map<string, string>();
  /** Manifest CIDs of the models copied from peers (named or not), as in names.json. */
  private replicas = new Set<string>();
  /** manifest CID → model. */
  private readonly models = new Map<string, StoredModel>();
  private readonly artifacts = new Map<string, ArtifactEntry>();
  /** raw leaf CID → where its bytes are. */
  private readonly leaves = new Map<string, { path: string; offset: number; length: number }>();
  private readonly nodes = new Set<string>();
  /** Commits run one at a time: checking names and rewriting names.json is one step. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(readonly dir: string) {
    this.artifactsDir = join(dir, 'artifacts');
    this.blocksDir = join(dir, 'blocks');
    this.leavesDir = join(dir, 'leaves');
    this.manifestsDir = join(dir, 'manifests');
    this.tmpDir = join(dir, 'tmp');
    this.namesPath = join(dir, NAMES_FILE);
  }

  // -------------------------------------------------------------------------------------------
  // opening: rebuild indexes, then remove what no name reaches

  async load(): Promise<void> {
    for (const d of [this.artifactsDir, this.blocksDir, this.leavesDir, this.manifestsDir]) {
      await mkdir(d, { recursive: true });
    }
    // Uploads that were in progress when the last process stopped: never committed.
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir);

    const { names, replicas } = await readNames(this.namesPath);
    const blockFiles = new Set(await readdir(this.blocksDir));
    const unnamed = [...replicas].filter((cid) => ![...names.values()].includes(cid));
    for (const [key, cid] of [...names, ...unnamed.map((cid) => [undefined, cid] as const)]) {
      const { manifest, signature } = await readManifestFile(this.manifestsDir, cid);
      const model = this.model(manifest, cid, signature);
      const { name, version, artifact } = model.manifest;
      if (key !== undefined && `${name}@${version}` !== key) {
        corrupt('names.json entry does not match its manifest', { key, cid });
      }
      if (!this.artifacts.has(artifact.cid)) {
        const entry = await readLeafIndex(this.leavesDir, this.artifactsDir, artifact.cid);
        for (const n of entry.nodes) if (!blockFiles.has(n)) corrupt('dag-pb block missing', { cid: n });
        this.addArtifact(entry);
      }
      const stored = this.artifacts.get(artifact.cid) as ArtifactEntry;
      if (stored.size !== artifact.size) corrupt('artifact size differs from its manifest', { cid });
      this.models.set(cid, model);
    }
    this.names = names;
    this.replicas = replicas;
    await this.collectGarbage();
  }

  /**
   * Removes files that no name reaches: the leftovers of a commit cut short by a crash (every
   * file of a model is written before names.json names it), and anything else in the store's
   * directories.
   */
  private async collectGarbage(): Promise<void> {
    const liveManifests = new Set(this.models.keys());
    const liveNodes = new Set<string>();
    for (const a of this.artifacts.values()) for (const n of a.nodes) liveNodes.add(n);
    const sweep = async (dir: string, live: (entry: string) => boolean): Promise<void> => {
      let removed = false;
      for (const entry of await readdir(dir)) {
        if (live(entry)) continue;
        await rm(join(dir, entry), { recursive: true, force: true });
        removed = true;
      }
      if (removed) await fsyncDir(dir);
    };
    const jsonOf = (entry: string, live: (cid: string) => boolean) =>
      entry.endsWith('.json') && live(entry.slice(0, -'.json'.length));
    await sweep(this.manifestsDir, (e) => jsonOf(e, (cid) => liveManifests.has(cid)));
    await sweep(this.leavesDir, (e) => jsonOf(e, (cid) => this.artifacts.has(cid)));
    await sweep(this.artifactsDir, (e) => this.artifacts.has(e));
    await sweep(this.blocksDir, (e) => liveNodes.has(e));
  }

  private addArtifact(a: ArtifactEntry): void {
    this.artifacts.set(a.cid, a);
    for (const l of a.leaves) {
      if (!this.leaves.has(l.cid)) this.leaves.set(l.cid, { path: a.path, offset: l.offset, length: l.length });
    }
    for (const n of a.nodes) this.nodes.add(n);
  }

  private model(manifest: Manifest, cid: string, signature: string | undefined): StoredModel {
    const m: StoredModel = { manifest, manifestCid: cid, artifactPath: join(this.artifactsDir, manifest.artifact.cid) };
    if (signature !== undefined) m.signature = signature;
    return deepFreeze(m);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private byKey(key: string): StoredModel | undefined {
    const cid = this.names.get(key);
    return cid === undefined ? undefined : this.models.get(cid);
  }

  // -------------------------------------------------------------------------------------------
  // writing

  async putArtifact(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    o: PutArtifactOptions,
  ): Promise<StoredModel> {
    if (!isModelName(o.name) || !isModelVersion(o.version)) {
      fail('MODEL_NAME_INVALID', 'invalid model name or version', { name: String(o.name), version: String(o.version) });
    }
    checkSize(o.maxSize, 'maxSize');
    if (o.declaredSize !== undefined) {
      checkSize(o.declaredSize, 'declaredSize');
      if (o.declaredSize > o.maxSize) {
        fail('MODEL_TOO_LARGE', 'the model is larger than the node accepts', {
          declaredSize: o.declaredSize,
          maxSize: o.maxSize,
        });
      }
    }
    if (typeof o.describe !== 'function') fail('INVALID_ARGUMENT', 'describe must be a function');
    // Every option the manifest takes (format, publisher, profiles, license, description) is
    // checked now, before a byte is read; `format` is also part of the temporary file's name.
    buildManifest(o, PROBE_ARTIFACT, { inputs: [], outputs: [] }, PROBE_CREATED_AT);

    const key = `${o.name}@${o.version}`;
    const work = join(this.tmpDir, tempName('upload'));
    await mkdir(work);
    try {
      const received = await receiveArtifact(source, work, o);
      const conflict = (existing: StoredModel): never =>
        fail('MODEL_CONFLICT', `${key} is already stored with another artifact`, {
          ref: key,
          manifestCid: existing.manifestCid,
          storedArtifact: existing.manifest.artifact.cid,
          uploadedArtifact: received.cid,
        });
      const before = this.byKey(key);
      if (before !== undefined && before.manifest.artifact.cid !== received.cid) conflict(before);
      const described = await describeArtifact(o.describe, received.file);
      // A re-upload keeps the first upload's createdAt, so that the same bytes and options give
      // the same manifest CID.
      let prepared = prepare(o, received, described, before?.manifest.createdAt ?? new Date().toISOString());

      return await this.exclusive(async () => {
        const existing = this.byKey(key);
        if (existing === undefined) return this.commitUpload(key, prepared, received);
        if (existing.manifest.artifact.cid !== received.cid) conflict(existing);
        if (existing.manifest.createdAt !== prepared.manifest.createdAt) {
          // Another upload of the same name@version committed while this one was running.
          prepared = prepare(o, received, described, existing.manifest.createdAt);
        }
        if (prepared.cid !== existing.manifestCid) {
          fail('MODEL_CONFLICT', `${key} is already stored with another manifest`, {
            ref: key,
            manifestCid: existing.manifestCid,
            uploadedManifestCid: prepared.cid,
          });
        }
        if (prepared.signature !== undefined && existing.signature === undefined) {
          return this.addSignature(existing, prepared.signature);
        }
        return existing;
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  /**
   * Moves an upload into place. Order: dag-pb nodes, leaf index, artifact file (so an artifact
   * file is present only with its index and nodes), manifest, and last names.json, the commit
   * point. On failure, what this call created is removed again.
   */
  private async commitUpload(key: string | undefined, p: Prepared, r: Received, replica = false): Promise<StoredModel> {
    const created: string[] = [];
    let artifact: ArtifactEntry | undefined;
    try {
      if (!this.artifacts.has(r.cid)) {
        const path = join(this.artifactsDir, r.cid);
        artifact = { cid: r.cid, size: r.size, path, leaves: r.leaves, nodes: r.nodes };
        const newNodes = r.nodes.filter((n) => !this.nodes.has(n));
        for (const n of newNodes) {
          const target = join(this.blocksDir, n);
          await rename(join(r.nodesDir, n), target);
          created.push(target);
        }
        if (newNodes.length > 0) await fsyncDir(this.blocksDir);
        const index = join(this.leavesDir, `${r.cid}.json`);
        await writeFileAtomic(index, leafIndexBytes(artifact), this.tmpDir);
        created.push(index);
        await rename(r.file, path);
        created.push(path);
        await fsyncDir(this.artifactsDir);
      }
      return await this.commitManifest(key, p.manifest, p.cid, p.signature, created, artifact, replica);
    } catch (e) {
      for (const path of created.reverse()) await rm(path, { force: true }).catch(() => undefined);
      throw e;
    }
  }

  /**
   * Writes a new manifest and names it (`key`; none: an unnamed replica), listing it among the
   * replicas with `replica`; `created` collects files to remove on failure.
   */
  private async commitManifest(
    key: string | undefined,
    manifest: Manifest,
    cid: string,
    signature: string | undefined,
    created: string[],
    artifact?: ArtifactEntry,
    replica = false,
  ): Promise<StoredModel> {
    const path = join(this.manifestsDir, `${cid}.json`);
    await writeFileAtomic(path, manifestFileBytes(manifest, signature), this.tmpDir);
    created.push(path);
    const names = key === undefined ? this.names : new Map(this.names).set(key, cid);
    const replicas = replica ? new Set(this.replicas).add(cid) : this.replicas;
    await this.writeNames(names, replicas);
    // Committed: from here on nothing can fail.
    if (artifact !== undefined) this.addArtifact(artifact);
    const model = this.model(manifest, cid, signature);
    this.models.set(cid, model);
    this.names = names;
    this.replicas = replicas;
    return model;
  }

  private async writeNames(names: Map<string, string>, replicas: Set<string>): Promise<void> {
    await writeFileAtomic(this.namesPath, namesFileBytes(names, replicas), this.tmpDir);
  }

  /**
   * `REPLICA_QUOTA_EXCEEDED` when one more replica (with `manifest`'s artifact, unless already
   * stored) would go beyond the quotas.
   */
  private checkReplicaQuota(manifest: Manifest, options: ReplicaOptions): void {
    const max = options.maxReplicas ?? Number.POSITIVE_INFINITY;
    const maxBytes = options.maxReplicaBytes ?? Number.POSITIVE_INFINITY;
    if (this.replicas.size + 1 > max) {
      fail('REPLICA_QUOTA_EXCEEDED', 'this node holds as many models copied from peers as it may', {
        replicas: this.replicas.size,
        maxReplicas: max,
      });
    }
    const artifacts = new Set<string>();
    for (const cid of this.replicas) artifacts.add((this.models.get(cid) as StoredModel).manifest.artifact.cid);
    let bytes = 0;
    for (const a of artifacts) bytes += (this.artifacts.get(a) as ArtifactEntry).size;
    const extra = this.artifacts.has(manifest.artifact.cid) ? 0 : manifest.artifact.size;
    if (bytes + extra > maxBytes) {
      fail('REPLICA_QUOTA_EXCEEDED', 'this model would take more space than copies from peers may', {
        replicaBytes: bytes,
        modelBytes: extra,
        maxReplicaBytes: maxBytes,
      });
    }
  }

  /** The name a replica is filed under: its own, when asked and free (or already its own). */
  private replicaKey(manifest: Manifest, cid: string, named: boolean | undefined): string | undefined {
    if (named !== true) return undefined;
    const key = `${manifest.name}@${manifest.version}`;
    const existing = this.names.get(key);
    return existing === undefined || existing === cid ? key : undefined;
  }

  /** Replaces a stored unsigned manifest with its signed form (same CID, same name). */
  private async addSignature(existing: StoredModel, signature: string): Promise<StoredModel> {
    const path = join(this.manifestsDir, `${existing.manifestCid}.json`);
    await writeFileAtomic(path, manifestFileBytes(existing.manifest, signature), this.tmpDir);
    const model = this.model(existing.manifest, existing.manifestCid, signature);
    this.models.set(existing.manifestCid, model);
    return model;
  }

  async putReplica(
    source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
    signed: SignedManifest,
    options: ReplicaOptions,
  ): Promise<StoredModel> {
    const manifest = verifySignedManifest(signed);
    const signature = (signed.signature as string).toLowerCase();
    if (!isModelName(manifest.name)) {
      fail('MODEL_NAME_INVALID', 'this store does not take that model name', { name: manifest.name });
    }
    const cid = manifestCid(manifest);
    if (this.models.has(cid)) {
      const stored = this.models.get(cid) as StoredModel;
      return stored.signature === undefined ? this.addSignature(stored, signature) : stored;
    }
    const maxSize = options.maxSize;
    checkSize(maxSize, 'maxSize');
    // Before a byte of the artifact is read.
    this.checkReplicaQuota(manifest, options);
    const artifact = this.artifacts.get(manifest.artifact.cid);
    if (artifact !== undefined) {
      if (artifact.size !== manifest.artifact.size) {
        fail('MODEL_INVALID', 'the manifest gives the wrong size for its artifact', { artifactCid: artifact.cid });
      }
      return this.exclusive(async () => {
        const stored = this.models.get(cid);
        if (stored !== undefined) return stored;
        this.checkReplicaQuota(manifest, options);
        const created: string[] = [];
        try {
          const key = this.replicaKey(manifest, cid, options.named);
          return await this.commitManifest(key, manifest, cid, signature, created, undefined, true);
        } catch (e) {
          for (const path of created) await rm(path, { force: true }).catch(() => undefined);
          throw e;
        }
      });
    }
    const work = join(this.tmpDir, tempName('replica'));
    await mkdir(work);
    try {
      const received = await receiveArtifact(source, work, {
        format: manifest.format,
        maxSize,
        declaredSize: manifest.artifact.size,
      });
      // The bytes are the manifest's artifact only if they hash to its CID: every block checked.
      if (received.cid !== manifest.artifact.cid) {
        fail('MODEL_INVALID', 'the artifact does not match its manifest', {
          expected: manifest.artifact.cid,
          received: received.cid,
        });
      }
      return await this.exclusive(async () => {
        const stored = this.models.get(cid);
        if (stored !== undefined) return stored;
        this.checkReplicaQuota(manifest, options); // again: other replicas may have come meanwhile
        const key = this.replicaKey(manifest, cid, options.named);
        return this.commitUpload(key, { manifest, cid, signature }, received, true);
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }

  async putManifest(signed: SignedManifest): Promise<StoredModel> {
    const manifest = verifySignedManifest(signed);
    // verifySignedManifest accepted it, so it is a 0x-hex string; stored in lower case.
    const signature = (signed.signature as string).toLowerCase();
    if (!isModelName(manifest.name)) {
      fail('MODEL_NAME_INVALID', 'this store does not take that model name', { name: manifest.name });
    }
    const artifact = this.artifacts.get(manifest.artifact.cid);
    if (artifact === undefined) {
      fail('MODEL_NOT_FOUND', "the manifest's artifact is not stored", { artifactCid: manifest.artifact.cid });
    }
    if (artifact.size !== manifest.artifact.size) {
      fail('MODEL_INVALID', 'the manifest gives the wrong size for its artifact', {
        artifactCid: artifact.cid,
        size: artifact.size,
        manifestSize: manifest.artifact.size,
      });
    }
    const cid = manifestCid(manifest);
    const key = `${manifest.name}@${manifest.version}`;
    return this.exclusive(async () => {
      const existing = this.byKey(key);
      if (existing !== undefined) {
        if (existing.manifestCid !== cid) {
          fail('MODEL_CONFLICT', `${key} is already stored with another manifest`, {
            ref: key,
            manifestCid: existing.manifestCid,
            uploadedManifestCid: cid,
          });
        }
        return existing.signature === undefined ? this.addSignature(existing, signature) : existing;
      }
      const created: string[] = [];
      try {
        return await this.commitManifest(key, manifest, cid, signature, created);
      } catch (e) {
        for (const path of created) await rm(path, { force: true }).catch(() => undefined);
        throw e;
      }
    });
  }

  // -------------------------------------------------------------------------------------------
  // reading

  resolve(ref: string): StoredModel {
    const r = parseModelRef(ref);
    if ('cid' in r) return this.models.get(r.cid) ?? notFound(ref);
    if (r.version !== undefined) return this.byKey(`${r.name}@${r.version}`) ?? notFound(ref);
    let best: StoredModel | undefined;
    for (const [key, cid] of this.names) {
      if (key.length <= r.name.length || key[r.name.length] !== '@' || !key.startsWith(r.name)) continue;
      const m = this.models.get(cid) as StoredModel;
      if (best === undefined || compareModels(m, best) > 0) best = m;
    }
    return best ?? notFound(ref);
  }

  list(): StoredModel[] {
    return [...this.models.values()].sort(compareModels);
  }

  private hasBlock(cid: string): boolean {
    const { codec } = parseCid(cid);
    if (codec === CODEC_JSON) return this.models.has(cid);
    if (codec === CODEC_DAG_PB) return this.nodes.has(cid);
    return this.leaves.has(cid);
  }

  async getBlock(cid: string): Promise<Uint8Array> {
    const parsed = parseCid(cid);
    if (!this.hasBlock(cid)) fail('BLOCK_NOT_FOUND', 'no such block', { cid });
    let bytes: Uint8Array;
    if (parsed.codec === CODEC_JSON) {
      bytes = manifestBytes((this.models.get(cid) as StoredModel).manifest);
    } else if (parsed.codec === CODEC_DAG_PB) {
      const b = await readFile(join(this.blocksDir, cid));
      bytes = new Uint8Array(b.buffer, b.byteOffset, b.length);
    } else {
      const { path, offset, length } = this.leaves.get(cid) as { path: string; offset: number; length: number };
      bytes = await readRange(path, offset, length);
    }
    return checkedBlock(cid, parsed, bytes);
  }

  car(cid: string, options: CarOptions = {}): AsyncIterable<Uint8Array> {
    if (!this.hasBlock(cid)) fail('BLOCK_NOT_FOUND', 'no such block', { cid });
    return carStream(cid, (c) => this.getBlock(c), options.dups === true);
  }
}

function compareModels(a: StoredModel, b: StoredModel): number {
  if (a.manifest.name !== b.manifest.name) return a.manifest.name < b.manifest.name ? -1 : 1;
  const c = compareVersions(a.manifest.version, b.manifest.version);
  if (c !== 0) return c;
  // Equal precedence (versions differing only in build metadata): any fixed order will do.
  return a.manifest.version < b.manifest.version ? -1 : a.manifest.version > b.manifest.version ? 1 : 0;
}

/**
 * Opens (creating if needed) the model store in `dir`: rebuilds the in-memory indexes from the
 * files, empties `tmp/` and removes files no name reaches (leftovers of a crash). A store whose
 * files contradict each other fails to open with `INTERNAL` rather than serve wrong data.
 *
 * @example
 * ```ts
 * const store = await openModelStore({ dir: '/var/lib/verity/models' });
 * const model = await store.putArtifact(body, { name: 'iris', version: '1.2.0', format: 'onnx', maxSize, describe, publisher, profiles: ['native'] });
 * store.resolve('iris').manifestCid === model.manifestCid; // true
 * ```
 */
export async function openModelStore(options: ModelStoreOptions): Promise<ModelStore> {
  if (typeof options?.dir !== 'string' || options.dir.length === 0) fail('INVALID_ARGUMENT', 'dir is required');
  const store = new FsModelStore(resolvePath(options.dir));
  await store.load();
  return store;
}
