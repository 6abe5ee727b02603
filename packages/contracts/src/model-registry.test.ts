import { parseEventLogs } from 'viem';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { modelRegistryAbi } from './generated/model-registry.js';
import {
  deprecateModel,
  getModelOwner,
  listModelVersions,
  publishModel,
  resolveModel,
  transferModelName,
} from './model-registry.js';
import { expectRevert, startTestChain, type TestChain } from './test-support/chain.js';

// CIDs as `ipfs add --cid-version 1` would print them; their content does not matter here.
const CID_1 = 'bagaaierasords4njcts6vs7qvdjfcvgnume4hqohf65zsfguprqphs3icwea';
const CID_2 = 'bagaaierakkoyeu6zfvb3pl7hvp3tqgsdkxxjm5ofaoahf2lbhutoxtchdooa';

let chain: TestChain;
let registry: `0x${string}`;

beforeAll(async () => {
  chain = await startTestChain();
});
afterAll(() => chain.stop());
beforeEach(async () => {
  registry = (await chain.deploy()).contracts.modelRegistry;
});

const publish = (by: number, name: string, version: string, manifestCid = CID_1) =>
  publishModel(chain.clients(by), { modelRegistry: registry, name, version, manifestCid });
const resolve = (name: string, version: string, blockNumber?: bigint) =>
  resolveModel(chain.publicClient, {
    modelRegistry: registry,
    name,
    version,
    ...(blockNumber === undefined ? {} : { blockNumber }),
  });

describe('ModelRegistry', () => {
  it('publishes name@version with an event, and resolves it', async () => {
    const receipt = await publish(1, 'iris', '1.2.0');
    const [event] = parseEventLogs({ abi: modelRegistryAbi, logs: receipt.logs, eventName: 'ModelPublished' });
    expect(event?.args).toMatchObject({
      name: 'iris',
      version: '1.2.0',
      manifestCid: CID_1,
      publisher: chain.address(1),
    });
    expect(await resolve('iris', '1.2.0')).toEqual({
      name: 'iris',
      version: '1.2.0',
      manifestCid: CID_1,
      publisher: chain.address(1),
      publishedAt: receipt.blockNumber,
      deprecated: false,
    });
    expect(await resolve('iris', '1.2.0', receipt.blockNumber - 1n)).toBeUndefined();
    expect(await resolve('iris', '9.9.9')).toBeUndefined();
    expect(await resolve('unknown', '1.0.0')).toBeUndefined();
    expect(await getModelOwner(chain.publicClient, { modelRegistry: registry, name: 'iris' })).toBe(chain.address(1));
    expect(await getModelOwner(chain.publicClient, { modelRegistry: registry, name: 'unknown' })).toBeUndefined();
  });

  it('gives a name to its first publisher and never changes a published version', async () => {
    await publish(1, 'iris', '1.0.0');
    await expectRevert(publish(2, 'iris', '1.1.0'), 'UNAUTHORIZED', 'NotNameOwner');
    await publish(1, 'iris', '1.1.0', CID_2);
    await expectRevert(publish(1, 'iris', '1.0.0', CID_2), 'MODEL_CONFLICT', 'VersionExists');
    await publish(2, 'sine', '0.1.0');
    expect(await listModelVersions(chain.publicClient, { modelRegistry: registry, name: 'iris' })).toEqual([
      '1.0.0',
      '1.1.0',
    ]);
    expect((await resolve('iris', '1.0.0'))?.manifestCid).toBe(CID_1);
  });

  it('refuses names, versions and CIDs outside the manifest rules', async () => {
    // Each: the offending field, then the code it maps to.
    for (const name of ['Iris', '-iris', '.iris', 'ir is', 'iris@1', '', 'a'.repeat(65), 'irís']) {
      await expectRevert(publish(1, name, '1.0.0'), 'MODEL_NAME_INVALID', 'NameInvalid');
    }
    for (const version of ['', '1.0 ', 'v1@2', '1/0', '1'.repeat(65)]) {
      await expectRevert(publish(1, 'iris', version), 'MODEL_NAME_INVALID', 'VersionInvalid');
    }
    await expectRevert(publish(1, 'iris', '1.0.0', ''), 'CID_INVALID', 'CidInvalid');
    await expectRevert(publish(1, 'iris', '1.0.0', 'b'.repeat(129)), 'CID_INVALID', 'CidInvalid');
    // The edges of the rules are accepted.
    await publish(1, '0.a_b-c', '1.0.0-rc.1+build.5');
    await publish(1, 'a'.repeat(64), '1.0.0');
  });

  it('lets only the owner deprecate, once, and deprecated versions still resolve', async () => {
    await publish(1, 'iris', '1.0.0');
    const deprecate = (by: number, version: string) =>
      deprecateModel(chain.clients(by), { modelRegistry: registry, name: 'iris', version, reason: 'CVE-1' });
    await expectRevert(deprecate(2, '1.0.0'), 'UNAUTHORIZED', 'NotNameOwner');
    await expectRevert(deprecate(1, '2.0.0'), 'MODEL_NOT_FOUND', 'UnknownVersion');
    const receipt = await deprecate(1, '1.0.0');
    const [event] = parseEventLogs({ abi: modelRegistryAbi, logs: receipt.logs, eventName: 'ModelDeprecated' });
    expect(event?.args).toMatchObject({ name: 'iris', version: '1.0.0', reason: 'CVE-1' });
    expect(await resolve('iris', '1.0.0')).toMatchObject({ manifestCid: CID_1, deprecated: true });
    await expectRevert(deprecate(1, '1.0.0'), 'CHAIN_REVERTED', 'AlreadyDeprecated');
  });

  it('hands a name to a new owner', async () => {
    await publish(1, 'iris', '1.0.0');
    const transfer = (by: number, to: number) =>
      transferModelName(chain.clients(by), { modelRegistry: registry, name: 'iris', to: chain.address(to) });
    await expectRevert(transfer(2, 2), 'UNAUTHORIZED', 'NotNameOwner');
    const receipt = await transfer(1, 2);
    const [event] = parseEventLogs({ abi: modelRegistryAbi, logs: receipt.logs, eventName: 'NameTransferred' });
    expect(event?.args).toMatchObject({ name: 'iris', from: chain.address(1), to: chain.address(2) });
    await expectRevert(publish(1, 'iris', '1.1.0'), 'UNAUTHORIZED', 'NotNameOwner');
    await publish(2, 'iris', '1.1.0');
    // Earlier versions keep their publisher.
    expect((await resolve('iris', '1.0.0'))?.publisher).toBe(chain.address(1));
  });
});
