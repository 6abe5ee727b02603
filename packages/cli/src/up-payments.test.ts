/**
 * Issue 15's must-show on `verity up` (anvil, the contracts, a node process; nothing of the network
 * runs in this process): the demo payer pays for answers with the test stablecoin `verity up`
 * deploys, the node settles on chain, and the receipt proves what was paid for which answer.
 *
 * - a paid ONNX call through the SDK (`exact`): payer −price, node +price, on chain; the record
 *   commits to the authorization's digest and the price, and the bundle verifies with it;
 * - a paid streamed chat with the official `openai` client through the SDK's `payingFetch`
 *   (`metered`): the maximum authorized, the tokens served charged (payer −amount, node +amount,
 *   the rest never leaves the payer), the receipt's payment commitment verified;
 * - the CLI (`verity infer --max-price`) pays and prints the payment;
 * - refusals cost nothing: no payer (PAYMENT_REQUIRED), a price above the cap
 *   (PAYMENT_OVER_BUDGET); a free model is not paid for.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tokenBalance } from '@verity/contracts';
import { isVerityError } from '@verity/protocol';
import { createClient, createPayer, payingFetch, verifyChatCompletion } from '@verity/sdk';
import OpenAI from 'openai';
import { chromium } from 'playwright';
import { type Address, createPublicClient, type Hex, http, type PublicClient } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, hasChromium } from '../../../test-support/browser.js';
import { firstJsonLine, stopChild, until } from '../../../test-support/wait.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const SAMPLES = fileURLToPath(new URL('../../../examples/models/forecast.samples.json', import.meta.url));

interface UpInfo {
  url: string;
  address: Address;
  chain: { rpcUrl: string; deploymentFile: string };
  payments: {
    token: Address;
    meteredSettlement: Address;
    prices: Record<string, { request?: string; inputToken?: string; outputToken?: string }>;
    payer: { address: Address; key: Hex; balance: string };
  };
}

let up: ChildProcess;
let info: UpInfo;
let dataDir: string;
let deployment: unknown;
let publicClient: PublicClient;
let input: Record<string, unknown>;
/** The paid ONNX answer's request id and payment digest (the explorer shows them). */
let paid: { requestId: string; digest: string; bundle: unknown } | undefined;

/** A record's payment commitment (docs/protocol.md §5): the authorization's digest, the amount charged. */
const commitment = (record: object) => (record as { payment?: { digest: string; amount: string } }).payment;

const balances = async () => ({
  payer: await tokenBalance(publicClient, info.payments.token, info.payments.payer.address),
  node: await tokenBalance(publicClient, info.payments.token, info.address),
});

/** Waits until the balances differ from `before` (a node may settle just after it answers). */
const settled = (before: { payer: bigint; node: bigint }) =>
  until(async () => {
    const now = await balances();
    return now.payer !== before.payer || now.node !== before.node ? now : undefined;
  }, 'the settlement on chain');

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-payments-'));
  // --price adds a price to those `verity up` sets (as VERITY_PRICES would).
  up = spawn(
    process.execPath,
    [BIN, 'up', '--data-dir', dataDir, '--port', '0', '--price', 'digits@1.0.0=1234', '--json'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  info = await firstJsonLine<UpInfo>(up, 'verity up');
  deployment = JSON.parse(await readFile(info.chain.deploymentFile, 'utf8'));
  publicClient = createPublicClient({ transport: http(info.chain.rpcUrl) }) as PublicClient;
  input = (JSON.parse(await readFile(SAMPLES, 'utf8')) as { samples: { inputs: Record<string, unknown> }[] }).samples[0]
    ?.inputs as Record<string, unknown>;
}, 300_000);

afterAll(async () => {
  if (up && up.exitCode === null) await stopChild(up);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, 180_000);

describe('verity up prices examples and funds a demo payer', () => {
  it('deploys the token, names it in the deployment file, and funds the payer', async () => {
    expect((deployment as { payments?: unknown }).payments).toEqual({
      token: info.payments.token,
      meteredSettlement: info.payments.meteredSettlement,
    });
    expect(info.payments.prices['forecast@1.0.0']).toEqual({ request: '10000' });
    expect(info.payments.prices['tiny-chat-paid@1.0.0']).toEqual({ inputToken: '10', outputToken: '100' });
    expect((await balances()).payer).toBeGreaterThanOrEqual(BigInt(info.payments.payer.balance) - 1_000_000n);
    // /v1/models states the price of the priced models only.
    const models = (await (await fetch(`${info.url}/v1/models`)).json()) as {
      data: { ref: string; price?: { scheme: string; request?: string } }[];
    };
    const price = (ref: string) => models.data.find((m) => m.ref === ref)?.price;
    expect(price('forecast@1.0.0')).toMatchObject({ scheme: 'exact', request: '10000' });
    expect(price('tiny-chat-paid@1.0.0')).toMatchObject({ scheme: 'metered', inputToken: '10', outputToken: '100' });
    expect(price('iris@1.0.0')).toBeUndefined();
    expect(price('tiny-chat@1.0.0')).toBeUndefined();
    // The --price flag's, beside them.
    expect(info.payments.prices['digits@1.0.0']).toEqual({ request: '1234' });
    expect(price('digits@1.0.0')).toMatchObject({ scheme: 'exact', request: '1234' });
  });
});

describe('a paid ONNX call through the SDK (exact)', () => {
  it('pays the price, settles on chain, and the receipt commits to the payment', async () => {
    const payer = createPayer({ account: info.payments.payer.key, budget: 1_000_000n, maxPrice: 10_000n });
    const verity = createClient({
      url: info.url,
      chain: { rpcUrl: info.chain.rpcUrl, deployment },
      payment: payer,
    });
    const before = await balances();
    const result = await verity.infer({ model: 'forecast@1.0.0', input });
    const after = await settled(before);
    expect(before.payer - after.payer).toBe(10_000n);
    expect(after.node - before.node).toBe(10_000n);
    expect(result.payment).toMatchObject({ scheme: 'exact', amount: '10000', payer: info.payments.payer.address });
    expect(commitment(result.record)).toEqual({ digest: result.payment?.digest.slice(2), amount: '10000' });
    expect(payer.spent()).toBe(10_000n);
    paid = { requestId: result.requestId, digest: commitment(result.record)?.digest ?? '', bundle: result.bundle() };
    // The bundle verifies offline with its payment: the authorization the receipt carries hashes
    // to the record's digest and was signed by the payer.
    // With the chain, the payment is settled too (the token shows the authorization used).
    const checked = await verity.verify(result.bundle());
    expect(checked.ok).toBe(true);
    // So does `verity verify` on the chain of the data dir.
    const file = join(dataDir, 'paid-bundle.json');
    await writeFile(file, JSON.stringify(result.bundle()));
    const { stdout } = await promisify(execFile)(process.execPath, [
      BIN,
      'verify',
      file,
      '--data-dir',
      dataDir,
      '--json',
    ]);
    expect((JSON.parse(stdout) as { ok: boolean }).ok).toBe(true);
    // A free model costs nothing.
    await verity.infer({ model: 'iris@1.0.0', input: { x: [[5.1, 3.5, 1.4, 0.2]] } });
    expect(payer.spent()).toBe(10_000n);
    expect(await balances()).toEqual(after);
  });

  it('refuses without paying: no payer, a price above the cap', async () => {
    const before = await balances();
    const free = createClient({ url: info.url, chain: { rpcUrl: info.chain.rpcUrl, deployment } });
    const e1 = await free.infer({ model: 'forecast@1.0.0', input }).catch((e: unknown) => e);
    expect(isVerityError(e1, 'PAYMENT_REQUIRED')).toBe(true);
    const capped = createClient({
      url: info.url,
      chain: { rpcUrl: info.chain.rpcUrl, deployment },
      payment: { account: info.payments.payer.key, budget: 1_000_000n, maxPrice: 9_999n },
    });
    const e2 = await capped.infer({ model: 'forecast@1.0.0', input }).catch((e: unknown) => e);
    expect(isVerityError(e2, 'PAYMENT_OVER_BUDGET')).toBe(true);
    expect(await balances()).toEqual(before);
  });
});

describe('a paid streamed chat with the official openai client (metered)', () => {
  it('authorizes the maximum, is charged the tokens served, and the receipt commits to it', async () => {
    // payingFetch has no chain: it is told the token and chain to pay in (a node does not choose them).
    const payer = createPayer({
      account: info.payments.payer.key,
      networks: [`eip155:${(deployment as { chainId: number }).chainId}`],
      assets: [info.payments.token],
      settlements: [info.payments.meteredSettlement],
      budget: 1_000_000n,
      maxPrice: 100_000n,
    });
    const openai = new OpenAI({
      baseURL: `${info.url}/v1`,
      apiKey: 'unused',
      fetch: payingFetch(payer),
      maxRetries: 0,
    });
    const request = {
      model: 'tiny-chat-paid@1.0.0',
      messages: [{ role: 'user' as const, content: 'Hello!' }],
      max_tokens: 8,
      seed: 7,
    };
    const before = await balances();
    const stream = await openai.chat.completions.create({ ...request, stream: true });
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const after = await settled(before);
    const made = payer.payments[0];
    // The stream's settlement gave the rest of the maximum back to the budget as it passed.
    expect(payer.spent()).toBe(before.payer - after.payer);
    expect(made?.scheme).toBe('metered');
    const charged = before.payer - after.payer;
    expect(after.node - before.node).toBe(charged);
    expect(charged).toBeGreaterThan(0n);
    expect(charged).toBeLessThanOrEqual(made?.authorized ?? 0n);
    // The answer verifies against the chain's registry, its receipt's payment included, and its
    // record commits to this payment and to the amount the chain moved.
    const verity = createClient({ url: info.url, chain: { rpcUrl: info.chain.rpcUrl, deployment } });
    const trust = await verity.trust();
    const { record } = verifyChatCompletion(request, chunks, trust);
    expect(commitment(record)).toEqual({ digest: made?.digest.slice(2), amount: charged.toString() });
  });
});

describe('the CLI pays with --max-price', () => {
  it('verity infer forecast@1.0.0 --max-price pays and prints the payment', async () => {
    const before = await balances();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        BIN,
        'infer',
        'forecast@1.0.0',
        '--data-dir',
        dataDir,
        '--input',
        JSON.stringify(input),
        '--max-price',
        '10000',
        '--json',
      ],
      { env: { ...process.env, VERITY_PAYER_KEY: info.payments.payer.key } },
    );
    const out = JSON.parse(stdout) as { verified: boolean; payment: { amount: string; digest: string } };
    expect(out.verified).toBe(true);
    expect(out.payment.amount).toBe('10000');
    const after = await settled(before);
    expect(before.payer - after.payer).toBe(10_000n);
  });
});

describe('the CLI pays only in a token a chain pins', () => {
  it('verity infer and verity chat with only --url (no chain): PAYMENT_ASSET_NOT_PINNED, nothing paid', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'verity-payments-nochain-'));
    const before = await balances();
    try {
      for (const args of [
        ['infer', 'forecast@1.0.0', '--input', JSON.stringify(input), '--max-price', '10000'],
        ['chat', 'tiny-chat-paid@1.0.0', '--message', 'Hello!', '--max-tokens', '8', '--max-price', '100000'],
      ]) {
        const e = await promisify(execFile)(
          process.execPath,
          [BIN, ...args, '--url', info.url, '--insecure-trust-node', '--data-dir', empty],
          { env: { ...process.env, VERITY_PAYER_KEY: info.payments.payer.key } },
        ).catch((x: unknown) => x as { code: number; stderr: string });
        expect((e as { code: number }).code).toBe(1);
        expect((e as { stderr: string }).stderr).toContain('PAYMENT_ASSET_NOT_PINNED');
      }
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
    expect(await balances()).toEqual(before);
  });
});

describe('the CLI pays a metered chat with --max-price', () => {
  it('verity chat tiny-chat-paid@1.0.0 --max-price: charged the tokens served, at most the maximum', async () => {
    const before = await balances();
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        BIN,
        'chat',
        'tiny-chat-paid@1.0.0',
        '--data-dir',
        dataDir,
        '--message',
        'Hello!',
        '--max-tokens',
        '8',
        '--seed',
        '7',
        '--max-price',
        '100000',
        '--json',
      ],
      { env: { ...process.env, VERITY_PAYER_KEY: info.payments.payer.key } },
    );
    const out = JSON.parse(stdout) as {
      verified: boolean;
      payment: { scheme: string; amount: string; authorized: string };
    };
    expect(out.verified).toBe(true);
    expect(out.payment.scheme).toBe('metered');
    expect(BigInt(out.payment.amount)).toBeLessThanOrEqual(BigInt(out.payment.authorized));
    const after = await settled(before);
    expect(before.payer - after.payer).toBe(BigInt(out.payment.amount));
    expect(after.node - before.node).toBe(BigInt(out.payment.amount));
  });
});

describe.skipIf(!hasChromium)('the explorer shows prices and payments', () => {
  it('the model page shows the price, the receipt page the payment next to the record', async () => {
    expect(paid).toBeDefined();
    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${info.url}/#/model/forecast@1.0.0`);
      await page.waitForSelector('text=per request', { timeout: 60_000 });
      expect(await page.textContent('body')).toContain('10000 atomic units per request');
      await page.goto('about:blank');
      await page.goto(`${info.url}/#/model/iris@1.0.0`);
      await page.waitForSelector('#checks', { timeout: 60_000 });
      expect(await page.textContent('body')).toMatch(/Price\s*free/);
      await page.goto('about:blank');
      // The paid bundle on the Verify page: valid, its payment row green.
      await page.goto(`${info.url}/#/verify`);
      await page.fill('#bundle', JSON.stringify(paid?.bundle, null, 2));
      await page.click('#verify');
      const verdict = await page.waitForSelector('[data-verdict]', { timeout: 60_000 });
      expect(await verdict.getAttribute('data-verdict')).toBe('valid');
      expect(await page.getAttribute('#checks .row[data-check="Payment"]', 'data-status')).toBe('pass');
      // On the chain: the authorization the record commits to was used on the token.
      expect(await page.getAttribute('#checks .row[data-check="Payment settled"]', 'data-status')).toBe('pass');
      // The receipt page: the payment next to the record that commits to it.
      await page.goto('about:blank');
      await page.goto(`${info.url}/#/receipt/${paid?.requestId}`);
      const receiptVerdict = await page.waitForSelector('[data-verdict]', { timeout: 60_000 });
      expect(await receiptVerdict.getAttribute('data-verdict')).toBe('valid');
      const text = (await page.textContent('#result')) ?? '';
      expect(text).toContain('10000 atomic units');
      expect(text).toContain(`Payer${info.payments.payer.address}`);
      expect(text).toContain(`Payee${info.address}`);
      expect(text).toContain(`Payment digest${paid?.digest}`);
    } finally {
      await browser.close();
    }
  }, 180_000);
});
