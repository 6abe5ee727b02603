/**
 * The explorer's speed in Debian's Chromium (Playwright; `$CHROMIUM_PATH` or /usr/bin/chromium, as
 * the tests use), measured in the same run as its Node baseline:
 *
 *   npm run bench:explorer      (after `npm run build`: the explorer is served from its build)
 *
 * - receipts verified per second in the browser (`@verity/protocol` bundled by Vite, the page
 *   verifying one receipt of a 2^16-leaf log, 16 hashes: checkpoint cached, and its signature
 *   checked every time) against the same calls in Node. Target: ≥ 1,000/s in the browser.
 * - the explorer's first load from a real node (cold cache, gzip): bytes over the wire and ms
 *   until the Verify page is drawn, and until a bundle's rows are.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, startNode } from '@verity/node';
import {
  createEd25519Signer,
  createMemoryTree,
  createVerifyCache,
  generateNoteKey,
  hashLeaf,
  type InferenceRecord,
  type Receipt,
  recordLeafHash,
  signCheckpoint,
  type Trust,
  toHex,
  verifyReceipt,
} from '@verity/protocol';
import { opsPerSecond } from './measure.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// From bench/dist/: the explorer's build.
const SITE = fileURLToPath(new URL('../../packages/explorer/dist/site/index.html', import.meta.url));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const seed = new Uint8Array(32).fill(2);
const origin = 'bench.verity/log';
const node = '0x9858EfFD232B4033E47d90003D41EC34EcaEda94';
const record: InferenceRecord = {
  version: 1,
  kind: 'onnx',
  mode: 'signed',
  model: 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea',
  runtime: { id: 'onnxruntime-node', version: '1.30.0', profile: 'native' },
  inputDigest: 'aa'.repeat(32),
  outputDigest: 'bb'.repeat(32),
  paramsDigest: 'cc'.repeat(32),
  requestId: '01JDQ8Z4M6X3W0V9T8S7R6Q5P4',
  timestamp: 1_764_000_000_000,
  node,
};
const N = 2 ** 16;
const INDEX = 40_000;
const tree = createMemoryTree();
const filler = hashLeaf(new Uint8Array([1]));
for (let i = 0; i < N; i++) tree.append(i === INDEX ? recordLeafHash(record) : filler);
const checkpoint = signCheckpoint(
  { origin, size: N, rootHash: tree.root(), extensions: [] },
  createEd25519Signer(origin, seed),
);
const receipt: Receipt = {
  record,
  leafIndex: INDEX,
  inclusionProof: tree.inclusionProof(INDEX).map(toHex),
  checkpoint,
};
const trust: Trust = { nodes: [{ address: node, logKey: generateNoteKey(origin, seed).verifierKey }] };

function nodeRates(): { cached: number; uncached: number } {
  const cache = createVerifyCache();
  const check = (r: ReturnType<typeof verifyReceipt>) => {
    if (!r.ok) throw new Error(`bench receipt failed: ${r.code}`);
  };
  return {
    cached: opsPerSecond(() => check(verifyReceipt(receipt, trust, { cache }))),
    uncached: opsPerSecond(() => check(verifyReceipt(receipt, trust)), 2),
  };
}

async function main(): Promise<void> {
  console.log(`Verity explorer bench — node ${process.version}, ${new Date().toISOString()}`);
  if (!existsSync(CHROMIUM)) {
    console.log(`no Chromium at ${CHROMIUM}: nothing to measure (apt-get install chromium)`);
    return;
  }
  const inNode = nodeRates();
  // The protocol package as a browser gets it: bundled by Vite (as the explorer is), one global.
  const { build } = await import('vite');
  const built = await build({
    configFile: false,
    logLevel: 'silent',
    build: {
      write: false,
      minify: true,
      lib: { entry: fileURLToPath(import.meta.resolve('@verity/protocol')), formats: ['iife'], name: 'VerityProtocol' },
    },
  });
  const bundled = (Array.isArray(built) ? built[0] : built) as { output: { code?: string }[] };
  const code = bundled.output[0]?.code as string;
  const { chromium } = await import('playwright');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-bench-explorer-'));
  const verity = await startNode(loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent', fsync: false } }));
  try {
    const page = await browser.newPage();
    await page.addScriptTag({ content: code });
    const inBrowser = await page.evaluate(
      ({ receipt, trust }) => {
        // biome-ignore lint/suspicious/noExplicitAny: the bundle's global, typed by the package in Node
        const p = (globalThis as any).VerityProtocol;
        const rate = (fn: () => void, seconds: number) => {
          for (let i = 0; i < 50; i++) fn();
          let ops = 0;
          const start = performance.now();
          while (performance.now() - start < seconds * 1000) {
            for (let i = 0; i < 20; i++) fn();
            ops += 20;
          }
          return (ops * 1000) / (performance.now() - start);
        };
        const check = (r: { ok: boolean; code?: string }) => {
          if (!r.ok) throw new Error(`bench receipt failed: ${r.code}`);
        };
        const cache = p.createVerifyCache();
        return {
          cached: rate(() => check(p.verifyReceipt(receipt, trust, { cache })), 1),
          uncached: rate(() => check(p.verifyReceipt(receipt, trust)), 2),
        };
      },
      { receipt, trust },
    );
    console.log('| receipts verified per second | Chromium | Node | Chromium / Node |');
    console.log('|---|---:|---:|---:|');
    for (const k of ['cached', 'uncached'] as const) {
      const label =
        k === 'cached' ? 'checkpoint cached (one signature per checkpoint)' : 'signature checked every time';
      console.log(`| ${label} | ${fmt(inBrowser[k])} | ${fmt(inNode[k])} | ${(inBrowser[k] / inNode[k]).toFixed(2)} |`);
    }
    console.log(
      `\nbrowser target ≥ 1,000 receipts/s: ${inBrowser.cached >= 1000 ? 'met' : 'NOT met'} (${fmt(inBrowser.cached)}/s cached, ${fmt(inBrowser.uncached)}/s with a signature each)`,
    );
    if (!existsSync(SITE)) {
      console.log(`\nno explorer build at ${SITE}: run \`npm run build\` for its first load`);
      return;
    }
    // First load: a fresh context (cold cache) each time, the median of five.
    const loads: { bytes: number; drawn: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const context = await browser.newContext();
      const fresh = await context.newPage();
      await fresh.goto(`${verity.url}/#/verify`);
      await fresh.waitForSelector('#verify');
      loads.push(
        await fresh.evaluate(() => {
          // In the page (DOM types are not this package's): the document and every file it loaded.
          const perf = performance as unknown as { getEntriesByType(type: string): { transferSize: number }[] };
          const entries = [...perf.getEntriesByType('navigation'), ...perf.getEntriesByType('resource')];
          return { bytes: entries.reduce((n, e) => n + e.transferSize, 0), drawn: performance.now() };
        }),
      );
      await context.close();
    }
    loads.sort((a, b) => a.drawn - b.drawn);
    const median = loads[2] as { bytes: number; drawn: number };
    console.log('\n| explorer first load (cold cache, gzip, the Verify page) | value |');
    console.log('|---|---:|');
    console.log(`| bytes over the wire | ${fmt(median.bytes)} |`);
    console.log(`| ms to the page drawn (median of 5; fastest ${fmt(loads[0]?.drawn ?? 0)}) | ${fmt(median.drawn)} |`);
  } finally {
    await browser.close();
    await verity.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
