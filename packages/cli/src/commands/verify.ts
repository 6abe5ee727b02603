import { readFile } from 'node:fs/promises';
import { type TrustedNode, type VerifyResult, VerityError, verifyBundle } from '@verity/protocol';
import { releaseZk, verifyZkBundle } from '@verity/sdk';
import { parseFlags, UsageError } from '../usage.js';

/** `verity verify FILE`: exit 0 when the bundle verifies, 1 when it does not. */
export async function runVerify(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags({
    args,
    allowPositionals: true,
    options: {
      node: { type: 'string', multiple: true },
      key: { type: 'string', multiple: true },
      'trust-bundle-nodes': { type: 'boolean', default: false },
      'input-digest': { type: 'string' },
      'output-digest': { type: 'string' },
      json: { type: 'boolean', default: false },
      'accept-local-dev-setup': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new UsageError('verify takes exactly one FILE');
  const file = positionals[0] as string;
  const addresses = values.node ?? [];
  const keys = values.key ?? [];
  if (addresses.length !== keys.length) throw new UsageError('give --node and --key in pairs');
  const nodes: TrustedNode[] = addresses.map((address, i) => ({ address, logKey: keys[i] as string }));
  if (nodes.length === 0 && !values['trust-bundle-nodes']) {
    throw new UsageError('say whom to trust: --node ADDRESS --key VERIFIER_KEY, or --trust-bundle-nodes');
  }
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
  const trust = { nodes, insecureAcceptBundleNodes: values['trust-bundle-nodes'] === true };
  const options = {
    ...(values['input-digest'] === undefined ? {} : { inputDigest: values['input-digest'] }),
    ...(values['output-digest'] === undefined ? {} : { outputDigest: values['output-digest'] }),
  };
  // A bundle with a zk member: the Groth16 proof and its binding to the manifest are checked too.
  if (typeof value === 'object' && value !== null && 'zk' in value) {
    try {
      const result = await verifyZkBundle(value, trust, {
        ...options,
        acceptLocalDevSetup: values['accept-local-dev-setup'] === true,
      });
      return report(values.json === true, result, file, result.ok ? result.zk.setup : undefined, value);
    } finally {
      await releaseZk();
    }
  }
  return report(values.json === true, verifyBundle(value, trust, options), file, undefined, value);
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

function report(json: boolean, result: VerifyResult, file: string, zkSetup?: string, bundle?: unknown): number {
  if (json) {
    process.stdout.write(
      `${JSON.stringify(
        result.ok
          ? {
              ok: true,
              // What was compared with the records' digests: an absent input or output is `false`.
              checked: result.checked,
              ...(zkSetup === undefined ? {} : { zk: { proof: 'valid', setup: zkSetup } }),
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
    if (zkSetup !== undefined) process.stdout.write(`✓ ${file}: Groth16 proof valid (setup ${zkSetup})\n`);
    for (const r of result.receipts) {
      process.stdout.write(
        `✓ ${file}: record ${r.record.requestId} by ${r.record.node} is entry ${r.leafIndex} of ${r.checkpoint.origin} (size ${r.checkpoint.size})\n` +
          `  model  ${r.record.model}\n` +
          contentLine('input', r.record.inputDigest, result.checked.input, bundle) +
          contentLine('output', r.record.outputDigest, result.checked.output, bundle),
      );
    }
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
  return result.ok ? 0 : 1;
}
