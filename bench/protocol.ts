/**
 * Protocol core speed, as ratios against baselines measured in the same run (machines here are
 * shared and noisy; absolute numbers drift, ratios much less).
 *
 *   npm run bench
 *
 * Rows:
 * - record digest: encode + SHA-256 leaf hash of an inference record, against node:crypto
 *   SHA-256 of the same bytes (the floor for any digest).
 * - inclusion verify: an RFC 9162 proof in a 2^20-leaf tree (20 hashes), against 20 bare
 *   node:crypto SHA-256 calls of 65 bytes.
 * - receipt verify (cached checkpoint): parse + record encode + leaf hash + inclusion proof,
 *   checkpoint signature verified once; against the same receipt with the checkpoint's Ed25519
 *   signature checked every time (the naive verifier).
 * - receipt verify, registry trust: the same receipt with the node's key taken from a chain
 *   registry snapshot of 100 nodes (`Trust.registry`, the default root of trust; the snapshot is
 *   gathered once per block and reused), against the same with the key pinned by hand.
 * - receipt verify, witness policy: the same receipt whose checkpoint carries three
 *   `cosignature/v1` lines and a 2-of-3 witness policy (docs/protocol.md §14.4), cached
 *   checkpoint and cosignatures, against the same receipt without the policy; and with the
 *   cosignatures checked every time (a fresh cache per call), against the same.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  addCosignatures,
  createCosigner,
  createEd25519Signer,
  createMemoryTree,
  createVerifyCache,
  encodeRecord,
  generateNoteKey,
  hashLeaf,
  type InferenceRecord,
  type Receipt,
  type RegistrySnapshot,
  recordLeafHash,
  signCheckpoint,
  type Trust,
  toHex,
  verifyInclusion,
  verifyReceipt,
} from '@verity/protocol';
import { opsPerSecond } from './measure.js';

function measure(name: string, fn: () => void, seconds = 1): { name: string; opsPerSec: number } {
  return { name, opsPerSec: opsPerSecond(fn, seconds) };
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const seed = new Uint8Array(32).fill(1);
const signer = createEd25519Signer('bench.verity/log', seed);
const logKey = generateNoteKey('bench.verity/log', seed).verifierKey;
const node = '0x9858EfFD232B4033E47d90003D41EC34EcaEda94';
const record: InferenceRecord = {
  version: 1,
  kind: 'onnx',
  mode: 'signed',
  model: 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea',
  runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
  inputDigest: toHex(randomBytes(32)),
  outputDigest: toHex(randomBytes(32)),
  paramsDigest: toHex(randomBytes(32)),
  requestId: '01JDQ8Z4M6X3W0V9T8S7R6Q5P4',
  timestamp: 1_764_000_000_000,
  node,
};
const recordBytes = encodeRecord(record);

// A 2^20-leaf tree whose leaf 777_777 is our record.
const N = 2 ** 20;
const INDEX = 777_777;
const tree = createMemoryTree();
const filler = hashLeaf(new Uint8Array([1]));
for (let i = 0; i < N; i++) tree.append(i === INDEX ? recordLeafHash(record) : filler);
const root = tree.root();
const proof = tree.inclusionProof(INDEX);
const checkpoint = signCheckpoint({ origin: 'bench.verity/log', size: N, rootHash: root, extensions: [] }, signer);
const receipt: Receipt = { record, leafIndex: INDEX, inclusionProof: proof.map(toHex), checkpoint };
const trust: Trust = { nodes: [{ address: node, logKey }] };
// The registry at a block: our node among 99 others, as `registrySnapshot` reads it from the chain.
const others = Array.from({ length: 99 }, (_, i) => {
  const key = generateNoteKey(`bench.verity/node-${i}`, randomBytes(32)).verifierKey;
  return { address: `0x${(i + 1).toString(16).padStart(40, '0')}`, logKey: key };
});
const snapshot: RegistrySnapshot = {
  chainId: 31337,
  nodeRegistry: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  block: { number: 100, hash: `0x${'ab'.repeat(32)}` },
  minStake: 10n ** 18n,
  nodes: [{ address: node, logKey }, ...others].map((n) => ({
    ...n,
    stake: 2n * 10n ** 18n,
    status: 'registered' as const,
    capabilities: 1n,
    endpoint: 'https://node.example',
  })),
};
const registryTrust: Trust = { nodes: [], registry: snapshot };
const registryCache = createVerifyCache();
const leafHash = recordLeafHash(record);
const node65 = randomBytes(65);

// The same checkpoint cosigned by three witnesses; a policy of 2 of them.
const witnesses = [1, 2, 3].map((i) => createCosigner(`bench.verity/witness-${i}`, new Uint8Array(32).fill(10 + i)));
const body = checkpoint.slice(0, checkpoint.lastIndexOf('\n\n') + 1);
const cosigned: Receipt = {
  ...receipt,
  checkpoint: addCosignatures(checkpoint, witnesses.map((w) => w.cosign(body, 1_764_000_000)).join('')),
};
const witnessTrust: Trust = { ...trust, witnesses: { keys: witnesses.map((w) => w.verifierKey), threshold: 2 } };
const witnessCache = createVerifyCache();

const cache = createVerifyCache();
const check = (r: ReturnType<typeof verifyReceipt>) => {
  if (!r.ok) throw new Error(`bench receipt failed to verify: ${r.code}`);
};

const rows: [ReturnType<typeof measure>, ReturnType<typeof measure>][] = [
  [
    measure('record digest (encode + leaf hash)', () => recordLeafHash(record)),
    measure('node:crypto SHA-256 of the record bytes', () => createHash('sha256').update(recordBytes).digest()),
  ],
  [
    measure('inclusion proof verify (2^20 leaves)', () => verifyInclusion(leafHash, INDEX, N, proof, root)),
    measure('20 × node:crypto SHA-256 (65 B)', () => {
      for (let i = 0; i < 20; i++) createHash('sha256').update(node65).digest();
    }),
  ],
  [
    measure('receipt verify, cached checkpoint', () => check(verifyReceipt(receipt, trust, { cache }))),
    measure('receipt verify, signature every time', () => check(verifyReceipt(receipt, trust))),
  ],
  [
    measure('receipt verify, registry trust (100-node snapshot), cached checkpoint', () =>
      check(verifyReceipt(receipt, registryTrust, { cache: registryCache })),
    ),
    measure('receipt verify, pinned key, cached checkpoint', () => check(verifyReceipt(receipt, trust, { cache }))),
  ],
  [
    measure('receipt verify, 2-of-3 witness policy, cached checkpoint and cosignatures', () =>
      check(verifyReceipt(cosigned, witnessTrust, { cache: witnessCache })),
    ),
    measure('receipt verify, no witness policy, cached checkpoint', () =>
      check(verifyReceipt(receipt, trust, { cache })),
    ),
  ],
  [
    measure('receipt verify, 2-of-3 witness policy, nothing cached', () =>
      check(verifyReceipt(cosigned, witnessTrust)),
    ),
    measure('receipt verify, no witness policy, nothing cached', () => check(verifyReceipt(receipt, trust))),
  ],
];

console.log(`Verity protocol bench — node ${process.version}, ${new Date().toISOString()}`);
console.log('| operation | ops/s | baseline | baseline ops/s | ratio |');
console.log('|---|---:|---|---:|---:|');
for (const [a, b] of rows) {
  console.log(
    `| ${a.name} | ${fmt(a.opsPerSec)} | ${b.name} | ${fmt(b.opsPerSec)} | ${(a.opsPerSec / b.opsPerSec).toFixed(2)}× |`,
  );
}
const receiptRate = (rows[2] as [ReturnType<typeof measure>, unknown])[0].opsPerSec;
console.log(
  `\nreceipt verification target ≥ 10,000/s per core: ${receiptRate >= 10_000 ? 'met' : 'NOT met'} (${fmt(receiptRate)}/s)`,
);
const [chain, pinned] = rows[3] as [ReturnType<typeof measure>, ReturnType<typeof measure>];
const ratio = chain.opsPerSec / pinned.opsPerSec;
console.log(
  `with registry trust: ${fmt(chain.opsPerSec)}/s, ${ratio.toFixed(2)}× pinned keys (targets ≥ 10,000/s and ≥ 0.9×: ${chain.opsPerSec >= 10_000 && ratio >= 0.9 ? 'met' : 'NOT met'})`,
);
