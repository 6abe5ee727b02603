/**
 * Paying for answers on chain (issue 15): EIP-3009 authorizations of a stablecoin, their EIP-712
 * digests (what a paid record commits to), and the two ways a node settles them:
 *
 * - `exact` (x402's scheme for a fixed price): the payer signs a TransferWithAuthorization to the
 *   node for the price; the node submits it (`settleExact`) and pays the gas.
 * - `metered` (ours, for language models): the payer signs a ReceiveWithAuthorization of a maximum
 *   to `MeteredSettlement` with nonce `meteredNonce(payee, salt)`; the payee charges the actual
 *   amount and the rest returns to the payer in the same transaction (`settleMetered`).
 *
 * The token is any EIP-3009 token (USDC has both signature forms); `deployPaymentContracts` deploys
 * `TestStablecoin` for local chains. A refusal on chain is a `VerityError` with the contract's own
 * name in `details.revert` and a payment code (`chainError`): `AuthorizationAlreadyUsed` →
 * `PAYMENT_REPLAYED`, `AuthorizationExpired` and `AuthorizationNotYetValid` → `PAYMENT_EXPIRED`,
 * `InvalidSignature` → `PAYMENT_SIGNATURE_INVALID`, `ERC20InsufficientBalance` →
 * `PAYMENT_INSUFFICIENT_FUNDS` (another token's revert strings are `CHAIN_REVERTED`).
 */
import {
  authorizationDigest,
  fail,
  type AuthorizationKind as ProtocolAuthorizationKind,
  meteredNonce as protocolMeteredNonce,
  type VerityError,
} from '@verity/protocol';
import {
  type Address,
  ContractFunctionRevertedError,
  decodeEventLog,
  decodeFunctionResult,
  encodeFunctionData,
  getAddress,
  type Hex,
  isHex,
  type LocalAccount,
  type PublicClient,
  parseSignature,
  type TransactionReceipt,
  toHex,
} from 'viem';
import { chainError } from './chain-error.js';
import { address, bytes32, type ChainClients, read, sendAndConfirm } from './clients.js';
import { deployOne } from './deploy.js';
import { meteredSettlementAbi, meteredSettlementBytecode } from './generated/metered-settlement.js';
import { testStablecoinAbi, testStablecoinBytecode } from './generated/test-stablecoin.js';

/** The EIP-712 domain of an EIP-3009 token (USDC's: name "USD Coin", version "2"). */
export interface TokenDomain {
  readonly name: string;
  readonly version: string;
  readonly chainId: number;
  /** The token's address. */
  readonly verifyingContract: Address;
}

/** An EIP-3009 authorization: `from` lets `value` atomic units go to `to` once, in a time window. */
export interface TransferAuthorization {
  readonly from: Address;
  readonly to: Address;
  readonly value: bigint;
  /** Valid when `validAfter < block.timestamp < validBefore` (unix seconds). */
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  /** 32 random bytes chosen by the payer (for `metered`: `meteredNonce(payee, salt)`). */
  readonly nonce: Hex;
}

/**
 * `transfer`: TransferWithAuthorization, which anyone may submit (x402 `exact`).
 * `receive`: ReceiveWithAuthorization, which only `to` may submit (`metered`, `to` = the settlement contract).
 */
export type AuthorizationKind = ProtocolAuthorizationKind;

/** Where the payment contracts live; a deployment file's optional `payments` member. */
export interface PaymentContracts {
  /** An EIP-3009 token (`TestStablecoin` on a local chain). */
  readonly token: Address;
  /** `MeteredSettlement` (contracts/MeteredSettlement.sol). */
  readonly meteredSettlement: Address;
}

/** EIP-3009's message fields, for signing with viem (the digest itself is `@verity/protocol`'s). */
const AUTHORIZATION_FIELDS = [
  { name: 'from', type: 'address' },
  { name: 'to', type: 'address' },
  { name: 'value', type: 'uint256' },
  { name: 'validAfter', type: 'uint256' },
  { name: 'validBefore', type: 'uint256' },
  { name: 'nonce', type: 'bytes32' },
] as const;
const PRIMARY_TYPE = { transfer: 'TransferWithAuthorization', receive: 'ReceiveWithAuthorization' } as const;

const UINT256_MAX = 2n ** 256n - 1n;

// The token's refusals pass through `MeteredSettlement.settle` unchanged; with the token's errors in
// the ABI, viem names them (`InvalidSignature`, `AuthorizationAlreadyUsed`, …) in `details.revert`.
const meteredCallAbi = [
  ...meteredSettlementAbi,
  ...testStablecoinAbi.filter(
    (item): item is Extract<(typeof testStablecoinAbi)[number], { type: 'error' }> => item.type === 'error',
  ),
];

function checkAuthorization(auth: TransferAuthorization): void {
  address(auth.from, 'authorization.from');
  address(auth.to, 'authorization.to');
  bytes32(auth.nonce, 'authorization.nonce');
  for (const k of ['value', 'validAfter', 'validBefore'] as const) {
    if (typeof auth[k] !== 'bigint' || auth[k] < 0n || auth[k] > UINT256_MAX) {
      fail('INVALID_ARGUMENT', `authorization.${k} must be a uint256`, { field: k });
    }
  }
}

/**
 * The EIP-712 digest of an authorization: keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct),
 * as `@verity/protocol`'s `authorizationDigest` computes it from the type strings of EIP-712 and
 * EIP-3009 (one implementation; viem's `hashTypedData`, an independent one, must agree and the
 * tests check). A paid record commits to it.
 *
 * @example
 * ```ts
 * const digest = transferAuthorizationDigest(domain, { from, to, value: 10_000n, validAfter: 0n, validBefore, nonce });
 * ```
 */
export function transferAuthorizationDigest(
  domain: TokenDomain,
  auth: TransferAuthorization,
  kind: AuthorizationKind = 'transfer',
): Hex {
  checkAuthorization(auth);
  if (!Number.isSafeInteger(domain.chainId) || domain.chainId < 1) {
    fail('INVALID_ARGUMENT', 'domain.chainId must be a positive integer', { chainId: domain.chainId });
  }
  address(domain.verifyingContract, 'domain.verifyingContract');
  const digest = authorizationDigest(
    domain,
    {
      from: auth.from,
      to: auth.to,
      value: auth.value.toString(),
      validAfter: auth.validAfter.toString(),
      validBefore: auth.validBefore.toString(),
      nonce: auth.nonce,
    },
    kind,
  );
  return toHex(digest);
}

/**
 * Signs an authorization as its `from` (EIP-712 typed data): a 65-byte signature r ‖ s ‖ v.
 *
 * @example
 * ```ts
 * const signature = await signTransferAuthorization(payer, domain, auth, 'transfer');
 * ```
 */
export async function signTransferAuthorization(
  account: LocalAccount,
  domain: TokenDomain,
  auth: TransferAuthorization,
  kind: AuthorizationKind = 'transfer',
): Promise<Hex> {
  checkAuthorization(auth);
  if (getAddress(account.address) !== getAddress(auth.from)) {
    fail('INVALID_ARGUMENT', 'the account is not the authorization’s from', {
      account: account.address,
      from: auth.from,
    });
  }
  return account.signTypedData({
    domain: { ...domain },
    types: { [PRIMARY_TYPE[kind]]: AUTHORIZATION_FIELDS },
    primaryType: PRIMARY_TYPE[kind],
    message: { ...auth },
  });
}

/**
 * The nonce a payer signs so that only `payee` can settle a metered authorization:
 * keccak256(abi.encode(payee, salt)), as `MeteredSettlement.nonceFor` (`@verity/protocol`'s
 * `meteredNonce`, typed for viem).
 */
export function meteredNonce(payee: Address, salt: Hex): Hex {
  return protocolMeteredNonce(address(payee, 'payee'), bytes32(salt, 'salt')) as Hex;
}

/** A fresh random 32-byte value: an `exact` authorization's nonce, or a metered salt. */
export function randomBytes32(): Hex {
  return toHex(globalThis.crypto.getRandomValues(new Uint8Array(32)));
}

/** A signature as the token's (v, r, s) overload wants it, when it is a plain 65-byte ECDSA one. */
function splitSignature(signature: Hex): { v: number; r: Hex; s: Hex } | undefined {
  if (!isHex(signature, { strict: true })) fail('INVALID_ARGUMENT', 'signature must be hex', { signature });
  if (signature.length !== 132) return undefined;
  const { r, s, v, yParity } = parseSignature(signature);
  return { v: v === undefined ? yParity + 27 : Number(v), r, s };
}

/**
 * Submits an `exact` authorization (TransferWithAuthorization) from the wallet's account, which
 * pays the gas: `auth.value` moves from `auth.from` to `auth.to`. A 65-byte signature goes to the
 * (v, r, s) form, which every EIP-3009 token has; anything else to the `bytes` form (ERC-1271).
 *
 * @example
 * ```ts
 * const receipt = await settleExact(clients, token, auth, signature);
 * ```
 */
export async function settleExact(
  clients: ChainClients,
  token: Address,
  auth: TransferAuthorization,
  signature: Hex,
): Promise<TransactionReceipt> {
  checkAuthorization(auth);
  const { walletClient } = clients;
  const base = [auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce] as const;
  const split = splitSignature(signature);
  const contract = {
    address: address(token, 'token'),
    abi: testStablecoinAbi,
    functionName: 'transferWithAuthorization',
    account: walletClient.account,
    chain: walletClient.chain,
  } as const;
  return sendAndConfirm(clients, 'transferWithAuthorization', () =>
    split === undefined
      ? walletClient.writeContract({ ...contract, args: [...base, signature] })
      : walletClient.writeContract({ ...contract, args: [...base, split.v, split.r, split.s] }),
  );
}

/** A metered authorization `payee` can settle for `amount`: to the settlement contract, its nonce bound to `payee` and `salt`. */
function checkMetered(payee: Address, settlement: Address, auth: TransferAuthorization, salt: Hex, amount: bigint) {
  if (getAddress(auth.to) !== getAddress(address(settlement, 'settlement'))) {
    fail('INVALID_ARGUMENT', 'a metered authorization must be to the settlement contract', {
      to: auth.to,
      settlement,
    });
  }
  if (auth.nonce.toLowerCase() !== meteredNonce(payee, salt)) {
    fail('INVALID_ARGUMENT', 'the authorization’s nonce does not bind this payee and salt', { payee });
  }
  if (amount < 0n || amount > auth.value) {
    fail('INVALID_ARGUMENT', 'amount must be between 0 and the authorized maximum', {
      amount: amount.toString(),
      maxValue: auth.value.toString(),
    });
  }
}

/**
 * Settles a metered authorization as its payee (the wallet's account): `MeteredSettlement` pulls
 * `auth.value` (the maximum), pays `amount` to the payee and returns the rest to `auth.from`, in
 * one transaction. `auth.to` must be the settlement contract and `auth.nonce` must be
 * `meteredNonce(payee, salt)` (checked here before any gas is spent).
 *
 * @example
 * ```ts
 * const receipt = await settleMetered(clients, settlement, token, auth, salt, signature, 1234n);
 * ```
 */
export async function settleMetered(
  clients: ChainClients,
  settlement: Address,
  token: Address,
  auth: TransferAuthorization,
  salt: Hex,
  signature: Hex,
  amount: bigint,
): Promise<TransactionReceipt> {
  checkAuthorization(auth);
  const { walletClient } = clients;
  checkMetered(walletClient.account.address, settlement, auth, salt, amount);
  if (!isHex(signature, { strict: true })) fail('INVALID_ARGUMENT', 'signature must be hex', { signature });
  return sendAndConfirm(clients, 'settleMetered', () =>
    walletClient.writeContract({
      address: settlement,
      abi: meteredCallAbi,
      functionName: 'settle',
      args: [
        address(token, 'token'),
        auth.from,
        auth.value,
        auth.validAfter,
        auth.validBefore,
        salt,
        signature,
        amount,
      ],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/** One payment of a batch (`settleMany`): an `exact` authorization, or a metered one and its charge. */
export type SettlementItem =
  | { readonly scheme: 'exact'; readonly auth: TransferAuthorization; readonly signature: Hex }
  | {
      readonly scheme: 'metered';
      readonly auth: TransferAuthorization;
      readonly salt: Hex;
      readonly signature: Hex;
      readonly amount: bigint;
    };

/**
 * Whether `item` would settle now if `payee` sent it alone (`settleExact` / `settleMetered`), by an
 * `eth_call` that costs no gas: undefined when it would, else the refusal the transaction would
 * throw (`PAYMENT_REPLAYED`, `PAYMENT_INSUFFICIENT_FUNDS`, …). A batch (`settleMany`) leaves out
 * the items refused here, whose failure would otherwise cost the sender its gas in the batch. An
 * RPC endpoint that does not answer throws `CHAIN_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * const refusal = await simulateSettlement(publicClient, payee, settlement, token, item);
 * ```
 */
export async function simulateSettlement(
  publicClient: PublicClient,
  payee: Address,
  settlement: Address | undefined,
  token: Address,
  item: SettlementItem,
): Promise<VerityError | undefined> {
  const { auth, signature } = item;
  const action = item.scheme === 'metered' ? 'settleMetered' : 'settleExact';
  try {
    if (item.scheme === 'metered') {
      await publicClient.simulateContract({
        address: address(settlement as Address, 'settlement'),
        abi: meteredCallAbi,
        functionName: 'settle',
        args: [
          address(token, 'token'),
          auth.from,
          auth.value,
          auth.validAfter,
          auth.validBefore,
          item.salt,
          signature,
          item.amount,
        ],
        account: payee,
      });
      return undefined;
    }
    const base = [auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce] as const;
    const split = splitSignature(signature);
    const contract = {
      address: address(token, 'token'),
      abi: testStablecoinAbi,
      functionName: 'transferWithAuthorization',
      account: payee,
    } as const;
    await (split === undefined
      ? publicClient.simulateContract({ ...contract, args: [...base, signature] })
      : publicClient.simulateContract({ ...contract, args: [...base, split.v, split.r, split.s] }));
    return undefined;
  } catch (e) {
    const error = chainError(e, action);
    if (error.code === 'CHAIN_UNAVAILABLE') throw error;
    return error;
  }
}

/** What became of each item of a batch, in the order given: settled, or the token's refusal. */
export interface BatchSettlement {
  readonly receipt: TransactionReceipt;
  /** `undefined`: the item settled in `receipt`; otherwise why it did not (nothing moved for it). */
  readonly failures: readonly (VerityError | undefined)[];
}

/**
 * Settles many payments in one transaction through `MeteredSettlement.settleMany` (the wallet's
 * account is the payee of the metered ones and pays the gas). Each item stands alone: one the token
 * refuses is skipped and the others settle; `failures` says which, with the token's refusal as a
 * payment code (`PAYMENT_REPLAYED`, `PAYMENT_INSUFFICIENT_FUNDS`, …) read from the contract's
 * `ExactFailed` / `MeteredFailed` events. Every item is checked as `settleExact` / `settleMetered`
 * check theirs before any gas is spent.
 *
 * @example
 * ```ts
 * const { receipt, failures } = await settleMany(clients, settlement, token, items);
 * ```
 */
export async function settleMany(
  clients: ChainClients,
  settlement: Address,
  token: Address,
  items: readonly SettlementItem[],
): Promise<BatchSettlement> {
  const { walletClient } = clients;
  const exact: { index: number; arg: ExactArg }[] = [];
  const metered: { index: number; arg: MeteredArg }[] = [];
  items.forEach((item, index) => {
    checkAuthorization(item.auth);
    if (!isHex(item.signature, { strict: true })) fail('INVALID_ARGUMENT', 'signature must be hex', { index });
    const { auth } = item;
    if (item.scheme === 'exact') {
      exact.push({ index, arg: { ...auth, signature: item.signature } });
      return;
    }
    checkMetered(walletClient.account.address, settlement, auth, item.salt, item.amount);
    metered.push({
      index,
      arg: {
        from: auth.from,
        maxValue: auth.value,
        validAfter: auth.validAfter,
        validBefore: auth.validBefore,
        salt: item.salt,
        signature: item.signature,
        amount: item.amount,
      },
    });
  });
  const at = address(settlement, 'settlement');
  const receipt = await sendAndConfirm(clients, 'settleMany', () =>
    walletClient.writeContract({
      address: at,
      abi: meteredCallAbi,
      functionName: 'settleMany',
      args: [address(token, 'token'), exact.map((e) => e.arg), metered.map((m) => m.arg)],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
  const failures: (VerityError | undefined)[] = items.map(() => undefined);
  for (const log of receipt.logs) {
    if (getAddress(log.address) !== getAddress(at)) continue;
    let event: ReturnType<typeof decodeEventLog<typeof meteredSettlementAbi>>;
    try {
      event = decodeEventLog({ abi: meteredSettlementAbi, data: log.data, topics: log.topics });
    } catch {
      continue;
    }
    if (event.eventName !== 'ExactFailed' && event.eventName !== 'MeteredFailed') continue;
    const { index, reason } = event.args;
    const item = (event.eventName === 'ExactFailed' ? exact : metered)[Number(index)];
    if (item === undefined) continue;
    failures[item.index] = refusal(reason, event.eventName === 'ExactFailed' ? 'transferWithAuthorization' : 'settle');
  }
  return { receipt, failures };
}

type ExactArg = TransferAuthorization & { readonly signature: Hex };
interface MeteredArg {
  readonly from: Address;
  readonly maxValue: bigint;
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  readonly salt: Hex;
  readonly signature: Hex;
  readonly amount: bigint;
}

/** A batch item's revert data as the `VerityError` a single settlement would have thrown. */
function refusal(data: Hex, functionName: 'transferWithAuthorization' | 'settle'): VerityError {
  return chainError(
    new ContractFunctionRevertedError({ abi: meteredCallAbi, data, functionName }),
    functionName === 'settle' ? 'settleMetered' : 'settleExact',
  );
}

/** Whether `from` has used or cancelled the authorization nonce `nonce` on `token` (EIP-3009 `authorizationState`). */
export async function authorizationUsed(
  publicClient: PublicClient,
  token: Address,
  from: Address,
  nonce: Hex,
): Promise<boolean> {
  return read('authorizationState', () =>
    publicClient.readContract({
      address: address(token, 'token'),
      abi: testStablecoinAbi,
      functionName: 'authorizationState',
      args: [address(from, 'from'), bytes32(nonce, 'nonce')],
    }),
  );
}

/** How many blocks back {@link authorizationOutcome} looks when not told where to start. */
export const SETTLEMENT_LOOKBACK_BLOCKS = 10_000n;

/**
 * What the chain says became of an authorization: `paid` (the money moved under it to the payee),
 * `cancelled` (the payer burnt its nonce: nothing moved), or `unknown` (no event of either).
 */
export type AuthorizationOutcome = 'paid' | 'cancelled' | 'unknown';

/**
 * The outcome of `from`'s authorization `nonce` on `token`, from the chain's events (not
 * `authorizationState`, which is true for a cancelled nonce as for a used one): an
 * `AuthorizationCanceled(from, nonce)` on the token is `cancelled`; otherwise, for an `exact`
 * authorization (its `to` is the payee, signed), the token's `AuthorizationUsed(from, nonce)` is
 * `paid`, and for a `metered` one (its `to` is the settlement contract) a `MeteredSettled(token,
 * from, payee)` naming `nonce` on `metered.settlement` is. Logs are read by their indexed topics
 * from `fromBlock` (default: {@link SETTLEMENT_LOOKBACK_BLOCKS} before the latest block, or the
 * genesis on a younger chain) to the latest.
 *
 * @example
 * ```ts
 * if ((await authorizationOutcome(publicClient, { token, from, nonce })) === 'paid') { … }
 * ```
 */
export async function authorizationOutcome(
  publicClient: PublicClient,
  args: {
    readonly token: Address;
    readonly from: Address;
    readonly nonce: Hex;
    readonly metered?: { readonly settlement: Address; readonly payee: Address };
    readonly fromBlock?: bigint;
  },
): Promise<AuthorizationOutcome> {
  const token = address(args.token, 'token');
  const from = address(args.from, 'from');
  const nonce = bytes32(args.nonce, 'nonce');
  return read('authorizationOutcome', async () => {
    let fromBlock = args.fromBlock;
    if (fromBlock === undefined) {
      const latest = await publicClient.getBlockNumber();
      fromBlock = latest > SETTLEMENT_LOOKBACK_BLOCKS ? latest - SETTLEMENT_LOOKBACK_BLOCKS : 0n;
    }
    const onToken = { address: token, abi: testStablecoinAbi, args: { authorizer: from, nonce }, fromBlock } as const;
    const cancelled = await publicClient.getContractEvents({ ...onToken, eventName: 'AuthorizationCanceled' });
    if (cancelled.length > 0) return 'cancelled';
    if (args.metered === undefined) {
      const used = await publicClient.getContractEvents({ ...onToken, eventName: 'AuthorizationUsed' });
      return used.length > 0 ? 'paid' : 'unknown';
    }
    const settled = await publicClient.getContractEvents({
      address: address(args.metered.settlement, 'settlement'),
      abi: meteredSettlementAbi,
      eventName: 'MeteredSettled',
      args: { token, from, payee: address(args.metered.payee, 'payee') },
      fromBlock,
    });
    return settled.some((e) => e.args.nonce?.toLowerCase() === nonce.toLowerCase()) ? 'paid' : 'unknown';
  });
}

/** ERC-1271's one function, and its "valid" answer bytes4(keccak256("isValidSignature(bytes32,bytes)")). */
const ERC1271_ABI = [
  {
    type: 'function',
    name: 'isValidSignature',
    stateMutability: 'view',
    inputs: [
      { name: 'hash', type: 'bytes32' },
      { name: 'signature', type: 'bytes' },
    ],
    outputs: [{ name: '', type: 'bytes4' }],
  },
] as const;
const ERC1271_MAGIC = '0x1626ba7e';
/** The most gas an `isValidSignature` call is given. */
const ERC1271_GAS = 500_000n;

/**
 * Whether the contract account `signer` says `signature` over `digest` is its own (ERC-1271
 * `isValidSignature`), as an EIP-3009 token with contract-wallet support (USDC v2.2, TestStablecoin)
 * decides it: false for an account without code, a call that reverts, or any answer but the magic
 * value. An RPC endpoint that does not answer throws `CHAIN_UNAVAILABLE`.
 *
 * @example
 * ```ts
 * if (await erc1271Valid(publicClient, auth.from, digest, signature)) { … }
 * ```
 */
export async function erc1271Valid(
  publicClient: PublicClient,
  signer: Address,
  digest: Hex,
  signature: Hex,
): Promise<boolean> {
  const at = address(signer, 'signer');
  const code = await read('getCode', () => publicClient.getCode({ address: at }));
  if (code === undefined || code === '0x') return false;
  try {
    // A wallet's check is bounded as the token's own call of it (MeteredSettlement.ITEM_GAS): a
    // contract that burns gas costs the node's RPC endpoint no more than that.
    const { data } = await publicClient.call({
      to: at,
      gas: ERC1271_GAS,
      data: encodeFunctionData({
        abi: ERC1271_ABI,
        functionName: 'isValidSignature',
        args: [bytes32(digest, 'digest'), signature],
      }),
    });
    if (data === undefined) return false;
    const answer = decodeFunctionResult({ abi: ERC1271_ABI, functionName: 'isValidSignature', data });
    return answer.toLowerCase() === ERC1271_MAGIC;
  } catch (e) {
    const error = chainError(e, 'isValidSignature');
    if (error.code === 'CHAIN_UNAVAILABLE') throw error;
    return false;
  }
}

/** The token balance of `owner`, in atomic units. */
export async function tokenBalance(publicClient: PublicClient, token: Address, owner: Address): Promise<bigint> {
  return read('balanceOf', () =>
    publicClient.readContract({
      address: address(token, 'token'),
      abi: testStablecoinAbi,
      functionName: 'balanceOf',
      args: [address(owner, 'owner')],
    }),
  );
}

/** The EIP-712 domain of a token, read from its `name()` and `version()` and the chain's id. */
export async function getTokenDomain(publicClient: PublicClient, token: Address): Promise<TokenDomain> {
  const contract = { address: address(token, 'token'), abi: testStablecoinAbi } as const;
  const [name, version, chainId] = await read('tokenDomain', () =>
    Promise.all([
      publicClient.readContract({ ...contract, functionName: 'name' }),
      publicClient.readContract({ ...contract, functionName: 'version' }),
      publicClient.getChainId(),
    ]),
  );
  return { name, version, chainId, verifyingContract: getAddress(token) };
}

/**
 * Deploys `TestStablecoin` (the wallet's account becomes its minter) and `MeteredSettlement`.
 *
 * @example
 * ```ts
 * const { token, meteredSettlement } = await deployPaymentContracts(clients);
 * ```
 */
export async function deployPaymentContracts(clients: ChainClients): Promise<PaymentContracts> {
  const token = await deployOne(clients, 'TestStablecoin', testStablecoinAbi, testStablecoinBytecode, []);
  const settlement = await deployOne(clients, 'MeteredSettlement', meteredSettlementAbi, meteredSettlementBytecode, []);
  return { token: token.address, meteredSettlement: settlement.address };
}

/** Mints `amount` atomic units of `TestStablecoin` to `to` (its deployer only). */
export async function mintTestTokens(
  clients: ChainClients,
  token: Address,
  to: Address,
  amount: bigint,
): Promise<TransactionReceipt> {
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'mint', () =>
    walletClient.writeContract({
      address: address(token, 'token'),
      abi: testStablecoinAbi,
      functionName: 'mint',
      args: [address(to, 'to'), amount],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}
