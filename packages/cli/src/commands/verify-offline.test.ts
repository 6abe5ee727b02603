import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeDeploymentFile } from '@verity/contracts/node';
import { isVerityError } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildReceiptFixtures } from '../../../protocol/src/test-support/receipt-fixtures.js';
import { UsageError } from '../usage.js';
import { offlineTrust, parsePinnedBlock } from './verify-offline.js';

// The registry proof a real anvil printed (packages/protocol/fixtures/registry-proof), carried
// in a bundle, checked against a pinned block and a deployment file on disk.
const fixture = JSON.parse(
  readFileSync(new URL('../../../protocol/fixtures/registry-proof/anvil.json', import.meta.url), 'utf8'),
) as {
  pinned: { number: number; hash: string };
  deployment: { chainId: number; nodeRegistry: `0x${string}`; minStake: string };
  registryProof: { header: string };
};
const block = `${fixture.pinned.number}:${fixture.pinned.hash}`;
const receiptBundle = buildReceiptFixtures().fixtures.find((f) => f.expect === 'ok')?.bundle as object;
const bundle = { ...receiptBundle, registryProof: fixture.registryProof };
let dir: string;
let deployment: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verity-verify-offline-'));
  deployment = join(dir, 'deployment.json');
  const other = '0x000000000000000000000000000000000000dEaD' as const;
  await writeDeploymentFile(deployment, {
    version: 1,
    chainId: fixture.deployment.chainId,
    block: 1n,
    deployer: other,
    contracts: {
      nodeRegistry: fixture.deployment.nodeRegistry,
      modelRegistry: other,
      logAnchor: other,
      zkVerifiers: other,
    },
    params: { minStake: BigInt(fixture.deployment.minStake), unbondingDelay: 3600, slasher: other },
  });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function codeOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (e: unknown) => (isVerityError(e) ? e.code : e instanceof UsageError ? 'usage' : String(e)),
  );
}

describe('verity verify --block NUMBER:HASH --deployment FILE', () => {
  it('takes the registry from the bundle, checked against the pinned block', async () => {
    const trust = await offlineTrust(bundle, { block, deployment });
    expect(trust.registry?.block).toEqual(fixture.pinned);
    expect(trust.registry?.nodes).toHaveLength(3);
    const byHeader = await offlineTrust(bundle, { block: fixture.registryProof.header, deployment });
    expect(byHeader.registry).toEqual(trust.registry);
  });

  it('refuses another block, a bundle without proof, and bad flags', async () => {
    const wrong = `${fixture.pinned.number}:0x${'ab'.repeat(32)}`;
    expect(await codeOf(offlineTrust(bundle, { block: wrong, deployment }))).toBe('REGISTRY_HEADER_MISMATCH');
    expect(await codeOf(offlineTrust(receiptBundle, { block, deployment }))).toBe('REGISTRY_PROOF_MISSING');
    expect(await codeOf(offlineTrust(bundle, { block, deployment: undefined }))).toBe('usage');
    for (const text of ['120', '120:0x12', 'latest', `-1:${fixture.pinned.hash}`, '0xf901']) {
      expect(() => parsePinnedBlock(text), text).toThrow(UsageError);
    }
  });
});
