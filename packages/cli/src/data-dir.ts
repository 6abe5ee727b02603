/**
 * What a data directory tells the CLI about its node, read as plain files (no node code loaded,
 * so client commands and `verity verify` start fast): the API key and log key from the keystore
 * (`keys.json`), and the record `verity node start` / `verity up` keep while the node runs
 * (`node.json`: its URL and chain), or the local chain `verity up` deployed (`chain/deployment.json`).
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isVerityError } from '@verity/protocol';
import { localDataDir, networkChain } from '@verity/sdk/networks';

/** `--data-dir`, else `VERITY_DATA_DIR`, else `~/.verity` (the SDK's `network: 'local'` looks there too). */
export function dataDirOf(flags: { 'data-dir'?: string | undefined }): string {
  return localDataDir(flags['data-dir']);
}

/** The running node's record in its data directory. */
export interface NodeRecord {
  /** The URL the node serves on: the only URL the data directory's API key is sent to. */
  readonly url: string;
  readonly address: string;
  readonly logKey: string;
  readonly pid: number;
  /** The chain the node is registered on. */
  readonly chain?: { readonly rpcUrl: string; readonly deploymentFile: string };
}

const RECORD = 'node.json';

function readJson(path: string): Record<string, unknown> | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Records the node that runs on `dataDir` (written atomically). */
export function writeNodeRecord(dataDir: string, record: NodeRecord): void {
  const path = join(dataDir, RECORD);
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Removes the record when the node stops (only if it is still this process's). */
export function removeNodeRecord(dataDir: string): void {
  if (readNodeRecord(dataDir)?.pid === process.pid) rmSync(join(dataDir, RECORD), { force: true });
}

/** The node record of `dataDir`, if there is a readable one. */
export function readNodeRecord(dataDir: string): NodeRecord | undefined {
  const v = readJson(join(dataDir, RECORD));
  if (!v || typeof v.url !== 'string' || typeof v.address !== 'string' || typeof v.logKey !== 'string') {
    return undefined;
  }
  const c = v.chain as { rpcUrl?: unknown; deploymentFile?: unknown } | undefined;
  return {
    url: v.url,
    address: v.address,
    logKey: v.logKey,
    pid: typeof v.pid === 'number' ? v.pid : 0,
    ...(typeof c?.rpcUrl === 'string' && typeof c.deploymentFile === 'string'
      ? { chain: { rpcUrl: c.rpcUrl, deploymentFile: c.deploymentFile } }
      : {}),
  };
}

/** The API key in `dataDir`'s keystore, if any. */
export function keystoreApiKey(dataDir: string): string | undefined {
  const v = readJson(join(dataDir, 'keys.json'));
  return typeof v?.apiKey === 'string' && v.apiKey !== '' ? v.apiKey : undefined;
}

/**
 * The chain of `dataDir`'s node: from its record, else the local chain `verity up` deployed
 * (the SDK's network `local`: `chain/deployment.json`, which names the RPC URL it was deployed through).
 */
export function localChain(dataDir: string): { rpcUrl: string; deploymentFile: string } | undefined {
  const recorded = readNodeRecord(dataDir)?.chain;
  if (recorded) return recorded;
  try {
    const { rpcUrl, deploymentFile } = networkChain('local', { dataDir });
    return { rpcUrl, deploymentFile };
  } catch (e) {
    if (isVerityError(e, 'NETWORK_NOT_FOUND')) return undefined;
    throw e;
  }
}

/** Whether two URLs name the same origin (scheme, host, port). */
export function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}
