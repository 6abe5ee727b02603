/** JSON over HTTP with Verity's error bodies turned back into VerityErrors. */
import { ERROR_CODES, type ErrorCode, isVerityError, VerityError } from '@verity/protocol';
import type { ClientBase } from './client.js';

const KNOWN = new Set<string>(ERROR_CODES);

/** Sends a request; a non-2xx answer throws the node's error with its code. */
export async function request(
  client: ClientBase,
  method: string,
  path: string,
  init: {
    json?: unknown;
    body?: BodyInit;
    headers?: Record<string, string>;
    signal?: AbortSignal;
    auth?: boolean;
  } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  let body = init.body;
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  if (init.auth) {
    if (client.apiKey === undefined)
      throw new VerityError('UNAUTHORIZED', 'this operation needs an API key (apiKey option)');
    headers.authorization = `Bearer ${client.apiKey}`;
  }
  let response: Response | undefined;
  // Failover (docs/design.md §6): a node that cannot be reached, or says it is overloaded or shutting
  // down, is passed over for the next URL; the caller sees an error only when none is left.
  // Streamed bodies cannot be sent twice, so they go to the first node only.
  // A client without a URL asks the network for its best nodes (the registry's, by latency).
  const first =
    client.url === '' && client.network ? (await client.network.candidates()).map((n) => n.url) : [client.url];
  if (first.length === 0)
    throw new VerityError('NO_NODE_AVAILABLE', 'no registered, active node to ask', { details: { status: 503 } });
  const urls = body instanceof ReadableStream ? first.slice(0, 1) : [...first, ...client.fallbackUrls];
  for (const [i, url] of urls.entries()) {
    const last = i === urls.length - 1;
    try {
      response = await client.fetch(`${url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(init.signal === undefined ? {} : { signal: init.signal }),
        // Streamed request bodies (uploads) need half-duplex in Node's fetch.
        ...(body instanceof ReadableStream ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (cause) {
      // The client's own refusal (its payer would not pay: PAYMENT_OVER_BUDGET) is no network failure.
      if (isVerityError(cause)) throw cause;
      if (last || init.signal?.aborted) throw new VerityError('NETWORK_ERROR', `cannot reach ${url}`, { cause });
      continue;
    }
    if (response.status !== 503 || last) break;
  }
  response = response as Response;
  if (response.ok) return response;
  let payload: unknown;
  try {
    payload = await response.json();
  } catch {
    payload = undefined;
  }
  const e = (payload as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (e && typeof e.code === 'string' && KNOWN.has(e.code)) {
    throw new VerityError(e.code as ErrorCode, String(e.message ?? ''), {
      details: { status: response.status, ...(typeof e.details === 'object' && e.details !== null ? e.details : {}) },
    });
  }
  throw new VerityError('RESPONSE_INVALID', `unexpected HTTP ${response.status} from ${path}`, {
    details: { status: response.status },
  });
}

/** GET (or other method) and parse JSON. */
export async function requestJson<T>(
  client: ClientBase,
  method: string,
  path: string,
  init: Parameters<typeof request>[3] = {},
): Promise<T> {
  const response = await request(client, method, path, init);
  try {
    return (await response.json()) as T;
  } catch (cause) {
    throw new VerityError('RESPONSE_INVALID', `the node sent invalid JSON for ${path}`, { cause });
  }
}
