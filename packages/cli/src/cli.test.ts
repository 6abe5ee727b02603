import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openKeystore } from '@verity/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// The real `verity` command in a child process, as a user runs it (built by `npm test`).
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const SRC = fileURLToPath(new URL('.', import.meta.url));
// Process start-up on a busy machine: generous, and never what a test races.
const SLOW = 60_000;

let dir: string;
/** An empty data dir, so that no `~/.verity` of the machine's user takes part. */
let home: string;

function verity(
  args: string[],
  options: { env?: Record<string, string>; node?: string[] } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...(options.node ?? []), BIN, ...args],
      { timeout: SLOW, env: { ...process.env, VERITY_DATA_DIR: home, ...options.env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  if (!existsSync(BIN)) throw new Error('run `npm run build` first: packages/cli/dist/main.js is missing');
  dir = await mkdtemp(join(tmpdir(), 'verity-cli-test-'));
  home = join(dir, 'home');
  mkdirSync(home);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('verity CLI', () => {
  let demo: { model: string; node: string; logKey: string; bundle: string; outcomes: Record<string, string> };

  beforeAll(async () => {
    const r = await verity(['demo', '--out', dir, '--json']);
    expect(r.code, r.stderr).toBe(0);
    demo = JSON.parse(r.stdout);
  });

  it('demo verifies the honest bundle and catches both tamperings', () => {
    expect(demo.outcomes).toEqual({
      'bundle as received': 'ok',
      'output changed after the fact': 'RECEIPT_OUTPUT_DIGEST_MISMATCH',
      'checkpoint tree size changed': 'NOTE_SIGNATURE_INVALID',
    });
  });

  it(
    'verify exits 0 for a valid bundle, with the node trusted explicitly or from the bundle',
    async () => {
      const explicit = await verity(['verify', demo.bundle, '--node', demo.node, '--key', demo.logKey, '--json']);
      expect(explicit.code, explicit.stdout).toBe(0);
      expect(JSON.parse(explicit.stdout).receipts[0].record.model).toBe(demo.model);
      const human = await verity(['verify', demo.bundle, '--insecure-trust-bundle-nodes']);
      expect(human.code).toBe(0);
      expect(human.stdout).toContain('✓');
    },
    SLOW,
  );

  it(
    'verify exits 1 with the code when the output was changed',
    async () => {
      const bundle = JSON.parse(await readFile(demo.bundle, 'utf8'));
      bundle.output.logits.data[1] = 0;
      const file = join(dir, 'tampered.json');
      await writeFile(file, JSON.stringify(bundle));
      const r = await verity(['verify', file, '--node', demo.node, '--key', demo.logKey, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).error.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');
    },
    SLOW,
  );

  it('verify says plainly that a deleted output was not verified (exit 0: its digest still is)', async () => {
    const bundle = JSON.parse(await readFile(demo.bundle, 'utf8'));
    delete bundle.output;
    const file = join(dir, 'no-output.json');
    await writeFile(file, JSON.stringify(bundle));
    const json = await verity(['verify', file, '--insecure-trust-bundle-nodes', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout).checked).toEqual({ input: true, output: false });
    const human = await verity(['verify', file, '--insecure-trust-bundle-nodes']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/input +[0-9a-f]{64} +\(✓ the bundled input hashes to it\)/);
    expect(human.stdout).toMatch(/output +[0-9a-f]{64} +\(not checked: the output is not in the bundle/);
    expect(human.stdout).toContain('output not in the bundle: only its digest is vouched for');
    // Given the digest of the output the caller holds, the output is checked again.
    const digest = /output +([0-9a-f]{64})/.exec(human.stdout)?.[1] as string;
    const given = await verity(['verify', file, '--insecure-trust-bundle-nodes', '--output-digest', digest, '--json']);
    expect(JSON.parse(given.stdout).checked).toEqual({ input: true, output: true });
  }, 60_000);

  it(
    'verify exits 1 when the trusted key is another one',
    async () => {
      const other = await verity(['demo', '--out', join(dir, 'other'), '--json']);
      const otherKey = JSON.parse(other.stdout).logKey as string;
      const r = await verity(['verify', demo.bundle, '--node', demo.node, '--key', otherKey, '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.stdout).error.code).toBe('NOTE_UNKNOWN_KEY');
    },
    SLOW,
  );

  it(
    'reports user mistakes in one line, without a stack trace',
    async () => {
      const notJson = join(dir, 'not.json');
      await writeFile(notJson, 'hello');
      const bad = await verity(['verify', notJson, '--insecure-trust-bundle-nodes', '--json']);
      expect(bad.code).toBe(1);
      expect(JSON.parse(bad.stdout).error.code).toBe('JSON_INVALID');
      for (const args of [
        ['verify', join(dir, 'missing.json'), '--insecure-trust-bundle-nodes'],
        ['verify', demo.bundle],
        ['verify', demo.bundle, '--node', demo.node],
        ['frobnicate'],
        ['verify', demo.bundle, '--bogus'],
        // Trusting the keys a bundle carries has a name that says it is insecure.
        ['verify', demo.bundle, '--trust-bundle-nodes'],
        // Paying: a cap in atomic units, a payer to pay with, no budget without a cap.
        ['infer', 'iris', '--input', '{}', '--max-price', '0.5', '--payer-key', `0x${'11'.repeat(32)}`],
        ['infer', 'iris', '--input', '{}', '--max-price', '100', '--payer-key', 'not-a-key'],
        ['chat', 'tiny-chat', '--message', 'hi', '--budget', '100'],
        ['infer', 'iris', '--input', '{}', '--max-price', '100'],
      ]) {
        const r = await verity(args);
        expect(r.code, args.join(' ')).toBe(2);
        expect(r.stderr).toMatch(/^verity: /);
        expect(r.stderr).not.toMatch(/\n\s+at /);
      }
    },
    4 * SLOW,
  );
});

describe('verity COMMAND --help', () => {
  // Every command explains itself with its usage and examples, exit 0, loading nothing heavy.
  const commands = [
    ['up'],
    ['gateway'],
    ['node', 'start'],
    ['model', 'push'],
    ['infer'],
    ['chat'],
    ['log'],
    ['demo'],
    ['verify'],
    ['zk', 'audit'],
    ['monitor'],
    ['audit'],
    ['ceremony'],
  ];
  // The flags a command's help names are flags some command parser defines (no invented flags).
  const sources = [join(SRC, 'commands'), SRC]
    .flatMap((d) =>
      readdirSync(d)
        .filter((n) => n.endsWith('.ts') && !n.endsWith('.test.ts'))
        .map((n) => join(d, n)),
    )
    .map((p) => readFileSync(p, 'utf8'))
    .join('\n');
  for (const command of commands) {
    it(
      `verity ${command.join(' ')} --help`,
      async () => {
        const r = await verity([...command, '--help']);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout.split('\n')[0]).toContain(`verity ${command[0]}`);
        expect(r.stdout).toContain('Usage:');
        for (const [, flag] of r.stdout.matchAll(/--([a-z][a-z0-9-]*)/g)) {
          if (flag === 'help') continue;
          expect(sources, `--${flag} in the help of ${command.join(' ')}`).toMatch(
            new RegExp(`['"]?${flag}['"]?:\\s*\\{\\s*type`),
          );
        }
      },
      SLOW,
    );
  }

  it(
    'verity help COMMAND is the same text; an unknown one is a usage error',
    async () => {
      expect((await verity(['help', 'infer'])).stdout).toBe((await verity(['infer', '--help'])).stdout);
      expect((await verity(['help', 'nope'])).code).toBe(2);
    },
    SLOW,
  );
});

describe('the API key of a data dir', () => {
  /** A listener that records the headers of every request it gets. */
  async function listener(): Promise<{ url: string; seen: IncomingHttpHeaders[]; close(): void }> {
    const seen: IncomingHttpHeaders[] = [];
    const server = createServer((req, res) => {
      seen.push(req.headers);
      req.resume();
      req.on('end', () => {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'no' } }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => server.close() };
  }
  const sentKey = (seen: IncomingHttpHeaders[], key: string) => seen.some((h) => h.authorization === `Bearer ${key}`);

  it(
    'is never sent to a URL other than the data dir’s own node',
    async () => {
      const dataDir = join(dir, 'keyed');
      mkdirSync(dataDir, { mode: 0o700 });
      const { apiKey, address, logKey } = openKeystore(dataDir);
      const own = await listener();
      const foreign = await listener();
      try {
        // The data dir's node runs at `own` (the record `verity node start` keeps).
        await writeFile(join(dataDir, 'node.json'), JSON.stringify({ url: own.url, address, logKey, pid: 0 }));
        const push = (url: string, ...extra: string[]) =>
          verity(['model', 'push', IRIS, '--url', url, '--data-dir', dataDir, ...extra]);
        const refused = await push(foreign.url);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toMatch(/^verity: UNAUTHORIZED: .*--api-key/);
        expect(sentKey(foreign.seen, apiKey)).toBe(false);
        // Its own node gets it; another URL only when the user gives the key explicitly.
        await push(own.url);
        expect(sentKey(own.seen, apiKey)).toBe(true);
        await push(foreign.url, '--api-key', 'explicit-key');
        expect(sentKey(foreign.seen, 'explicit-key')).toBe(true);
        expect(sentKey(foreign.seen, apiKey)).toBe(false);
      } finally {
        own.close();
        foreign.close();
      }
    },
    4 * SLOW,
  );
});

describe('light verification', () => {
  // Records every module the child process resolves (ESM resolve hook, in its own file).
  const HOOK = `import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent(\`
import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (process.env.VERITY_RECORD_IMPORTS) appendFileSync(process.env.VERITY_RECORD_IMPORTS, r.url + String.fromCharCode(10));
  return r;
}\`));
`;
  const DAEMON = /onnxruntime|node-llama-cpp|\/packages\/node\/|@verity\/node|fastify/;

  it(
    '`verity verify`, `verity help` and the SDK load no node code (no ONNX or llama runtime)',
    async () => {
      const hook = join(dir, 'record-imports.mjs');
      await writeFile(hook, HOOK);
      const demoDir = join(dir, 'light');
      const made = await verity(['demo', '--out', demoDir, '--json']);
      const demo = JSON.parse(made.stdout) as { node: string; logKey: string; bundle: string };
      const runs: [string, string[], string[]][] = [
        ['verify', [BIN, 'verify', demo.bundle, '--node', demo.node, '--key', demo.logKey], []],
        ['help', [BIN, 'help'], []],
        // The SDK as an application imports it, verifying a bundle.
        [
          'sdk',
          [
            '--input-type=module',
            '-e',
            `const { verifyBundle } = await import('@verity/protocol'); await import('@verity/sdk');`,
          ],
          [],
        ],
      ];
      for (const [what, args] of runs) {
        const out = join(dir, `imports-${what}.txt`);
        const code = await new Promise<number>((resolve) => {
          execFile(
            process.execPath,
            ['--import', hook, ...args],
            {
              timeout: SLOW,
              cwd: fileURLToPath(new URL('..', import.meta.url)),
              env: { ...process.env, VERITY_DATA_DIR: home, VERITY_RECORD_IMPORTS: out },
            },
            (error) => resolve(error ? Number(error.code ?? 1) : 0),
          );
        });
        expect(code, what).toBe(0);
        const loaded = (await readFile(out, 'utf8')).split('\n').filter(Boolean);
        expect(loaded.length, what).toBeGreaterThan(0);
        expect(
          loaded.filter((u) => DAEMON.test(u)),
          what,
        ).toEqual([]);
      }
    },
    4 * SLOW,
  );
});
