/**
 * What every page shares: the node that served the explorer, and the chain its pages read over
 * JSON-RPC (the deployment and RPC URL from `/explorer.json`; the visitor may name another RPC
 * URL, kept in this browser).
 */
import { type Client, createClient } from '@verity/sdk';
import { createPublicClient, http, type PublicClient } from 'viem';

export interface Env {
  /** The node that served these pages. */
  readonly url: string;
  readonly client: Client;
  /** The chain, when the node runs on one and an RPC URL is known. */
  readonly chain?: {
    readonly rpcUrl: string;
    readonly deployment: { chainId: number; contracts: Record<string, `0x${string}`> } & Record<string, unknown>;
    readonly publicClient: PublicClient;
  };
  /** Why there is no chain, when there is none. */
  readonly noChain?: string;
}

const RPC_KEY = 'verity.explorer.rpcUrl';

/** The RPC URL the visitor chose in this browser, if any. */
export const savedRpcUrl = (): string | undefined => localStorage.getItem(RPC_KEY) ?? undefined;

/** Keeps (or with `undefined`, forgets) the visitor's RPC URL, and reloads the shared state. */
export function saveRpcUrl(url: string | undefined): void {
  if (url) localStorage.setItem(RPC_KEY, url);
  else localStorage.removeItem(RPC_KEY);
  loaded = undefined;
}

let loaded: Promise<Env> | undefined;

export function env(): Promise<Env> {
  loaded ??= load();
  return loaded;
}

async function load(): Promise<Env> {
  const url = location.origin;
  const config = (await fetch('/explorer.json').then((r) => (r.ok ? r.json() : {}))) as {
    rpcUrl?: string;
    deployment?: Env['chain'] extends infer C ? (C extends { deployment: infer D } ? D : never) : never;
  };
  const rpcUrl = savedRpcUrl() ?? config.rpcUrl;
  if (config.deployment === undefined) {
    // No chain: the only trust there is, is the node's word about its own key (labelled as such).
    return { url, client: createClient({ url, insecureTrustNode: true }), noChain: 'this node runs without a chain' };
  }
  if (rpcUrl === undefined) {
    return {
      url,
      client: createClient({ url, insecureTrustNode: true }),
      noChain: 'no JSON-RPC URL for the chain: set one below',
    };
  }
  const deployment = config.deployment;
  const client = createClient({ url, chain: { rpcUrl, deployment } });
  const publicClient = createPublicClient({ transport: http(rpcUrl) }) as PublicClient;
  return { url, client, chain: { rpcUrl, deployment, publicClient } };
}

/** Fetches JSON with a time limit (another node may be down). */
export async function getJson<T>(url: string, ms = 5_000): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(ms) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}
