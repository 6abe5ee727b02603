/** Which node a client command talks to, with which API key, and whom it trusts. */
import type { Client } from '@verity/sdk';
import { dataDirOf, keystoreApiKey, readNodeRecord, sameOrigin } from './data-dir.js';

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
export async function clientFor(flags: ClientFlags, options: { verifies: boolean }): Promise<Client> {
  const url = targetUrl(flags);
  const key = apiKey(flags, url);
  const [{ createClient }, { clientTrust }] = await Promise.all([
    import('@verity/sdk'),
    import('./commands/verify.js'),
  ]);
  return createClient({
    url,
    ...(key === undefined ? {} : { apiKey: key }),
    ...(await clientTrust(flags, url, options)),
  });
}

/** Prints `value` as JSON (for scripts) or `text` (for people). */
export function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}
