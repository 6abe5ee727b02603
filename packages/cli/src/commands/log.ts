import { CLIENT_FLAGS, print, targetUrl } from '../target.js';
import { parseFlags, UsageError } from '../usage.js';

async function get(url: string): Promise<Response> {
  let r: Response;
  try {
    r = await fetch(url);
  } catch {
    throw new UsageError(`cannot reach ${url}`, { showHelp: false });
  }
  if (!r.ok) {
    const body = (await r.json().catch(() => ({}))) as { error?: { code?: string; message?: string } };
    throw new UsageError(`${body.error?.code ?? r.status}: ${body.error?.message ?? ''}`, { showHelp: false });
  }
  return r;
}

/** `verity log checkpoint` and `verity log proof --index N [--size M] | --from M [--to N]`. */
export async function runLog(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  const { values } = parseFlags({
    args: rest,
    options: {
      ...CLIENT_FLAGS,
      index: { type: 'string' },
      size: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
    },
  });
  const base = targetUrl(values).replace(/\/+$/, '');
  if (sub === 'checkpoint') {
    const text = await (await get(`${base}/v1/log/checkpoint`)).text();
    const [origin, size, root] = text.split('\n');
    print(values.json, { origin, size: Number(size), rootHash: root, note: text }, text.trimEnd());
    return 0;
  }
  if (sub === 'proof') {
    const q = new URLSearchParams();
    for (const k of ['index', 'size', 'from', 'to'] as const)
      if (values[k] !== undefined) q.set(k, values[k] as string);
    if (!q.has('index') && !q.has('from')) throw new UsageError('log proof needs --index N or --from M');
    const proof = (await (await get(`${base}/v1/log/proof?${q}`)).json()) as { type: string; proof: string[] };
    print(values.json, proof, `${proof.type} proof (${proof.proof.length} hashes):\n${proof.proof.join('\n')}`);
    return 0;
  }
  throw new UsageError('log takes checkpoint or proof');
}
