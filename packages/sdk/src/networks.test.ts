/**
 * Network names on real files: `network: 'local'` reads the deployment file where `verity up`
 * writes it (`<data dir>/chain/deployment.json`; the data dir from the option, `VERITY_DATA_DIR`,
 * else `~/.verity`); what is missing or malformed is refused with its own code. The local network
 * itself is brought up and used by name in packages/cli/src/gateway.test.ts.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClientBase } from './client.js';
import { localDataDir, localDeploymentFile, networkChain } from './networks.js';

let dir: string;
const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'no error';
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verity-networks-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('network names', () => {
  it('finds the data dir as the CLI does: the option, else VERITY_DATA_DIR, else ~/.verity', () => {
    const saved = process.env.VERITY_DATA_DIR;
    try {
      process.env.VERITY_DATA_DIR = '/srv/verity';
      expect(localDataDir()).toBe('/srv/verity');
      expect(localDataDir('/x')).toBe('/x');
      delete process.env.VERITY_DATA_DIR;
      expect(localDataDir()).toBe(join(homedir(), '.verity'));
      expect(localDeploymentFile('/x')).toBe(join('/x', 'chain', 'deployment.json'));
    } finally {
      if (saved === undefined) delete process.env.VERITY_DATA_DIR;
      else process.env.VERITY_DATA_DIR = saved;
    }
  });

  it('refuses an unknown name, a network never brought up, and a malformed deployment file', async () => {
    expect(codeOf(() => networkChain('mainnet', { dataDir: dir }))).toBe('CONFIG_INVALID');
    // No `verity up` in this data dir yet.
    expect(codeOf(() => networkChain('local', { dataDir: dir }))).toBe('NETWORK_NOT_FOUND');
    expect(codeOf(() => createClientBase({ network: { name: 'local', dataDir: dir } }))).toBe('NETWORK_NOT_FOUND');
    await mkdir(join(dir, 'chain'), { recursive: true });
    // Not JSON (a half-written file).
    await writeFile(join(dir, 'chain', 'deployment.json'), '{"chainId": 313');
    expect(codeOf(() => networkChain('local', { dataDir: dir }))).toBe('NETWORK_NOT_FOUND');
    // JSON without the RPC URL `verity up` records.
    await writeFile(join(dir, 'chain', 'deployment.json'), '{"chainId": 31337}');
    expect(codeOf(() => networkChain('local', { dataDir: dir }))).toBe('NETWORK_NOT_FOUND');
  });

  it('reads the deployment and RPC URL, and takes a name or a chain, not both', async () => {
    await mkdir(join(dir, 'chain'), { recursive: true });
    const file = join(dir, 'chain', 'deployment.json');
    await writeFile(file, JSON.stringify({ chainId: 31337, rpcUrl: 'http://127.0.0.1:9' }));
    const named = networkChain('local', { dataDir: dir });
    expect(named).toEqual({
      rpcUrl: 'http://127.0.0.1:9',
      deployment: { chainId: 31337, rpcUrl: 'http://127.0.0.1:9' },
      deploymentFile: file,
    });
    expect(
      codeOf(() =>
        createClientBase({ network: { name: 'local', dataDir: dir }, chain: { deployment: named.deployment } }),
      ),
    ).toBe('CONFIG_INVALID');
  });
});
