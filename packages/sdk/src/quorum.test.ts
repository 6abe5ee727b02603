import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deploymentToJson } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import type { VerityNode } from '@verity/node';
import {
  addressFromPrivateKey,
  BUNDLE_MEDIA_TYPE,
  createEd25519Signer,
  createMemoryLog,
  decodeInferFrame,
  encodeInferFrame,
  generateNoteKey,
  INFER_MEDIA_TYPE,
  type InferenceRecord,
  type QuorumEvidence,
  quorumSeed,
  type Receipt,
  type RegistrySnapshot,
  rankQuorum,
  type TensorMap,
  verifyBundle,
  verifyReceipt,
} from '@verity/protocol';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import type { LoadedModel } from '../../node/src/runtimes/runtime.js';
import { startChainNode } from '../../node/src/test-support/chain-node.js';
import { createClient, registrySnapshot } from './index.js';

// Mode quorum on a real anvil with four real nodes over HTTP, one of which lies: its runtime is
// wrapped here, in test code, so it signs and logs a wrong output under its own key (what a
// dishonest operator's node does). The selection is the caller's (nonce, block); the coordinator
// cannot steer it, and the liar is outvoted with its receipt kept as evidence.
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const GGUF = fileURLToPath(new URL('../../../examples/models/tiny-chat.gguf', import.meta.url));
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };
const K = 3;

let chain: TestChain;
let work: string;
let deploymentFile: string;
let registry: { rpcUrl: string; nodeRegistry: `0x${string}` };
/** The chain as a client takes it (the deployment file's content). */
let chainOptions: { rpcUrl: string; deployment: unknown };
const nodes: VerityNode[] = [];
let liar: VerityNode;
let modelId: string;

function nodeOnChain(dataDir: string): Promise<VerityNode> {
  return startChainNode(chain, {
    dataDir,
    deploymentFile,
    overrides: {
      chain: { stakeWei: parseEther('2').toString() },
      llm: { gpu: 'cpu', sequences: 2, contextSize: 2048 },
      // Four nodes on one machine call each other on loopback (docs/api.md "Outbound calls").
      peers: { localNetwork: true },
    },
  });
}

/**
 * Fault injection from test code: every float output this node computes is nudged, and every
 * generated text extended, before it is signed.
 */
function makeLiar(node: VerityNode): void {
  const executor = node.context.executor as { run: (...args: unknown[]) => Promise<unknown> };
  const run = executor.run.bind(executor);
  executor.run = async (...args: unknown[]) => {
    const out = (await run(...args)) as TensorMap | { text: string } | unknown;
    if (typeof out !== 'object' || out === null) return out;
    if (typeof (out as { text?: unknown }).text === 'string') {
      return { ...out, text: `${(out as { text: string }).text} (a lie)` };
    }
    const lied: Record<string, unknown> = {};
    for (const [name, t] of Object.entries(out as TensorMap)) {
      lied[name] = t.data instanceof Float32Array ? { ...t, data: (t.data as Float32Array).map((v) => v + 0.125) } : t;
    }
    return lied;
  };
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy();
  work = await mkdtemp(join(tmpdir(), 'verity-quorum-'));
  deploymentFile = join(work, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  registry = { rpcUrl: chain.anvil.rpcUrl, nodeRegistry: deployment.contracts.nodeRegistry };
  chainOptions = { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson(deployment) };
  for (let i = 0; i < 4; i++) nodes.push(await nodeOnChain(join(work, `node-${i}`)));
  liar = nodes[3] as VerityNode;
  makeLiar(liar);
  const first = nodes[0] as VerityNode;
  const admin = createClient({ url: first.url, apiKey: first.context.keys.apiKey });
  modelId = (await admin.pushModel({ name: 'iris', data: new Uint8Array(readFileSync(IRIS)) })).id;
}, 120_000);
afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined);
  await chain?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const coordinator = () => nodes[0] as VerityNode;
const head = async () => Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));

/** A nonce (deterministic) whose ranking at `snapshot` puts `node` among the first k. */
function nonceRanking(snapshot: RegistrySnapshot, want: (top: string[]) => boolean): string {
  for (let i = 0; i < 1000; i++) {
    const nonce = i.toString(16).padStart(32, '0');
    const top = rankQuorum(snapshot, quorumSeed(snapshot.block.hash, nonce), K).map((n) => n.address.toLowerCase());
    if (want(top)) return nonce;
  }
  throw new Error('no such nonce');
}

interface QuorumBody {
  requestId: string;
  receipts: Receipt[];
  nodes: unknown[];
  output: unknown;
  quorum: QuorumEvidence;
}

async function postQuorum(
  body: Record<string, unknown>,
): Promise<{ status: number; json: QuorumBody & { error?: { code: string } } }> {
  const res = await fetch(`${coordinator().url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: modelId, input: INPUT, mode: 'quorum', k: K, ...body }),
  });
  return { status: res.status, json: (await res.json()) as QuorumBody & { error?: { code: string } } };
}

const bundleOf = (b: QuorumBody) => ({ mediaType: BUNDLE_MEDIA_TYPE, receipts: b.receipts, quorum: b.quorum });

describe('mode quorum against the chain registry', () => {
  it('a lying member is outvoted, its genuinely signed receipt kept as evidence', async () => {
    const block = await head();
    const snapshot = await registrySnapshot(registry, BigInt(block));
    const liarAddress = liar.context.keys.address.toLowerCase();
    // A nonce for which the liar holds one of the first k seats: the coordinator must go past it.
    const clientNonce = nonceRanking(snapshot, (top) => top.includes(liarAddress));
    const client = createClient({ url: coordinator().url, chain: chainOptions });
    const result = await client.infer({ model: 'iris', input: INPUT, mode: 'quorum', k: K, clientNonce });
    expect(result.receipts).toHaveLength(K);
    expect(result.receipts.map((r) => r.record.node.toLowerCase())).not.toContain(liarAddress);
    expect(result.dissent?.map((r) => r.record.node.toLowerCase())).toEqual([liarAddress]);
    const bundle = result.bundle();
    expect(bundle.quorum?.asked.map((a) => a.outcome).sort()).toEqual(['agreed', 'agreed', 'agreed', 'dissent']);
    // The evidence is the liar's own: its registered key signed it, for this request and input.
    const liarEntry = snapshot.nodes.find((n) => n.address.toLowerCase() === liarAddress);
    const dissent = result.dissent?.[0] as Receipt;
    expect(verifyReceipt(dissent, { nodes: [liarEntry as { address: string; logKey: string }] }).ok).toBe(true);
    expect(dissent.record.outputDigest).not.toBe(result.record.outputDigest);
    expect(dissent.record.requestId).toBe(result.requestId);
    const verified = verifyBundle(bundle, { nodes: [], registry: await registrySnapshot(registry, BigInt(block)) });
    expect(verified.ok && verified.quorum).toMatchObject({ selection: 'checked' });
    expect(verified.ok && verified.quorum?.dissent.map((v) => v.record.node.toLowerCase())).toEqual([liarAddress]);
  }, 120_000);

  it('ground request id: the coordinator choosing request ids cannot change who is asked', async () => {
    const block = await head();
    const clientNonce = 'ab'.repeat(16);
    const asked = new Set<string>();
    // Caller ids are 22–64 characters (docs/api.md); these differ only in their last one.
    for (const requestId of [1, 2, 3, 4, 5].map((i) => `grind-0123456789abcdef-${i}`)) {
      const { status, json } = await postQuorum({ requestId, clientNonce, block });
      expect(status, JSON.stringify(json.error)).toBe(200);
      asked.add(JSON.stringify(json.quorum.asked.map((a) => a.address)));
      expect(json.receipts.every((r) => r.record.requestId === requestId)).toBe(true);
    }
    // Five request ids, one selection: the seed is (block hash, the caller's nonce) only.
    expect(asked.size).toBe(1);
    const snapshot = await registrySnapshot(registry, BigInt(block));
    const expected = rankQuorum(snapshot, quorumSeed(snapshot.block.hash, clientNonce), 1)[0]?.address;
    expect(JSON.parse([...asked][0] as string)[0]).toBe(expected);
  }, 120_000);

  it('altered skipped list or ranking in a real answer is refused', async () => {
    const block = await head();
    const snapshot = await registrySnapshot(registry, BigInt(block));
    const liarAddress = liar.context.keys.address.toLowerCase();
    const clientNonce = nonceRanking(snapshot, (top) => top[0] === liarAddress);
    const { json } = await postQuorum({ clientNonce, block });
    const trust = { nodes: [], registry: snapshot };
    const code = (b: unknown) => {
      const r = verifyBundle(b, trust);
      return r.ok ? 'ok' : r.code;
    };
    expect(code(bundleOf(json))).toBe('ok');
    // Hide the dissenter (place 0): the asked list no longer starts at the ranking's head.
    const hidden = bundleOf(structuredClone(json));
    hidden.quorum = { ...hidden.quorum, asked: hidden.quorum.asked.slice(1), dissent: [] };
    expect(code(hidden)).toBe('QUORUM_SELECTION_INVALID');
    // Call it skipped while dropping its receipt: the list and the evidence disagree.
    const relabelled = bundleOf(structuredClone(json));
    relabelled.quorum = {
      ...relabelled.quorum,
      asked: relabelled.quorum.asked.map((a, i) => (i === 0 ? { address: a.address, outcome: 'skipped' as const } : a)),
    };
    expect(code(relabelled)).toBe('QUORUM_SKIPPED_MISMATCH');
    // A registry read at another block is another selection.
    expect(
      verifyBundle(bundleOf(json), {
        nodes: [],
        registry: { ...snapshot, block: { ...snapshot.block, number: block - 1 } },
      }).ok,
    ).toBe(false);
  }, 120_000);

  it('forged multi-key bundle: three self-made keys are not the registry (RECEIPT_NODE_UNREGISTERED)', async () => {
    const block = await head();
    const { json } = await postQuorum({ clientNonce: 'cd'.repeat(16), block });
    // The honest answer's records, re-logged by three fresh keys and accounts the forger made.
    const forged = json.receipts.map((r, i) => {
      const key = new Uint8Array(32).fill(0x70 + i);
      const address = addressFromPrivateKey(`0x${(0x70 + i).toString(16).repeat(32)}`);
      const log = createMemoryLog(createEd25519Signer(`forger/${i}`, key));
      return {
        receipt: log.receipt(log.append({ ...r.record, node: address })),
        entry: { address, logKey: generateNoteKey(`forger/${i}`, key).verifierKey },
      };
    });
    const bundle = {
      mediaType: BUNDLE_MEDIA_TYPE,
      receipts: forged.map((f) => f.receipt),
      nodes: forged.map((f) => f.entry),
    };
    const snapshot = await registrySnapshot(registry, BigInt(block));
    const r = verifyBundle(bundle, { nodes: [], registry: snapshot, insecureAcceptBundleNodes: false });
    expect(r.ok ? 'ok' : r.code).toBe('RECEIPT_NODE_UNREGISTERED');
  }, 120_000);

  it('the SDK refuses an answer drawn at another block than the one it named', async () => {
    // A coordinator that swaps the caller's block for one of its choosing (a lever to grind seeds):
    // here a proxy in front of an honest node rewrites the block in the request.
    // The SDK sends a binary frame (docs/protocol.md §2.6): the block is in its JSON header.
    const proxy = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      let body: Uint8Array = Buffer.concat(chunks);
      const contentType = req.headers['content-type'] ?? 'application/json';
      if (req.url === '/v1/infer') {
        const binary = contentType.startsWith(INFER_MEDIA_TYPE);
        const frame = binary ? decodeInferFrame(body) : undefined;
        const json = (frame?.header ?? JSON.parse(Buffer.from(body).toString())) as { block?: number };
        if (json.block !== undefined) json.block -= 1;
        body = frame ? encodeInferFrame(JSON.stringify(json), frame.tensorBytes) : Buffer.from(JSON.stringify(json));
      }
      const upstream = await fetch(`${coordinator().url}${req.url}`, {
        method: req.method ?? 'GET',
        headers: { 'content-type': contentType, accept: req.headers.accept ?? '*/*' },
        ...(req.method === 'GET' || req.method === 'HEAD' ? {} : { body: body as BodyInit }),
      });
      res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const client = createClient({ url, chain: chainOptions });
      await expect(client.infer({ model: modelId, input: INPUT, mode: 'quorum', k: K })).rejects.toMatchObject({
        code: 'RESPONSE_INVALID',
        details: { k: K, block: expect.any(Number) },
      });
    } finally {
      proxy.close();
    }
  }, 120_000);

  it('language models too: members with one fixed seed agree token for token; the liar is outvoted', async () => {
    const first = coordinator();
    const admin = createClient({ url: first.url, apiKey: first.context.keys.apiKey });
    await admin.pushModel({ name: 'tiny-chat', format: 'gguf', data: new Uint8Array(readFileSync(GGUF)) });
    const block = await head();
    const snapshot = await registrySnapshot(registry, BigInt(block));
    const liarAddress = liar.context.keys.address.toLowerCase();
    const clientNonce = nonceRanking(snapshot, (top) => top.includes(liarAddress));
    const res = await fetch(`${first.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-verity-mode': 'quorum',
        'x-verity-k': String(K),
        'x-verity-block': String(block),
        'x-verity-client-nonce': clientNonce,
      },
      // Sampling, not greedy: agreement comes from the one seed every member runs with.
      body: JSON.stringify({
        model: 'tiny-chat',
        messages: [{ role: 'user', content: 'Hello' }],
        max_tokens: 16,
        temperature: 0.8,
      }),
    });
    const json = (await res.json()) as {
      choices: { message: { content: string } }[];
      verity: { receipts: Receipt[]; quorum: QuorumEvidence; params: { seed: number } };
      error?: unknown;
    };
    expect(res.status, JSON.stringify(json.error)).toBe(200);
    expect(json.choices[0]?.message.content).not.toContain('(a lie)');
    expect(json.verity.receipts).toHaveLength(K);
    expect(json.verity.receipts.every((r) => r.record.kind === 'llm' && r.record.mode === 'quorum')).toBe(true);
    expect(json.verity.quorum.dissent.map((r) => r.record.node.toLowerCase())).toEqual([liarAddress]);
    const verified = verifyBundle(
      { mediaType: BUNDLE_MEDIA_TYPE, receipts: json.verity.receipts, quorum: json.verity.quorum },
      { nodes: [], registry: snapshot },
    );
    expect(verified.ok ? verified.quorum?.selection : verified.code).toBe('checked');

    // The SDK does the same and checks the message it got against the records.
    const client = createClient({ url: first.url, chain: chainOptions });
    const answer = await client.chatQuorum({
      request: { model: 'tiny-chat', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 16, temperature: 0.8 },
      k: K,
      clientNonce,
    });
    expect(answer.receipts).toHaveLength(K);
    expect(answer.record.mode).toBe('quorum');
    expect(answer.message.content).not.toContain('(a lie)');
    expect(answer.bundle().input).toBeDefined();
  }, 180_000);

  it('the coordinator takes the caller’s block only when recent and known, and needs the caller’s nonce', async () => {
    const block = await head();
    expect((await postQuorum({ block })).json.error?.code).toBe('INVALID_ARGUMENT');
    expect((await postQuorum({ block, clientNonce: 'ab'.repeat(8) })).json.error?.code).toBe('INVALID_ARGUMENT');
    expect((await postQuorum({ block: block + 1000, clientNonce: 'ab'.repeat(16) })).json.error?.code).toBe(
      'QUORUM_BLOCK_UNKNOWN',
    );
    await chain.testClient.mine({ blocks: 70 });
    // The coordinator reads the head at most a second late: ask until it has seen the new blocks.
    const code = await until(
      async () => (await postQuorum({ block, clientNonce: 'ab'.repeat(16) })).json.error?.code,
      'the coordinator to see the new head',
      90_000,
    );
    expect(code).toBe('QUORUM_BLOCK_STALE');
  }, 120_000);
});

describe('the portable profile: a quorum across hosts compares like with like', () => {
  /**
   * Another host, simulated in test code: its native runtime gives bits one ulp off on float
   * outputs (what another CPU instruction set may honestly give); its portable runtime is the
   * real onnxruntime-web, as on any host.
   */
  function asAnotherHost(node: VerityNode): () => void {
    const models = node.context.models as { get: (cid: string, path: string) => Promise<LoadedModel> };
    const get = models.get;
    models.get = async (cid, path) => {
      const model = await get.call(models, cid, path);
      return {
        ...model,
        run: async (inputs) => {
          const out = await model.run(inputs);
          const moved: TensorMap = Object.create(null);
          for (const [name, t] of Object.entries(out)) {
            if (!(t.data instanceof Float32Array)) moved[name] = t;
            else {
              const data = new Float32Array(t.data);
              const bits = new Uint32Array(data.buffer);
              bits[0] = (bits[0] as number) ^ 1;
              moved[name] = { ...t, data } as never;
            }
          }
          return moved;
        },
      };
    };
    return () => {
      models.get = get;
    };
  }

  it('native bits differ across hosts (no quorum), portable bits do not (quorum, the liar still outvoted)', async () => {
    const first = coordinator();
    const admin = createClient({ url: first.url, apiKey: first.context.keys.apiKey });
    await admin.pushModel({
      name: 'iris-both',
      data: new Uint8Array(readFileSync(IRIS)),
      profiles: ['native', 'portable'],
    });
    const block = await head();
    const snapshot = await registrySnapshot(registry, BigInt(block));
    const liarAddress = liar.context.keys.address.toLowerCase();
    const other = nodes[1] as VerityNode;
    // The three honest nodes hold the first k places; the liar is fourth.
    const clientNonce = nonceRanking(snapshot, (top) => !top.includes(liarAddress));
    const restore = asAnotherHost(other);
    try {
      // native: the other host's honest bits and the liar's both differ from the first host's.
      const native = await postQuorum({ model: 'iris-both', clientNonce, block, profile: 'native' });
      expect([native.status, native.json.error?.code]).toEqual([502, 'QUORUM_DISAGREEMENT']);
      // portable: every honest host gives the same bits.
      const portable = await postQuorum({ model: 'iris-both', clientNonce, block, profile: 'portable' });
      expect(portable.status, JSON.stringify(portable.json.error)).toBe(200);
      const receipts = portable.json.receipts;
      expect(receipts.map((r) => r.record.node.toLowerCase())).toContain(other.context.keys.address.toLowerCase());
      expect(new Set(receipts.map((r) => JSON.stringify(r.record.runtime)))).toEqual(
        new Set([
          JSON.stringify({
            id: 'onnxruntime-web',
            version: other.context.portable.runtime.version,
            profile: 'portable',
          }),
        ]),
      );
      expect(portable.json.quorum.asked.map((a) => a.outcome)).toEqual(['agreed', 'agreed', 'agreed']);
      expect(verifyBundle(bundleOf(portable.json), { nodes: [], registry: snapshot }).ok).toBe(true);
    } finally {
      restore();
    }
    // The liar lies under portable too, and is outvoted as under native.
    const withLiar = nonceRanking(snapshot, (top) => top.includes(liarAddress));
    const { status, json } = await postQuorum({
      model: 'iris-both',
      clientNonce: withLiar,
      block,
      profile: 'portable',
    });
    expect(status, JSON.stringify(json.error)).toBe(200);
    expect(json.quorum.dissent.map((r) => r.record.node.toLowerCase())).toEqual([liarAddress]);
    expect(json.quorum.dissent[0]?.record.runtime.profile).toBe('portable');
  }, 180_000);

  it('a member that ran another runtime version is skipped (QUORUM_RUNTIME_MISMATCH), neither agreeing nor dissenting', async () => {
    const block = await head();
    const snapshot = await registrySnapshot(registry, BigInt(block));
    const liarAddress = liar.context.keys.address.toLowerCase();
    const older = nodes[2] as VerityNode;
    const olderAddress = older.context.keys.address.toLowerCase();
    // k = 2: the older node in the first two places, the liar last of all four.
    let clientNonce = '';
    for (let i = 0; i < 1000 && clientNonce === ''; i++) {
      const nonce = (5000 + i).toString(16).padStart(32, '0');
      const order = rankQuorum(snapshot, quorumSeed(snapshot.block.hash, nonce), 4).map((n) => n.address.toLowerCase());
      if (order.slice(0, 2).includes(olderAddress) && order[3] === liarAddress) clientNonce = nonce;
    }
    const log = older.context.log as { append: (r: InferenceRecord) => Promise<Receipt> };
    const append = log.append;
    // Test code: this node's records name onnxruntime-web 1.29.0, as a node not yet upgraded would.
    log.append = (r) => append.call(log, { ...r, runtime: { ...r.runtime, version: '1.29.0' } });
    try {
      const { status, json } = await postQuorum({ model: 'iris-both', clientNonce, block, k: 2, profile: 'portable' });
      expect(status, JSON.stringify(json.error)).toBe(200);
      const skipped = json.quorum.asked.find((a) => a.address.toLowerCase() === olderAddress);
      expect(skipped).toMatchObject({ outcome: 'skipped', code: 'QUORUM_RUNTIME_MISMATCH' });
      expect(json.quorum.dissent).toEqual([]);
      expect(verifyBundle(bundleOf(json), { nodes: [], registry: snapshot }).ok).toBe(true);
    } finally {
      log.append = append;
    }
  }, 120_000);
});
