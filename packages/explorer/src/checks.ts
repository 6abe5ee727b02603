/**
 * Verification for the Verify and Receipt pages: gathers the trust (the registry at the block
 * the bundle names, the anchors on chain), then runs every check of docs/protocol.md §9.2 in the
 * browser (`verifyBundleChecks`) and, for a zk bundle, the proof (the SDK's `verifyZkBundle`,
 * loaded only then: snarkjs is large).
 */
import {
  type Bundle,
  type CheckRow,
  isZkBundle,
  parseBundle,
  type Receipt,
  type Trust,
  verifyBundleChecks,
  type ZkAudit,
} from '@verity/protocol';
import {
  anchorTrust,
  askPayers,
  bundleRegistryBlock,
  chainPaymentPolicy,
  chatCompletionFromChunks,
  checkPaymentSettled,
  gatherTrust,
  linkToAnchors,
  messageOf,
  verifyZkBundle,
  withAnchors,
} from '@verity/sdk';
import type { Env } from './env.js';
import { errorText, h } from './ui.js';

/** A row as the page shows it: the protocol's checks plus the ones run here (JSON, trust, zk proof). */
export interface Row {
  readonly label: string;
  readonly status: CheckRow['status'];
  readonly code?: string;
  readonly message: string;
}

export interface Checked {
  readonly ok: boolean;
  readonly code?: string;
  readonly rows: readonly Row[];
  /** What the trust was: the registry at a block, or the node's own word. */
  readonly basis: string;
}

const LABELS: Record<CheckRow['check'], string> = {
  bundle: 'Bundle format',
  trust: 'Trusted keys',
  node: 'Registry entry',
  checkpoint: 'Checkpoint signature',
  'leaf-index': 'Leaf index',
  inclusion: 'Inclusion proof',
  'expected-digests': 'Expected digests',
  witnesses: 'Witnesses',
  payment: 'Payment',
  'receipts-agree': 'Receipts agree',
  'zk-evidence': 'zk evidence',
  input: 'Input digest',
  output: 'Output digest',
  params: 'Sampling params',
  quorum: 'Quorum selection',
  'still-backed': 'Still staked',
  anchors: 'Anchor consistency',
};

const fail = (label: string, e: unknown): Row => ({
  label,
  status: 'fail',
  ...((e as { code?: string })?.code ? { code: (e as { code: string }).code } : {}),
  message: (e as Error)?.message ?? String(e),
});

/** What the visitor adds to the trust (the Verify page's "Trust options"). */
export interface ExtraTrust {
  /** Keys pinned by hand: trusted whatever the registry says (`verity verify --node --key`). */
  readonly nodes?: readonly { address: string; logKey: string }[];
  /** zk: audit records of verification keys the visitor accepts. */
  readonly zkAudits?: readonly unknown[];
  /** zk: accept keys from a `local-dev` setup (development only). */
  readonly acceptLocalDevSetup?: boolean;
  /** A witness policy: every checkpoint cosigned by `threshold` of these witness keys. */
  readonly witnesses?: { readonly keys: readonly string[]; readonly threshold: number };
}

/** Verifies a bundle (JSON text or a value), every check a row. */
export async function checkBundle(env: Env, input: unknown, extra: ExtraTrust = {}): Promise<Checked> {
  let value: unknown = input;
  if (typeof input === 'string') {
    try {
      value = JSON.parse(input);
    } catch (e) {
      const row = { ...fail('JSON', e), code: 'JSON_INVALID' };
      return { ok: false, code: 'JSON_INVALID', rows: [row], basis: '' };
    }
  }
  // A chat answer (the completion, or its streamed chunks, as an OpenAI client got them): its
  // receipt and its message. The request is not in it, so the input is not checked.
  let note: Row | undefined;
  try {
    const answer = chatAnswerBundle(value);
    if (answer !== undefined) {
      value = answer;
      note = {
        label: 'Chat answer',
        status: 'skip',
        message:
          'an OpenAI chat answer: its receipt and message are checked; the request is not in it (the input is not)',
      };
    }
  } catch (e) {
    return { ok: false, code: 'RESPONSE_INVALID', rows: [fail('Chat answer', e)], basis: '' };
  }
  // A lone receipt (from `GET /v1/receipts/:id`) is checked as a bundle of one.
  if (typeof value === 'object' && value !== null && !('mediaType' in value) && 'record' in value) {
    value = { mediaType: 'application/vnd.verity.bundle.v1+json', receipts: [value] };
  }
  const rows: Row[] = note ? [note] : [];
  let trust: Trust;
  let basis: string;
  let bundle: unknown = value;
  try {
    if (env.chain) {
      const block = bundleRegistryBlock(value);
      trust = await gatherTrust(env.client.base, block === undefined ? {} : { block });
      basis = `NodeRegistry ${env.chain.deployment.contracts.nodeRegistry} at block ${trust.registry?.block.number}${block === undefined ? ' (latest: the bundle names no block)' : ''}, over ${env.chain.rpcUrl}; ${env.chain.pinned ? 'deployment pinned in this browser' : 'deployment as this node serves it (pin it on the Network page to check any node against it)'}`;
      // Anchors on chain, linked by consistency proofs from the nodes' logs.
      let parsed: Bundle | undefined;
      try {
        parsed = parseBundle(value);
      } catch {
        // The bundle row reports it.
      }
      const logAnchor = env.chain.deployment.contracts.logAnchor;
      if (parsed && logAnchor) {
        const anchors = await anchorTrust(
          { rpcUrl: env.chain.rpcUrl, logAnchor },
          parsed.receipts.map((r) => r.record.node),
        );
        trust = withAnchors(trust, anchors);
        const endpoints = new Map(
          (trust.registry?.nodes ?? []).filter((n) => n.endpoint).map((n) => [n.address.toLowerCase(), n.endpoint]),
        );
        try {
          bundle = await linkToAnchors(env.client.base, parsed, anchors, endpoints);
        } catch (e) {
          rows.push({ label: 'Consistency proofs', status: 'skip', message: `not fetched: ${errorText(e)}` });
        }
      }
    } else {
      trust = await env.client.trust();
      basis = `INSECURE: the key this node reports about itself (${env.noChain})`;
    }
  } catch (e) {
    return { ok: false, rows: [fail('Trust', e)], basis: 'the chain could not be read', code: 'CHAIN_UNAVAILABLE' };
  }
  if (extra.witnesses !== undefined) {
    trust = { ...trust, witnesses: extra.witnesses };
    basis += `; witness policy ${extra.witnesses.threshold} of ${extra.witnesses.keys.length}`;
  }
  if (extra.nodes !== undefined && extra.nodes.length > 0) {
    trust = { ...trust, nodes: [...trust.nodes, ...extra.nodes] };
    basis += `; and ${extra.nodes.length} key${extra.nodes.length === 1 ? '' : 's'} pinned by hand`;
  }
  const chain = env.client.base.chain;
  // On a chain, a payment is in its deployment's token there (docs/protocol.md §17.4).
  const policy = chain ? chainPaymentPolicy(chain) : undefined;
  let { result, checks } = verifyBundleChecks(bundle, trust, policy ? { payment: policy } : {});
  // A payment signature that does not recover to its payer: only the payer's code (a contract
  // wallet, ERC-1271 isValidSignature) can vouch for it, asked here on the chain.
  const payers: Row[] = [];
  let refused: string | undefined;
  const undecided =
    !result.ok &&
    (result.code === 'PAYMENT_SIGNATURE_NEEDS_CHAIN' ||
      (result.code === 'QUORUM_DISSENT_INVALID' && result.error.details.causeCode === 'PAYMENT_SIGNATURE_NEEDS_CHAIN'));
  if (chain && policy && undecided) {
    try {
      // A quorum's dissent receipts are checked under the same policy: their payers are asked too.
      const b = bundle as { receipts: readonly Receipt[]; quorum?: { dissent?: readonly Receipt[] } };
      const vouched = await askPayers(chain, b.receipts, b.quorum?.dissent ?? []);
      if (vouched.length > 0)
        ({ result, checks } = verifyBundleChecks(bundle, trust, { payment: { ...policy, vouched } }));
      for (const v of vouched) {
        payers.push({
          label: 'Payer signature',
          status: 'pass',
          message: `the payer ${v.from} is a contract wallet: its isValidSignature (ERC-1271) vouches for the signature`,
        });
      }
    } catch (e) {
      payers.push(fail('Payer signature', e));
      refused = (e as { code?: string }).code ?? 'PAYMENT_SIGNATURE_INVALID';
    }
  }
  for (const c of checks) {
    const label =
      c.receipt === undefined || receiptsOf(bundle) < 2 ? LABELS[c.check] : `${LABELS[c.check]} #${c.receipt}`;
    rows.push({ label, status: c.status, ...(c.code ? { code: c.code } : {}), message: c.message });
  }
  rows.push(...payers);
  let ok = result.ok && refused === undefined;
  let code = refused ?? (result.ok ? undefined : result.code);
  // The record commits to an authorization; only the token says the node submitted it.
  if (result.ok && chain) {
    const receipts = (bundle as { receipts: readonly Receipt[] }).receipts;
    for (const [i, receipt] of receipts.entries()) {
      if (receipt.payment === undefined) continue;
      const label = receipts.length < 2 ? 'Payment settled' : `Payment settled #${i}`;
      try {
        await checkPaymentSettled(chain, receipt.payment);
        rows.push({
          label,
          status: 'pass',
          message: `the authorization is used on the token ${receipt.payment.asset} (authorizationState)`,
        });
      } catch (e) {
        rows.push(fail(label, e));
        ok = false;
        code ??= (e as { code?: string }).code as typeof code;
      }
    }
  }
  if (ok && isZkBundle(bundle)) {
    const zk = await verifyZkBundle(bundle, trust, {
      ...(chain ? { chain } : {}),
      ...(extra.acceptLocalDevSetup ? { acceptLocalDevSetup: true } : {}),
      ...(extra.zkAudits ? { zk: { audits: extra.zkAudits as ZkAudit[] } } : {}),
    });
    if (zk.ok) {
      const by = {
        audit: 'an audit you gave',
        attestation: "an auditor's attestation on chain",
        'local-dev': 'your acceptance of a local-dev setup',
      };
      rows.push({
        label: 'zk proof',
        status: 'pass',
        message: `the Groth16 proof verifies for this input and output; its key is trusted by ${by[zk.zkTrust.vk]}; the model's registration ${zk.zkTrust.model}`,
      });
    } else {
      rows.push({ label: 'zk proof', status: 'fail', code: zk.code, message: zk.error.message });
      ok = false;
      code = zk.code;
    }
  }
  return { ok, ...(code === undefined ? {} : { code }), rows, basis };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

/** A chat answer as a bundle of its receipt and output (docs/protocol.md §10.3), or undefined. */
function chatAnswerBundle(value: unknown): unknown {
  const bundle = (verity: { receipt: unknown }, message: unknown, finish: unknown) => ({
    mediaType: 'application/vnd.verity.bundle.v1+json',
    receipts: [verity.receipt],
    output: { endpoint: 'chat.completions', message, finish_reason: finish },
  });
  if (Array.isArray(value) && value.some((c) => isObject(c) && c.verity !== undefined)) {
    const { message, finish_reason, verity } = chatCompletionFromChunks(value);
    return bundle(verity, message, finish_reason);
  }
  if (isObject(value) && Array.isArray(value.choices) && isObject(value.verity)) {
    const choice = value.choices[0] as { message?: unknown; finish_reason?: unknown } | undefined;
    return bundle(value.verity as { receipt: unknown }, messageOf(choice?.message), choice?.finish_reason);
  }
  return undefined;
}

const receiptsOf = (b: unknown): number => ((b as { receipts?: unknown[] })?.receipts ?? []).length;

/** The rows as elements, with the verdict above them. */
export function renderChecked(c: Checked): HTMLElement {
  return h(
    'section',
    { id: 'checks' },
    h(
      'div',
      { class: `verdict ${c.ok ? 'pass' : 'fail'}`, 'data-verdict': c.ok ? 'valid' : c.code },
      c.ok ? '✓ Valid: every check passed' : `✗ Invalid: ${c.code}`,
    ),
    c.basis && h('p', { class: 'mut', id: 'basis' }, 'Trust: ', c.basis),
    ...c.rows.map((r) =>
      h(
        'div',
        { class: `row ${r.status}`, 'data-check': r.label, 'data-status': r.status, 'data-code': r.code },
        h('span', { class: 'st' }, r.status === 'pass' ? '✓' : r.status === 'fail' ? '✗' : '–'),
        h('span', null, r.label),
        h('span', { class: 'msg' }, r.code && h('span', { class: 'code' }, r.code, ' '), r.message),
      ),
    ),
  );
}

/** One check row outside a bundle's verification (a manifest, a log's own proof). */
export function checkRow(label: string, ok: boolean, message: string, code?: string): HTMLElement {
  return h(
    'div',
    {
      class: `row ${ok ? 'pass' : 'fail'}`,
      'data-check': label,
      'data-status': ok ? 'pass' : 'fail',
      'data-code': ok ? undefined : code,
    },
    h('span', { class: 'st' }, ok ? '✓' : '✗'),
    h('span', null, label),
    h('span', { class: 'msg' }, !ok && code && h('span', { class: 'code' }, code, ' '), message),
  );
}
