/**
 * A `fetch` for the gateway's calls to nodes, over node:http(s) with keep-alive agents: each call
 * is one write on a warm connection (headers and body together) and a whole answer is read into
 * one buffer. Node's built-in fetch (undici's web streams, spec bookkeeping) cost the gateway
 * more per call than routing and verification together (bench/gateway.ts, its profile).
 *
 * Only what the SDK sends takes this path: a URL string, a plain header object, a body of bytes
 * or text. Anything else (a `Request`, a streamed upload, `Headers`) goes to the global fetch.
 * Event streams are passed on as they come (`text/event-stream`); other answers are buffered.
 * A call on a reused connection that the node closed just then (`ECONNRESET` before any answer,
 * the race every keep-alive client has) is sent once more on a fresh one, as Node's docs advise.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';

/** A fetch with keep-alive connections, and a way to close them. */
export interface KeepAliveFetch {
  readonly fetch: typeof fetch;
  /** Closes the idle connections (calls in flight finish). */
  close(): void;
}

function plainHeaders(headers: RequestInit['headers']): Record<string, string> | undefined {
  if (headers === undefined) return {};
  if (headers instanceof Headers || Array.isArray(headers)) return undefined;
  return headers as Record<string, string>;
}

function bodyBytes(body: RequestInit['body']): Uint8Array | undefined | false {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof Uint8Array) return body;
  return false;
}

function responseHeaders(res: IncomingMessage): [string, string][] {
  const out: [string, string][] = [];
  for (const [name, value] of Object.entries(res.headers)) {
    if (value === undefined) continue;
    out.push([name, Array.isArray(value) ? value.join(', ') : value]);
  }
  return out;
}

/**
 * A keep-alive fetch (see the module comment).
 *
 * @example
 * ```ts
 * const http = createKeepAliveFetch();
 * const client = createClient({ chain, fetch: http.fetch });
 * // …
 * http.close();
 * ```
 */
export function createKeepAliveFetch(): KeepAliveFetch {
  // LIFO: the warmest connection first, so that idle ones time out instead of all staying half-used.
  const agents = {
    'http:': new HttpAgent({ keepAlive: true, scheduling: 'lifo' }),
    'https:': new HttpsAgent({ keepAlive: true, scheduling: 'lifo' }),
  };

  function send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Uint8Array | undefined,
    signal: AbortSignal | undefined,
    retry: boolean,
  ): Promise<Response> {
    const https = url.protocol === 'https:';
    return new Promise<Response>((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(url, {
        method,
        headers: body === undefined ? headers : { ...headers, 'content-length': String(body.length) },
        agent: https ? agents['https:'] : agents['http:'],
        ...(signal === undefined ? {} : { signal }),
      });
      let answered = false;
      req.once('error', (e: NodeJS.ErrnoException) => {
        if (!answered && retry && req.reusedSocket && e.code === 'ECONNRESET' && signal?.aborted !== true) {
          send(url, method, headers, body, signal, false).then(resolve, reject);
          return;
        }
        reject(e);
      });
      req.once('response', (res) => {
        answered = true;
        const status = res.statusCode ?? 502;
        const init = { status, statusText: res.statusMessage ?? '', headers: responseHeaders(res) };
        if ((res.headers['content-type'] ?? '').includes('text/event-stream')) {
          resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, init));
          return;
        }
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.once('error', reject);
        res.once('aborted', () => reject(new Error('the answer was cut off')));
        res.once('end', () => {
          const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
          resolve(new Response(status === 204 || status === 304 ? null : new Uint8Array(bytes), init));
        });
      });
      req.end(body);
    });
  }

  const keepAliveFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const headers = plainHeaders(init.headers);
    const body = bodyBytes(init.body);
    if (input instanceof Request || headers === undefined || body === false) return fetch(input, init);
    const url = new URL(input);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return fetch(input, init);
    return send(url, init.method ?? 'GET', headers, body, init.signal ?? undefined, true);
  };

  return {
    fetch: keepAliveFetch as typeof fetch,
    close() {
      agents['http:'].destroy();
      agents['https:'].destroy();
    },
  };
}
