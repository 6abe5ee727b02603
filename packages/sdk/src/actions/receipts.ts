import {
  primeVerifyCache,
  type Receipt,
  type Trust,
  type VerifyOptions,
  type VerifyResult,
  verifyBundle,
  verifyReceipt,
} from '@verity/protocol';
import type { ClientBase } from '../client.js';
import { requestJson } from '../http.js';
import { gatherTrust } from './node-info.js';

/**
 * Fetches the receipt of an earlier request (it is not verified here: see {@link verify}).
 *
 * @example
 * ```ts
 * const receipt = await getReceipt(client, requestId);
 * ```
 */
export function getReceipt(client: ClientBase, requestId: string): Promise<Receipt> {
  return requestJson<Receipt>(client, 'GET', `/v1/receipts/${encodeURIComponent(requestId)}`);
}

/**
 * Verifies a bundle or a lone receipt with the client's trust (or `trust`). Returns the result;
 * it does not throw for an invalid receipt.
 *
 * @example
 * ```ts
 * const result = await verify(client, bundle);
 * if (!result.ok) console.error(result.code);
 * ```
 */
export async function verify(
  client: ClientBase,
  bundleOrReceipt: unknown,
  options: VerifyOptions & { trust?: Trust } = {},
): Promise<VerifyResult> {
  const trust = options.trust ?? (await gatherTrust(client));
  const opts = { cache: client.cache, ...options };
  const isBundle = typeof bundleOrReceipt === 'object' && bundleOrReceipt !== null && 'mediaType' in bundleOrReceipt;
  if (opts.cache) await primeVerifyCache(bundleOrReceipt, trust, opts.cache);
  return isBundle ? verifyBundle(bundleOrReceipt, trust, opts) : verifyReceipt(bundleOrReceipt, trust, opts);
}
