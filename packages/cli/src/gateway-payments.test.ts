/**
 * Paid models through the gateway (issues 15 and 16) on `verity up --nodes 2` (anvil, the payment
 * contracts, two node processes, the gateway; nothing of the network runs in this process). The
 * caller changes nothing but the base URL:
 *
 * - a request without payment gets the node's 402 through the gateway, `PAYMENT-REQUIRED` intact;
 * - the SDK with `payment` pays an ONNX call (`exact`) through the gateway: payer −price, the
 *   serving node +price, `PAYMENT-RESPONSE` passed back, the record commits to the payment;
 * - a payment goes to the node it pays (`payTo`) whatever the routing would pick; a payment to an
 *   account that is no registered node is `NO_NODE_AVAILABLE`, nothing charged;
 * - the official `openai` client with `payingFetch` streams a paid chat (`metered`) through the
 *   gateway: the node is paid what the payer is charged, and the receipt commits to it;
 * - a paid answer that does not verify (a lying node, test code only: `lying-node-main.ts
 *   --misrecord`, priced as `verity up` prices its peers) is refused with its code and not served
 *   again by another node with the same (spent) payment; a paid stream whose tokens were passed
 *   before it failed to verify ends with an error event, the refusal counted.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tokenBalance } from '@verity/contracts';
import { openKeystore } from '@verity/node';
import { decodePaymentHeader, encodePaymentHeader, type PaymentRequired, parsePaymentRequired } from '@verity/protocol';
import { createClient, createPayer, payingFetch, verifyChatCompletion } from '@verity/sdk';
import OpenAI from 'openai';
import {
  type Address,
  createPublicClient,
  createTestClient,
  type Hex,
  http,
  type PublicClient,
  parseEther,
} from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstJsonLine, stopChild, until } from '../../../test-support/wait.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../../examples/models/forecast.samples.json', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const TS_LOADER = join(REPO, 'test-support', 'ts-loader.mjs');
const LIAR_MAIN = join(REPO, 'packages', 'node', 'src', 'test-support', 'lying-node-main.ts');
const PRICE = 10_000n; // forecast@1.0.0's price in `verity up`

interface UpInfo {
  url: string;
  address: Address;
  peers: { url: string; address: Address; pid: number }[];
  gateway: string;
  chain: { rpcUrl: string; deploymentFile: string };
  payments: { token: Address; meteredSettlement: Address; payer: { address: Address; key: Hex } };
}

let up: ChildProcess;
let info: UpInfo;
let dataDir: string;
let gw: string;
let deployment: unknown;
let publicClient: PublicClient;
let input: Record<string, unknown>;
const children: ChildProcess[] = [];

const lower = (a: string) => a.toLowerCase();
const balanceOf = (a: Address) => tokenBalance(publicClient, info.payments.token, a);
const balances = async () => ({
  payer: await balanceOf(info.payments.payer.address),
  main: await balanceOf(info.address),
  peer: await balanceOf((info.peers[0] as UpInfo['peers'][number]).address),
});
type Balances = Awaited<ReturnType<typeof balances>>;
/** Waits until the balances differ from `before` (a node may settle just after it answers). */
const settled = (before: Balances) =>
  until(async () => {
    const now = await balances();
    return now.payer !== before.payer ? now : undefined;
  }, 'the settlement on chain');
/** The balance of `node` in `b`. */
const of = (b: Balances, node: string) => (lower(node) === lower(info.address) ? b.main : b.peer);
const commitment = (record: object) => (record as { payment?: { digest: string; amount: string } }).payment;
/** The token and chain a payer without a chain pays in (`verity up`'s: a node does not choose them). */
const pin = () => ({
  networks: [`eip155:${(deployment as { chainId: number }).chainId}`],
  assets: [info.payments.token],
  settlements: [info.payments.meteredSettlement],
});

function inferVia(headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${gw}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'forecast@1.0.0', input }),
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-gateway-payments-'));
  up = spawn(process.execPath, [BIN, 'up', '--nodes', '2', '--data-dir', dataDir, '--port', '0', '--json'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  info = await firstJsonLine<UpInfo>(up, 'verity up');
  gw = info.gateway;
  deployment = JSON.parse(await readFile(info.chain.deploymentFile, 'utf8'));
  publicClient = createPublicClient({ transport: http(info.chain.rpcUrl) }) as PublicClient;
  input = (JSON.parse(await readFile(SAMPLES, 'utf8')) as { samples: { inputs: Record<string, unknown> }[] }).samples[0]
    ?.inputs as Record<string, unknown>;
}, 300_000);

afterAll(async () => {
  await Promise.all(children.map((c) => stopChild(c)));
  if (up && up.exitCode === null) await stopChild(up);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 180_000);

describe('paid models through the gateway of `verity up --nodes 2`', () => {
  it('passes the node 402 through with PAYMENT-REQUIRED and its body, nothing charged', async () => {
    const before = await balances();
    const r = await inferVia();
    expect(r.status).toBe(402);
    const header = r.headers.get('payment-required');
    expect(header).toBeTruthy();
    const required = parsePaymentRequired(decodePaymentHeader(header as string));
    expect(required.accepts[0]).toMatchObject({
      scheme: 'exact',
      amount: PRICE.toString(),
      asset: info.payments.token,
    });
    // payTo: the node that answered (named by the gateway's route header).
    expect(lower(required.accepts[0]?.payTo ?? '')).toBe(lower(r.headers.get('x-verity-node') ?? ''));
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('PAYMENT_REQUIRED');
    expect(await balances()).toEqual(before);
  }, 120_000);

  it('the SDK pays an ONNX call through the gateway: the serving node gets the price', async () => {
    const payer = createPayer({ account: info.payments.payer.key, ...pin(), budget: 1_000_000n, maxPrice: PRICE });
    const verity = createClient({ url: gw, chain: { rpcUrl: info.chain.rpcUrl, deployment }, payment: payer });
    const before = await balances();
    const result = await verity.infer({ model: 'forecast@1.0.0', input });
    const after = await settled(before);
    expect(before.payer - after.payer).toBe(PRICE);
    expect(of(after, result.record.node) - of(before, result.record.node)).toBe(PRICE);
    expect(lower(result.payment?.payTo ?? '')).toBe(lower(result.record.node));
    expect(result.payment).toMatchObject({ scheme: 'exact', amount: PRICE.toString() });
    // PAYMENT-RESPONSE came back through the gateway: the settlement's transaction.
    expect(result.payment?.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    expect(commitment(result.record)).toEqual({ digest: result.payment?.digest.slice(2), amount: PRICE.toString() });
    expect(payer.spent()).toBe(PRICE);
  }, 180_000);

  it('sends a payment to the node it pays, whatever the routing prefers; an unknown payee is NO_NODE_AVAILABLE', async () => {
    const peer = info.peers[0] as UpInfo['peers'][number];
    const payer = createPayer({ account: info.payments.payer.key, ...pin(), budget: 1_000_000n, maxPrice: PRICE });
    // The first call asks for the peer (its 402 names it), the paid retry for the other node.
    const pays = payer.wrap((input, init) => {
      const headers = new Headers(init?.headers);
      headers.set('x-verity-prefer-node', headers.has('payment-signature') ? info.address : peer.address);
      return fetch(input, { ...init, headers });
    });
    const before = await balances();
    const r = await pays(`${gw}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'forecast@1.0.0', input }),
    });
    expect(r.status).toBe(200);
    expect(lower(r.headers.get('x-verity-node') ?? '')).toBe(lower(peer.address));
    expect(r.headers.get('payment-response')).toBeTruthy();
    await r.arrayBuffer();
    const after = await settled(before);
    expect(before.payer - after.payer).toBe(PRICE);
    expect(after.peer - before.peer).toBe(PRICE);
    expect(after.main).toBe(before.main);

    // A payment to an account that is no registered node: no node could take it.
    const nobody = '0x000000000000000000000000000000000000dEaD';
    const misdirected = createPayer({
      account: info.payments.payer.key,
      ...pin(),
      budget: 1_000_000n,
      maxPrice: PRICE,
    }).wrap(async (input, init) => {
      const answer = await fetch(input, init);
      const header = answer.headers.get('payment-required');
      if (answer.status !== 402 || header === null) return answer;
      const required = decodePaymentHeader(header) as unknown as PaymentRequired;
      const changed = { ...required, accepts: required.accepts.map((a) => ({ ...a, payTo: nobody })) };
      const headers = new Headers(answer.headers);
      headers.set('payment-required', encodePaymentHeader(changed));
      return new Response(await answer.arrayBuffer(), { status: 402, headers });
    });
    const refused = await misdirected(`${gw}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'forecast@1.0.0', input }),
    });
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('NO_NODE_AVAILABLE');
    expect(await balances()).toEqual(after);
  }, 180_000);

  it('the official openai client with payingFetch streams a paid chat through the gateway', async () => {
    const payer = createPayer({ account: info.payments.payer.key, ...pin(), budget: 1_000_000n, maxPrice: 100_000n });
    const openai = new OpenAI({ baseURL: `${gw}/v1`, apiKey: 'unused', fetch: payingFetch(payer), maxRetries: 0 });
    const request = {
      model: 'tiny-chat-paid@1.0.0',
      messages: [{ role: 'user' as const, content: 'Hello!' }],
      max_tokens: 8,
      seed: 7,
    };
    const before = await balances();
    const chunks: unknown[] = [];
    for await (const chunk of await openai.chat.completions.create({ ...request, stream: true })) chunks.push(chunk);
    const after = await settled(before);
    const last = chunks.at(-1) as { verity: { gateway: { node: string } } };
    const node = last.verity.gateway.node;
    const charged = before.payer - after.payer;
    expect(charged).toBeGreaterThan(0n);
    expect(charged).toBeLessThanOrEqual(payer.payments[0]?.authorized ?? 0n);
    expect(of(after, node) - of(before, node)).toBe(charged);
    expect(chunks.length).toBeGreaterThan(2); // tokens passed through before the receipt
    // The receipt verifies against the registry and commits to this payment and the amount moved.
    // The gateway sends the node the manifest CID the name resolves to: the record is for that request.
    const verity = createClient({ url: gw, chain: { rpcUrl: info.chain.rpcUrl, deployment } });
    const { id } = await verity.model(request.model);
    const { record } = verifyChatCompletion({ ...request, model: id }, chunks, await verity.trust(), { model: id });
    expect(commitment(record)).toEqual({ digest: payer.payments[0]?.digest.slice(2), amount: charged.toString() });
  }, 180_000);

  it('refuses a paid answer that does not verify (whole, or a stream after its tokens), and does not spend the payment again elsewhere', async () => {
    // A lying node with a funded account of its own joins, priced as `verity up`'s peers are.
    const dir = await mkdtemp(join(tmpdir(), 'verity-gateway-paid-liar-'));
    const { address } = openKeystore(dir);
    const testClient = createTestClient({ transport: http(info.chain.rpcUrl), mode: 'anvil' });
    await testClient.setBalance({ address: address as Address, value: parseEther('100') });
    const child = spawn(
      process.execPath,
      [
        '--import',
        TS_LOADER,
        LIAR_MAIN,
        '--data-dir',
        dir,
        '--port',
        '0',
        '--config',
        join(dataDir, 'peers', 'payments.json'),
        '--misrecord',
      ],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'inherit'],
        env: {
          ...process.env,
          VERITY_RPC_URL: info.chain.rpcUrl,
          VERITY_DEPLOYMENT: info.chain.deploymentFile,
          VERITY_LOCAL_NETWORK: '1',
        },
      },
    );
    children.push(child);
    await firstJsonLine(child, 'the lying node');
    await until(async () => {
      const { nodes } = (await (await fetch(`${gw}/v1/network`)).json()) as { nodes: { address: string }[] };
      return nodes.some((n) => lower(n.address) === lower(address)) ? true : undefined;
    }, 'the liar in /v1/network');

    const payer = createPayer({ account: info.payments.payer.key, ...pin(), budget: 1_000_000n, maxPrice: PRICE });
    const before = { ...(await balances()), liar: await balanceOf(address as Address) };
    const r = await payer.wrap()(`${gw}/v1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-verity-prefer-node': address },
      body: JSON.stringify({ model: 'forecast@1.0.0', input }),
    });
    expect(payer.payments[0]?.payTo.toLowerCase()).toBe(lower(address));
    expect(r.status).toBe(502);
    expect(((await r.json()) as { error: { code: string } }).error.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');
    // The liar took the payment (spent: no other node could be paid with it again), and no other
    // node served or was paid.
    const after = { ...(await settled(before)), liar: await balanceOf(address as Address) };
    expect(before.payer - after.payer).toBe(PRICE);
    expect(after.liar - before.liar).toBe(PRICE);
    expect(after.main).toBe(before.main);
    expect(after.peer).toBe(before.peer);
    const metrics = await (await fetch(`${gw}/metrics`)).text();
    const line = metrics
      .split('\n')
      .find((l) => lower(l).startsWith(lower(`verity_gateway_node_verification_failures_total{node="${address}"`)));
    expect(Number(line?.split(' ').at(-1))).toBe(1);

    // A paid stream whose tokens already went out when its answer failed to verify: it cannot
    // move to another node (the text was shown, the payment spent), so it ends with an error
    // event instead of the receipt; the refusal counts against the node.
    const chatPayer = createPayer({
      account: info.payments.payer.key,
      ...pin(),
      budget: 1_000_000n,
      maxPrice: 100_000n,
    });
    const openai = new OpenAI({
      baseURL: `${gw}/v1`,
      apiKey: 'unused',
      fetch: payingFetch(chatPayer),
      maxRetries: 0,
      defaultHeaders: { 'x-verity-prefer-node': address },
    });
    const beforeStream = await balances();
    const chunks: unknown[] = [];
    const streamed = (async () => {
      const stream = await openai.chat.completions.create({
        model: 'tiny-chat-paid@1.0.0',
        messages: [{ role: 'user', content: 'Hello!' }],
        max_tokens: 8,
        seed: 7,
        stream: true,
      });
      for await (const chunk of stream) chunks.push(chunk);
    })();
    await expect(streamed).rejects.toThrow(/did not verify/);
    expect(lower(chatPayer.payments[0]?.payTo ?? '')).toBe(lower(address)); // paid the liar, after its 402
    const text = chunks
      .map((c) => (c as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content ?? '')
      .join('');
    expect(text.length).toBeGreaterThan(0); // tokens passed through before the verdict
    expect(chunks.some((c) => (c as { verity?: unknown }).verity !== undefined)).toBe(false); // no receipt
    const after2 = await (await fetch(`${gw}/metrics`)).text();
    const series = (prefix: string) =>
      Number(
        after2
          .split('\n')
          .find((l) => lower(l).startsWith(lower(prefix)))
          ?.split(' ')
          .at(-1),
      );
    expect(series(`verity_gateway_node_verification_failures_total{node="${address}"`)).toBe(2);
    expect(series('verity_gateway_requests_total{route="/v1/chat/completions",outcome="unverified"}')).toBe(1);
    // No other node served it or was paid for it.
    const nowBalances = await balances();
    expect(nowBalances.main).toBe(beforeStream.main);
    expect(nowBalances.peer).toBe(beforeStream.peer);
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  }, 300_000);
});
