import {
  isVerityError,
  isZkBundle,
  primeVerifyCache,
  type Receipt,
  type Trust,
  type VerifyOptions,
  type VerifyResult,
  verifyBundle,
  verifyReceipt,
  type WitnessPolicy,
} from '@verity/protocol';
import type { ClientBase, ClientChain } from '../client.js';
import { requestJson } from '../http.js';
import { chainPaymentPolicy, checkPaymentSettled, verifyWithPayers } from '../payment.js';
import { gatherTrust, isRegistryRefusal } from './node-info.js';
import { bundleRegistryBlock } from './registry.js';
import { type VerifyZkOptions, verifyZkBundle } from './zk.js';

/**
 * Fetches the receipt of an earlier request (it is not verified here: see {@link verify}). Once
 * the node's witnesses cosigned a checkpoint covering it, it is against that checkpoint, with
 * their cosignatures (docs/protocol.md §14.3).
 *
 * @example
 * ```ts
 * const receipt = await getReceipt(client, requestId);
 * ```
 */
export function getReceipt(
  client: ClientBase,
  requestId: string,
  options: { signal?: AbortSignal } = {},
): Promise<Receipt> {
  return requestJson<Receipt>(client, 'GET', `/v1/receipts/${encodeURIComponent(requestId)}`, options);
}

/**
 * Verifies a bundle or a lone receipt with the client's trust (or `trust`). A bundle of mode zk
 * is verified as {@link verifyZkBundle} does (the proof, the signed manifest, the audited key;
 * one without its zk member is `ZK_EVIDENCE_MISSING`), with the client's chain. With
 * `witnesses`, the receipts' checkpoints must also carry cosignatures of `threshold` of those
 * witnesses (docs/protocol.md §14.4). With the client's chain, a paid receipt's payment must be
 * on that chain and in its deployment's token (`PAYMENT_WRONG_NETWORK`; `options.payment` adds to
 * that policy, replacing only the fields it names, and the settlement is asked of the deployment's
 * token only) and settled there, its authorization used on the token
 * (`PAYMENT_NOT_SETTLED`: a record that commits to a payment the node never submitted). A payment
 * signature that does not recover to its payer (a contract wallet's; offline
 * `PAYMENT_SIGNATURE_NEEDS_CHAIN`) is asked of the payer on the chain (ERC-1271
 * `isValidSignature`, {@link verifyWithPayers}): one that does not vouch is
 * `PAYMENT_SIGNATURE_INVALID`. Returns the result; it does not throw for an invalid receipt.
 *
 * @example
 * ```ts
 * const result = await verify(client, bundle);
 * if (!result.ok) console.error(result.code);
 * const witnessed = await verify(client, await getReceipt(client, requestId), { witnesses: { keys, threshold: 2 } });
 * ```
 */
export async function verify(
  client: ClientBase,
  bundleOrReceipt: unknown,
  options: VerifyOptions & Omit<VerifyZkOptions, 'chain'> & { trust?: Trust; witnesses?: WitnessPolicy } = {},
): Promise<VerifyResult> {
  // The caller's policy adds to the chain's (network and token pin), replacing only the fields it
  // sets to a value (an `asset: undefined` does not lift the pin).
  const given = Object.fromEntries(Object.entries(options.payment ?? {}).filter(([, v]) => v !== undefined));
  const policy = client.chain === undefined ? options.payment : { ...chainPaymentPolicy(client.chain), ...given };
  const opts = { cache: client.cache, ...options, ...(policy === undefined ? {} : { payment: policy }) };
  const isBundle = typeof bundleOrReceipt === 'object' && bundleOrReceipt !== null && 'mediaType' in bundleOrReceipt;
  // A payment signature only its payer's code can vouch for (a contract wallet): asked on the chain.
  const receipts = isBundle ? receiptsOf(bundleOrReceipt) : [bundleOrReceipt];
  const run = async (gathered: Trust) => {
    // A witness policy given here applies on top of whatever trust was gathered (docs/protocol.md §14.4).
    const trust = options.witnesses === undefined ? gathered : { ...gathered, witnesses: options.witnesses };
    if (opts.cache && !(isBundle && isZkBundle(bundleOrReceipt))) {
      await primeVerifyCache(bundleOrReceipt, trust, opts.cache);
    }
    return verifyWithPayers(
      client.chain,
      receipts,
      (payment) => {
        const o = { ...opts, payment };
        if (isBundle && isZkBundle(bundleOrReceipt)) {
          return verifyZkBundle(bundleOrReceipt, trust, {
            ...o,
            ...(client.chain === undefined ? {} : { chain: client.chain }),
          });
        }
        return isBundle ? verifyBundle(bundleOrReceipt, trust, o) : verifyReceipt(bundleOrReceipt, trust, o);
      },
      opts.payment ?? {},
      isBundle ? dissentOf(bundleOrReceipt) : [],
    );
  };
  const settled = async (result: VerifyResult): Promise<VerifyResult> =>
    result.ok && client.chain !== undefined ? paymentsSettled(client.chain, bundleOrReceipt, isBundle, result) : result;
  if (options.trust) return settled(await run(options.trust));
  // The registry at the block the bundle names, else the latest.
  const block = isBundle && client.chain ? bundleRegistryBlock(bundleOrReceipt) : undefined;
  const result = await run(await gatherTrust(client, block === undefined ? {} : { block }));
  // A refusal by a cached snapshot of the latest block is checked once more against a fresh one.
  if (!result.ok && client.chain && block === undefined && isRegistryRefusal(result.code)) {
    return settled(await run(await gatherTrust(client, { fresh: true })));
  }
  return settled(result);
}

/**
 * Each paid receipt of a verified bundle (or the lone receipt) was settled on the chain
 * (`checkPaymentSettled`): the record commits to an authorization, only the token says it was used.
 */
async function paymentsSettled(
  chain: ClientChain,
  bundleOrReceipt: unknown,
  isBundle: boolean,
  result: VerifyResult,
): Promise<VerifyResult> {
  const receipts = (
    isBundle ? (bundleOrReceipt as { receipts: readonly Receipt[] }).receipts : [bundleOrReceipt]
  ) as readonly Receipt[];
  for (const [i, receipt] of receipts.entries()) {
    if (receipt.payment === undefined) continue;
    try {
      await checkPaymentSettled(chain, receipt.payment);
    } catch (error) {
      if (!isVerityError(error)) throw error;
      return { ok: false, code: error.code, error, receipt: i };
    }
  }
  return result;
}

/** The dissent receipts of an untrusted quorum bundle, or none (verification says why). */
function dissentOf(bundle: unknown): readonly unknown[] {
  const dissent = (bundle as { quorum?: { dissent?: unknown } | null } | null)?.quorum?.dissent;
  return Array.isArray(dissent) ? dissent : [];
}

/** The receipts of an untrusted bundle, or none when it has no list (verification says why). */
function receiptsOf(bundle: unknown): readonly unknown[] {
  const receipts = (bundle as { receipts?: unknown } | null)?.receipts;
  return Array.isArray(receipts) ? receipts : [];
}
