/**
 * Issue 13's must-show on a live `verity up` (anvil, the contracts, the node: processes, nothing
 * of the network runs in this process), in Debian's Chromium (Playwright): every page of the
 * explorer the node serves loads (Network, Model, Log, Receipt); a bundle the node made for the
 * SDK verifies in the page, every row green; tampered copies of it (its output, its checkpoint
 * signature, its record) and a bundle from a node the registry does not know each show their
 * failing row and code; a `portable` iris record (iris@1.1.0, which `verity up` publishes for
 * both profiles) re-executes in the page and matches; the Playground's chat streams and its iris
 * form answers, each with a verified badge. Without Chromium the suite is skipped, said at the
 * run's end (test-support/browser.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLatestAnchor } from '@verity/contracts';
import type { Bundle } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { type Browser, chromium, type Page } from 'playwright';
import { type Address, createPublicClient, http, type PublicClient } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumPath, hasChromium } from '../../../test-support/browser.js';
import {
  openPage,
  reexecOnPage,
  rowsOf,
  verifyOnPage,
  withEditedRecord,
  withForgedCheckpoint,
} from '../../../test-support/explorer-page.js';
import { firstJsonLine, stopChild, until } from '../../../test-support/wait.js';
import { keystoreApiKey } from './data-dir.js';

const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
// Bounds that only catch a hang: a busy 2-core machine runs anvil, the node and Chromium at once.
const WAIT = { timeout: 120_000 };
const input = { x: [[5.1, 3.5, 1.4, 0.2]] };

interface UpInfo {
  url: string;
  address: Address;
  models: { ref: string; id: string }[];
  chain: { rpcUrl: string; deploymentFile: string };
}

let dir: string;
let up: ChildProcess;
let info: UpInfo;
let deployment: { contracts: { logAnchor: Address } };
let loner: ChildProcess;
let browser: Browser;
let page: Page;
/** A native iris bundle, a portable one (iris@1.1.0), and one from a node on no chain. */
let bundle: Bundle;
let portableBundle: Bundle;
let lonerBundle: Bundle;

const verify = (value: unknown) => verifyOnPage(page, info.url, value, { timeoutMs: 120_000 });

describe.skipIf(!hasChromium)('the explorer in Chromium against a live verity up', () => {
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'verity-up-explorer-'));
    up = spawn(process.execPath, [BIN, 'up', '--data-dir', join(dir, 'up'), '--port', '0', '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    info = await firstJsonLine<UpInfo>(up, 'verity up');
    deployment = JSON.parse(await readFile(info.chain.deploymentFile, 'utf8')) as typeof deployment;
    // A node on no chain (its own process): its receipts name a node the registry does not know.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('VERITY_')));
    loner = spawn(
      process.execPath,
      [BIN, 'node', 'start', '--data-dir', join(dir, 'loner'), '--port', '0', '--json', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'inherit'], env },
    );
    const lonerUrl = (await firstJsonLine<{ url: string }>(loner, 'verity node start (no chain)')).url;
    const apiKey = keystoreApiKey(join(dir, 'loner'));
    if (apiKey === undefined) throw new Error('the node on no chain wrote no API key');
    await createClient({ url: lonerUrl, apiKey }).pushModel({
      name: 'iris',
      data: new Uint8Array(await readFile(IRIS)),
    });
    lonerBundle = (
      await createClient({ url: lonerUrl, insecureTrustNode: true }).infer({ model: 'iris@1.0.0', input })
    ).bundle();
    // The SDK verifies every answer against the chain's registry, as a user of `verity up` would.
    const verity = createClient({ url: info.url, chain: { rpcUrl: info.chain.rpcUrl, deployment } });
    bundle = (await verity.infer({ model: 'iris@1.0.0', input })).bundle();
    portableBundle = (await verity.infer({ model: 'iris@1.1.0', input, profile: 'portable' })).bundle();
    // The node anchors every 5 s: wait for a checkpoint covering both records (the anchor row).
    const publicClient = createPublicClient({ transport: http(info.chain.rpcUrl) }) as PublicClient;
    const last = Math.max(bundle.receipts[0]?.leafIndex ?? 0, portableBundle.receipts[0]?.leafIndex ?? 0);
    await until(
      async () => {
        const a = await getLatestAnchor(publicClient, {
          logAnchor: deployment.contracts.logAnchor,
          node: info.address,
        });
        return a !== undefined && a.treeSize > BigInt(last) ? true : undefined;
      },
      'the anchor of the records',
      180_000,
    );
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 900, height: 700 } });
    page.setDefaultTimeout(120_000);
  }, 420_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([up, loner].map((c) => (c && c.exitCode === null ? stopChild(c) : undefined)));
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 180_000);

  it('Network: the node verity up registered, up, with its stake; the models it published', async () => {
    await openPage(page, `${info.url}/#/network`);
    const row = await page.waitForSelector(`[data-node="${info.address}"]`, WAIT);
    expect(await row.textContent()).toMatch(/registered.*ETH.*up/);
    for (const ref of ['iris@1.0.0', 'iris@1.1.0', 'tiny-chat@1.0.0']) {
      expect(info.models.map((m) => m.ref)).toContain(ref);
      await page.waitForSelector(`[data-model="${ref}"]`, WAIT);
    }
  }, 180_000);

  it('Model: iris@1.1.0 (both profiles): CID, publisher signature and registry mapping checked in the page', async () => {
    await openPage(page, `${info.url}/#/model/iris@1.1.0`);
    expect(await rowsOf(page, '#checks', 3)).toEqual([
      'Manifest CID: pass',
      'Publisher signature: pass',
      'ModelRegistry: pass',
    ]);
  }, 180_000);

  it('Log: the checkpoint signature, entries decoded from the tiles, an inclusion proof checked in the page', async () => {
    await openPage(page, `${info.url}/#/log`);
    expect(await rowsOf(page, '#checks', 1)).toEqual(['Checkpoint signature: pass']);
    expect(await rowsOf(page, '#proof-checks', 3)).toEqual([
      'Leaf hash: pass',
      'Tiles root: pass',
      'Inclusion proof: pass',
    ]);
    // At least the native and the portable iris records.
    expect(await page.$$eval('[data-leaf]', (els) => els.length)).toBeGreaterThanOrEqual(2);
  }, 180_000);

  it('Receipt: looked up by request id and verified in the page', async () => {
    await openPage(page, `${info.url}/#/receipt/${bundle.receipts[0]?.record.requestId}`);
    const verdict = await page.waitForSelector('[data-verdict]', WAIT);
    expect(await verdict.getAttribute('data-verdict')).toBe('valid');
  }, 180_000);

  it('Verify: the bundle the node made for the SDK, every row green, the verdict valid', async () => {
    const { verdict, rows } = await verify(bundle);
    expect(verdict).toBe('valid');
    expect(rows.filter((r) => r.status === 'fail')).toEqual([]);
    const passed = rows.filter((r) => r.status === 'pass').map((r) => r.check);
    for (const check of [
      'Registry entry',
      'Checkpoint signature',
      'Inclusion proof',
      'Input digest',
      'Output digest',
      'Anchor consistency',
    ]) {
      expect(passed, check).toContain(check);
    }
  }, 180_000);

  const tampered: [string, () => unknown, string, string][] = [
    [
      'another output',
      () => {
        const b = structuredClone(bundle) as { output: Record<string, { data: number[] }> };
        const t = Object.values(b.output)[0] as { data: number[] };
        t.data[0] = (t.data[0] as number) + 1;
        return b;
      },
      'Output digest',
      'RECEIPT_OUTPUT_DIGEST_MISMATCH',
    ],
    [
      'a forged checkpoint signature',
      () => withForgedCheckpoint(bundle),
      'Checkpoint signature',
      'NOTE_SIGNATURE_INVALID',
    ],
    [
      'a record edited after logging (inclusion)',
      () => withEditedRecord(bundle),
      'Inclusion proof',
      'RECEIPT_INCLUSION_INVALID',
    ],
    ['a node not in the registry', () => lonerBundle, 'Registry entry', 'RECEIPT_NODE_UNREGISTERED'],
  ];
  for (const [what, make, check, code] of tampered) {
    it(`Verify, ${what}: the ${check} row is red with ${code}`, async () => {
      const { verdict, rows } = await verify(make());
      expect(verdict).toBe(code);
      expect(rows.find((r) => r.status === 'fail')).toEqual({ check, status: 'fail', code });
    }, 180_000);
  }

  it('Re-execute: a portable iris record runs in the page (onnxruntime-web) and its output digest matches', async () => {
    expect(portableBundle.receipts[0]?.record.runtime).toMatchObject({ id: 'onnxruntime-web', profile: 'portable' });
    const { verdict } = await verify(portableBundle);
    expect(verdict).toBe('valid');
    const row = await reexecOnPage(page);
    expect(row, row.message).toMatchObject({ status: 'pass', code: null });
  }, 180_000);

  it('Playground: a tiny-chat answer streams, shows the OpenAI request, and carries a verified badge', async () => {
    await openPage(page, `${info.url}/#/playground/tiny-chat@1.0.0`);
    await page.click('#send');
    const badge = await page.waitForSelector('#badge', { timeout: 180_000 });
    expect(await badge.textContent()).toBe('✓ verified');
    expect(((await page.textContent('#answer')) ?? '').length).toBeGreaterThan(0);
    expect(await page.textContent('#request')).toContain('"stream": true');
  }, 240_000);

  it('Playground: the iris form, built from its input signature, answers with a verified badge', async () => {
    await openPage(page, `${info.url}/#/playground/iris@1.0.0`);
    await page.fill('[data-input="x"]', JSON.stringify(input.x));
    await page.click('#run');
    const badge = await page.waitForSelector('#badge', WAIT);
    expect(await badge.textContent()).toBe('✓ verified');
    expect(JSON.parse((await page.textContent('#output')) ?? '')).toHaveProperty('label');
    // The badge opens the receipt of this very request, which the node serves.
    const href = (await page.getAttribute('#badge', 'href')) as string;
    const receipt = await createClient({ url: info.url }).getReceipt(
      decodeURIComponent(href.split('/').pop() as string),
    );
    expect(receipt.record.model).toBe(info.models.find((m) => m.ref === 'iris@1.0.0')?.id);
  }, 180_000);
});
