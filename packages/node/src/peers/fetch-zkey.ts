/**
 * Proving keys from peers (issue 11.7): a replica of a zk model asks the registered peers for the
 * model's final zkey (`GET /v1/zk/:manifestCid/zkey`), under the outbound URL policy and a size
 * bound, and offers each answer to the zk service, which checks it against the model before it
 * keeps it (`zk-service.ts`): nothing a peer sends is trusted.
 */
import { concatBytes, fail } from '@verity/protocol';
import type { NodeContext } from '../context.js';
import type { OfferedZkey } from '../zk-service.js';
import { peerFetch } from './url-policy.js';

/**
 * Reads a request or response body of at most `maxBytes`; `PAYLOAD_TOO_LARGE` beyond (read no
 * further).
 */
export async function readBounded(body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > maxBytes) fail('PAYLOAD_TOO_LARGE', 'the zkey is larger than this node accepts', { maxBytes });
    parts.push(chunk);
  }
  return concatBytes(...parts);
}

/**
 * The zkeys the node's registered peers offer for `manifestCid`, one peer at a time (a peer that
 * lacks it, is down, is refused by the URL policy or sends too much is skipped).
 *
 * @example
 * ```ts
 * for await (const { peer, zkey } of peerZkeys(ctx, cid, 1 << 30)) …
 * ```
 */
export async function* peerZkeys(ctx: NodeContext, manifestCid: string, maxBytes: number): AsyncGenerator<OfferedZkey> {
  const chain = ctx.chain;
  if (!chain) return;
  const self = ctx.keys.address.toLowerCase();
  const { nodes } = await chain.peers();
  for (const peer of nodes) {
    if (peer.account.toLowerCase() === self) continue;
    const url = `${peer.endpoint.replace(/\/+$/, '')}/v1/zk/${manifestCid}/zkey`;
    let zkey: Uint8Array | undefined;
    try {
      const response = await peerFetch(url, { signal: AbortSignal.timeout(300_000) }, ctx.config.peers);
      if (!response.ok || response.body === null) continue;
      if (Number(response.headers.get('content-length') ?? 0) > maxBytes) continue;
      zkey = await readBounded(response.body as unknown as AsyncIterable<Uint8Array>, maxBytes);
    } catch {
      continue; // unreachable, refused, or too large: the next peer
    }
    if (zkey !== undefined) yield { peer: peer.endpoint, zkey };
  }
}
