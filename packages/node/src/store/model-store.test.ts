import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CarBlockIterator } from '@ipld/car/iterator';
import {
  blockMatchesCid,
  CODEC_DAG_PB,
  concatBytes,
  dagPbLinks,
  type ErrorCode,
  fromUtf8,
  isVerityError,
  manifestCid,
  parseCid,
  parseManifest,
  personalSign,
  signManifest,
  type UnixfsBlock,
  unixfsCidOf,
  utf8,
  VerityError,
  verifySignedManifest,
} from '@verity/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deterministicPieces } from '../../../protocol/src/test-support/deterministic-bytes.js';
import { type ArtifactDescription, type ModelStore, openModelStore, type PutArtifactOptions } from './model-store.js';

const MiB = 1_048_576;
const PUBLISHER = '0x2c7536E3605D9C16a7a3D7b1898e529396a65c23'; // docs/protocol.md §4.5
const KEY = '0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318';
const OTHER_KEY = '0x348ce564d427a3311b6536bbcff9390d69395b06ed6c486954e971d960fe8709';
// Printed by kubo (docs/protocol.md §3.2.4) and checked against ipfs-unixfs-importer (§3.3.6).
const HELLO_CID = 'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e';
const CID_3_5_MIB = 'bafybeieqejjjc5i37b24vquvzhbcwccj7zjvn2vvmjjfo5tdzv6rell2zi';

const DESCRIPTION: ArtifactDescription = {
  inputs: [{ name: 'input', dtype: 'float32', shape: ['batch', 4] }],
  outputs: [{ name: 'probabilities', dtype: 'float32', shape: ['batch', 3] }],
};

function options(overrides: Partial<PutArtifactOptions> = {}): PutArtifactOptions {
  return {
    name: 'iris',
    version: '1.0.0',
    format: 'onnx',
    maxSize: 64 * MiB,
    describe: async () => DESCRIPTION,
    publisher: PUBLISHER,
    profiles: ['native', 'portable'],
    ...overrides,
  };
}

/** `bytes` in pieces of `pieceSize` (odd sizes, so pieces never line up with chunks). */
function* pieces(bytes: Uint8Array, pieceSize = 100_003): Generator<Uint8Array> {
  for (let o = 0; o < bytes.length; o += pieceSize) yield bytes.slice(o, o + pieceSize);
}

/** A source that counts what was pulled from it and whether it was closed. */
function counting(pieceSize: number, total = Number.POSITIVE_INFINITY) {
  const state = { pulled: 0, closed: false };
  async function* source(): AsyncGenerator<Uint8Array> {
    try {
      for (let sent = 0; sent < total; sent += pieceSize) {
        state.pulled++;
        yield new Uint8Array(Math.min(pieceSize, total - sent)).fill(7);
      }
    } finally {
      state.closed = true;
    }
  }
  return { state, source: source() };
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<ErrorCode | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
    return undefined;
  } catch (e) {
    if (!isVerityError(e)) throw e;
    return e.code;
  }
}

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p);
  return concatBytes(...parts);
}

/** Every file under `dir`, as paths relative to it, sorted. */
async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name).slice(dir.length + 1));
  }
  return out.sort();
}

/** Byte equality without vitest's element-by-element diff (slow on megabytes). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** cid → SHA-256 of the bytes, sorted by CID: compares sets of blocks cheaply. */
function fingerprint(blocks: readonly { cid: string; bytes: Uint8Array }[]): [string, string][] {
  return blocks
    .map((b): [string, string] => [b.cid, createHash('sha256').update(b.bytes).digest('hex')])
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
}

/** All blocks of a file's DAG, as the protocol's hasher makes them (children first, root last). */
async function dagOf(bytes: Uint8Array): Promise<{ cid: string; blocks: UnixfsBlock[] }> {
  const blocks: UnixfsBlock[] = [];
  const { cid } = await unixfsCidOf(bytes, { onBlock: (b) => void blocks.push(b) });
  return { cid, blocks };
}

const file3_5MiB = concatBytes(...deterministicPieces(3.5 * MiB, 'verity-3.5MiB'));

let dir: string;
let store: ModelStore;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verity-store-'));
  store = await openModelStore({ dir });
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('putArtifact: round trips', () => {
  it('stores a small file (one raw block) and serves it back', async () => {
    const bytes = utf8('hello world');
    const model = await store.putArtifact(pieces(bytes, 3), options());
    expect(model.manifest.artifact).toEqual({ cid: HELLO_CID, size: 11 });
    expect(model.manifest).toMatchObject({ name: 'iris', version: '1.0.0', format: 'onnx', publisher: PUBLISHER });
    expect(model.manifest.inputs).toEqual(DESCRIPTION.inputs);
    expect(model.manifestCid).toBe(manifestCid(model.manifest));
    expect(model.signature).toBeUndefined();
    expect(new Uint8Array(await readFile(model.artifactPath))).toEqual(bytes);
    expect(model.artifactPath).toBe(join(dir, 'artifacts', HELLO_CID));
    expect(await store.getBlock(HELLO_CID)).toEqual(bytes);
    // The manifest is a block too: its canonical bytes, which hash to its CID.
    const manifestBlock = await store.getBlock(model.manifestCid);
    expect(blockMatchesCid(model.manifestCid, manifestBlock)).toBe(true);
    expect(parseManifest(JSON.parse(fromUtf8(manifestBlock)))).toEqual(model.manifest);
    expect(store.list()).toEqual([model]);
    expect(await listFiles(dir)).toEqual(
      [
        `artifacts/${HELLO_CID}`,
        `leaves/${HELLO_CID}.json`,
        `manifests/${model.manifestCid}.json`,
        'names.json',
      ].sort(),
    );
  });

  it('stores a 3.5 MiB file: CIDs equal unixfsCidOf and the pinned vector, blocks rebuild the file', async () => {
    const model = await store.putArtifact(pieces(file3_5MiB), options({ declaredSize: file3_5MiB.length }));
    const dag = await dagOf(file3_5MiB);
    expect(dag.cid).toBe(CID_3_5_MIB);
    expect(model.manifest.artifact).toEqual({ cid: CID_3_5_MIB, size: 3.5 * MiB });
    expect(sameBytes(await readFile(model.artifactPath), file3_5MiB)).toBe(true);

    // Walk the DAG through getBlock only: every block hashes to its CID, the leaves in order are
    // the file, and the blocks are exactly the hasher's.
    const seen = new Map<string, Uint8Array>();
    const leaves: Uint8Array[] = [];
    const walk = async (cid: string): Promise<void> => {
      const block = await store.getBlock(cid);
      expect(blockMatchesCid(cid, block)).toBe(true);
      seen.set(cid, block);
      if (parseCid(cid).codec === CODEC_DAG_PB) for (const link of dagPbLinks(block)) await walk(link);
      else leaves.push(block);
    };
    await walk(CID_3_5_MIB);
    expect(leaves.length).toBe(4);
    expect(sameBytes(concatBytes(...leaves), file3_5MiB)).toBe(true);
    expect(fingerprint([...seen].map(([cid, bytes]) => ({ cid, bytes })))).toEqual(fingerprint(dag.blocks));
    // Only the one dag-pb node is a file of its own; the leaves are served from the artifact.
    expect((await listFiles(join(dir, 'blocks'))).length).toBe(1);
  });

  it('passes describe the complete file under a path with the format as extension', async () => {
    let seenPath = '';
    let seenBytes = new Uint8Array();
    await store.putArtifact(
      pieces(file3_5MiB),
      options({
        format: 'gguf',
        describe: async (path) => {
          seenPath = path;
          seenBytes = new Uint8Array(await readFile(path));
          return { ...DESCRIPTION, metadata: { 'general.architecture': 'llama' } };
        },
      }),
    );
    expect(seenPath.startsWith(join(dir, 'tmp'))).toBe(true);
    expect(seenPath.endsWith('.gguf')).toBe(true);
    expect(sameBytes(seenBytes, file3_5MiB)).toBe(true);
    expect(store.resolve('iris').manifest.metadata).toEqual({ 'general.architecture': 'llama' });
  });

  it('stores a file shared by two names once', async () => {
    const a = await store.putArtifact(pieces(file3_5MiB), options({ name: 'iris' }));
    const b = await store.putArtifact(pieces(file3_5MiB), options({ name: 'iris-copy' }));
    expect(a.artifactPath).toBe(b.artifactPath);
    expect(a.manifestCid).not.toBe(b.manifestCid);
    expect((await listFiles(join(dir, 'artifacts'))).length).toBe(1);
    expect((await listFiles(join(dir, 'tmp'))).length).toBe(0);
  });
});

describe('CAR streams', () => {
  async function readCar(bytes: Uint8Array) {
    const iterator = await CarBlockIterator.fromBytes(bytes);
    const blocks: { cid: string; bytes: Uint8Array }[] = [];
    for await (const b of iterator) blocks.push({ cid: b.cid.toString(), bytes: b.bytes });
    return { roots: (await iterator.getRoots()).map(String), blocks };
  }

  it('streams exactly the DAG, root first, depth first; @ipld/car parses it', async () => {
    await store.putArtifact(pieces(file3_5MiB), options());
    const dag = await dagOf(file3_5MiB);
    const car = await readCar(await collect(store.car(CID_3_5_MIB)));
    expect(car.roots).toEqual([CID_3_5_MIB]);
    // The hasher emits leaves first and the root last; depth-first from the root is the reverse
    // order of levels: root, then its four leaves in file order.
    const root = dag.blocks.at(-1) as UnixfsBlock;
    expect(car.blocks.map((b) => b.cid)).toEqual([root.cid, ...dag.blocks.slice(0, -1).map((b) => b.cid)]);
    for (const b of car.blocks) expect(blockMatchesCid(b.cid, b.bytes)).toBe(true);
    expect(fingerprint(car.blocks)).toEqual(fingerprint(dag.blocks));
  });

  it('a leaf, a small file and a manifest are CARs of one block', async () => {
    const small = await store.putArtifact([utf8('hello world')], options({ name: 'hello' }));
    await store.putArtifact(pieces(file3_5MiB), options());
    const leaf = (await dagOf(file3_5MiB)).blocks[1] as UnixfsBlock;
    for (const [cid, bytes] of [
      [HELLO_CID, utf8('hello world')],
      [leaf.cid, leaf.bytes],
      [small.manifestCid, await store.getBlock(small.manifestCid)],
    ] as const) {
      const car = await readCar(await collect(store.car(cid)));
      expect(car.roots).toEqual([cid]);
      expect(car.blocks.map((b) => b.cid)).toEqual([cid]);
      expect(sameBytes((car.blocks[0] as { bytes: Uint8Array }).bytes, bytes)).toBe(true);
    }
  });

  it('repeated chunks: each block once by default (dups=n), every time with dups', async () => {
    // Three identical 1 MiB chunks of zeros and one byte: four leaves, two distinct.
    const bytes = new Uint8Array(3 * MiB + 1);
    const model = await store.putArtifact([bytes], options());
    const { blocks } = await dagOf(bytes);
    const zero = (blocks[0] as UnixfsBlock).cid;
    const tail = (blocks[3] as UnixfsBlock).cid;
    const root = model.manifest.artifact.cid;
    const once = await readCar(await collect(store.car(root)));
    expect(once.blocks.map((b) => b.cid)).toEqual([root, zero, tail]);
    const every = await readCar(await collect(store.car(root, { dups: true })));
    expect(every.blocks.map((b) => b.cid)).toEqual([root, zero, zero, zero, tail]);
    expect(sameBytes(concatBytes(...every.blocks.slice(1).map((b) => b.bytes)), bytes)).toBe(true);
  });

  it('unknown and invalid CIDs fail at once, before any byte', async () => {
    expect(await codeOf(() => store.car(HELLO_CID))).toBe('BLOCK_NOT_FOUND');
    expect(await codeOf(() => store.car('not-a-cid'))).toBe('CID_INVALID');
    expect(await codeOf(() => store.car('QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o'))).toBe('CID_INVALID');
  });
});

describe('putArtifact: idempotence and conflicts', () => {
  it('re-uploading the same bytes under the same name@version gives the same manifest CID', async () => {
    const first = await store.putArtifact(pieces(file3_5MiB), options());
    const files = await listFiles(dir);
    const names = await readFile(join(dir, 'names.json'));
    const again = await store.putArtifact(pieces(file3_5MiB, 65_536), options());
    expect(again.manifestCid).toBe(first.manifestCid);
    expect(again.manifest.createdAt).toBe(first.manifest.createdAt);
    expect(store.list()).toEqual([first]);
    expect(await listFiles(dir)).toEqual(files);
    expect(await readFile(join(dir, 'names.json'))).toEqual(names);
  });

  it('concurrent identical uploads agree on one manifest', async () => {
    const [a, b] = await Promise.all([
      store.putArtifact(pieces(file3_5MiB), options()),
      store.putArtifact(pieces(file3_5MiB, 77_777), options()),
    ]);
    expect(a.manifestCid).toBe(b.manifestCid);
    expect(store.list().length).toBe(1);
  });

  it('the same name@version with another file is MODEL_CONFLICT, and the store is unchanged', async () => {
    const first = await store.putArtifact([utf8('hello world')], options());
    const files = await listFiles(dir);
    expect(await codeOf(store.putArtifact(pieces(file3_5MiB), options()))).toBe('MODEL_CONFLICT');
    expect(await listFiles(dir)).toEqual(files);
    expect(store.resolve('iris@1.0.0')).toEqual(first);
  });

  it('the same file with other manifest fields is MODEL_CONFLICT too', async () => {
    await store.putArtifact([utf8('hello world')], options());
    const files = await listFiles(dir);
    expect(await codeOf(store.putArtifact([utf8('hello world')], options({ profiles: ['native'] })))).toBe(
      'MODEL_CONFLICT',
    );
    expect(await codeOf(store.putArtifact([utf8('hello world')], options({ license: 'MIT' })))).toBe('MODEL_CONFLICT');
    expect(await listFiles(dir)).toEqual(files);
  });

  it('of two concurrent uploads with different files, one wins and one conflicts', async () => {
    const results = await Promise.allSettled([
      store.putArtifact(pieces(file3_5MiB), options()),
      store.putArtifact([utf8('hello world')], options()),
    ]);
    const codes = results.map((r) => (r.status === 'rejected' ? (r.reason as VerityError).code : 'ok'));
    expect(codes.sort()).toEqual(['MODEL_CONFLICT', 'ok']);
    expect(store.list().length).toBe(1);
    expect((await listFiles(join(dir, 'artifacts'))).length).toBe(1);
    expect(await listFiles(join(dir, 'tmp'))).toEqual([]);
  });
});

describe('putArtifact: failures leave nothing behind', () => {
  it('maxSize: MODEL_TOO_LARGE, and reading stops at the first piece beyond it', async () => {
    const { state, source } = counting(1024);
    expect(await codeOf(store.putArtifact(source, options({ maxSize: 10 * 1024 })))).toBe('MODEL_TOO_LARGE');
    expect(state.pulled).toBe(11);
    expect(state.closed).toBe(true);
    expect(await listFiles(dir)).toEqual([]);
  });

  it('a declaredSize above maxSize is refused before a byte is read', async () => {
    const { state, source } = counting(1024, 4096);
    expect(await codeOf(store.putArtifact(source, options({ maxSize: 1000, declaredSize: 4096 })))).toBe(
      'MODEL_TOO_LARGE',
    );
    expect(state.pulled).toBe(0);
    expect(await listFiles(dir)).toEqual([]);
  });

  it('a stream longer than declared: UPLOAD_SIZE_MISMATCH at once', async () => {
    const { state, source } = counting(1000);
    expect(await codeOf(store.putArtifact(source, options({ declaredSize: 2500 })))).toBe('UPLOAD_SIZE_MISMATCH');
    expect(state.pulled).toBe(3);
    expect(state.closed).toBe(true);
    expect(await listFiles(dir)).toEqual([]);
  });

  it('a stream shorter than declared: UPLOAD_SIZE_MISMATCH', async () => {
    expect(await codeOf(store.putArtifact(pieces(file3_5MiB), options({ declaredSize: file3_5MiB.length + 1 })))).toBe(
      'UPLOAD_SIZE_MISMATCH',
    );
    expect(await codeOf(store.putArtifact([], options({ declaredSize: 1 })))).toBe('UPLOAD_SIZE_MISMATCH');
    expect(await listFiles(dir)).toEqual([]);
  });

  it('a describe that throws MODEL_INVALID leaves nothing behind, and keeps what was there', async () => {
    await store.putArtifact([utf8('hello world')], options({ name: 'hello' }));
    const files = await listFiles(dir);
    const bad = async (): Promise<ArtifactDescription> => {
      throw new VerityError('MODEL_INVALID', 'not an ONNX file');
    };
    expect(await codeOf(store.putArtifact(pieces(file3_5MiB), options({ describe: bad })))).toBe('MODEL_INVALID');
    expect(await listFiles(dir)).toEqual(files);
    expect(await codeOf(store.getBlock(CID_3_5_MIB))).toBe('BLOCK_NOT_FOUND');
    expect(store.list().map((m) => m.manifest.name)).toEqual(['hello']);
  });

  it('a describe that fails otherwise, or describes tensors no manifest can hold, is MODEL_INVALID', async () => {
    const crash = async (): Promise<ArtifactDescription> => {
      throw new RangeError('offset out of bounds');
    };
    expect(await codeOf(store.putArtifact(pieces(file3_5MiB), options({ describe: crash })))).toBe('MODEL_INVALID');
    const float16 = async () => ({ inputs: [{ name: 'x', dtype: 'float16', shape: [1] }], outputs: [] }) as never;
    expect(await codeOf(store.putArtifact(pieces(file3_5MiB), options({ describe: float16 })))).toBe('MODEL_INVALID');
    const nothing = async () => null as never;
    expect(await codeOf(store.putArtifact(pieces(file3_5MiB), options({ describe: nothing })))).toBe('MODEL_INVALID');
    expect(await listFiles(dir)).toEqual([]);
  });

  it('a source that fails mid-stream (a client gone) leaves nothing behind', async () => {
    async function* broken() {
      yield file3_5MiB.subarray(0, 2 * MiB);
      throw new Error('connection reset');
    }
    await expect(store.putArtifact(broken(), options())).rejects.toThrow('connection reset');
    expect(await listFiles(dir)).toEqual([]);
  });

  it('a sign() that signs with another key is MANIFEST_SIGNATURE_INVALID and leaves nothing behind', async () => {
    const sign = (cid: string) => personalSign(cid, OTHER_KEY);
    expect(await codeOf(store.putArtifact(pieces(file3_5MiB), options({ sign })))).toBe('MANIFEST_SIGNATURE_INVALID');
    expect(await listFiles(dir)).toEqual([]);
  });

  it('a half-written upload never appears', async () => {
    const dag = await dagOf(file3_5MiB);
    const firstLeaf = (dag.blocks[0] as UnixfsBlock).cid;
    let reached!: () => void;
    const atGate = new Promise<void>((r) => {
      reached = r;
    });
    let open!: () => void;
    const gate = new Promise<void>((r) => {
      open = r;
    });
    async function* slow() {
      yield file3_5MiB.subarray(0, 2 * MiB);
      reached(); // the store asked for more: the first piece is written and hashed
      await gate;
      yield file3_5MiB.subarray(2 * MiB);
    }
    const upload = store.putArtifact(slow(), options());
    await atGate;
    expect(store.list()).toEqual([]);
    expect(await codeOf(() => store.resolve('iris'))).toBe('MODEL_NOT_FOUND');
    expect(await codeOf(store.getBlock(firstLeaf))).toBe('BLOCK_NOT_FOUND');
    const files = await listFiles(dir);
    expect(files.length).toBeGreaterThan(0);
    expect(files.every((f) => f.startsWith('tmp/'))).toBe(true);
    open();
    const model = await upload;
    expect(store.resolve('iris')).toEqual(model);
    expect(await listFiles(join(dir, 'tmp'))).toEqual([]);
  });
});

describe('names and options', () => {
  const weird = [
    '../escape',
    '..',
    '.',
    'a/b',
    'a\\b',
    'a\0b',
    'a..b',
    'Iris',
    '',
    ' iris',
    'iris@1.0.0',
    'bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e',
  ];
  it.each(weird)('refuses the name %j before reading anything', async (name) => {
    const { state, source } = counting(10, 100);
    expect(await codeOf(store.putArtifact(source, options({ name })))).toBe('MODEL_NAME_INVALID');
    expect(state.pulled).toBe(0);
    expect(await listFiles(dir)).toEqual([]);
  });

  it.each(['1.0', 'v1.0.0', '1.0.0/../..', '01.0.0', ''])('refuses the version %j', async (version) => {
    expect(await codeOf(store.putArtifact([utf8('x')], options({ version })))).toBe('MODEL_NAME_INVALID');
    expect(await listFiles(dir)).toEqual([]);
  });

  it('refuses bad manifest options before reading anything', async () => {
    const cases: [Partial<PutArtifactOptions>, ErrorCode][] = [
      [{ format: '../../etc/x' as never }, 'MANIFEST_INVALID'],
      [{ publisher: PUBLISHER.toLowerCase() }, 'MANIFEST_INVALID'], // not the EIP-55 spelling
      [{ profiles: [] }, 'MANIFEST_INVALID'],
      [{ license: '' }, 'MANIFEST_INVALID'],
      [{ maxSize: -1 }, 'INVALID_ARGUMENT'],
      [{ declaredSize: 1.5 }, 'INVALID_ARGUMENT'],
    ];
    for (const [overrides, code] of cases) {
      const { state, source } = counting(10, 100);
      expect(await codeOf(store.putArtifact(source, options(overrides)))).toBe(code);
      expect(state.pulled).toBe(0);
    }
    expect(await listFiles(dir)).toEqual([]);
  });
});

describe('resolve and list', () => {
  it('resolves by CID, name@version and name (highest version by semver precedence)', async () => {
    const bytes = utf8('hello world');
    const versions = ['1.2.0', '1.10.0', '1.10.0-rc.1', '0.9.0', '1.9.99'];
    const stored = new Map<string, string>();
    for (const version of versions)
      stored.set(version, (await store.putArtifact([bytes], options({ version }))).manifestCid);
    await store.putArtifact([bytes], options({ name: 'other', version: '7.0.0' }));

    expect(store.resolve('iris').manifest.version).toBe('1.10.0'); // not '1.9.99': numbers, not text
    expect(store.resolve('iris@1.2.0').manifestCid).toBe(stored.get('1.2.0'));
    expect(store.resolve(stored.get('0.9.0') as string).manifest.version).toBe('0.9.0');
    expect(store.list().map((m) => `${m.manifest.name}@${m.manifest.version}`)).toEqual([
      'iris@0.9.0',
      'iris@1.2.0',
      'iris@1.9.99',
      'iris@1.10.0-rc.1',
      'iris@1.10.0',
      'other@7.0.0',
    ]);
    // One artifact for all six.
    expect((await listFiles(join(dir, 'artifacts'))).length).toBe(1);

    // Precedence counts pre-releases: 2.0.0-alpha is above 1.10.0.
    await store.putArtifact([bytes], options({ version: '2.0.0-alpha' }));
    expect(store.resolve('iris').manifest.version).toBe('2.0.0-alpha');
  });

  it('MODEL_NOT_FOUND for what is not there, MODEL_NAME_INVALID for what cannot be a ref', async () => {
    await store.putArtifact([utf8('hello world')], options());
    expect(await codeOf(() => store.resolve('iris@2.0.0'))).toBe('MODEL_NOT_FOUND');
    expect(await codeOf(() => store.resolve('nope'))).toBe('MODEL_NOT_FOUND');
    // A CID the store has, but of an artifact, not a manifest.
    expect(await codeOf(() => store.resolve(HELLO_CID))).toBe('MODEL_NOT_FOUND');
    expect(await codeOf(() => store.resolve('bagaaiera7rvofm7cyyicw4bosy4wnbvsztqzsjkaz5eewypgxtz5souahcnq'))).toBe(
      'MODEL_NOT_FOUND',
    );
    for (const ref of ['../iris', 'iris/..', 'iris@1', 'IRIS', 'iris\0']) {
      expect(await codeOf(() => store.resolve(ref))).toBe('MODEL_NAME_INVALID');
    }
  });

  it('hands out frozen models', async () => {
    const model = await store.putArtifact([utf8('hello world')], options());
    expect(() => {
      (model.manifest as { name: string }).name = 'evil';
    }).toThrow(TypeError);
    expect(Object.isFrozen(store.resolve('iris').manifest.inputs[0])).toBe(true);
  });
});

describe('getBlock', () => {
  it('BLOCK_NOT_FOUND for unknown blocks, CID_INVALID for bad text', async () => {
    expect(await codeOf(store.getBlock(HELLO_CID))).toBe('BLOCK_NOT_FOUND');
    expect(await codeOf(store.getBlock(CID_3_5_MIB))).toBe('BLOCK_NOT_FOUND');
    expect(await codeOf(store.getBlock('bagaaiera7rvofm7cyyicw4bosy4wnbvsztqzsjkaz5eewypgxtz5souahcnq'))).toBe(
      'BLOCK_NOT_FOUND',
    );
    for (const bad of [
      '',
      '../../etc/passwd',
      'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o',
      HELLO_CID.toUpperCase(),
    ]) {
      expect(await codeOf(store.getBlock(bad))).toBe('CID_INVALID');
    }
  });

  it('never serves a block whose bytes changed on disk', async () => {
    const model = await store.putArtifact(pieces(file3_5MiB), options());
    const bytes = new Uint8Array(await readFile(model.artifactPath));
    bytes[5] = (bytes[5] as number) ^ 1;
    await writeFile(model.artifactPath, bytes);
    const firstLeaf = ((await dagOf(file3_5MiB)).blocks[0] as UnixfsBlock).cid;
    expect(await codeOf(store.getBlock(firstLeaf))).toBe('INTERNAL');
    const lastLeaf = ((await dagOf(file3_5MiB)).blocks[3] as UnixfsBlock).cid;
    expect(blockMatchesCid(lastLeaf, await store.getBlock(lastLeaf))).toBe(true);
  });
});

describe('signed manifests', () => {
  it('putArtifact with sign stores the publisher signature', async () => {
    const model = await store.putArtifact(pieces(file3_5MiB), options({ sign: (cid) => personalSign(cid, KEY) }));
    expect(model.signature).toMatch(/^0x[0-9a-f]{130}$/);
    expect(verifySignedManifest({ manifest: model.manifest, signature: model.signature })).toEqual(model.manifest);
    const file = JSON.parse(await readFile(join(dir, 'manifests', `${model.manifestCid}.json`), 'utf8'));
    expect(file).toEqual({ manifest: model.manifest, signature: model.signature });
    // The manifest block is still the canonical manifest bytes, not the signed form.
    expect(blockMatchesCid(model.manifestCid, await store.getBlock(model.manifestCid))).toBe(true);
  });

  it('re-uploading with sign adds the signature to a stored unsigned manifest', async () => {
    const unsigned = await store.putArtifact([utf8('hello world')], options());
    const signed = await store.putArtifact([utf8('hello world')], options({ sign: (cid) => personalSign(cid, KEY) }));
    expect(signed.manifestCid).toBe(unsigned.manifestCid);
    expect(signed.signature).toBeDefined();
    expect(store.resolve('iris').signature).toBe(signed.signature);
  });

  it('putManifest adds a signed manifest for a stored artifact', async () => {
    const base = await store.putArtifact(pieces(file3_5MiB), options());
    const mirror = signManifest({ ...base.manifest, name: 'iris-mirror', version: '3.0.0' }, KEY);
    const model = await store.putManifest(mirror);
    expect(model.manifest.name).toBe('iris-mirror');
    expect(model.signature).toBe(mirror.signature);
    expect(model.artifactPath).toBe(base.artifactPath);
    expect(store.resolve('iris-mirror@3.0.0')).toEqual(model);
    // Idempotent.
    expect(await store.putManifest(mirror)).toEqual(model);
  });

  it('putManifest of the signed form of a stored unsigned manifest stores the signature', async () => {
    const base = await store.putArtifact([utf8('hello world')], options());
    const model = await store.putManifest(signManifest(base.manifest, KEY));
    expect(model.manifestCid).toBe(base.manifestCid);
    expect(model.signature).toBeDefined();
    expect(store.list()).toEqual([model]);
  });

  it('putManifest refusals', async () => {
    const base = await store.putArtifact([utf8('hello world')], options());
    const files = await listFiles(dir);
    const unknownArtifact = signManifest(
      { ...base.manifest, name: 'x', artifact: { cid: CID_3_5_MIB, size: 3.5 * MiB } },
      KEY,
    );
    expect(await codeOf(store.putManifest(unknownArtifact))).toBe('MODEL_NOT_FOUND');
    const wrongSize = signManifest({ ...base.manifest, name: 'x', artifact: { cid: HELLO_CID, size: 12 } }, KEY);
    expect(await codeOf(store.putManifest(wrongSize))).toBe('MODEL_INVALID');
    const conflicting = signManifest({ ...base.manifest, description: 'another' }, KEY);
    expect(await codeOf(store.putManifest(conflicting))).toBe('MODEL_CONFLICT');
    const tampered = {
      ...signManifest({ ...base.manifest, name: 'y' }, KEY),
      manifest: { ...base.manifest, name: 'z' },
    };
    expect(await codeOf(store.putManifest(tampered))).toBe('MANIFEST_SIGNATURE_INVALID');
    expect(await codeOf(store.putManifest({ manifest: base.manifest } as never))).toBe('MANIFEST_INVALID');
    const cidName = signManifest({ ...base.manifest, name: HELLO_CID }, KEY);
    expect(await codeOf(store.putManifest(cidName))).toBe('MODEL_NAME_INVALID');
    expect(await listFiles(dir)).toEqual(files);
  });
});

describe('reopening', () => {
  it('rebuilds every index from disk', async () => {
    const a = await store.putArtifact(pieces(file3_5MiB), options({ sign: (cid) => personalSign(cid, KEY) }));
    const b = await store.putArtifact([utf8('hello world')], options({ name: 'hello', version: '0.1.0' }));
    const c = await store.putArtifact([utf8('hello world')], options({ name: 'hello', version: '0.2.0' }));
    const car = await collect(store.car(CID_3_5_MIB));
    const before = store.list();

    const reopened = await openModelStore({ dir });
    expect(reopened.list()).toEqual(before);
    expect(reopened.resolve('iris')).toEqual(a);
    expect(reopened.resolve('hello')).toEqual(c);
    expect(reopened.resolve(b.manifestCid)).toEqual(b);
    expect(sameBytes(await collect(reopened.car(CID_3_5_MIB)), car)).toBe(true);
    expect(await reopened.getBlock(HELLO_CID)).toEqual(utf8('hello world'));
    expect(await reopened.getBlock(a.manifestCid)).toEqual(await store.getBlock(a.manifestCid));
    // And keeps working: idempotent re-upload, conflict.
    expect((await reopened.putArtifact(pieces(file3_5MiB), options())).manifestCid).toBe(a.manifestCid);
    expect(await codeOf(reopened.putArtifact([utf8('other')], options()))).toBe('MODEL_CONFLICT');
  });

  it('removes what a crash left behind: temporary files and files no name reaches', async () => {
    const model = await store.putArtifact([utf8('hello world')], options());
    const files = await listFiles(dir);
    // An upload cut short, and a commit cut short before names.json (artifact, index, node, manifest).
    await mkdir(join(dir, 'tmp', 'upload-dead'), { recursive: true });
    await writeFile(join(dir, 'tmp', 'upload-dead', 'model.onnx'), 'partial');
    await writeFile(join(dir, 'artifacts', CID_3_5_MIB), file3_5MiB);
    await writeFile(join(dir, 'leaves', `${CID_3_5_MIB}.json`), '{}');
    await writeFile(join(dir, 'blocks', 'bafybeieqejjjc5i37b24vquvzhbcwccj7zjvn2vvmjjfo5tdzv6rell2zi'), 'x');
    await writeFile(join(dir, 'manifests', 'bagaaiera7rvofm7cyyicw4bosy4wnbvsztqzsjkaz5eewypgxtz5souahcnq.json'), '{}');
    const reopened = await openModelStore({ dir });
    expect(await listFiles(dir)).toEqual(files);
    expect(reopened.list()).toEqual([model]);
    expect(await codeOf(reopened.getBlock(CID_3_5_MIB))).toBe('BLOCK_NOT_FOUND');
  });

  it('refuses to open a store whose files contradict each other', async () => {
    const model = await store.putArtifact([utf8('hello world')], options());
    await rm(join(dir, 'manifests', `${model.manifestCid}.json`));
    expect(await codeOf(openModelStore({ dir }))).toBe('INTERNAL');
    await writeFile(join(dir, 'names.json'), 'not json');
    expect(await codeOf(openModelStore({ dir }))).toBe('INTERNAL');
  });
});

describe('replicas (models copied from peers)', () => {
  /** A model as a peer holds it: its signed manifest and its bytes. */
  async function peerModel(peer: ModelStore, name: string, version: string, text: string) {
    const bytes = utf8(text);
    const m = await peer.putArtifact([bytes], options({ name, version, sign: (cid) => personalSign(cid, KEY) }));
    return { signed: { manifest: m.manifest, signature: m.signature as string }, bytes, cid: m.manifestCid };
  }

  it('never files a replica under a name unless asked, nor over a name it holds; quotas hold before a byte is read', async () => {
    const peerDir = await mkdtemp(join(tmpdir(), 'verity-peer-store-'));
    try {
      const peer = await openModelStore({ dir: peerDir });
      // The attack (issue 10): a peer's manifest calls itself iris@99.0.0, or iris@1.0.0.
      const shadow = await peerModel(peer, 'iris', '99.0.0', 'a look-alike');
      const lookAlike = await peerModel(peer, 'iris', '1.0.0', 'another look-alike');
      const real = await peerModel(peer, 'resnet', '1.0.0', 'a model the registry names');
      const own = await store.putArtifact([utf8('the real iris')], options());

      const quota = { maxSize: MiB, maxReplicas: 3, maxReplicaBytes: 1000 };
      const a = await store.putReplica([shadow.bytes], shadow.signed, quota);
      expect(a.manifestCid).toBe(shadow.cid);
      expect(store.resolve(shadow.cid)).toEqual(a);
      expect(await codeOf(() => store.resolve('iris@99.0.0'))).toBe('MODEL_NOT_FOUND');
      expect(store.resolve('iris')).toEqual(own); // not shadowed by the higher version
      // Asked to name it, but the name is taken here by another manifest: kept unnamed, no conflict.
      await store.putReplica([lookAlike.bytes], lookAlike.signed, { ...quota, named: true });
      expect(store.resolve('iris@1.0.0')).toEqual(own);
      // Named (the registry maps resnet@1.0.0 to it).
      const named = await store.putReplica([real.bytes], real.signed, { ...quota, named: true });
      expect(store.resolve('resnet')).toEqual(named);

      // Count quota: a fourth replica is refused before its source is read.
      const more = await peerModel(peer, 'more', '1.0.0', 'one too many');
      const source = counting(10, more.bytes.length);
      expect(await codeOf(store.putReplica(source.source, more.signed, quota))).toBe('REPLICA_QUOTA_EXCEEDED');
      expect(source.state.pulled).toBe(0);
      // Byte quota likewise.
      const big = await peerModel(peer, 'big', '1.0.0', 'x'.repeat(2000));
      const bigSource = counting(10, big.bytes.length);
      expect(await codeOf(store.putReplica(bigSource.source, big.signed, { ...quota, maxReplicas: 10 }))).toBe(
        'REPLICA_QUOTA_EXCEEDED',
      );
      expect(bigSource.state.pulled).toBe(0);
      expect(await codeOf(() => store.resolve(more.cid))).toBe('MODEL_NOT_FOUND');

      // Across a reopen: the unnamed replicas are kept by CID, still unnamed.
      const reopened = await openModelStore({ dir });
      expect(reopened.resolve(shadow.cid).manifestCid).toBe(shadow.cid);
      expect(reopened.resolve(lookAlike.cid).manifestCid).toBe(lookAlike.cid);
      expect(reopened.resolve('iris')).toEqual(own);
      expect(reopened.resolve('resnet')).toEqual(named);
      expect(reopened.list()).toHaveLength(4);
      expect(await codeOf(reopened.putReplica([], more.signed, quota))).toBe('REPLICA_QUOTA_EXCEEDED');
    } finally {
      await rm(peerDir, { recursive: true, force: true });
    }
  });
});
