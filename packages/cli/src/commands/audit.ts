/**
 * `verity audit`: one pass of the auditor over every registered node (docs/protocol.md §15.8):
 * samples the `audited` records within their challenge window (at the rate `Disputes` fixes, or a
 * higher `--rate` in parts per million, from the hash of the block after each record's first
 * anchor), fetches their payloads, re-executes them on a local ONNX or LLM runtime and, with an
 * account key, challenges the ones that lie. The work is
 * `auditNodes` in `@verity/node`; this file parses flags and prints. Exit 0 when every sampled
 * record checked out, 1 when a node lied or did not serve a payload.
 */
import { join } from 'node:path';
import { dataDirOf, localChain } from '../data-dir.js';
import { print } from '../target.js';
import { parseFlags, UsageError } from '../usage.js';

/** `verity audit [--rpc URL --deployment FILE | --data-dir DIR] [--rate PPM] [--account-key HEX] [--local-network] [--json]` */
export async function runAudit(args: string[]): Promise<number> {
  const { values } = parseFlags({
    args,
    options: {
      rpc: { type: 'string' },
      deployment: { type: 'string' },
      'data-dir': { type: 'string' },
      rate: { type: 'string' },
      'account-key': { type: 'string' },
      'local-network': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if ((values.rpc === undefined) !== (values.deployment === undefined)) {
    throw new UsageError('--rpc and --deployment go together');
  }
  const dataDir = dataDirOf(values);
  const local = values.rpc === undefined ? localChain(dataDir) : undefined;
  const found =
    local ??
    (values.rpc === undefined ? undefined : { rpcUrl: values.rpc, deploymentFile: values.deployment as string });
  if (found === undefined) {
    throw new UsageError('audit reads the registry: --rpc URL --deployment FILE, or a `verity up` data dir');
  }
  const node = await import('@verity/node');
  // The chain fixes the rate; --rate may only raise it (auditNodes refuses a lower one).
  const ratePpm = values.rate === undefined ? undefined : Number(values.rate);
  if (ratePpm !== undefined && (!Number.isSafeInteger(ratePpm) || ratePpm < 1 || ratePpm > 1_000_000)) {
    throw new UsageError('--rate takes parts per million, 1 to 1000000 (at least the rate Disputes fixes)');
  }
  const key = values['account-key'] ?? process.env.VERITY_ACCOUNT_KEY;
  if (key !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(key)) {
    throw new UsageError('--account-key takes 0x + 64 hex digits');
  }
  const viem = await import('viem');
  const { readDeploymentFile } = await import('@verity/contracts/node');
  const deployment = await readDeploymentFile(found.deploymentFile);
  if (deployment.contracts.disputes === undefined) {
    throw new UsageError('this deployment has no Disputes contract: nothing can be challenged', { showHelp: false });
  }
  const chain = viem.defineChain({
    id: deployment.chainId,
    name: `chain ${deployment.chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [found.rpcUrl] } },
  });
  const transport = viem.http(found.rpcUrl);
  const publicClient = viem.createPublicClient({ chain, transport });
  let clients: Parameters<typeof node.auditNodes>[0]['clients'];
  if (key !== undefined) {
    const { privateKeyToAccount } = await import('viem/accounts');
    const walletClient = viem.createWalletClient({
      account: privateKeyToAccount(key as `0x${string}`),
      chain,
      transport,
    });
    clients = { publicClient: publicClient as never, walletClient };
  }
  // A local `verity up` network listens on 127.0.0.1.
  const policy = { localNetwork: values['local-network'] || local !== undefined };
  const store = await node.openModelStore({ dir: join(dataDir, 'audit', 'models') });
  const llmConfig = node.loadConfig({ env: process.env, overrides: { dataDir: join(dataDir, 'audit') } });
  const report = await node.auditNodes({
    publicClient: publicClient as never,
    deployment,
    ...(clients === undefined ? {} : { clients }),
    ...(ratePpm === undefined ? {} : { ratePpm }),
    reexecute: node.localReexecutor([node.createOnnxRuntime(), node.createPortableRuntime()], store, policy, {
      // Language models run as a node started here would run them (VERITY_LLM_* settings): a
      // record on another profile is only re-executed, never challenged, when outputs differ.
      llm: node.createRuntimes(llmConfig).llm,
      llmLimits: llmConfig.llm,
    }),
    policy,
  });
  const bad = report.findings.filter((f) => f.kind !== 'ok' && f.kind !== 'not-reexecuted');
  const lines = [
    `sampled at ${report.ratePpm} ppm (Disputes fixes ${report.chainRatePpm})`,
    ...report.nodes.map(
      (n) =>
        `${n.node}: ${n.audited} audited records in their window, ${n.sampled} sampled, ${n.pending} awaiting their seed block`,
    ),
    ...report.findings.map(
      (f) =>
        `${f.node} #${f.leafIndex ?? '-'} ${f.kind}${f.disputeId === undefined ? '' : ` (dispute ${f.disputeId})`}${
          f.error === undefined ? '' : `: ${f.error}`
        }`,
    ),
  ];
  print(
    values.json,
    JSON.parse(JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))),
    lines.join('\n'),
  );
  return bad.length === 0 ? 0 : 1;
}
