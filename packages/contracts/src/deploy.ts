/**
 * Deploying Verity's contracts, and the deployment file that points a node at them: `verity up`
 * writes one for its local anvil; `--rpc URL` plus a deployment file point a node at any other
 * EVM chain.
 *
 * The file is JSON (`deploymentToJson`): wei amounts as decimal strings, block numbers as
 * numbers, addresses in EIP-55 form.
 *
 * ```json
 * { "version": 1, "chainId": 31337, "rpcUrl": "http://127.0.0.1:8545", "block": 1,
 *   "deployer": "0x…", "contracts": { "nodeRegistry": "0x…", "modelRegistry": "0x…", "logAnchor": "0x…",
 *   "zkVerifiers": "0x…", "ceremony": "0x…", "disputes": "0x…" },
 *   "params": { "minStake": "1000000000000000000", "unbondingDelay": 604800, "slasher": "0x…" },
 *   "payments": { "token": "0x…", "meteredSettlement": "0x…" } }
 * ```
 *
 * `payments` (optional, absent in files written before it existed) names the token paid answers
 * are settled in and `MeteredSettlement` (payments.ts, `deployPaymentContracts`).
 */
import { fail, isVerityError, VerityError } from '@verity/protocol';
import { type Abi, type Address, getAddress, getContractAddress, type Hex, isAddress, type PublicClient } from 'viem';
import { address, type ChainClients, read, sendAndConfirm } from './clients.js';
import { DEFAULT_DISPUTE_PARAMS, type DisputeParams, disputeParamsArg } from './disputes.js';
import { ceremonyAbi, ceremonyBytecode } from './generated/ceremony.js';
import { disputesAbi, disputesBytecode } from './generated/disputes.js';
import { logAnchorAbi, logAnchorBytecode } from './generated/log-anchor.js';
import { modelRegistryAbi, modelRegistryBytecode } from './generated/model-registry.js';
import { nodeRegistryAbi, nodeRegistryBytecode } from './generated/node-registry.js';
import { zkVerifierRegistryAbi, zkVerifierRegistryBytecode } from './generated/zk-verifier-registry.js';
import type { PaymentContracts } from './payments.js';

/** Version of the deployment file format. */
export const DEPLOYMENT_VERSION = 1;

/** The addresses of Verity's contracts on one chain. */
export interface ContractAddresses {
  readonly nodeRegistry: Address;
  readonly modelRegistry: Address;
  readonly logAnchor: Address;
  /** `Ceremony`, the transcripts of setup ceremonies (zk); absent in files written before it existed. */
  readonly ceremony?: Address;
  /** `ZkVerifierRegistry`: verification key → its Groth16 verifier; auditors' attestations; models' zk bindings. */
  readonly zkVerifiers: Address;
  /**
   * `Disputes`, the registry's slasher (contracts/Disputes.sol); absent in files written before it
   * existed and in test deployments with a hand-picked slasher.
   */
  readonly disputes?: Address;
}

/** The rules fixed in `NodeRegistry` at deployment. */
export interface DeployParams {
  /** Minimum stake in wei. */
  readonly minStake: bigint;
  /** Seconds between `requestUnbond` and `withdraw`. */
  readonly unbondingDelay: number;
  /** The only account that may slash: the `Disputes` contract (`contracts.disputes`). */
  readonly slasher: Address;
}

/** Where Verity's contracts live, and how they were set up. */
export interface Deployment {
  readonly version: typeof DEPLOYMENT_VERSION;
  readonly chainId: number;
  /** A JSON-RPC URL that reaches the chain; a node's `--rpc` wins over it. */
  readonly rpcUrl?: string;
  /** Block of the first deployment transaction: where to start reading events. */
  readonly block: bigint;
  readonly deployer: Address;
  readonly contracts: ContractAddresses;
  readonly params: DeployParams;
  /** The payment token and `MeteredSettlement`, when deployed (`verity up` does). */
  readonly payments?: PaymentContracts;
}

/** Options of {@link deployContracts}. */
export interface DeployOptions extends Omit<DeployParams, 'slasher'> {
  /** Recorded in the deployment; defaults to the public client's HTTP URL, if it has one. */
  readonly rpcUrl?: string;
  /** The rules of `Disputes`; {@link DEFAULT_DISPUTE_PARAMS} if absent. */
  readonly disputes?: DisputeParams;
  /**
   * Tests only: an account that slashes by hand instead of `Disputes` (then no `Disputes` is
   * deployed: its constructor refuses a registry whose slasher is not itself).
   */
  readonly slasher?: Address;
}

/** Deploys one contract from the wallet's account (at `nonce`, default its next one). */
export async function deployOne(
  clients: ChainClients,
  name: string,
  abi: Abi,
  bytecode: Hex,
  args: readonly unknown[],
  nonce?: number,
): Promise<{ address: Address; block: bigint }> {
  const { walletClient } = clients;
  const receipt = await sendAndConfirm(clients, `deploy ${name}`, () =>
    walletClient.deployContract({
      abi,
      bytecode,
      args,
      ...(nonce === undefined ? {} : { nonce }),
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
  if (receipt.contractAddress == null) return fail('INTERNAL', `deploy ${name}: no contract address in the receipt`);
  return { address: getAddress(receipt.contractAddress), block: receipt.blockNumber };
}

/**
 * Deploys `NodeRegistry`, `ModelRegistry`, `LogAnchor`, `Ceremony`, `ZkVerifierRegistry` and
 * `Disputes` from the wallet's account, with consecutive nonces from its next one.
 *
 * The registry's slasher is immutable and must be `Disputes`, which needs the registry's address:
 * the registry is deployed first with the address `Disputes` will have (the CREATE address of the
 * deployer and the nonce of the last deployment, `getContractAddress`), and `Disputes`'
 * constructor refuses a registry that names anyone else. No setter exists, so once `Disputes` is
 * at that address nobody can ever become slasher (the deployer itself has used that nonce).
 *
 * @example
 * ```ts
 * const deployment = await deployContracts(clients, { minStake: parseEther('1'), unbondingDelay: 7 * 86400 });
 * ```
 */
export async function deployContracts(clients: ChainClients, options: DeployOptions): Promise<Deployment> {
  if (options.minStake < 0n || options.minStake >= 2n ** 128n) fail('INVALID_ARGUMENT', 'minStake out of range');
  if (!Number.isSafeInteger(options.unbondingDelay) || options.unbondingDelay < 0) {
    fail('INVALID_ARGUMENT', 'unbondingDelay must be a whole number of seconds', { value: options.unbondingDelay });
  }
  const disputeParams = disputeParamsArg(options.disputes ?? DEFAULT_DISPUTE_PARAMS);
  // Disputes' constructor refuses this too, but only after the registry is deployed: check first.
  if (
    options.slasher === undefined &&
    disputeParams.challengeWindow + disputeParams.commitPeriod + disputeParams.revealPeriod >=
      BigInt(options.unbondingDelay)
  ) {
    fail('INVALID_ARGUMENT', 'challengeWindow + commitPeriod + revealPeriod must be below unbondingDelay', {
      unbondingDelay: options.unbondingDelay,
    });
  }
  const deployer = getAddress(clients.walletClient.account.address);
  const [chainId, nonce] = await read('deploy', () =>
    Promise.all([
      clients.publicClient.getChainId(),
      clients.publicClient.getTransactionCount({ address: deployer, blockTag: 'pending' }),
    ]),
  );
  // Disputes is the sixth deployment: nonce + 5.
  const predicted = getContractAddress({ from: deployer, nonce: BigInt(nonce + 5) });
  const slasher = options.slasher === undefined ? predicted : getAddress(address(options.slasher, 'slasher'));
  const registry = await deployOne(
    clients,
    'NodeRegistry',
    nodeRegistryAbi,
    nodeRegistryBytecode,
    [options.minStake, BigInt(options.unbondingDelay), slasher],
    nonce,
  );
  const models = await deployOne(clients, 'ModelRegistry', modelRegistryAbi, modelRegistryBytecode, [], nonce + 1);
  const anchors = await deployOne(clients, 'LogAnchor', logAnchorAbi, logAnchorBytecode, [registry.address], nonce + 2);
  const ceremony = await deployOne(clients, 'Ceremony', ceremonyAbi as Abi, ceremonyBytecode, [], nonce + 3);
  const zkVerifiers = await deployOne(
    clients,
    'ZkVerifierRegistry',
    zkVerifierRegistryAbi,
    zkVerifierRegistryBytecode,
    [models.address],
    nonce + 4,
  );
  let disputes: Address | undefined;
  if (slasher === predicted) {
    disputes = (
      await deployOne(
        clients,
        'Disputes',
        disputesAbi,
        disputesBytecode,
        [registry.address, anchors.address, disputeParams, zkVerifiers.address],
        nonce + 5,
      )
    ).address;
    if (disputes !== predicted) {
      fail('INTERNAL', 'deploy Disputes: not at the address the registry names as slasher', { disputes, predicted });
    }
  }
  const transport = clients.publicClient.transport as { url?: unknown };
  const rpcUrl = options.rpcUrl ?? (typeof transport.url === 'string' ? transport.url : undefined);
  return {
    version: DEPLOYMENT_VERSION,
    chainId,
    ...(rpcUrl === undefined ? {} : { rpcUrl }),
    block: registry.block,
    deployer,
    contracts: {
      nodeRegistry: registry.address,
      modelRegistry: models.address,
      logAnchor: anchors.address,
      ceremony: ceremony.address,
      zkVerifiers: zkVerifiers.address,
      ...(disputes === undefined ? {} : { disputes }),
    },
    params: { minStake: options.minStake, unbondingDelay: options.unbondingDelay, slasher },
  };
}

/** The JSON form of a deployment (see the module comment). */
export function deploymentToJson(deployment: Deployment): Record<string, unknown> {
  return {
    version: deployment.version,
    chainId: deployment.chainId,
    ...(deployment.rpcUrl === undefined ? {} : { rpcUrl: deployment.rpcUrl }),
    block: Number(deployment.block),
    deployer: deployment.deployer,
    contracts: { ...deployment.contracts },
    params: {
      minStake: deployment.params.minStake.toString(),
      unbondingDelay: deployment.params.unbondingDelay,
      slasher: deployment.params.slasher,
    },
    ...(deployment.payments === undefined ? {} : { payments: { ...deployment.payments } }),
  };
}

function invalid(path: string, message: string): never {
  return fail('CONFIG_INVALID', `deployment ${path}: ${message}`, { path });
}

function object(value: unknown, path: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(path, 'must be an object');
  return value as Record<string, unknown>;
}

function exactKeys(
  o: Record<string, unknown>,
  path: string,
  required: readonly string[],
  optional: readonly string[] = [],
) {
  for (const k of required) if (!(k in o)) invalid(`${path}/${k}`, 'is missing');
  for (const k of Object.keys(o))
    if (!required.includes(k) && !optional.includes(k)) invalid(`${path}/${k}`, 'is not a known field');
}

function integer(value: unknown, path: string, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    invalid(path, `must be a whole number ≥ ${min}`);
  }
  return value;
}

function checksummed(value: unknown, path: string): Address {
  // Mixed case must be a correct EIP-55 checksum: a typo in an address is then caught here.
  if (typeof value !== 'string' || !isAddress(value, { strict: true })) invalid(path, 'must be an address');
  return getAddress(value);
}

/**
 * Checks and reads a parsed deployment file; anything wrong is `CONFIG_INVALID` with
 * `details.path` (a JSON pointer) naming the field.
 */
export function deploymentFromJson(json: unknown): Deployment {
  const o = object(json, '');
  exactKeys(o, '', ['version', 'chainId', 'block', 'deployer', 'contracts', 'params'], ['rpcUrl', 'payments']);
  if (o.version !== DEPLOYMENT_VERSION) invalid('/version', `must be ${DEPLOYMENT_VERSION}`);
  const chainId = integer(o.chainId, '/chainId', 1);
  let rpcUrl: string | undefined;
  if (o.rpcUrl !== undefined) {
    if (typeof o.rpcUrl !== 'string' || !/^(https?|wss?):\/\/./.test(o.rpcUrl)) {
      invalid('/rpcUrl', 'must be an http(s) or ws(s) URL');
    }
    rpcUrl = o.rpcUrl;
  }
  const c = object(o.contracts, '/contracts');
  exactKeys(c, '/contracts', ['nodeRegistry', 'modelRegistry', 'logAnchor', 'zkVerifiers'], ['ceremony', 'disputes']);
  const p = object(o.params, '/params');
  exactKeys(p, '/params', ['minStake', 'unbondingDelay', 'slasher']);
  if (typeof p.minStake !== 'string' || !/^(0|[1-9][0-9]{0,38})$/.test(p.minStake)) {
    invalid('/params/minStake', 'must be wei as a decimal string');
  }
  let payments: PaymentContracts | undefined;
  if (o.payments !== undefined) {
    const m = object(o.payments, '/payments');
    exactKeys(m, '/payments', ['token', 'meteredSettlement']);
    payments = {
      token: checksummed(m.token, '/payments/token'),
      meteredSettlement: checksummed(m.meteredSettlement, '/payments/meteredSettlement'),
    };
  }
  return {
    version: DEPLOYMENT_VERSION,
    chainId,
    ...(rpcUrl === undefined ? {} : { rpcUrl }),
    block: BigInt(integer(o.block, '/block', 0)),
    deployer: checksummed(o.deployer, '/deployer'),
    contracts: {
      nodeRegistry: checksummed(c.nodeRegistry, '/contracts/nodeRegistry'),
      modelRegistry: checksummed(c.modelRegistry, '/contracts/modelRegistry'),
      logAnchor: checksummed(c.logAnchor, '/contracts/logAnchor'),
      ...(c.ceremony === undefined ? {} : { ceremony: checksummed(c.ceremony, '/contracts/ceremony') }),
      zkVerifiers: checksummed(c.zkVerifiers, '/contracts/zkVerifiers'),
      ...(c.disputes === undefined ? {} : { disputes: checksummed(c.disputes, '/contracts/disputes') }),
    },
    params: {
      minStake: BigInt(p.minStake),
      unbondingDelay: integer(p.unbondingDelay, '/params/unbondingDelay', 0),
      slasher: checksummed(p.slasher, '/params/slasher'),
    },
    ...(payments === undefined ? {} : { payments }),
  };
}

/**
 * Checks that a deployment describes the chain behind `publicClient`: same chain id, code at
 * every address, `LogAnchor` bound to the `NodeRegistry`, and the registry's rules as recorded.
 * Run it before a node trusts a deployment file; a mismatch is `CONFIG_INVALID`.
 */
export async function verifyDeployment(publicClient: PublicClient, deployment: Deployment): Promise<void> {
  const { contracts, params } = deployment;
  const [chainId, ...codes] = await read('verifyDeployment', () =>
    Promise.all([
      publicClient.getChainId(),
      publicClient.getCode({ address: contracts.nodeRegistry }),
      publicClient.getCode({ address: contracts.modelRegistry }),
      publicClient.getCode({ address: contracts.logAnchor }),
      publicClient.getCode({ address: contracts.zkVerifiers }),
      contracts.ceremony === undefined ? '0x00' : publicClient.getCode({ address: contracts.ceremony }),
      contracts.disputes === undefined ? '0x00' : publicClient.getCode({ address: contracts.disputes }),
    ]),
  );
  if (chainId !== deployment.chainId) {
    fail('CONFIG_INVALID', 'the deployment is for another chain', { expected: deployment.chainId, actual: chainId });
  }
  const names = ['nodeRegistry', 'modelRegistry', 'logAnchor', 'zkVerifiers', 'ceremony', 'disputes'] as const;
  names.forEach((name, i) => {
    const code = codes[i];
    if (code === undefined || code === '0x') {
      fail('CONFIG_INVALID', `no contract at ${name}`, { contract: name, address: contracts[name] });
    }
  });
  if (deployment.payments !== undefined) {
    const { payments } = deployment;
    const paymentCodes = await read('verifyDeployment', () =>
      Promise.all([
        publicClient.getCode({ address: payments.token }),
        publicClient.getCode({ address: payments.meteredSettlement }),
      ]),
    );
    (['token', 'meteredSettlement'] as const).forEach((name, i) => {
      const code = paymentCodes[i];
      if (code === undefined || code === '0x') {
        fail('CONFIG_INVALID', `no contract at payments.${name}`, { contract: name, address: payments[name] });
      }
    });
  }
  const registry = { address: contracts.nodeRegistry, abi: nodeRegistryAbi } as const;
  const disputes =
    contracts.disputes === undefined ? undefined : ({ address: contracts.disputes, abi: disputesAbi } as const);
  const [linked, minStake, unbondingDelay, slasher, disputesRegistry, disputesAnchors, , zkModels, disputesZk] =
    await read('verifyDeployment', () =>
      Promise.all([
        publicClient.readContract({ address: contracts.logAnchor, abi: logAnchorAbi, functionName: 'registry' }),
        publicClient.readContract({ ...registry, functionName: 'minStake' }),
        publicClient.readContract({ ...registry, functionName: 'unbondingDelay' }),
        publicClient.readContract({ ...registry, functionName: 'slasher' }),
        disputes === undefined ? undefined : publicClient.readContract({ ...disputes, functionName: 'registry' }),
        disputes === undefined ? undefined : publicClient.readContract({ ...disputes, functionName: 'anchors' }),
        // Fails on a Disputes older than the on-chain audit rate (and its LogAnchor without anchor
        // times): such a deployment is not this version's, and `verity up` deploys afresh.
        disputes === undefined ? undefined : publicClient.readContract({ ...disputes, functionName: 'auditRatePpm' }),
        publicClient.readContract({
          address: contracts.zkVerifiers,
          abi: zkVerifierRegistryAbi,
          functionName: 'models',
        }),
        disputes === undefined ? undefined : publicClient.readContract({ ...disputes, functionName: 'zkVerifiers' }),
      ]),
    ).catch((e: unknown) => {
      // Some other contract at these addresses answers with a revert or garbage.
      if (isVerityError(e, 'NETWORK_ERROR')) throw e;
      throw new VerityError('CONFIG_INVALID', 'the contracts on chain are not Verity contracts', {
        details: { contracts },
        cause: e,
      });
    });
  const actual = { registry: linked, minStake, unbondingDelay: Number(unbondingDelay), slasher };
  if (
    getAddress(linked) !== contracts.nodeRegistry ||
    minStake !== params.minStake ||
    Number(unbondingDelay) !== params.unbondingDelay ||
    getAddress(slasher) !== params.slasher ||
    // Zk bindings are set by the publishers of this ModelRegistry, and Disputes reads these bindings.
    getAddress(zkModels) !== contracts.modelRegistry ||
    // Disputes, when present, is the slasher and is bound to this registry and these anchors.
    (contracts.disputes !== undefined &&
      (params.slasher !== contracts.disputes ||
        getAddress(disputesRegistry ?? '0x0000000000000000000000000000000000000000') !== contracts.nodeRegistry ||
        getAddress(disputesAnchors ?? '0x0000000000000000000000000000000000000000') !== contracts.logAnchor ||
        getAddress(disputesZk ?? '0x0000000000000000000000000000000000000000') !== contracts.zkVerifiers))
  ) {
    fail('CONFIG_INVALID', 'the contracts on chain do not match the deployment', {
      actual: { ...actual, minStake: minStake.toString() },
    });
  }
}
