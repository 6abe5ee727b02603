/**
 * `verity gateway`: the SDK's gateway (`createGateway`: routing, failover, verification) served
 * over node:http on a local port. This file only adapts node:http to the gateway's
 * `Request → Response` and parses flags; `verity up` starts one the same way.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createVerifyCache } from '@verity/protocol';
import { type ChainOptions, createClient, createGateway, type Gateway, networkChain } from '@verity/sdk';
import { dataDirOf } from '../data-dir.js';
import { createKeepAliveFetch } from '../keep-alive-fetch.js';
import { print } from '../target.js';
import { parseFlags, UsageError } from '../usage.js';
import { chainOf } from './verify.js';

const FLAGS = {
  'data-dir': { type: 'string' },
  rpc: { type: 'string' },
  deployment: { type: 'string' },
  network: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** The default port of `verity gateway` (and of the one `verity up` starts next to port 8700). */
export const GATEWAY_PORT = 8780;

/** The largest request body the gateway takes (a node's default limit). */
const MAX_BODY = 8 * 1024 * 1024;

/** A running gateway. */
export interface GatewayServer {
  readonly url: string;
  readonly gateway: Gateway;
  close(): Promise<void>;
}

/**
 * Serves `gateway` on `res`'s socket. Bodies are read whole (requests are JSON or binary frames,
 * bounded by `MAX_BODY`) and handed over as bytes, and whole answers written in one go (no web
 * `Request`/`Response` on this path: they cost more per call than the gateway's own work); only
 * event streams are passed on as they come.
 */
async function serve(gateway: Gateway, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = req.method ?? 'GET';
  let body: Uint8Array | undefined;
  if (method !== 'GET' && method !== 'HEAD') {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const part of req as AsyncIterable<Buffer>) {
      size += part.length;
      if (size > MAX_BODY) {
        res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
        res.end(
          JSON.stringify({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'the body is too large', details: {} } }),
        );
        return;
      }
      parts.push(part);
    }
    body = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }
  const response = await gateway.handle({
    method,
    path: req.url ?? '/',
    header: (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    },
    ...(body === undefined ? {} : { body }),
  });
  if (response.body instanceof Uint8Array) {
    res.writeHead(response.status, { ...response.headers, 'content-length': String(response.body.length) });
    res.end(response.body);
    return;
  }
  res.writeHead(response.status, response.headers);
  const reader = response.body.getReader();
  // The caller hung up: stop reading, which stops the node's stream too.
  res.once('close', () => void reader.cancel().catch(() => undefined));
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    res.write(value);
  }
  res.end();
}

/**
 * Starts a gateway over the chain's registered nodes on `host:port` (port 0: any free port; a
 * taken port with `fallbackPort`: any free one instead).
 */
export async function startGateway(
  chain: ChainOptions,
  options: { host?: string; port?: number; fallbackPort?: boolean; log?: (e: Record<string, unknown>) => void } = {},
): Promise<GatewayServer> {
  // Calls to nodes over keep-alive node:http connections (the global fetch costs more per call).
  const http = createKeepAliveFetch();
  // Checkpoint signatures checked by node:crypto (synchronous OpenSSL: less per check than WebCrypto).
  const { nodeEd25519 } = await import('@verity/node/fast-crypto');
  const verifyCache = createVerifyCache(4096, { ed25519: nodeEd25519 });
  const client = createClient({ chain, fetch: http.fetch, verifyCache });
  const log =
    options.log ?? ((e: Record<string, unknown>) => process.stderr.write(`${JSON.stringify({ gateway: e })}\n`));
  const gateway = createGateway(client.base, { log });
  const host = options.host ?? '127.0.0.1';
  let base = '';
  const server: Server = createServer((req, res) => {
    serve(gateway, req, res).catch((e: unknown) => {
      log({ event: 'internal_error', message: e instanceof Error ? e.message : String(e) });
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end();
    });
  });
  server.keepAliveTimeout = 5_000;
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  try {
    await listen(options.port ?? GATEWAY_PORT);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || options.fallbackPort !== true) throw e;
    await listen(0);
  }
  const { port } = server.address() as AddressInfo;
  base = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    url: base,
    gateway,
    close: () =>
      new Promise<void>((resolve) => {
        client.close();
        http.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** `verity gateway`: one local endpoint for the network of the data dir's chain (or --network NAME, or --rpc/--deployment). */
export async function runGateway(args: string[]): Promise<number> {
  const { values } = parseFlags({ args, options: FLAGS, allowPositionals: false });
  if (values.port !== undefined && !/^\d+$/.test(values.port)) throw new UsageError('--port must be a number');
  if (values.network !== undefined && (values.rpc !== undefined || values.deployment !== undefined)) {
    throw new UsageError('give --network NAME or --rpc URL --deployment FILE, not both');
  }
  // A network name is the SDK's (`createClient({ network: 'local' })`): the same files, one reader.
  const chain =
    values.network === undefined
      ? await chainOf(values, true)
      : (({ rpcUrl, deployment }) => ({ rpcUrl, deployment }))(
          networkChain(values.network, { dataDir: dataDirOf(values) }),
        );
  if (chain === undefined) {
    throw new UsageError(
      'no chain: run `verity up` in the data dir first, or give --network local, or --rpc URL --deployment FILE',
    );
  }
  const server = await startGateway(chain, {
    ...(values.host === undefined ? {} : { host: values.host }),
    ...(values.port === undefined ? {} : { port: Number(values.port) }),
  });
  print(
    values.json === true,
    { url: server.url },
    `Verity gateway at ${server.url}\n  OpenAI base URL ${server.url}/v1; GET ${server.url}/v1/network lists the nodes`,
  );
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return new Promise(() => {});
}
