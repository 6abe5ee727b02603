/**
 * Paid answers end to end (issue 15, docs/api.md "Payments"): a real anvil with TestStablecoin, a
 * real node on a socket, payments signed with viem (`signTransferAuthorization`, an EIP-712
 * implementation independent of the node's). A paid ONNX call moves exactly the price from payer
 * to node; each bad payment is a 402 with its code, no record and no money moved; a retried
 * payment settles once; a node killed between answer and settlement settles on restart, once.
 */
import { execFile, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  type Deployment,
  deploymentToJson,
  getTokenDomain,
  meteredNonce,
  meteredSettlementAbi,
  mintTestTokens,
  type PaymentContracts,
  randomBytes32,
  settleExact,
  signTransferAuthorization,
  type TokenDomain,
  testStablecoinAbi,
  tokenBalance,
  transferAuthorizationDigest,
} from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import {
  authorizationDigest,
  BUNDLE_MEDIA_TYPE,
  decodePaymentHeader,
  encodePaymentHeader,
  PAYMENT_HEADERS,
  type PaymentPayload,
  type PaymentRequirements,
  parsePaymentRequired,
  parseSettleResponse,
  type Receipt,
  toHex,
  verifyBundle,
  verifyBundleChecks,
  verifyReceipt,
} from '@verity/protocol';
import { createClient, createGateway, payingFetch, verifyWithPayers } from '@verity/sdk';
import { type Address, concat, type Hex, hashTypedData, parseEventLogs } from 'viem';
import { privateKeyToAccount, toAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstJsonLine, stopChild, until } from '../../../../test-support/wait.js';
import { deployOne } from '../../../contracts/src/deploy.js';
import {
  erc1271WalletHarnessAbi,
  erc1271WalletHarnessBytecode,
} from '../../../contracts/src/generated/erc1271-wallet-harness.js';
import { startTestChain, type TestChain } from '../../../contracts/src/test-support/chain.js';
import { checkBundle } from '../../../explorer/src/checks.js';
import type { Deployment as PageDeployment } from '../../../explorer/src/env.js';
import { openKeystore } from '../keys.js';
import type { VerityNode } from '../node.js';
import { startChainNode } from '../test-support/chain-node.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const TS_LOADER = join(REPO, 'test-support', 'ts-loader.mjs');
const CLI = join(REPO, 'packages', 'cli', 'dist', 'main.js');
const CRASH_MAIN = join(REPO, 'packages', 'node', 'src', 'test-support', 'payment-crash-main.ts');
const IRIS = new Uint8Array(readFileSync(join(REPO, 'examples', 'models', 'iris.onnx')));
const PRICE = 1000n; // 0.001 vUSD
const PAYER = 1;
const POOR = 2; // holds less than the price
const OTHER = 3; // signs for someone else
const GGUF = new Uint8Array(readFileSync(join(REPO, 'examples', 'models', 'tiny-chat.gguf')));
const prices = {
  'iris@1.0.0': { request: PRICE.toString() },
  // Per token: 3 units per prompt token, 5 per generated token.
  'tiny-chat@1.0.0': { inputToken: '3', outputToken: '5' },
};
const LLM = { gpu: 'cpu', sequences: 1, contextSize: 512, threads: 1 } as const;

let chain: TestChain;
let d: Deployment;
let pay: PaymentContracts;
let deploymentFile: string;
let node: VerityNode;
let domain: TokenDomain;

const account = (i: number) => privateKeyToAccount(chain.anvil.privateKeys[i] as Hex);
const balance = (owner: string) => tokenBalance(chain.publicClient, pay.token, owner as Address);

/** What the node asks for iris: the x402 requirements of its 402. */
async function requirementsOf(url: string, model = 'iris@1.0.0'): Promise<PaymentRequirements> {
  const r = await fetch(`${url}/v1/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, input: { x: [[5.1, 3.5, 1.4, 0.2]] } }),
  });
  expect(r.status).toBe(402);
  const required = parsePaymentRequired(decodePaymentHeader(r.headers.get(PAYMENT_HEADERS.required) as string));
  return required.accepts[0] as PaymentRequirements;
}

/** A PAYMENT-SIGNATURE for `req`, signed by account `signer` (x402 exact, EIP-3009), with changes. */
async function payment(
  req: PaymentRequirements,
  changes: {
    signer?: number;
    value?: bigint;
    validAfter?: bigint;
    validBefore?: bigint;
    domain?: Partial<TokenDomain>;
    accepted?: Partial<PaymentRequirements>;
    from?: number;
    nonce?: Hex;
    /** A contract wallet paying: `from` is it, `signer` signs the digest for it (ERC-1271). */
    wallet?: Address;
    /** Bytes after the wallet owner's 65 (the harness ignores them): a signature of another length. */
    suffix?: Hex;
  } = {},
): Promise<{ header: string; payload: PaymentPayload }> {
  const signer = account(changes.signer ?? PAYER);
  const now = BigInt(Math.floor(Date.now() / 1000));
  const auth = {
    from: changes.wallet ?? signer.address,
    to: req.payTo as Address,
    value: changes.value ?? BigInt(req.amount),
    validAfter: changes.validAfter ?? now - 600n,
    validBefore: changes.validBefore ?? now + BigInt(req.maxTimeoutSeconds),
    nonce: changes.nonce ?? randomBytes32(),
  };
  const signature =
    changes.wallet === undefined
      ? await signTransferAuthorization(signer, { ...domain, ...changes.domain }, auth, 'transfer')
      : concat([
          await signer.sign({ hash: transferAuthorizationDigest({ ...domain, ...changes.domain }, auth) }),
          changes.suffix ?? '0x',
        ]);
  const from = changes.from === undefined ? auth.from : account(changes.from).address;
  const payload = {
    x402Version: 2,
    accepted: { ...req, ...changes.accepted },
    payload: {
      signature,
      authorization: {
        from,
        to: auth.to,
        value: auth.value.toString(),
        validAfter: auth.validAfter.toString(),
        validBefore: auth.validBefore.toString(),
        nonce: auth.nonce,
      },
    },
  } as PaymentPayload;
  return { header: encodePaymentHeader(payload), payload };
}

async function infer(
  url: string,
  header?: string,
  input: unknown = { x: [[5.1, 3.5, 1.4, 0.2]] },
  model = 'iris@1.0.0',
  extra: Record<string, unknown> = {},
) {
  const r = await fetch(`${url}/v1/infer`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(header === undefined ? {} : { [PAYMENT_HEADERS.signature]: header }),
    },
    body: JSON.stringify({ model, input, ...extra }),
  });
  const text = await r.text();
  return {
    status: r.status,
    headers: r.headers,
    text,
    body: JSON.parse(text) as Record<string, unknown> & { error?: { code: string } },
  };
}

beforeAll(async () => {
  chain = await startTestChain();
  d = await chain.deploy();
  pay = await chain.deployPayments({ [PAYER]: 10_000_000n, [POOR]: PRICE - 1n, [OTHER]: 10_000_000n });
  const dir = await mkdtemp(join(tmpdir(), 'verity-pay-'));
  deploymentFile = join(dir, 'deployment.json');
  await writeDeploymentFile(deploymentFile, { ...d, payments: pay });
  node = await startChainNode(chain, {
    dataDir: join(dir, 'node'),
    deploymentFile,
    overrides: { payments: { prices }, llm: LLM },
  });
  await createClient({ url: node.url, apiKey: node.context.keys.apiKey }).pushModel({
    name: 'iris',
    version: '1.0.0',
    data: IRIS,
  });
  domain = await getTokenDomain(chain.publicClient, pay.token);
});

afterAll(async () => {
  await node?.stop();
  await chain?.stop();
});

describe('a priced model', () => {
  it('shows its price in /v1/models and answers 402 with what it accepts', async () => {
    const models = (await (await fetch(`${node.url}/v1/models`)).json()) as {
      data: { ref: string; price?: unknown }[];
    };
    expect(models.data.find((m) => m.ref === 'iris@1.0.0')?.price).toEqual({
      scheme: 'exact',
      request: '1000',
      asset: pay.token,
      network: `eip155:${d.chainId}`,
      payTo: node.context.keys.address,
    });
    const before = node.context.log.size;
    const r = await infer(node.url);
    expect(r.status).toBe(402);
    expect(r.body.error?.code).toBe('PAYMENT_REQUIRED');
    const required = parsePaymentRequired(decodePaymentHeader(r.headers.get('payment-required') as string));
    expect(required.error).toBe('PAYMENT_REQUIRED');
    expect(required.resource.url).toMatch(/\/v1\/infer$/);
    expect(required.accepts).toEqual([
      {
        scheme: 'exact',
        network: `eip155:${d.chainId}`,
        asset: pay.token,
        amount: '1000',
        payTo: node.context.keys.address,
        maxTimeoutSeconds: 300,
        extra: { name: 'Verity Test USD', version: '1' },
      },
    ]);
    expect(node.context.log.size).toBe(before);
  });

  it('serves a paid call: exactly the price moves, the record commits to the payment, the receipt verifies it', async () => {
    const req = await requirementsOf(node.url);
    const payer = account(PAYER).address;
    const [p0, n0] = [await balance(payer), await balance(node.context.keys.address)];
    const { header, payload } = await payment(req);
    const r = await infer(node.url, header);
    expect(r.status, r.text).toBe(200);
    expect([await balance(payer), await balance(node.context.keys.address)]).toEqual([p0 - PRICE, n0 + PRICE]);
    const settled = parseSettleResponse(decodePaymentHeader(r.headers.get('payment-response') as string));
    expect(settled).toMatchObject({ success: true, payer, network: `eip155:${d.chainId}`, amount: '1000' });
    expect(settled.transaction).toMatch(/^0x[0-9a-f]{64}$/);
    const receipt = r.body.receipt as Receipt;
    const digest = toHex(authorizationDigest(domain, payload.payload.authorization, 'transfer'));
    expect(receipt.record.payment).toEqual({ digest, amount: '1000' });
    expect(receipt.payment?.authorization.from).toBe(payer);
    const trust = { nodes: [{ address: node.context.keys.address, logKey: node.context.keys.logKey }] };
    const bundle = { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receipt] };
    const policy = { payment: { network: `eip155:${d.chainId}`, asset: pay.token } };
    expect(verifyBundle(bundle, trust, policy).ok).toBe(true);
    // The same receipt claiming a larger authorization: its digest is no longer the record's.
    const auth = { ...(receipt.payment as NonNullable<Receipt['payment']>).authorization, value: '5000' };
    const forged = { ...receipt, payment: { ...receipt.payment, authorization: auth } };
    const bad = verifyBundle({ ...bundle, receipts: [forged] }, trust, policy);
    expect(bad.ok ? 'ok' : bad.code).toBe('RECEIPT_PAYMENT_MISMATCH');
    // The Verify page's rows say the same, on the payment row.
    const row = (b: unknown) => verifyBundleChecks(b, trust, policy).checks.find((c) => c.check === 'payment');
    expect(row(bundle)).toMatchObject({ status: 'pass' });
    expect(row({ ...bundle, receipts: [forged] })).toMatchObject({ status: 'fail', code: 'RECEIPT_PAYMENT_MISMATCH' });
    // Looked up later by request id, the receipt still carries the payment (from the journal).
    const byId = (await (await fetch(`${node.url}/v1/receipts/${r.body.requestId}`)).json()) as Receipt;
    expect(byId.payment).toEqual(receipt.payment);
    expect(verifyBundle({ ...bundle, receipts: [byId] }, trust, policy).ok).toBe(true);
    const elsewhere = verifyBundle(bundle, trust, { payment: { network: 'eip155:8453' } });
    expect(elsewhere.ok ? 'ok' : elsewhere.code).toBe('PAYMENT_WRONG_NETWORK');

    // The same payment for the same request again (a client that lost the answer): the same
    // answer, byte for byte, and no second settlement. For another request: refused.
    const size = node.context.log.size;
    const again = await infer(node.url, header);
    expect(again.status).toBe(200);
    expect(again.text).toBe(r.text);
    expect(again.headers.get('payment-response')).toBe(r.headers.get('payment-response'));
    const other = await infer(node.url, header, { x: [[6.1, 2.8, 4.7, 1.2]] });
    expect([other.status, other.body.error?.code]).toEqual([402, 'PAYMENT_REPLAYED']);
    expect([await balance(payer), await balance(node.context.keys.address)]).toEqual([p0 - PRICE, n0 + PRICE]);
    expect(node.context.log.size).toBe(size);
  });

  it('pays for an audited answer as for a signed one: the record commits to the payment, the payload is kept', async () => {
    const req = await requirementsOf(node.url);
    const payer = account(PAYER).address;
    const p0 = await balance(payer);
    const { header } = await payment(req);
    const r = await infer(node.url, header, undefined, 'iris@1.0.0', { mode: 'audited' });
    expect(r.status, r.text).toBe(200);
    const receipt = r.body.receipt as Receipt;
    expect(receipt.record.mode).toBe('audited');
    expect(receipt.record.payment?.amount).toBe('1000');
    expect(r.body.audit).toBeDefined();
    expect(await balance(payer)).toBe(p0 - PRICE);
    // Mode quorum without a clientNonce (it seeds the selection): refused before anything runs, nothing
    // paid (a paid quorum: quorum-payments.test.ts).
    const q = await infer(node.url, (await payment(req)).header, undefined, 'iris@1.0.0', { mode: 'quorum' });
    expect([q.status, q.body.error?.code]).toEqual([400, 'INVALID_ARGUMENT']);
    expect(await balance(payer)).toBe(p0 - PRICE);
  });

  it('refuses each bad payment with its code: 402, no record logged, no money moved', async () => {
    const req = await requirementsOf(node.url);
    const now = BigInt(Math.floor(Date.now() / 1000));
    // A nonce already used on chain: the payer's authorization settled by someone else first.
    const used = randomBytes32();
    const spent = await payment(req, { nonce: used });
    const a = spent.payload.payload.authorization;
    await settleExact(
      chain.clients(OTHER),
      pay.token,
      {
        from: a.from as Address,
        to: a.to as Address,
        value: BigInt(a.value),
        validAfter: BigInt(a.validAfter),
        validBefore: BigInt(a.validBefore),
        nonce: used,
      },
      spent.payload.payload.signature as Hex,
    );
    const cases: [string, Promise<{ header: string }> | { header: string }, string][] = [
      ['malformed header', { header: 'not-base64!' }, 'PAYMENT_INVALID'],
      ['underpaid: one unit short', payment(req, { value: PRICE - 1n }), 'PAYMENT_UNDERPAID'],
      ['expired', payment(req, { validAfter: now - 600n, validBefore: now - 1n }), 'PAYMENT_EXPIRED'],
      ['not valid yet', payment(req, { validAfter: now + 600n, validBefore: now + 1200n }), 'PAYMENT_EXPIRED'],
      ['replayed: nonce already used on chain', spent, 'PAYMENT_REPLAYED'],
      [
        'wrong chain (network named)',
        payment(req, { domain: { chainId: 1 }, accepted: { network: 'eip155:1' } }),
        'PAYMENT_WRONG_NETWORK',
      ],
      [
        'wrong chain (signed for chain 1, network claimed right)',
        payment(req, { domain: { chainId: 1 } }),
        'PAYMENT_SIGNATURE_INVALID',
      ],
      ['wrong token', payment(req, { accepted: { asset: pay.meteredSettlement } }), 'PAYMENT_WRONG_NETWORK'],
      [
        'wrong token (signed for another token)',
        payment(req, { domain: { verifyingContract: pay.meteredSettlement } }),
        'PAYMENT_SIGNATURE_INVALID',
      ],
      ['payee is not the node', payment(req, { accepted: { payTo: account(OTHER).address } }), 'PAYMENT_WRONG_NETWORK'],
      ['insufficient balance', payment(req, { signer: POOR }), 'PAYMENT_INSUFFICIENT_FUNDS'],
      ['signature by another account', payment(req, { signer: OTHER, from: PAYER }), 'PAYMENT_SIGNATURE_INVALID'],
    ];
    const watched = [account(PAYER).address, account(POOR).address, account(OTHER).address, node.context.keys.address];
    const before = await Promise.all(watched.map(balance));
    const size = node.context.log.size;
    for (const [why, made, code] of cases) {
      const { header } = await made;
      const r = await infer(node.url, header);
      expect([why, r.status, r.body.error?.code]).toEqual([why, 402, code]);
      const required = parsePaymentRequired(decodePaymentHeader(r.headers.get('payment-required') as string));
      expect([why, required.error]).toEqual([why, code]);
    }
    expect(await Promise.all(watched.map(balance))).toEqual(before);
    expect(node.context.log.size).toBe(size);
  });
});

/**
 * A node process (payment-crash-main.ts) that takes a payment, answers into its log and journal,
 * and dies by SIGKILL where it would settle; what a test needs to restart it and look.
 */
async function crashBeforeSettlement() {
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-pay-crash-'));
  const { address, apiKey } = openKeystore(dataDir);
  await chain.testClient.setBalance({ address: address as Address, value: 10n ** 19n });
  const configFile = join(dataDir, 'config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      dataDir,
      port: 0,
      logLevel: 'warn',
      chain: { rpcUrl: chain.anvil.rpcUrl, deploymentFile, anchorIntervalMs: 0 },
      payments: { prices },
    }),
  );
  const child = spawn(process.execPath, ['--import', TS_LOADER, CRASH_MAIN, '--config', configFile], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const info = await firstJsonLine<{ url: string }>(child, 'payment-crash node');
    // By CID: on the chain the name iris@1.0.0 is the first node's (its own manifest, publisher).
    const pushed = await createClient({ url: info.url, apiKey }).pushModel({
      name: 'iris',
      version: '1.0.0',
      data: IRIS,
    });
    const model = pushed.id;
    const req = await requirementsOf(info.url, model);
    const payer = account(PAYER).address;
    const before = [await balance(payer), await balance(address)];
    const { header } = await payment(req);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_c, s) => resolve(s)));
    // The answer was made, logged and journaled; the process dies before its settlement.
    await expect(infer(info.url, header, undefined, model)).rejects.toThrow();
    expect(await exited).toBe('SIGKILL');
    expect([await balance(payer), await balance(address)]).toEqual(before);
    return { dataDir, address, payer, model, header, before: before as [bigint, bigint] };
  } finally {
    await stopChild(child);
  }
}

describe('a node killed between answer and settlement', () => {
  it('settles the journaled payment once on restart; the retried payment gets the answer', async () => {
    const { dataDir, address, payer, model, header, before } = await crashBeforeSettlement();
    const [p0, n0] = before;
    // Restarted on the same data dir: the journal's payment is settled, once.
    const again = await startChainNode(chain, { dataDir, deploymentFile, overrides: { payments: { prices } } });
    try {
      expect([await balance(payer), await balance(address)]).toEqual([p0 - PRICE, n0 + PRICE]);
      // The payer retries with the same payment: the answer it paid for, no second charge.
      const r = await until(async () => {
        const x = await infer(again.url, header, undefined, model);
        return x.status === 200 ? x : undefined;
      }, 'the retried payment answered');
      const settled = parseSettleResponse(decodePaymentHeader(r.headers.get('payment-response') as string));
      expect(settled.success).toBe(true);
      expect((r.body.receipt as Receipt).record.payment?.amount).toBe('1000');
      expect([await balance(payer), await balance(address)]).toEqual([p0 - PRICE, n0 + PRICE]);
    } finally {
      await again.stop();
    }
  });
});

describe('a language model priced per token (scheme metered)', () => {
  const CHAT = { model: 'tiny-chat@1.0.0', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 8, seed: 7 };

  async function chat(header?: string, body: Record<string, unknown> = CHAT) {
    return fetch(`${node.url}/v1/chat/completions`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(header === undefined ? {} : { [PAYMENT_HEADERS.signature]: header }),
      },
      body: JSON.stringify(body),
    });
  }

  /** A metered payment for `req`: ReceiveWithAuthorization of the maximum to MeteredSettlement, nonce bound to the node. */
  async function meteredPayment(req: PaymentRequirements): Promise<string> {
    const signer = account(PAYER);
    const salt = randomBytes32();
    const now = BigInt(Math.floor(Date.now() / 1000));
    const auth = {
      from: signer.address,
      to: req.extra.settlement as Address,
      value: BigInt(req.amount),
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

  const required = async (): Promise<PaymentRequirements> => {
    const r = await chat();
    expect(r.status).toBe(402);
    return parsePaymentRequired(decodePaymentHeader(r.headers.get('payment-required') as string))
      .accepts[0] as PaymentRequirements;
  };

  beforeAll(async () => {
    const res = await fetch(`${node.url}/v1/models?name=tiny-chat&format=gguf`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
      body: GGUF,
    });
    expect(res.status).toBeLessThan(300);
  });

  it('asks for the most the request may cost, charges the tokens used, returns the rest', async () => {
    const req = await required();
    // Every context token as prompt (512 × 3) plus max_tokens generated (8 × 5).
    expect(req).toMatchObject({
      scheme: 'metered',
      amount: String(512 * 3 + 8 * 5),
      payTo: node.context.keys.address,
      extra: { settlement: pay.meteredSettlement, pricePerInputToken: '3', pricePerOutputToken: '5' },
    });
    const payer = account(PAYER).address;
    const [p0, n0] = [await balance(payer), await balance(node.context.keys.address)];
    const header = await meteredPayment(req);
    const r = await chat(header);
    const text = await r.text();
    expect(r.status, text).toBe(200);
    const body = JSON.parse(text) as {
      usage: { prompt_tokens: number; completion_tokens: number };
      verity: { receipt: Receipt };
    };
    const charged = BigInt(body.usage.prompt_tokens * 3 + body.usage.completion_tokens * 5);
    const settled = parseSettleResponse(decodePaymentHeader(r.headers.get('payment-response') as string));
    expect(settled).toMatchObject({ success: true, amount: charged.toString() });
    expect(body.verity.receipt.record.payment?.amount).toBe(charged.toString());
    expect([await balance(payer), await balance(node.context.keys.address)]).toEqual([p0 - charged, n0 + charged]);
    const trust = { nodes: [{ address: node.context.keys.address, logKey: node.context.keys.logKey }] };
    expect(verifyBundle({ mediaType: BUNDLE_MEDIA_TYPE, receipts: [body.verity.receipt] }, trust).ok).toBe(true);
    // Retried: the same answer, no second settlement.
    const again = await chat(header);
    expect(await again.text()).toBe(text);
    expect([await balance(payer), await balance(node.context.keys.address)]).toEqual([p0 - charged, n0 + charged]);
  });

  it('streams a paid answer: the settlement rides in the last chunk, the charge is the tokens used', async () => {
    const req = await required();
    const payer = account(PAYER).address;
    const [p0, n0] = [await balance(payer), await balance(node.context.keys.address)];
    const r = await chat(await meteredPayment(req), { ...CHAT, stream: true, stream_options: { include_usage: true } });
    expect(r.status).toBe(200);
    type Event = {
      usage?: { prompt_tokens: number; completion_tokens: number };
      verity?: { payment?: unknown; receipt: Receipt };
    };
    const events = (await r.text())
      .split('\n\n')
      .map((e) => e.replace(/^data: /, ''))
      .filter((e) => e !== '' && e !== '[DONE]')
      .map((e) => JSON.parse(e) as Event);
    const usage = events.find((e) => e.usage)?.usage as NonNullable<Event['usage']>;
    const verity = events.find((e) => e.verity)?.verity as NonNullable<Event['verity']>;
    const charged = BigInt(usage.prompt_tokens * 3 + usage.completion_tokens * 5);
    expect(verity.payment).toMatchObject({ success: true, amount: charged.toString() });
    expect(verity.receipt.record.payment?.amount).toBe(charged.toString());
    expect([await balance(payer), await balance(node.context.keys.address)]).toEqual([p0 - charged, n0 + charged]);
  });
});

describe('a payer who empties its account between the check and the settlement', () => {
  it('gets 402 PAYMENT_SETTLEMENT_FAILED: the answer is withheld and no money reaches the node', async () => {
    const FLEE = 4;
    const AWAY = 5;
    await mintTestTokens(chain.clients(0), pay.token, account(FLEE).address, 5_000n);
    // Test code only: before the node's settlement, the payer moves all its tokens away — a real
    // transfer on the chain, so the real settlement that follows reverts.
    const flee = await startChainNode(chain, {
      dataDir: await mkdtemp(join(tmpdir(), 'verity-pay-flee-')),
      deploymentFile,
      overrides: { payments: { prices } },
      options: {
        paymentSettler: (settler) => ({
          ...settler,
          settle: async (p, amount) => {
            const all = await balance(account(FLEE).address);
            const { walletClient } = chain.clients(FLEE);
            const hash = await walletClient.writeContract({
              address: pay.token,
              abi: testStablecoinAbi,
              functionName: 'transfer',
              args: [account(AWAY).address, all],
              account: walletClient.account,
              chain: walletClient.chain,
            });
            await chain.publicClient.waitForTransactionReceipt({ hash });
            return settler.settle(p, amount);
          },
        }),
      },
    });
    try {
      const pushed = await createClient({ url: flee.url, apiKey: flee.context.keys.apiKey }).pushModel({
        name: 'iris',
        version: '1.0.0',
        data: IRIS,
      });
      const req = await requirementsOf(flee.url, pushed.id);
      const { header } = await payment(req, { signer: FLEE });
      const r = await infer(flee.url, header, undefined, pushed.id);
      expect([r.status, r.body.error?.code]).toEqual([402, 'PAYMENT_SETTLEMENT_FAILED']);
      expect(r.body.output).toBeUndefined();
      const required = parsePaymentRequired(decodePaymentHeader(r.headers.get('payment-required') as string));
      expect(required.error).toBe('PAYMENT_SETTLEMENT_FAILED');
      expect(await balance(flee.context.keys.address)).toBe(0n);
      // The same payment again: still refused, never served.
      const again = await infer(flee.url, header, undefined, pushed.id);
      expect([again.status, again.body.error?.code]).toEqual([402, 'PAYMENT_SETTLEMENT_FAILED']);
      expect(await balance(flee.context.keys.address)).toBe(0n);
    } finally {
      await flee.stop();
    }
  });
});

describe('a payer who cancels its authorization between the check and the settlement', () => {
  it('gets 402 PAYMENT_SETTLEMENT_FAILED: a cancelled nonce is not taken for a settled one', async () => {
    const CANCEL = 9;
    const payer = account(CANCEL);
    await mintTestTokens(chain.clients(0), pay.token, payer.address, 5_000n);
    // Test code only: before the node's settlement, the payer burns the nonce with EIP-3009
    // `cancelAuthorization` — a real transaction, after which the token's nonce state reads "used"
    // although nothing moved, and the real settlement that follows reverts.
    const cancelled: Hex[] = [];
    const node2 = await startChainNode(chain, {
      dataDir: await mkdtemp(join(tmpdir(), 'verity-pay-cancel-')),
      deploymentFile,
      overrides: { payments: { prices } },
      options: {
        paymentSettler: (settler) => ({
          ...settler,
          settle: async (p, amount) => {
            const nonce = p.authorization.nonce as Hex;
            const signature = await payer.signTypedData({
              domain,
              types: {
                CancelAuthorization: [
                  { name: 'authorizer', type: 'address' },
                  { name: 'nonce', type: 'bytes32' },
                ],
              },
              primaryType: 'CancelAuthorization',
              message: { authorizer: payer.address, nonce },
            });
            const { walletClient } = chain.clients(CANCEL);
            const hash = await walletClient.writeContract({
              address: pay.token,
              abi: testStablecoinAbi,
              functionName: 'cancelAuthorization',
              args: [payer.address, nonce, signature],
              account: walletClient.account,
              chain: walletClient.chain,
            });
            await chain.publicClient.waitForTransactionReceipt({ hash });
            cancelled.push(nonce);
            return settler.settle(p, amount);
          },
        }),
      },
    });
    try {
      const pushed = await createClient({ url: node2.url, apiKey: node2.context.keys.apiKey }).pushModel({
        name: 'iris',
        version: '1.0.0',
        data: IRIS,
      });
      const req = await requirementsOf(node2.url, pushed.id);
      const before = await balance(payer.address);
      const { header } = await payment(req, { signer: CANCEL });
      const r = await infer(node2.url, header, undefined, pushed.id);
      expect(cancelled).toHaveLength(1);
      expect([r.status, r.body.error?.code]).toEqual([402, 'PAYMENT_SETTLEMENT_FAILED']);
      expect(r.body.output).toBeUndefined();
      expect([await balance(payer.address), await balance(node2.context.keys.address)]).toEqual([before, 0n]);
      // The same payment again: still refused, never served.
      const again = await infer(node2.url, header, undefined, pushed.id);
      expect([again.status, again.body.error?.code, again.body.output]).toEqual([
        402,
        'PAYMENT_SETTLEMENT_FAILED',
        undefined,
      ]);
      expect([await balance(payer.address), await balance(node2.context.keys.address)]).toEqual([before, 0n]);
    } finally {
      await node2.stop();
    }
  });
});

describe('settlements that arrive while one is in flight (group commit)', () => {
  it('go together in one transaction; one the token would refuse gets PAYMENT_SETTLEMENT_FAILED outside it, the others their answers', async () => {
    const FLEE = 6;
    const AWAY = 7;
    await mintTestTokens(chain.clients(0), pay.token, account(FLEE).address, 5_000n);
    const req = await requirementsOf(node.url);
    const payer = account(PAYER).address;
    const nodeAddress = node.context.keys.address;
    const [p0, n0, a0] = [await balance(payer), await balance(nodeAddress), await balance(account(AWAY).address)];
    const journal = join(node.context.config.dataDir, 'payments', 'journal.jsonl');
    const accepted = () =>
      readFileSync(journal, 'utf8')
        .split('\n')
        .filter((l) => l.includes('"t":"accepted"')).length;
    const journaled = (n: number, what: string) => until(async () => (accepted() >= n ? true : undefined), what);
    const start = accepted();
    // Blocks are mined by hand: the first settlement stays in flight while the others arrive.
    await chain.testClient.setAutomine(false);
    try {
      const first = infer(node.url, (await payment(req)).header);
      await journaled(start + 1, 'the first payment journaled');
      const headers = [
        (await payment(req)).header,
        (await payment(req)).header,
        (await payment(req, { signer: FLEE })).header,
        (await payment(req)).header,
      ];
      const rest = headers.map((h) => infer(node.url, h));
      await journaled(start + 5, 'the four others journaled, waiting for the first settlement');
      // Before any block: the FLEE payer moves all its tokens away, so the token refuses its item.
      const { walletClient } = chain.clients(FLEE);
      await walletClient.writeContract({
        address: pay.token,
        abi: testStablecoinAbi,
        functionName: 'transfer',
        args: [account(AWAY).address, 5_000n],
        account: walletClient.account,
        chain: walletClient.chain,
      });
      let done = false;
      const all = Promise.all([first, ...rest]).finally(() => {
        done = true;
      });
      await until(async () => {
        if (done) return true;
        await chain.testClient.mine({ blocks: 1 });
        return undefined;
      }, 'every request answered');
      const [one, ...others] = await all;
      expect(one?.status).toBe(200);
      const responseOf = (r: Awaited<ReturnType<typeof infer>>) =>
        parseSettleResponse(decodePaymentHeader(r.headers.get('payment-response') as string));
      const fled = others[2] as Awaited<ReturnType<typeof infer>>;
      expect([fled.status, fled.body.error?.code, fled.body.output]).toEqual([
        402,
        'PAYMENT_SETTLEMENT_FAILED',
        undefined,
      ]);
      const paid = [others[0], others[1], others[3]] as Awaited<ReturnType<typeof infer>>[];
      expect(paid.map((r) => r.status)).toEqual([200, 200, 200]);
      // The three that waited went in one transaction, not the first's.
      const transactions = new Set(paid.map((r) => responseOf(r).transaction));
      expect(transactions.size).toBe(1);
      const [batch] = [...transactions] as Hex[];
      expect(batch).not.toBe(responseOf(one as Awaited<ReturnType<typeof infer>>).transaction);
      const receipt = await chain.publicClient.getTransactionReceipt({ hash: batch as Hex });
      const used = parseEventLogs({ abi: testStablecoinAbi, eventName: 'AuthorizationUsed', logs: receipt.logs });
      expect(used.map((l) => l.args.authorizer)).toEqual([payer, payer, payer]);
      // The FLEE payer's transfer was mined with the first settlement, before the batch went: its
      // item, tried first by an eth_call, failed at once and stayed out (no gas spent on it).
      const failed = parseEventLogs({ abi: meteredSettlementAbi, eventName: 'ExactFailed', logs: receipt.logs });
      expect(failed).toHaveLength(0);
      const tx = await chain.publicClient.getTransaction({ hash: batch as Hex });
      expect(tx.input.toLowerCase()).not.toContain(account(FLEE).address.slice(2).toLowerCase());
      // Exactly four prices moved; the FLEE payer's payment moved nothing.
      expect([await balance(payer), await balance(nodeAddress)]).toEqual([p0 - 4n * PRICE, n0 + 4n * PRICE]);
      expect([await balance(account(FLEE).address), await balance(account(AWAY).address)]).toEqual([0n, a0 + 5_000n]);
    } finally {
      await chain.testClient.setAutomine(true);
    }
  });
});

describe('a contract wallet (ERC-1271) as the payer', () => {
  const OWNER = 8;
  /** A fresh Erc1271WalletHarness owned by account OWNER, holding 10 000 units. */
  async function newWallet(): Promise<Address> {
    const wallet = (
      await deployOne(
        chain.clients(OWNER),
        'Erc1271WalletHarness',
        erc1271WalletHarnessAbi,
        erc1271WalletHarnessBytecode,
        [account(OWNER).address],
      )
    ).address;
    await mintTestTokens(chain.clients(0), pay.token, wallet, 10_000n);
    return wallet;
  }

  it('is served when the wallet vouches for the signature; refused when it does not', async () => {
    const wallet = await newWallet();
    const req = await requirementsOf(node.url);
    const nodeAddress = node.context.keys.address;
    const n0 = await balance(nodeAddress);
    // Underpaid or expired, with any signature: refused on what the node checks locally, before
    // it asks the wallet (an RPC call) anything.
    const settler = (node.context.payments as NonNullable<VerityNode['context']['payments']>).settler;
    const asked = settler.signedByContract;
    let asks = 0;
    (settler as { signedByContract: typeof asked }).signedByContract = (...args) => {
      asks++;
      return asked.apply(settler, args);
    };
    try {
      const cheap = await infer(node.url, (await payment(req, { wallet, signer: OTHER, value: PRICE - 1n })).header);
      expect([cheap.status, cheap.body.error?.code]).toEqual([402, 'PAYMENT_UNDERPAID']);
      const old = await infer(node.url, (await payment(req, { wallet, signer: OTHER, validBefore: 1n })).header);
      expect([old.status, old.body.error?.code]).toEqual([402, 'PAYMENT_EXPIRED']);
      expect(asks).toBe(0);
    } finally {
      (settler as { signedByContract: typeof asked }).signedByContract = asked;
    }
    // Signed by a key the wallet does not answer for: refused before anything moves.
    const forged = await infer(node.url, (await payment(req, { wallet, signer: OTHER })).header);
    expect([forged.status, forged.body.error?.code]).toEqual([402, 'PAYMENT_SIGNATURE_INVALID']);
    expect([await balance(wallet), await balance(nodeAddress)]).toEqual([10_000n, n0]);
    // Its owner's signature, which the wallet's isValidSignature vouches for: served and settled.
    const r = await infer(node.url, (await payment(req, { wallet, signer: OWNER })).header);
    expect(r.status).toBe(200);
    const settled = parseSettleResponse(decodePaymentHeader(r.headers.get('payment-response') as string));
    expect([settled.success, settled.payer]).toEqual([true, wallet]);
    expect([await balance(wallet), await balance(nodeAddress)]).toEqual([10_000n - PRICE, n0 + PRICE]);
  });

  it('pays with a signature longer than 65 bytes; its receipt verifies with the chain only, and a wallet that says no is refused', async () => {
    const wallet = await newWallet();
    const req = await requirementsOf(node.url);
    const n0 = await balance(node.context.keys.address);
    // 70 bytes: the owner's 65 and 5 the wallet ignores; the token takes it through its bytes form.
    const r = await infer(node.url, (await payment(req, { wallet, signer: OWNER, suffix: '0xc0ffee0001' })).header);
    expect(r.status, r.text).toBe(200);
    expect([await balance(wallet), await balance(node.context.keys.address)]).toEqual([10_000n - PRICE, n0 + PRICE]);
    const receipt = r.body.receipt as Receipt;
    expect(receipt.payment?.signature).toHaveLength(2 + 140);
    const trust = { nodes: [{ address: node.context.keys.address, logKey: node.context.keys.logKey }] };
    const bundle = { mediaType: BUNDLE_MEDIA_TYPE, receipts: [receipt] };
    const policy = { network: `eip155:${d.chainId}`, asset: pay.token };
    // Offline a wallet's signature and a forgery look alike: neither ok nor a forgery, the chain decides.
    const offline = verifyBundle(bundle, trust, { payment: policy });
    expect(offline.ok ? 'ok' : offline.code).toBe('PAYMENT_SIGNATURE_NEEDS_CHAIN');
    const row = verifyBundleChecks(bundle, trust, { payment: policy }).checks.find((c) => c.check === 'payment');
    expect(row).toMatchObject({ status: 'fail', code: 'PAYMENT_SIGNATURE_NEEDS_CHAIN' });
    // With the chain: the wallet vouches (isValidSignature answers the magic value).
    const sdkChain = { publicClient: chain.publicClient, deployment: { ...d, payments: pay } };
    const withChain = (b: typeof bundle) =>
      verifyWithPayers(sdkChain, b.receipts, (payment) => verifyBundle(b, trust, { payment }), policy);
    const ok = await withChain(bundle);
    expect(ok.ok ? 'ok' : ok.code).toBe('ok');
    // The client's verify with a chain: the same, and the authorization is used on the token.
    const verity = createClient({
      url: node.url,
      chain: { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson({ ...d, payments: pay }) },
    });
    const viaClient = await verity.verify(bundle, { trust });
    expect(viaClient.ok ? 'ok' : viaClient.code).toBe('ok');
    // A signature the wallet does not vouch for (its r flipped): refused with the chain; offline, undecided.
    const sig = receipt.payment?.signature as string;
    const flipped = `${sig.slice(0, 10)}${sig[10] === '0' ? '1' : '0'}${sig.slice(11)}`;
    const tampered = { ...bundle, receipts: [{ ...receipt, payment: { ...receipt.payment, signature: flipped } }] };
    const refused = await withChain(tampered as typeof bundle);
    expect(refused.ok ? 'ok' : [refused.code, refused.receipt]).toEqual(['PAYMENT_SIGNATURE_INVALID', 0]);
    const refusedByClient = await verity.verify(tampered, { trust });
    expect(refusedByClient.ok ? 'ok' : refusedByClient.code).toBe('PAYMENT_SIGNATURE_INVALID');
    const undecided = verifyReceipt(tampered.receipts[0], trust, { payment: policy });
    expect(undecided.ok ? 'ok' : undecided.code).toBe('PAYMENT_SIGNATURE_NEEDS_CHAIN');
    // The explorer's Verify page, on the chain: a row says the wallet vouched; the tampered one fails there.
    const env = {
      url: node.url,
      client: verity,
      chain: {
        rpcUrl: chain.anvil.rpcUrl,
        deployment: deploymentToJson({ ...d, payments: pay }) as PageDeployment,
        publicClient: chain.publicClient,
        pinned: true,
      },
    };
    const page = await checkBundle(env, bundle);
    expect(page.ok ? 'ok' : page.code).toBe('ok');
    expect(page.rows.find((r) => r.label === 'Payer signature')).toMatchObject({ status: 'pass' });
    const tamperedPage = await checkBundle(env, tampered);
    expect([tamperedPage.ok, tamperedPage.code]).toEqual([false, 'PAYMENT_SIGNATURE_INVALID']);
    expect(tamperedPage.rows.find((r) => r.label === 'Payer signature')).toMatchObject({ status: 'fail' });
    // `verity verify` with a chain (--rpc, --deployment): the same two verdicts.
    const dir = await mkdtemp(join(tmpdir(), 'verity-wallet-'));
    const cli = async (b: unknown) => {
      const file = join(dir, 'bundle.json');
      writeFileSync(file, JSON.stringify(b));
      const args = [CLI, 'verify', file, '--rpc', chain.anvil.rpcUrl, '--deployment', deploymentFile, '--json'];
      const out = await promisify(execFile)(process.execPath, args).catch((e: { stdout: string }) => e);
      return JSON.parse(out.stdout) as { ok: boolean; error?: { code: string } };
    };
    expect(await cli(bundle)).toMatchObject({ ok: true });
    expect(await cli(tampered)).toMatchObject({ ok: false, error: { code: 'PAYMENT_SIGNATURE_INVALID' } });
  });

  it('an SDK client with a chain pays from a contract wallet and verifies its own answer', async () => {
    const wallet = await newWallet();
    const owner = account(OWNER);
    // The wallet as a viem account: its owner signs each EIP-712 digest for it, 3 bytes more
    // than ECDSA's 65 (what a smart wallet's signature looks like: not the payer's ECDSA).
    const walletAccount = toAccount({
      address: wallet,
      signMessage: () => Promise.reject(new Error('not used')),
      signTransaction: () => Promise.reject(new Error('not used')),
      signTypedData: async (typed) =>
        concat([await owner.sign({ hash: hashTypedData(typed as Parameters<typeof hashTypedData>[0]) }), '0x010203']),
    });
    const client = createClient({
      url: node.url,
      chain: { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson({ ...d, payments: pay }) },
      payment: { account: walletAccount, budget: 5_000n },
    });
    const n0 = await balance(node.context.keys.address);
    const answer = await client.infer({ model: 'iris@1.0.0', input: { x: [[5.1, 3.5, 1.4, 0.2]] } });
    expect(answer.payment).toMatchObject({ payer: wallet, amount: PRICE.toString() });
    expect([await balance(wallet), await balance(node.context.keys.address)]).toEqual([10_000n - PRICE, n0 + PRICE]);
    expect(client.base.payer?.spent()).toBe(PRICE);
    // A language model, metered (ReceiveWithAuthorization of a maximum to MeteredSettlement): the
    // streamed answer's receipt carries the wallet's signature, asked of the wallet on the chain.
    const pushed = await fetch(`${node.url}/v1/models?name=tiny-chat&format=gguf`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', authorization: `Bearer ${node.context.keys.apiKey}` },
      body: GGUF,
    });
    expect(pushed.status === 409 || pushed.status < 300, await pushed.text()).toBe(true);
    const messages = [{ role: 'user', content: 'Hello!' }];
    const answer2 = await client.chat({ request: { model: 'tiny-chat@1.0.0', messages, max_tokens: 4, seed: 7 } });
    const charged = BigInt(answer2.payment?.amount ?? -1);
    expect(answer2.payment?.payer).toBe(wallet);
    expect(answer2.verity.receipt.payment?.signature).toHaveLength(2 + 136);
    expect(await balance(wallet)).toBe(10_000n - PRICE - charged);

    // Through a gateway on the chain (its OpenAI route): the wallet's honest answer is asked of
    // the wallet and passed on, not counted as the node's failure.
    const routing = createClient({
      chain: { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson({ ...d, payments: pay }) },
    });
    const gateway = createGateway(routing.base);
    try {
      const paying = payingFetch(
        {
          account: walletAccount,
          budget: 5_000n,
          networks: [`eip155:${d.chainId}`],
          assets: [pay.token],
          settlements: [pay.meteredSettlement],
        },
        (input, init) => gateway.fetch(new Request(input, init)),
      );
      const r = await paying('http://gw/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-chat@1.0.0', messages, max_tokens: 4, seed: 8 }),
      });
      const text = await r.text();
      expect(r.status, text).toBe(200);
      const body = JSON.parse(text) as { verity: { receipt: Receipt } };
      expect(body.verity.receipt.payment?.authorization.from).toBe(wallet);
    } finally {
      routing.base.network?.close();
    }
  });
});

// Last in the file: it moves the chain's clock an hour ahead of the wall clock.
describe('a node down until its journaled payment expired', () => {
  it('lets it go on restart: the payer keeps the money, the retry is refused', async () => {
    const { dataDir, address, payer, model, header, before } = await crashBeforeSettlement();
    // Past every validBefore the payment allows (maxTimeoutSeconds is 300): the token refuses it.
    await chain.testClient.increaseTime({ seconds: 3600 });
    await chain.testClient.mine({ blocks: 1 });
    const again = await startChainNode(chain, { dataDir, deploymentFile, overrides: { payments: { prices } } });
    try {
      expect([await balance(payer), await balance(address)]).toEqual(before);
      const r = await infer(again.url, header, undefined, model);
      expect([r.status, r.body.error?.code]).toEqual([402, 'PAYMENT_SETTLEMENT_FAILED']);
      expect([await balance(payer), await balance(address)]).toEqual(before);
    } finally {
      await again.stop();
    }
  });
});
