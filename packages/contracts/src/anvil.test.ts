import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublicClient, createTestClient, createWalletClient, http, parseEther } from 'viem';
import { privateKeyToAccount, privateKeyToAddress } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import { startAnvil } from './anvil.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('startAnvil', () => {
  it('starts on a free port with the well-known dev accounts, and stops', async () => {
    const anvil = await startAnvil();
    try {
      expect(anvil.rpcUrl).toBe(`http://127.0.0.1:${anvil.port}`);
      expect(anvil.port).toBeGreaterThan(0);
      // Anvil's default mnemonic gives these (foundry docs); keys and addresses must agree.
      expect(anvil.accounts).toHaveLength(10);
      expect(anvil.accounts[0]).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266');
      expect(anvil.privateKeys[0]).toBe('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
      expect(anvil.privateKeys.map((k) => privateKeyToAddress(k))).toEqual(anvil.accounts);
      const client = createPublicClient({ transport: http(anvil.rpcUrl) });
      expect(await client.getChainId()).toBe(31337);
      expect(await client.getBalance({ address: anvil.accounts[9] ?? '0x' })).toBe(parseEther('10000'));
    } finally {
      await anvil.stop();
    }
    expect(alive(anvil.pid)).toBe(false);
    await anvil.stop(); // idempotent
  });

  it('runs several chains at once with their own settings', async () => {
    const [a, b] = await Promise.all([startAnvil({ chainId: 1337, accounts: 3, balance: 5 }), startAnvil()]);
    try {
      expect(a.port).not.toBe(b.port);
      expect(a.accounts).toHaveLength(3);
      const client = createPublicClient({ transport: http(a.rpcUrl) });
      expect(await client.getChainId()).toBe(1337);
      expect(a.chain.id).toBe(1337);
      expect(a.chain.rpcUrls.default.http).toEqual([a.rpcUrl]);
      expect(await client.getBalance({ address: a.accounts[0] ?? '0x' })).toBe(parseEther('5'));
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
    expect([alive(a.pid), alive(b.pid)]).toEqual([false, false]);
  });

  it('keeps the chain in a state file across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verity-anvil-'));
    const statePath = join(dir, 'state.json');
    try {
      const first = await startAnvil({ statePath });
      const key = first.privateKeys[1] ?? '0x';
      const wallet = createWalletClient({ account: privateKeyToAccount(key), transport: http(first.rpcUrl) });
      const hash = await wallet.sendTransaction({ to: first.accounts[2], value: parseEther('1'), chain: null });
      await createPublicClient({ transport: http(first.rpcUrl) }).waitForTransactionReceipt({ hash });
      await first.stop();
      const second = await startAnvil({ statePath });
      try {
        const client = createPublicClient({ transport: http(second.rpcUrl) });
        expect(await client.getBalance({ address: second.accounts[2] ?? '0x' })).toBe(parseEther('10001'));
      } finally {
        await second.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps old block states in its own temp directory, removed on stop (never in ~/.foundry)', async () => {
    const anvil = await startAnvil();
    try {
      expect(anvil.cachePath.startsWith(tmpdir())).toBe(true);
      // A thousand blocks: anvil moves the states of old ones out of memory, into the cache.
      const transport = http(anvil.rpcUrl, { timeout: 120_000 }); // seconds of work on a busy machine
      await createTestClient({ transport, mode: 'anvil' }).mine({ blocks: 1000 });
      expect((await readdir(anvil.cachePath, { recursive: true })).length).toBeGreaterThan(0);
    } finally {
      await anvil.stop();
    }
    expect(existsSync(anvil.cachePath)).toBe(false);
  }, 180_000);

  it('fails with INTERNAL when anvil cannot start', async () => {
    await expect(startAnvil({ binary: '/nonexistent/anvil' })).rejects.toMatchObject({ code: 'INTERNAL' });
    // A port that is taken: anvil exits, and its output says why.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    try {
      const error = await startAnvil({ port }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'INTERNAL' });
      expect(String((error as { details: { output: string } }).details.output)).toMatch(/in use|address/i);
    } finally {
      server.close();
    }
  });
});
