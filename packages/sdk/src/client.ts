/**
 * The client: configuration bound to the actions in `actions/`. Every action is also usable as a
 * plain function `(client, params)`.
 */
import { type Deployment, deploymentFromJson, deploymentToJson } from '@verity/contracts';
import { createVerifyCache, type RegistrySnapshot, type Trust, type VerifyCache, VerityError } from '@verity/protocol';
import { createPublicClient, http, type PublicClient } from 'viem';
import { assertDeploymentChain, type RegistryOptions, registrySnapshot } from './actions/registry.js';
import { createNetwork, type Network, type NetworkOptions } from './network.js';
import { type NetworkName, type NetworkNameOptions, networkChain } from './networks.js';
import { type AssetPin, createPayer, type Payer, type PaymentOptions } from './payment.js';

/** The chain a client takes its trust from (docs/design.md §2.6a). */
export interface ChainOptions {
  /** JSON-RPC URL of the chain (default: the `rpcUrl` the deployment file names, as `verity up` writes it). */
  readonly rpcUrl?: string;
  /**
   * The deployment file's content (the JSON `verity up` writes to `chain/deployment.json`, or a
   * parsed `Deployment`): which `NodeRegistry` and `ModelRegistry` to read.
   */
  readonly deployment: unknown;
}

/** Client options. */
export interface ClientOptions {
  /**
   * Base URL of one Verity node, e.g. `http://127.0.0.1:8700`. Without it, the client finds the
   * nodes itself (`chain` is then required): it routes each call to the best registered node for
   * the model and fails over to the next (see `network`).
   */
  readonly url?: string;
  /**
   * A network by name, in place of `chain`: `'local'` is the chain of the `verity up` on this
   * machine (its data directory's deployment file and RPC URL; Node only, see `networkChain`).
   * Or routing settings across the network's nodes (without `url`): how often the registry is
   * read and the nodes probed, the call time limit, the score (latency and price), and `name`.
   */
  readonly network?: NetworkName | (NetworkOptions & { readonly name?: NetworkName } & NetworkNameOptions);
  /**
   * Other nodes to try, in order, when `url` cannot be reached or answers 503 (overloaded,
   * shutting down). Each answer verifies against the key of the node that gave it.
   */
  readonly fallbackUrls?: readonly string[];
  /** API key for writes (model uploads). */
  readonly apiKey?: string;
  /**
   * The chain, the root of trust: answers verify against the nodes registered, active and
   * staked in `NodeRegistry`, and model names resolve through `ModelRegistry` (the node's word
   * about which manifest a name means is not taken).
   */
  readonly chain?: ChainOptions;
  /**
   * Keys pinned by hand (from the operator, out of band): trusted whatever the chain says, and
   * the only root when there is no `chain`.
   */
  readonly trust?: Trust;
  /**
   * Without `chain` or `trust`: trust whatever log key each configured node (`url`,
   * `fallbackUrls`) reports about itself on first use, and its word about which model a name
   * means. Anyone between you and the node can then forge answers: for local development only.
   * Without it, such a client refuses to verify (`TRUST_UNCONFIGURED`).
   */
  readonly insecureTrustNode?: boolean;
  /** A fetch implementation (default: the global one). */
  readonly fetch?: typeof fetch;
  /**
   * The cache of verified checkpoints (default: a new one, with WebCrypto's Ed25519): e.g. one
   * made with `createVerifyCache(n, { ed25519 })` for a faster platform verifier.
   */
  readonly verifyCache?: VerifyCache;
  /**
   * Pay for answers (x402; docs/api.md "Payments"): a node's 402 is answered with a signed
   * payment from `account`, never above `maxPrice` for one request nor `budget` in all
   * (`PAYMENT_OVER_BUDGET`), and only in the token and on the network pinned by its `assets` and
   * `networks` or, by default, by `chain`'s deployment (`PAYMENT_ASSET_NOT_PINNED`); each paid
   * answer's record must commit to the payment made and, with a `chain`, the payment must be
   * settled on it (`PAYMENT_NOT_SETTLED`). A {@link Payer} shares one budget across clients.
   * Without it, a paid model's 402 is `PAYMENT_REQUIRED`.
   */
  readonly payment?: PaymentOptions | Payer;
}

/** The chain as a client holds it. */
export interface ClientChain {
  readonly rpcUrl: string;
  readonly deployment: Deployment;
  readonly publicClient: PublicClient;
}

/** What actions receive: options plus per-client caches. */
export interface ClientBase {
  readonly url: string;
  readonly fallbackUrls: readonly string[];
  readonly apiKey: string | undefined;
  readonly fetch: typeof fetch;
  readonly cache: VerifyCache;
  /** Keys pinned by hand, or (with `insecureTrustNode`) learned from the nodes on first use. */
  trust: Trust | undefined;
  readonly chain: ClientChain | undefined;
  /** The chain's `NodeRegistry`, where `chain` says it is (quorum selection and trust read it). */
  readonly registry: RegistryOptions | undefined;
  readonly insecureTrustNode: boolean;
  /** Without a `url`: the registered nodes this client routes across (discovered from the chain). */
  readonly network: Network | undefined;
  /** The registry snapshot of the latest block read so far, with when it was read. */
  readonly snapshots: {
    latest?: { at: number; snapshot: RegistrySnapshot };
    reading?: Promise<RegistrySnapshot> | undefined;
  };
  /** Manifests by reference, to interpret short-form inputs and check the record's model. */
  readonly manifests: Map<string, unknown>;
  /** Who pays for answers, and how much is left (the `payment` option). */
  readonly payer: Payer | undefined;
}

/** Parses chain options (the deployment checked as a deployment file is). */
export function chainOf(options: ChainOptions): ClientChain {
  // A parsed `Deployment` (bigints) is brought back to its file form so one parser checks both.
  const raw = options.deployment as { params?: { minStake?: unknown } } | undefined;
  const json = typeof raw?.params?.minStake === 'bigint' ? deploymentToJson(raw as Deployment) : raw;
  const rpcUrl = options.rpcUrl ?? (json as { rpcUrl?: unknown } | undefined)?.rpcUrl;
  if (typeof rpcUrl !== 'string') {
    throw new VerityError('CONFIG_INVALID', 'chain: no rpcUrl given and the deployment names none');
  }
  return {
    rpcUrl,
    deployment: deploymentFromJson(json),
    publicClient: createPublicClient({ transport: http(rpcUrl) }) as PublicClient,
  };
}

/** The chain options a client's `chain` or network name gives (a name and a chain both: `CONFIG_INVALID`). */
function chainOptionsOf(options: ClientOptions): ChainOptions | undefined {
  const network = typeof options.network === 'string' ? { name: options.network } : options.network;
  if (network?.name === undefined) return options.chain;
  if (options.chain !== undefined) {
    throw new VerityError('CONFIG_INVALID', 'give a network name or a chain, not both');
  }
  const named = networkChain(network.name, network.dataDir === undefined ? {} : { dataDir: network.dataDir });
  return { rpcUrl: named.rpcUrl, deployment: named.deployment };
}

export function createClientBase(options: ClientOptions): ClientBase {
  const url = (options.url ?? '').replace(/\/+$/, '');
  const chainOptions = chainOptionsOf(options);
  const chain = chainOptions === undefined ? undefined : chainOf(chainOptions);
  const payer =
    options.payment === undefined
      ? undefined
      : 'wrap' in options.payment
        ? options.payment
        : createPayer(options.payment);
  const plain = (options.fetch ?? globalThis.fetch).bind(globalThis);
  // Every request goes through `fetch`: with a payer, a 402 is paid there and the request sent again.
  // A metered maximum's rest goes back only once the answer's record (and chain) agree on the charge.
  const f = payer === undefined ? plain : payer.wrap(plain, chainPin(chain), 'checked');
  if (options.url === undefined && chain === undefined) {
    throw new VerityError(
      'CONFIG_INVALID',
      "give a node `url`, or a `chain` (or `network: 'local'`) whose registered nodes the client finds",
    );
  }
  const registry: RegistryOptions | undefined =
    chain === undefined
      ? undefined
      : {
          rpcUrl: chain.rpcUrl,
          nodeRegistry: chain.deployment.contracts.nodeRegistry,
          publicClient: chain.publicClient,
        };
  // Without a URL, the nodes come from the chain's registry (the latest block), never from a node.
  const network =
    options.url !== undefined || chain === undefined || registry === undefined
      ? undefined
      : createNetwork(
          async () => assertDeploymentChain(await registrySnapshot(registry), chain.deployment.chainId),
          f,
          typeof options.network === 'string' ? {} : options.network,
        );
  return {
    url,
    fallbackUrls: (options.fallbackUrls ?? []).map((u) => u.replace(/\/+$/, '')),
    apiKey: options.apiKey,
    fetch: f,
    cache: options.verifyCache ?? createVerifyCache(),
    trust: options.trust,
    chain,
    registry,
    insecureTrustNode: options.insecureTrustNode === true,
    network,
    snapshots: {},
    manifests: new Map(),
    payer,
  };
}

/**
 * A budget counts atomic units of one token: with a chain whose deployment names the payment
 * token, the client pays only in that token on that chain unless the payer names its own (a node
 * cannot ask for the same number of units of a dearer token the payer also holds), and authorizes
 * a metered maximum only to the deployment's `MeteredSettlement`. Without one, the payer must
 * name them (`PAYMENT_ASSET_NOT_PINNED` otherwise).
 */
function chainPin(chain: ClientChain | undefined): AssetPin {
  if (chain === undefined) return {};
  const payments = chain.deployment.payments;
  return {
    networks: [`eip155:${chain.deployment.chainId}`],
    ...(payments === undefined ? {} : { assets: [payments.token], settlements: [payments.meteredSettlement] }),
  };
}
