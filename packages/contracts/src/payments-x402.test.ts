// TestStablecoin under the maintained x402 implementation (@x402/evm 2.27): its `exact` client
// signs, and its `exact` facilitator verifies and settles, on a real anvil — an independent check
// that the token is what an x402 facilitator expects of an EIP-3009 token (USDC's shape). Verity's
// node is its own facilitator (packages/node/src/payments/), settling through payments.ts; this
// shows that any x402 facilitator could settle the same payments.
import { toClientEvmSigner, toFacilitatorEvmSigner } from '@x402/evm';
import { ExactEvmScheme as ExactClient } from '@x402/evm/exact/client';
import { ExactEvmScheme as ExactFacilitator } from '@x402/evm/exact/facilitator';
import { type Address, getAddress, type Hex, publicActions, recoverAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTokenDomain, type PaymentContracts, tokenBalance, transferAuthorizationDigest } from './payments.js';
import { startTestChain, type TestChain } from './test-support/chain.js';

const PAYER = 1;
const NODE = 2;
const FUNDS = 1_000_000_000n;

let chain: TestChain;
let contracts: PaymentContracts;

beforeAll(async () => {
  chain = await startTestChain();
  contracts = await chain.deployPayments({ [PAYER]: FUNDS });
});
afterAll(() => chain.stop());

describe('TestStablecoin with @x402/evm’s exact scheme', () => {
  it('is paid by the x402 client’s signature through the x402 facilitator, once', async () => {
    const payer = privateKeyToAccount(chain.anvil.privateKeys[PAYER] as Hex);
    const node = chain.clients(NODE);
    const domain = await getTokenDomain(chain.publicClient, contracts.token);
    const requirements = {
      scheme: 'exact',
      network: `eip155:${domain.chainId}` as const,
      asset: contracts.token,
      amount: '10000',
      payTo: chain.address(NODE),
      maxTimeoutSeconds: 300,
      extra: { name: domain.name, version: domain.version },
    };
    const client = new ExactClient(toClientEvmSigner(payer, chain.publicClient));
    const signed = await client.createPaymentPayload(2, requirements);
    const payload = { ...signed, accepted: requirements, resource: { url: 'http://127.0.0.1/v1/infer' } };

    // What x402's client signed is the digest payments.ts computes.
    const p = signed.payload as {
      authorization: Record<'from' | 'to' | 'value' | 'validAfter' | 'validBefore' | 'nonce', string>;
      signature: Hex;
    };
    const a = p.authorization;
    const digest = transferAuthorizationDigest(domain, {
      from: a.from as Address,
      to: a.to as Address,
      value: BigInt(a.value),
      validAfter: BigInt(a.validAfter),
      validBefore: BigInt(a.validBefore),
      nonce: a.nonce as Hex,
    });
    expect(await recoverAddress({ hash: digest, signature: p.signature })).toBe(payer.address);

    // A viem wallet client with public actions is what x402's facilitator signer wraps; its
    // declared parameter types are narrower than viem 2.57's overloads, hence the cast.
    const signer = { ...node.walletClient.extend(publicActions), address: getAddress(chain.address(NODE)) };
    const facilitator = new ExactFacilitator(
      toFacilitatorEvmSigner(signer as unknown as Parameters<typeof toFacilitatorEvmSigner>[0]),
    );
    expect(await facilitator.verify(payload, requirements)).toMatchObject({ isValid: true, payer: payer.address });
    const settled = await facilitator.settle(payload, requirements);
    expect(settled).toMatchObject({ success: true, network: requirements.network, payer: payer.address });
    expect(await tokenBalance(chain.publicClient, contracts.token, payer.address)).toBe(FUNDS - 10_000n);
    expect(await tokenBalance(chain.publicClient, contracts.token, chain.address(NODE))).toBe(10_000n);

    // The same payment again: the facilitator's simulation sees the used nonce; nothing moves.
    expect(await facilitator.verify(payload, requirements)).toMatchObject({ isValid: false });
    expect(await facilitator.settle(payload, requirements)).toMatchObject({ success: false });
    expect(await tokenBalance(chain.publicClient, contracts.token, payer.address)).toBe(FUNDS - 10_000n);
  });
});
