/**
 * Network names (issue 16): `createClient({ network: 'local' })` and `verity gateway --network
 * local` mean the chain the local `verity up` deployed. `verity up` keeps it in its data directory
 * (`--data-dir`, else `$VERITY_DATA_DIR`, else `~/.verity`): `chain/deployment.json`, the
 * deployment file, which also names the RPC URL it was deployed through (anvil on loopback).
 *
 * This module is the one place that knows that layout; the CLI reads it here too. It reads files,
 * so it works where there are files (Node, Bun, Deno): the built-in modules are asked for at the
 * call (`process.getBuiltinModule`), never imported, so the SDK's browser build carries no
 * `node:*` import, and a name in a browser is `CONFIG_INVALID` (give `chain` there).
 */
import { VerityError } from '@verity/protocol';

/** The network names the SDK knows: `local`, the chain of a `verity up` on this machine. */
export const NETWORK_NAMES = ['local'] as const;
/** A network name (see {@link NETWORK_NAMES}). */
export type NetworkName = (typeof NETWORK_NAMES)[number];

/** Where to look for a named network. */
export interface NetworkNameOptions {
  /** The `verity up` data directory (default: `$VERITY_DATA_DIR`, else `~/.verity`). */
  readonly dataDir?: string;
}

/** A named network's chain: what `ChainOptions` takes, and the file it was read from. */
export interface NamedNetworkChain {
  readonly rpcUrl: string;
  /** The deployment file's content (JSON). */
  readonly deployment: unknown;
  readonly deploymentFile: string;
}

interface NodeBuiltins {
  readonly fs: { readFileSync(path: string, encoding: 'utf8'): string };
  readonly path: { join(...parts: string[]): string };
  readonly os: { homedir(): string };
  readonly env: Record<string, string | undefined>;
}

/** Node's fs, path and os where the runtime has them (without importing them), else undefined. */
function nodeBuiltins(): NodeBuiltins | undefined {
  const proc = (
    globalThis as {
      process?: { getBuiltinModule?: (id: string) => unknown; env?: Record<string, string | undefined> };
    }
  ).process;
  const get = proc?.getBuiltinModule;
  if (typeof get !== 'function') return undefined;
  return {
    fs: get('node:fs') as NodeBuiltins['fs'],
    path: get('node:path') as NodeBuiltins['path'],
    os: get('node:os') as NodeBuiltins['os'],
    env: proc?.env ?? {},
  };
}

function builtins(): NodeBuiltins {
  const b = nodeBuiltins();
  if (b === undefined) {
    throw new VerityError(
      'CONFIG_INVALID',
      'a network name is read from files on this machine (Node); here, give `chain: { rpcUrl, deployment }`',
    );
  }
  return b;
}

/**
 * The data directory of a local `verity up`: `dataDir`, else `$VERITY_DATA_DIR`, else `~/.verity`.
 *
 * @example
 * ```ts
 * const dir = localDataDir(); // e.g. /home/me/.verity
 * ```
 */
export function localDataDir(dataDir?: string): string {
  const b = builtins();
  return dataDir ?? b.env.VERITY_DATA_DIR ?? b.path.join(b.os.homedir(), '.verity');
}

/**
 * The deployment file `verity up` writes for its local chain in `dataDir` (see {@link localDataDir}).
 *
 * @example
 * ```ts
 * localDeploymentFile('/tmp/v'); // '/tmp/v/chain/deployment.json'
 * ```
 */
export function localDeploymentFile(dataDir?: string): string {
  return builtins().path.join(localDataDir(dataDir), 'chain', 'deployment.json');
}

/**
 * The chain a network name means: for `local`, the deployment file of the `verity up` in
 * `dataDir` and the RPC URL it names. A name the SDK does not know is `CONFIG_INVALID`; a
 * `local` network that was never brought up (no deployment file, or one without an RPC URL) is
 * `NETWORK_NOT_FOUND`.
 *
 * @example
 * ```ts
 * const { rpcUrl, deployment } = networkChain('local');
 * const verity = createClient({ chain: { rpcUrl, deployment } }); // what `network: 'local'` does
 * ```
 */
export function networkChain(name: string, options: NetworkNameOptions = {}): NamedNetworkChain {
  if (!(NETWORK_NAMES as readonly string[]).includes(name)) {
    throw new VerityError(
      'CONFIG_INVALID',
      `no network named ${JSON.stringify(name)} (known: ${NETWORK_NAMES.join(', ')})`,
    );
  }
  const b = builtins();
  const deploymentFile = localDeploymentFile(options.dataDir);
  let text: string;
  try {
    text = b.fs.readFileSync(deploymentFile, 'utf8');
  } catch (cause) {
    throw new VerityError(
      'NETWORK_NOT_FOUND',
      `no local network: ${deploymentFile} cannot be read (run \`verity up\`)`,
      {
        cause,
        details: { network: name, deploymentFile },
      },
    );
  }
  let deployment: unknown;
  try {
    deployment = JSON.parse(text);
  } catch (cause) {
    throw new VerityError('NETWORK_NOT_FOUND', `the local network's deployment file ${deploymentFile} is not JSON`, {
      cause,
      details: { network: name, deploymentFile },
    });
  }
  const rpcUrl = (deployment as { rpcUrl?: unknown } | null)?.rpcUrl;
  if (typeof rpcUrl !== 'string') {
    throw new VerityError(
      'NETWORK_NOT_FOUND',
      `the local network's deployment file ${deploymentFile} names no rpcUrl`,
      {
        details: { network: name, deploymentFile },
      },
    );
  }
  return { rpcUrl, deployment, deploymentFile };
}
