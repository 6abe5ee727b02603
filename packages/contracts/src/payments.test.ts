import {
  type Address,
  encodeAbiParameters,
  type Hex,
  hashDomain,
  hashTypedData,
  keccak256,
  type LocalAccount,
  parseEventLogs,
  parseSignature,
  recoverAddress,
  serializeSignature,
  toHex,
} from 'viem';
import { type PrivateKeyAccount, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { deployOne } from './deploy.js';
import { erc1271WalletHarnessAbi, erc1271WalletHarnessBytecode } from './generated/erc1271-wallet-harness.js';
import { gasBurningWalletHarnessAbi, gasBurningWalletHarnessBytecode } from './generated/gas-burning-wallet-harness.js';
import { meteredSettlementAbi } from './generated/metered-settlement.js';
import { testStablecoinAbi } from './generated/test-stablecoin.js';
import {
  authorizationOutcome,
  authorizationUsed,
  erc1271Valid,
  getTokenDomain,
  meteredNonce,
  mintTestTokens,
  type PaymentContracts,
  randomBytes32,
  type SettlementItem,
  settleExact,
  settleMany,
  settleMetered,
  signTransferAuthorization,
  simulateSettlement,
  type TokenDomain,
  type TransferAuthorization,
  tokenBalance,
  transferAuthorizationDigest,
} from './payments.js';
import { expectRevert, startTestChain, type TestChain } from './test-support/chain.js';

// The type hashes as EIP-3009 and EIP-2612 print them (and USDC's FiatTokenV2 has them as
// constants): an independent source for the type strings in the contract and in payments.ts.
const EIP3009_TRANSFER_TYPEHASH = '0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267';
const EIP3009_RECEIVE_TYPEHASH = '0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8';
const EIP3009_CANCEL_TYPEHASH = '0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429';
const EIP2612_PERMIT_TYPEHASH = '0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9';
/** secp256k1's group order: s and n − s both verify, only the low one is accepted (EIP-2). */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const PAYER = 1;
const NODE = 2;
const STRANGER = 3;
const FUNDS = 1_000_000_000n; // 1000 vUSD

let chain: TestChain;
let contracts: PaymentContracts;
let domain: TokenDomain;
let payer: PrivateKeyAccount;
let stranger: PrivateKeyAccount;

const account = (i: number) => {
  const key = chain.anvil.privateKeys[i];
  if (key === undefined) throw new Error(`no dev account ${i}`);
  return privateKeyToAccount(key);
};

beforeAll(async () => {
  chain = await startTestChain();
  payer = account(PAYER);
  stranger = account(STRANGER);
});
afterAll(() => chain.stop());
beforeEach(async () => {
  contracts = await chain.deployPayments({ [PAYER]: FUNDS });
  domain = await getTokenDomain(chain.publicClient, contracts.token);
});

const token = () => ({ address: contracts.token, abi: testStablecoinAbi }) as const;
const balance = (who: Address) => tokenBalance(chain.publicClient, contracts.token, who);
const now = async () => (await chain.publicClient.getBlock()).timestamp;

/** An authorization from the payer to the node, valid for the next hour. */
async function authorization(overrides: Partial<TransferAuthorization> = {}): Promise<TransferAuthorization> {
  return {
    from: payer.address,
    to: chain.address(NODE),
    value: 10_000n,
    validAfter: 0n,
    validBefore: (await now()) + 3600n,
    nonce: randomBytes32(),
    ...overrides,
  };
}

/** Signs as `signer` whatever `auth` says, even when `signer` is not `auth.from` (forgeries). */
function signAs(
  signer: LocalAccount,
  auth: TransferAuthorization,
  kind: 'transfer' | 'receive' = 'transfer',
  onDomain: TokenDomain = domain,
) {
  const primaryType = kind === 'transfer' ? 'TransferWithAuthorization' : 'ReceiveWithAuthorization';
  return signer.signTypedData({
    domain: onDomain,
    types: {
      [primaryType]: [
        { name: 'from', type: 'address' },
        { name: 'to', type: 'address' },
        { name: 'value', type: 'uint256' },
        { name: 'validAfter', type: 'uint256' },
        { name: 'validBefore', type: 'uint256' },
        { name: 'nonce', type: 'bytes32' },
      ],
    },
    primaryType,
    message: { ...auth },
  });
}

async function write(
  by: number,
  call: Parameters<ReturnType<TestChain['clients']>['walletClient']['writeContract']>[0],
) {
  const { walletClient, publicClient } = chain.clients(by);
  const hash = await walletClient.writeContract(call);
  return publicClient.waitForTransactionReceipt({ hash });
}

describe('TestStablecoin: the EIP-712 domain and type hashes', () => {
  it('has the type hashes of EIP-3009 and EIP-2612', async () => {
    const read = (functionName: 'TRANSFER_WITH_AUTHORIZATION_TYPEHASH') =>
      chain.publicClient.readContract({ ...token(), functionName });
    expect(await read('TRANSFER_WITH_AUTHORIZATION_TYPEHASH')).toBe(EIP3009_TRANSFER_TYPEHASH);
    expect(
      await chain.publicClient.readContract({ ...token(), functionName: 'RECEIVE_WITH_AUTHORIZATION_TYPEHASH' }),
    ).toBe(EIP3009_RECEIVE_TYPEHASH);
    expect(await chain.publicClient.readContract({ ...token(), functionName: 'CANCEL_AUTHORIZATION_TYPEHASH' })).toBe(
      EIP3009_CANCEL_TYPEHASH,
    );
    expect(await chain.publicClient.readContract({ ...token(), functionName: 'PERMIT_TYPEHASH' })).toBe(
      EIP2612_PERMIT_TYPEHASH,
    );
  });

  it('is "Verity Test USD" version 1 with 6 decimals, and its domain separator is viem’s', async () => {
    expect(domain).toEqual({
      name: 'Verity Test USD',
      version: '1',
      chainId: chain.anvil.chain.id,
      verifyingContract: contracts.token,
    });
    expect(await chain.publicClient.readContract({ ...token(), functionName: 'decimals' })).toBe(6);
    expect(await chain.publicClient.readContract({ ...token(), functionName: 'DOMAIN_SEPARATOR' })).toBe(
      hashDomain({
        domain: { ...domain, chainId: BigInt(domain.chainId) },
        types: {
          EIP712Domain: [
            { name: 'name', type: 'string' },
            { name: 'version', type: 'string' },
            { name: 'chainId', type: 'uint256' },
            { name: 'verifyingContract', type: 'address' },
          ],
        },
      }),
    );
  });

  it('computes the digest of an authorization as viem’s hashTypedData does, for both kinds', async () => {
    const auth = await authorization();
    for (const kind of ['transfer', 'receive'] as const) {
      const primaryType = kind === 'transfer' ? 'TransferWithAuthorization' : 'ReceiveWithAuthorization';
      const digest = transferAuthorizationDigest(domain, auth, kind);
      expect(digest).toBe(
        hashTypedData({
          domain,
          types: {
            [primaryType]: [
              { name: 'from', type: 'address' },
              { name: 'to', type: 'address' },
              { name: 'value', type: 'uint256' },
              { name: 'validAfter', type: 'uint256' },
              { name: 'validBefore', type: 'uint256' },
              { name: 'nonce', type: 'bytes32' },
            ],
          },
          primaryType,
          message: { ...auth },
        }),
      );
      // What signTransferAuthorization signs is that digest.
      const signature = await signTransferAuthorization(payer, domain, auth, kind);
      expect(await recoverAddress({ hash: digest, signature })).toBe(payer.address);
    }
    // The two kinds, and any change of a field or of the domain, give another digest.
    const base = transferAuthorizationDigest(domain, auth);
    expect(transferAuthorizationDigest(domain, auth, 'receive')).not.toBe(base);
    expect(transferAuthorizationDigest(domain, { ...auth, value: auth.value + 1n })).not.toBe(base);
    expect(transferAuthorizationDigest({ ...domain, chainId: 1 }, auth)).not.toBe(base);
    expect(transferAuthorizationDigest({ ...domain, verifyingContract: chain.address(9) }, auth)).not.toBe(base);
  });

  it('refuses malformed authorizations, and signing for another account', async () => {
    const auth = await authorization();
    const cases: [string, TransferAuthorization][] = [
      ['short nonce', { ...auth, nonce: '0x1234' }],
      ['negative value', { ...auth, value: -1n }],
      ['value above uint256', { ...auth, value: 2n ** 256n }],
      ['bad address', { ...auth, to: '0x12' as Address }],
    ];
    for (const [what, bad] of cases) {
      expect(() => transferAuthorizationDigest(domain, bad), what).toThrow(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
    await expect(signTransferAuthorization(stranger, domain, auth)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('settleExact (EIP-3009 transferWithAuthorization)', () => {
  it('moves exactly the value from the payer to the payee, and uses the nonce', async () => {
    const auth = await authorization({ value: 123_456n });
    const signature = await signTransferAuthorization(payer, domain, auth);
    expect(await authorizationUsed(chain.publicClient, contracts.token, payer.address, auth.nonce)).toBe(false);
    const receipt = await settleExact(chain.clients(NODE), contracts.token, auth, signature);
    expect(await balance(payer.address)).toBe(FUNDS - 123_456n);
    expect(await balance(chain.address(NODE))).toBe(123_456n);
    expect(await authorizationUsed(chain.publicClient, contracts.token, payer.address, auth.nonce)).toBe(true);
    const events = parseEventLogs({ abi: testStablecoinAbi, logs: receipt.logs });
    expect(events.map((e) => [e.eventName, e.args])).toEqual([
      ['AuthorizationUsed', { authorizer: payer.address, nonce: auth.nonce }],
      ['Transfer', { from: payer.address, to: chain.address(NODE), value: 123_456n }],
    ]);
  });

  it('accepts anyone as submitter, and the bytes-signature form', async () => {
    const auth = await authorization();
    const signature = await signTransferAuthorization(payer, domain, auth);
    await write(STRANGER, {
      ...token(),
      functionName: 'transferWithAuthorization',
      args: [auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, signature],
      account: stranger,
      chain: chain.anvil.chain,
    });
    expect(await balance(chain.address(NODE))).toBe(auth.value);
  });

  it('refuses a replayed nonce, with balances unchanged', async () => {
    const auth = await authorization();
    const signature = await signTransferAuthorization(payer, domain, auth);
    await settleExact(chain.clients(NODE), contracts.token, auth, signature);
    const args = await expectRevert(
      settleExact(chain.clients(NODE), contracts.token, auth, signature),
      'PAYMENT_REPLAYED',
      'AuthorizationAlreadyUsed',
    );
    expect(args).toEqual([payer.address, auth.nonce]);
    // The same nonce with another value and a fresh signature is refused too: nonces are per authorizer.
    const other = { ...auth, value: 1n };
    await expectRevert(
      settleExact(chain.clients(NODE), contracts.token, other, await signTransferAuthorization(payer, domain, other)),
      'PAYMENT_REPLAYED',
      'AuthorizationAlreadyUsed',
    );
    expect(await balance(payer.address)).toBe(FUNDS - auth.value);
  });

  it('refuses an expired authorization and one not valid yet; the latter settles once its time comes', async () => {
    const t = await now();
    const expired = await authorization({ validBefore: t });
    await expectRevert(
      settleExact(
        chain.clients(NODE),
        contracts.token,
        expired,
        await signTransferAuthorization(payer, domain, expired),
      ),
      'PAYMENT_EXPIRED',
      'AuthorizationExpired',
    );
    const early = await authorization({ validAfter: t + 600n, validBefore: t + 3600n });
    const signature = await signTransferAuthorization(payer, domain, early);
    await expectRevert(
      settleExact(chain.clients(NODE), contracts.token, early, signature),
      'PAYMENT_EXPIRED',
      'AuthorizationNotYetValid',
    );
    expect(await balance(payer.address)).toBe(FUNDS);
    await chain.testClient.increaseTime({ seconds: 601 });
    await chain.testClient.mine({ blocks: 1 });
    await settleExact(chain.clients(NODE), contracts.token, early, signature);
    expect(await balance(chain.address(NODE))).toBe(early.value);
  });

  it('refuses forged and tampered signatures (InvalidSignature), with balances unchanged', async () => {
    const auth = await authorization();
    const good = await signTransferAuthorization(payer, domain, auth);
    const { r, s, yParity } = parseSignature(good);
    const highS = serializeSignature({
      r,
      s: toHex(SECP256K1_N - BigInt(s), { size: 32 }),
      yParity: 1 - yParity,
    });
    // Each: a signature that must not move the payer's money.
    const forgeries: [string, TransferAuthorization, Hex][] = [
      ['signed by another account', auth, await signAs(stranger, auth)],
      ['signed for a smaller value', { ...auth, value: auth.value + 1n }, good],
      ['signed to another payee', { ...auth, to: chain.address(STRANGER) }, good],
      ['signed for a shorter window', { ...auth, validBefore: auth.validBefore + 1n }, good],
      ['a ReceiveWithAuthorization, not a Transfer', auth, await signAs(payer, auth, 'receive')],
      ['the malleable high-s twin of a valid signature', auth, highS],
      ['64 bytes', auth, good.slice(0, 130) as Hex],
      ['signed for another chain', auth, await signAs(payer, auth, 'transfer', { ...domain, chainId: 1 })],
      [
        'signed for another token',
        auth,
        await signAs(payer, auth, 'transfer', { ...domain, verifyingContract: chain.address(9) }),
      ],
    ];
    for (const [what, a, signature] of forgeries) {
      const refused = settleExact(chain.clients(NODE), contracts.token, a, signature);
      expect(await expectRevert(refused, 'PAYMENT_SIGNATURE_INVALID', 'InvalidSignature'), what).toEqual([]);
    }
    expect(await balance(payer.address)).toBe(FUNDS);
    // The genuine one still works afterwards: the failures did not burn the nonce.
    await settleExact(chain.clients(NODE), contracts.token, auth, good);
    expect(await balance(chain.address(NODE))).toBe(auth.value);
  });

  it('refuses more than the payer has (ERC20InsufficientBalance)', async () => {
    const auth = await authorization({ value: FUNDS + 1n });
    await expectRevert(
      settleExact(chain.clients(NODE), contracts.token, auth, await signTransferAuthorization(payer, domain, auth)),
      'PAYMENT_INSUFFICIENT_FUNDS',
      'ERC20InsufficientBalance',
    );
  });
});

describe('cancelAuthorization and receiveWithAuthorization', () => {
  async function signCancel(signer: LocalAccount, authorizer: Address, nonce: Hex) {
    return signer.signTypedData({
      domain,
      types: {
        CancelAuthorization: [
          { name: 'authorizer', type: 'address' },
          { name: 'nonce', type: 'bytes32' },
        ],
      },
      primaryType: 'CancelAuthorization',
      message: { authorizer, nonce },
    });
  }

  it('lets the payer cancel an unused authorization, after which it cannot settle', async () => {
    const auth = await authorization();
    const signature = await signTransferAuthorization(payer, domain, auth);
    const cancel = (by: LocalAccount) => signCancel(by, payer.address, auth.nonce);
    // A stranger's cancellation of the payer's nonce is refused.
    const { r: fr, s: fs, v: fv } = parseSignature(await cancel(stranger));
    await expect(
      write(STRANGER, {
        ...token(),
        functionName: 'cancelAuthorization',
        args: [payer.address, auth.nonce, Number(fv), fr, fs],
        account: stranger,
        chain: chain.anvil.chain,
      }),
    ).rejects.toThrow(/InvalidSignature/);
    // The payer's, submitted by anyone (here the stranger), with the bytes form.
    const receipt = await write(STRANGER, {
      ...token(),
      functionName: 'cancelAuthorization',
      args: [payer.address, auth.nonce, await cancel(payer)],
      account: stranger,
      chain: chain.anvil.chain,
    });
    expect(parseEventLogs({ abi: testStablecoinAbi, logs: receipt.logs }).map((e) => e.eventName)).toEqual([
      'AuthorizationCanceled',
    ]);
    expect(await authorizationUsed(chain.publicClient, contracts.token, payer.address, auth.nonce)).toBe(true);
    // The nonce's state reads "used", but its events say nothing was paid under it.
    const outcome = { token: contracts.token, from: payer.address, nonce: auth.nonce };
    expect(await authorizationOutcome(chain.publicClient, outcome)).toBe('cancelled');
    await expectRevert(
      settleExact(chain.clients(NODE), contracts.token, auth, signature),
      'PAYMENT_REPLAYED',
      'AuthorizationAlreadyUsed',
    );
    // A used (here: cancelled) nonce cannot be cancelled again.
    const { r, s, v } = parseSignature(await cancel(payer));
    await expect(
      write(PAYER, {
        ...token(),
        functionName: 'cancelAuthorization',
        args: [payer.address, auth.nonce, Number(v), r, s],
        account: payer,
        chain: chain.anvil.chain,
      }),
    ).rejects.toThrow(/AuthorizationAlreadyUsed/);
    expect(await balance(payer.address)).toBe(FUNDS);
  });

  it('lets only the payee submit a ReceiveWithAuthorization', async () => {
    const auth = await authorization();
    const signature = await signTransferAuthorization(payer, domain, auth, 'receive');
    const { r, s, v } = parseSignature(signature);
    const receive = (by: number, from: LocalAccount) =>
      write(by, {
        ...token(),
        functionName: 'receiveWithAuthorization',
        args: [auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, Number(v), r, s],
        account: from,
        chain: chain.anvil.chain,
      });
    await expect(receive(STRANGER, stranger)).rejects.toThrow(/CallerNotPayee/);
    // Nor can anyone turn it into a plain transfer: the signed type differs.
    await expectRevert(
      settleExact(chain.clients(STRANGER), contracts.token, auth, signature),
      'PAYMENT_SIGNATURE_INVALID',
      'InvalidSignature',
    );
    expect(await balance(payer.address)).toBe(FUNDS);
    const outcome = { token: contracts.token, from: payer.address, nonce: auth.nonce };
    expect(await authorizationOutcome(chain.publicClient, outcome)).toBe('unknown');
    await receive(NODE, account(NODE));
    expect(await balance(chain.address(NODE))).toBe(auth.value);
    expect(await authorizationOutcome(chain.publicClient, outcome)).toBe('paid');
    await expect(receive(NODE, account(NODE))).rejects.toThrow(/AuthorizationAlreadyUsed/);
  });
});

describe('ERC-20, EIP-2612 permit and minting', () => {
  async function signPermit(owner: LocalAccount, spender: Address, value: bigint, nonce: bigint, deadline: bigint) {
    return parseSignature(
      await owner.signTypedData({
        domain,
        types: {
          Permit: [
            { name: 'owner', type: 'address' },
            { name: 'spender', type: 'address' },
            { name: 'value', type: 'uint256' },
            { name: 'nonce', type: 'uint256' },
            { name: 'deadline', type: 'uint256' },
          ],
        },
        primaryType: 'Permit',
        message: { owner: owner.address, spender, value, nonce, deadline },
      }),
    );
  }

  it('sets an allowance on a signed permit once, then transferFrom spends it', async () => {
    const spender = chain.address(NODE);
    const deadline = (await now()) + 3600n;
    const { r, s, v } = await signPermit(payer, spender, 5_000n, 0n, deadline);
    const permit = (args: readonly [Address, Address, bigint, bigint, number, Hex, Hex]) =>
      write(STRANGER, { ...token(), functionName: 'permit', args, account: stranger, chain: chain.anvil.chain });
    await permit([payer.address, spender, 5_000n, deadline, Number(v), r, s]);
    expect(
      await chain.publicClient.readContract({ ...token(), functionName: 'allowance', args: [payer.address, spender] }),
    ).toBe(5_000n);
    expect(await chain.publicClient.readContract({ ...token(), functionName: 'nonces', args: [payer.address] })).toBe(
      1n,
    );
    // Replayed: the nonce moved on, so the signature no longer matches.
    await expect(permit([payer.address, spender, 5_000n, deadline, Number(v), r, s])).rejects.toThrow(
      /InvalidSignature/,
    );
    // Another owner's signature, and an expired deadline.
    const forged = await signPermit(stranger, spender, 5_000n, 1n, deadline);
    await expect(
      permit([payer.address, spender, 5_000n, deadline, Number(forged.v), forged.r, forged.s]),
    ).rejects.toThrow(/InvalidSignature/);
    const past = (await now()) - 1n;
    const late = await signPermit(payer, spender, 5_000n, 1n, past);
    await expect(permit([payer.address, spender, 5_000n, past, Number(late.v), late.r, late.s])).rejects.toThrow(
      /PermitExpired/,
    );
    await write(NODE, {
      ...token(),
      functionName: 'transferFrom',
      args: [payer.address, spender, 5_000n],
      account: account(NODE),
      chain: chain.anvil.chain,
    });
    expect(await balance(spender)).toBe(5_000n);
    await expect(
      write(NODE, {
        ...token(),
        functionName: 'transferFrom',
        args: [payer.address, spender, 1n],
        account: account(NODE),
        chain: chain.anvil.chain,
      }),
    ).rejects.toThrow(/ERC20InsufficientAllowance/);
  });

  it('mints for the deployer only', async () => {
    await expectRevert(
      mintTestTokens(chain.clients(STRANGER), contracts.token, stranger.address, 1n),
      'UNAUTHORIZED',
      'NotMinter',
    );
    expect(await chain.publicClient.readContract({ ...token(), functionName: 'totalSupply' })).toBe(FUNDS);
  });
});

describe('MeteredSettlement', () => {
  const MAX = 50_000n;
  const payee = () => chain.address(NODE);

  /** The payer's ReceiveWithAuthorization of MAX to the settlement contract, bound to `boundTo` by its nonce. */
  async function meteredAuthorization(boundTo: Address = payee()) {
    const salt = randomBytes32();
    const auth = await authorization({
      to: contracts.meteredSettlement,
      value: MAX,
      nonce: meteredNonce(boundTo, salt),
    });
    return { auth, salt, signature: await signTransferAuthorization(payer, domain, auth, 'receive') };
  }

  /** `settle` sent straight to the contract (no checks in payments.ts on the way). */
  function rawSettle(by: number, m: Awaited<ReturnType<typeof meteredAuthorization>>, amount: bigint) {
    const { auth, salt, signature } = m;
    return write(by, {
      address: contracts.meteredSettlement,
      abi: [...meteredSettlementAbi, ...testStablecoinAbi.filter((x) => x.type === 'error')],
      functionName: 'settle',
      args: [contracts.token, auth.from, auth.value, auth.validAfter, auth.validBefore, salt, signature, amount],
      account: account(by),
      chain: chain.anvil.chain,
    });
  }

  it('binds the payee by the nonce: keccak256(abi.encode(payee, salt)), as the contract computes it', async () => {
    const salt = randomBytes32();
    const expected = keccak256(encodeAbiParameters([{ type: 'address' }, { type: 'bytes32' }], [payee(), salt]));
    expect(meteredNonce(payee(), salt)).toBe(expected);
    expect(
      await chain.publicClient.readContract({
        address: contracts.meteredSettlement,
        abi: meteredSettlementAbi,
        functionName: 'nonceFor',
        args: [payee(), salt],
      }),
    ).toBe(expected);
    expect(meteredNonce(chain.address(STRANGER), salt)).not.toBe(expected);
  });

  it('charges the amount, refunds the rest to the payer, in one transaction, and says so', async () => {
    const m = await meteredAuthorization();
    const receipt = await settleMetered(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      m.auth,
      m.salt,
      m.signature,
      12_345n,
    );
    expect(await balance(payer.address)).toBe(FUNDS - 12_345n);
    expect(await balance(payee())).toBe(12_345n);
    expect(await balance(contracts.meteredSettlement)).toBe(0n);
    expect(await authorizationUsed(chain.publicClient, contracts.token, payer.address, m.auth.nonce)).toBe(true);
    const outcome = { token: contracts.token, from: payer.address, nonce: m.auth.nonce };
    const to = (payee: Address) => ({ ...outcome, metered: { settlement: contracts.meteredSettlement, payee } });
    expect(await authorizationOutcome(chain.publicClient, to(payee()))).toBe('paid');
    // Paid, but not to another payee.
    expect(await authorizationOutcome(chain.publicClient, to(chain.address(STRANGER)))).toBe('unknown');
    const [settled] = parseEventLogs({ abi: meteredSettlementAbi, logs: receipt.logs, eventName: 'MeteredSettled' });
    expect(settled?.args).toEqual({
      token: contracts.token,
      from: payer.address,
      payee: payee(),
      nonce: m.auth.nonce,
      maxValue: MAX,
      amount: 12_345n,
    });
    // The token's own record of the same transaction: in, out to the payee, back to the payer.
    const transfers = parseEventLogs({ abi: testStablecoinAbi, logs: receipt.logs, eventName: 'Transfer' });
    expect(transfers.map((t) => [t.args.from, t.args.to, t.args.value])).toEqual([
      [payer.address, contracts.meteredSettlement, MAX],
      [contracts.meteredSettlement, payee(), 12_345n],
      [contracts.meteredSettlement, payer.address, MAX - 12_345n],
    ]);
  });

  it('charges all of the maximum, or nothing (the payer gets it all back)', async () => {
    const all = await meteredAuthorization();
    await settleMetered(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      all.auth,
      all.salt,
      all.signature,
      MAX,
    );
    expect(await balance(payee())).toBe(MAX);
    const none = await meteredAuthorization();
    await settleMetered(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      none.auth,
      none.salt,
      none.signature,
      0n,
    );
    expect(await balance(payee())).toBe(MAX);
    expect(await balance(payer.address)).toBe(FUNDS - MAX);
    expect(await authorizationUsed(chain.publicClient, contracts.token, payer.address, none.auth.nonce)).toBe(true);
  });

  it('refuses an amount above the maximum', async () => {
    const m = await meteredAuthorization();
    await expectRevert(
      settleMetered(
        chain.clients(NODE),
        contracts.meteredSettlement,
        contracts.token,
        m.auth,
        m.salt,
        m.signature,
        MAX + 1n,
      ),
      'INVALID_ARGUMENT',
    );
    await expect(rawSettle(NODE, m, MAX + 1n)).rejects.toThrow(/AmountAboveMax/);
    expect(await balance(payer.address)).toBe(FUNDS);
  });

  it('refuses anyone but the bound payee, even for amount 0 (which would only refund)', async () => {
    const m = await meteredAuthorization();
    // payments.ts refuses before spending gas; the contract refuses too: the stranger's address
    // gives another nonce, which the payer never signed.
    await expectRevert(
      settleMetered(
        chain.clients(STRANGER),
        contracts.meteredSettlement,
        contracts.token,
        m.auth,
        m.salt,
        m.signature,
        0n,
      ),
      'INVALID_ARGUMENT',
    );
    await expect(rawSettle(STRANGER, m, 0n)).rejects.toThrow(/InvalidSignature/);
    await expect(rawSettle(STRANGER, m, MAX)).rejects.toThrow(/InvalidSignature/);
    // Nor may anyone submit the authorization to the token themselves: only its `to` (the contract) may.
    const { r, s, v } = parseSignature(m.signature);
    const { auth } = m;
    await expect(
      write(STRANGER, {
        ...token(),
        functionName: 'receiveWithAuthorization',
        args: [auth.from, auth.to, auth.value, auth.validAfter, auth.validBefore, auth.nonce, Number(v), r, s],
        account: stranger,
        chain: chain.anvil.chain,
      }),
    ).rejects.toThrow(/CallerNotPayee/);
    expect(await balance(payer.address)).toBe(FUNDS);
    // The payee still can.
    await settleMetered(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      m.auth,
      m.salt,
      m.signature,
      1n,
    );
    expect(await balance(payee())).toBe(1n);
  });

  it('refuses a second settlement of the same authorization, and an expired one', async () => {
    const m = await meteredAuthorization();
    await settleMetered(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      m.auth,
      m.salt,
      m.signature,
      10n,
    );
    await expectRevert(
      settleMetered(
        chain.clients(NODE),
        contracts.meteredSettlement,
        contracts.token,
        m.auth,
        m.salt,
        m.signature,
        10n,
      ),
      'PAYMENT_REPLAYED',
      'AuthorizationAlreadyUsed',
    );
    const salt = randomBytes32();
    const expired = await authorization({
      to: contracts.meteredSettlement,
      value: MAX,
      nonce: meteredNonce(payee(), salt),
      validBefore: await now(),
    });
    await expectRevert(
      settleMetered(
        chain.clients(NODE),
        contracts.meteredSettlement,
        contracts.token,
        expired,
        salt,
        await signTransferAuthorization(payer, domain, expired, 'receive'),
        10n,
      ),
      'PAYMENT_EXPIRED',
      'AuthorizationExpired',
    );
    expect(await balance(payer.address)).toBe(FUNDS - 10n);
  });

  it('refuses a maximum above the payer’s balance, and an exact-scheme (Transfer) signature', async () => {
    const salt = randomBytes32();
    const big = await authorization({
      to: contracts.meteredSettlement,
      value: FUNDS + 1n,
      nonce: meteredNonce(payee(), salt),
    });
    await expectRevert(
      settleMetered(
        chain.clients(NODE),
        contracts.meteredSettlement,
        contracts.token,
        big,
        salt,
        await signTransferAuthorization(payer, domain, big, 'receive'),
        1n,
      ),
      'PAYMENT_INSUFFICIENT_FUNDS',
      'ERC20InsufficientBalance',
    );
    const m = await meteredAuthorization();
    await expectRevert(
      settleMetered(
        chain.clients(NODE),
        contracts.meteredSettlement,
        contracts.token,
        m.auth,
        m.salt,
        await signTransferAuthorization(payer, domain, m.auth, 'transfer'),
        1n,
      ),
      'PAYMENT_SIGNATURE_INVALID',
      'InvalidSignature',
    );
  });
});

describe('contract wallets (ERC-1271) as payers', () => {
  const OWNER = 4;
  let wallet: Address;

  beforeEach(async () => {
    wallet = (
      await deployOne(
        chain.clients(OWNER),
        'Erc1271WalletHarness',
        erc1271WalletHarnessAbi,
        erc1271WalletHarnessBytecode,
        [chain.address(OWNER)],
      )
    ).address;
    await mintTestTokens(chain.clients(0), contracts.token, wallet, FUNDS);
  });

  /** The wallet's signature: its owner's ECDSA signature of the digest, plus `extra` bytes. */
  const walletSignature = async (digest: Hex, extra = '') =>
    `${await account(OWNER).sign({ hash: digest })}${extra}` as Hex;

  it('settles an exact authorization signed by a contract wallet, in both signature forms', async () => {
    // 65 bytes: settleExact sends (v, r, s); ECDSA does not recover the wallet, ERC-1271 does.
    const first = await authorization({ from: wallet });
    await settleExact(
      chain.clients(NODE),
      contracts.token,
      first,
      await walletSignature(transferAuthorizationDigest(domain, first)),
    );
    // 66 bytes: only the bytes form carries it.
    const second = await authorization({ from: wallet });
    await settleExact(
      chain.clients(NODE),
      contracts.token,
      second,
      await walletSignature(transferAuthorizationDigest(domain, second), 'ff'),
    );
    expect(await balance(wallet)).toBe(FUNDS - first.value - second.value);
    expect(await balance(chain.address(NODE))).toBe(first.value + second.value);
  });

  it('refuses a signature the wallet does not vouch for', async () => {
    const auth = await authorization({ from: wallet });
    const digest = transferAuthorizationDigest(domain, auth);
    // Each: a signature for the wallet that its isValidSignature refuses.
    const forgeries: [string, Hex][] = [
      ['the stranger’s, not the owner’s', (await stranger.sign({ hash: digest })) as Hex],
      [
        'the owner’s, for another digest',
        await walletSignature(transferAuthorizationDigest(domain, { ...auth, value: 1n })),
      ],
      ['too short for the wallet', (await walletSignature(digest)).slice(0, 120) as Hex],
    ];
    for (const [what, signature] of forgeries) {
      const refused = settleExact(chain.clients(NODE), contracts.token, auth, signature);
      expect(await expectRevert(refused, 'PAYMENT_SIGNATURE_INVALID', 'InvalidSignature'), what).toEqual([]);
    }
    expect(await balance(wallet)).toBe(FUNDS);
  });

  it('settles a metered authorization signed by a contract wallet (bytes form), refunding the wallet', async () => {
    const salt = randomBytes32();
    const auth = await authorization({
      from: wallet,
      to: contracts.meteredSettlement,
      value: 50_000n,
      nonce: meteredNonce(chain.address(NODE), salt),
    });
    const signature = await walletSignature(transferAuthorizationDigest(domain, auth, 'receive'), '00');
    await settleMetered(chain.clients(NODE), contracts.meteredSettlement, contracts.token, auth, salt, signature, 7n);
    expect(await balance(wallet)).toBe(FUNDS - 7n);
    expect(await balance(chain.address(NODE))).toBe(7n);
  });
});

describe('MeteredSettlement.settleMany (batched settlements)', () => {
  const MAX = 50_000n;

  /** A metered authorization of MAX by `signer`, bound to the node, as a batch item charging `amount`. */
  async function meteredItem(amount: bigint, signer: LocalAccount = payer): Promise<SettlementItem> {
    const salt = randomBytes32();
    const auth = await authorization({
      from: signer.address,
      to: contracts.meteredSettlement,
      value: MAX,
      nonce: meteredNonce(chain.address(NODE), salt),
    });
    return { scheme: 'metered', auth, salt, signature: await signAs(signer, auth, 'receive'), amount };
  }
  async function exactItem(overrides: Partial<TransferAuthorization> = {}): Promise<SettlementItem> {
    const auth = await authorization(overrides);
    return { scheme: 'exact', auth, signature: await signAs(account(PAYER), auth) };
  }

  it('settles exact and metered payments in one transaction, each as a single settlement would', async () => {
    const items = [
      await exactItem(),
      await meteredItem(12_345n),
      await exactItem({ value: 7n }),
      await meteredItem(0n),
    ];
    const { receipt, failures } = await settleMany(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      items,
    );
    expect(failures).toEqual([undefined, undefined, undefined, undefined]);
    const used = parseEventLogs({ abi: testStablecoinAbi, eventName: 'AuthorizationUsed', logs: receipt.logs });
    // The exact items go first, then the metered ones.
    expect(used.map((l) => l.args.nonce)).toEqual([0, 2, 1, 3].map((i) => items[i]?.auth.nonce));
    const metered = parseEventLogs({ abi: meteredSettlementAbi, eventName: 'MeteredSettled', logs: receipt.logs });
    expect(metered.map((l) => [l.args.payee, l.args.amount])).toEqual([
      [chain.address(NODE), 12_345n],
      [chain.address(NODE), 0n],
    ]);
    const charged = 10_000n + 12_345n + 7n;
    expect(await balance(payer.address)).toBe(FUNDS - charged);
    expect(await balance(chain.address(NODE))).toBe(charged);
    expect(await balance(contracts.meteredSettlement)).toBe(0n);
  });

  it('skips the items the token refuses, names each refusal, and settles the rest', async () => {
    await mintTestTokens(chain.clients(0), contracts.token, stranger.address, 100n);
    const replayed = await exactItem();
    await settleExact(chain.clients(NODE), contracts.token, replayed.auth, replayed.signature);
    const afterFirst = await balance(payer.address);
    const forgedAuth = await authorization();
    const items: SettlementItem[] = [
      await exactItem(),
      replayed, // its nonce is used already
      { scheme: 'exact', auth: forgedAuth, signature: await signAs(stranger, forgedAuth) }, // signed by another
      await meteredItem(5n, stranger), // a maximum above what the stranger holds
      await meteredItem(20n),
      await exactItem({ validBefore: (await now()) - 1n }), // expired
    ];
    const { receipt, failures } = await settleMany(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      items,
    );
    expect(receipt.status).toBe('success');
    expect(failures.map((f) => f?.code)).toEqual([
      undefined,
      'PAYMENT_REPLAYED',
      'PAYMENT_SIGNATURE_INVALID',
      'PAYMENT_INSUFFICIENT_FUNDS',
      undefined,
      'PAYMENT_EXPIRED',
    ]);
    expect(failures[1]?.details.revert).toBe('AuthorizationAlreadyUsed');
    const failed = [
      ...parseEventLogs({ abi: meteredSettlementAbi, eventName: 'ExactFailed', logs: receipt.logs }).map((l) => [
        'exact',
        l.args.index,
      ]),
      ...parseEventLogs({ abi: meteredSettlementAbi, eventName: 'MeteredFailed', logs: receipt.logs }).map((l) => [
        'metered',
        l.args.index,
      ]),
    ];
    expect(failed).toEqual([
      ['exact', 1n],
      ['exact', 2n],
      ['exact', 3n],
      ['metered', 0n],
    ]);
    // Exactly the two good items moved money; the stranger's nonce stays unused.
    expect(await balance(payer.address)).toBe(afterFirst - 10_000n - 20n);
    expect(await balance(stranger.address)).toBe(100n);
    expect(await balance(chain.address(NODE))).toBe(10_000n + 10_000n + 20n);
    const strangerItem = items[3] as SettlementItem;
    expect(
      await authorizationUsed(chain.publicClient, contracts.token, stranger.address, strangerItem.auth.nonce),
    ).toBe(false);
  });

  it('bounds what a gas-burning contract wallet costs a batch (ITEM_GAS), and settles the rest', async () => {
    const itemGas = await chain.publicClient.readContract({
      address: contracts.meteredSettlement,
      abi: meteredSettlementAbi,
      functionName: 'ITEM_GAS',
    });
    expect(itemGas).toBe(500_000n);
    const burner = (
      await deployOne(
        chain.clients(STRANGER),
        'GasBurningWalletHarness',
        gasBurningWalletHarnessAbi,
        gasBurningWalletHarnessBytecode,
        [],
      )
    ).address;
    await mintTestTokens(chain.clients(0), contracts.token, burner, 100_000n);
    const hostile = await authorization({ from: burner });
    const items: SettlementItem[] = [
      await exactItem(),
      // Any 65 bytes: ECDSA does not recover the wallet, so the token asks it, and it burns.
      { scheme: 'exact', auth: hostile, signature: await signAs(payer, hostile) },
      await meteredItem(30n),
    ];
    // Tried alone first (eth_call, no gas), as the node does before a batch: the hostile item is
    // refused, the others would settle.
    const tried = await Promise.all(
      items.map((item) =>
        simulateSettlement(chain.publicClient, chain.address(NODE), contracts.meteredSettlement, contracts.token, item),
      ),
    );
    expect(tried.map((f) => f?.code)).toEqual([undefined, 'PAYMENT_SIGNATURE_INVALID', undefined]);
    // Asked directly (ERC-1271, gas-capped), the burner vouches for nothing.
    const digest = transferAuthorizationDigest(domain, hostile);
    expect(await erc1271Valid(chain.publicClient, burner, digest, (items[1] as SettlementItem).signature)).toBe(false);
    const { receipt, failures } = await settleMany(
      chain.clients(NODE),
      contracts.meteredSettlement,
      contracts.token,
      items,
    );
    expect(failures.map((f) => f?.code)).toEqual([undefined, 'PAYMENT_SIGNATURE_INVALID', undefined]);
    // The transaction and two ordinary settlements (~140,000 gas), and at most ITEM_GAS for the hostile one.
    expect(receipt.gasUsed).toBeLessThan(150_000n + itemGas);
    expect(await balance(burner)).toBe(100_000n);
    expect(await balance(chain.address(NODE))).toBe(10_000n + 30n);
  });

  it('keeps settleFor (a batch item’s own call) to the contract itself', async () => {
    const m = (await meteredItem(1n)) as Extract<SettlementItem, { scheme: 'metered' }>;
    await expect(
      write(STRANGER, {
        address: contracts.meteredSettlement,
        abi: meteredSettlementAbi,
        functionName: 'settleFor',
        args: [
          stranger.address,
          contracts.token,
          {
            from: m.auth.from,
            maxValue: m.auth.value,
            validAfter: m.auth.validAfter,
            validBefore: m.auth.validBefore,
            salt: m.salt,
            signature: m.signature,
            amount: 1n,
          },
        ],
        account: stranger,
        chain: chain.anvil.chain,
      }),
    ).rejects.toThrow(/OnlySelf/);
    expect(await balance(payer.address)).toBe(FUNDS);
  });
});
