import { lookup } from 'node:dns/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkEndpointUrl, isPublicAddress, peerFetch } from './url-policy.js';

const PUBLIC = { localNetwork: false };
const LOCAL = { localNetwork: true };

// A listener on loopback that counts every connection: a refused call must not even connect.
let server: Server;
let port: number;
let connections = 0;
let requests = 0;
beforeAll(async () => {
  server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

describe('isPublicAddress', () => {
  it('refuses every non-public IPv4 range and accepts public unicast', () => {
    const refused = [
      '0.0.0.0',
      '0.1.2.3',
      '10.0.0.1',
      '100.64.0.1',
      '100.127.255.254',
      '127.0.0.1',
      '127.255.255.255',
      '169.254.169.254',
      '172.16.0.1',
      '172.31.255.255',
      '192.0.0.8',
      '192.0.2.1',
      '192.88.99.1',
      '192.168.1.1',
      '198.18.0.1',
      '198.19.255.255',
      '198.51.100.7',
      '203.0.113.9',
      '224.0.0.1',
      '239.255.255.250',
      '240.0.0.1',
      '255.255.255.255',
    ];
    for (const a of refused) expect(isPublicAddress(a), a).toBe(false);
    for (const a of [
      '1.1.1.1',
      '8.8.8.8',
      '93.184.216.34',
      '100.63.255.255',
      '100.128.0.0',
      '172.15.255.255',
      '172.32.0.0',
      '198.17.255.255',
      '223.255.255.255',
    ]) {
      expect(isPublicAddress(a), a).toBe(true);
    }
  });

  it('refuses non-public IPv6, and IPv4 inside IPv6 by the IPv4 address it reaches', () => {
    const refused = [
      '::',
      '::1',
      '0:0:0:0:0:0:0:1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '::ffff:10.1.2.3',
      '::127.0.0.1', // IPv4-compatible (deprecated)
      '64:ff9b::7f00:1', // NAT64 of 127.0.0.1
      '64:ff9b::10.0.0.1',
      '64:ff9b:1::1',
      '2002:7f00:1::1', // 6to4 of 127.0.0.1
      '2002:a9fe:a9fe::1',
      '2001::1', // Teredo
      '2001:db8::1',
      '3fff::1',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      'fe80::1%eth0',
      'fec0::1',
      'ff02::1',
      '100::1',
    ];
    for (const a of refused) expect(isPublicAddress(a), a).toBe(false);
    for (const a of [
      '2606:4700:4700::1111',
      '2001:4860:4860::8888',
      '::ffff:8.8.8.8',
      '64:ff9b::808:808',
      '2002:808:808::1',
    ]) {
      expect(isPublicAddress(a), a).toBe(true);
    }
    expect(isPublicAddress('localhost')).toBe(false);
    expect(isPublicAddress('')).toBe(false);
  });
});

describe('checkEndpointUrl', () => {
  const refusal = (url: string, policy = PUBLIC) => {
    try {
      checkEndpointUrl(url, policy);
      return undefined;
    } catch (e) {
      return { code: (e as { code: string }).code, reason: (e as { details: { reason: string } }).details.reason };
    }
  };

  it('takes http and https only, without credentials, in local mode too', () => {
    for (const url of [
      'file:///etc/passwd',
      'ftp://example.org/',
      'gopher://example.org/',
      'data:text/plain,x',
      'javascript:alert(1)',
    ]) {
      expect(refusal(url, LOCAL)?.code, url).toBe('ENDPOINT_REFUSED');
    }
    expect(refusal('http://user:pw@example.org/', LOCAL)?.reason).toBe('credentials in the URL');
    expect(refusal('https://user@example.org/', LOCAL)?.reason).toBe('credentials in the URL');
    expect(refusal('not a url', LOCAL)?.reason).toBe('not a URL');
    expect(refusal('https://node-7.example.org:8700')).toBeUndefined();
    expect(refusal('http://93.184.216.34:8700/')).toBeUndefined();
    expect(refusal('http://127.0.0.1:8700', LOCAL)).toBeUndefined();
  });

  it('refuses every spelling of a loopback, private, link-local or metadata address', () => {
    const urls = [
      'http://127.0.0.1:8700',
      'http://127.1:8700', // shorthand
      'http://2130706433:8700', // decimal
      'http://0x7f000001:8700', // hex
      'http://0x7f.0.0.1:8700',
      'http://0177.0.0.1:8700', // octal
      'http://017700000001:8700',
      'http://0:8700',
      'http://0.0.0.0:8700',
      'http://[::1]:8700',
      'http://[::]:8700',
      'http://[::ffff:127.0.0.1]:8700', // mapped
      'http://[::ffff:169.254.169.254]/latest/meta-data/',
      'http://169.254.169.254/latest/meta-data/',
      'http://2852039166/', // 169.254.169.254 in decimal
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://10.0.0.5/',
      'http://192.168.0.1/',
      'http://localhost:8700',
      'http://LOCALHOST.:8700',
      'http://api.localhost/',
      'http://224.0.0.1/',
    ];
    for (const url of urls) expect(refusal(url)?.code, url).toBe('ENDPOINT_REFUSED');
    // Local mode (`verity up`): allowed.
    for (const url of urls) expect(refusal(url, LOCAL), url).toBeUndefined();
  });
});

describe('peerFetch', () => {
  it('in local mode calls the peer (the listener works)', async () => {
    const before = requests;
    const res = await peerFetch(`http://127.0.0.1:${port}/v1/node`, {}, LOCAL);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    const post = await peerFetch(`http://localhost:${port}/v1/infer`, { method: 'POST', body: '{}' }, LOCAL);
    expect(post.status).toBe(200);
    await post.arrayBuffer();
    expect(requests).toBe(before + 2);
  });

  it('outside local mode never connects to a loopback address, however it is spelled or resolved', async () => {
    const own = hostname();
    const addresses = await lookup(own, { all: true }).catch(() => []);
    const ownIsLocal = addresses.length > 0 && addresses.some((a) => !isPublicAddress(a.address));
    // A connection a local-mode call left open (kept alive) is not reused by a checked call.
    if (ownIsLocal) await (await peerFetch(`http://${own}:${port}/`, {}, LOCAL)).arrayBuffer();
    const before = connections;
    const urls = [
      `http://127.0.0.1:${port}/`,
      `http://2130706433:${port}/`,
      `http://0x7f000001:${port}/`,
      `http://0177.0.0.1:${port}/`,
      `http://127.1:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://localhost:${port}/`,
      `http://user:pw@93.184.216.34:${port}/`,
    ];
    for (const url of urls) expect(await codeOf(peerFetch(url, {}, PUBLIC)), url).toBe('ENDPOINT_REFUSED');
    // A host name that resolves to loopback or a private address through the system resolver
    // (this machine's own name, in /etc/hosts): refused after the lookup, before connecting.
    if (ownIsLocal) {
      const error = await peerFetch(`http://${own}:${port}/`, {}, PUBLIC).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ENDPOINT_REFUSED', details: { host: own } });
    }
    expect(connections).toBe(before);
  });

  it('reports an unreachable peer as NETWORK_ERROR and does not follow redirects', async () => {
    expect(await codeOf(peerFetch('http://127.0.0.1:1/', {}, LOCAL))).toBe('NETWORK_ERROR');
    const redirect = createServer((_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/' }).end());
    await new Promise<void>((r) => redirect.listen(0, '127.0.0.1', r));
    try {
      const res = await peerFetch(`http://127.0.0.1:${(redirect.address() as AddressInfo).port}/`, {}, LOCAL);
      expect(res.status).toBe(302);
    } finally {
      await new Promise<void>((r) => redirect.close(() => r()));
    }
  });
});
