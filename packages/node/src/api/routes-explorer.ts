/**
 * The explorer (packages/explorer): its built pages at `/` and `/assets/*`, and `/explorer.json`,
 * what the pages need to read the chain in the visitor's browser. The pages are static files;
 * everything they show they read from the node's public routes and the chain, and verify in the
 * browser. A node whose explorer was not built answers `/` with a 404 that says how to build it.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { deploymentToJson } from '@verity/contracts';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { NodeContext } from '../context.js';

/** Where `npm run build` puts the explorer, from this file in `src/api/` or `dist/api/`. */
export const DEFAULT_EXPLORER_DIR = fileURLToPath(new URL('../../../explorer/dist/site/', import.meta.url));

const TYPES: Record<string, string> = {
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
  json: 'application/json; charset=utf-8',
  wasm: 'application/wasm',
  map: 'application/json; charset=utf-8',
};

// Built assets are named by their content hash (Vite), so one name is one content forever.
const ASSET = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
/**
 * Text assets and WebAssembly go gzipped to browsers that take it (a third, a quarter of the
 * bytes: onnxruntime-web's binary, fetched when a page re-executes a record, is 14 MB, 3.7 MB
 * gzipped), compressed once each, off the event loop.
 */
const COMPRESSIBLE = new Set(['js', 'css', 'svg', 'json', 'map', 'wasm']);
const gzipAsync = promisify(gzip);
const GZIP_CACHE_ENTRIES = 256;

async function readOrUndefined(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'EISDIR') {
      return undefined;
    }
    throw e;
  }
}

function notBuilt(reply: FastifyReply, what: string) {
  return reply
    .status(404)
    .type('text/plain; charset=utf-8')
    .header('cache-control', 'no-cache')
    .send(`${what} not found: the explorer is not built here (run \`npm run build\`). The JSON API is at /v1/.\n`);
}

/** `GET /`, `GET /assets/:file`, `GET /explorer.json`. */
export function registerExplorerRoutes(app: FastifyInstance, ctx: NodeContext): void {
  const dir = resolve(ctx.config.explorer.dir ?? DEFAULT_EXPLORER_DIR);
  const gzipped = new Map<string, Buffer>();
  app.get('/', async (_request, reply) => {
    // Read on every request: a build made while the node runs is served without a restart.
    const html = await readOrUndefined(join(dir, 'index.html'));
    if (html === undefined) return notBuilt(reply, 'the explorer');
    return reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "frame-ancestors 'none'")
      .send(html);
  });
  app.get('/assets/:file', async (request, reply) => {
    const file = (request.params as { file: string }).file;
    const ext = file.slice(file.lastIndexOf('.') + 1);
    const type = TYPES[ext];
    const bytes = ASSET.test(file) && type !== undefined ? await readOrUndefined(join(dir, 'assets', file)) : undefined;
    if (bytes === undefined) return notBuilt(reply, `/assets/${file}`);
    reply
      .type(type as string)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .header('x-content-type-options', 'nosniff');
    if (!COMPRESSIBLE.has(ext)) return reply.send(bytes);
    reply.header('vary', 'accept-encoding');
    if (!/\bgzip\b/.test(String(request.headers['accept-encoding'] ?? ''))) return reply.send(bytes);
    let gz = gzipped.get(file);
    if (gz === undefined) {
      gz = await gzipAsync(bytes, { level: 9 });
      if (gzipped.size >= GZIP_CACHE_ENTRIES) gzipped.delete(gzipped.keys().next().value as string);
      gzipped.set(file, gz);
    }
    return reply.header('content-encoding', 'gzip').send(gz);
  });
  // The chain as the pages read it: the deployment this node runs on and a JSON-RPC URL meant
  // for browsers (`explorer.rpcUrl`; never the node's own, which may hold a provider's key).
  app.get('/explorer.json', async (_request, reply) => {
    reply.header('cache-control', 'no-cache');
    return {
      ...(ctx.config.explorer.rpcUrl === undefined ? {} : { rpcUrl: ctx.config.explorer.rpcUrl }),
      ...(ctx.chain === undefined ? {} : { deployment: deploymentToJson(ctx.chain.deployment) }),
    };
  });
}
