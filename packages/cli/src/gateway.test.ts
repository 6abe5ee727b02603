/**
 * Issue 16's must-show on a real local network: `verity up --nodes 3` (anvil, the contracts, three
 * node processes) and the gateway it starts, driven over HTTP by the official `openai` client and
 * by the SDK; nothing of the network runs in this process.
 *
 * - chat streamed and whole, text completions and the model list through the gateway (`openai`);
 *   ONNX and chat through the gateway with the SDK, and the SDK routing by itself from the chain;
 * - a node process killed (SIGKILL) under load: every call still answers, the failovers counted; a
 *   stream that meets it before its first token is served by another node;
 * - a node process that lies (test code only: `lying-node-main.ts --misrecord` signs another
 *   output than it sends) joins the registry: its answers are refused and served by another node,
 *   the refusals counted in `/metrics`; a stream it already passed tokens of ends in an error event;
 * - an honest node that joins the registry while the gateway runs is found and serves.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openKeystore } from '@verity/node';
import { decodeInferFrame, encodeInferFrame, encodeTensors, INFER_MEDIA_TYPE } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import OpenAI from 'openai';
import { createTestClient, http, parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstJsonLine, stopChild, until } from '../../../test-support/wait.js';
import { spawnNode } from './network.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const TS_LOADER = join(REPO, 'test-support', 'ts-loader.mjs');
const LIAR_MAIN = join(REPO, 'packages', 'node', 'src', 'test-support', 'lying-node-main.ts');
const INPUT = { x: [[5.1, 3.5, 1.4, 0.2]] };
const CHAT = {
  model: 'tiny-chat@1.0.0',
  messages: [{ role: 'user' as const, content: 'Hello!' }],
  max_tokens: 8,
  seed: 7,
};

interface UpInfo {
  url: string;
  address: string;
  peers: { url: string; address: string; pid: number }[];
  gateway: string;
  chain: { rpcUrl: string; deploymentFile: string };
}

let up: ChildProcess;
let info: UpInfo;
let dataDir: string;
let gw: string;
let deployment: unknown;
let nodeEnv: Record<string, string>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-gateway-'));
  up = spawn(process.execPath, [BIN, 'up', '--nodes', '3', '--data-dir', dataDir, '--port', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  info = await firstJsonLine<UpInfo>(up, 'verity up');
  gw = info.gateway;
  deployment = JSON.parse(await readFile(info.chain.deploymentFile, 'utf8'));
  nodeEnv = {
    VERITY_RPC_URL: info.chain.rpcUrl,
    VERITY_DEPLOYMENT: info.chain.deploymentFile,
    VERITY_ANCHOR_INTERVAL_MS: '5000',
    VERITY_LOCAL_NETWORK: '1',
  };
}, 300_000);

afterAll(async () => {
  await Promise.all(children.map((c) => stopChild(c)));
  if (up && up.exitCode === null) await stopChild(up);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 180_000);

interface NodeState {
  address: string;
  state: string;
  models: string[];
  failovers: number;
  verificationFailures: number;
}
const network = async () => ((await (await fetch(`${gw}/v1/network`)).json()) as { nodes: NodeState[] }).nodes;
const lower = (a: string) => a.toLowerCase();
const allAddresses = () => [info.address, ...info.peers.map((p) => p.address)].map(lower);

function inferVia(prefer?: string): Promise<Response> {
  return fetch(`${gw}/v1/infer`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(prefer === undefined ? {} : { 'x-verity-prefer-node': prefer }),
    },
    body: JSON.stringify({ model: 'iris@1.0.0', input: INPUT }),
  });
}

/** The value of a per-node series in the gateway's /metrics. */
async function metric(name: string, node: string): Promise<number> {
  const text = await (await fetch(`${gw}/metrics`)).text();
  const line = text.split('\n').find((l) => lower(l).startsWith(lower(`${name}{node="${node}"`)));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

/** A fresh data dir whose node account holds ether on the chain (as `verity up` funds its nodes). */
async function fundedDataDir(prefix: string): Promise<{ dir: string; address: string }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const { address } = openKeystore(dir);
  const testClient = createTestClient({ transport: http(info.chain.rpcUrl), mode: 'anvil' });
  await testClient.setBalance({ address: address as `0x${string}`, value: parseEther('100') });
  return { dir, address };
}

describe('the gateway of `verity up --nodes 3`', () => {
  it('serves the official openai client: chat streamed and whole, completions, models', async () => {
    const openai = new OpenAI({ baseURL: `${gw}/v1`, apiKey: 'unused' });
    const models = await openai.models.list();
    expect(models.data.map((m) => (m as unknown as { ref: string }).ref)).toContain('tiny-chat@1.0.0');

    const stream = await openai.chat.completions.create({ ...CHAT, stream: true });
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const last = chunks.at(-1) as { verity: { receipt: unknown; gateway: { node: string; reason: string } } };
    expect(last.verity.receipt).toBeDefined();
    expect(allAddresses()).toContain(lower(last.verity.gateway.node));
    expect(last.verity.gateway.reason).toMatch(/latency/);
    expect(chunks.length).toBeGreaterThan(2); // tokens passed through before the receipt

    const { data: whole, response } = await openai.chat.completions.create(CHAT).withResponse();
    const verity = (whole as unknown as { verity: { gateway: { node: string } } }).verity;
    expect(response.headers.get('x-verity-node')).toBe(verity.gateway.node);
    // The same seed on the same model: the same verified text, whichever node served it.
    const streamed = chunks
      .map((c) => (c as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(whole.choices[0]?.message.content).toBe(streamed);

    const completion = await openai.completions.create({
      model: 'tiny-chat@1.0.0',
      prompt: 'Once',
      max_tokens: 4,
      seed: 1,
    });
    expect((completion as unknown as { verity: { gateway: { node: string } } }).verity.gateway.node).toBeTruthy();
  }, 120_000);

  it('serves the SDK (ONNX and chat), and the SDK routes by itself from the chain alone', async () => {
    const viaGateway = createClient({ url: gw, chain: { rpcUrl: info.chain.rpcUrl, deployment } });
    const onnx = await viaGateway.infer({ model: 'iris@1.0.0', input: INPUT });
    expect(allAddresses()).toContain(lower(onnx.record.node));
    const chat = await viaGateway.chat({ request: CHAT });
    expect(chat.message.content).toBeTruthy();

    // Only the chain (the deployment file names its RPC URL): the client finds the nodes itself.
    const routed = createClient({ chain: { deployment } });
    try {
      const a = await routed.infer({ model: 'iris@1.0.0', input: INPUT });
      expect(a.route?.node).toBe(a.record.node);
      expect(a.route?.reason).toMatch(/latency/);
      let text = '';
      const b = await routed.chat({ request: CHAT, onText: (t) => (text += t) });
      expect(b.message.content).toBe(text);
      expect(allAddresses()).toContain(lower(b.route?.node ?? ''));
    } finally {
      routed.close();
    }
  }, 120_000);

  it('finds the local network by name (SDK and `verity gateway --network local`)', async () => {
    // The name reads what `verity up` wrote in its data dir: no RPC URL, no deployment given.
    const named = createClient({ network: { name: 'local', dataDir } });
    try {
      const a = await named.infer({ model: 'iris@1.0.0', input: INPUT });
      expect(allAddresses()).toContain(lower(a.route?.node ?? ''));
    } finally {
      named.close();
    }
    const child = spawn(
      process.execPath,
      [BIN, 'gateway', '--network', 'local', '--data-dir', dataDir, '--port', '0', '--json'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(child);
    const { url } = await firstJsonLine<{ url: string }>(child, 'verity gateway --network local');
    const r = await fetch(`${url}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'iris@1.0.0', input: INPUT }),
    });
    expect(r.status).toBe(200);
    expect(allAddresses()).toContain(lower(r.headers.get('x-verity-node') ?? ''));
    await stopChild(child);
  }, 120_000);

  it('looks a receipt up on the node that served it, else on the others; 404 when none holds it', async () => {
    const answer = (await (await inferVia()).json()) as { requestId: string; gateway: { node: string } };
    const served = answer.gateway.node;
    const other = allAddresses().find((a) => a !== lower(served)) as string;
    // The gateway remembers which node served the request and asks it first; the receipt verifies.
    const first = await fetch(`${gw}/v1/receipts/${answer.requestId}`);
    expect(first.status).toBe(200);
    expect(lower(first.headers.get('x-verity-node') ?? '')).toBe(lower(served));
    expect(first.headers.get('x-verity-route')).toMatch(/^served the request/);
    expect(((await first.json()) as { record: { requestId: string } }).record.requestId).toBe(answer.requestId);
    // Asked of a node that does not hold it first: passed over (not held against it), found on another.
    const moved = await fetch(`${gw}/v1/receipts/${answer.requestId}`, { headers: { 'x-verity-prefer-node': other } });
    expect(moved.status).toBe(200);
    expect(lower(moved.headers.get('x-verity-node') ?? '')).toBe(lower(served));
    expect(moved.headers.get('x-verity-route')).toMatch(/^next: .* does not hold it \(RECEIPT_NOT_FOUND\)/);
    const state = (await network()).find((n) => lower(n.address) === other);
    expect(state?.state).toBe('up');
    const missing = await fetch(`${gw}/v1/receipts/no-such-request`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('RECEIPT_NOT_FOUND');

    // The SDK without a URL does the same, asked of the wrong node first.
    const sdk = createClient({ chain: { deployment } });
    try {
      const receipt = await sdk.getReceipt(answer.requestId, { node: other });
      expect(receipt.record.requestId).toBe(answer.requestId);
      await expect(sdk.getReceipt('no-such-request')).rejects.toMatchObject({ code: 'RECEIPT_NOT_FOUND' });
    } finally {
      sdk.close();
    }
  }, 120_000);

  it('routes around a node killed under load: no caller sees an error', async () => {
    const victim = info.peers[1] as UpInfo['peers'][number];
    // The victim holds the model (it fetches it on its first call), so routing sends it traffic.
    expect(lower((await inferVia(victim.address)).headers.get('x-verity-node') ?? '')).toBe(lower(victim.address));
    let done = 0;
    const statuses: number[] = [];
    let killed = false;
    const worker = async () => {
      for (let i = 0; i < 12; i++) {
        const r = await inferVia(victim.address);
        statuses.push(r.status);
        await r.arrayBuffer();
        done += 1;
        if (done >= 8 && !killed) {
          killed = true;
          process.kill(victim.pid, 'SIGKILL');
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    expect(killed).toBe(true);
    expect(statuses.every((s) => s === 200)).toBe(true);
    expect(statuses).toHaveLength(48);
    const state = (await network()).find((n) => lower(n.address) === lower(victim.address));
    expect(state?.state).toBe('down');
    expect(await metric('verity_gateway_node_failovers_total', victim.address)).toBeGreaterThan(0);

    // A stream that meets the dead node before its first token moves to another node unseen.
    const openai = new OpenAI({
      baseURL: `${gw}/v1`,
      apiKey: 'unused',
      defaultHeaders: { 'x-verity-prefer-node': victim.address },
    });
    const chunks: unknown[] = [];
    for await (const chunk of await openai.chat.completions.create({ ...CHAT, stream: true })) chunks.push(chunk);
    const gateway = (
      chunks.at(-1) as { verity: { gateway: { node: string; tried: { node: string; code: string }[] } } }
    ).verity.gateway;
    expect(lower(gateway.node)).not.toBe(lower(victim.address));
    expect(gateway.tried.map((t) => [lower(t.node), t.code])).toEqual([[lower(victim.address), 'NETWORK_ERROR']]);
  }, 180_000);

  it('refuses a lying node that joined: its answers served by another node, counted in /metrics', async () => {
    const { dir, address } = await fundedDataDir('verity-gateway-liar-');
    const child = spawn(
      process.execPath,
      ['--import', TS_LOADER, LIAR_MAIN, '--data-dir', dir, '--port', '0', '--misrecord'],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, ...nodeEnv },
      },
    );
    children.push(child);
    await firstJsonLine(child, 'the lying node');
    // It registered on start: the gateway reads the registry again and finds it.
    await until(
      async () => ((await network()).some((n) => lower(n.address) === lower(address)) ? true : undefined),
      'the liar in /v1/network',
    );

    const r = await inferVia(address);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { gateway: { node: string; tried: { node: string; code: string }[] } };
    expect(lower(body.gateway.node)).not.toBe(lower(address));
    expect(r.headers.get('x-verity-node')).toBe(body.gateway.node);
    expect(lower(body.gateway.tried[0]?.node ?? '')).toBe(lower(address));
    expect(body.gateway.tried[0]?.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');

    // A binary frame too (passed through as bytes): the digest check refuses it, another node serves.
    const frame = encodeInferFrame(
      JSON.stringify({ model: 'iris@1.0.0' }),
      encodeTensors({ x: { dtype: 'float32', shape: [1, 4], data: new Float32Array(INPUT.x[0] as number[]) } }),
    );
    const binary = await fetch(`${gw}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': INFER_MEDIA_TYPE, accept: INFER_MEDIA_TYPE, 'x-verity-prefer-node': address },
      body: frame as Uint8Array<ArrayBuffer>,
    });
    expect(binary.status).toBe(200);
    expect(binary.headers.get('content-type')).toBe(INFER_MEDIA_TYPE);
    const answered = decodeInferFrame(new Uint8Array(await binary.arrayBuffer()), { maxHeaderBytes: 1 << 20 });
    const routed = answered.header.gateway as { node: string; tried: { node: string; code: string }[] };
    expect(lower(routed.node)).not.toBe(lower(address));
    expect(routed.tried[0]?.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');
    expect(Object.keys(answered.tensors).length).toBeGreaterThan(0);

    // A chat answer too (whole): refused, and served by another node.
    const openai = new OpenAI({
      baseURL: `${gw}/v1`,
      apiKey: 'unused',
      defaultHeaders: { 'x-verity-prefer-node': address },
    });
    const { data, response } = await openai.chat.completions.create(CHAT).withResponse();
    expect(lower(response.headers.get('x-verity-node') ?? '')).not.toBe(lower(address));
    expect(
      (data as unknown as { verity: { gateway: { tried: { code: string }[] } } }).verity.gateway.tried[0]?.code,
    ).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');

    // A stream whose tokens already went out cannot move: it ends with an error event.
    const stream = await openai.chat.completions.create({ ...CHAT, stream: true });
    await expect(
      (async () => {
        for await (const _ of stream) {
          // tokens pass through
        }
      })(),
    ).rejects.toThrow(/did not verify/);

    expect(await metric('verity_gateway_node_verification_failures_total', address)).toBe(4);
    // Refused: calls that name no node go elsewhere.
    for (let i = 0; i < 3; i++)
      expect(lower((await inferVia()).headers.get('x-verity-node') ?? '')).not.toBe(lower(address));
    // 81 s measured with three busy loops on the 2 cores (the liar starts through the TS loader).
  }, 300_000);

  it('uses a node that joins the registry while the gateway runs', async () => {
    const { dir, address } = await fundedDataDir('verity-gateway-joiner-');
    const joiner = await spawnNode(BIN, dir, 0, nodeEnv);
    children.push(joiner.child);
    await until(
      async () =>
        (await network()).find((n) => lower(n.address) === lower(address))?.state === 'up' ? true : undefined,
      'the new node up in /v1/network',
    );
    const r = await inferVia(address);
    expect(r.status).toBe(200);
    expect(lower(r.headers.get('x-verity-node') ?? '')).toBe(lower(joiner.address));
  }, 180_000);
});
