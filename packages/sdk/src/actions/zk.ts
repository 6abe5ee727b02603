import * as contracts from '@verity/contracts';
import * as protocol from '@verity/protocol';
import {
  type Bundle,
  checkZkSignals,
  fail,
  isSignedZkManifest,
  isVerityError,
  type Manifest,
  manifestCid,
  parseAddress,
  parseBundle,
  parseZkAudit,
  primeVerifyCache,
  type SignedManifest,
  type Trust,
  tensorsFromJson,
  type VerifiedReceipt,
  type VerifyOptions,
  type VerifyResult,
  VerityError,
  verifyBundle,
  verifySignedManifest,
  type ZkAudit,
  type ZkFacts,
  zkAuditMismatch,
  zkFacts,
  zkVkDigest,
} from '@verity/protocol';
import type { Address, Hex, PublicClient } from 'viem';
import { type ChainOptions, type ClientChain, chainOf } from '../client.js';

/**
 * What a verifier trusts about zk keys (docs/protocol.md §12): which audits of a model's circuit
 * and verification key it accepts. A `multi-party` key is accepted only when one of them vouches
 * for exactly the manifest's commitments (CID, R1CS, vk, setup, both phases); else
 * `ZK_VK_UNAUDITED`.
 */
export interface ZkTrustOptions {
  /**
   * Audit records you accept (e.g. written by your own `verity zk audit MODEL`), and, in Node,
   * directories of them (a string: `<dir>/<manifestCid>.json` is read, as `verity zk audit`
   * writes `<dataDir>/zk/audits/`).
   */
  readonly audits?: readonly (ZkAudit | string)[] | string;
  /**
   * Auditors whose on-chain attestations (the verifier registry's `attestation(auditor,
   * manifestDigest)`) you accept. Needs the chain (`chain`).
   */
  readonly auditors?: readonly string[];
  /**
   * At least this many phase-2 contributors in an accepted audit record (default 1). An on-chain
   * attestation lists none: naming an auditor trusts its judgement of the transcript.
   */
  readonly minContributors?: number;
}

/** Options for {@link verifyZkBundle}. */
export interface VerifyZkOptions extends VerifyOptions {
  /** The model's signed manifest, when the bundle does not carry it (`bundle.zk.manifest`). */
  readonly manifest?: SignedManifest;
  /**
   * Accept proofs made with keys from a `local-dev` setup (one party made them: it could forge
   * any proof, so no audit can add to that trust). Default false: `ZK_SETUP_UNTRUSTED`.
   */
  readonly acceptLocalDevSetup?: boolean;
  /** Which audits of the verification key to accept. */
  readonly zk?: ZkTrustOptions;
  /**
   * The chain: the manifest's CID must be what `ModelRegistry` maps its `name@version` to, by
   * the same publisher (`MODEL_REGISTRY_MISMATCH`), and `zk.auditors`' attestations are read there.
   */
  readonly chain?: ChainOptions | ClientChain;
}

/**
 * Why the verification key was accepted: an audit record you supplied (`audit`), an auditor's
 * attestation on chain (`attestation`), or your acceptance of a `local-dev` setup (`local-dev`).
 * `model`: whether `ModelRegistry` was seen to list the manifest (`registered`) or no chain was
 * given (`unchecked`).
 */
export interface ZkTrustBasis {
  readonly vk: 'audit' | 'attestation' | 'local-dev';
  readonly audit?: ZkAudit;
  readonly auditor?: string;
  readonly model: 'registered' | 'unchecked';
}

/** The result of {@link verifyZkBundle}: on success, what the manifest committed the proof to and why its key is trusted. */
export type ZkVerifyResult =
  | (Extract<VerifyResult, { ok: true }> & { readonly zk: ZkFacts; readonly zkTrust: ZkTrustBasis })
  | Extract<VerifyResult, { ok: false }>;

type Groth16 = { verify(vk: unknown, signals: unknown, proof: unknown, logger?: unknown): Promise<boolean> };
let groth16: Promise<Groth16> | undefined;
function loadGroth16(): Promise<Groth16> {
  // snarkjs ships no types; only `groth16.verify` is used here (packages/zk declares the rest).
  // The specifier stays a literal once types are stripped, so bundlers (and the browser test)
  // resolve it to snarkjs' browser build.
  groth16 ??= (import('snarkjs' as string) as Promise<{ groth16: Groth16 }>).then((m) => m.groth16);
  return groth16;
}

/** snarkjs logs through console unless given a logger. */
const SILENT = { info() {}, warn() {}, error() {}, debug() {} };

/** The signed manifest the bundle's proof is about; the old bare form is refused by name. */
function signedManifest(given: SignedManifest | undefined, carried: SignedManifest | Manifest | undefined): unknown {
  const m = given ?? carried;
  if (m === undefined) fail('ZK_EVIDENCE_MISSING', 'verifying a zk bundle needs the model’s signed manifest');
  if (!isSignedZkManifest(m)) {
    fail('ZK_MANIFEST_UNSIGNED', 'the zk manifest carries no publisher signature: its zk facts are nobody’s word');
  }
  return m;
}

/**
 * With a chain: `ModelRegistry` maps the manifest's `name@version` to exactly this CID, published
 * by the manifest's publisher. A node that signs a manifest of its own (its own keys, its own
 * circuit) under the model's name cannot register it: the name is the publisher's.
 */
async function checkRegistered(chain: ClientChain, manifest: Manifest, cid: string): Promise<void> {
  const published = await contracts.resolveModel(chain.publicClient, {
    modelRegistry: chain.deployment.contracts.modelRegistry,
    name: manifest.name,
    version: manifest.version,
  });
  if (published === undefined || published.manifestCid !== cid) {
    fail('MODEL_REGISTRY_MISMATCH', 'ModelRegistry does not list this manifest for its name and version', {
      ref: `${manifest.name}@${manifest.version}`,
      registered: published?.manifestCid ?? null,
      manifest: cid,
    });
  }
  if (published.publisher.toLowerCase() !== manifest.publisher.toLowerCase()) {
    fail('MODEL_REGISTRY_MISMATCH', 'the manifest is not by the publisher registered for the name', {
      registered: published.publisher,
      manifest: manifest.publisher,
    });
  }
}

/** Audit records from the options: records as given, and (Node) the file for this CID in each directory. */
async function auditsFor(source: ZkTrustOptions['audits'], cid: string): Promise<ZkAudit[]> {
  const entries = source === undefined ? [] : typeof source === 'string' ? [source] : source;
  const audits: ZkAudit[] = [];
  for (const entry of entries) {
    if (typeof entry !== 'string') audits.push(parseZkAudit(entry));
    else {
      const found = await auditInDir(entry, cid);
      if (found !== undefined) audits.push(found);
    }
  }
  return audits;
}

/** `<dir>/<cid>.json`, if there (Node only). */
async function auditInDir(dir: string, cid: string): Promise<ZkAudit | undefined> {
  // Node only: the specifiers stay out of a browser bundle.
  const FS = 'node:fs/promises';
  const PATH = 'node:path';
  const [{ readFile }, { join }] = (await Promise.all([
    import(/* @vite-ignore */ FS),
    import(/* @vite-ignore */ PATH),
  ])) as [{ readFile(path: string, encoding: 'utf8'): Promise<string> }, { join(...parts: string[]): string }];
  let text: string;
  try {
    text = await readFile(join(dir, `${cid}.json`), 'utf8');
  } catch (e) {
    if ((e as { code?: unknown }).code === 'ENOENT') return undefined;
    throw new VerityError('INVALID_ARGUMENT', `cannot read the audit of ${cid} in ${dir}`, { cause: e });
  }
  try {
    return parseZkAudit(JSON.parse(text));
  } catch (cause) {
    throw new VerityError('INVALID_ARGUMENT', `the audit file of ${cid} in ${dir} is not an audit record`, { cause });
  }
}

/**
 * The verifier registry's reads (helper `onchain`: `readZkAttestation` in @verity/contracts,
 * `zkVkKey` and `zkManifestDigest` in @verity/protocol), looked up by name so that this module
 * builds before they are merged; without them (or a deployment without `zkVerifiers`) no
 * attestation can be read and only audit records vouch.
 */
interface AttestationApi {
  readZkAttestation(
    publicClient: PublicClient,
    params: { readonly zkVerifiers: Address; readonly auditor: Address; readonly manifestDigest: Hex },
  ): Promise<Hex | undefined>;
  zkVkKey(vk: unknown): Hex;
  zkManifestDigest(manifestCid: string): Hex;
}

/**
 * The first of `auditors` that attested on chain (the verifier registry's
 * `attestation(auditor, manifestDigest)`) that this manifest's audited key is `vk`, if any.
 */
async function attestedBy(
  chain: ClientChain,
  auditors: readonly string[],
  cid: string,
  vk: unknown,
): Promise<string | undefined> {
  const api = { ...protocol, ...contracts } as unknown as Partial<AttestationApi>;
  const zkVerifiers = (chain.deployment.contracts as { zkVerifiers?: Address }).zkVerifiers;
  const { readZkAttestation, zkVkKey, zkManifestDigest } = api;
  if (readZkAttestation === undefined || zkVkKey === undefined || zkManifestDigest === undefined || !zkVerifiers) {
    return fail('ZK_VK_UNAUDITED', 'on-chain attestations cannot be read: the deployment has no zk verifier registry');
  }
  const manifestDigest = zkManifestDigest(cid);
  const key = zkVkKey(vk).toLowerCase();
  for (const a of auditors) {
    const auditor = parseAddress(a) as Address;
    const attested = await readZkAttestation(chain.publicClient, { zkVerifiers, auditor, manifestDigest });
    if (attested !== undefined && attested.toLowerCase() === key) return auditor;
  }
  return undefined;
}

/**
 * Why the bundle's verification key may be trusted (see {@link ZkTrustBasis}): `local-dev` only
 * with `acceptLocalDevSetup` (`ZK_SETUP_UNTRUSTED`); `multi-party` only with an audit that vouches
 * for exactly this manifest's facts, supplied or attested by a named auditor (`ZK_VK_UNAUDITED`).
 */
async function vkTrust(
  facts: ZkFacts,
  cid: string,
  vk: unknown,
  options: VerifyZkOptions,
  chain: ClientChain | undefined,
): Promise<Omit<ZkTrustBasis, 'model'>> {
  if (facts.setup === 'local-dev') {
    if (options.acceptLocalDevSetup !== true) {
      fail('ZK_SETUP_UNTRUSTED', 'the proof comes from a local-dev setup (its maker could forge proofs)');
    }
    return { vk: 'local-dev' };
  }
  const trust = options.zk ?? {};
  const min = trust.minContributors ?? 1;
  const audits = await auditsFor(trust.audits, cid);
  const mismatches: { audit: number; differs: string[] }[] = [];
  for (const [i, audit] of audits.entries()) {
    const differs = zkAuditMismatch(audit, cid, facts);
    if (audit.contributors.length < min) differs.push('contributors');
    if (differs.length === 0) return { vk: 'audit', audit };
    if (audit.manifestCid === cid) mismatches.push({ audit: i, differs });
  }
  const auditors = trust.auditors ?? [];
  if (auditors.length > 0) {
    if (chain === undefined) fail('INVALID_ARGUMENT', 'zk.auditors are read on chain: give the chain');
    const auditor = await attestedBy(chain, auditors, cid, vk);
    if (auditor !== undefined) return { vk: 'attestation', auditor };
  }
  // A mismatching audit is not an audit: it is about another circuit, key or ceremony.
  return fail('ZK_VK_UNAUDITED', 'no accepted audit vouches for this manifest’s circuit and verification key', {
    manifest: cid,
    ...(mismatches.length === 0 ? {} : { mismatches }),
  });
}

/**
 * Verifies a `zk` bundle (docs/design.md §2.6, docs/protocol.md §12), trusting nothing the node
 * says about its keys: everything {@link verifyBundle} checks (receipt, log inclusion, input and
 * output digests, a zk record carrying its evidence: `ZK_EVIDENCE_MISSING`), then
 * - the manifest is signed (`ZK_MANIFEST_UNSIGNED` for a bare one), is the record's model
 *   (`MANIFEST_INVALID`), and carries its publisher's EIP-191 signature
 *   (`MANIFEST_SIGNATURE_INVALID`);
 * - the verification key is the one the manifest commits to (`ZK_VK_MISMATCH`);
 * - with `chain`, `ModelRegistry` lists the manifest under its name and publisher
 *   (`MODEL_REGISTRY_MISMATCH`);
 * - the key is trusted: `local-dev` only with `acceptLocalDevSetup` (`ZK_SETUP_UNTRUSTED`),
 *   `multi-party` only with an audit that vouches for exactly the manifest's circuit, key, setup
 *   and phases, given in `zk.audits` or attested on chain by one of `zk.auditors`
 *   (`ZK_VK_UNAUDITED`);
 * - the public signals encode exactly the bundle's input and output (`ZK_PUBLIC_INPUT_MISMATCH`),
 *   and the Groth16 proof holds (`ZK_PROOF_INVALID`).
 * Never throws for a bad bundle.
 *
 * snarkjs keeps worker threads for its curve in Node: call {@link releaseZk} when done.
 *
 * @example
 * ```ts
 * const result = await verifyZkBundle(bundle, trust, { zk: { audits: [audit] }, chain });
 * if (result.ok) console.log(result.zkTrust.vk); // 'audit'
 * else console.error(result.code);
 * ```
 */
export async function verifyZkBundle(
  bundle: unknown,
  trust: Trust,
  options: VerifyZkOptions = {},
): Promise<ZkVerifyResult> {
  if (options.cache) await primeVerifyCache(bundle, trust, options.cache);
  const base = verifyBundle(bundle, trust, options);
  if (!base.ok) return base;
  try {
    const parsed: Bundle = parseBundle(bundle);
    const { zk, input, output } = parsed;
    if (zk === undefined) fail('ZK_EVIDENCE_MISSING', 'a zk bundle carries its zk evidence (bundle.zk)');
    if (input === undefined || output === undefined) {
      fail('BUNDLE_MALFORMED', 'a zk bundle carries zk, input and output');
    }
    const record = (base.receipts[0] as VerifiedReceipt).record;
    if (record.kind !== 'zk') fail('BUNDLE_MALFORMED', 'the record is not a zk record', { kind: record.kind });
    const signed = signedManifest(options.manifest, zk.manifest);
    const given = (signed as { manifest?: unknown }).manifest;
    const cid = (() => {
      try {
        return manifestCid(given as Manifest);
      } catch {
        return undefined;
      }
    })();
    if (cid !== record.model) {
      fail('MANIFEST_INVALID', 'the manifest is not the record’s model', { model: record.model });
    }
    const manifest = verifySignedManifest(signed);
    const facts = zkFacts(manifest);
    if (zk.setup !== facts.setup) fail('BUNDLE_MALFORMED', 'bundle.zk.setup is not the manifest’s zk.setup');
    if (zkVkDigest(zk.vk) !== facts.vk) {
      fail('ZK_VK_MISMATCH', 'the verification key is not the one the manifest commits to');
    }
    const chain =
      options.chain === undefined
        ? undefined
        : 'publicClient' in options.chain
          ? options.chain
          : chainOf(options.chain);
    if (chain !== undefined) await checkRegistered(chain, manifest, cid);
    const basis = await vkTrust(facts, cid, zk.vk, options, chain);
    if (zk.vk.nPublic !== zk.publicSignals.length) {
      fail('ZK_PUBLIC_INPUT_MISMATCH', 'the number of public signals is not the key’s');
    }
    checkZkSignals(facts.io, zk.publicSignals, tensorsFromJson(input), tensorsFromJson(output));
    let valid = false;
    try {
      valid = (await (await loadGroth16()).verify(zk.vk, zk.publicSignals, zk.proof, SILENT)) === true;
    } catch {
      valid = false;
    }
    if (!valid) fail('ZK_PROOF_INVALID', 'the Groth16 proof does not verify');
    return {
      ...base,
      zk: facts,
      zkTrust: { ...basis, model: chain === undefined ? 'unchecked' : 'registered' },
    };
  } catch (e) {
    const error = isVerityError(e)
      ? (e as VerityError)
      : new VerityError('BUNDLE_MALFORMED', 'the zk bundle could not be checked', { cause: e });
    return { ok: false, code: error.code, error };
  }
}

/**
 * Stops the worker threads snarkjs' BN254 curve keeps (cached in `globalThis.curve_bn128`), so a
 * Node process can exit after verifying zk bundles. The next verification builds it again.
 */
export async function releaseZk(): Promise<void> {
  const g = globalThis as { curve_bn128?: { terminate(): Promise<void> } | null };
  const curve = g.curve_bn128;
  if (curve) {
    g.curve_bn128 = null;
    await curve.terminate();
  }
}
