/** Which node a client command talks to, and with which API key. */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { keystorePath, openKeystore } from '@verity/node';
import { type Client, createClient } from '@verity/sdk';

/** Flags every client command takes. */
export const CLIENT_FLAGS = {
  url: { type: 'string' },
  'api-key': { type: 'string' },
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

export const DEFAULT_URL = 'http://127.0.0.1:8700';

/** `--url`, else `VERITY_URL`, else the local default. */
export function targetUrl(flags: { url?: string | undefined }): string {
  return flags.url ?? process.env.VERITY_URL ?? DEFAULT_URL;
}

/** `--api-key`, else `VERITY_API_KEY`, else the key of a local node's keystore (`--data-dir`). */
export function apiKey(flags: { 'api-key'?: string | undefined; 'data-dir'?: string | undefined }): string | undefined {
  if (flags['api-key']) return flags['api-key'];
  if (process.env.VERITY_API_KEY) return process.env.VERITY_API_KEY;
  const dir = flags['data-dir'] ?? process.env.VERITY_DATA_DIR ?? join(homedir(), '.verity');
  return existsSync(keystorePath(dir)) ? openKeystore(dir).apiKey : undefined;
}

export function clientFor(flags: {
  url?: string | undefined;
  'api-key'?: string | undefined;
  'data-dir'?: string | undefined;
}): Client {
  const key = apiKey(flags);
  return createClient({ url: targetUrl(flags), ...(key === undefined ? {} : { apiKey: key }) });
}

/** Prints `value` as JSON (for scripts) or `text` (for people). */
export function print(json: boolean, value: unknown, text: string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${text}\n`);
}
