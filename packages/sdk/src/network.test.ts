/**
 * Routing's choices over real HTTP servers (node:http on loopback): which node comes first (holds
 * the model, then latency), what a failure and a refusal do to a node (backoff, sitting out), that
 * the registry decides who is a node (a node that leaves is dropped, one that joins is probed),
 * and that `routed` fails over on the node's failures but returns the caller's at once. The
 * registry snapshot is handed in (the chain is the process-level test's: cli/src/gateway.test.ts).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type RegistrySnapshot, VerityError } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../../../test-support/wait.js';
import { getReceipt } from './actions/receipts.js';
import { routed } from './actions/routed.js';
import { type ClientBase, createClientBase } from './client.js';
import { byPriceWithinLatency, createNetwork, priceOf } from './network.js';

interface FakeNode {
  server: Server;
  url: string;
  address: string;
}

/**
 * A server answering `GET /v1/models` with `models` (and their `prices`, as a node with payments
 * lists them) after `delayMs`, or `status`; `GET /v1/receipts/:id` with the receipts it holds,
 * else 404 `RECEIPT_NOT_FOUND` as a node answers.
 */
async function serve(
  address: string,
  models: string[],
  delayMs: number,
  status = 200,
  held: { prices?: Record<string, unknown>; receipts?: Record<string, unknown> } = {},
): Promise<FakeNode> {
  const server = createServer((req, res) => {
    const receipt = req.url?.startsWith('/v1/receipts/') ? req.url.slice('/v1/receipts/'.length) : undefined;
    if (receipt !== undefined) {
      const found = held.receipts?.[receipt];
      res.writeHead(found === undefined ? 404 : 200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          found ?? { error: { code: 'RECEIPT_NOT_FOUND', message: 'no receipt for this request id', details: {} } },
        ),
      );
      return;
    }
    setTimeout(() => {
      res.writeHead(status, { 'content-type': 'application/json' });
      const data = models.map((ref) => ({
        id: `cid-${ref}`,
        ref,
        ...(held.prices?.[ref] === undefined ? {} : { price: held.prices[ref] }),
      }));
      res.end(JSON.stringify({ object: 'list', data }));
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, address };
}

let fast: FakeNode;
let slow: FakeNode;
let empty: FakeNode;
let broken: FakeNode;
let dear: FakeNode;
let cheap: FakeNode;
let cheapest: FakeNode;

beforeAll(async () => {
  // Prices as a node with payments lists them (docs/api.md "Payments"): atomic units, decimal strings.
  dear = await serve('0x00000000000000000000000000000000000000b1', ['chat@1.0.0'], 0, 200, {
    prices: { 'chat@1.0.0': { scheme: 'metered', inputToken: '50', outputToken: '100' } },
    receipts: { 'req-1': { served: 'dear' } },
  });
  cheap = await serve('0x00000000000000000000000000000000000000b2', ['chat@1.0.0'], 0, 200, {
    prices: { 'chat@1.0.0': { scheme: 'metered', inputToken: '5', outputToken: '10' } },
  });
  // The cheapest, but far slower than the others.
  cheapest = await serve('0x00000000000000000000000000000000000000b3', ['chat@1.0.0'], 400, 200, {
    prices: { 'chat@1.0.0': { scheme: 'metered', inputToken: '1', outputToken: '1' } },
  });
  fast = await serve('0x00000000000000000000000000000000000000a1', ['iris@1.0.0'], 0);
  // Slower by far more than a busy machine adds to a loopback answer: the ranking by latency holds.
  slow = await serve('0x00000000000000000000000000000000000000a2', ['iris@1.0.0'], 400);
  empty = await serve('0x00000000000000000000000000000000000000a3', [], 0);
  broken = await serve('0x00000000000000000000000000000000000000a4', ['iris@1.0.0'], 0, 500);
});

afterAll(async () => {
  for (const n of [fast, slow, empty, broken, dear, cheap, cheapest]) await new Promise((r) => n.server.close(r));
});

function snapshotOf(nodes: FakeNode[], extra: { status?: 'registered' | 'unbonding'; stake?: bigint } = {}) {
  return (): Promise<RegistrySnapshot> =>
    Promise.resolve({
      chainId: 31337,
      nodeRegistry: '0x0000000000000000000000000000000000000001',
      block: { number: 1, hash: `0x${'00'.repeat(32)}` },
      minStake: 10n,
      nodes: nodes.map((n) => ({
        address: n.address,
        logKey: 'unused',
        stake: extra.stake ?? 10n,
        status: extra.status ?? 'registered',
        capabilities: 0n,
        endpoint: n.url,
      })),
    });
}

describe('createNetwork', () => {
  it('ranks healthy nodes holding the model first, then by latency; failing ones last', async () => {
    const network = createNetwork(snapshotOf([slow, empty, broken, fast]), fetch, { refreshMs: 60_000 });
    try {
      const order = (await network.candidates('iris@1.0.0')).map((n) => n.address);
      expect(order).toEqual([fast.address, slow.address, empty.address, broken.address]);
      const states = Object.fromEntries(network.nodes().map((n) => [n.address, n.state]));
      expect(states[broken.address]).toBe('down');
      expect(states[fast.address]).toBe('up');
      // A bare name matches the node's `name@version`; another model puts holders and others alike by latency.
      expect((await network.candidates('iris'))[0]?.address).toBe(fast.address);
      expect((await network.candidates('other')).at(-1)?.address).toBe(broken.address);
    } finally {
      network.close();
    }
  });

  it('sends a node that failed behind the others, and one whose answer did not verify further (refused)', async () => {
    const network = createNetwork(snapshotOf([fast, slow, empty]), fetch, { refreshMs: 60_000 });
    try {
      const [first] = await network.candidates('iris@1.0.0');
      network.report(first as NonNullable<typeof first>, { ok: false, error: 'NETWORK_ERROR' });
      expect((await network.candidates('iris@1.0.0'))[0]?.address).toBe(slow.address);
      const second = (await network.candidates('iris@1.0.0'))[0] as NonNullable<typeof first>;
      network.report(second, { ok: false, error: 'RECEIPT_OUTPUT_DIGEST_MISMATCH', refused: true });
      const json = network.nodes();
      expect(json.find((n) => n.address === slow.address)).toMatchObject({ state: 'refused', verificationFailures: 1 });
      expect(json.find((n) => n.address === fast.address)).toMatchObject({ state: 'down', failovers: 1 });
      expect((await network.candidates('iris@1.0.0'))[0]?.address).toBe(empty.address);
    } finally {
      network.close();
    }
  });

  it('routes only to registered nodes staked at least the minimum', async () => {
    for (const extra of [{ status: 'unbonding' as const }, { stake: 9n }]) {
      const network = createNetwork(snapshotOf([fast], extra), fetch);
      try {
        expect(await network.candidates()).toEqual([]);
      } finally {
        network.close();
      }
    }
  });

  it('follows the registry: a node that joins is probed and used, one that leaves is dropped', async () => {
    let nodes = [slow];
    const network = createNetwork(() => snapshotOf(nodes)(), fetch, { refreshMs: 0 });
    try {
      expect((await network.candidates('iris@1.0.0')).map((n) => n.address)).toEqual([slow.address]);
      nodes = [slow, fast];
      // The registry is read in the background; the next reads see the new node once probed.
      const order = async () => (await network.candidates('iris@1.0.0')).map((n) => n.address);
      const joined = await until(async () => {
        const o = await order();
        return o[0] === fast.address ? o : undefined;
      }, 'the joining node to be probed');
      expect(joined).toEqual([fast.address, slow.address]);
      nodes = [fast];
      const left = await until(async () => {
        const o = await order();
        return o.length === 1 ? o : undefined;
      }, 'the leaving node to be dropped');
      expect(left).toEqual([fast.address]);
    } finally {
      network.close();
    }
  });
});

describe('routed', () => {
  function clientOver(nodes: FakeNode[]): ClientBase {
    const base = createClientBase({ url: 'http://unused.invalid' });
    return { ...base, url: '', network: createNetwork(snapshotOf(nodes), fetch, { refreshMs: 60_000 }) };
  }

  it("fails over on the node's failures (unreachable, 5xx, a refused answer) and says why", async () => {
    const client = clientOver([fast, slow, empty]);
    const failures = [
      new VerityError('NETWORK_ERROR', 'cannot reach'),
      new VerityError('RECEIPT_OUTPUT_DIGEST_MISMATCH', 'the record is for another output'),
    ];
    try {
      const { value, route } = await routed(client, { model: 'iris@1.0.0' }, async (node) => {
        const failure = failures.shift();
        if (failure) throw failure;
        return node.url;
      });
      expect(value).toBe(empty.url);
      expect(route.node).toBe(empty.address);
      expect(route.tried).toEqual([
        { node: fast.address, code: 'NETWORK_ERROR' },
        { node: slow.address, code: 'RECEIPT_OUTPUT_DIGEST_MISMATCH' },
      ]);
      expect(route.reason).toMatch(/^failover: .* failed \(RECEIPT_OUTPUT_DIGEST_MISMATCH\)/);
    } finally {
      client.network?.close();
    }
  });

  it("returns the caller's error at once (a 4xx), and NO_NODE_AVAILABLE when every node failed", async () => {
    const client = clientOver([fast, slow]);
    try {
      let calls = 0;
      const caller = routed(client, { model: 'iris@1.0.0' }, async () => {
        calls += 1;
        throw new VerityError('TENSOR_SHAPE_MISMATCH', 'bad input', { details: { status: 400 } });
      });
      await expect(caller).rejects.toMatchObject({ code: 'TENSOR_SHAPE_MISMATCH' });
      expect(calls).toBe(1);
      const none = routed(client, { model: 'iris@1.0.0' }, async () => {
        throw new VerityError('INTERNAL', 'boom', { details: { status: 500 } });
      });
      await expect(none).rejects.toMatchObject({ code: 'NO_NODE_AVAILABLE' });
    } finally {
      client.network?.close();
    }
  });
});

describe('price-aware routing', () => {
  const node = (latencyMs: number | undefined, price?: Record<string, string>) => ({
    latencyMs,
    prices: new Map(price === undefined ? [] : [['m@1', price]]),
  });

  it('prefers the cheapest among the nodes near the fastest; the rest by latency', () => {
    const fastDear = node(10, { request: '100' });
    const nearCheap = node(14, { request: '7' });
    const nearFree = node(19);
    const slowCheapest = node(80, { request: '1' });
    const unprobed = node(undefined, { request: '0' });
    const unreadable = node(12, { request: '1e3' }); // not a decimal amount: last among the near ones
    const order = byPriceWithinLatency([slowCheapest, fastDear, unprobed, nearCheap, unreadable, nearFree], 'm@1', {
      ratio: 0,
      ms: 10,
    });
    expect(order).toEqual([nearFree, nearCheap, fastDear, unreadable, slowCheapest, unprobed]);
    // The tolerance is the larger of ms and ratio × the fastest: 0.5 × 40 ms = 20 ms.
    const a = node(40, { request: '9' });
    const b = node(58, { request: '2' });
    expect(byPriceWithinLatency([a, b], 'm@1', { ratio: 0.5, ms: 1 })).toEqual([b, a]);
    expect(byPriceWithinLatency([a, b], 'm@1', { ratio: 0.1, ms: 1 })).toEqual([a, b]);
  });

  it("reads prices from the nodes' /v1/models: per request, or per prompt and generated token", () => {
    expect(priceOf({ prices: new Map([['m@1', { request: '250' }]]) }, 'm@1')).toBe(250n);
    expect(priceOf({ prices: new Map([['m@1', { inputToken: '2', outputToken: '3' }]]) }, 'm')).toBe(5n);
    expect(priceOf({ prices: new Map() }, 'm@1')).toBe(0n);
    expect(priceOf({ prices: new Map([['m@1', { inputToken: '2' }]]) }, 'm@1')).toBeUndefined();
  });

  it('routes to the cheapest within the tolerance over HTTP, says so, and can be turned off', async () => {
    const wide = createNetwork(snapshotOf([dear, cheapest, cheap]), fetch, {
      refreshMs: 60_000,
      priceTolerance: { ratio: 0, ms: 60_000 },
    });
    const narrow = createNetwork(snapshotOf([dear, cheapest, cheap]), fetch, {
      refreshMs: 60_000,
      priceTolerance: false,
    });
    try {
      expect((await wide.candidates('chat@1.0.0')).map((n) => n.address)).toEqual([
        cheapest.address,
        cheap.address,
        dear.address,
      ]);
      expect(wide.nodes().find((n) => n.address === cheap.address)?.prices['chat@1.0.0']).toEqual({
        scheme: 'metered',
        inputToken: '5',
        outputToken: '10',
      });
      // Latency alone: the slow one (400 ms a probe) last, whatever it charges.
      expect((await narrow.candidates('chat@1.0.0')).at(-1)?.address).toBe(cheapest.address);
      const client = { ...createClientBase({ url: 'http://unused.invalid' }), url: '', network: wide };
      const { route } = await routed(client, { model: 'chat@1.0.0' }, async (n) => n.url);
      expect(route.node).toBe(cheapest.address);
      expect(route.reason).toMatch(
        /^cheapest within the latency tolerance \(price 2, latency \d+ ms\), holds chat@1.0.0$/,
      );
    } finally {
      wide.close();
      narrow.close();
    }
  });
});

describe('receipt lookups', () => {
  it('ask the node that served first, pass over nodes that do not hold it, and hold nothing against them', async () => {
    const network = createNetwork(snapshotOf([cheap, dear, cheapest]), fetch, { refreshMs: 60_000 });
    const client = { ...createClientBase({ url: 'http://unused.invalid' }), url: '', network };
    const notFound = (e: unknown) => (e as { code?: string }).code === 'RECEIPT_NOT_FOUND';
    try {
      const { value, route } = await routed(client, { passOver: notFound, prefer: cheap.address }, (n, signal) =>
        getReceipt(n, 'req-1', { signal }),
      );
      expect(value).toEqual({ served: 'dear' });
      expect(route.node).toBe(dear.address);
      expect(route.tried).toEqual([{ node: cheap.address, code: 'RECEIPT_NOT_FOUND' }]);
      expect(route.reason).toMatch(/^next: 0x0+b2 does not hold it \(RECEIPT_NOT_FOUND\)/);
      expect(network.nodes().find((n) => n.address === cheap.address)).toMatchObject({ state: 'up', failovers: 0 });
      // No node holds it: the nodes' own answer (404), not NO_NODE_AVAILABLE.
      await expect(
        routed(client, { passOver: notFound }, (n, signal) => getReceipt(n, 'req-2', { signal })),
      ).rejects.toMatchObject({ code: 'RECEIPT_NOT_FOUND', details: { status: 404 } });
    } finally {
      network.close();
    }
  });

  it('say NO_NODE_AVAILABLE when a node that may hold it could not be asked', async () => {
    const network = createNetwork(snapshotOf([cheap, broken]), fetch, { refreshMs: 60_000 });
    const client = { ...createClientBase({ url: 'http://unused.invalid' }), url: '', network };
    try {
      await expect(
        routed(
          client,
          { passOver: (e) => (e as { code?: string }).code === 'RECEIPT_NOT_FOUND' },
          async (n, signal) => {
            if (n.url === broken.url) throw new VerityError('NETWORK_ERROR', 'cannot reach');
            return getReceipt(n, 'req-1', { signal });
          },
        ),
      ).rejects.toMatchObject({ code: 'NO_NODE_AVAILABLE' });
    } finally {
      network.close();
    }
  });
});
