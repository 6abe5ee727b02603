/**
 * The paying fetch against a real HTTP server that speaks the x402 v2 HTTP transport as the spec
 * writes it (headers as base64 of JSON, encoded here with Buffer, not with the code under test),
 * and that checks each payment's signature by recovering its signer from the digest the SDK
 * says it signed. On-chain settlement of these payloads is tested end to end on `verity up`.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isVerityError } from '@verity/protocol';
import OpenAI from 'openai';
import { encodeAbiParameters, getAddress, type Hex, keccak256, type PublicClient, recoverAddress } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkPaymentCommitment,
  checkPaymentSettled,
  createPayer,
  type PaymentMade,
  payingFetch,
  paymentOf,
  settledPayment,
} from './payment.js';

const PAYER_KEY = generatePrivateKey();
const payer = privateKeyToAccount(PAYER_KEY);
const NODE = getAddress('0x00000000000000000000000000000000000000aa');
const TOKEN = getAddress('0x00000000000000000000000000000000000000bb');
const SETTLEMENT = getAddress('0x00000000000000000000000000000000000000cc');
/** Another token the payer might hold, worth more per unit. */
const DEARER = getAddress('0x00000000000000000000000000000000000000dd');
const NETWORK = 'eip155:31337';
/** The token and chain this payer pays in (a node's 402 does not choose them). */
const PIN = { networks: [NETWORK], assets: [TOKEN], settlements: [SETTLEMENT] };

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64');
const unb64 = (s: string) => JSON.parse(Buffer.from(s, 'base64').toString('utf8')) as Record<string, unknown>;

function requirements(scheme: 'exact' | 'metered', amount: string, extra: Record<string, unknown> = {}) {
  return {
    scheme,
    network: NETWORK,
    asset: TOKEN,
    amount,
    payTo: NODE,
    maxTimeoutSeconds: 300,
    extra: {
      name: 'Verity Test USD',
      version: '1',
      ...(scheme === 'metered'
        ? { settlement: SETTLEMENT, pricePerInputToken: '1', pricePerOutputToken: '2' }
        : { assetTransferMethod: 'eip3009' }),
      ...extra,
    },
  };
}

/** What the server saw: each request's payment header, decoded. */
interface Seen {
  path: string;
  payment: Record<string, unknown> | undefined;
}

let server: Server;
let url: string;
const seen: Seen[] = [];
/** Per path: what the route accepts, and whether it refuses every payment (a 402 again). */
const routes: Record<
  string,
  { accepts: unknown[]; refuse?: boolean; charged?: string; stream?: boolean; early?: string }
> = {
  '/exact': { accepts: [requirements('exact', '400')] },
  '/metered': { accepts: [requirements('metered', '5000')] },
  '/cheapest': { accepts: [requirements('metered', '900'), requirements('exact', '300')] },
  '/refusing': { accepts: [requirements('exact', '100')], refuse: true },
  '/unpayable': { accepts: [{ ...requirements('exact', '100'), scheme: 'upto' }] },
  '/v1/chat/completions': { accepts: [requirements('exact', '250')] },
  // Pinning: the same units of another token; the pinned token's address on another chain.
  '/dearer-token': { accepts: [{ ...requirements('exact', '100'), asset: DEARER }] },
  '/other-chain': { accepts: [{ ...requirements('exact', '100'), network: 'eip155:1' }] },
  '/dearer-or-pinned': { accepts: [{ ...requirements('exact', '100'), asset: DEARER }, requirements('exact', '700')] },
  // Metered answers whose settlement names the charge: in the header, or (streamed) in the last event.
  '/metered-charged': { accepts: [requirements('metered', '5000')], charged: '1234' },
  '/metered-overcharged': { accepts: [requirements('metered', '5000')], charged: '5001' },
  '/metered-stream': { accepts: [requirements('metered', '5000')], charged: '77', stream: true },
  '/metered-stream-overcharged': { accepts: [requirements('metered', '5000')], charged: '9999', stream: true },
  // A stream with an early event that claims a charge of 0, before the settlement event (77).
  '/metered-stream-early': { accepts: [requirements('metered', '5000')], charged: '77', stream: true, early: '0' },
};

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const path = req.url ?? '';
    const header = req.headers['payment-signature'];
    const payment = typeof header === 'string' ? unb64(header) : undefined;
    seen.push({ path, payment });
    const text = await body(req);
    const route = routes[path];
    if (route === undefined) return void res.writeHead(404).end();
    const required = { x402Version: 2, error: 'payment required', resource: { url: path }, accepts: route.accepts };
    if (payment === undefined || route.refuse) {
      res.writeHead(402, { 'content-type': 'application/json', 'payment-required': b64(required) });
      return void res.end(JSON.stringify({ error: { code: 'PAYMENT_REQUIRED', message: 'pay' } }));
    }
    const settlement = {
      success: true,
      transaction: `0x${'ab'.repeat(32)}`,
      network: NETWORK,
      ...(route.charged === undefined ? {} : { amount: route.charged }),
    };
    if (route.stream) {
      // As a node streams: the tokens, then the settlement in the last event, then [DONE].
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (route.early !== undefined) {
        const early = { ...settlement, amount: route.early };
        res.write(`data: ${JSON.stringify({ choices: [], verity: { requestId: 'r1', payment: early } })}\n\n`);
      }
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { content: 'paid' } }] })}\n\n`);
      res.write(`data: ${JSON.stringify({ choices: [], verity: { requestId: 'r1', payment: settlement } })}\n\n`);
      return void res.end('data: [DONE]\n\n');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'payment-response': b64(settlement) });
    if (path === '/v1/chat/completions') {
      const asked = JSON.parse(text) as { model: string };
      return void res.end(
        JSON.stringify({
          id: 'c1',
          object: 'chat.completion',
          created: 1,
          model: asked.model,
          choices: [{ index: 0, message: { role: 'assistant', content: 'paid hello' }, finish_reason: 'stop' }],
        }),
      );
    }
    res.end(JSON.stringify({ ok: true, echo: text }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

const countFor = (path: string) => seen.filter((s) => s.path === path).length;

describe('paying fetch: exact', () => {
  it('answers a 402 with a signed EIP-3009 transfer of the price to the node, once', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 1000n, maxPrice: 500n });
    const before = countFor('/exact');
    const res = await p.wrap()(`${url}/exact`, { method: 'POST', body: 'x=1', headers: { 'x-mine': 'kept' } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { echo: string }).echo).toBe('x=1'); // the body went twice
    expect(countFor('/exact') - before).toBe(2);
    const sent = seen.at(-1)?.payment as { x402Version: number; accepted: { scheme: string }; payload: never };
    expect(sent.x402Version).toBe(2);
    expect(sent.accepted.scheme).toBe('exact');
    const { authorization, signature } = sent.payload as {
      authorization: Record<string, string>;
      signature: Hex;
    };
    expect(authorization).toMatchObject({ from: payer.address, to: NODE, value: '400', validAfter: '0' });
    const made = paymentOf(res) as PaymentMade;
    expect(made.scheme).toBe('exact');
    expect(made.authorized).toBe(400n);
    // The digest the SDK reports is what x402's exact client signed: the signer recovers from it.
    expect(await recoverAddress({ hash: made.digest, signature })).toBe(payer.address);
    expect(made.digest).toMatch(/^0x[0-9a-f]{64}$/);
    expect(made.settlement?.transaction).toBe(`0x${'ab'.repeat(32)}`);
    expect(p.spent()).toBe(400n);
    expect(p.remaining()).toBe(600n);
    expect(p.payments).toHaveLength(1);
  });

  it('refuses a price above maxPrice with PAYMENT_OVER_BUDGET, signing and sending nothing', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n, maxPrice: 399n });
    const before = countFor('/exact');
    const e = await p
      .wrap()(`${url}/exact`, { method: 'POST' })
      .catch((x: unknown) => x);
    expect(isVerityError(e, 'PAYMENT_OVER_BUDGET')).toBe(true);
    expect((e as { details: unknown }).details).toMatchObject({ price: '400', maxPrice: '399' });
    expect(countFor('/exact') - before).toBe(1);
    expect(p.spent()).toBe(0n);
  });

  it('never spends more than the budget, concurrent requests included', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 1000n });
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => p.wrap()(`${url}/exact`, { method: 'POST' })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const over = results.filter((r) => r.status === 'rejected' && isVerityError(r.reason, 'PAYMENT_OVER_BUDGET'));
    expect([ok.length, over.length]).toEqual([2, 3]);
    expect(p.spent()).toBe(800n);
  });

  it('gives the price back when the node refuses the payment (the 402 is the answer)', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 1000n });
    const res = await p.wrap()(`${url}/refusing`, { method: 'POST' });
    expect(res.status).toBe(402);
    expect(p.spent()).toBe(0n);
    expect(p.payments).toHaveLength(0);
  });

  it('a 402 in a scheme it cannot pay is PAYMENT_REQUIRED', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 1000n });
    const e1 = await p
      .wrap()(`${url}/unpayable`)
      .catch((x: unknown) => x);
    expect(isVerityError(e1, 'PAYMENT_REQUIRED')).toBe(true);
  });

  // The token and chain are the payer's choice: each 402 below names what the payer did not pin
  // (or the payer pinned nothing), and is PAYMENT_ASSET_NOT_PINNED with nothing signed or sent.
  const unpinned: [string, Parameters<typeof createPayer>[0], string][] = [
    ['no pin at all (a URL-only payer)', { account: PAYER_KEY, budget: 1000n }, '/exact'],
    ['a token but no network', { account: PAYER_KEY, budget: 1000n, assets: [TOKEN] }, '/exact'],
    ['a network but no token', { account: PAYER_KEY, budget: 1000n, networks: [NETWORK] }, '/exact'],
    ['the node names another token', { account: PAYER_KEY, ...PIN, budget: 1000n }, '/dearer-token'],
    [
      'a metered maximum to a settlement contract other than the pinned one',
      { account: PAYER_KEY, ...PIN, settlements: [DEARER], budget: 10_000n },
      '/metered',
    ],
    [
      'a metered maximum with no settlement contract pinned (token and chain pinned, no chain client)',
      { account: PAYER_KEY, networks: [NETWORK], assets: [TOKEN], budget: 10_000n },
      '/metered',
    ],
    [
      'the node names the pinned token address on another chain',
      { account: PAYER_KEY, ...PIN, budget: 1000n },
      '/other-chain',
    ],
  ];
  for (const [what, options, path] of unpinned) {
    it(`refuses to pay when ${what}: PAYMENT_ASSET_NOT_PINNED, nothing signed`, async () => {
      const p = createPayer(options);
      const before = countFor(path);
      const e = await p
        .wrap()(`${url}${path}`, { method: 'POST' })
        .catch((x: unknown) => x);
      expect(isVerityError(e, 'PAYMENT_ASSET_NOT_PINNED')).toBe(true);
      expect(countFor(path) - before).toBe(1); // the 402 only: no paid retry
      expect([p.spent(), p.payments.length]).toEqual([0n, 0]);
    });
  }

  it('a pin of one token pays it among others the node offers', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 1000n });
    const res = await p.wrap()(`${url}/dearer-or-pinned`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(paymentOf(res)?.asset).toBe(TOKEN);
    expect(p.spent()).toBe(700n);
  });

  it('pays the cheapest option the node accepts', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 1000n });
    const res = await p.wrap()(`${url}/cheapest`, { method: 'POST' });
    expect(paymentOf(res)?.scheme).toBe('exact');
    expect(p.spent()).toBe(300n);
  });

  it('refuses bad options: a budget that is no whole number, an account that is not one, a pin that is none', () => {
    expect(() => createPayer({ account: PAYER_KEY, budget: 1n, assets: ['usdc'] })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => createPayer({ account: PAYER_KEY, budget: 1n, networks: ['base'] })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    for (const budget of ['-1', '1.5', 'lots']) {
      expect(() => createPayer({ account: PAYER_KEY, budget })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
    expect(() => createPayer({ account: {} as never, budget: 1n })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('paying fetch: metered', () => {
  it('authorizes the maximum to the settlement contract, its nonce bound to the node', async () => {
    const p = createPayer({ account: payer, ...PIN, settlements: [SETTLEMENT], budget: 10_000n });
    const res = await p.wrap()(`${url}/metered`, { method: 'POST' });
    expect(res.status).toBe(200);
    const sent = seen.at(-1)?.payment as {
      payload: { authorization: Record<string, string>; salt: Hex; signature: Hex };
    };
    const { authorization, salt, signature } = sent.payload;
    expect(authorization).toMatchObject({ from: payer.address, to: SETTLEMENT, value: '5000', validAfter: '0' });
    // nonce = keccak256(abi.encode(payee, salt)): only the node can settle it.
    const nonce = keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'bytes32' }], [NODE, salt]));
    expect(authorization.nonce).toBe(nonce);
    const made = paymentOf(res) as PaymentMade;
    expect(made.scheme).toBe('metered');
    expect(await recoverAddress({ hash: made.digest, signature })).toBe(payer.address);
    expect(p.spent()).toBe(5000n);
    // The receipt says 1234 was charged: the rest of the maximum is free again, once.
    p.charged(made, 1234n);
    p.charged(made, 1n);
    expect(p.spent()).toBe(1234n);
  });
});

describe('paying fetch: a metered charge goes back to the budget', () => {
  it('frees the rest of the maximum once the settlement header names the charge', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const res = await p.wrap()(`${url}/metered-charged`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(paymentOf(res)?.charged).toBe(1234n);
    expect(p.spent()).toBe(1234n);
    // The record must then commit to that charge: another amount is PAYMENT_NOT_COMMITTED.
    const made = paymentOf(res) as PaymentMade;
    const digest = made.digest.slice(2);
    expect(() => settledPayment(p, made, { payment: { digest, amount: '1235' } })).toThrow(
      expect.objectContaining({ code: 'PAYMENT_NOT_COMMITTED' }),
    );
    expect(settledPayment(p, made, { payment: { digest, amount: '1234' } })?.amount).toBe('1234');
    expect(p.spent()).toBe(1234n);
  });

  it('refuses a settlement that claims more than the maximum (PAYMENT_OVERCHARGED), the maximum stays held', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const e = await p
      .wrap()(`${url}/metered-overcharged`, { method: 'POST' })
      .catch((x: unknown) => x);
    expect(isVerityError(e, 'PAYMENT_OVERCHARGED')).toBe(true);
    expect((e as { details: unknown }).details).toMatchObject({ authorized: '5000', amount: '5001' });
    expect(p.spent()).toBe(5000n);
  });

  it('reads a stream’s settlement from its last event as the bytes pass, unchanged', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const res = await p.wrap()(`${url}/metered-stream`, { method: 'POST' });
    expect(p.spent()).toBe(5000n); // held until the settlement event passes
    const text = await res.text();
    expect(text.split('\n\n').filter(Boolean)).toHaveLength(3);
    expect(text).toContain('"amount":"77"');
    expect(paymentOf(res)?.settlement?.amount).toBe('77');
    expect(p.spent()).toBe(77n);
  });

  it('takes a stream’s last settlement, not an earlier event’s claim', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const res = await p.wrap()(`${url}/metered-stream-early`, { method: 'POST' });
    await res.text();
    expect(paymentOf(res)?.claimed).toBe(77n);
    expect(p.spent()).toBe(77n);
  });

  it('errors a stream whose settlement claims more than the maximum', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const res = await p.wrap()(`${url}/metered-stream-overcharged`, { method: 'POST' });
    const e = await res.text().catch((x: unknown) => x);
    expect(isVerityError(e, 'PAYMENT_OVERCHARGED')).toBe(true);
    expect(p.spent()).toBe(5000n);
  });

  it('the official openai client streaming through payingFetch gets the rest back', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const openai = new OpenAI({ baseURL: url, apiKey: 'unused', fetch: payingFetch(p), maxRetries: 0 });
    const stream = await openai.chat.completions.create(
      { model: 'tiny-chat', messages: [{ role: 'user', content: 'hi' }], stream: true },
      { path: '/metered-stream' },
    );
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks).toHaveLength(2);
    expect(p.spent()).toBe(77n);
  });
});

describe('a client’s budget takes a charge only once the record agrees', () => {
  it('holds the maximum past the node’s settlement; a record that disagrees keeps it held', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const res = await p.wrap(undefined, {}, 'checked')(`${url}/metered-charged`, { method: 'POST' });
    expect(res.status).toBe(200);
    const made = paymentOf(res) as PaymentMade;
    expect(made.claimed).toBe(1234n); // the node's word, read
    expect(p.spent()).toBe(5000n); // not taken
    const digest = made.digest.slice(2);
    // A record of 0 while the node's settlement said 1234 (or the reverse): refused, nothing refunded.
    expect(() => settledPayment(p, made, { payment: { digest, amount: '0' } })).toThrow(
      expect.objectContaining({ code: 'PAYMENT_NOT_COMMITTED' }),
    );
    expect(p.spent()).toBe(5000n);
    expect(settledPayment(p, made, { payment: { digest, amount: '1234' } })?.amount).toBe('1234');
    expect(p.spent()).toBe(1234n);
  });

  it('a stream’s settlement is read but not taken until the record agrees', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 10_000n });
    const res = await p.wrap(undefined, {}, 'checked')(`${url}/metered-stream-early`, { method: 'POST' });
    await res.text();
    const made = paymentOf(res) as PaymentMade;
    expect([made.claimed, p.spent()]).toEqual([77n, 5000n]);
    expect(settledPayment(p, made, { payment: { digest: made.digest.slice(2), amount: '77' } })?.amount).toBe('77');
    expect(p.spent()).toBe(77n);
  });
});

describe('the settlement check asks only the deployment’s token', () => {
  it('a payment in another token than the deployment names is PAYMENT_WRONG_NETWORK, before the chain is asked', async () => {
    // The chain is never read: a client that would be asked fails the test.
    const publicClient = new Proxy({}, { get: () => expect.unreachable('the chain was asked') }) as PublicClient;
    const chain = { publicClient, deployment: { chainId: 31337, payments: { token: TOKEN } } };
    const authorization = { from: payer.address, nonce: `0x${'42'.repeat(32)}` };
    const e = await checkPaymentSettled(chain, { network: NETWORK, asset: DEARER, authorization }).catch((x) => x);
    expect(isVerityError(e, 'PAYMENT_WRONG_NETWORK')).toBe(true);
    expect((e as { details: unknown }).details).toMatchObject({ expected: TOKEN, actual: DEARER });
  });
});

describe('receipt commitment', () => {
  const made = (scheme: 'exact' | 'metered', authorized: bigint) =>
    ({ scheme, authorized, digest: `0x${'12'.repeat(32)}` }) as unknown as PaymentMade;
  const digest = `0x${'12'.repeat(32)}`;
  it('accepts a record that commits to the payment made', () => {
    expect(checkPaymentCommitment(made('exact', 400n), { payment: { digest: digest.slice(2), amount: '400' } })).toBe(
      400n,
    );
    expect(
      checkPaymentCommitment(made('metered', 5000n), {
        payment: { digest: digest.toUpperCase().replace('0X', '0x'), amount: '77' },
      }),
    ).toBe(77n);
  });
  // Named tampered records: each is PAYMENT_NOT_COMMITTED.
  const tampered: [string, PaymentMade, unknown][] = [
    ['a paid answer whose record commits to no payment', made('exact', 400n), { model: 'm' }],
    [
      'another authorization digest',
      made('exact', 400n),
      { payment: { digest: `0x${'13'.repeat(32)}`, amount: '400' } },
    ],
    ['an exact payment charged less than its price', made('exact', 400n), { payment: { digest, amount: '399' } }],
    ['an exact payment charged more than its price', made('exact', 400n), { payment: { digest, amount: '401' } }],
    ['a metered charge above the maximum authorized', made('metered', 5000n), { payment: { digest, amount: '5001' } }],
    ['an amount that is not a decimal string', made('metered', 5000n), { payment: { digest, amount: 12 } }],
    ['a digest that is not hex', made('exact', 400n), { payment: { digest: 'zz', amount: '400' } }],
  ];
  for (const [what, payment, record] of tampered) {
    it(`refuses ${what}`, () => {
      expect(() => checkPaymentCommitment(payment, record)).toThrow(
        expect.objectContaining({ code: 'PAYMENT_NOT_COMMITTED' }),
      );
    });
  }
});

describe('the official openai client through payingFetch', () => {
  it('pays for a chat completion', async () => {
    const p = createPayer({ account: PAYER_KEY, ...PIN, budget: 1000n });
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', fetch: payingFetch(p), maxRetries: 0 });
    const completion = await openai.chat.completions.create({
      model: 'tiny-chat',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.choices[0]?.message.content).toBe('paid hello');
    expect(p.spent()).toBe(250n);
    const sent = seen.at(-1)?.payment as { accepted: { payTo: string } };
    expect(sent.accepted.payTo).toBe(NODE);
  });

  it('surfaces PAYMENT_ASSET_NOT_PINNED through the client: a payingFetch without a token pays nothing', async () => {
    const p = createPayer({ account: PAYER_KEY, budget: 1000n });
    const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', fetch: payingFetch(p), maxRetries: 0 });
    const before = countFor('/v1/chat/completions');
    const e = await openai.chat.completions
      .create({ model: 'tiny-chat', messages: [{ role: 'user', content: 'hi' }] })
      .catch((x: unknown) => x);
    const cause = (e as { cause?: unknown }).cause ?? e;
    expect(isVerityError(cause, 'PAYMENT_ASSET_NOT_PINNED')).toBe(true);
    expect(countFor('/v1/chat/completions') - before).toBe(1);
    expect(p.spent()).toBe(0n);
  });

  it('surfaces PAYMENT_OVER_BUDGET through the client', async () => {
    const openai = new OpenAI({
      baseURL: `${url}/v1`,
      apiKey: 'unused',
      fetch: payingFetch({ account: PAYER_KEY, ...PIN, budget: 100n }),
      maxRetries: 0,
    });
    const e = await openai.chat.completions
      .create({ model: 'tiny-chat', messages: [{ role: 'user', content: 'hi' }] })
      .catch((x: unknown) => x);
    // openai wraps a failing fetch in APIConnectionError; our error is its cause.
    const cause = (e as { cause?: unknown }).cause ?? e;
    expect(isVerityError(cause, 'PAYMENT_OVER_BUDGET')).toBe(true);
  });
});
