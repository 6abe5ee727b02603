/**
 * LLM records can be judged (issue 12): mode `audited` on the OpenAI routes keeps the canonical
 * input and output bytes (docs/protocol.md §10.2, §10.3) and serves them; jurors and auditors
 * re-execute `llm` records on their own LLM runtime with the record's params (seed included).
 *
 * Real nodes over real HTTP on a real anvil, serving the repo's tiny random-weight GGUF. A node
 * made to lie by test code (`startLyingNode`: its LLM appends words to every answer) answers an
 * audited chat; an auditor samples it, re-executes it and challenges; three honest nodes, running
 * the juror service of their own accord, fetch the model by manifest CID from a peer, re-execute,
 * vote and resolve: the liar is slashed. A false challenge of an honest audited record fails.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  challengeRecord,
  type DisputeParams,
  deploymentToJson,
  disputesAbi,
  getDispute,
  getDisputeCredit,
  getLatestAnchor,
  getNode,
} from '@verity/contracts';
import { readDeploymentFile, writeDeploymentFile } from '@verity/contracts/node';
import {
  canonicalJsonBytes,
  encodeRecord,
  fromBase64,
  type InferenceRecord,
  type LlmParams,
  llmChatInput,
  llmCompletionInput,
  type Receipt,
} from '@verity/protocol';
import { createClient, verifyChatCompletion } from '@verity/sdk';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../../test-support/wait.js';
import { startTestChain, TEST_DISPUTE_RULES, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { loadConfig } from '../config.js';
import { AUDIT_ANCHOR_MARGIN_SECONDS } from '../context.js';
import { openKeystore } from '../keys.js';
import { startNode, type VerityNode } from '../node.js';
import { createLlmRuntime } from '../runtimes/llm.js';
import { createOnnxRuntime } from '../runtimes/onnx.js';
import { openModelStore } from '../store/index.js';
import { startLyingNode } from '../test-support/lying-node.js';
import { auditNodes, localReexecutor } from './auditor.js';
import { reexecute } from './juror.js';
import { reexecuteLlm } from './reexecute.js';

const GGUF = fileURLToPath(new URL('../../../../examples/models/tiny-chat.gguf', import.meta.url));
const RULES: DisputeParams = TEST_DISPUTE_RULES;
const AUDITOR = 6;
const CHALLENGER = 7;
/** Every node and the auditor run the LLM alike: CPU, one sequence, one thread, 512 tokens. */
const LLM = { gpu: 'cpu', sequences: 1, contextSize: 512, threads: 1 } as const;

let chain: TestChain;
let deploymentFile: string;
const nodes: VerityNode[] = [];
const dirs: string[] = [];
let liar: VerityNode;
let honest: VerityNode[];
/** The tiny model's manifest CID. */
let model: string;

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function tempDir() {
  const dir = await mkdtemp(join(tmpdir(), 'verity-llm-jury-'));
  dirs.push(dir);
  return dir;
}

/** A node on the chain (funded, staking `stake` ETH), its juror service polling every 100 ms. */
async function chainNode(stake: string, liar = false): Promise<VerityNode> {
  const dataDir = await tempDir();
  const account = openKeystore(dataDir).address as `0x${string}`;
  await chain.testClient.setBalance({ address: account, value: parseEther('10') });
  const config = loadConfig({
    overrides: {
      dataDir,
      port: 0,
      logLevel: process.env.JURY_DEBUG ? 'info' : 'silent',
      fsync: false,
      peers: { localNetwork: true },
      llm: LLM,
      disputes: { juror: !liar, intervalMs: 100 },
      chain: {
        rpcUrl: chain.anvil.rpcUrl,
        deploymentFile,
        stakeWei: parseEther(stake).toString(),
        anchorIntervalMs: 100,
      },
    },
  });
  // The liar's language model appends words to every answer; its ONNX runtime stays honest.
  const node = liar ? await startLyingNode(config, { lie: false }) : await startNode(config);
  nodes.push(node);
  return node;
}

async function push(node: VerityNode): Promise<string> {
  const res = await fetch(`${node.url}/v1/models?name=tiny-chat&format=gguf`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
    body: readFileSync(GGUF),
  });
  expect(res.status).toBeLessThan(300);
  return ((await res.json()) as { id: string }).id;
}

interface Verity {
  requestId: string;
  model: string;
  params: LlmParams;
  receipt: Receipt;
  audit?: { windowClosesAt: number; payload: string };
}

interface Payload {
  version: number;
  kind: string;
  requestId: string;
  model: string;
  inputDigest: string;
  outputDigest: string;
  input: string;
  output: string;
  windowClosesAt: number;
}

/** A whole (not streamed) OpenAI call in mode audited. */
async function auditedCall(node: VerityNode, path: string, body: Record<string, unknown>) {
  const res = await fetch(`${node.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-verity-mode': 'audited' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    choices: { message?: { role: string; content: string | null }; text?: string; finish_reason: string }[];
    verity: Verity;
  };
}

/** A streamed chat call in mode audited: the chunks before `[DONE]`. */
async function auditedStream(node: VerityNode, body: Record<string, unknown>): Promise<Record<string, unknown>[]> {
  const res = await fetch(`${node.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-verity-mode': 'audited' },
    body: JSON.stringify({ ...body, stream: true }),
  });
  expect(res.status).toBe(200);
  const events = (await res.text())
    .split('\n\n')
    .map((e) => e.replace(/^data: /, ''))
    .filter((e) => e !== '');
  expect(events.at(-1)).toBe('[DONE]');
  return events.slice(0, -1).map((e) => JSON.parse(e) as Record<string, unknown>);
}

async function payloadOf(node: VerityNode, verity: Verity): Promise<Payload> {
  expect(verity.audit?.payload).toBe(`/v1/payloads/${verity.requestId}`);
  const res = await fetch(`${node.url}${verity.audit?.payload}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Payload;
}

/** The payload's bytes hash to the record's digests; its kind is `llm`; the window is the record's. */
function checkPayload(payload: Payload, verity: Verity): { input: unknown; output: unknown } {
  const record = verity.receipt.record;
  expect(record).toMatchObject({ kind: 'llm', mode: 'audited' });
  expect(verity.audit?.windowClosesAt).toBe(
    (Math.floor(record.timestamp / 1000) + RULES.challengeWindow + AUDIT_ANCHOR_MARGIN_SECONDS) * 1000,
  );
  expect(payload).toMatchObject({ version: 1, kind: 'llm', requestId: verity.requestId, model: record.model });
  const input = fromBase64(payload.input);
  const output = fromBase64(payload.output);
  expect(sha256(input)).toBe(record.inputDigest);
  expect(sha256(output)).toBe(record.outputDigest);
  return { input: JSON.parse(new TextDecoder().decode(input)), output: JSON.parse(new TextDecoder().decode(output)) };
}

async function anchored(node: VerityNode, leafIndex: number) {
  const deployment = await readDeploymentFile(deploymentFile);
  const account = node.context.keys.address as `0x${string}`;
  return until(async () => {
    const a = await getLatestAnchor(chain.publicClient, { logAnchor: deployment.contracts.logAnchor, node: account });
    return a !== undefined && a.treeSize > BigInt(leafIndex) ? a : undefined;
  }, `${account} to anchor leaf ${leafIndex}`);
}

beforeAll(async () => {
  chain = await startTestChain();
  const deployment = await chain.deploy(RULES);
  deploymentFile = join(await tempDir(), 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: chain.anvil.rpcUrl });
  liar = await chainNode('2', true);
  honest = [await chainNode('1'), await chainNode('1'), await chainNode('1')];
  // Pushed to the liar only: the honest nodes fetch it by manifest CID from a registered peer.
  model = await push(liar);
  CHAT.model = model;
}, 120_000);

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await chain?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const CHAT = {
  model: '', // the manifest CID, once pushed
  messages: [
    {
      role: 'user',
      content: [
        { type: 'text', text: 'Tell me ' },
        { type: 'text', text: 'a story' },
      ],
    },
  ],
  max_tokens: 24,
  temperature: 0.9, // sampled: the seed the node draws is in the params, and reproduces the tokens
};

describe('mode audited on the OpenAI routes', () => {
  it('a whole chat, a streamed chat and a completion keep payloads that hash to the digests and re-execute to them on another node', async () => {
    const node = honest[0] as VerityNode;
    const whole = await auditedCall(node, '/v1/chat/completions', CHAT);
    const wholePayload = checkPayload(await payloadOf(node, whole.verity), whole.verity);
    // The input is the request as sent with the effective params; the output is what came back.
    expect(wholePayload.input).toEqual(JSON.parse(JSON.stringify(llmChatInput(CHAT, whole.verity.params))));
    expect(wholePayload.output).toEqual({
      endpoint: 'chat.completions',
      message: whole.choices[0]?.message,
      finish_reason: whole.choices[0]?.finish_reason,
    });

    // Streamed: the audit member rides in the last chunk with the receipt.
    const chunks = await auditedStream(node, { ...CHAT, seed: 1234 });
    const verity = chunks.at(-1)?.verity as Verity;
    expect(chunks.slice(0, -1).every((c) => c.verity === undefined)).toBe(true);
    const streamed = checkPayload(await payloadOf(node, verity), verity);
    const text = chunks.map((c) => (c.choices as { delta?: { content?: string } }[])[0]?.delta?.content ?? '').join('');
    expect((streamed.output as { message: { content: string } }).message.content).toBe(text);
    expect(verity.params.seed).toBe(1234);

    const completion = await auditedCall(node, '/v1/completions', {
      model,
      prompt: 'Once upon',
      max_tokens: 12,
      seed: 5,
    });
    const completed = checkPayload(await payloadOf(node, completion.verity), completion.verity);
    expect(completed.input).toEqual(
      JSON.parse(JSON.stringify(llmCompletionInput({ model, prompt: 'Once upon' }, completion.verity.params))),
    );
    expect(completed.output).toEqual({
      endpoint: 'completions',
      text: completion.choices[0]?.text,
      finish_reason: completion.choices[0]?.finish_reason,
    });

    // A juror elsewhere (honest[1] lacks the model too: it fetches it by CID from a peer)
    // re-executes each payload's input and gets the record's output digest: same runtime and
    // profile, same params and seed ⇒ same bytes (docs/protocol.md §10.4).
    const juror = honest[1] as VerityNode;
    for (const v of [whole.verity, verity, completion.verity]) {
      const payload = await payloadOf(node, v);
      expect(await reexecute(juror.context, v.receipt.record, fromBase64(payload.input))).toEqual({
        outputDigest: `0x${v.receipt.record.outputDigest}`,
      });
    }
  }, 180_000);

  it('the SDK asks for mode audited with chat({ mode: "audited" }) and checks the record is audited', async () => {
    const node = honest[0] as VerityNode;
    const client = createClient({ url: node.url, insecureTrustNode: true });
    const answer = await client.chat({ request: { ...CHAT, seed: 9 }, mode: 'audited' });
    expect(answer.record.mode).toBe('audited');
    expect(answer.verity.audit?.payload).toBe(`/v1/payloads/${answer.verity.requestId}`);
    const payload = await payloadOf(node, answer.verity as Verity);
    expect(sha256(fromBase64(payload.output))).toBe(answer.record.outputDigest);
    // With any OpenAI client: verifyChatCompletion(…, { mode }) checks the mode logged.
    const trust = await client.trust();
    const audited = await auditedCall(node, '/v1/chat/completions', { ...CHAT, seed: 10 });
    expect(verifyChatCompletion({ ...CHAT, seed: 10 }, audited, trust, { mode: 'audited' }).record.mode).toBe(
      'audited',
    );
    const plain = await (
      await fetch(`${node.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ ...CHAT, seed: 10 }),
      })
    ).json();
    expect(() => verifyChatCompletion({ ...CHAT, seed: 10 }, plain, trust, { mode: 'audited' })).toThrow(
      expect.objectContaining({ code: 'RESPONSE_INVALID' }),
    );
    // An unknown mode is refused by the node.
    const res = await fetch(`${node.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-verity-mode': 'audit' },
      body: JSON.stringify(CHAT),
    });
    expect(res.status).toBe(400);
  }, 120_000);

  it('the profile rule: another output on the same runtime is voted; on another profile it is abstained on, unless it reproduces the record', async () => {
    const node = honest[0] as VerityNode;
    const whole = await auditedCall(node, '/v1/chat/completions', { ...CHAT, seed: 77 });
    const record = whole.verity.receipt.record;
    const input = fromBase64((await payloadOf(node, whole.verity)).input);
    const runtime = createLlmRuntime({ ...LLM, gpu: false });
    const loaded = await runtime.load(node.context.store.resolve(model).artifactPath);
    try {
      const host = {
        runtime: () => ({ id: runtime.id, version: runtime.version, profile: runtime.profile }),
        limits: { maxMessages: 1024, maxPromptChars: 1_000_000 },
        run: (job: Parameters<typeof loaded.run>[0]) => loaded.run(job),
      };
      const truth = { outputDigest: `0x${record.outputDigest}` };
      const lied: InferenceRecord = { ...record, outputDigest: 'ab'.repeat(32) };
      const onCuda = (r: InferenceRecord): InferenceRecord => ({ ...r, runtime: { ...r.runtime, profile: 'cuda' } });
      expect(await reexecuteLlm(lied, input, host)).toEqual(truth);
      expect(await reexecuteLlm(onCuda(record), input, host)).toEqual(truth);
      expect(await reexecuteLlm(onCuda(lied), input, host)).toEqual({
        abstain: expect.stringContaining('another runtime'),
      });
      // Bytes that are not a canonical LLM input: abstain (the input cannot run), not a retry loop.
      expect(await reexecuteLlm(record, new TextEncoder().encode('{"endpoint":"x"}'), host)).toEqual({
        abstain: expect.stringContaining('LLM_INPUT_INVALID'),
      });
    } finally {
      await loaded.close();
    }
  }, 120_000);
});

describe('jurors and auditors judge llm records', () => {
  it('an auditor catches a lying node on an audited chat; the jurors re-execute it and the node is slashed', async () => {
    const deployment = await readDeploymentFile(deploymentFile);
    const disputes = deployment.contracts.disputes as `0x${string}`;
    const liarAccount = liar.context.keys.address as `0x${string}`;
    const started = performance.now();
    const answer = await auditedCall(liar, '/v1/chat/completions', CHAT);
    expect(answer.choices[0]?.message?.content).toContain('the moon is cheese');
    const { receipt } = answer.verity;
    await anchored(liar, receipt.leafIndex);
    // The sample's seed is the hash of the block after the anchor: mine it.
    await chain.testClient.mine({ blocks: 1 });

    const policy = { localNetwork: true };
    const report = await auditNodes({
      publicClient: chain.publicClient,
      deployment,
      clients: chain.clients(AUDITOR),
      ratePpm: 1_000_000,
      reexecute: localReexecutor(createOnnxRuntime(), await openModelStore({ dir: await tempDir() }), policy, {
        llm: createLlmRuntime({ ...LLM, gpu: false }),
      }),
      policy,
      // The honest nodes' audited records of the tests above check out; only the liar is of interest here.
      exclude: honest.map((n) => n.context.keys.address as `0x${string}`),
    });
    expect(report.nodes.find((n) => n.node === liarAccount)).toMatchObject({ audited: 1, sampled: 1 });
    const finding = report.findings.find((f) => f.node === liarAccount);
    expect(finding).toMatchObject({ kind: 'challenged', leafIndex: receipt.leafIndex });
    const id = finding?.disputeId as bigint;
    const challenged = performance.now();

    await chain.testClient.mine({ blocks: 1 });
    const d = await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return d.phase === 'resolved' ? d : undefined;
    }, 'the jurors to resolve the dispute');
    const resolved = performance.now();
    expect(d.outcome).toBe('node-lied');
    // Every juror re-executed the llm record and revealed the auditor's digest (the honest output).
    expect(d.jurors.every((j) => j.revealed && j.vote === finding?.computedOutput)).toBe(true);
    const stake = (
      await getNode(chain.publicClient, { nodeRegistry: deployment.contracts.nodeRegistry, node: liarAccount })
    )?.stake;
    expect(stake).toBe(parseEther('1'));
    expect(await getDisputeCredit(chain.publicClient, { disputes, account: chain.address(AUDITOR) })).toBe(
      RULES.challengeBond + parseEther('0.4'),
    );
    // The SDK reads the record's fate from the chain, as for any audited answer (docs/protocol.md §16).
    const client = createClient({
      url: liar.url,
      chain: { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson(deployment) },
    });
    expect(await client.auditStatus(receipt)).toMatchObject({ status: 'refuted' });
    // The challenge carries the canonical JSON input as calldata: its size and gas.
    const [log] = await chain.publicClient.getContractEvents({
      address: disputes,
      abi: disputesAbi,
      eventName: 'Challenged',
      args: { id },
      fromBlock: deployment.block,
      strict: true,
    });
    const gas = (await chain.publicClient.getTransactionReceipt({ hash: log?.transactionHash as `0x${string}` }))
      .gasUsed;
    console.log(
      `audited llm lie → challenge: ${(challenged - started).toFixed(0)} ms; → resolved by the jurors: ${(resolved - started).toFixed(0)} ms; challenge gas ${gas} with ${(log?.args.input.length ?? 2) / 2 - 1} input bytes`,
    );
  }, 180_000);

  it('a false challenge of an honest audited llm record fails: the challenger loses its bond', async () => {
    const deployment = await readDeploymentFile(deploymentFile);
    const disputes = deployment.contracts.disputes as `0x${string}`;
    const node = honest[0] as VerityNode;
    const answer = await auditedCall(node, '/v1/chat/completions', { ...CHAT, seed: 31 });
    const { receipt } = answer.verity;
    const anchor = await anchored(node, receipt.leafIndex);
    const payload = await payloadOf(node, answer.verity);
    const proof = (await (
      await fetch(`${node.url}/v1/log/proof?index=${receipt.leafIndex}&size=${anchor.treeSize}`)
    ).json()) as { proof: string[] };
    const { id } = await challengeRecord(chain.clients(CHALLENGER), {
      disputes,
      record: encodeRecord(receipt.record),
      leafIndex: receipt.leafIndex,
      treeSize: anchor.treeSize,
      proof: proof.proof.map((p) => `0x${p}` as const),
      input: fromBase64(payload.input),
      claimedOutput: `0x${sha256(canonicalJsonBytes({ endpoint: 'chat.completions', message: { role: 'assistant', content: 'not it' }, finish_reason: 'stop' }))}`,
      bond: RULES.challengeBond,
    });
    await chain.testClient.mine({ blocks: 1 });
    // The pool is the liar (its juror service is off: silent) and honest[1], honest[2]: two
    // re-executions that reproduce the record are a majority, once the commit period is over.
    const voted = await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return d.jurors.length > 0 && d.jurors.filter((j) => j.committed).length >= 2 ? d : undefined;
    }, 'two jurors to commit');
    await chain.testClient.increaseTime({
      seconds: Number(voted.commitDeadline) - Number((await chain.publicClient.getBlock()).timestamp) + 1,
    });
    await chain.testClient.mine({ blocks: 1 });
    await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return d.jurors.filter((j) => j.revealed).length >= 2 ? d : undefined;
    }, 'two jurors to reveal');
    await chain.testClient.increaseTime({ seconds: RULES.revealPeriod + 1 });
    await chain.testClient.mine({ blocks: 1 });
    const d = await until(async () => {
      const d = await getDispute(chain.publicClient, { disputes, id });
      return d.phase === 'resolved' ? d : undefined;
    }, 'a juror to resolve the dispute');
    expect(d.outcome).toBe('challenge-failed');
    expect(d.jurors.filter((j) => j.revealed).every((j) => j.vote === `0x${receipt.record.outputDigest}`)).toBe(true);
    expect(await getDisputeCredit(chain.publicClient, { disputes, account: chain.address(CHALLENGER) })).toBe(0n);
  }, 180_000);
});
