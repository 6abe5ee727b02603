/**
 * The node's {@link PaymentSettler} on its chain: reads through the chain service's client, and
 * settles through `@verity/contracts`' payments actions (`settleExact`, `settleMetered`,
 * `settleMany`) in the chain service's one transaction queue (nonces shared with anchoring and
 * publishing). The node's account pays the gas: it is its own x402 facilitator.
 *
 * Group commit (as the log's batches): while a settlement transaction is in flight, the
 * settlements that arrive wait, and go together in the next transaction through
 * `MeteredSettlement.settleMany`, where each item stands alone (one the token refuses does not
 * undo the others). Each caller still learns its own outcome: the transaction's hash once its own
 * item settled, or the token's refusal of it. Before a batch goes, each item is tried by an
 * `eth_call` (`simulateSettlement`): one the token would refuse fails at once and stays out, so a
 * failing item costs no gas. One settlement waiting alone goes as a single call
 * (`settleExact` / `settleMetered`: less gas), and so does everything on a chain configured
 * without a settlement contract, or one whose `settleMany` call fails as a whole (an older
 * `MeteredSettlement` without it).
 */
import {
  authorizationOutcome,
  authorizationUsed,
  erc1271Valid,
  getTokenDomain,
  type SettlementItem,
  settleExact,
  settleMany,
  settleMetered,
  simulateSettlement,
  type TransferAuthorization,
  tokenBalance,
} from '@verity/contracts';
import { fail, isVerityError, type ReceiptPayment } from '@verity/protocol';
import { type Address, getAddress, type Hex } from 'viem';
import type { ChainService } from '../chain/chain-service.js';
import type { PaymentSettings } from '../config.js';
import type { PaymentSettler } from './payments.js';

/** The most settlements one transaction carries (about 40,000 gas each). */
export const MAX_SETTLEMENT_BATCH = 64;

function authorizationOf(p: ReceiptPayment): TransferAuthorization {
  const a = p.authorization;
  return {
    from: a.from as Address,
    to: a.to as Address,
    value: BigInt(a.value),
    validAfter: BigInt(a.validAfter),
    validBefore: BigInt(a.validBefore),
    nonce: a.nonce as Hex,
  };
}

/**
 * The settler of a node paid at `payee` in the token of `settings` (or of the deployment file's
 * `payments`), reading the token's EIP-712 domain from the chain.
 *
 * @example
 * ```ts
 * const settler = await createChainSettler(chain, config.payments, keys.address);
 * ```
 */
export async function createChainSettler(
  chain: ChainService,
  settings: PaymentSettings,
  payee: string,
): Promise<PaymentSettler> {
  const configured = settings.token ?? chain.deployment.payments?.token;
  const token = configured === undefined ? undefined : getAddress(configured);
  if (token === undefined) {
    fail('CONFIG_INVALID', 'payments.token is not set and the deployment file names no payment token', {
      path: 'payments.token',
    });
  }
  const metered = settings.meteredSettlement ?? chain.deployment.payments?.meteredSettlement;
  const settlement = metered === undefined ? undefined : getAddress(metered);
  const domain = await getTokenDomain(chain.publicClient, token);
  const { publicClient } = chain;

  const itemOf = (payment: ReceiptPayment, amount: bigint): SettlementItem => {
    const auth = authorizationOf(payment);
    const signature = payment.signature as Hex;
    return payment.scheme === 'metered'
      ? { scheme: 'metered', auth, salt: payment.salt as Hex, signature, amount }
      : { scheme: 'exact', auth, signature };
  };
  const settleOne = async (item: SettlementItem): Promise<string> => {
    const receipt = await chain.transact((clients) =>
      item.scheme === 'metered'
        ? settleMetered(clients, settlement as Address, token, item.auth, item.salt, item.signature, item.amount)
        : settleExact(clients, token, item.auth, item.signature),
    );
    return receipt.transactionHash;
  };

  interface Waiting {
    readonly item: SettlementItem;
    resolve(transaction: string): void;
    reject(error: unknown): void;
  }
  let waiting: Waiting[] = [];
  let draining = false;

  const settleAlone = async (w: Waiting) => {
    try {
      w.resolve(await settleOne(w.item));
    } catch (e) {
      w.reject(e);
    }
  };
  const settleBatch = async (all: Waiting[]) => {
    if (all.length === 1 || settlement === undefined) {
      for (const w of all) await settleAlone(w);
      return;
    }
    // Each item first by an eth_call (no gas): one the token would refuse fails at once, outside
    // the batch, where its failure would cost the node gas (a single settlement is stopped by its
    // gas estimate). A chain that does not answer here leaves the batch as it is.
    const refusals = await Promise.all(
      all.map((w) => simulateSettlement(publicClient, payee as Address, settlement, token, w.item)),
    ).catch(() => all.map(() => undefined));
    const batch: Waiting[] = [];
    all.forEach((w, i) => {
      const refusal = refusals[i];
      if (refusal === undefined) batch.push(w);
      else w.reject(refusal);
    });
    if (batch.length <= 1) {
      for (const w of batch) await settleAlone(w);
      return;
    }
    let outcome: Awaited<ReturnType<typeof settleMany>>;
    try {
      outcome = await chain.transact((clients) =>
        settleMany(
          clients,
          settlement,
          token,
          batch.map((w) => w.item),
        ),
      );
    } catch (e) {
      // A chain that is down: every item stays accepted, for a retry or the next start.
      if (isVerityError(e, 'CHAIN_UNAVAILABLE')) {
        for (const w of batch) w.reject(e);
        return;
      }
      // The batch as a whole was refused: each on its own, so that each gets its own outcome.
      for (const w of batch) await settleAlone(w);
      return;
    }
    const hash = outcome.receipt.transactionHash;
    batch.forEach((w, i) => {
      const failure = outcome.failures[i];
      if (failure === undefined) w.resolve(hash);
      else w.reject(failure);
    });
  };
  const drain = async () => {
    draining = true;
    try {
      while (waiting.length > 0) {
        const batch = waiting.slice(0, MAX_SETTLEMENT_BATCH);
        waiting = waiting.slice(batch.length);
        await settleBatch(batch);
      }
    } finally {
      draining = false;
    }
  };

  return {
    network: `eip155:${domain.chainId}`,
    payee,
    domain,
    ...(settlement === undefined ? {} : { meteredSettlement: settlement }),
    used: (from, nonce) => authorizationUsed(publicClient, token, from as Address, nonce as Hex),
    // From the latest block less SETTLEMENT_LOOKBACK_BLOCKS (the journal does not hold the block a
    // payment was accepted at): a payment settles within its validity, long before that on any chain.
    outcome: (payment) =>
      authorizationOutcome(publicClient, {
        token,
        from: payment.authorization.from as Address,
        nonce: payment.authorization.nonce as Hex,
        ...(payment.scheme === 'metered' && settlement !== undefined
          ? { metered: { settlement, payee: payee as Address } }
          : {}),
      }),
    balance: (owner) => tokenBalance(publicClient, token, owner as Address),
    signedByContract: (signer, digest, signature) =>
      erc1271Valid(publicClient, signer as Address, digest as Hex, signature as Hex),
    settle(payment, amount) {
      const item = itemOf(payment, amount);
      return new Promise<string>((resolve, reject) => {
        waiting.push({ item, resolve, reject });
        if (!draining) void drain();
      });
    },
  };
}
