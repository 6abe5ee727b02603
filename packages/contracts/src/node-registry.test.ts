import { encodeVerifierKey, fromHex } from '@verity/protocol';
import { keccak256, parseEther, parseEventLogs, toBytes } from 'viem';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Deployment } from './deploy.js';
import { nodeRegistryAbi } from './generated/node-registry.js';
import {
  addStake,
  getNode,
  getRegistryRules,
  listNodes,
  type RegisterNodeParams,
  readRegistrySnapshot,
  registerNode,
  requestUnbond,
  slashNode,
  syncNodeRegistration,
  updateNode,
  withdrawStake,
} from './node-registry.js';
import {
  expectRevert,
  fill32,
  MIN_STAKE,
  SLASHER,
  startTestChain,
  type TestChain,
  UNBONDING_DELAY,
} from './test-support/chain.js';

let chain: TestChain;
let d: Deployment;
let registry: `0x${string}`;

beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(() => chain.stop());
beforeEach(async () => {
  d = await chain.deploy();
  registry = d.contracts.nodeRegistry;
});

/** Node `i` announces log key fill32(i) and origin `verity.test/node-i`. */
function announcement(i: number, overrides: Partial<RegisterNodeParams> = {}): RegisterNodeParams {
  return {
    nodeRegistry: registry,
    logKey: fill32(i),
    origin: `verity.test/node-${i}`,
    endpoint: `http://127.0.0.1:${8000 + i}`,
    capabilities: ['mode:signed', 'runtime:onnx-native'],
    stake: MIN_STAKE,
    ...overrides,
  };
}

const fill32Bytes = (i: number) => fromHex(fill32(i).slice(2));
const balance = (address: `0x${string}`) => chain.publicClient.getBalance({ address });

describe('NodeRegistry', () => {
  it('reads the rules fixed at deployment', async () => {
    expect(await getRegistryRules(chain.publicClient, { nodeRegistry: registry })).toEqual({
      minStake: MIN_STAKE,
      unbondingDelay: UNBONDING_DELAY,
      slasher: chain.address(SLASHER),
    });
  });

  it('registers a node that stakes the minimum, with an event and a readable entry', async () => {
    const receipt = await registerNode(chain.clients(1), announcement(1));
    const [event] = parseEventLogs({ abi: nodeRegistryAbi, logs: receipt.logs, eventName: 'NodeRegistered' });
    expect(event?.args).toEqual({
      account: chain.address(1),
      logKey: fill32(1),
      origin: 'verity.test/node-1',
      endpoint: 'http://127.0.0.1:8001',
      capabilities: 0x10001n,
      stake: MIN_STAKE,
    });
    expect(await getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(1) })).toEqual({
      account: chain.address(1),
      logKey: fill32(1),
      origin: 'verity.test/node-1',
      endpoint: 'http://127.0.0.1:8001',
      capabilities: ['mode:signed', 'runtime:onnx-native'],
      capabilityBits: 0x10001n,
      stake: MIN_STAKE,
      status: 'registered',
      active: true,
      withdrawableAt: 0,
      registeredAt: receipt.blockNumber,
    });
    expect(await balance(registry)).toBe(MIN_STAKE);
    expect(await getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(2) })).toBeUndefined();
  });

  it('refuses a stake below the minimum', async () => {
    const args = await expectRevert(
      registerNode(chain.clients(1), announcement(1, { stake: MIN_STAKE - 1n })),
      'STAKE_TOO_LOW',
      'StakeTooLow',
    );
    expect(args).toEqual([(MIN_STAKE - 1n).toString(), MIN_STAKE.toString()]);
    expect(await listNodes(chain.publicClient, { nodeRegistry: registry })).toEqual([]);
  });

  it('refuses a second registration, and a log key that another account holds', async () => {
    await registerNode(chain.clients(1), announcement(1));
    await expectRevert(registerNode(chain.clients(1), announcement(1)), 'CHAIN_REVERTED', 'AlreadyRegistered');
    const args = await expectRevert(
      registerNode(chain.clients(2), announcement(2, { logKey: fill32(1) })),
      'CHAIN_REVERTED',
      'LogKeyTaken',
    );
    expect(args).toEqual([fill32(1), chain.address(1)]);
  });

  // One origin is one log: a second account under a used origin would let one operator's log
  // look like several nodes (docs/protocol.md §11).
  it('refuses an origin that another account holds (OriginTaken), whatever the log key', async () => {
    await registerNode(chain.clients(1), announcement(1));
    const origin = 'verity.test/node-1';
    const args = await expectRevert(
      registerNode(chain.clients(2), announcement(2, { origin })),
      'CHAIN_REVERTED',
      'OriginTaken',
    );
    expect(args).toEqual([keccak256(toBytes(origin)), chain.address(1)]);
    const owner = await chain.publicClient.readContract({
      address: registry,
      abi: nodeRegistryAbi,
      functionName: 'originOwner',
      args: [keccak256(toBytes(origin))],
    });
    expect(owner).toBe(chain.address(1));
    // Its own origin is free for account 2.
    await registerNode(chain.clients(2), announcement(2));
  });

  it('reads the registry at a block as verification takes it (readRegistrySnapshot)', async () => {
    await registerNode(chain.clients(1), announcement(1, { capabilities: ['mode:signed', 'mode:quorum'] }));
    const blockNumber = await chain.publicClient.getBlockNumber({ cacheTime: 0 });
    await registerNode(chain.clients(2), announcement(2));
    const snapshot = await readRegistrySnapshot(chain.publicClient, { nodeRegistry: registry, blockNumber });
    const block = await chain.publicClient.getBlock({ blockNumber });
    expect(snapshot).toEqual({
      chainId: await chain.publicClient.getChainId(),
      nodeRegistry: registry,
      block: { number: Number(blockNumber), hash: block.hash },
      minStake: MIN_STAKE,
      nodes: [
        {
          address: chain.address(1),
          logKey: encodeVerifierKey('verity.test/node-1', fill32Bytes(1)),
          stake: MIN_STAKE,
          status: 'registered',
          capabilities: 0b11n,
          endpoint: 'http://127.0.0.1:8001',
        },
      ],
    });
  });

  it('refuses malformed announcements', async () => {
    const c = chain.clients(1);
    // Each: what is wrong, then the custom error the contract reverts with.
    await expectRevert(registerNode(c, announcement(1, { logKey: fill32(0) })), 'CHAIN_REVERTED', 'LogKeyInvalid');
    await expectRevert(registerNode(c, announcement(1, { origin: '' })), 'CHAIN_REVERTED', 'OriginInvalid');
    await expectRevert(
      registerNode(c, announcement(1, { origin: 'o'.repeat(129) })),
      'CHAIN_REVERTED',
      'OriginInvalid',
    );
    await expectRevert(registerNode(c, announcement(1, { endpoint: '' })), 'CHAIN_REVERTED', 'EndpointInvalid');
    await expectRevert(
      registerNode(c, announcement(1, { endpoint: `http://${'e'.repeat(250)}` })),
      'CHAIN_REVERTED',
      'EndpointInvalid',
    );
    // Caught before anything is sent: a 31-byte key, a capability bitmask over 64 bits.
    await expectRevert(registerNode(c, announcement(1, { logKey: new Uint8Array(31) })), 'INVALID_ARGUMENT');
    await expectRevert(registerNode(c, announcement(1, { capabilities: 1n << 64n })), 'INVALID_ARGUMENT');
  });

  it('updates endpoint and capabilities of a registered node only', async () => {
    await registerNode(chain.clients(1), announcement(1));
    const receipt = await updateNode(chain.clients(1), {
      nodeRegistry: registry,
      endpoint: 'https://node-1.example',
      capabilities: ['mode:signed', 'mode:quorum', 'runtime:llm', 'role:witness'],
    });
    const [event] = parseEventLogs({ abi: nodeRegistryAbi, logs: receipt.logs, eventName: 'NodeUpdated' });
    expect(event?.args).toEqual({
      account: chain.address(1),
      endpoint: 'https://node-1.example',
      capabilities: (1n << 0n) | (1n << 1n) | (1n << 18n) | (1n << 32n),
    });
    const entry = await getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(1) });
    expect(entry?.endpoint).toBe('https://node-1.example');
    expect(entry?.capabilities).toEqual(['mode:signed', 'mode:quorum', 'runtime:llm', 'role:witness']);
    await expectRevert(
      updateNode(chain.clients(2), { nodeRegistry: registry, endpoint: 'http://x', capabilities: [] }),
      'NODE_NOT_ACTIVE',
      'NotRegistered',
    );
  });

  it('reads an entry and the node list as they were at a past block', async () => {
    const before = await chain.publicClient.getBlockNumber();
    const registered = await registerNode(chain.clients(1), announcement(1));
    await updateNode(chain.clients(1), { nodeRegistry: registry, endpoint: 'http://moved', capabilities: [] });
    await registerNode(chain.clients(2), announcement(2));

    const at = (blockNumber: bigint) =>
      getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(1), blockNumber });
    expect(await at(before)).toBeUndefined();
    expect((await at(registered.blockNumber))?.endpoint).toBe('http://127.0.0.1:8001');
    expect((await getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(1) }))?.endpoint).toBe(
      'http://moved',
    );
    const then = await listNodes(chain.publicClient, { nodeRegistry: registry, blockNumber: registered.blockNumber });
    expect(then.map((n) => [n.account, n.endpoint])).toEqual([[chain.address(1), 'http://127.0.0.1:8001']]);
    const now = await listNodes(chain.publicClient, { nodeRegistry: registry });
    expect(now.map((n) => n.account)).toEqual([chain.address(1), chain.address(2)]);
  });

  it('unbonds at once and pays the stake back only after the delay', async () => {
    await registerNode(chain.clients(1), announcement(1, { stake: parseEther('2') }));
    const receipt = await requestUnbond(chain.clients(1), { nodeRegistry: registry });
    const block = await chain.publicClient.getBlock({ blockNumber: receipt.blockNumber });
    const withdrawableAt = Number(block.timestamp) + UNBONDING_DELAY;
    const [event] = parseEventLogs({ abi: nodeRegistryAbi, logs: receipt.logs, eventName: 'UnbondRequested' });
    expect(event?.args).toEqual({ account: chain.address(1), withdrawableAt: BigInt(withdrawableAt) });

    const entry = await getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(1) });
    expect(entry).toMatchObject({ status: 'unbonding', active: false, withdrawableAt });
    expect(await listNodes(chain.publicClient, { nodeRegistry: registry, activeOnly: true })).toEqual([]);
    // An unbonding node can neither change its entry nor add stake, nor unbond twice.
    await expectRevert(
      updateNode(chain.clients(1), { nodeRegistry: registry, endpoint: 'http://x', capabilities: [] }),
      'NODE_NOT_ACTIVE',
      'NotRegistered',
    );
    await expectRevert(
      addStake(chain.clients(1), { nodeRegistry: registry, amount: 1n }),
      'NODE_NOT_ACTIVE',
      'NotRegistered',
    );
    await expectRevert(requestUnbond(chain.clients(1), { nodeRegistry: registry }), 'NODE_NOT_ACTIVE', 'NotRegistered');

    await expectRevert(
      withdrawStake(chain.clients(1), { nodeRegistry: registry }),
      'CHAIN_REVERTED',
      'UnbondingNotOver',
    );
    await chain.testClient.increaseTime({ seconds: UNBONDING_DELAY - 60 });
    await chain.testClient.mine({ blocks: 1 });
    const args = await expectRevert(
      withdrawStake(chain.clients(1), { nodeRegistry: registry }),
      'CHAIN_REVERTED',
      'UnbondingNotOver',
    );
    expect(args).toEqual([String(withdrawableAt)]);

    await chain.testClient.increaseTime({ seconds: 60 });
    await chain.testClient.mine({ blocks: 1 });
    const balanceBefore = await balance(chain.address(1));
    const withdrawn = await withdrawStake(chain.clients(1), { nodeRegistry: registry });
    const [paid] = parseEventLogs({ abi: nodeRegistryAbi, logs: withdrawn.logs, eventName: 'Withdrawn' });
    expect(paid?.args).toEqual({ account: chain.address(1), amount: parseEther('2') });
    const gas = withdrawn.gasUsed * withdrawn.effectiveGasPrice;
    expect(await balance(chain.address(1))).toBe(balanceBefore + parseEther('2') - gas);
    expect(await balance(registry)).toBe(0n);
    expect(await getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(1) })).toMatchObject({
      status: 'exited',
      stake: 0n,
      active: false,
      logKey: fill32(1),
    });
    await expectRevert(withdrawStake(chain.clients(1), { nodeRegistry: registry }), 'CHAIN_REVERTED', 'NotUnbonding');
  });

  it('keeps the list dense when a node leaves, and lets it come back with the same log only', async () => {
    for (const i of [1, 2, 3]) await registerNode(chain.clients(i), announcement(i));
    await requestUnbond(chain.clients(1), { nodeRegistry: registry });
    await chain.testClient.increaseTime({ seconds: UNBONDING_DELAY });
    await withdrawStake(chain.clients(1), { nodeRegistry: registry });
    const accounts = async () =>
      (await listNodes(chain.publicClient, { nodeRegistry: registry })).map((n) => n.account);
    expect(await accounts()).toEqual([chain.address(3), chain.address(2)]);

    await expectRevert(
      registerNode(chain.clients(1), announcement(1, { logKey: fill32(0x11) })),
      'CHAIN_REVERTED',
      'LogMismatch',
    );
    await expectRevert(
      registerNode(chain.clients(1), announcement(1, { origin: 'verity.test/other' })),
      'CHAIN_REVERTED',
      'LogMismatch',
    );
    await registerNode(chain.clients(1), announcement(1));
    expect(await accounts()).toEqual([chain.address(3), chain.address(2), chain.address(1)]);
  });

  it('lets only the slasher slash, registered or unbonding nodes, up to their stake', async () => {
    const slasher = chain.address(SLASHER);
    await registerNode(chain.clients(1), announcement(1, { stake: parseEther('1.5') }));
    const slash = (by: number, amount: bigint, node = 1) =>
      slashNode(chain.clients(by), { nodeRegistry: registry, node: chain.address(node), amount, reason: 'dispute 7' });

    await expectRevert(slash(1, parseEther('1')), 'UNAUTHORIZED', 'NotSlasher');
    await expectRevert(slash(2, parseEther('1')), 'UNAUTHORIZED', 'NotSlasher');

    const before = await balance(slasher);
    const receipt = await slash(SLASHER, parseEther('0.75'));
    const [event] = parseEventLogs({ abi: nodeRegistryAbi, logs: receipt.logs, eventName: 'Slashed' });
    expect(event?.args).toEqual({
      account: chain.address(1),
      amount: parseEther('0.75'),
      stake: parseEther('0.75'),
      reason: 'dispute 7',
    });
    const gas = receipt.gasUsed * receipt.effectiveGasPrice;
    expect(await balance(slasher)).toBe(before + parseEther('0.75') - gas);
    // Below the minimum: still registered, no longer active, until topped up.
    const node = () => getNode(chain.publicClient, { nodeRegistry: registry, node: chain.address(1) });
    expect(await node()).toMatchObject({ status: 'registered', active: false, stake: parseEther('0.75') });
    const topUp = await addStake(chain.clients(1), { nodeRegistry: registry, amount: parseEther('0.25') });
    expect(parseEventLogs({ abi: nodeRegistryAbi, logs: topUp.logs, eventName: 'StakeAdded' })[0]?.args).toEqual({
      account: chain.address(1),
      amount: parseEther('0.25'),
      stake: parseEther('1'),
    });
    expect(await node()).toMatchObject({ active: true, stake: parseEther('1') });

    // Unbonding does not protect the stake; a slash takes at most what is there.
    await requestUnbond(chain.clients(1), { nodeRegistry: registry });
    const all = await slash(SLASHER, parseEther('5'));
    expect(parseEventLogs({ abi: nodeRegistryAbi, logs: all.logs, eventName: 'Slashed' })[0]?.args).toMatchObject({
      amount: parseEther('1'),
      stake: 0n,
    });
    await expectRevert(slash(SLASHER, 1n), 'CHAIN_REVERTED', 'NothingToSlash');
    await expectRevert(slash(SLASHER, 1n, 4), 'CHAIN_REVERTED', 'NothingToSlash');
    expect(await balance(registry)).toBe(0n);
  });

  it('lists the active nodes and their stakes only (activeStakes, what Disputes fixes a jury pool from)', async () => {
    for (const i of [1, 2, 3, 4]) await registerNode(chain.clients(i), announcement(i, { stake: parseEther(`${i}`) }));
    await requestUnbond(chain.clients(2), { nodeRegistry: registry });
    await slashNode(chain.clients(SLASHER), {
      nodeRegistry: registry,
      node: chain.address(3),
      amount: parseEther('2.5'),
      reason: 'below the minimum',
    });
    const [accounts, stakes] = await chain.publicClient.readContract({
      address: registry,
      abi: nodeRegistryAbi,
      functionName: 'activeStakes',
    });
    // 2 unbonds and 3 is below the minimum: both registered (listNodes), neither active.
    expect(accounts).toEqual([chain.address(1), chain.address(4)]);
    expect(stakes).toEqual([parseEther('1'), parseEther('4')]);
    const active = await listNodes(chain.publicClient, { nodeRegistry: registry, activeOnly: true });
    expect(active.map((n) => [n.account, n.stake])).toEqual(accounts.map((a, i) => [a, stakes[i]]));
  });

  it('syncs a node entry with its config: register, then only what changed', async () => {
    const c = chain.clients(1);
    const wanted = { ...announcement(1), capabilities: ['mode:signed'] as const };
    const first = await syncNodeRegistration(c, wanted);
    expect(first.actions).toEqual(['register']);
    expect(first.entry).toMatchObject({ status: 'registered', active: true, endpoint: 'http://127.0.0.1:8001' });
    expect((await syncNodeRegistration(c, wanted)).actions).toEqual([]);

    const moved = await syncNodeRegistration(c, {
      ...wanted,
      endpoint: 'http://10.0.0.1:8001',
      stake: parseEther('3'),
    });
    expect(moved.actions).toEqual(['update', 'addStake']);
    expect(moved.entry).toMatchObject({ endpoint: 'http://10.0.0.1:8001', stake: parseEther('3') });

    // A lower configured stake is not withdrawn: that takes an unbonding.
    expect((await syncNodeRegistration(c, { ...wanted, endpoint: 'http://10.0.0.1:8001' })).actions).toEqual([]);
    await expectRevert(syncNodeRegistration(c, { ...wanted, logKey: fill32(0x42) }), 'CONFIG_INVALID');
    await requestUnbond(c, { nodeRegistry: registry });
    await expectRevert(syncNodeRegistration(c, wanted), 'CONFIG_INVALID');
    // After the exit, the same log registers again; another log does not.
    await chain.testClient.increaseTime({ seconds: UNBONDING_DELAY });
    await withdrawStake(c, { nodeRegistry: registry });
    await expectRevert(syncNodeRegistration(c, { ...wanted, origin: 'verity.test/new' }), 'CONFIG_INVALID');
    const back = await syncNodeRegistration(c, wanted);
    expect(back.actions).toEqual(['register']);
    expect(back.entry).toMatchObject({ status: 'registered', active: true, stake: MIN_STAKE });
  });
});
