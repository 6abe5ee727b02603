/** Which node a client command talks to, with which API key, whom it trusts, and who pays. */
import type { Client, PaymentOptions } from '@verity/sdk';
import { dataDirOf, keystoreApiKey, readNodeRecord, sameOrigin } from './data-dir.js';
import { UsageError } from './usage.js';

/** Flags every client command takes. */
export const CLIENT_FLAGS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  'data-dir': { type: 'string' },
  rpc: { type: 'string' },
  deployment: { type: 'string' },
  'insecure-trust-node': { type: 'boolean', default: false },
  json: { type: 'boolean', default: false },
} as const;

export const DEFAULT_URL = 'http://127.0.0.1:8700';

/**
 * Flags of the commands that may pay for answers (`infer`, `chat`): a paid model's 402 is paid
 * by the payer key, up to `--max-price` atomic token units per request and `--budget` in all.
 */
export const PAYMENT_FLAGS = {
  'max-price': { type: 'string' },
  budget: { type: 'string' },
  'payer-key': { type: 'string' },
} as const;

type PaymentFlags = { 'max-price'?: string | undefined; budget?: string | undefined; 'payer-key'?: string | undefined };

function atomicFlag(flag: string, v: string): bigint {
  if (!/^(0|[1-9][0-9]{0,77})$/.test(v)) {
    throw new UsageError(
      `--${flag} is a whole number of the token's atomic units (e.g. 10000 = 0.01 of a 6-decimal token)`,
      {
        showHelp: false,
      },
    );
  }
  return BigInt(v);
}

/**
 * What the command may pay: nothing without `--max-price` (a paid model's 402 is then
 * `PAYMENT_REQUIRED`); with it, the payer key from `--payer-key` or `VERITY_PAYER_KEY`, and a
 * budget of `--budget`, else `defaultBudget` (one request's worth for `infer`), else no total cap.
 */
export function paymentFrom(
  flags: PaymentFlags,
  defaultBudget: 'one-request' | 'per-request',
): PaymentOptions | undefined {
  if (flags['max-price'] === undefined) {
    if (flags.budget !== undefined || flags['payer-key'] !== undefined) {
      throw new UsageError('--budget and --payer-key need --max-price (the most one request may cost)', {
        showHelp: false,
      });
    }
    return undefined;
  }
  const maxPrice = atomicFlag('max-price', flags['max-price']);
  const key = flags['payer-key'] ?? process.env.VERITY_PAYER_KEY;
  if (key === undefined || key === '') {
    throw new UsageError(
      '--max-price needs a payer: --payer-key HEX or VERITY_PAYER_KEY (verity up prints a demo one)',
      {
        showHelp: false,
      },
    );
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) {
    throw new UsageError('the payer key is a 0x-prefixed 32-byte hex private key', { showHelp: false });
  }
  const budget =
    flags.budget !== undefined
      ? atomicFlag('budget', flags.budget)
      : defaultBudget === 'one-request'
        ? maxPrice
        : 2n ** 256n - 1n;
  return { account: key as `0x${string}`, budget, maxPrice };
}

type ClientFlags = {
  url?: string | undefined;
  'api-key'?: string | undefined;
  'data-dir'?: string | undefined;
  rpc?: string | undefined;
  deployment?: string | undefined;
  'insecure-trust-node'?: boolean | undefined;
};

/** `--url`, else `VERITY_URL`, else the URL of the data directory's running node, else the local default. */
export function targetUrl(flags: ClientFlags): string {
  return flags.url ?? process.env.VERITY_URL ?? readNodeRecord(dataDirOf(flags))?.url ?? DEFAULT_URL;
}

/**
 * `--api-key`, else `VERITY_API_KEY`, else the key of the data directory's keystore — but that
 * one only for the data directory's own node (the URL its record names): a `--url` elsewhere
 * never receives it.
 */
export function apiKey(flags: ClientFlags, url: string): string | undefined {
  if (flags['api-key']) return flags['api-key'];
  if (process.env.VERITY_API_KEY) return process.env.VERITY_API_KEY;
  const dir = dataDirOf(flags);
  const record = readNodeRecord(dir);
  return record !== undefined && sameOrigin(record.url, url) ? keystoreApiKey(dir) : undefined;
}

/**
 * A client for the target node, with the trust `verify.ts` builds (the chain by default). With
 * `verifies: false` (listing models, uploading) a missing trust root is no error.
 */
export async function clientFor(
  flags: ClientFlags,
  options: { verifies: boolean; payment?: PaymentOptions | undefined },
): Promise<Client> {
  const url = targetUrl(flags);
  const key = apiKey(flags, url);
  const [{ createClient }, { clientTrust }] = await Promise.all([
    import('@verity/sdk'),
    import('./commands/verify.js'),
  ]);
  return createClient({
    url,
    ...(key === undefined ? {} : { apiKey: key }),
    ...(options.payment === undefined ? {} : { payment: options.payment }),
    ...(await clientTrust(flags, url, options)),
  });
}

/** Prints `value` as JSON (for scripts) or `text` (for people). */
export function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}

/** A paid answer's payment, in words (nothing for a free one). */
export function paymentLines(
  payment:
    | {
        scheme: string;
        amount: string;
        authorized: string;
        payTo: string;
        payer: string;
        digest: string;
        transaction?: string;
      }
    | undefined,
): string[] {
  if (payment === undefined) return [];
  const metered = payment.scheme === 'metered' ? ` of ${payment.authorized} authorized` : '';
  return [
    `  paid ${payment.amount}${metered} (${payment.scheme}) from ${payment.payer} to ${payment.payTo}`,
    `  payment ${payment.digest} committed in the record${payment.transaction ? `, settled in ${payment.transaction}` : ''}`,
  ];
}
