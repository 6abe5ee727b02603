import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopChild } from '../../../test-support/wait.js';

// What the README tells a new user to type, and what `verity up` prints, run as written against
// a real `verity up` (anvil, contracts, a registered node) in a temporary data dir: every command
// exits as the text says, and every bundle verifies against the chain, with no insecure flag.
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'packages/cli/dist/main.js');
// `verity up` deploys contracts and loads three models; on a busy machine that takes a while.
const SLOW = 180_000;

let dir: string;
let dataDir: string;
let up: ChildProcess;
let printed: string;

/** The shell blocks of the README section under `heading`, continuation lines joined. */
function readmeCommands(heading: string): string[] {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = text.slice(text.indexOf(heading));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error(`no sh block under ${heading}`);
  return block
    .replace(/\\\n\s*/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * Runs one command line as a user would, `npm run verity --` being the built CLI; README lines
 * (`readme`) have their `/tmp/` files and default port moved to this test's.
 */
function sh(line: string, cwd: string, readme: boolean): Promise<{ code: number; out: string }> {
  const port = new URL(printedUrl()).port;
  // The README's own paths first: the checkout itself may live under /tmp (a CI clone), and its
  // path must not be rewritten.
  const moved = readme ? line.replaceAll('/tmp/', `${dir}/`).replaceAll('localhost:8700', `127.0.0.1:${port}`) : line;
  const command = moved.replaceAll('npm run verity -- ', `${JSON.stringify(process.execPath)} ${JSON.stringify(BIN)} `);
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', command],
      { cwd, timeout: SLOW, env: { ...process.env, VERITY_DATA_DIR: dataDir } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, out: stdout + stderr }),
    );
  });
}

function printedUrl(): string {
  const url = /Verity is up at (\S+)/.exec(printed)?.[1];
  if (url === undefined) throw new Error(`verity up printed no URL:\n${printed}`);
  return url;
}

/** Runs lines in order; a line ending in `# ✗ CODE` must fail with that code, every other must pass. */
async function runAll(lines: readonly string[], cwd: string, readme: boolean): Promise<void> {
  for (const line of lines) {
    const expected = /#\s*✗\s*([A-Z_]+)/.exec(line)?.[1];
    const { code, out } = await sh(line, cwd, readme);
    if (expected === undefined) {
      expect(code, `${line}\n${out}`).toBe(0);
    } else {
      expect(code, `${line}\n${out}`).toBe(1);
      expect(out, line).toContain(expected);
    }
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'verity-readme-'));
  dataDir = join(dir, 'data');
  mkdirSync(dataDir, { mode: 0o700 });
  up = spawn(process.execPath, [BIN, 'up', '--data-dir', dataDir, '--port', '0'], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, VERITY_LLM_GPU: 'cpu' },
  });
  printed = '';
  // Ready when it has printed its examples (models loaded, chain deployed, node registered).
  await new Promise<void>((resolve, reject) => {
    up.stdout?.on('data', (d: Buffer) => {
      printed += d.toString();
      if (printed.includes('Ctrl-C stops')) resolve();
    });
    up.once('exit', (c) => reject(new Error(`verity up exited ${c}:\n${printed}`)));
  });
}, SLOW);
afterAll(async () => {
  if (up) await stopChild(up);
  if (dir) await rm(dir, { recursive: true, force: true });
}, SLOW);

describe('the README and `verity up`, as written', () => {
  it('`verity up` prints the explorer URL, where the node serves it and tells it the local chain', async () => {
    const url = printedUrl();
    expect(printed).toContain(`explorer ${url}/`);
    const page = await fetch(`${url}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    const config = (await (await fetch(`${url}/explorer.json`)).json()) as { rpcUrl?: string; deployment?: unknown };
    expect(config.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+/);
    expect(config.deployment).toBeDefined();
  });

  it(
    '`verity up` prints commands that run and verify against the chain, with no insecure flag',
    async () => {
      const lines = printed
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.startsWith('npm run verity --') || l.startsWith('curl '));
      expect(lines.some((l) => / verify /.test(l))).toBe(true);
      expect(printed).not.toMatch(/insecure|trust-bundle-nodes/);
      await runAll(lines, dir, false);
    },
    SLOW,
  );

  it(
    'the 60-second tour runs as the README says: verified against the chain, tampering caught',
    async () => {
      const lines = readmeCommands('## A 60-second tour');
      expect(lines.some((l) => l.includes('✗ RECEIPT_INCLUSION_INVALID'))).toBe(true);
      expect(lines.join('\n')).not.toMatch(/insecure|trust-bundle-nodes/);
      await runAll(lines, ROOT, true);
    },
    SLOW,
  );

  it(
    'the language-model tour runs as the README says',
    async () => {
      const lines = readmeCommands('### Language models, through the OpenAI API');
      expect(lines.join('\n')).not.toMatch(/insecure|trust-bundle-nodes/);
      await runAll(lines, ROOT, true);
    },
    SLOW,
  );
});

describe('verity verify against the chain of a real `verity up`', () => {
  it(
    'refuses a bundle signed by self-made keys (not registered), whatever keys the bundle carries',
    async () => {
      const demo = join(dir, 'forged');
      const made = await sh(`npm run verity -- demo --out ${demo} --json`, dir, false);
      expect(made.code, made.out).toBe(0);
      const forged = join(demo, 'bundle.json');
      const refused = await sh(`npm run verity -- verify ${forged} --json`, dir, false);
      expect(refused.code, refused.out).toBe(1);
      expect(JSON.parse(refused.out).error.code).toBe('RECEIPT_NODE_UNREGISTERED');
      // Only the flag that says it is insecure lets the bundle's own keys count.
      const insecure = await sh(`npm run verity -- verify ${forged} --insecure-trust-bundle-nodes`, dir, false);
      expect(insecure.code, insecure.out).toBe(0);
    },
    SLOW,
  );

  it(
    'verifies against any chain named by --rpc and --deployment, with no data dir',
    async () => {
      const bundle = join(dir, 'rpc.json');
      const run = await sh(
        `npm run verity -- infer iris@1.0.0 --input '{"x": [[5.0, 3.6, 1.4, 0.2]]}' --out ${bundle}`,
        dir,
        false,
      );
      expect(run.code, run.out).toBe(0);
      const { chain } = JSON.parse(readFileSync(join(dataDir, 'node.json'), 'utf8')) as {
        chain: { rpcUrl: string; deploymentFile: string };
      };
      const empty = join(dir, 'empty');
      mkdirSync(empty);
      const flags = `--rpc ${chain.rpcUrl} --deployment ${chain.deploymentFile} --data-dir ${empty}`;
      const ok = await sh(`npm run verity -- verify ${bundle} ${flags}`, dir, false);
      expect(ok.code, ok.out).toBe(0);
      // Without them, an empty data dir gives no root of trust: a usage error, not a verdict.
      const none = await sh(`npm run verity -- verify ${bundle} --data-dir ${empty}`, dir, false);
      expect(none.code, none.out).toBe(2);
    },
    SLOW,
  );
});
