import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVerityError } from '@verity/protocol';
import { createPublicClient, http } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Deployment, deployContracts, deploymentFromJson, deploymentToJson, verifyDeployment } from './deploy.js';
import { readDeploymentFile, writeDeploymentFile } from './deployment-file.js';
import { DEFAULT_DISPUTE_PARAMS } from './disputes.js';
import { getRegistryRules } from './node-registry.js';
import { deployPaymentContracts } from './payments.js';
import {
  expectRevert,
  MIN_STAKE,
  SLASHER,
  startTestChain,
  type TestChain,
  UNBONDING_DELAY,
} from './test-support/chain.js';

let chain: TestChain;
let d: Deployment;
let dir: string;

beforeAll(async () => {
  chain = await startTestChain();
  d = await chain.deploy();
  dir = await mkdtemp(join(tmpdir(), 'verity-contracts-'));
});
afterAll(async () => {
  await chain.stop();
  await rm(dir, { recursive: true, force: true });
});

function configError(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isVerityError(e, 'CONFIG_INVALID')) return e.details.path as string;
    throw e;
  }
  return undefined;
}

describe('deployContracts', () => {
  it('deploys the contracts and describes them', async () => {
    expect(d).toMatchObject({
      version: 1,
      chainId: 31337,
      rpcUrl: chain.anvil.rpcUrl,
      deployer: chain.address(0),
      params: { minStake: MIN_STAKE, unbondingDelay: UNBONDING_DELAY, slasher: chain.address(SLASHER) },
    });
    for (const address of Object.values(d.contracts)) {
      expect(await chain.publicClient.getCode({ address })).toMatch(/^0x[0-9a-f]{100,}$/);
    }
    expect(new Set(Object.values(d.contracts)).size).toBe(Object.keys(d.contracts).length);
    expect(d.block).toBeGreaterThan(0n);
    expect(await getRegistryRules(chain.publicClient, { nodeRegistry: d.contracts.nodeRegistry })).toEqual(d.params);
    await verifyDeployment(chain.publicClient, d);
  });

  it('refuses bad rules before sending anything', async () => {
    const c = chain.clients(0);
    const slasher = chain.address(SLASHER);
    await expectRevert(deployContracts(c, { minStake: -1n, unbondingDelay: 1, slasher }), 'INVALID_ARGUMENT');
    await expectRevert(deployContracts(c, { minStake: 1n, unbondingDelay: 1.5, slasher }), 'INVALID_ARGUMENT');
    await expectRevert(deployContracts(c, { minStake: 1n, unbondingDelay: 1, slasher: '0x12' }), 'INVALID_ARGUMENT');
  });
});

describe('deployContracts with Disputes', () => {
  const rules = { ...DEFAULT_DISPUTE_PARAMS, challengeWindow: 600, commitPeriod: 300, revealPeriod: 300 };

  it('makes Disputes the slasher, records it, and verifies it', async () => {
    const withDisputes = await chain.deploy(rules);
    const disputes = withDisputes.contracts.disputes as `0x${string}`;
    expect(withDisputes.params.slasher).toBe(disputes);
    expect(
      (await getRegistryRules(chain.publicClient, { nodeRegistry: withDisputes.contracts.nodeRegistry })).slasher,
    ).toBe(disputes);
    await verifyDeployment(chain.publicClient, withDisputes);
    expect(deploymentFromJson(JSON.parse(JSON.stringify(deploymentToJson(withDisputes))))).toEqual(withDisputes);
    expect(
      configError(() =>
        deploymentFromJson({
          ...deploymentToJson(withDisputes),
          contracts: { ...withDisputes.contracts, disputes: '0x12' },
        }),
      ),
    ).toBe('/contracts/disputes');
    // A file naming another contract as Disputes, or Disputes of another deployment: refused.
    const wrong: Record<string, Deployment> = {
      'disputes is not the slasher': {
        ...withDisputes,
        contracts: { ...withDisputes.contracts, disputes: d.contracts.ceremony as `0x${string}` },
      },
      'disputes of another registry': {
        ...d,
        contracts: { ...d.contracts, disputes },
        params: { ...d.params, slasher: disputes },
      },
    };
    for (const [what, deployment] of Object.entries(wrong)) {
      await expect(verifyDeployment(chain.publicClient, deployment), what).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
      });
    }
  });

  it('refuses rules under which a node could leave before its jury decides, before sending anything', async () => {
    const c = chain.clients(0);
    const before = await chain.publicClient.getTransactionCount({ address: chain.address(0) });
    const tooLong = { ...rules, challengeWindow: UNBONDING_DELAY - 600 };
    await expectRevert(
      deployContracts(c, { minStake: MIN_STAKE, unbondingDelay: UNBONDING_DELAY, disputes: tooLong }),
      'INVALID_ARGUMENT',
    );
    await expectRevert(
      deployContracts(c, { minStake: MIN_STAKE, unbondingDelay: UNBONDING_DELAY, disputes: { ...rules, jurySize: 2 } }),
      'INVALID_ARGUMENT',
    );
    expect(await chain.publicClient.getTransactionCount({ address: chain.address(0) })).toBe(before);
  });
});

describe('verifyDeployment', () => {
  it('notices another chain, a missing contract, foreign contracts and other rules', async () => {
    const swapped = { ...d.contracts, logAnchor: d.contracts.modelRegistry, modelRegistry: d.contracts.logAnchor };
    // Each: what is wrong with the deployment file; every one is CONFIG_INVALID.
    const wrong: Record<string, Deployment> = {
      'another chain id': { ...d, chainId: 1 },
      'no code at an address': { ...d, contracts: { ...d.contracts, logAnchor: chain.address(5) } },
      'contracts swapped': { ...d, contracts: swapped },
      'another minimum stake': { ...d, params: { ...d.params, minStake: 1n } },
      'another slasher': { ...d, params: { ...d.params, slasher: chain.address(1) } },
    };
    for (const [what, deployment] of Object.entries(wrong)) {
      await expect(verifyDeployment(chain.publicClient, deployment), what).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
      });
    }
  });

  it('says NETWORK_ERROR when the chain does not answer', async () => {
    const nowhere = createPublicClient({ transport: http('http://127.0.0.1:1', { retryCount: 0 }) });
    await expect(verifyDeployment(nowhere, d)).rejects.toMatchObject({ code: 'CHAIN_UNAVAILABLE' });
  });
});

describe('deployment files', () => {
  it('round-trips through JSON and a file', async () => {
    const json = deploymentToJson(d);
    expect(json).toEqual({
      version: 1,
      chainId: 31337,
      rpcUrl: chain.anvil.rpcUrl,
      block: Number(d.block),
      deployer: d.deployer,
      contracts: d.contracts,
      params: { minStake: '1000000000000000000', unbondingDelay: 3600, slasher: chain.address(SLASHER) },
    });
    expect(deploymentFromJson(JSON.parse(JSON.stringify(json)))).toEqual(d);
    const path = join(dir, 'deployment.json');
    await writeDeploymentFile(path, d);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(json);
    expect(await readDeploymentFile(path)).toEqual(d);
    const { rpcUrl: _, ...withoutRpc } = json;
    expect(deploymentFromJson(withoutRpc).rpcUrl).toBeUndefined();
    // Lower-case addresses are accepted and come back checksummed.
    const lower = { ...json, deployer: d.deployer.toLowerCase() };
    expect(deploymentFromJson(lower).deployer).toBe(d.deployer);
  });

  it('carries the payment contracts when it has them, and verifies them', async () => {
    const payments = await deployPaymentContracts(chain.clients(0));
    const paid: Deployment = { ...d, payments };
    const json = deploymentToJson(paid);
    expect(json.payments).toEqual(payments);
    expect(deploymentFromJson(JSON.parse(JSON.stringify(json)))).toEqual(paid);
    // A file written before payments existed stays valid, and has none.
    expect(deploymentToJson(d)).not.toHaveProperty('payments');
    expect(deploymentFromJson(deploymentToJson(d)).payments).toBeUndefined();
    await verifyDeployment(chain.publicClient, paid);
    await expect(
      verifyDeployment(chain.publicClient, { ...d, payments: { ...payments, token: chain.address(5) } }),
    ).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });

  it('names the field that is wrong', () => {
    const json = deploymentToJson(d);
    const badChecksum = d.contracts.nodeRegistry.replace(/[a-f]/, (c) => c.toUpperCase());
    // Each: a broken file, then the JSON pointer that CONFIG_INVALID must name.
    const cases: [unknown, string][] = [
      [[], ''],
      [{ ...json, version: 2 }, '/version'],
      [{ ...json, chainId: 0 }, '/chainId'],
      [{ ...json, chainId: '31337' }, '/chainId'],
      [{ ...json, rpcUrl: 'ftp://x' }, '/rpcUrl'],
      [{ ...json, block: -1 }, '/block'],
      [{ ...json, extra: true }, '/extra'],
      [{ ...json, contracts: { ...d.contracts, logAnchor: undefined } }, '/contracts/logAnchor'],
      [{ ...json, contracts: { ...d.contracts, nodeRegistry: badChecksum } }, '/contracts/nodeRegistry'],
      [{ ...json, contracts: { ...d.contracts, modelRegistry: '0x1234' } }, '/contracts/modelRegistry'],
      [{ ...json, params: { ...(json.params as object), minStake: 1 } }, '/params/minStake'],
      [{ ...json, params: { ...(json.params as object), minStake: '01' } }, '/params/minStake'],
      [{ ...json, params: { ...(json.params as object), unbondingDelay: -5 } }, '/params/unbondingDelay'],
      [{ ...json, payments: [] }, '/payments'],
      [{ ...json, payments: { token: d.contracts.nodeRegistry } }, '/payments/meteredSettlement'],
      [{ ...json, payments: { token: '0x12', meteredSettlement: d.contracts.nodeRegistry } }, '/payments/token'],
      [{ ...json, payments: { token: d.deployer, meteredSettlement: d.deployer, fee: 1 } }, '/payments/fee'],
    ];
    for (const [file, path] of cases)
      expect(
        configError(() => deploymentFromJson(file)),
        path,
      ).toBe(path);
  });

  it('reports a missing or garbled file as CONFIG_INVALID', async () => {
    await expect(readDeploymentFile(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const garbled = join(dir, 'garbled.json');
    await writeFile(garbled, '{"version": 1,');
    await expect(readDeploymentFile(garbled)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});
