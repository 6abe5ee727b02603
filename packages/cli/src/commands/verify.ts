/**
 * `verity verify FILE`, and the one place where the CLI decides whom to trust (docs/design.md §2.6a):
 * the chain registry by default, keys pinned by hand, and — only when asked for by a flag whose
 * name says so — what a bundle or a node says about itself. Loads nothing of the node: the SDK
 * and the chain client are imported only when the chain is read or a zk proof is checked.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type InferenceRecord,
  isVerityError,
  isZkBundle,
  type PaymentPolicy,
  parseWitnessPolicy,
  parseZkAudit,
  type Receipt,
  type Trust,
  type TrustedNode,
  type VerifyOptions,
  type VerifyResult,
  VerityError,
  verifyBundle,
  type WitnessPolicy,
  type ZkAudit,
} from '@verity/protocol';
import type { ClientOptions, ZkTrustOptions } from '@verity/sdk';
import { dataDirOf, localChain, readNodeRecord, sameOrigin } from '../data-dir.js';
import { parseFlags, UsageError } from '../usage.js';

/** Flags that say whom to trust. */
export const TRUST_FLAGS = {
  node: { type: 'string', multiple: true },
  key: { type: 'string', multiple: true },
  rpc: { type: 'string' },
  deployment: { type: 'string' },
  block: { type: 'string' },
  'data-dir': { type: 'string' },
  'insecure-trust-bundle-nodes': { type: 'boolean', default: false },
} as const;

interface TrustFlags {
  node?: string[] | undefined;
  key?: string[] | undefined;
  rpc?: string | undefined;
  deployment?: string | undefined;
  block?: string | undefined;
  'data-dir'?: string | undefined;
  'insecure-trust-bundle-nodes'?: boolean | undefined;
  'insecure-trust-node'?: boolean | undefined;
}

const WHOM =
  'say whom to trust: run `verity up` (its chain is found in the data dir, --data-dir), ' +
  'or --rpc URL --deployment FILE, or --node ADDRESS --key VERIFIER_KEY';

/** `--node`/`--key` pairs: keys pinned by hand. */
function pinnedNodes(flags: TrustFlags): TrustedNode[] {
  const addresses = flags.node ?? [];
  const keys = flags.key ?? [];
  if (addresses.length !== keys.length) throw new UsageError('give --node and --key in pairs');
  return addresses.map((address, i) => ({ address, logKey: keys[i] as string }));
}

/**
 * The chain to read the registry from: `--rpc URL --deployment FILE`, else (`implicit`) the chain
 * of the data directory's node or of a local `verity up`.
 */
export async function chainOf(flags: TrustFlags, implicit: boolean): Promise<ClientOptions['chain'] | undefined> {
  if ((flags.rpc === undefined) !== (flags.deployment === undefined)) {
    throw new UsageError('--rpc and --deployment go together');
  }
  const found =
    flags.rpc !== undefined
      ? { rpcUrl: flags.rpc, deploymentFile: flags.deployment as string }
      : implicit
        ? localChain(dataDirOf(flags))
        : undefined;
  if (found === undefined) return undefined;
  let deployment: unknown;
  try {
    deployment = JSON.parse(await readFile(found.deploymentFile, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read the deployment file ${found.deploymentFile}: ${(e as Error).message}`, {
      showHelp: false,
    });
  }
  return { rpcUrl: found.rpcUrl, deployment };
}

/**
 * The trust a bundle is verified with: keys pinned by hand (`--node/--key`); the chain registry
 * at the block the bundle names (`--rpc/--deployment`, or by default, when no key is pinned, the
 * local `verity up` found in the data directory; without a chain there, the key of the data
 * directory's own node); the bundle's own node entries only under `--insecure-trust-bundle-nodes`.
 */
export async function bundleTrust(flags: TrustFlags, bundle: unknown): Promise<Trust> {
  const nodes = pinnedNodes(flags);
  const insecure = flags['insecure-trust-bundle-nodes'] === true;
  // Offline: the registry from the bundle's EIP-1186 proofs against a block the user pins.
  if (flags.block !== undefined) {
    const { offlineTrust } = await import('./verify-offline.js');
    const offline = await offlineTrust(bundle, { block: flags.block, deployment: flags.deployment, nodes });
    return insecure ? { ...offline, insecureAcceptBundleNodes: true } : offline;
  }
  const chain = await chainOf(flags, nodes.length === 0 && !insecure);
  if (chain === undefined && nodes.length === 0 && !insecure) {
    // No chain (a node run with --no-chain): the data dir's own node key, from the operator's files.
    const own = readNodeRecord(dataDirOf(flags));
    if (own === undefined) throw new UsageError(WHOM);
    nodes.push({ address: own.address, logKey: own.logKey });
  }
  // The registry at the block the bundle names, and (for an older block) the registry now: a
  // node that has left since cannot name a block from when it was staked (RECEIPT_NODE_EXITED).
  const { registry, current } =
    chain === undefined
      ? { registry: undefined, current: undefined }
      : await import('@verity/sdk').then(async ({ chainRegistrySnapshot, bundleRegistryBlock }) => {
          const block = bundleRegistryBlock(bundle);
          const [atBlock, now] = await Promise.all([
            chainRegistrySnapshot(chain, block),
            block === undefined ? undefined : chainRegistrySnapshot(chain),
          ]);
          return { registry: atBlock, current: now };
        });
  return {
    nodes,
    ...(registry === undefined ? {} : { registry }),
    ...(current === undefined ? {} : { current }),
    ...(insecure ? { insecureAcceptBundleNodes: true } : {}),
  };
}

/**
 * The trust options of a client talking to `url`: the chain (`--rpc/--deployment`, or the data
 * directory's); without one, the data directory's own node key when `url` is that node (the
 * operator's own keystore, not what the node says over the network); or `--insecure-trust-node`.
 */
export async function clientTrust(
  flags: TrustFlags,
  url: string,
  options: { verifies: boolean },
): Promise<Pick<ClientOptions, 'chain' | 'trust' | 'insecureTrustNode'>> {
  const chain = await chainOf(flags, true);
  const nodes = pinnedNodes(flags);
  const record = readNodeRecord(dataDirOf(flags));
  if (record !== undefined && sameOrigin(record.url, url) && chain === undefined) {
    nodes.push({ address: record.address, logKey: record.logKey });
  }
  if (chain === undefined && nodes.length === 0 && flags['insecure-trust-node'] !== true && options.verifies) {
    throw new UsageError(`${WHOM}, or --insecure-trust-node`);
  }
  return {
    ...(chain === undefined ? {} : { chain }),
    ...(nodes.length === 0 ? {} : { trust: { nodes } }),
    ...(flags['insecure-trust-node'] === true ? { insecureTrustNode: true } : {}),
  };
}

/** Flags of a witness policy: `--witness KEY` (repeatable) and `--witness-threshold M` (default: all). */
export const WITNESS_FLAGS = {
  witness: { type: 'string', multiple: true },
  'witness-threshold': { type: 'string' },
} as const;

/** The witness policy of `--witness`/`--witness-threshold`, or undefined without `--witness`. */
export function witnessPolicyOf(flags: {
  witness?: string[] | undefined;
  'witness-threshold'?: string | undefined;
}): WitnessPolicy | undefined {
  const keys = flags.witness ?? [];
  if (keys.length === 0) {
    if (flags['witness-threshold'] !== undefined) throw new UsageError('--witness-threshold needs --witness KEY');
    return undefined;
  }
  const m = flags['witness-threshold'];
  if (m !== undefined && !/^[1-9][0-9]*$/.test(m)) throw new UsageError('--witness-threshold must be a number above 0');
  const policy = { keys, threshold: m === undefined ? keys.length : Number(m) };
  try {
    parseWitnessPolicy(policy);
  } catch (e) {
    throw new UsageError(isVerityError(e) ? `${e.code}: ${e.message}` : String(e));
  }
  return policy;
}

/** `verity verify FILE`: exit 0 when the bundle verifies, 1 when it does not. */
export async function runVerify(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: {
      ...TRUST_FLAGS,
      'input-digest': { type: 'string' },
      'output-digest': { type: 'string' },
      json: { type: 'boolean', default: false },
      'accept-local-dev-setup': { type: 'boolean', default: false },
      ...ZK_TRUST_FLAGS,
      ...WITNESS_FLAGS,
    },
  });
  if (positionals.length !== 1) throw new UsageError('verify takes exactly one FILE');
  const witnesses = witnessPolicyOf(values);
  const file = positionals[0] as string;
  pinnedNodes(values); // a usage mistake is reported before the file is read
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, { showHelp: false });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    const error = new VerityError('JSON_INVALID', `${file} is not JSON`, { cause });
    return report(values.json === true, { ok: false, code: error.code, error }, file);
  }
  let trust: Trust;
  try {
    trust = await bundleTrust(values, value);
    if (witnesses !== undefined) trust = { ...trust, witnesses };
  } catch (e) {
    // A registry proof that does not hold under the pinned block is a failed verification.
    if (values.block === undefined || !isVerityError(e)) throw e;
    return report(values.json === true, { ok: false, code: e.code, error: e }, file);
  }
  const options: VerifyOptions = {
    ...(values['input-digest'] === undefined ? {} : { inputDigest: values['input-digest'] }),
    ...(values['output-digest'] === undefined ? {} : { outputDigest: values['output-digest'] }),
  };
  // A zk bundle (a zk member, or a zk record stripped of it: ZK_EVIDENCE_MISSING): the Groth16
  // proof, the signed manifest, and the audit of its key are checked too.
  if (isZkBundle(value)) {
    const zk = await zkTrustOf(values);
    const pinned = pinnedNodes(values).length > 0 || values['insecure-trust-bundle-nodes'] === true;
    const chain = values.block === undefined ? await chainOf(values, !pinned) : undefined;
    const { releaseZk, verifyZkBundle } = await import('@verity/sdk');
    try {
      const result = await verifyZkBundle(value, trust, {
        ...options,
        acceptLocalDevSetup: values['accept-local-dev-setup'] === true,
        zk,
        ...(chain === undefined ? {} : { chain }),
      });
      return report(values.json === true, result, file, result.ok ? zkReport(result) : undefined, value);
    } finally {
      await releaseZk();
    }
  }
  const pinned = pinnedNodes(values).length > 0 || values['insecure-trust-bundle-nodes'] === true;
  // Paid receipts, on a live chain: in its deployment's token there, and settled (the record
  // commits to an authorization; only the token says it was used; docs/api.md "Paying for answers").
  const paid = values.block === undefined && hasPayment(value) ? await chainOf(values, !pinned) : undefined;
  const onChain = paid === undefined ? undefined : await settlementOn(paid);
  // A payment signature that does not recover to its payer is asked of the payer's code
  // (a contract wallet, ERC-1271) on that chain; offline it is PAYMENT_SIGNATURE_NEEDS_CHAIN.
  const result =
    onChain === undefined
      ? verifyBundle(value, trust, options)
      : await onChain.verify(value, (payment) => verifyBundle(value, trust, { ...options, payment }));
  if (!result.ok || values.block !== undefined) return report(values.json === true, result, file, undefined, value);
  if (onChain !== undefined) {
    for (const [i, receipt] of (value as { receipts: readonly Receipt[] }).receipts.entries()) {
      if (receipt.payment === undefined) continue;
      try {
        await onChain.settled(receipt.payment);
      } catch (e) {
        if (!isVerityError(e)) throw e;
        return report(values.json === true, { ok: false, code: e.code, error: e, receipt: i }, file);
      }
    }
  }
  // Audited records: where each stands on chain (pending, final, disputed, refuted).
  try {
    const audit = await auditOf(result.receipts, () => chainOf(values, !pinned));
    return report(values.json === true, result, file, undefined, value, audit);
  } catch (e) {
    // A backdated record, or one its first anchor does not include: refused as a forgery is.
    if (!isVerityError(e) || !e.code.startsWith('AUDIT_')) throw e;
    return report(values.json === true, { ok: false, code: e.code, error: e }, file);
  }
}

/**
 * The payment checks of a chain: verification under the policy its deployment sets, with the
 * payers' word on contract-wallet signatures (ERC-1271), and the settlement read on it.
 */
async function settlementOn(chain: NonNullable<ClientOptions['chain']>) {
  const {
    chainOf: parseChain,
    chainPaymentPolicy,
    checkPaymentSettled,
    verifyWithPayers,
  } = await import('@verity/sdk');
  const parsed = parseChain(chain);
  const policy = chainPaymentPolicy(parsed);
  return {
    verify: (bundle: unknown, run: (payment: PaymentPolicy) => VerifyResult) => {
      const receipts = (bundle as { receipts?: unknown } | null)?.receipts;
      return verifyWithPayers(parsed, Array.isArray(receipts) ? receipts : [], run, policy);
    },
    settled: (payment: NonNullable<Receipt['payment']>) => checkPaymentSettled(parsed, payment),
  };
}

/** True when a (verified) bundle holds a paid receipt. */
function hasPayment(bundle: unknown): boolean {
  const receipts = (bundle as { receipts?: unknown } | null)?.receipts;
  return Array.isArray(receipts) && receipts.some((r) => (r as { payment?: unknown } | null)?.payment !== undefined);
}

/** An audited record's status on chain, as `verify` reports it (`unread` without a chain). */
export interface AuditReport {
  readonly requestId: string;
  readonly status: 'pending' | 'final' | 'disputed' | 'refuted' | 'unread';
  /** Unix seconds after which Disputes refuses a challenge (its first anchor's time + the window); absent while not anchored. */
  readonly windowClosesAt?: number;
  /** The audit sample rate Disputes fixes (ppm), and whether the record is in the sample (once its seed block is mined). */
  readonly auditRatePpm?: number;
  readonly sampled?: boolean;
  /** The block the status was read at. */
  readonly block?: string;
  /** The block of the node's first anchor covering the record. */
  readonly anchorBlock?: string;
  readonly disputeId?: string;
  readonly disputes?: readonly { id: string; phase: string; outcome: string; block: string }[];
}

/** The audit status of each audited receipt (none: undefined), read from the chain of the flags. */
async function auditOf(
  receipts: readonly { readonly record: InferenceRecord; readonly leafIndex: number }[],
  chainOfFlags: () => Promise<ClientOptions['chain'] | undefined>,
): Promise<AuditReport[] | undefined> {
  const audited = receipts.filter((r) => r.record.mode === 'audited');
  if (audited.length === 0) return undefined;
  const chain = await chainOfFlags();
  if (chain === undefined) return audited.map((r) => ({ requestId: r.record.requestId, status: 'unread' }));
  const { auditStatus, chainOf: parseChain } = await import('@verity/sdk');
  const { publicClient, deployment } = parseChain(chain);
  const out: AuditReport[] = [];
  for (const r of audited) {
    const s = await auditStatus({ publicClient, deployment }, r);
    out.push({
      requestId: r.record.requestId,
      status: s.status,
      ...(s.windowClosesAt === undefined ? {} : { windowClosesAt: Number(s.windowClosesAt) }),
      auditRatePpm: s.auditRatePpm,
      ...(s.sampled === undefined ? {} : { sampled: s.sampled }),
      block: s.block.toString(),
      ...(s.anchor === undefined ? {} : { anchorBlock: s.anchor.block.toString() }),
      ...(s.disputeId === undefined ? {} : { disputeId: s.disputeId.toString() }),
      disputes: s.disputes.map((d) => ({
        id: d.id.toString(),
        phase: d.phase,
        outcome: d.outcome,
        block: d.block.toString(),
      })),
    });
  }
  return out;
}

/** The human line of an audited record's status. */
function auditLine(file: string, a: AuditReport): string {
  const closes = a.windowClosesAt === undefined ? '' : new Date(a.windowClosesAt * 1000).toISOString();
  const at = a.block === undefined ? '' : ` (chain block ${a.block})`;
  switch (a.status) {
    case 'pending':
      return a.windowClosesAt === undefined
        ? `… ${file}: audited ${a.requestId}: pending — not anchored yet, so not challengeable yet${at}\n`
        : `… ${file}: audited ${a.requestId}: pending — challenge window open until ${closes}, no dispute lost so far${at}\n`;
    case 'final':
      return `✓ ${file}: audited ${a.requestId}: final — window closed ${closes} with no dispute lost by the node${at}\n`;
    case 'disputed':
      return `! ${file}: audited ${a.requestId}: disputed — dispute ${a.disputeId} is open${at}\n`;
    case 'refuted':
      return `✗ ${file}: audited ${a.requestId}: refuted — the node was slashed for this record (dispute ${a.disputeId ?? '?'})${at}\n`;
    default:
      return `! ${file}: audited ${a.requestId}: status not read (no chain: --rpc/--deployment or a local \`verity up\`)\n`;
  }
}

/** What a valid zk bundle's report says: the setup, and why its verification key is trusted. */
interface ZkReport {
  readonly proof: 'valid';
  readonly setup: string;
  /** `audit` (a --zk-audit record), `attestation` (a --zk-auditor on chain) or `local-dev` (accepted). */
  readonly vk: string;
  readonly audit?: { manifestCid: string; checkedAt: string; contributors: number };
  readonly auditor?: string;
  /** `registered`: ModelRegistry lists the manifest; `unchecked`: no chain to read it from. */
  readonly model: string;
}

function zkReport(result: Extract<Awaited<ReturnType<typeof import('@verity/sdk').verifyZkBundle>>, { ok: true }>) {
  const t = result.zkTrust;
  return {
    proof: 'valid',
    setup: result.zk.setup,
    vk: t.vk,
    ...(t.audit === undefined
      ? {}
      : {
          audit: {
            manifestCid: t.audit.manifestCid,
            checkedAt: t.audit.checkedAt,
            contributors: t.audit.contributors.length,
          },
        }),
    ...(t.auditor === undefined ? {} : { auditor: t.auditor }),
    model: t.model,
  } satisfies ZkReport;
}

/** Flags that say which audits of a zk key to accept (verify, infer). */
export const ZK_TRUST_FLAGS = {
  'zk-audit': { type: 'string', multiple: true },
  'zk-auditor': { type: 'string', multiple: true },
} as const;

/**
 * The zk trust of `--zk-audit FILE|DIR` (a file is one audit record; a directory holds them by
 * manifest CID, `<cid>.json`), `--zk-auditor ADDRESS`, and the audits `verity zk audit` left in
 * the data dir (`<dataDir>/zk/audits/`: your own checks). Which audit applies is decided by the
 * SDK (an exact match of the manifest's facts).
 */
export async function zkTrustOf(flags: {
  'zk-audit'?: string[] | undefined;
  'zk-auditor'?: string[] | undefined;
  'data-dir'?: string | undefined;
}): Promise<ZkTrustOptions> {
  const audits: (ZkAudit | string)[] = [];
  const own = join(dataDirOf(flags), 'zk', 'audits');
  if ((await stat(own).catch(() => undefined))?.isDirectory()) audits.push(own);
  for (const path of flags['zk-audit'] ?? []) {
    try {
      if ((await stat(path)).isDirectory()) audits.push(path);
      else audits.push(parseZkAudit(JSON.parse(await readFile(path, 'utf8'))));
    } catch (e) {
      throw new UsageError(`--zk-audit ${path}: ${(e as Error).message}`, { showHelp: false });
    }
  }
  return { audits, auditors: flags['zk-auditor'] ?? [] };
}

/** The human line saying why the zk verification key was trusted. */
function zkLines(file: string, zk: ZkReport): string {
  const basis =
    zk.vk === 'audit' && zk.audit !== undefined
      ? `an audit you hold (--zk-audit or your data dir's zk/audits: checked ${zk.audit.checkedAt}, ${zk.audit.contributors} phase-2 contributor${zk.audit.contributors === 1 ? '' : 's'})`
      : zk.vk === 'attestation'
        ? `an on-chain attestation by auditor ${zk.auditor} (--zk-auditor)`
        : 'your acceptance of a local-dev setup (--accept-local-dev-setup: whoever made the keys could forge proofs)';
  return (
    `✓ ${file}: Groth16 proof valid (setup ${zk.setup})\n` +
    `✓ ${file}: verification key trusted by ${basis}\n` +
    (zk.model === 'registered'
      ? `✓ ${file}: the signed manifest is the one ModelRegistry lists for its name\n`
      : `! ${file}: the manifest's publisher signature is checked, but not against ModelRegistry (no chain)\n`)
  );
}

/**
 * How the input or output itself was checked, for the human report: against the copy the bundle
 * carries, against the digest the caller gave, or not at all (absent: only its digest, as the node
 * recorded it, is vouched for). The exit code stays 0 then: the receipt is valid for that digest.
 */
function contentLine(what: 'input' | 'output', digest: string, checked: boolean, bundle: unknown): string {
  const carried = typeof bundle === 'object' && bundle !== null && what in bundle;
  const how = !checked
    ? `not checked: the ${what} is not in the bundle; only its digest is vouched for`
    : carried
      ? `✓ the bundled ${what} hashes to it`
      : `✓ equals --${what}-digest`;
  return `  ${what.padEnd(6)} ${digest}  (${how})\n`;
}

function report(
  json: boolean,
  result: VerifyResult,
  file: string,
  zk?: ZkReport,
  bundle?: unknown,
  audit?: readonly AuditReport[],
): number {
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        result.ok
          ? {
              ok: true,
              // What was compared with the records' digests: an absent input or output is `false`.
              checked: result.checked,
              ...(zk === undefined ? {} : { zk }),
              // Mode quorum: whether the selection was recomputed from the registry, and the
              // dissenting nodes (evidence against them).
              ...(result.quorum === undefined
                ? {}
                : {
                    quorum: {
                      selection: result.quorum.selection,
                      dissent: result.quorum.dissent.map((d) => d.record.node),
                    },
                  }),
              // Mode audited: each record's status on chain (exit 1 when one is refuted).
              ...(audit === undefined ? {} : { audit }),
              receipts: result.receipts.map((r) => ({
                record: r.record,
                leafIndex: r.leafIndex,
                treeSize: r.checkpoint.size,
                origin: r.checkpoint.origin,
              })),
            }
          : {
              ok: false,
              error: result.error.toJSON(),
              ...(result.receipt === undefined ? {} : { receipt: result.receipt }),
            },
      )}\n`,
    );
  } else if (result.ok) {
    if (zk !== undefined) process.stdout.write(zkLines(file, zk));
    for (const r of result.receipts) {
      process.stdout.write(
        `✓ ${file}: record ${r.record.requestId} by ${r.record.node} is entry ${r.leafIndex} of ${r.checkpoint.origin} (size ${r.checkpoint.size})\n` +
          `  model  ${r.record.model}\n` +
          contentLine('input', r.record.inputDigest, result.checked.input, bundle) +
          contentLine('output', r.record.outputDigest, result.checked.output, bundle),
      );
    }
    if (result.quorum !== undefined) {
      for (const d of result.quorum.dissent) {
        process.stdout.write(
          `! ${file}: ${d.record.node} answered another output (outvoted; its receipt is evidence)\n`,
        );
      }
      if (result.quorum.selection === 'unchecked') {
        process.stdout.write(
          `! ${file}: quorum selection not checked (keys pinned, no registry): that these nodes were the ones to ask was not verified\n`,
        );
      }
    }
    for (const a of audit ?? []) process.stdout.write(auditLine(file, a));
    const missing = (['input', 'output'] as const).filter((w) => !result.checked[w]);
    if (missing.length > 0) {
      process.stdout.write(
        missing.length === 1
          ? `! ${file}: ${missing[0]} not in the bundle: only its digest is vouched for; the ${missing[0]} itself was not verified\n`
          : `! ${file}: input and output not in the bundle: only their digests are vouched for; neither was verified\n`,
      );
    }
  } else {
    process.stdout.write(`✗ ${file}: ${result.code}: ${result.error.message}\n`);
  }
  return result.ok && !(audit ?? []).some((a) => a.status === 'refuted') ? 0 : 1;
}
