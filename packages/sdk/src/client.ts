/**
 * The client: configuration bound to the actions in `actions/`. Every action is also usable as a
 * plain function `(client, params)`.
 */
import { createVerifyCache, type Trust, type VerifyCache } from '@verity/protocol';

/** Client options. */
export interface ClientOptions {
  /** Base URL of a Verity node, e.g. `http://127.0.0.1:8700`. */
  readonly url: string;
  /**
   * Other nodes to try, in order, when `url` cannot be reached or answers 503 (overloaded,
   * shutting down). Receipts from them verify with registry trust (`registry`) or `trust`.
   */
  readonly fallbackUrls?: readonly string[];
  /** API key for writes (model uploads). */
  readonly apiKey?: string;
  /**
   * Trust to verify receipts with. Without it the client asks the node for its log key on first
   * use and pins it for the client's lifetime (trust on first use); pass the key you got from
   * the chain registry or the operator to close that gap.
   */
  readonly trust?: Trust;
  /** A fetch implementation (default: the global one). */
  readonly fetch?: typeof fetch;
  /**
   * The chain registry: `quorum` answers are verified against the nodes registered at the
   * answer's block, read from here (without it, against the node list the receiving node sends).
   */
  readonly registry?: { readonly rpcUrl: string; readonly nodeRegistry: `0x${string}` };
}

/** What actions receive: options plus per-client caches. */
export interface ClientBase {
  readonly url: string;
  readonly fallbackUrls: readonly string[];
  readonly apiKey: string | undefined;
  readonly fetch: typeof fetch;
  readonly cache: VerifyCache;
  /** The pinned trust (given, or learned on first use). */
  trust: Trust | undefined;
  /** Manifests by reference, to interpret short-form inputs and check the record's model. */
  readonly manifests: Map<string, unknown>;
  readonly registry: ClientOptions['registry'];
}

export function createClientBase(options: ClientOptions): ClientBase {
  const url = options.url.replace(/\/+$/, '');
  const f = options.fetch ?? globalThis.fetch;
  return {
    url,
    fallbackUrls: (options.fallbackUrls ?? []).map((u) => u.replace(/\/+$/, '')),
    apiKey: options.apiKey,
    fetch: f.bind(globalThis),
    cache: createVerifyCache(),
    trust: options.trust,
    manifests: new Map(),
    registry: options.registry,
  };
}
