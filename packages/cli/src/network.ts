/**
 * The local network `verity up` runs (docs/design.md §2.7): an anvil chain from its npm package (its
 * state kept in the data directory), Verity's contracts deployed once and reused, a deployment
 * file that points nodes at them, and node accounts funded from anvil's dev account so they can
 * stake. `--rpc URL --deployment FILE` points at any other EVM chain instead (accounts funded by
 * their operator).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  deployContracts,
  deployPaymentContracts,
  mintTestTokens,
  type PaymentContracts,
  tokenBalance,
  verifyDeployment,
} from '@verity/contracts';
import { type Anvil, readDeploymentFile, startAnvil, writeDeploymentFile } from '@verity/contracts/node';
import { openKeystore } from '@verity/node';
import {
  type Address,
  createPublicClient,
  createTestClient,
  createWalletClient,
  type Hex,
  http,
  parseEther,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';

/** A chain for the nodes: where it is, its deployment file, and how to fund node accounts. */
export interface LocalChain {
  readonly rpcUrl: string;
  readonly deploymentFile: string;
  /** Gives a node's account ether to stake and pay gas (local chains only). */
  fund(dataDir: string): Promise<void>;
  /**
   * A phase-1 (powers of tau) ceremony of 2^power among the nodes of `dataDirs`, each contributing
   * and recording its hash from its own account, finished with a beacon from a later block hash
   * and checked; the prepared file is kept in `dir` with the ceremony's id and reused while the
   * chain still has the ceremony (a fresh chain runs a new one).
   */
  phase1(dataDirs: readonly string[], power: number): Promise<{ readonly id: string; readonly path: string }>;
  /** The payment token and MeteredSettlement (issue 15), deployed with the other contracts. */
  readonly payments: PaymentContracts;
  /**
   * A demo payer: anvil's dev account 9 (its key is public knowledge), holding
   * {@link DEMO_PAYER_BALANCE} atomic units of the test token to pay priced models with.
   */
  readonly payer: { readonly key: Hex; readonly address: Address; readonly balance: bigint };
  stop(): Promise<void>;
}

/** What `verity up` tops the demo payer up to: 1000 test dollars (6 decimals). */
export const DEMO_PAYER_BALANCE = 1_000_000_000n;

/** Starts (or resumes) the local anvil chain in `dir` and makes sure the contracts are deployed. */
export async function startLocalChain(dir: string): Promise<LocalChain> {
  const anvil: Anvil = await startAnvil({ statePath: join(dir, 'anvil-state.json') });
  const chain = anvil.chain;
  const transport = http(anvil.rpcUrl);
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 20 });
  const deploymentFile = join(dir, 'deployment.json');
  let reuse = false;
  if (existsSync(deploymentFile)) {
    try {
      const existing = await readDeploymentFile(deploymentFile);
      await verifyDeployment(publicClient as never, existing);
      // A chain deployed before the Ceremony or Disputes contract existed gets a fresh deployment with it.
      reuse = existing.contracts.ceremony !== undefined && existing.contracts.disputes !== undefined;
    } catch {
      reuse = false; // the chain state was lost: deploy again
    }
  }
  const deployer = privateKeyToAccount(anvil.privateKeys[0] as `0x${string}`);
  const deployerClients = {
    publicClient: publicClient as never,
    walletClient: createWalletClient({ account: deployer, chain, transport }),
  };
  if (!reuse) {
    const deployment = await deployContracts(deployerClients, {
      minStake: parseEther('1'),
      unbondingDelay: 7 * 24 * 3600,
    });
    await writeDeploymentFile(deploymentFile, { ...deployment, rpcUrl: anvil.rpcUrl });
  }
  // Payments (issue 15): a test stablecoin (EIP-3009, EIP-2612) and MeteredSettlement, named in
  // the deployment file's `payments` member (nodes read the token there); deployed once, and again
  // for a file written before they existed or a chain whose state was lost.
  const deployed = await readDeploymentFile(deploymentFile);
  let payments = deployed.payments;
  if (payments === undefined || (await publicClient.getCode({ address: payments.token })) === undefined) {
    payments = await deployPaymentContracts(deployerClients);
    await writeDeploymentFile(deploymentFile, { ...deployed, payments, rpcUrl: anvil.rpcUrl });
  }
  // The demo payer gets its test dollars from the token's minter (the deployer), topped up each `up`.
  const payerKey = anvil.privateKeys[9] as Hex;
  const payerAddress = privateKeyToAccount(payerKey).address;
  const held = await tokenBalance(publicClient as never, payments.token, payerAddress);
  if (held < DEMO_PAYER_BALANCE) {
    await mintTestTokens(deployerClients, payments.token, payerAddress, DEMO_PAYER_BALANCE - held);
  }
  const testClient = createTestClient({ chain, transport, mode: 'anvil' });
  // A block every 2 s even when idle, as a real chain has: a ceremony's beacon is the hash of a
  // block not yet mined when it closes, which anvil's automine alone never makes on an idle chain.
  const ticker = setInterval(() => void testClient.mine({ blocks: 1 }).catch(() => undefined), 2_000);
  ticker.unref();
  return {
    rpcUrl: anvil.rpcUrl,
    deploymentFile,
    async fund(dataDir) {
      const { address } = openKeystore(dataDir);
      await testClient.setBalance({ address: address as `0x${string}`, value: parseEther('100') });
    },
    async phase1(dataDirs, power) {
      const deployment = await readDeploymentFile(deploymentFile);
      const ceremony = deployment.contracts.ceremony;
      if (ceremony === undefined) throw new Error('the local deployment has no Ceremony contract');
      const path = join(dir, `phase1-2p${power}.ptau`);
      const idPath = `${path}.id`;
      const { ceremonyChain, contributeToCeremony, readCeremony } = await import('@verity/contracts');
      if (existsSync(path) && existsSync(idPath)) {
        const id = readFileSync(idPath, 'utf8').trim();
        const record = await readCeremony(publicClient as never, ceremony, id as `0x${string}`).catch(() => undefined);
        if (record?.finalHash !== undefined) return { id, path };
      }
      const zk = await import('@verity/zk');
      const parties = dataDirs.map((d, i) => {
        const keys = openKeystore(d);
        const account = privateKeyToAccount(keys.accountKey as `0x${string}`);
        const clients = { publicClient, walletClient: createWalletClient({ account, chain, transport }) } as never;
        return zk.localParty({
          account: keys.address,
          label: `node-${i + 1}`,
          record: ({ id, prevHash, newHash }) => contributeToCeremony(clients, { ceremony, id, prevHash, newHash }),
        });
      });
      const deployer = privateKeyToAccount(anvil.privateKeys[0] as `0x${string}`);
      const opener = {
        publicClient,
        walletClient: createWalletClient({ account: deployer, chain, transport }),
      } as never;
      const result = await zk.runPhase1({ power, parties, chain: ceremonyChain(opener, ceremony) });
      writeFileSync(path, result.prepared);
      writeFileSync(idPath, `${result.id}\n`);
      return { id: result.id, path };
    },
    payments,
    payer: {
      key: payerKey,
      address: payerAddress,
      balance: held < DEMO_PAYER_BALANCE ? DEMO_PAYER_BALANCE : held,
    },
    stop: () => {
      clearInterval(ticker);
      return anvil.stop();
    },
  };
}

/** A node process started by `verity up --nodes N`. */
export interface NodeProcess {
  readonly url: string;
  readonly address: string;
  readonly child: ChildProcess;
}

/** Starts `verity node start` as a child process with `env` and waits for its URL. */
export function spawnNode(
  bin: string,
  dataDir: string,
  port: number,
  env: Record<string, string>,
  /** A configuration file (`verity node start --config`), e.g. the prices `verity up` sets. */
  configFile?: string,
): Promise<NodeProcess> {
  const child = spawn(
    process.execPath,
    [
      bin,
      'node',
      'start',
      '--data-dir',
      dataDir,
      '--port',
      String(port),
      '--json',
      '--log-level',
      'warn',
      ...(configFile === undefined ? [] : ['--config', configFile]),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        const info = JSON.parse(line) as { url: string; address: string };
        resolve({ url: info.url, address: info.address, child });
      }
    });
    child.once('exit', (code) => reject(new Error(`node in ${dataDir} exited with ${code}`)));
  });
}
