/**
 * One anvil per test file, with clients for its dev accounts and fresh contracts on demand.
 */
import { isVerityError } from '@verity/protocol';
import {
  type Address,
  createPublicClient,
  createTestClient,
  createWalletClient,
  http,
  type PublicClient,
  parseEther,
  type TestClient,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { expect } from 'vitest';
import { type Anvil, startAnvil } from '../anvil.js';
import type { ChainClients } from '../clients.js';
import { type Deployment, deployContracts } from '../deploy.js';
import type { DisputeParams } from '../disputes.js';
import { deployPaymentContracts, mintTestTokens, type PaymentContracts } from '../payments.js';

export interface TestChain {
  readonly anvil: Anvil;
  readonly publicClient: PublicClient;
  readonly testClient: TestClient;
  /** Clients signing as dev account `i` (0 deploys, 9 is the slasher). */
  clients(i: number): ChainClients;
  address(i: number): Address;
  /**
   * Deploys fresh contracts: 1 ETH minimum stake, 1 hour unbonding, and account 9 slashes by hand
   * (no `Disputes`); with `disputes`, the `Disputes` contract with these rules is the slasher.
   */
  deploy(disputes?: DisputeParams): Promise<Deployment>;
  /**
   * Deploys `TestStablecoin` and `MeteredSettlement` (account 0 mints) and gives each account in
   * `fund` that many atomic units (6 decimals: 1_000_000n is 1 vUSD).
   */
  deployPayments(fund?: Readonly<Record<number, bigint>>): Promise<PaymentContracts>;
  stop(): Promise<void>;
}

export const MIN_STAKE = parseEther('1');
export const UNBONDING_DELAY = 3600;
export const SLASHER = 9;
/**
 * The dispute rules of the tests: bond 0.1 ETH, juror deposit 0.05, slash 1, challenger 40 % and
 * jurors 20 % of it, a 600 s window, 300 s to commit and to reveal, juries of 3, and an audit
 * sample of every audited record (1 000 000 ppm), so a test's auditor checks what it is shown.
 */
export const TEST_DISPUTE_RULES: DisputeParams = {
  challengeBond: parseEther('0.1'),
  jurorDeposit: parseEther('0.05'),
  slashAmount: parseEther('1'),
  challengerShareBps: 4000,
  jurorShareBps: 2000,
  challengeWindow: 600,
  commitPeriod: 300,
  revealPeriod: 300,
  jurySize: 3,
  auditRatePpm: 1_000_000,
};

export async function startTestChain(): Promise<TestChain> {
  // On a busy machine anvil may be slow to listen: the bound only catches a hang.
  const anvil = await startAnvil({ startTimeoutMs: 120_000 });
  const chain = anvil.chain;
  // Automine: a receipt exists as soon as the transaction is sent, so poll fast.
  // viem's default 10 s per call is short for anvil on a busy machine: the bound only catches a hang.
  const transport = http(anvil.rpcUrl, { timeout: 60_000 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  const testClient = createTestClient({ chain, transport, mode: 'anvil' });
  const key = (i: number) => {
    const k = anvil.privateKeys[i];
    if (k === undefined) throw new Error(`no dev account ${i}`);
    return k;
  };
  const clients = (i: number): ChainClients => ({
    publicClient,
    walletClient: createWalletClient({ account: privateKeyToAccount(key(i)), chain, transport }),
  });
  return {
    anvil,
    publicClient,
    testClient,
    clients,
    address: (i) => privateKeyToAccount(key(i)).address,
    deploy: (disputes) =>
      deployContracts(
        clients(0),
        disputes === undefined
          ? { minStake: MIN_STAKE, unbondingDelay: UNBONDING_DELAY, slasher: privateKeyToAccount(key(SLASHER)).address }
          : { minStake: MIN_STAKE, unbondingDelay: UNBONDING_DELAY, disputes },
      ),
    deployPayments: async (fund = {}) => {
      const payments = await deployPaymentContracts(clients(0));
      for (const [i, amount] of Object.entries(fund)) {
        await mintTestTokens(clients(0), payments.token, privateKeyToAccount(key(Number(i))).address, amount);
      }
      return payments;
    },
    stop: () => anvil.stop(),
  };
}

/** Expects a `VerityError` with `code` and, if given, the contract's custom error name. */
export async function expectRevert(promise: Promise<unknown>, code: string, revert?: string): Promise<unknown[]> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isVerityError(error), String(error)).toBe(true);
  if (!isVerityError(error)) return [];
  expect({ code: error.code, revert: error.details.revert }).toEqual({
    code,
    revert: revert ?? error.details.revert,
  });
  return (error.details.args as unknown[] | undefined) ?? [];
}

/** A deterministic 32-byte value for keys and roots. */
export function fill32(byte: number): `0x${string}` {
  return `0x${byte.toString(16).padStart(2, '0').repeat(32)}`;
}
