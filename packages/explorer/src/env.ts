/**
 * What every page shares: the node that served the explorer, and the chain its pages read over
 * JSON-RPC (the deployment and RPC URL from `/explorer.json`; the visitor may name another RPC
 * URL, kept in this browser).
 *
 * Whom this trusts: the deployment (which `NodeRegistry` holds the keys every check starts from)
 * is, unless pinned, what the serving node says. A visitor who pins it (`pinDeployment`, the
 * Network page's button) keeps those addresses in this browser: every page then reads that
 * registry, whatever node serves the pages, and a node serving another deployment is flagged.
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
    readonly deployment: Deployment;
    readonly publicClient: PublicClient;
    /** Whether `deployment` is the one pinned in this browser (else the serving node's word). */
    readonly pinned: boolean;
    /** A pinned deployment whose registry is not the one this node serves: the node is on another network. */
    readonly servedOther?: Deployment;
  };
  /** Why there is no chain, when there is none. */
  readonly noChain?: string;
}

/** A deployment as `/explorer.json` and the CLI's deployment file give it. */
export type Deployment = { chainId: number; contracts: Record<string, `0x${string}`> } & Record<string, unknown>;

const RPC_KEY = 'verity.explorer.rpcUrl';
const DEPLOYMENT_KEY = 'verity.explorer.deployment';

/** The deployment pinned in this browser, if any (a malformed entry counts as none). */
export function pinnedDeployment(): Deployment | undefined {
  const text = localStorage.getItem(DEPLOYMENT_KEY);
  if (text === null) return undefined;
  try {
    const d = JSON.parse(text) as Deployment;
    return typeof d?.chainId === 'number' && typeof d.contracts?.nodeRegistry === 'string' ? d : undefined;
  } catch {
    return undefined;
  }
}

/** Pins `deployment` in this browser (or, with `undefined`, unpins), and reloads the shared state. */
export function pinDeployment(deployment: Deployment | undefined): void {
  if (deployment) localStorage.setItem(DEPLOYMENT_KEY, JSON.stringify(deployment));
  else localStorage.removeItem(DEPLOYMENT_KEY);
  loaded = undefined;
}

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
  const pinned = pinnedDeployment();
  if (config.deployment === undefined && pinned === undefined) {
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
  const deployment = (pinned ?? config.deployment) as Deployment;
  const served = config.deployment;
  const servedOther =
    pinned !== undefined &&
    served !== undefined &&
    (served.chainId !== pinned.chainId ||
      served.contracts.nodeRegistry?.toLowerCase() !== pinned.contracts.nodeRegistry?.toLowerCase())
      ? served
      : undefined;
  const client = createClient({ url, chain: { rpcUrl, deployment } });
  const publicClient = createPublicClient({ transport: http(rpcUrl) }) as PublicClient;
  return {
    url,
    client,
    chain: {
      rpcUrl,
      deployment,
      publicClient,
      pinned: pinned !== undefined,
      ...(servedOther === undefined ? {} : { servedOther }),
    },
  };
}

/** Fetches JSON with a time limit (another node may be down). */
export async function getJson<T>(url: string, ms = 5_000): Promise<T> {
  const r = await fetch(url, { signal: AbortSignal.timeout(ms) });
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return (await r.json()) as T;
}
