/**
 * Mode quorum for a language model priced per token (issue 15, docs/protocol.md §17.5): a real
 * anvil with TestStablecoin and MeteredSettlement, three real registered nodes over HTTP running
 * the tiny GGUF model, each with its own per-token prices. The caller authorizes the sum of the
 * nodes' maxima (metered) to the coordinator; the coordinator pays each member a metered
 * authorization of that member's maximum; each node settles the tokens it used, and the caller is
 * charged the coordinator's tokens plus what its members charged — the rest goes back to it in
 * the same settlement. A coordinator that commits to a larger charge is caught by the bundle check
 * (`QUORUM_CHARGE_EXCESS`).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  deploymentToJson,
  getTokenDomain,
  meteredNonce,
  mintTestTokens,
  type PaymentContracts,
  randomBytes32,
  signTransferAuthorization,
  type TokenDomain,
  tokenBalance,
} from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import {
  BUNDLE_MEDIA_TYPE,
  decodePaymentHeader,
  encodePaymentHeader,
  PAYMENT_HEADERS,
  type PaymentPayload,
  type PaymentRequirements,
  parsePaymentRequired,
  parseSettleResponse,
  type QuorumEvidence,
  type Receipt,
  verifyBundle,
} from '@verity/protocol';
import { createClient, createPayer, registrySnapshot } from '@verity/sdk';
import { type Address, type Hex, parseEther } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import type { VerityNode } from '../node.js';
import { startChainNode } from '../test-support/chain-node.js';
import { paymentError } from './index.js';

const GGUF = new Uint8Array(
  readFileSync(fileURLToPath(new URL('../../../../examples/models/tiny-chat.gguf', import.meta.url))),
);
/** Per prompt token and per generated token: the coordinator, then the two members. */
const PRICES = [
  { inputToken: 3n, outputToken: 5n },
  { inputToken: 2n, outputToken: 7n },
  { inputToken: 1n, outputToken: 4n },
] as const;
const CONTEXT = 512;
const MAX_TOKENS = 8;
const PAYER = 1;
const K = 3;
const LLM = { gpu: 'cpu', sequences: 1, contextSize: CONTEXT, threads: 1 } as const;

let chain: TestChain;
let work: string;
let pay: PaymentContracts;
let domain: TokenDomain;
let chainId: number;
/** The chain as a client takes it (the deployment file's content). */
let chainOptions: { rpcUrl: string; deployment: unknown };
let registry: { rpcUrl: string; nodeRegistry: `0x${string}` };
const nodes: VerityNode[] = [];

const coordinator = () => nodes[0] as VerityNode;
const payer = () => privateKeyToAccount(chain.anvil.privateKeys[PAYER] as Hex);
const balance = (owner: string) => tokenBalance(chain.publicClient, pay.token, owner as Address);
/** Payer, the three nodes, and the settlement contract (which must hold nothing after each settlement). */
const balances = () =>
  Promise.all(
    [payer().address, ...nodes.map((n) => n.context.keys.address), pay.meteredSettlement].map((a) => balance(a)),
  );
const head = async () => Number(await chain.publicClient.getBlockNumber({ cacheTime: 0 }));
const charge = (i: number, usage: Usage) =>
  (PRICES[i] as (typeof PRICES)[number]).inputToken * BigInt(usage.prompt_tokens) +
  (PRICES[i] as (typeof PRICES)[number]).outputToken * BigInt(usage.completion_tokens);
const maximum = (i: number) =>
  (PRICES[i] as (typeof PRICES)[number]).inputToken * BigInt(CONTEXT) +
  (PRICES[i] as (typeof PRICES)[number]).outputToken * BigInt(MAX_TOKENS);

interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
}
interface QuorumAnswer {
  usage: Usage;
  verity: { receipts: Receipt[]; quorum: QuorumEvidence };
  error?: { code: string; details?: { receipts?: Receipt[] } };
}

beforeAll(async () => {
  chain = await startTestChain();
  const d = await chain.deploy();
  chainId = d.chainId;
  pay = await chain.deployPayments({ [PAYER]: 10_000_000n });
  work = await mkdtemp(join(tmpdir(), 'verity-payllmquorum-'));
  const deploymentFile = join(work, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...d, rpcUrl: chain.anvil.rpcUrl, payments: pay });
  registry = { rpcUrl: chain.anvil.rpcUrl, nodeRegistry: d.contracts.nodeRegistry };
  chainOptions = { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson({ ...d, payments: pay }) };
  for (let i = 0; i < 3; i++) {
    const p = PRICES[i] as (typeof PRICES)[number];
    nodes.push(
      await startChainNode(chain, {
        dataDir: join(work, `node-${i}`),
        deploymentFile,
        overrides: {
          chain: { stakeWei: parseEther('2').toString() },
          peers: { localNetwork: true },
          llm: LLM,
          payments: {
            prices: {
              'tiny-chat@1.0.0': { inputToken: p.inputToken.toString(), outputToken: p.outputToken.toString() },
            },
          },
        },
      }),
    );
  }
  // Published on the coordinator; the members fetch it from their peers when first asked.
  const res = await fetch(`${coordinator().url}/v1/models?name=tiny-chat&format=gguf`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      authorization: `Bearer ${coordinator().context.keys.apiKey}`,
    },
    body: GGUF,
  });
  expect(res.status).toBeLessThan(300);
  domain = await getTokenDomain(chain.publicClient, pay.token);
}, 240_000);

afterAll(async () => {
  for (const n of nodes) await n.stop().catch(() => undefined);
  await chain?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function quorumCall(
  path: '/v1/chat/completions' | '/v1/completions',
  body: Record<string, unknown>,
  quorum: { clientNonce: string; block: number },
  header?: string,
) {
  const r = await fetch(`${coordinator().url}${path}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-verity-mode': 'quorum',
      'x-verity-k': String(K),
      'x-verity-block': String(quorum.block),
      'x-verity-client-nonce': quorum.clientNonce,
      ...(header === undefined ? {} : { [PAYMENT_HEADERS.signature]: header }),
    },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text, body: JSON.parse(text) as QuorumAnswer };
}

/** The caller's metered payment: ReceiveWithAuthorization of `value` to MeteredSettlement, bound to the coordinator. */
async function meteredPayment(req: PaymentRequirements, value = BigInt(req.amount)): Promise<string> {
  const signer = payer();
  const salt = randomBytes32();
  const now = BigInt(Math.floor(Date.now() / 1000));
  const auth = {
    from: signer.address,
    to: req.extra.settlement as Address,
    value,
    validAfter: now - 600n,
    validBefore: now + BigInt(req.maxTimeoutSeconds),
    nonce: meteredNonce(req.payTo as Address, salt),
  };
  const signature = await signTransferAuthorization(signer, domain, auth, 'receive');
  return encodePaymentHeader({
    x402Version: 2,
    accepted: req,
    payload: {
      signature,
      salt,
      authorization: {
        from: auth.from,
        to: auth.to,
        value: auth.value.toString(),
        validAfter: auth.validAfter.toString(),
        validBefore: auth.validBefore.toString(),
        nonce: auth.nonce,
      },
    },
  } as PaymentPayload);
}

const requirementsOf = (r: { status: number; headers: Headers; body: QuorumAnswer }) => {
  expect([r.status, r.body.error?.code]).toEqual([402, 'PAYMENT_REQUIRED']);
  return parsePaymentRequired(decodePaymentHeader(r.headers.get(PAYMENT_HEADERS.required) as string))
    .accepts[0] as PaymentRequirements;
};

const bundleOf = (b: QuorumAnswer) => ({
  mediaType: BUNDLE_MEDIA_TYPE,
  receipts: b.verity.receipts,
  quorum: b.verity.quorum,
});

const CHAT = { model: 'tiny-chat', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: MAX_TOKENS, seed: 7 };

describe('mode quorum for a language model priced per token', () => {
  it('a coordinator that cannot pay its members refuses before the caller pays (QUORUM_UNAVAILABLE)', async () => {
    const block = await head();
    const before = await balances();
    const r = await quorumCall('/v1/chat/completions', CHAT, { clientNonce: '34'.repeat(16), block });
    expect([r.status, r.body.error?.code]).toEqual([503, 'QUORUM_UNAVAILABLE']);
    expect(r.headers.get(PAYMENT_HEADERS.required)).toBeNull();
    expect(await balances()).toEqual(before);
    // The coordinator authorizes its members' maxima before the caller's payment settles: a float.
    await mintTestTokens(chain.clients(0), pay.token, coordinator().context.keys.address as Address, 100_000n);
  }, 120_000);

  it('the caller authorizes every maximum, is charged the tokens each node used, the rest comes back', async () => {
    const block = await head();
    const quorum = { clientNonce: 'ab'.repeat(16), block };
    const req = requirementsOf(await quorumCall('/v1/chat/completions', CHAT, quorum));
    // The coordinator's maximum (context × 3 + max_tokens × 5) plus each member's, from its own 402.
    const max = maximum(0) + maximum(1) + maximum(2);
    expect(req).toMatchObject({
      scheme: 'metered',
      amount: max.toString(),
      payTo: coordinator().context.keys.address,
      extra: { settlement: pay.meteredSettlement, pricePerInputToken: '3', pricePerOutputToken: '5' },
    });
    const before = await balances();
    const r = await quorumCall('/v1/chat/completions', CHAT, quorum, await meteredPayment(req));
    expect(r.status, r.text).toBe(200);
    const after = await balances();
    // Every member ran the same tokens: one usage prices every node's share.
    const shares = [0, 1, 2].map((i) => charge(i, r.body.usage));
    const total = shares.reduce((a, b) => a + b, 0n);
    expect(total).toBeLessThan(max);
    const [p0, c0, m10, m20, s0] = before as [bigint, bigint, bigint, bigint, bigint];
    // Payer −total (max − total came back); coordinator +its own tokens (+total −members);
    // each member +its tokens; the settlement contract keeps nothing.
    expect(after).toEqual([
      p0 - total,
      c0 + (shares[0] as bigint),
      m10 + (shares[1] as bigint),
      m20 + (shares[2] as bigint),
      s0,
    ]);
    const settled = parseSettleResponse(decodePaymentHeader(r.headers.get(PAYMENT_HEADERS.response) as string));
    expect(settled).toMatchObject({ success: true, amount: total.toString() });

    const receipts = r.body.verity.receipts;
    expect(receipts).toHaveLength(K);
    const byNode = new Map(receipts.map((x) => [x.record.node.toLowerCase(), x]));
    nodes.forEach((n, i) => {
      const receipt = byNode.get(n.context.keys.address.toLowerCase()) as Receipt;
      expect(receipt.record).toMatchObject({ kind: 'llm', mode: 'quorum' });
      // The coordinator's record commits to the caller's payment (the total charged); each
      // member's to the coordinator's metered authorization of its maximum, charged its tokens.
      expect(receipt.record.payment?.amount).toBe((i === 0 ? total : (shares[i] as bigint)).toString());
      expect(receipt.payment?.authorization.from).toBe(i === 0 ? payer().address : coordinator().context.keys.address);
      expect(receipt.payment?.authorization.value).toBe((i === 0 ? max : maximum(i)).toString());
    });
    const policy = { payment: { network: `eip155:${chainId}`, asset: pay.token } };
    const verified = verifyBundle(
      bundleOf(r.body),
      { nodes: [], registry: await registrySnapshot(registry, BigInt(block)) },
      policy,
    );
    expect(verified.ok ? verified.quorum?.selection : verified.code).toBe('checked');
  }, 240_000);

  it('a coordinator whose record charges more than its share plus its members’ is caught (QUORUM_CHARGE_EXCESS)', async () => {
    // Fault injection: the coordinator's record commits to the whole authorized maximum (it
    // still settles the honest charge, so only the bundle check can tell).
    const service = coordinator().context.payments as NonNullable<VerityNode['context']['payments']>;
    const commitment = service.commitment.bind(service);
    (service as { commitment: typeof commitment }).commitment = (p) => commitment(p, p.value);
    try {
      const block = await head();
      const quorum = { clientNonce: 'cd'.repeat(16), block };
      const body = { model: 'tiny-chat', prompt: 'Once upon a time', max_tokens: MAX_TOKENS, seed: 3 };
      const req = requirementsOf(await quorumCall('/v1/completions', body, quorum));
      const before = await balances();
      const r = await quorumCall('/v1/completions', body, quorum, await meteredPayment(req));
      expect(r.status, r.text).toBe(200);
      const shares = [0, 1, 2].map((i) => charge(i, r.body.usage));
      const total = shares.reduce((a, b) => a + b, 0n);
      const [p0, c0, m10, m20, s0] = before as [bigint, bigint, bigint, bigint, bigint];
      expect(await balances()).toEqual([
        p0 - total,
        c0 + (shares[0] as bigint),
        m10 + (shares[1] as bigint),
        m20 + (shares[2] as bigint),
        s0,
      ]);
      const own = r.body.verity.receipts.find(
        (x) => x.record.node.toLowerCase() === coordinator().context.keys.address.toLowerCase(),
      );
      expect(own?.record.payment?.amount).toBe(req.amount);
      const verified = verifyBundle(bundleOf(r.body), {
        nodes: [],
        registry: await registrySnapshot(registry, BigInt(block)),
      });
      expect(verified.ok ? 'ok' : verified.code).toBe('QUORUM_CHARGE_EXCESS');
    } finally {
      (service as { commitment: typeof commitment }).commitment = commitment;
    }
  }, 240_000);

  it('the SDK pays a quorum chat within its budget, verifies the bundle and learns the charge', async () => {
    const budget = 1_000_000n;
    const payer = createPayer({ account: chain.anvil.privateKeys[PAYER] as Hex, budget, assets: [pay.token] });
    const client = createClient({ url: coordinator().url, chain: chainOptions, payment: payer });
    const before = await balances();
    const answer = await client.chatQuorum({ request: { ...CHAT, seed: 11 }, k: K });
    const shares = [0, 1, 2].map((i) => charge(i, answer.completion.usage as Usage));
    const total = shares.reduce((a, b) => a + b, 0n);
    expect(answer.receipts).toHaveLength(K);
    expect(answer.payment).toMatchObject({ scheme: 'metered', amount: total.toString() });
    expect(answer.payment?.authorized).toBe((maximum(0) + maximum(1) + maximum(2)).toString());
    // The unspent maximum is budget again.
    expect(payer.remaining()).toBe(budget - total);
    const [p0, c0, m10, m20, s0] = before as [bigint, bigint, bigint, bigint, bigint];
    expect(await balances()).toEqual([
      p0 - total,
      c0 + (shares[0] as bigint),
      m10 + (shares[1] as bigint),
      m20 + (shares[2] as bigint),
      s0,
    ]);
  }, 240_000);

  it('a member that refuses its payment is not paid; no quorum, the caller is not charged', async () => {
    // Fault injection: member 2 quotes its maximum in its 402 but refuses every payment it is sent.
    const member = nodes[2] as VerityNode;
    const service = member.context.payments as NonNullable<VerityNode['context']['payments']>;
    const check = service.check.bind(service);
    (service as { check: typeof check }).check = async (header, reqs, url, key) => {
      if (header !== undefined && reqs !== undefined) {
        throw paymentError('PAYMENT_UNDERPAID', 'refused (test)', service.required(reqs, url));
      }
      return check(header, reqs, url, key);
    };
    try {
      const block = await head();
      const quorum = { clientNonce: '12'.repeat(16), block };
      const req = requirementsOf(await quorumCall('/v1/chat/completions', CHAT, quorum));
      const before = await balances();
      const r = await quorumCall('/v1/chat/completions', CHAT, quorum, await meteredPayment(req));
      expect([r.status, r.body.error?.code]).toEqual([503, 'QUORUM_UNAVAILABLE']);
      // Member 1 answered and charged the coordinator its tokens; member 2 got nothing; the
      // caller got no answer and paid nothing; the coordinator logged no record of its own.
      const answered = r.body.error?.details?.receipts ?? [];
      expect(answered.map((x) => x.record.node)).toEqual([(nodes[1] as VerityNode).context.keys.address]);
      const a1 = BigInt(answered[0]?.record.payment?.amount ?? '0');
      expect(a1).toBeGreaterThan(0n);
      const [p0, c0, m10, m20, s0] = before as [bigint, bigint, bigint, bigint, bigint];
      expect(await balances()).toEqual([p0, c0 - a1, m10 + a1, m20, s0]);
    } finally {
      (service as { check: typeof check }).check = check;
    }
  }, 240_000);

  it('bad payments and unsupported requests are refused before anything runs; balances unchanged', async () => {
    const block = await head();
    const quorum = { clientNonce: 'ef'.repeat(16), block };
    const req = requirementsOf(await quorumCall('/v1/chat/completions', CHAT, quorum));
    const before = await balances();
    const size = coordinator().context.log.size;
    // Authorizing the coordinator's own maximum only: below the quorum's.
    const under = await quorumCall('/v1/chat/completions', CHAT, quorum, await meteredPayment(req, maximum(0)));
    expect([under.status, under.body.error?.code]).toEqual([402, 'PAYMENT_UNDERPAID']);
    // Streamed: a quorum answers whole completions, refused before its 402.
    const streamed = await quorumCall('/v1/chat/completions', { ...CHAT, stream: true }, quorum);
    expect([streamed.status, streamed.body.error?.code]).toEqual([400, 'INVALID_ARGUMENT']);
    expect(await balances()).toEqual(before);
    expect(coordinator().context.log.size).toBe(size);
  }, 120_000);
});
