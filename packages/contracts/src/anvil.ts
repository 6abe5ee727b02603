/**
 * A local chain for `verity up` and for tests: the `anvil` binary that the npm package
 * `@foundry-rs/anvil` ships (docs/design.md §2.7), started on a free port. Node only.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VerityError } from '@verity/protocol';
import { type Address, type Chain, defineChain, type Hex } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';

/** Options of {@link startAnvil}. */
export interface AnvilOptions {
  /** TCP port; 0 (the default) lets the system pick a free one, with no race. */
  readonly port?: number;
  /** Interface to listen on; default `127.0.0.1` (never expose the dev accounts by default). */
  readonly host?: string;
  /** Default 31337. */
  readonly chainId?: number;
  /** Number of funded dev accounts; default 10. */
  readonly accounts?: number;
  /** Balance of each dev account in ETH; default 10000. */
  readonly balance?: number;
  /** BIP-39 mnemonic of the dev accounts; default anvil's well-known `test test … junk`. */
  readonly mnemonic?: string;
  /** Seconds between blocks; default: a block per transaction (automine). */
  readonly blockTime?: number;
  /** A state file loaded on start (if present) and written on stop, so a local chain survives restarts. */
  readonly statePath?: string;
  /**
   * Where anvil moves the states of old blocks out of memory (`--cache-path`); default a fresh
   * directory under the system temp directory, removed on stop. (anvil's own default,
   * `~/.foundry/anvil/tmp`, is never cleaned: the test suite left ~160 MB there per chain of a thousand blocks.)
   */
  readonly cachePath?: string;
  /** The anvil executable; default the one from `@foundry-rs/anvil-<platform>-<arch>`. */
  readonly binary?: string;
  /** How long to wait for anvil to listen; default 15 s. */
  readonly startTimeoutMs?: number;
}

/** A running anvil. */
export interface Anvil {
  readonly rpcUrl: string;
  readonly host: string;
  readonly port: number;
  readonly chainId: number;
  /** The chain as viem names it (its id and RPC URL), for viem's clients. */
  readonly chain: Chain;
  /** The funded dev accounts, in anvil's order. */
  readonly accounts: readonly Address[];
  /** Their private keys (public knowledge for the default mnemonic: dev use only). */
  readonly privateKeys: readonly Hex[];
  readonly pid: number;
  /** Where anvil keeps the states of old blocks ({@link AnvilOptions.cachePath}). */
  readonly cachePath: string;
  /**
   * Stops anvil (SIGTERM, then SIGKILL after 5 s, 60 s with a state file) and resolves when it has
   * exited and its own cache directory is removed. Idempotent.
   */
  stop(): Promise<void>;
}

/** The npm packages that carry an anvil binary, by Node's platform and arch. */
const PLATFORM_PACKAGES: Readonly<Record<string, string>> = {
  'linux-x64': '@foundry-rs/anvil-linux-amd64',
  'linux-arm64': '@foundry-rs/anvil-linux-arm64',
  'darwin-x64': '@foundry-rs/anvil-darwin-amd64',
  'darwin-arm64': '@foundry-rs/anvil-darwin-arm64',
  'win32-x64': '@foundry-rs/anvil-win32-amd64',
};

/**
 * The path of the anvil binary shipped in npm (`@foundry-rs/anvil` installs the package for this
 * platform as an optional dependency).
 */
export function anvilBinaryPath(): string {
  const key = `${process.platform}-${process.arch}`;
  const pkg = PLATFORM_PACKAGES[key];
  if (pkg === undefined) {
    throw new VerityError('INTERNAL', `anvil has no npm binary for ${key}`, { details: { platform: key } });
  }
  const exe = process.platform === 'win32' ? 'anvil.exe' : 'anvil';
  try {
    return createRequire(import.meta.url).resolve(`${pkg}/bin/${exe}`);
  } catch (e) {
    throw new VerityError('INTERNAL', `anvil binary not installed (${pkg})`, { details: { package: pkg }, cause: e });
  }
}

/** Children still running, killed if this process exits without stopping them. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // 'exit' handlers must be synchronous; kill() only sends the signal, which is all we need.
    process.on('exit', () => {
      for (const c of live) c.kill('SIGKILL');
    });
  }
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** The tail of anvil's output kept for error messages. */
const OUTPUT_TAIL = 4000;

/**
 * Starts anvil and resolves once it listens. Failures to start are `INTERNAL` with anvil's
 * output tail in `details.output`.
 *
 * @example
 * ```ts
 * const anvil = await startAnvil();
 * const client = createPublicClient({ transport: http(anvil.rpcUrl) });
 * await anvil.stop();
 * ```
 */
export function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  const host = options.host ?? '127.0.0.1';
  const chainId = options.chainId ?? 31337;
  const args = ['--host', host, '--port', String(options.port ?? 0), '--chain-id', String(chainId)];
  if (options.accounts !== undefined) args.push('--accounts', String(options.accounts));
  if (options.balance !== undefined) args.push('--balance', String(options.balance));
  if (options.mnemonic !== undefined) args.push('--mnemonic', options.mnemonic);
  if (options.blockTime !== undefined) args.push('--block-time', String(options.blockTime));
  if (options.statePath !== undefined) args.push('--state', options.statePath);
  const binary = options.binary ?? anvilBinaryPath();
  const cachePath = options.cachePath ?? mkdtempSync(join(tmpdir(), 'verity-anvil-cache-'));
  args.push('--cache-path', cachePath);
  const timeoutMs = options.startTimeoutMs ?? 15_000;

  return new Promise<Anvil>((resolve, reject) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    trackChild(child);
    let output = '';
    let ready = false;
    const exited = new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) done();
      else child.once('exit', () => done());
    });

    let stopping: Promise<void> | undefined;
    const stop = (): Promise<void> => {
      stopping ??= (async () => {
        // No pid: the binary never started (spawn 'error'), there is nothing to stop.
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          // On SIGTERM anvil writes its state file; killed before it is done, the chain is lost,
          // and on a busy machine that can take seconds: a chain with a state file gets longer.
          const grace = options.statePath === undefined ? 5_000 : 60_000;
          const timer = setTimeout(() => child.kill('SIGKILL'), grace);
          await exited;
          clearTimeout(timer);
        }
        if (options.cachePath === undefined) await rm(cachePath, { recursive: true, force: true });
      })();
      return stopping;
    };

    const failStart = (message: string, cause?: unknown): void => {
      if (ready) return;
      ready = true;
      clearTimeout(timer);
      void stop().then(() =>
        reject(
          new VerityError('INTERNAL', `anvil did not start: ${message}`, {
            details: { binary, args, output: output.slice(-OUTPUT_TAIL) },
            cause,
          }),
        ),
      );
    };
    const timer = setTimeout(() => failStart(`not listening after ${timeoutMs} ms`), timeoutMs);

    const onOutput = (chunk: Buffer): void => {
      if (ready) return; // Keep draining the pipe, so anvil never blocks on a full one.
      output += chunk.toString('utf8');
      const listening = /Listening on ([^\s]+):(\d+)/.exec(output);
      if (listening === null) return;
      ready = true;
      clearTimeout(timer);
      const port = Number(listening[2]);
      // The banner lists the dev keys; addresses are derived from them rather than parsed.
      const keysSection = output.slice(output.indexOf('Private Keys'));
      const privateKeys = [...keysSection.matchAll(/^\(\d+\) (0x[0-9a-fA-F]{64})\s*$/gm)].map(
        (m) => (m[1] as string).toLowerCase() as Hex,
      );
      const urlHost = host.includes(':') ? `[${host}]` : host;
      output = '';
      const rpcUrl = `http://${urlHost}:${port}`;
      resolve({
        rpcUrl,
        host,
        port,
        chainId,
        chain: defineChain({
          id: chainId,
          name: 'anvil',
          nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
          rpcUrls: { default: { http: [rpcUrl] } },
        }),
        accounts: privateKeys.map((k) => privateKeyToAddress(k)),
        privateKeys,
        pid: child.pid ?? -1,
        cachePath,
        stop,
      });
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', (chunk: Buffer) => {
      if (!ready) output += chunk.toString('utf8');
    });
    child.once('error', (e) => failStart(e.message, e));
    child.once('exit', (code, signal) => failStart(`exited (${signal ?? code})`));
  });
}
