/**
 * Groth16 verifiers on chain and `ZkVerifierRegistry` (contracts/ZkVerifierRegistry.sol): the
 * verifier of a key is `Groth16Verifier`'s runtime code followed by the key's encoding (protocol
 * `zkVkEncoding`), so its code is a pure function of the key ({@link zkVerifierCode}); anyone
 * deploys it ({@link deployZkVerifier}) and registers it ({@link registerZkVerifier}); the
 * registry refuses any other code (`ZK_VERIFIER_CODE_MISMATCH`). Clients find a key's verifier by
 * `vkKey` = protocol `zkVkKey(vk)` ({@link zkVerifierOf}), never by an address a node gives.
 * Auditors record audits with {@link attestZkAudit}; {@link readZkAttestation} reads them.
 * A model's publisher binds it to its key and public layout with {@link bindZkModel}
 * ({@link getZkBinding} reads it), which lets `Disputes` settle a zk record's dispute by a proof.
 */
import {
  fail,
  toHex,
  type ZkBinding,
  type ZkIo,
  zkBindingLayout,
  zkManifestDigest,
  zkVkEncoding,
  zkVkKey,
} from '@verity/protocol';
import {
  type Address,
  getAddress,
  type Hex,
  hexToBytes,
  type PublicClient,
  type TransactionReceipt,
  zeroAddress,
} from 'viem';
import { address, bytes32, type ChainClients, read, sendAndConfirm } from './clients.js';
import { groth16VerifierAbi, groth16VerifierRuntimeBytecode } from './generated/groth16-verifier.js';
import { modelRegistryAbi } from './generated/model-registry.js';
import { zkVerifierRegistryAbi } from './generated/zk-verifier-registry.js';

/** The runtime code every verifier starts with (`Groth16Verifier`, as compiled into the registry). */
export const ZK_VERIFIER_TEMPLATE: Hex = groth16VerifierRuntimeBytecode;

/** The ABI of every verifier: `verifyProof(a, b, c, input[])` and `nPublic()`. */
export const zkVerifierAbi = groth16VerifierAbi;

const ZERO32 = `0x${'0'.repeat(64)}` as Hex;

/**
 * The runtime code of the verifier of `vk` (a snarkjs Groth16 bn128 verification key):
 * {@link ZK_VERIFIER_TEMPLATE} ‖ `zkVkEncoding(vk)`. What `eth_getCode` answers at a verifier the
 * registry accepts for this key. Throws `INVALID_ARGUMENT` for a malformed key.
 *
 * @example
 * ```ts
 * (await publicClient.getCode({ address: verifier })) === zkVerifierCode(vk);
 * ```
 */
export function zkVerifierCode(vk: unknown): Hex {
  return `${ZK_VERIFIER_TEMPLATE}${toHex(zkVkEncoding(vk))}`;
}

/**
 * Creation code that deploys {@link zkVerifierCode} as is: a 10-byte prefix
 * `PUSH2 len; DUP1; PUSH1 10; PUSH0; CODECOPY; PUSH0; RETURN` (Shanghai) that returns the code after it.
 */
export function zkVerifierCreationCode(vk: unknown): Hex {
  const runtime = zkVerifierCode(vk);
  const length = (runtime.length - 2) / 2;
  // EIP-170: no account holds more than 24,576 bytes of code (≈ 360 public signals here).
  if (length > 24_576) {
    fail('INVALID_ARGUMENT', 'the verifier of this key exceeds the 24,576-byte code limit', { length });
  }
  return `0x61${length.toString(16).padStart(4, '0')}80600a5f395ff3${runtime.slice(2)}`;
}

/**
 * Deploys the verifier of `vk` from the wallet's account (it still has to be registered).
 *
 * @example
 * ```ts
 * const { address } = await deployZkVerifier(clients, { vk });
 * await registerZkVerifier(clients, { zkVerifiers, verifier: address });
 * ```
 */
export async function deployZkVerifier(
  clients: ChainClients,
  params: { readonly vk: unknown },
): Promise<{ address: Address; receipt: TransactionReceipt }> {
  const data = zkVerifierCreationCode(params.vk);
  const { walletClient } = clients;
  const receipt = await sendAndConfirm(clients, 'deployZkVerifier', () =>
    walletClient.sendTransaction({ data, account: walletClient.account, chain: walletClient.chain }),
  );
  if (receipt.contractAddress == null) return fail('INTERNAL', 'deployZkVerifier: no contract address in the receipt');
  return { address: getAddress(receipt.contractAddress), receipt };
}

/**
 * Registers a deployed verifier in `ZkVerifierRegistry` (anyone may). The registry checks the
 * code: anything but the template followed by a well-formed key is refused with
 * `ZK_VERIFIER_CODE_MISMATCH` (`details.revert`: `VerifierCodeMismatch`, or
 * `VerificationKeyMalformed` when the prefix is right but the key is not). The first verifier
 * registered for a key stays: `verifier` in the result is the registered one, which may be an
 * earlier deployment of the same code.
 *
 * @example
 * ```ts
 * const { vkKey, verifier } = await registerZkVerifier(clients, { zkVerifiers, verifier: address });
 * ```
 */
export async function registerZkVerifier(
  clients: ChainClients,
  params: { readonly zkVerifiers: Address; readonly verifier: Address },
): Promise<{ vkKey: Hex; verifier: Address; receipt: TransactionReceipt }> {
  const registry = address(params.zkVerifiers, 'zkVerifiers');
  const candidate = address(params.verifier, 'verifier');
  const { publicClient, walletClient } = clients;
  // Simulated first: the key's id is the call's result, and a refusal is a typed error before sending.
  const { result: vkKey } = await read('registerZkVerifier', () =>
    publicClient.simulateContract({
      address: registry,
      abi: zkVerifierRegistryAbi,
      functionName: 'register',
      args: [candidate],
      account: walletClient.account,
    }),
  );
  const receipt = await sendAndConfirm(clients, 'registerZkVerifier', () =>
    walletClient.writeContract({
      address: registry,
      abi: zkVerifierRegistryAbi,
      functionName: 'register',
      args: [candidate],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
  const verifier = await zkVerifierOf(publicClient, { zkVerifiers: registry, vkKey });
  if (verifier === undefined) return fail('INTERNAL', 'registerZkVerifier: the registry did not record the verifier');
  return { vkKey, verifier, receipt };
}

/**
 * The verifier registered for `vkKey` (protocol `zkVkKey(vk)`), or `undefined`.
 *
 * @example
 * ```ts
 * const verifier = await zkVerifierOf(publicClient, { zkVerifiers, vkKey: zkVkKey(vk) });
 * ```
 */
export async function zkVerifierOf(
  publicClient: Pick<PublicClient, 'readContract'>,
  params: { readonly zkVerifiers: Address; readonly vkKey: Hex },
): Promise<Address | undefined> {
  const vkKey = bytes32(params.vkKey, 'vkKey');
  const found = await read('zkVerifierOf', () =>
    publicClient.readContract({
      address: address(params.zkVerifiers, 'zkVerifiers'),
      abi: zkVerifierRegistryAbi,
      functionName: 'verifierOf',
      args: [vkKey],
    }),
  );
  return found === zeroAddress ? undefined : getAddress(found);
}

/**
 * Records, from the wallet's account (the auditor), that the model whose manifest has digest
 * `manifestDigest` (protocol `zkManifestDigest(manifestCid)`) has verification key `vkKey` and
 * passed the audit. Permanent: attesting the same again is a no-op, another key for the same
 * manifest is refused (`details.revert` `AttestationConflict`).
 *
 * @example
 * ```ts
 * await attestZkAudit(clients, { zkVerifiers, manifestDigest: zkManifestDigest(cid), vkKey: zkVkKey(vk) });
 * ```
 */
export async function attestZkAudit(
  clients: ChainClients,
  params: { readonly zkVerifiers: Address; readonly manifestDigest: Hex; readonly vkKey: Hex },
): Promise<TransactionReceipt> {
  const manifestDigest = bytes32(params.manifestDigest, 'manifestDigest');
  const vkKey = bytes32(params.vkKey, 'vkKey');
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'attestZkAudit', () =>
    walletClient.writeContract({
      address: address(params.zkVerifiers, 'zkVerifiers'),
      abi: zkVerifierRegistryAbi,
      functionName: 'attest',
      args: [manifestDigest, vkKey],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/**
 * The key `auditor` attested for a manifest digest, or `undefined` if it attested none.
 *
 * @example
 * ```ts
 * (await readZkAttestation(publicClient, { zkVerifiers, auditor, manifestDigest })) === zkVkKey(vk);
 * ```
 */
export async function readZkAttestation(
  publicClient: Pick<PublicClient, 'readContract'>,
  params: { readonly zkVerifiers: Address; readonly auditor: Address; readonly manifestDigest: Hex },
): Promise<Hex | undefined> {
  const manifestDigest = bytes32(params.manifestDigest, 'manifestDigest');
  const vkKey = await read('readZkAttestation', () =>
    publicClient.readContract({
      address: address(params.zkVerifiers, 'zkVerifiers'),
      abi: zkVerifierRegistryAbi,
      functionName: 'attestation',
      args: [address(params.auditor, 'auditor'), manifestDigest],
    }),
  );
  return vkKey === ZERO32 ? undefined : vkKey;
}

/** The registry with `ModelRegistry`'s errors, which `bindModel` passes on (`UnknownVersion`). */
const bindAbi = [...zkVerifierRegistryAbi, ...modelRegistryAbi.filter((item) => item.type === 'error')] as const;

/** Parameters of {@link bindZkModel}. */
export interface BindZkModelParams {
  readonly zkVerifiers: Address;
  /** The `ModelRegistry` name and version the wallet's account published. */
  readonly name: string;
  readonly version: string;
  /** Its manifest CID (the version's); the binding is stored under `zkManifestDigest(manifestCid)`. */
  readonly manifestCid: string;
  /** The circuit's verification key (snarkjs JSON); its verifier must be registered. */
  readonly vk: unknown;
  /** The circuit's public layout (the manifest's `zk.io`). */
  readonly io: ZkIo;
}

/**
 * Binds a published zk model to its verification key and public layout (docs/protocol.md §12 "The
 * zk binding"), from the wallet's account, which must be the version's publisher
 * (`UNAUTHORIZED`, `details.revert` `NotModelPublisher`). Once and for good (`ZK_BINDING_CONFLICT`).
 * The key's verifier must be registered (`ZK_VERIFIER_UNREGISTERED`) with as many public signals
 * as the layout (`ZK_BINDING_INVALID`, also for a CID that is not the version's). Bind before any
 * node answers with the model: a dispute over a record made before the binding is not settled by a
 * proof.
 *
 * @example
 * ```ts
 * await bindZkModel(publisher, { zkVerifiers, name: 'iris-zk', version: '1.0.0', manifestCid: cid, vk, io: zkFacts(manifest).io });
 * ```
 */
export async function bindZkModel(clients: ChainClients, params: BindZkModelParams): Promise<TransactionReceipt> {
  const manifestDigest = zkManifestDigest(params.manifestCid);
  const vkKey = zkVkKey(params.vk);
  const layout = `0x${toHex(zkBindingLayout(params.io))}` as Hex;
  const { walletClient } = clients;
  return sendAndConfirm(clients, 'bindZkModel', () =>
    walletClient.writeContract({
      address: address(params.zkVerifiers, 'zkVerifiers'),
      abi: bindAbi,
      functionName: 'bindModel',
      args: [params.name, params.version, manifestDigest, vkKey, layout],
      account: walletClient.account,
      chain: walletClient.chain,
    }),
  );
}

/**
 * The zk binding of a model by manifest CID, or `undefined` when it has none. Compare it with the
 * manifest and key one serves with protocol `zkBindingMismatch`.
 *
 * @example
 * ```ts
 * const binding = await getZkBinding(publicClient, { zkVerifiers, manifestCid: cid });
 * ```
 */
export async function getZkBinding(
  publicClient: Pick<PublicClient, 'readContract'>,
  params: { readonly zkVerifiers: Address; readonly manifestCid: string; readonly blockNumber?: bigint },
): Promise<ZkBinding | undefined> {
  const b = await read('getZkBinding', () =>
    publicClient.readContract({
      address: address(params.zkVerifiers, 'zkVerifiers'),
      abi: zkVerifierRegistryAbi,
      functionName: 'bindingOf',
      args: [zkManifestDigest(params.manifestCid)],
      ...(params.blockNumber === undefined ? {} : { blockNumber: params.blockNumber }),
    }),
  );
  if (b.boundAt === 0n) return undefined;
  return { vkKey: b.vkKey, publisher: getAddress(b.publisher), boundAt: Number(b.boundAt), layout: hexToBytes(b.io) };
}
