import { readFile, writeFile } from 'node:fs/promises';
import { CLIENT_FLAGS, clientFor, PAYMENT_FLAGS, paymentFrom, paymentLines, print } from '../target.js';
import { parseFlags, UsageError } from '../usage.js';
import { ZK_TRUST_FLAGS, zkTrustOf } from './verify.js';

/** `--input JSON` or `--input @file`. */
async function readInput(text: string): Promise<Record<string, unknown>> {
  let raw = text;
  if (text.startsWith('@')) {
    try {
      raw = await readFile(text.slice(1), 'utf8');
    } catch (e) {
      throw new UsageError(`cannot read ${text.slice(1)}: ${(e as NodeJS.ErrnoException).code}`, { showHelp: false });
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new UsageError('--input is not valid JSON', { showHelp: false });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError('--input must be a JSON object of named tensors, e.g. {"x": [[5.1, 3.5, 1.4, 0.2]]}', {
      showHelp: false,
    });
  }
  return value as Record<string, unknown>;
}

/** Why a zk answer's verification key was trusted, in words. */
function zkBasis(t: { vk: string; auditor?: string } | undefined): string {
  if (t?.vk === 'audit') return 'an audit you hold';
  if (t?.vk === 'attestation') return `auditor ${t.auditor}'s attestation`;
  return 'your acceptance of a local-dev setup';
}

/** `verity infer MODEL --input JSON|@file [--out bundle.json]`: runs, verifies, prints. */
export async function runInfer(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: {
      ...CLIENT_FLAGS,
      ...PAYMENT_FLAGS,
      input: { type: 'string' },
      out: { type: 'string' },
      nonce: { type: 'string' },
      mode: { type: 'string' },
      profile: { type: 'string' },
      k: { type: 'string' },
      'accept-local-dev-setup': { type: 'boolean', default: false },
      ...ZK_TRUST_FLAGS,
    },
  });
  if (positionals.length !== 1) throw new UsageError('infer takes one MODEL');
  if (values.input === undefined) throw new UsageError('give --input JSON or --input @file');
  const input = await readInput(values.input);
  const modes = ['signed', 'quorum', 'audited', 'zk'] as const;
  if (values.mode !== undefined && !(modes as readonly string[]).includes(values.mode)) {
    throw new UsageError('--mode is signed, quorum, audited or zk');
  }
  if (values.k !== undefined && !/^[1-9][0-9]?$/.test(values.k)) throw new UsageError('--k must be a number');
  const payment = paymentFrom(values, 'one-request');
  const client = await clientFor(values, { verifies: true, payment });
  const result = await client
    .infer({
      model: positionals[0] as string,
      input,
      ...(values['accept-local-dev-setup'] ? { acceptLocalDevSetup: true } : {}),
      ...(values.mode === 'zk' ? { zk: await zkTrustOf(values) } : {}),
      ...(values.nonce === undefined ? {} : { clientNonce: values.nonce }),
      ...(values.mode === undefined ? {} : { mode: values.mode as (typeof modes)[number] }),
      ...(values.k === undefined ? {} : { k: Number(values.k) }),
      ...(values.profile === undefined ? {} : { profile: values.profile }),
    })
    .finally(async () => (values.mode === 'zk' ? (await import('@verity/sdk')).releaseZk() : undefined));
  if (values.out !== undefined) await writeFile(values.out, `${JSON.stringify(result.bundle(), null, 2)}\n`);
  const r = result.record;
  print(
    values.json,
    {
      requestId: result.requestId,
      model: result.model,
      output: result.outputJson,
      receipt: result.receipt,
      receipts: result.receipts,
      ...(result.audit === undefined ? {} : { audit: result.audit }),
      ...(result.payment === undefined ? {} : { payment: result.payment }),
      verified: true,
    },
    [
      `output: ${JSON.stringify(result.outputJson)}`,
      result.receipts.length > 1
        ? `✓ verified: ${result.receipts.length} nodes agree (mode quorum): ${result.receipts.map((x) => x.record.node).join(', ')}`
        : result.zk !== undefined
          ? `✓ verified: Groth16 proof (setup ${result.zk.setup}, key trusted by ${zkBasis(result.zkTrust)}) and record ${r.requestId}, entry ${result.receipt.leafIndex} of ${r.node}'s log`
          : `✓ verified: record ${r.requestId} is entry ${result.receipt.leafIndex} of ${r.node}'s log`,
      `  model ${r.model}`,
      `  input ${r.inputDigest}`,
      `  output ${r.outputDigest}`,
      ...(result.audit === undefined
        ? []
        : [
            `  audited: payload kept for auditors at ${result.audit.payload} until ${new Date(result.audit.windowClosesAt).toISOString()} (the challenge window)`,
          ]),
      ...paymentLines(result.payment),
      ...(values.out === undefined ? [] : [`  bundle written to ${values.out}`]),
    ].join('\n'),
  );
  return 0;
}
