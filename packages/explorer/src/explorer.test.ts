import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Deployment, deploymentToJson, getLatestAnchor, registerNode } from '@verity/contracts';
import { writeDeploymentFile } from '@verity/contracts/node';
import { createPortableRuntime, loadConfig, startNode, type VerityNode } from '@verity/node';
import type { Bundle } from '@verity/protocol';
import { createClient } from '@verity/sdk';
import { type Browser, chromium, type Page } from 'playwright';
import { parseEther } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeModel, floatInitializer, matMul } from '../../../examples/onnx-writer.js';
import { chromiumPath, hasChromium } from '../../../test-support/browser.js';
import {
  openPage,
  reexecOnPage as reexec,
  rowsOf as rowsUnder,
  type VerifyOptions,
  verifyOnPage as verifyOn,
  withEditedRecord,
  withForgedCheckpoint,
} from '../../../test-support/explorer-page.js';
import { until } from '../../../test-support/wait.js';
import { startTestChain, type TestChain } from '../../contracts/src/test-support/chain.js';
import { startChainNode } from '../../node/src/test-support/chain-node.js';
import { createLyingRuntime } from '../../node/src/test-support/lying-node.js';

// The explorer in Debian's Chromium, served by a real node on a real chain (anvil): its pages
// load, and the Verify page shows every check of a bundle as a row, green, or red with its code.
// Without Chromium (apt-get install chromium) the suite is skipped, said at the run's end
// (test-support/browser.ts).
const CHROMIUM = chromiumPath;
const SITE = fileURLToPath(new URL('../dist/site/index.html', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
// A tiny random-weight llama the repo writes itself (examples/llm): it speaks gibberish, verifiably.
// The protocol's receipt fixtures (independent of this node), for the witness policy.
const RECEIPT_FIXTURES = fileURLToPath(new URL('../../protocol/fixtures/receipts/', import.meta.url));
// Real iris Groth16 proofs with the audit of their key (packages/sdk/test-support/zk-fixture.ts).
const ZK_FIXTURE = fileURLToPath(new URL('../../sdk/fixtures/zk-iris.json', import.meta.url));
// The convolutional digits model (211 kB: one raw block), published for both ONNX profiles.
const DIGITS = fileURLToPath(new URL('../../../examples/models/digits.onnx', import.meta.url));
const DIGITS_SAMPLES = fileURLToPath(new URL('../../../examples/models/digits.samples.json', import.meta.url));
const TINY_CHAT = fileURLToPath(new URL('../../../examples/models/tiny-chat.gguf', import.meta.url));
// EXPLORER_SCREENSHOTS=docs/explorer saves a screenshot of each page there.
const SHOTS = process.env.EXPLORER_SCREENSHOTS;

let chain: TestChain;
let deployment: Deployment;
let node: VerityNode;
let loner: VerityNode;
let other: VerityNode;
let browser: Browser;
let page: Page;
let bundle: Bundle;
let lonerBundle: Bundle;
let liar: VerityNode;
let portableBundle: Bundle;
let liarBundle: Bundle;
let wideBundle: Bundle;
let auditedPortableId: string;
const input = { x: [[5.1, 3.5, 1.4, 0.2]] };

async function shot(name: string): Promise<void> {
  if (SHOTS === undefined) return;
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** Opens a page afresh (test-support/explorer-page.ts). */
const open = (url: string) => openPage(page, url);

/** The Verify page's rows for `value`: label, status and code of each. */
const verifyOnPage = (value: unknown, options: VerifyOptions & { url?: string } = {}) =>
  verifyOn(page, options.url ?? node.url, value, options);

describe.skipIf(!hasChromium)('the explorer in Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(SITE)) throw new Error(`${SITE} is missing: run \`npm run build\` first`);
    chain = await startTestChain();
    deployment = await chain.deploy();
    const dir = await mkdtemp(join(tmpdir(), 'verity-explorer-'));
    await writeDeploymentFile(join(dir, 'deployment.json'), { ...deployment, rpcUrl: chain.anvil.rpcUrl });
    node = await startChainNode(chain, {
      dataDir: join(dir, 'node'),
      deploymentFile: join(dir, 'deployment.json'),
      overrides: { chain: { anchorIntervalMs: 500 }, explorer: { rpcUrl: chain.anvil.rpcUrl } },
    });
    // Another registered node: the Network page served by the first reads it across origins.
    other = await startChainNode(chain, {
      dataDir: join(dir, 'other'),
      deploymentFile: join(dir, 'deployment.json'),
      overrides: { peers: { localNetwork: true } },
    });
    // A node on no chain: its receipts name a node the registry does not know.
    loner = await startNode(
      loadConfig({ overrides: { dataDir: join(dir, 'loner'), port: 0, logLevel: 'silent', fsync: false } }),
    );
    // A node whose portable runtime lies (test code: the real node, its onnxruntime-web outputs
    // nudged before it digests and signs them), on no chain: its records verify, and are wrong.
    liar = await startNode(
      loadConfig({ overrides: { dataDir: join(dir, 'liar'), port: 0, logLevel: 'silent', fsync: false } }),
      { portable: createLyingRuntime(createPortableRuntime()) },
    );
    const data = new Uint8Array(readFileSync(IRIS));
    const admin = createClient({ url: node.url, apiKey: node.context.keys.apiKey });
    await admin.pushModel({ name: 'iris', data });
    await admin.pushModel({ name: 'tiny-chat', format: 'gguf', data: new Uint8Array(readFileSync(TINY_CHAT)) });
    await createClient({ url: loner.url, apiKey: loner.context.keys.apiKey }).pushModel({ name: 'iris', data });
    // A node registered with a hostile endpoint: the registry is anyone's to write.
    await registerNode(chain.clients(5), {
      nodeRegistry: deployment.contracts.nodeRegistry,
      logKey: `0x${'11'.repeat(32)}`,
      origin: 'evil.example/log',
      endpoint: 'javascript:document.title="pwned"',
      capabilities: ['mode:signed'],
      stake: parseEther('1'),
    });
    const verity = createClient({
      url: node.url,
      chain: { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson(deployment) },
    });
    for (let i = 0; i < 3; i++) bundle = (await verity.infer({ model: 'iris@1.0.0', input })).bundle();
    // Portable records: the digits CNN, published for both profiles, asked for under `portable`.
    const digits = new Uint8Array(readFileSync(DIGITS));
    const digitsInput = (JSON.parse(readFileSync(DIGITS_SAMPLES, 'utf8')) as { samples: { inputs: unknown }[] })
      .samples[0]?.inputs as Record<string, unknown>;
    await admin.pushModel({ name: 'digits', data: digits, profiles: ['native', 'portable'] });
    portableBundle = (await verity.infer({ model: 'digits@1.0.0', input: digitsInput, profile: 'portable' })).bundle();
    // Audited: the node keeps its payload public while the window is open (the Receipt page's input).
    auditedPortableId = (
      await verity.infer({ model: 'digits@1.0.0', input: digitsInput, profile: 'portable', mode: 'audited' })
    ).requestId;
    await createClient({ url: liar.url, apiKey: liar.context.keys.apiKey }).pushModel({
      name: 'digits',
      data: digits,
      profiles: ['native', 'portable'],
    });
    // A model of more than one block (1.8 MB: 4 → 65536 → 3, two MatMuls): the page reads its CAR.
    const WIDE = 65_536;
    const wide = encodeModel({
      name: 'wide',
      inputs: [{ name: 'x', elemType: 'float32', shape: ['batch', 4] }],
      outputs: [{ name: 'y', elemType: 'float32', shape: ['batch', 3] }],
      initializers: [
        floatInitializer(
          'w1',
          [4, WIDE],
          Array.from({ length: 4 * WIDE }, (_, i) => Math.sin(i) / 8),
        ),
        floatInitializer(
          'w2',
          [WIDE, 3],
          Array.from({ length: WIDE * 3 }, (_, i) => Math.cos(i) / 256),
        ),
      ],
      nodes: [matMul('x', 'w1', 'h'), matMul('h', 'w2', 'y')],
    });
    expect(wide.length).toBeGreaterThan(1_048_576);
    await createClient({ url: loner.url, apiKey: loner.context.keys.apiKey }).pushModel({
      name: 'wide',
      data: wide,
      profiles: ['native', 'portable'],
    });
    wideBundle = (
      await createClient({ url: loner.url, insecureTrustNode: true }).infer({
        model: 'wide@1.0.0',
        input,
        profile: 'portable',
      })
    ).bundle();
    liarBundle = (
      await createClient({ url: liar.url, insecureTrustNode: true }).infer({
        model: 'digits@1.0.0',
        input: digitsInput,
        profile: 'portable',
      })
    ).bundle();
    lonerBundle = (
      await createClient({ url: loner.url, insecureTrustNode: true }).infer({ model: 'iris@1.0.0', input })
    ).bundle();
    // Wait until the node anchored a checkpoint covering the record (the anchor row links to it).
    const leaf = bundle.receipts[0]?.leafIndex ?? 0;
    await until(async () => {
      const a = await getLatestAnchor(chain.publicClient, {
        logAnchor: deployment.contracts.logAnchor,
        node: node.context.keys.address as `0x${string}`,
      });
      return a !== undefined && a.treeSize > BigInt(leaf) ? true : undefined;
    }, 'the anchor of the record');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 900, height: 700 } });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all([node?.stop(), loner?.stop(), other?.stop(), liar?.stop()]);
    await chain?.stop();
  });

  /** The status of every check row under `selector` once `count` of them are drawn. */
  const rowsOf = (selector: string, count: number) => rowsUnder(page, selector, count);

  it('first load: small and fast (bytes over the wire and ms to a drawn page, cold cache)', async () => {
    const measured: Record<string, { bytes: number; ms: number }> = {};
    for (const [name, ready] of [
      ['verify', '#verify'],
      ['network', `[data-node="${node.context.keys.address}"]`],
    ] as const) {
      const context = await browser.newContext();
      const fresh = await context.newPage();
      await fresh.goto(`${node.url}/#/${name}`);
      await fresh.waitForSelector(ready, { timeout: 30_000 });
      measured[name] = await fresh.evaluate(() => {
        const entries = [
          ...performance.getEntriesByType('navigation'),
          ...performance.getEntriesByType('resource'),
        ] as PerformanceResourceTiming[];
        return { bytes: entries.reduce((n, e) => n + e.transferSize, 0), ms: Math.round(performance.now()) };
      });
      await context.close();
    }
    console.log(`explorer first load (gzip, cold cache): ${JSON.stringify(measured)}`);
    // The shell, the page's chunk, the SDK (viem, the protocol): about 0.25 MB gzipped.
    expect(measured.verify?.bytes).toBeLessThan(400_000);
    expect(measured.network?.bytes).toBeLessThan(400_000);
  });

  it('Network: the registered node, up, with its stake and log; the models published on chain', async () => {
    await open(`${node.url}/#/network`);
    const row = await page.waitForSelector(`[data-node="${node.context.keys.address}"]`, { timeout: 30_000 });
    expect(await row.textContent()).toMatch(/registered.*1 ETH.*up/);
    await page.waitForSelector('[data-model="iris@1.0.0"]');
    // The other node is read across origins (its public GET routes allow any page).
    const peer = await page.waitForSelector(`[data-node="${other.context.keys.address}"]`);
    expect(await peer.textContent()).toMatch(/registered.*up/);
    // The hostile node is listed, down, and its endpoint is text: no javascript: link anywhere.
    const evil = await page.waitForSelector(`[data-node="${chain.address(5)}"]`);
    expect(await evil.textContent()).toMatch(/javascript:.*down/);
    expect(
      await page.$$eval('a', (as) => as.filter((a) => /^javascript:/i.test(a.getAttribute('href') ?? '')).length),
    ).toBe(0);
    await shot('network');
  });

  it('Network on a node that names no RPC URL for browsers: the page asks for one, then reads the chain', async () => {
    await open(`${other.url}/#/network`);
    await page.waitForSelector('text=no JSON-RPC URL for the chain');
    await page.fill('#rpc', chain.anvil.rpcUrl);
    await page.click('text=Use');
    const row = await page.waitForSelector(`[data-node="${node.context.keys.address}"]`, { timeout: 30_000 });
    expect(await row.textContent()).toMatch(/registered.*up/);
  });

  it('Model: CID recomputed, publisher signature and registry mapping checked in the page', async () => {
    await open(`${node.url}/#/model/iris@1.0.0`);
    expect(await rowsOf('#checks', 3)).toEqual([
      'Manifest CID: pass',
      'Publisher signature: pass',
      'ModelRegistry: pass',
    ]);
    await shot('model');
  });

  it('Log: the checkpoint signature, entries decoded from the tiles, an inclusion proof checked in the page', async () => {
    await open(`${node.url}/#/log`);
    expect(await rowsOf('#checks', 1)).toEqual(['Checkpoint signature: pass']);
    expect(await rowsOf('#proof-checks', 3)).toEqual(['Leaf hash: pass', 'Tiles root: pass', 'Inclusion proof: pass']);
    const requests = await page.$$eval('[data-leaf]', (els) => els.length);
    // Three iris records and the two portable digits records.
    expect(requests).toBe(5);
    await shot('log');
  });

  it('Receipt: looked up by request id and verified in the page', async () => {
    const id = bundle.receipts[0]?.record.requestId as string;
    await open(`${node.url}/#/receipt/${id}`);
    const verdict = await page.waitForSelector('[data-verdict]', { timeout: 30_000 });
    expect(await verdict.getAttribute('data-verdict')).toBe('valid');
    await shot('receipt');
  });

  it('Receipt: a request another registered node answered is found there, and verified', async () => {
    const there = createClient({
      url: other.url,
      chain: { rpcUrl: chain.anvil.rpcUrl, deployment: deploymentToJson(deployment) },
    });
    const { requestId } = await there.infer({ model: 'iris@1.0.0', input });
    await open(`${node.url}/#/receipt/${requestId}`);
    const verdict = await page.waitForSelector('[data-verdict]', { timeout: 30_000 });
    expect(await verdict.getAttribute('data-verdict')).toBe('valid');
    expect(await page.textContent('#result')).toContain(`Found at${other.url}`);
  });

  it('Playground: the iris form, built from its input signature, answers with a verified badge', async () => {
    await open(`${node.url}/#/playground/iris@1.0.0`);
    await page.fill('[data-input="x"]', JSON.stringify(input.x));
    await page.click('#run');
    const badge = await page.waitForSelector('#badge', { timeout: 30_000 });
    expect(await badge.textContent()).toBe('✓ verified');
    expect(JSON.parse((await page.textContent('#output')) ?? '')).toHaveProperty('label');
    await shot('playground-onnx');
    // Another mode for the next request: audited (the record says so; the SDK checks it).
    const first = await page.getAttribute('#badge', 'href');
    await page.selectOption('#mode', 'audited');
    await page.click('#run');
    // The next badge: another request id.
    await page.waitForFunction((h) => document.querySelector('#badge')?.getAttribute('href') !== h, first);
    expect(await page.textContent('#badge')).toBe('✓ verified');
    const href = (await page.getAttribute('#badge', 'href')) as string;
    const receipt = await createClient({ url: node.url }).getReceipt(
      decodeURIComponent(href.split('/').pop() as string),
    );
    expect(receipt.record.mode).toBe('audited');
  });

  it('Playground: a chat streams, shows the OpenAI request, and carries a verified badge; mode audited on request', async () => {
    await open(`${node.url}/#/playground/tiny-chat@1.0.0`);
    await page.click('#send');
    const badge = await page.waitForSelector('#badge', { timeout: 120_000 });
    expect(await badge.textContent()).toBe('✓ verified');
    expect(((await page.textContent('#answer')) ?? '').length).toBeGreaterThan(0);
    expect(await page.textContent('#request')).toContain('"stream": true');
    await shot('playground-chat');
    // Mode audited for the next chat: the header is shown, the record says so (the SDK checks it).
    const first = await page.getAttribute('#badge', 'href');
    await page.selectOption('#chat-mode', 'audited');
    await page.click('#send');
    await page.waitForFunction((h) => document.querySelector('#badge')?.getAttribute('href') !== h, first, {
      timeout: 120_000,
    });
    expect(await page.textContent('#badge')).toBe('✓ verified');
    expect(await page.textContent('#request')).toContain('x-verity-mode: audited');
    const href = (await page.getAttribute('#badge', 'href')) as string;
    const receipt = await createClient({ url: node.url }).getReceipt(
      decodeURIComponent(href.split('/').pop() as string),
    );
    expect(receipt.record.mode).toBe('audited');
  });

  it('the deployment: the serving node\u2019s word until pinned; a pinned one is read whatever node serves the pages', async () => {
    const openSettings = async () => {
      await open(`${node.url}/#/network`);
      await page.waitForSelector('#pin-deployment', { state: 'attached', timeout: 30_000 });
      await page.$eval('details:has(#pin-deployment)', (d) => {
        (d as HTMLDetailsElement).open = true;
      });
    };
    try {
      await openSettings();
      expect(await page.textContent('#deployment')).toContain('as this node serves it');
      await page.click('#pin-deployment');
      await page.waitForFunction(() => document.querySelector('#deployment')?.textContent?.includes('pinned'));
      const pinned = await verifyOnPage(bundle);
      expect(pinned.verdict).toBe('valid');
      expect(await page.textContent('#basis')).toContain('deployment pinned in this browser');
      // Pinned to another network's registry (here: an address with no registry): this node's
      // receipts are checked against that one, not against what the node serves, and fail.
      await page.evaluate(() => {
        const d = JSON.parse(localStorage.getItem('verity.explorer.deployment') as string);
        d.contracts.nodeRegistry = '0x000000000000000000000000000000000000dEaD';
        localStorage.setItem('verity.explorer.deployment', JSON.stringify(d));
      });
      await openSettings();
      expect(await page.textContent('#deployment-other')).toContain('serves another deployment');
      const other = await verifyOnPage(bundle);
      expect(other.verdict).not.toBe('valid');
    } finally {
      await page.evaluate(() => localStorage.removeItem('verity.explorer.deployment'));
    }
  });

  it('a valid bundle: every row green (or grey where there is nothing to check), the verdict valid', async () => {
    const { verdict, rows } = await verifyOnPage(bundle);
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
    await shot('verify');
    if (SHOTS !== undefined) {
      // Readable on a phone: the rows stack, nothing scrolls sideways.
      await page.setViewportSize({ width: 390, height: 800 });
      await shot('verify-phone');
      await page.setViewportSize({ width: 900, height: 700 });
    }
  });

  const tampered: [string, () => unknown, string, string][] = [
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
    ['a node not in the registry', () => lonerBundle, 'Registry entry', 'RECEIPT_NODE_UNREGISTERED'],
  ];
  for (const [what, make, check, code] of tampered) {
    it(`${what}: the ${check} row is red with ${code}`, async () => {
      const { verdict, rows } = await verifyOnPage(make());
      expect(verdict).toBe(code);
      expect(rows.find((r) => r.status === 'fail')).toEqual({ check, status: 'fail', code });
      if (code === 'RECEIPT_OUTPUT_DIGEST_MISMATCH') await shot('verify-tampered');
    });
  }

  describe('a zk bundle (the SDK fixture, its node pinned by hand, its key audited), on a node without a chain', () => {
    const fx = () =>
      JSON.parse(readFileSync(ZK_FIXTURE, 'utf8')) as {
        trust: { nodes: unknown[] };
        genuine: { bundle: { zk: { publicSignals: string[] } }; audit: unknown };
      };
    const options = () => ({ url: loner.url, pinned: fx().trust.nodes, audits: [fx().genuine.audit] });

    it('every row green, the Groth16 proof checked in the page', async () => {
      const { verdict, rows } = await verifyOnPage(fx().genuine.bundle, options());
      expect(verdict).toBe('valid');
      expect(rows.find((r) => r.check === 'zk proof')).toEqual({ check: 'zk proof', status: 'pass', code: null });
      await shot('verify-zk');
    });

    it('a public input signal changed: the zk proof row is red with ZK_PUBLIC_INPUT_MISMATCH', async () => {
      const b = fx().genuine.bundle;
      const signals = b.zk.publicSignals;
      signals[signals.length - 1] = String(BigInt(signals[signals.length - 1] as string) + 1n);
      const { verdict, rows } = await verifyOnPage(b, options());
      expect(verdict).toBe('ZK_PUBLIC_INPUT_MISMATCH');
      expect(rows.find((r) => r.status === 'fail')).toEqual({
        check: 'zk proof',
        status: 'fail',
        code: 'ZK_PUBLIC_INPUT_MISMATCH',
      });
    });
  });

  it('a chat answer as an OpenAI client got it: receipt and message green, the input grey; another message red', async () => {
    const r = await fetch(`${node.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'tiny-chat@1.0.0',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 8,
        seed: 3,
      }),
    });
    const completion = (await r.json()) as { choices: { message: { content: string } }[] };
    const valid = await verifyOnPage(completion);
    expect(valid.verdict).toBe('valid');
    const status = Object.fromEntries(valid.rows.map((row) => [row.check, row.status]));
    expect(status).toMatchObject({ 'Output digest': 'pass', 'Input digest': 'skip', 'Inclusion proof': 'pass' });
    const edited = structuredClone(completion);
    (edited.choices[0] as { message: { content: string } }).message.content += '!';
    const { verdict, rows } = await verifyOnPage(edited);
    expect(verdict).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');
    expect(rows.find((row) => row.status === 'fail')?.check).toBe('Output digest');
  });

  it('Log past one tile: the inclusion proof of the newest entry is built from two tile levels', async () => {
    // 300 records: leaf tile 0 full, leaf tile 1 partial, and a level-1 tile over them. Twenty
    // at a time: the node logs them in batches (one at a time took 30 s on a busy machine).
    for (let i = 0; i < 300; i += 20) {
      const statuses = await Promise.all(
        Array.from({ length: 20 }, async () => {
          const r = await fetch(`${node.url}/v1/infer`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'iris@1.0.0', input }),
          });
          await r.arrayBuffer();
          return r.status;
        }),
      );
      expect(statuses.every((s) => s === 200)).toBe(true);
    }
    await open(`${node.url}/#/log`);
    expect(await rowsOf('#proof-checks', 3)).toEqual(['Leaf hash: pass', 'Tiles root: pass', 'Inclusion proof: pass']);
    expect(Number(await page.$eval('[data-leaf]', (e) => e.getAttribute('data-leaf')))).toBeGreaterThan(256);
  }, 180_000);

  describe('a witness policy (the protocol fixtures, their node pinned by hand)', () => {
    const fixture = (name: string) =>
      JSON.parse(readFileSync(join(RECEIPT_FIXTURES, `${name}.json`), 'utf8')) as {
        bundle: unknown;
        trust: { nodes: unknown[]; witnesses: { keys: string[]; threshold: number } };
      };
    for (const [name, status, code] of [
      ['valid-witnessed', 'pass', null],
      ['witness-quorum-unmet', 'fail', 'WITNESS_QUORUM_UNMET'],
      ['witness-cosignature-forged', 'fail', 'COSIGNATURE_INVALID'],
    ] as const) {
      it(`${name}: the Witnesses row is ${status}${code ? ` with ${code}` : ''}`, async () => {
        const f = fixture(name);
        const { verdict, rows } = await verifyOnPage(f.bundle, {
          url: loner.url,
          pinned: f.trust.nodes,
          witnesses: f.trust.witnesses,
        });
        expect(verdict).toBe(code ?? 'valid');
        expect(rows.find((r) => r.check === 'Witnesses')).toEqual({ check: 'Witnesses', status, code });
      });
    }
  });

  /** Clicks "Re-execute" on the page shown and returns the row it gives. */
  const reexecOnPage = () => reexec(page);

  describe('re-execution in the page (portable profile)', () => {
    it('a portable record re-executes in the page, with the WASM binary the node runs, and matches', async () => {
      expect(portableBundle.receipts[0]?.record.runtime).toMatchObject({ id: 'onnxruntime-web', profile: 'portable' });
      const { verdict } = await verifyOnPage(portableBundle);
      expect(verdict).toBe('valid');
      const t0 = Date.now();
      const row = await reexecOnPage();
      expect(row, row.message).toMatchObject({ status: 'pass', code: null });
      const ms = /(\d+) ms\)/.exec(row.message)?.[1];
      // onnxruntime-web loaded on demand: the plain SIMD binary (not JSEP, JSPI or Asyncify), gzipped.
      const wasm = await page.evaluate(() =>
        (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
          .filter((e) => e.name.endsWith('.wasm'))
          .map((e) => ({ name: new URL(e.name).pathname.split('/').pop() as string, bytes: e.transferSize })),
      );
      console.log(
        `re-execution in the page (digits CNN, cold): ${Date.now() - t0} ms from the click to the row, ${ms} ms session + run; WASM ${wasm[0]?.bytes} bytes over the wire`,
      );
      expect(wasm).toHaveLength(1);
      expect(wasm[0]?.name).toMatch(/^ort-wasm-simd-threaded-[\w-]+\.wasm$/);
      expect(wasm[0]?.bytes).toBeLessThan(5_000_000);
      await shot('verify-reexec');
    });

    it('a node that signed a wrong output: every check green, the re-execution red', async () => {
      const { verdict } = await verifyOnPage(liarBundle, { url: liar.url });
      expect(verdict).toBe('valid');
      const row = await reexecOnPage();
      expect(row, row.message).toMatchObject({ status: 'fail', code: 'RECEIPT_OUTPUT_DIGEST_MISMATCH' });
      // The verdict above follows: the record is refuted.
      expect(await page.getAttribute('[data-verdict]', 'data-verdict')).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');
      await shot('verify-reexec-liar');
    });

    it('a model of more than one block: its CAR read in the page, every block checked, and a match', async () => {
      const { verdict } = await verifyOnPage(wideBundle, { url: loner.url });
      expect(verdict).toBe('valid');
      const row = await reexecOnPage();
      expect(row, row.message).toMatchObject({ status: 'pass', code: null });
      console.log(`re-execution in the page (1.8 MB model, fetched as a CAR): ${row.message}`);
    });

    it('Receipt: an audited portable record re-executes on the payload the node keeps public', async () => {
      await open(`${node.url}/#/receipt/${auditedPortableId}`);
      const verdict = await page.waitForSelector('[data-verdict]', { timeout: 30_000 });
      expect(await verdict.getAttribute('data-verdict')).toBe('valid');
      const row = await reexecOnPage();
      expect(row, row.message).toMatchObject({ status: 'pass', code: null });
    });

    it('Receipt: a signed portable record has no public input: the row is grey, pointing to the bundle', async () => {
      await open(`${node.url}/#/receipt/${portableBundle.receipts[0]?.record.requestId}`);
      const row = await page.waitForSelector('#reexec .row', { timeout: 30_000 });
      expect(await row.getAttribute('data-status')).toBe('skip');
      expect(await row.textContent()).toContain('re-execute from the bundle on the Verify page');
    });

    it('a native record: the row is grey, and says where to re-execute it', async () => {
      await verifyOnPage(bundle);
      const row = await page.waitForSelector('#reexec .row');
      expect(await row.getAttribute('data-status')).toBe('skip');
      expect(await row.textContent()).toContain('native profile: re-execute on a node with the same hardware');
      expect(await page.$('#reexec-run')).toBeNull();
    });
  });

  it('text that is not JSON is one red row', async () => {
    const { verdict } = await verifyOnPage('{ not json');
    expect(verdict).toBe('JSON_INVALID');
  });
});
