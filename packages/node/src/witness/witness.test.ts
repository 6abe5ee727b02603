import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addCosignatures,
  createEd25519Signer,
  createMemoryTree,
  EMPTY_ROOT,
  formatAddCheckpoint,
  generateNoteKey,
  hashLeaf,
  sha256,
  signCheckpoint,
  toHex,
  utf8,
  verifyReceipt,
  verifyWitnessPolicy,
} from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../test-support/wait.js';
import { loadConfig } from '../config.js';
import { openKeystore } from '../keys.js';
import { makeRecord, NODE } from '../log/test-support/log-fixtures.js';
import { startNode, type VerityNode } from '../node.js';

// Real nodes on real sockets with real state files. The "log" that talks to the witness first is
// test code: a key and a Merkle tree of our own, so it can sign what an honest log never would
// (two heads of one size, a fork), and a second real node submits its checkpoints by itself.
const LIAR_ORIGIN = 'liar.verity.test/log';
const liarSeed = new Uint8Array(32).fill(5);
const liar = createEd25519Signer(LIAR_ORIGIN, liarSeed);
const LIAR_KEY = generateNoteKey(LIAR_ORIGIN, liarSeed).verifierKey;

const honest = createMemoryTree();
for (let i = 0; i < 8; i++) honest.append(hashLeaf(new Uint8Array([i])));
const fork = createMemoryTree();
for (let i = 0; i < 8; i++) fork.append(hashLeaf(new Uint8Array([i === 1 ? 0xee : i]))); // differs from leaf 1 on
const head = (tree: typeof honest, size: number, signer = liar) =>
  signCheckpoint({ origin: LIAR_ORIGIN, size, rootHash: tree.root(size), extensions: [] }, signer);

let witness: VerityNode;
let witnessDir: string;
let logNode: VerityNode;
let witnessKey: string;

function witnessConfig(dir: string, logs: string[]) {
  return loadConfig({ overrides: { dataDir: dir, port: 0, logLevel: 'silent', fsync: false, witness: { logs } } });
}

async function addCheckpoint(body: string, url = witness.url) {
  const r = await fetch(`${url}/add-checkpoint`, { method: 'POST', body });
  return { status: r.status, type: r.headers.get('content-type') ?? '', text: await r.text() };
}

let logNodeKey: string;

beforeAll(async () => {
  const logDir = await mkdtemp(join(tmpdir(), 'verity-witnessed-'));
  logNodeKey = openKeystore(logDir).logKey; // made now so the witness can be told of it
  witnessDir = await mkdtemp(join(tmpdir(), 'verity-witness-'));
  witness = await startNode(witnessConfig(witnessDir, [LIAR_KEY, logNodeKey]));
  witnessKey = ((await (await fetch(`${witness.url}/v1/witness`)).json()) as { verifierKey: string }).verifierKey;
  logNode = await startNode(
    loadConfig({
      overrides: {
        dataDir: logDir,
        port: 0,
        logLevel: 'silent',
        fsync: false,
        witness: { submitTo: [{ url: witness.url, key: witnessKey }], intervalMs: 50 },
      },
    }),
  );
});

afterAll(async () => {
  await logNode?.stop();
  await witness?.stop();
});

describe('a node as a C2SP tlog-witness (POST /add-checkpoint)', () => {
  it('cosigns a first checkpoint (old 0) with a cosignature/v1 line under its published key', async () => {
    const note = head(honest, 3);
    const r = await addCheckpoint(formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: note }));
    expect(r.status).toBe(200);
    expect(r.text).toMatch(/^\u2014 \S+ \S+\n$/);
    const [c] = verifyWitnessPolicy(addCosignatures(note, r.text), { keys: [witnessKey], threshold: 1 });
    expect(c?.witness).toBe(`${witness.context.keys.origin}/witness`);
  });

  it('answers a stale old size with 409 and its latest size as text/x.tlog.size', async () => {
    const r = await addCheckpoint(formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: head(honest, 5) }));
    expect([r.status, r.type, r.text]).toEqual([409, 'text/x.tlog.size', '3\n']);
  });

  it('refuses an inconsistent checkpoint with 422: a fork whose proof does not reach the cosigned head', async () => {
    const r = await addCheckpoint(
      formatAddCheckpoint({ oldSize: 3, proof: fork.consistencyProof(3, 6), checkpoint: head(fork, 6) }),
    );
    expect(r.status).toBe(422);
    expect(JSON.parse(r.text).error.code).toBe('WITNESS_CONSISTENCY_INVALID');
  });

  it('refuses a second head of the cosigned size with 422 (same size, other root)', async () => {
    const other = signCheckpoint({ origin: LIAR_ORIGIN, size: 3, rootHash: EMPTY_ROOT, extensions: [] }, liar);
    const r = await addCheckpoint(formatAddCheckpoint({ oldSize: 3, proof: [], checkpoint: other }));
    expect([r.status, JSON.parse(r.text).error.code]).toEqual([422, 'WITNESS_CONSISTENCY_INVALID']);
  });

  it('refuses an unknown origin (404), a foreign signature (403) and an old size above the size (400)', async () => {
    const stranger = createEd25519Signer('stranger.test/log', new Uint8Array(32).fill(6));
    const unknown = signCheckpoint(
      { origin: 'stranger.test/log', size: 1, rootHash: honest.root(1), extensions: [] },
      stranger,
    );
    const r404 = await addCheckpoint(formatAddCheckpoint({ oldSize: 0, proof: [], checkpoint: unknown }));
    expect([r404.status, JSON.parse(r404.text).error.code]).toEqual([404, 'WITNESS_UNKNOWN_LOG']);
    const impostor = createEd25519Signer(LIAR_ORIGIN, new Uint8Array(32).fill(7));
    const r403 = await addCheckpoint(
      formatAddCheckpoint({ oldSize: 3, proof: honest.consistencyProof(3, 5), checkpoint: head(honest, 5, impostor) }),
    );
    expect([r403.status, JSON.parse(r403.text).error.code]).toEqual([403, 'WITNESS_LOG_UNSIGNED']);
    const r400 = await addCheckpoint(formatAddCheckpoint({ oldSize: 7, proof: [], checkpoint: head(honest, 5) }));
    expect([r400.status, JSON.parse(r400.text).error.code]).toEqual([400, 'WITNESS_OLD_SIZE_INVALID']);
    const garbage = await addCheckpoint('hello');
    expect([garbage.status, JSON.parse(garbage.text).error.code]).toEqual([400, 'WITNESS_REQUEST_MALFORMED']);
  });

  it('accepts the consistent extension, keeps it across a restart, and serves it to monitors', async () => {
    const r = await addCheckpoint(
      formatAddCheckpoint({ oldSize: 3, proof: honest.consistencyProof(3, 6), checkpoint: head(honest, 6) }),
    );
    expect(r.status).toBe(200);
    await witness.stop();
    witness = await startNode(witnessConfig(witnessDir, [LIAR_KEY, logNodeKey]));
    const stale = await addCheckpoint(formatAddCheckpoint({ oldSize: 3, proof: [], checkpoint: head(honest, 3) }));
    expect([stale.status, stale.text]).toEqual([409, '6\n']);
    const served = await fetch(`${witness.url}/${toHex(sha256(utf8(LIAR_ORIGIN)))}/checkpoint`);
    const note = await served.text();
    expect(note.startsWith(head(honest, 6))).toBe(true);
    expect(verifyWitnessPolicy(note, { keys: [witnessKey], threshold: 1 })).toHaveLength(1);
    expect((await fetch(`${witness.url}/${'00'.repeat(32)}/checkpoint`)).status).toBe(404);
  });
});

describe('the witness under concurrent requests', () => {
  it('two extensions of the same old size at once: one is cosigned, the other gets 409 (no roll-back race)', async () => {
    const [r7, r8] = await Promise.all([
      addCheckpoint(
        formatAddCheckpoint({ oldSize: 6, proof: honest.consistencyProof(6, 7), checkpoint: head(honest, 7) }),
      ),
      addCheckpoint(
        formatAddCheckpoint({ oldSize: 6, proof: honest.consistencyProof(6, 8), checkpoint: head(honest, 8) }),
      ),
    ]);
    expect([r7.status, r8.status].sort()).toEqual([200, 409]);
    const winner = r7.status === 200 ? 7 : 8;
    expect((r7.status === 409 ? r7 : r8).text).toBe(`${winner}\n`);
    const note = await (await fetch(`${witness.url}/${toHex(sha256(utf8(LIAR_ORIGIN)))}/checkpoint`)).text();
    expect(note.startsWith(head(honest, winner))).toBe(true);
  });
});

describe('a node asking a witness', () => {
  it('submits its grown checkpoint by itself and serves receipts whose checkpoint carries the cosignature', async () => {
    // The witness restarted on another port in the test above: this node keeps asking the old
    // URL, so point it at a fresh node on the same data dir first.
    await logNode.stop();
    logNode = await startNode(
      loadConfig({
        overrides: {
          dataDir: logNode.context.config.dataDir,
          port: 0,
          logLevel: 'silent',
          fsync: false,
          witness: { submitTo: [{ url: witness.url, key: witnessKey }], intervalMs: 50 },
        },
      }),
    );
    for (let i = 0; i < 4; i++) await logNode.context.log.append(makeRecord(i, 'witnessed'));
    await until(async () => {
      const r = await fetch(`${logNode.url}/v1/log/witnessed`);
      return r.status === 200 && (await r.text()).includes('\n4\n') ? true : undefined;
    }, 'a cosigned checkpoint of size 4');
    // The log grows past the cosigned checkpoint: the receipt is still served against the one
    // its witnesses cosigned (it covers the record), whatever the next witness round has done.
    for (let i = 4; i < 7; i++) await logNode.context.log.append(makeRecord(i, 'witnessed'));
    const receipt = await (await fetch(`${logNode.url}/v1/receipts/witnessed-2`)).json();
    const trust = { nodes: [{ address: NODE, logKey: logNode.context.keys.logKey }] };
    const required = { ...trust, witnesses: { keys: [witnessKey], threshold: 1 } };
    const ok = verifyReceipt(receipt, required);
    expect(ok.ok && ok.receipts[0]?.cosignatures?.[0]?.witness).toBe(`${witness.context.keys.origin}/witness`);
    // The same receipt stripped of the cosignature verifies as a receipt, but not under the policy.
    const witnessLine = `\u2014 ${witness.context.keys.origin}/witness `;
    const stripped = receipt.checkpoint
      .split('\n')
      .filter((l: string) => !l.startsWith(witnessLine))
      .join('\n');
    const bare = { ...receipt, checkpoint: stripped };
    expect(verifyReceipt(bare, trust).ok).toBe(true);
    const refused = verifyReceipt(bare, required);
    expect(refused.ok ? 'ok' : refused.code).toBe('WITNESS_QUORUM_UNMET');
  }, 60_000);
});
