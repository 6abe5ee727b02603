/**
 * The node's {@link PaymentSettler} on its chain: reads through the chain service's client, and
 * settles through `@verity/contracts`' payments actions (`settleExact`, `settleMetered`) in the
 * chain service's one transaction queue (nonces shared with anchoring and publishing). The node's
 * account pays the gas: it is its own x402 facilitator.
 */
import {
  authorizationUsed,
  getTokenDomain,
  settleExact,
  settleMetered,
  type TransferAuthorization,
  tokenBalance,
} from '@verity/contracts';
import { fail, type ReceiptPayment } from '@verity/protocol';
import { type Address, getAddress, type Hex } from 'viem';
import type { ChainService } from '../chain/chain-service.js';
import type { PaymentSettings } from '../config.js';
import type { PaymentSettler } from './payments.js';

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
  return {
    network: `eip155:${domain.chainId}`,
    payee,
    domain,
    ...(settlement === undefined ? {} : { meteredSettlement: settlement }),
    used: (from, nonce) => authorizationUsed(publicClient, token, from as Address, nonce as Hex),
    balance: (owner) => tokenBalance(publicClient, token, owner as Address),
    async settle(payment, amount) {
      const auth = authorizationOf(payment);
      const signature = payment.signature as Hex;
      const receipt = await chain.transact((clients) =>
        payment.scheme === 'metered'
          ? settleMetered(clients, settlement as Address, token, auth, payment.salt as Hex, signature, amount)
          : settleExact(clients, token, auth, signature),
      );
      return receipt.transactionHash;
    },
  };
}
