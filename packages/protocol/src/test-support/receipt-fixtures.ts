/**
 * Builds Verity's receipt and bundle fixtures deterministically (fixed keys, fixed times), so the
 * committed files in `packages/protocol/fixtures/` can be checked against this builder and used
 * by other implementations. Each tampered fixture changes one thing and names the error code a
 * verifier must return.
 */
import { toBase64, toHex } from '../bytes.js';
import { openCheckpoint, parseCheckpoint, signCheckpoint } from '../checkpoint.js';
import { addCosignatures, createCosigner } from '../cosignature.js';
import type { ErrorCode } from '../errors.js';
import { addressFromPrivateKey } from '../eth.js';
import { manifestCid } from '../manifest.js';
import { createMemoryLog } from '../memory-log.js';
import { hashChildren } from '../merkle.js';
import { createEd25519Signer, generateNoteKey, parseVerifierKey, signNote } from '../note.js';
import { BUNDLE_MEDIA_TYPE, type Bundle, type Receipt } from '../receipt.js';
import { type InferenceRecord, paramsDigest } from '../record.js';
import { createTensor } from '../tensor.js';
import { tensorsDigest } from '../tensor-encoding.js';
import { tensorsToJson } from '../tensor-json.js';
import type { Trust, VerifyOptions } from '../verify.js';

/** One fixture file. */
export interface ReceiptFixture {
  readonly name: string;
  readonly description: string;
  /** `ok`, or the error code verification must return. */
  readonly expect: 'ok' | ErrorCode;
  readonly bundle: unknown;
  /** Trust to verify with; the set's default trust when absent. */
  readonly trust?: Trust;
  readonly options?: Pick<VerifyOptions, 'requireAnchor' | 'inputDigest' | 'outputDigest'>;
}

const seed = (b: number) => new Uint8Array(32).fill(b);
const ACCOUNT_A = addressFromPrivateKey(`0x${'11'.repeat(32)}`);
const ACCOUNT_B = addressFromPrivateKey(`0x${'22'.repeat(32)}`);
const ACCOUNT_C = addressFromPrivateKey(`0x${'33'.repeat(32)}`);
const ORIGIN_A = `fixtures.verity.test/log/${ACCOUNT_A.toLowerCase()}`;
const ORIGIN_B = `fixtures.verity.test/log/${ACCOUNT_B.toLowerCase()}`;
const signerA = createEd25519Signer(ORIGIN_A, seed(1));
const signerB = createEd25519Signer(ORIGIN_B, seed(2));
/** Same name as A's key, different key: what an impostor would sign with. */
const impostor = createEd25519Signer(ORIGIN_A, seed(10));
const KEY_A = generateNoteKey(ORIGIN_A, seed(1)).verifierKey;
const KEY_B = generateNoteKey(ORIGIN_B, seed(2)).verifierKey;
const KEY_IMPOSTOR = generateNoteKey(ORIGIN_A, seed(10)).verifierKey;

const MODEL = manifestCid({
  schema: 'verity.manifest/v1',
  name: 'iris-fixture',
  version: '1.0.0',
  format: 'onnx',
  artifact: { cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku', size: 0 },
  inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 4] }],
  outputs: [{ name: 'logits', dtype: 'float32', shape: ['batch', 3] }],
  profiles: ['native'],
  publisher: ACCOUNT_C,
  createdAt: '2026-11-01T00:00:00Z',
});

const input = { x: createTensor('float32', [1, 4], new Float32Array([5.1, 3.5, 1.4, 0.2])) };
const output = { logits: createTensor('float32', [1, 3], new Float32Array([2.25, -0.5, -4.75])) };

function record(i: number, node: string, overrides: Partial<InferenceRecord> = {}): InferenceRecord {
  return {
    version: 1,
    kind: 'onnx',
    mode: 'signed',
    model: MODEL,
    runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
    inputDigest: toHex(
      tensorsDigest(i === 2 ? input : { x: createTensor('float32', [1, 4], new Float32Array([i, i, i, i])) }),
    ),
    outputDigest: toHex(
      tensorsDigest(i === 2 ? output : { logits: createTensor('float32', [1, 3], new Float32Array([i, 0, 0])) }),
    ),
    paramsDigest: paramsDigest({}),
    requestId: `req-${i}`,
    timestamp: 1_793_491_200_000 + i * 1000,
    node,
    ...overrides,
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] extends object ? Mutable<T[K]> : T[K] };
const clone = <T>(v: T): Mutable<T> => JSON.parse(JSON.stringify(v));

/** Replaces one line (0-based) of a checkpoint's body and re-signs it with `signer`. */
function resign(note: string, signer = signerA, edit: (lines: string[]) => void = () => {}): string {
  const text = note.slice(0, note.lastIndexOf('\n\n') + 1);
  const lines = text.slice(0, -1).split('\n');
  edit(lines);
  return signNote(`${lines.join('\n')}\n`, [signer]);
}

/** Replaces a line of the body but keeps the old signature. */
function editText(note: string, edit: (lines: string[]) => void): string {
  const split = note.lastIndexOf('\n\n');
  const lines = note.slice(0, split).split('\n');
  edit(lines);
  return `${lines.join('\n')}${note.slice(split)}`;
}

/** Builds the whole fixture set. */
export function buildReceiptFixtures(): { trust: Trust; fixtures: ReceiptFixture[] } {
  // Node A logs five records; the caller's is index 2. Later the log grows to 7 and A anchors it.
  const logA = createMemoryLog(signerA);
  for (let i = 0; i < 5; i++) logA.append(record(i, ACCOUNT_A));
  const receipt = logA.receipt(2);
  const checkpoint5 = openCheckpoint(receipt.checkpoint, [parseVerifierKey(KEY_A)]).checkpoint;
  logA.append(record(5, ACCOUNT_A));
  logA.append(record(6, ACCOUNT_A));
  const anchored7 = openCheckpoint(logA.checkpoint(), [parseVerifierKey(KEY_A)]).checkpoint;
  const consistency = { node: ACCOUNT_A, size1: 5, size2: 7, proof: logA.consistencyProof(5, 7) };

  // Node B independently ran the same request (a quorum of two).
  const logB = createMemoryLog(signerB);
  logB.append(record(0, ACCOUNT_B));
  logB.append(record(2, ACCOUNT_B));
  const receiptB = logB.receipt(1);

  const trust: Trust = {
    nodes: [
      { address: ACCOUNT_A, logKey: KEY_A },
      { address: ACCOUNT_B, logKey: KEY_B },
    ],
  };
  const anchoredTrust: Trust = {
    ...trust,
    anchors: [{ node: ACCOUNT_A, size: 7, rootHash: toHex(anchored7.rootHash) }],
  };
  const base: Bundle = {
    mediaType: BUNDLE_MEDIA_TYPE,
    receipts: [receipt],
    nodes: [{ address: ACCOUNT_A, logKey: KEY_A, stake: '1000000000000000000', block: 42 }],
    input: tensorsToJson(input),
    output: tensorsToJson(output),
  };
  const fixtures: ReceiptFixture[] = [];
  const add = (
    name: string,
    expect: ReceiptFixture['expect'],
    description: string,
    mutate: (b: Mutable<Bundle>, r: Mutable<Receipt>) => void,
    extra: Partial<ReceiptFixture> = {},
  ) => {
    const b = clone(base);
    mutate(b, b.receipts[0] as Mutable<Receipt>);
    fixtures.push({ name, description, expect, bundle: b, ...extra });
  };
  const flipHex = (h: string, at = 0) =>
    `${h.slice(0, at)}${((Number.parseInt(h[at] as string, 16) ^ 1) & 15).toString(16)}${h.slice(at + 1)}`;
  const otherCheckpoint = (cp: typeof checkpoint5, change: Partial<typeof checkpoint5>) =>
    signCheckpoint({ ...cp, ...change }, signerA);

  // --- valid ---
  add('valid-receipt', 'ok', 'A valid single-receipt bundle with its input and output.', () => {});
  add(
    'valid-anchored',
    'ok',
    'Valid, with a consistency proof from the receipt checkpoint (size 5) to the anchored tree head (size 7).',
    (b) => {
      b.consistency = [consistency as Mutable<typeof consistency>];
    },
    { trust: anchoredTrust, options: { requireAnchor: true } },
  );
  add('valid-quorum', 'ok', 'Valid: two trusted nodes logged the identical result (quorum of two).', (b) => {
    b.receipts.push(clone(receiptB));
  });
  add(
    'valid-bundle-nodes',
    'ok',
    'Valid when the verifier opts in (insecurely) to the registry entries carried in the bundle.',
    () => {},
    {
      trust: { nodes: [], insecureAcceptBundleNodes: true },
    },
  );

  // --- the record ---
  add(
    'record-output-digest',
    'RECEIPT_INCLUSION_INVALID',
    'record.outputDigest changed: the record is no longer the logged leaf.',
    (_b, r) => {
      r.record.outputDigest = flipHex(r.record.outputDigest);
    },
  );
  add('record-model', 'RECEIPT_INCLUSION_INVALID', 'record.model replaced by another manifest CID.', (_b, r) => {
    r.record.model = 'bagaaieraiqjw7i2vwntyuekgvulpp2det2kpwt6cd7tx5ayqybqpmhfk76fa';
  });
  add('record-timestamp', 'RECEIPT_INCLUSION_INVALID', 'record.timestamp moved by 1 ms.', (_b, r) => {
    r.record.timestamp += 1;
  });
  add(
    'record-node-other',
    'RECEIPT_NODE_MISMATCH',
    'record.node names trusted node B, but node A signed the checkpoint.',
    (_b, r) => {
      r.record.node = ACCOUNT_B;
    },
  );
  add('record-node-unknown', 'RECEIPT_NODE_UNKNOWN', 'record.node names an account nobody trusts.', (_b, r) => {
    r.record.node = ACCOUNT_C;
  });
  add('record-malformed', 'RECORD_INVALID', 'record.inputDigest is not 64 lower-case hex characters.', (_b, r) => {
    r.record.inputDigest = r.record.inputDigest.toUpperCase();
  });
  // --- the index and the proof ---
  add(
    'leaf-index-changed',
    'RECEIPT_INCLUSION_INVALID',
    'leafIndex 2 → 3: the proof is for another position.',
    (_b, r) => {
      r.leafIndex = 3;
    },
  );
  add('leaf-index-beyond-size', 'RECEIPT_LEAF_INDEX_OUT_OF_RANGE', 'leafIndex 5 in a tree of size 5.', (_b, r) => {
    r.leafIndex = 5;
  });
  add('proof-hash-flipped', 'RECEIPT_INCLUSION_INVALID', 'One bit of inclusionProof[1] flipped.', (_b, r) => {
    r.inclusionProof[1] = flipHex(r.inclusionProof[1] as string, 5);
  });
  add(
    'proof-hash-dropped',
    'MERKLE_PROOF_MALFORMED',
    'The last inclusion proof hash removed (too short for the tree).',
    (_b, r) => {
      r.inclusionProof.pop();
    },
  );
  add('proof-hash-extra', 'MERKLE_PROOF_MALFORMED', 'An extra hash appended to the inclusion proof.', (_b, r) => {
    r.inclusionProof.push(toHex(hashChildren(new Uint8Array(32), new Uint8Array(32))));
  });
  add('proof-hash-not-hex', 'RECEIPT_MALFORMED', 'An inclusion proof entry that is not 64 hex characters.', (_b, r) => {
    r.inclusionProof[0] = 'zz';
  });
  // --- the checkpoint text, signature unchanged ---
  add('checkpoint-size-edited', 'NOTE_SIGNATURE_INVALID', 'Tree size line 5 → 6, old signature kept.', (_b, r) => {
    r.checkpoint = editText(r.checkpoint, (l) => {
      l[1] = '6';
    });
  });
  add('checkpoint-root-edited', 'NOTE_SIGNATURE_INVALID', 'Root hash line replaced, old signature kept.', (_b, r) => {
    r.checkpoint = editText(r.checkpoint, (l) => {
      l[2] = toBase64(new Uint8Array(32).fill(0xab));
    });
  });
  add('checkpoint-origin-edited', 'NOTE_SIGNATURE_INVALID', 'Origin line changed, old signature kept.', (_b, r) => {
    r.checkpoint = editText(r.checkpoint, (l) => {
      l[0] = `${l[0]}x`;
    });
  });
  add(
    'note-text-extension',
    'NOTE_SIGNATURE_INVALID',
    'An extension line added to the signed text, old signature kept.',
    (_b, r) => {
      r.checkpoint = editText(r.checkpoint, (l) => {
        l.push('extra');
      });
    },
  );
  // --- the checkpoint, re-signed by the real key (a lying node) ---
  add(
    'checkpoint-size-resigned',
    'RECEIPT_LEAF_INDEX_OUT_OF_RANGE',
    'Node A signs a size-2 tree head that does not cover index 2.',
    (_b, r) => {
      r.checkpoint = otherCheckpoint(checkpoint5, { size: 2 });
    },
  );
  add(
    'checkpoint-root-resigned',
    'RECEIPT_INCLUSION_INVALID',
    'Node A signs a different root for size 5 (a forked log).',
    (_b, r) => {
      r.checkpoint = otherCheckpoint(checkpoint5, { rootHash: new Uint8Array(32).fill(7) });
    },
  );
  add(
    'checkpoint-origin-resigned',
    'CHECKPOINT_ORIGIN_MISMATCH',
    "Node A's key signs a checkpoint whose origin is another log.",
    (_b, r) => {
      r.checkpoint = resign(r.checkpoint, signerA, (l) => {
        l[0] = ORIGIN_B;
      });
    },
  );
  add(
    'checkpoint-malformed-resigned',
    'CHECKPOINT_MALFORMED',
    'Node A signs a body whose size line is not a decimal.',
    (_b, r) => {
      r.checkpoint = resign(r.checkpoint, signerA, (l) => {
        l[1] = '05';
      });
    },
  );
  // --- the signature and the key ---
  add(
    'signature-flipped',
    'NOTE_SIGNATURE_INVALID',
    'One character of the signature (after the key ID) changed.',
    (_b, r) => {
      const i = r.checkpoint.length - 20;
      const c = r.checkpoint[i] === 'A' ? 'B' : 'A';
      r.checkpoint = `${r.checkpoint.slice(0, i)}${c}${r.checkpoint.slice(i + 1)}`;
    },
  );
  add(
    'signature-impostor-key',
    'NOTE_UNKNOWN_KEY',
    "Re-signed by a key with node A's name but another key (so another key ID).",
    (_b, r) => {
      r.checkpoint = resign(r.checkpoint, impostor);
    },
  );
  add('signature-removed', 'NOTE_MALFORMED', 'The signature line removed.', (_b, r) => {
    r.checkpoint = `${r.checkpoint.slice(0, r.checkpoint.lastIndexOf('\n\n'))}\n`;
  });
  add('trust-wrong-key', 'NOTE_UNKNOWN_KEY', "The verifier's trusted key for node A is another key.", () => {}, {
    trust: { nodes: [{ address: ACCOUNT_A, logKey: KEY_IMPOSTOR }] },
  });
  add(
    'bundle-nodes-not-trusted',
    'RECEIPT_NODE_UNKNOWN',
    'Node entries carried in the bundle are not trusted unless the verifier opts in.',
    () => {},
    {
      trust: { nodes: [] },
    },
  );
  // --- the bundle ---
  add('bundle-output-tampered', 'RECEIPT_OUTPUT_DIGEST_MISMATCH', 'bundle.output changed after the fact.', (b) => {
    (b.output as { logits: { data: number[] } }).logits.data[0] = 9.5;
  });
  add('bundle-input-tampered', 'RECEIPT_INPUT_DIGEST_MISMATCH', 'bundle.input changed after the fact.', (b) => {
    (b.input as { x: { data: number[] } }).x.data[3] = 0.3;
  });
  add(
    'expected-output-digest',
    'RECEIPT_OUTPUT_DIGEST_MISMATCH',
    'The caller expected another output digest than the record has.',
    () => {},
    {
      options: { outputDigest: '00'.repeat(32) },
    },
  );
  add('bundle-media-type', 'BUNDLE_VERSION_UNSUPPORTED', 'An unknown bundle media type.', (b) => {
    (b as { mediaType: string }).mediaType = 'application/vnd.verity.bundle.v9+json';
  });
  add('bundle-empty', 'BUNDLE_EMPTY', 'No receipts.', (b) => {
    b.receipts = [];
  });
  add('bundle-unknown-field', 'BUNDLE_MALFORMED', 'An unknown top-level field.', (b) => {
    (b as Record<string, unknown>).extra = true;
  });
  add('bundle-node-entry-malformed', 'BUNDLE_MALFORMED', 'A node entry whose logKey is not a verifier key.', (b) => {
    (b.nodes as unknown as { logKey: string }[])[0]!.logKey = 'not-a-key';
  });
  add(
    'bundle-same-node-twice',
    'BUNDLE_RECEIPTS_INCONSISTENT',
    'The same receipt twice: one node cannot count twice.',
    (b) => {
      b.receipts.push(clone(receipt));
    },
  );
  add(
    'bundle-quorum-disagrees',
    'BUNDLE_RECEIPTS_INCONSISTENT',
    "Node B's receipt is for another output (index 0 of B's log).",
    (b) => {
      b.receipts.push(clone(logB.receipt(0)));
    },
  );
  add(
    'consistency-proof-flipped',
    'BUNDLE_CONSISTENCY_INVALID',
    'One bit of the consistency proof to the anchor flipped.',
    (b) => {
      const c = clone(consistency);
      c.proof[0] = flipHex(c.proof[0] as string, 3);
      b.consistency = [c];
    },
    { trust: anchoredTrust, options: { requireAnchor: true } },
  );
  add(
    'anchor-missing',
    'BUNDLE_ANCHOR_MISMATCH',
    'The verifier requires an anchor link and the bundle has none.',
    () => {},
    {
      trust: anchoredTrust,
      options: { requireAnchor: true },
    },
  );
  add(
    'anchor-forked',
    'BUNDLE_ANCHOR_MISMATCH',
    'The chain anchors another root at the same size (the node rewrote its log).',
    () => {},
    {
      trust: { ...trust, anchors: [{ node: ACCOUNT_A, size: 5, rootHash: '07'.repeat(32) }] },
    },
  );
  // --- witnesses (docs/protocol.md "Witnesses"): cosignature/v1 lines on the receipt's checkpoint ---
  const witnesses = [1, 2, 3].map((i) => createCosigner(`fixtures.verity.test/witness/w${i}`, seed(40 + i)));
  const witnessTrust: Trust = { ...trust, witnesses: { keys: witnesses.map((w) => w.verifierKey), threshold: 2 } };
  const body5 = receipt.checkpoint.slice(0, receipt.checkpoint.lastIndexOf('\n\n') + 1);
  const cosign = (i: number, t = 1_793_491_300 + i) => (witnesses[i] as (typeof witnesses)[number]).cosign(body5, t);
  add(
    'valid-witnessed',
    'ok',
    'Valid: the checkpoint carries cosignatures (C2SP cosignature/v1) of witnesses w1 and w3; the policy needs 2 of 3.',
    (_b, r) => {
      r.checkpoint = addCosignatures(r.checkpoint, cosign(0) + cosign(2));
    },
    { trust: witnessTrust },
  );
  add(
    'witness-quorum-unmet',
    'WITNESS_QUORUM_UNMET',
    'Only one of the named witnesses cosigned (w2); the policy needs 2 of 3.',
    (_b, r) => {
      r.checkpoint = addCosignatures(r.checkpoint, cosign(1));
    },
    { trust: witnessTrust },
  );
  add(
    'witness-cosignature-forged',
    'COSIGNATURE_INVALID',
    "w3's line carries w3's key ID but a signature over another checkpoint (size 6): forged or moved.",
    (_b, r) => {
      const other = signCheckpoint({ ...parseCheckpoint(body5), size: 6 }, signerA);
      const w3 = witnesses[2] as (typeof witnesses)[number];
      const moved = w3.cosign(other.slice(0, other.lastIndexOf('\n\n') + 1), 1_793_491_303);
      r.checkpoint = addCosignatures(r.checkpoint, cosign(0) + moved);
    },
    { trust: witnessTrust },
  );
  add(
    'witness-same-twice',
    'WITNESS_QUORUM_UNMET',
    'w1 cosigned twice (two timestamps): one witness counts once toward the 2 of 3.',
    (_b, r) => {
      r.checkpoint = addCosignatures(r.checkpoint, cosign(0, 1_793_491_300) + cosign(0, 1_793_491_399));
    },
    { trust: witnessTrust },
  );
  return { trust, fixtures };
}
