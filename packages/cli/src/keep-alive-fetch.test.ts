/**
 * The gateway's keep-alive fetch against a real node:http server on loopback: answers read whole
 * with their status and headers, connections reused, event streams passed on as they come, a
 * reused connection the server drops before answering sent once more on a fresh one, an abort
 * honoured, and what it does not handle (a `Request`) left to the global fetch.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeepAliveFetch } from './keep-alive-fetch.js';

let server: Server;
let url: string;
const connections = new Set<Socket>();
/** Requests seen per connection. */
const seen = new WeakMap<Socket, number>();
/** When set, the next request that arrives on a reused connection is dropped unanswered. */
let dropReused = false;
let releaseStream: (() => void) | undefined;

async function bodyOf(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts).toString();
}

beforeAll(async () => {
  server = createServer(async (req, res) => {
    const socket = req.socket;
    const n = (seen.get(socket) ?? 0) + 1;
    seen.set(socket, n);
    if (dropReused && n > 1) {
      dropReused = false;
      socket.destroy(); // as a server closing an idle keep-alive connection just as the request arrives
      return;
    }
    if (req.url === '/stream') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: first\n\n');
      await new Promise<void>((r) => {
        releaseStream = r;
      });
      res.end('data: [DONE]\n\n');
      return;
    }
    if (req.url === '/slow') return; // never answers
    const body = await bodyOf(req);
    res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'application/json', 'x-echo': 'yes' });
    res.end(JSON.stringify({ method: req.method, body, connection: n }));
  });
  server.on('connection', (s) => {
    connections.add(s);
    s.on('close', () => connections.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('createKeepAliveFetch', () => {
  it('reads answers whole with their status and headers, on one reused connection', async () => {
    const http = createKeepAliveFetch();
    try {
      const a = await http.fetch(`${url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"x":1}',
      });
      expect(a.status).toBe(200);
      expect(a.headers.get('x-echo')).toBe('yes');
      expect(await a.json()).toEqual({ method: 'POST', body: '{"x":1}', connection: 1 });
      const b = await http.fetch(`${url}/echo`, { method: 'POST', body: new Uint8Array([104, 105]) });
      expect(await b.json()).toEqual({ method: 'POST', body: 'hi', connection: 2 });
      const missing = await http.fetch(`${url}/missing`);
      expect(missing.ok).toBe(false);
      expect(missing.status).toBe(404);
    } finally {
      http.close();
    }
  });

  it('passes an event stream on as it comes', async () => {
    const http = createKeepAliveFetch();
    try {
      const r = await http.fetch(`${url}/stream`);
      const reader = (r.body as ReadableStream<Uint8Array>).getReader();
      // The first event arrives while the server still holds the stream open.
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe('data: first\n\n');
      releaseStream?.();
      let rest = '';
      for (let c = await reader.read(); !c.done; c = await reader.read()) rest += new TextDecoder().decode(c.value);
      expect(rest).toBe('data: [DONE]\n\n');
    } finally {
      http.close();
    }
  });

  it('sends a call once more on a fresh connection when a reused one is dropped before any answer', async () => {
    const http = createKeepAliveFetch();
    try {
      expect((await (await http.fetch(`${url}/echo`)).json()) as unknown).toMatchObject({ connection: 1 });
      dropReused = true;
      const again = await http.fetch(`${url}/echo`, { method: 'POST', body: 'retry' });
      expect(await again.json()).toEqual({ method: 'POST', body: 'retry', connection: 1 });
      expect(dropReused).toBe(false); // the drop happened
    } finally {
      http.close();
    }
  });

  it('honours an abort, and leaves a Request to the global fetch', async () => {
    const http = createKeepAliveFetch();
    try {
      const controller = new AbortController();
      const pending = http.fetch(`${url}/slow`, { signal: controller.signal });
      controller.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      const viaGlobal = await http.fetch(new Request(`${url}/echo`, { method: 'POST', body: 'req' }));
      expect(await viaGlobal.json()).toMatchObject({ body: 'req' });
    } finally {
      http.close();
    }
  });
});
