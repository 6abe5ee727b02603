import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config.js';
import { startNode, type VerityNode } from '../node.js';

// The explorer's files as a node serves them (a real node on a real socket, real files). The
// pages themselves are tested in Chromium (packages/explorer/src/explorer.test.ts).
const nodes: VerityNode[] = [];
let withSite: VerityNode;
let withoutSite: VerityNode;

async function start(explorerDir: string): Promise<VerityNode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'verity-explorer-routes-'));
  const node = await startNode(
    loadConfig({ overrides: { dataDir, port: 0, logLevel: 'silent', explorer: { dir: explorerDir } } }),
  );
  nodes.push(node);
  return node;
}

beforeAll(async () => {
  const site = await mkdtemp(join(tmpdir(), 'verity-explorer-site-'));
  await mkdir(join(site, 'assets'));
  await writeFile(join(site, 'index.html'), '<!doctype html><title>x</title>');
  await writeFile(join(site, 'assets', 'main-AbC123.js'), 'export {};');
  await writeFile(join(site, 'assets', 'secret'), 'no type: never served');
  await writeFile(join(site, 'outside.js'), 'not under assets');
  withSite = await start(site);
  withoutSite = await start(join(site, 'no-such-folder'));
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
});

describe('the explorer at /', () => {
  it('serves index.html at / (never cached stale) and hashed assets forever', async () => {
    const page = await fetch(`${withSite.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('cache-control')).toBe('no-cache');
    expect(await page.text()).toContain('<title>x</title>');
    const js = await fetch(`${withSite.url}/assets/main-AbC123.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(js.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('sends text assets gzipped to a browser that takes gzip, the same bytes once inflated', async () => {
    const { gunzipSync } = await import('node:zlib');
    const { request } = await import('node:http');
    const raw = await new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
      request(`${withSite.url}/assets/main-AbC123.js`, { headers: { 'accept-encoding': 'gzip, br' } }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(parts) }));
      })
        .on('error', reject)
        .end();
    });
    expect(raw.headers['content-encoding']).toBe('gzip');
    expect(raw.headers.vary).toBe('accept-encoding');
    expect(gunzipSync(raw.body).toString()).toBe('export {};');
  });

  it('serves nothing outside assets/, nor a file of unknown type', async () => {
    for (const path of [
      '/assets/secret',
      '/assets/..%2Foutside.js',
      '/assets/%2e%2e%2findex.html',
      '/assets/.hidden.js',
    ]) {
      const r = await fetch(`${withSite.url}${path}`);
      expect(r.status, path).toBe(404);
      expect(r.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    }
  });

  it('a node without the built explorer answers / with a 404 that says how to build it, and keeps running', async () => {
    const r = await fetch(`${withoutSite.url}/`);
    expect(r.status).toBe(404);
    expect(await r.text()).toMatch(/npm run build/);
    expect((await fetch(`${withoutSite.url}/assets/main-AbC123.js`)).status).toBe(404);
    const node = await fetch(`${withoutSite.url}/v1/node`);
    expect(node.status).toBe(200);
    expect(((await node.json()) as { address: string }).address).toBe(withoutSite.context.keys.address);
  });

  it('tells the pages about the chain: nothing without one', async () => {
    const r = await fetch(`${withSite.url}/explorer.json`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({});
  });

  it('lets any page read the public routes (GET), and opens no write to other origins', async () => {
    const r = await fetch(`${withSite.url}/healthz`);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const preflight = await fetch(`${withSite.url}/v1/models`, {
      method: 'OPTIONS',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('is configured by explorer.dir and explorer.rpcUrl (VERITY_EXPLORER_*), an RPC URL only over http(s)', () => {
    const env = { VERITY_EXPLORER_DIR: '/srv/explorer', VERITY_EXPLORER_RPC_URL: 'https://rpc.example' };
    expect(loadConfig({ env }).explorer).toEqual({ dir: '/srv/explorer', rpcUrl: 'https://rpc.example' });
    expect(() => loadConfig({ overrides: { explorer: { rpcUrl: 'javascript:alert(1)' } } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => loadConfig({ overrides: { explorer: { dir: '' } } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
