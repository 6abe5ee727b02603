/**
 * The one way a node calls another node (docs/design.md §6: outbound calls go only to registered
 * endpoints that pass a URL policy). Registry endpoints are strings anyone registers; without a
 * policy a quorum request or a model fetch would make the node call any URL it is told to
 * (server-side request forgery): its own admin ports, a cloud metadata service at
 * 169.254.169.254, hosts on its private network.
 *
 * The policy (`ENDPOINT_REFUSED` for each breach, before any packet leaves):
 * - `http:` or `https:` only, and no user name or password in the URL;
 * - unless the node runs in local mode (`peers.localNetwork`, as `verity up` does), the host must
 *   be a public address: loopback, private, shared (CGNAT), link-local, multicast, unspecified,
 *   documentation, benchmarking and reserved ranges are refused, in IPv4 and IPv6, IPv4 inside
 *   IPv6 included (mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`). The WHATWG
 *   URL parser first turns every IPv4 spelling (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`)
 *   into its dotted form, so each is judged as the address it is;
 * - a host name is resolved (`dns.lookup`, every address it has) and refused if any address is
 *   refused; the connection is then made to a checked address, inside the same lookup, so a
 *   name that resolves differently a moment later (DNS rebinding) cannot slip through;
 * - redirects are not followed (a peer cannot send the node on elsewhere).
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIPv4, isIPv6, type LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { isVerityError, VerityError } from '@verity/protocol';

/** What the policy depends on: local mode or not (`config.peers` has this shape). */
export interface UrlPolicy {
  /** Local mode: non-public addresses allowed (a network on one machine or one LAN). */
  readonly localNetwork: boolean;
}

/** A request to a peer: a small subset of `fetch`'s `RequestInit`. */
export interface PeerRequestInit {
  readonly method?: 'GET' | 'POST';
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  readonly signal?: AbortSignal;
}

function refusal(endpoint: string, reason: string, extra: Record<string, unknown> = {}): VerityError {
  return new VerityError('ENDPOINT_REFUSED', `refused to call ${endpoint.slice(0, 200)}: ${reason}`, {
    details: { endpoint: endpoint.slice(0, 200), reason, ...extra },
  });
}

function refuse(endpoint: string, reason: string, extra: Record<string, unknown> = {}): never {
  throw refusal(endpoint, reason, extra);
}

/** The four bytes of a dotted-quad IPv4 address (as `isIPv4` accepts it). */
function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

/** The sixteen bytes of an IPv6 address (as `isIPv6` accepts it; a zone `%…` is dropped). */
function ipv6Bytes(address: string): number[] {
  let text = address.split('%', 1)[0] as string;
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // An embedded IPv4 address in the last 32 bits (`::ffff:127.0.0.1`).
    tail = ipv4Bytes(text.slice(lastColon + 1));
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => Number.parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const words = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** Whether the IPv4 address `b` (four bytes) is a public unicast address. */
function isPublicIpv4(b: number[]): boolean {
  const [x = 0, y = 0, z = 0] = b;
  return !(
    x === 0 || // 0.0.0.0/8 "this network", unspecified
    x === 10 || // 10/8 private
    (x === 100 && y >= 64 && y < 128) || // 100.64/10 shared address space (CGNAT)
    x === 127 || // 127/8 loopback
    (x === 169 && y === 254) || // 169.254/16 link-local (cloud metadata services live here)
    (x === 172 && y >= 16 && y < 32) || // 172.16/12 private
    (x === 192 && y === 0 && z === 0) || // 192.0.0/24 IETF protocol assignments
    (x === 192 && y === 0 && z === 2) || // 192.0.2/24 documentation
    (x === 192 && y === 88 && z === 99) || // 192.88.99/24 6to4 relay anycast
    (x === 192 && y === 168) || // 192.168/16 private
    (x === 198 && (y === 18 || y === 19)) || // 198.18/15 benchmarking
    (x === 198 && y === 51 && z === 100) || // 198.51.100/24 documentation
    (x === 203 && y === 0 && z === 113) || // 203.0.113/24 documentation
    x >= 224 // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
  );
}

/** Whether the IPv6 address `b` (sixteen bytes) is a public unicast address. */
function isPublicIpv6(b: number[]): boolean {
  const zeros = (from: number, to: number) => b.slice(from, to).every((v) => v === 0);
  const word = (i: number) => ((b[2 * i] as number) << 8) | (b[2 * i + 1] as number);
  // IPv4 inside IPv6: judged as the IPv4 address it reaches.
  if (zeros(0, 10) && word(5) === 0xffff) return isPublicIpv4(b.slice(12)); // ::ffff:0:0/96 mapped
  if (word(0) === 0x64 && word(1) === 0xff9b && zeros(4, 12)) return isPublicIpv4(b.slice(12)); // 64:ff9b::/96 NAT64
  if (word(0) === 0x2002) return isPublicIpv4(b.slice(2, 6)); // 2002::/16 6to4
  if (word(0) === 0x2001 && word(1) === 0) return false; // 2001::/32 Teredo (an obfuscated IPv4 inside)
  if (word(0) === 0x2001 && word(1) === 0xdb8) return false; // 2001:db8::/32 documentation
  if (word(0) === 0x2001 && word(1) === 2 && word(2) === 0) return false; // 2001:2::/48 benchmarking
  if (word(0) === 0x2001 && (word(1) & 0xfff0) === 0x10) return false; // 2001:10::/28 ORCHID
  if (word(0) === 0x3fff && (word(1) & 0xf000) === 0) return false; // 3fff::/20 documentation
  // Global unicast is 2000::/3; everything else (::, ::1, ::/96, fc00::/7 unique local,
  // fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast, 100::/64 discard…) is not.
  return ((b[0] as number) & 0xe0) === 0x20;
}

/**
 * Whether `address` (IPv4 dotted quad or IPv6 text) is a public unicast address, one a node may
 * call outside local mode. Text that is neither is not.
 *
 * @example
 * ```ts
 * isPublicAddress('93.184.216.34'); // true
 * isPublicAddress('::ffff:169.254.169.254'); // false
 * ```
 */
export function isPublicAddress(address: string): boolean {
  if (isIPv4(address)) return isPublicIpv4(ipv4Bytes(address));
  if (isIPv6(address)) return isPublicIpv6(ipv6Bytes(address));
  return false;
}

/**
 * Parses a peer's endpoint and checks what can be checked without DNS: scheme, credentials, and
 * an address literal (or `localhost`) as host. Throws `ENDPOINT_REFUSED` with `details.reason`.
 *
 * @example
 * ```ts
 * checkEndpointUrl('https://node-7.example.org:8700', { localNetwork: false }); // URL
 * checkEndpointUrl('http://169.254.169.254/', { localNetwork: false }); // throws ENDPOINT_REFUSED
 * ```
 */
export function checkEndpointUrl(endpoint: string, policy: UrlPolicy): URL {
  if (typeof endpoint !== 'string' || endpoint.length > 2048) return refuse(String(endpoint), 'not a URL');
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return refuse(endpoint, 'not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') refuse(endpoint, 'only http and https are called');
  if (url.username !== '' || url.password !== '') refuse(endpoint, 'credentials in the URL');
  const host = hostOf(url);
  if (host === '') refuse(endpoint, 'no host');
  if (!policy.localNetwork) {
    if (host === 'localhost' || host.endsWith('.localhost')) refuse(endpoint, 'loopback host name', { host });
    if ((isIPv4(host) || isIPv6(host)) && !isPublicAddress(host)) {
      refuse(endpoint, 'not a public address (the node is not in local mode)', { address: host });
    }
  }
  return url;
}

/** The URL's host without IPv6 brackets or a trailing dot. */
function hostOf(url: URL): string {
  const h = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/**
 * A `lookup` for `net.connect` that resolves every address of the name, refuses them all if any
 * is not public, and hands the connection only checked addresses.
 */
function checkedLookup(endpoint: string): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { all: true, family: options.family ?? 0, hints: options.hints ?? 0 }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as LookupAddress[];
      const bad = list.find((a) => !isPublicAddress(a.address));
      if (list.length === 0 || bad !== undefined) {
        const error = refusal(
          endpoint,
          `${hostname} resolves to a non-public address (the node is not in local mode)`,
          {
            host: hostname,
            ...(bad === undefined ? {} : { address: bad.address }),
          },
        );
        return callback(error as unknown as NodeJS.ErrnoException, '', 0);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      const first = list[0] as LookupAddress;
      return callback(null, first.address, first.family);
    });
  };
}

const NULL_BODY = new Set([101, 204, 205, 304]);

// Kept-alive connections, apart per policy: a connection opened in local mode is never reused by
// a call that must pass the address checks (the lookup runs only when a connection is opened).
const AGENTS = {
  local: { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) },
  public: { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) },
};

function toResponse(res: IncomingMessage): Response {
  const headers = new Headers();
  for (const [k, v] of Object.entries(res.headers)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) headers.append(k, one);
  }
  const status = res.statusCode ?? 502;
  const body = NULL_BODY.has(status) ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
  if (body === null) res.resume();
  return new Response(body, { status, statusText: res.statusMessage ?? '', headers });
}

/**
 * Calls a peer at `url` under the policy: `ENDPOINT_REFUSED` for a URL or address the policy
 * refuses (nothing is sent), `NETWORK_ERROR` when the peer cannot be reached; otherwise the
 * peer's answer as a `Response`, whatever its status (redirects are not followed).
 *
 * @example
 * ```ts
 * const res = await peerFetch(`${peer.endpoint}/v1/models/${cid}`, { signal }, ctx.config.peers);
 * ```
 */
export function peerFetch(url: string, init: PeerRequestInit, policy: UrlPolicy): Promise<Response> {
  let target: URL;
  try {
    target = checkEndpointUrl(url, policy);
  } catch (e) {
    return Promise.reject(e);
  }
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    const agents = policy.localNetwork ? AGENTS.local : AGENTS.public;
    const req = request(target, {
      agent: target.protocol === 'https:' ? agents.https : agents.http,
      method: init.method ?? 'GET',
      headers: {
        ...init.headers,
        ...(init.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(init.body)) }),
      },
      ...(init.signal === undefined ? {} : { signal: init.signal }),
      // Local mode: the system's resolver as is. Otherwise every address checked (see above).
      ...(policy.localNetwork ? {} : { lookup: checkedLookup(url) }),
    });
    req.once('response', (res) => resolve(toResponse(res)));
    req.once('error', (e) => {
      if (isVerityError(e, 'ENDPOINT_REFUSED')) reject(e);
      else reject(new VerityError('NETWORK_ERROR', `cannot reach ${target.origin}`, { cause: e }));
    });
    req.end(init.body);
  });
}
