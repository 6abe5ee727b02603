/**
 * `verity zk audit MODEL`: an independent check, from a clean data dir, that a zk model's
 * verification key belongs to the model's circuit (issue 11.3). It fetches the model by CID from
 * the node (the manifest must hash to the CID and carry its publisher's signature; every block of
 * the artifact is checked), recompiles the circuit from the artifact and the signed `zk.params`
 * (R1CS hash = `zk.r1cs`), fetches the proving key the node serves, runs `zkey verify` against
 * that R1CS and the phase-1 file (`--ptau FILE` for a file or ceremony phase 1; `--ptau-dir DIR`
 * for a local-dev one), checks the phase-2 transcript against the deployment's Ceremony contract
 * (multi-party), and that the key's vk digest is `zk.vk`. Nothing the node says is trusted. The
 * result is a `ZkAudit` record in `<dataDir>/zk/audits/<manifestCid>.json`; `--attest` records it
 * on chain (`ZkVerifierRegistry.attest`) from `--account-key` / `$VERITY_ACCOUNT_KEY`.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isCid, VerityError } from '@verity/protocol';
import { dataDirOf, localChain } from '../data-dir.js';
import { print, targetUrl } from '../target.js';
import { parseFlags, UsageError } from '../usage.js';

const FLAGS = {
  url: { type: 'string' },
  'data-dir': { type: 'string' },
  rpc: { type: 'string' },
  deployment: { type: 'string' },
  ptau: { type: 'string' },
  'ptau-dir': { type: 'string' },
  attest: { type: 'boolean', default: false },
  'account-key': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

/** `verity zk …` */
export async function runZk(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'audit') throw new UsageError('zk takes audit');
  const { values: flags, positionals } = parseFlags({ args: rest, allowPositionals: true, options: FLAGS });
  const model = positionals[0];
  if (model === undefined || positionals.length > 1) throw new UsageError('zk audit takes one MODEL (a manifest CID)');
  const dataDir = dataDirOf(flags);
  const url = targetUrl(flags).replace(/\/+$/, '');
  if ((flags.rpc === undefined) !== (flags.deployment === undefined)) {
    throw new UsageError('--rpc and --deployment go together');
  }
  const found =
    flags.rpc !== undefined ? { rpcUrl: flags.rpc, deploymentFile: flags.deployment as string } : localChain(dataDir);

  const [node, contracts, protocol, viem] = await Promise.all([
    import('@verity/node'),
    import('@verity/contracts'),
    import('@verity/protocol'),
    import('viem'),
  ]);
  // The model by CID; a name is asked of the node, and everything below is checked against the CID it names.
  const cid = isCid(model)
    ? model
    : ((await (await fetch(`${url}/v1/models/${encodeURIComponent(model)}`)).json()) as { id?: string }).id;
  if (cid === undefined || !isCid(cid)) throw new VerityError('MODEL_NOT_FOUND', 'the node does not know this model');
  const store = await node.openModelStore({ dir: join(dataDir, 'models') });
  const stored = await node.fetchModel(url, cid, store, {
    maxSize: node.DEFAULT_CONFIG.limits.modelBytes,
    policy: { localNetwork: true },
  });

  let chain:
    | { publicClient: import('viem').PublicClient; deployment: import('@verity/contracts').Deployment }
    | undefined;
  if (found !== undefined) {
    const { readDeploymentFile } = await import('@verity/contracts/node');
    const deployment = await readDeploymentFile(found.deploymentFile);
    const publicClient = viem.createPublicClient({
      chain: viem.defineChain({
        id: deployment.chainId,
        name: `chain ${deployment.chainId}`,
        nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
        rpcUrls: { default: { http: [found.rpcUrl] } },
      }),
      transport: viem.http(found.rpcUrl),
      pollingInterval: 250,
    }) as import('viem').PublicClient;
    chain = { publicClient, deployment };
  }

  const settings = {
    ...node.DEFAULT_CONFIG.zk,
    cacheDir: join(dataDir, 'zk'),
    ...(flags.ptau === undefined ? {} : { ptauPath: flags.ptau }),
    ...(flags['ptau-dir'] === undefined ? {} : { ptauDir: flags['ptau-dir'] }),
  };
  const service = node.createZkService(settings, dataDir, {
    async ceremonyRecord(ref) {
      if (chain === undefined) {
        throw new VerityError(
          'ZK_SETUP_UNTRUSTED',
          'a multi-party key is checked against its ceremony: give --rpc URL --deployment FILE',
        );
      }
      return node.readTrustedCeremony(chain.publicClient, chain.deployment, ref);
    },
  });
  try {
    const response = await fetch(`${url}/v1/zk/${cid}/zkey`);
    if (!response.ok || response.body === null) {
      throw new VerityError('NOT_FOUND', `the node serves no proving key for this model (HTTP ${response.status})`);
    }
    const zkey = await node.readBounded(
      response.body as unknown as AsyncIterable<Uint8Array>,
      Math.floor(settings.maxProvingBytes / 2),
    );
    const { audit, verificationKey } = await service.audit(cid, stored.manifest, stored.artifactPath, zkey);
    const dir = join(dataDir, 'zk', 'audits');
    await mkdir(dir, { recursive: true });
    const path = join(dir, `${cid}.json`);
    await writeFile(`${path}.${process.pid}.tmp`, `${JSON.stringify(audit, null, 2)}\n`);
    await rename(`${path}.${process.pid}.tmp`, path);
    let attestation: { auditor: string; transactionHash: string } | undefined;
    if (flags.attest) {
      if (chain === undefined) throw new UsageError('--attest needs the chain: --rpc URL --deployment FILE');
      const key = flags['account-key'] ?? process.env.VERITY_ACCOUNT_KEY;
      if (key === undefined || !/^0x[0-9a-fA-F]{64}$/.test(key)) {
        throw new UsageError('--attest signs with --account-key HEX or $VERITY_ACCOUNT_KEY (0x + 64 hex digits)');
      }
      const { privateKeyToAccount } = await import('viem/accounts');
      const account = privateKeyToAccount(key as `0x${string}`);
      const walletClient = viem.createWalletClient({
        account,
        chain: chain.publicClient.chain,
        transport: viem.http(found?.rpcUrl),
      });
      const receipt = await contracts.attestZkAudit({ publicClient: chain.publicClient, walletClient } as never, {
        zkVerifiers: chain.deployment.contracts.zkVerifiers,
        manifestDigest: protocol.zkManifestDigest(cid),
        vkKey: protocol.zkVkKey(verificationKey),
      });
      attestation = { auditor: account.address, transactionHash: receipt.transactionHash };
    }
    const lines = [
      `audited ${cid}: the verification key belongs to the model's circuit`,
      `  circuit  recompiled from the artifact and zk.params: R1CS ${audit.r1cs}`,
      `  key      zkey verify against the R1CS and the phase 1 (${audit.phase1.kind}); vk ${audit.vk}`,
      audit.setup === 'multi-party'
        ? `  phase 2  ${audit.contributors.length} contributors on chain (${audit.contributors.join(', ')}), beacon ${audit.beacon}`
        : '  phase 2  local-dev: one party made it and could forge proofs',
      `  record   ${path}`,
      ...(attestation === undefined
        ? []
        : [`  attested on chain by ${attestation.auditor} (${attestation.transactionHash})`]),
    ];
    print(flags.json, { audit, path, ...(attestation === undefined ? {} : { attestation }) }, lines.join('\n'));
    return 0;
  } finally {
    await service.close();
  }
}
