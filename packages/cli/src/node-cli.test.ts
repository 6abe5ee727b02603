import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstJsonLine, stopChild } from '../../../test-support/wait.js';

// The CLI as a user drives it: a node process, then push, ls, show, infer, verify, log — each a
// real child process over real HTTP.
const BIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const IRIS = fileURLToPath(new URL('../../../examples/models/iris.onnx', import.meta.url));
const TINY_CHAT = fileURLToPath(new URL('../../../examples/models/tiny-chat.gguf', import.meta.url));

// Process start-up and a model's first load on a busy machine: generous, never raced.
const SLOW = 60_000;

/** The CLI with the node's data dir: it finds the node's URL, API key and log key there. */
function verity(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { timeout: SLOW, env: { ...process.env, VERITY_DATA_DIR: dataDir } },
      (error, stdout, stderr) => {
        resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

let node: ChildProcess;
let url: string;
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'verity-cli-node-'));
  node = spawn(
    process.execPath,
    [BIN, 'node', 'start', '--data-dir', dataDir, '--port', '0', '--json', '--log-level', 'silent'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
      // zk keys from the powers of tau the zk tests cache (generating one takes about a minute).
      env: {
        ...process.env,
        VERITY_ZK_PTAU_DIR: process.env.VERITY_ZK_TEST_CACHE ?? join(tmpdir(), 'verity-zk-test-ptau'),
      },
    },
  );
  url = (await firstJsonLine<{ url: string }>(node, 'the node')).url;
}, 2 * SLOW);
afterAll(async () => {
  if (node) await stopChild(node);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}, SLOW);

describe('verity CLI against a node', () => {
  it(
    'push → ls → show → infer → verify → log, with outputs equal to a direct onnxruntime run',
    async () => {
      const push = await verity(
        'model',
        'push',
        IRIS,
        '--name',
        'iris',
        '--version',
        '2.0.0',
        '--url',
        url,
        '--data-dir',
        dataDir,
        '--json',
      );
      expect(push.code, push.stderr).toBe(0);
      const pushed = JSON.parse(push.stdout) as { id: string; ref: string };
      expect(pushed.ref).toBe('iris@2.0.0');

      const ls = await verity('model', 'ls', '--url', url, '--json');
      expect((JSON.parse(ls.stdout) as { id: string }[]).map((m) => m.id)).toContain(pushed.id);
      const show = await verity('model', 'show', 'iris@2.0.0', '--url', url);
      expect(show.stdout).toContain('x: float32[batch, 4]');

      const bundlePath = join(dataDir, 'bundle.json');
      const inputPath = join(dataDir, 'input.json');
      await writeFile(inputPath, JSON.stringify({ x: [[6.3, 3.3, 6.0, 2.5]] }));
      const infer = await verity(
        'infer',
        'iris@2.0.0',
        '--input',
        `@${inputPath}`,
        '--out',
        bundlePath,
        '--url',
        url,
        '--json',
      );
      expect(infer.code, infer.stderr).toBe(0);
      const result = JSON.parse(infer.stdout) as { output: { probabilities: { data: number[] } }; verified: boolean };
      expect(result.verified).toBe(true);
      const session = await ort.InferenceSession.create(IRIS);
      const direct = await session.run({
        x: new ort.Tensor('float32', Float32Array.from([6.3, 3.3, 6.0, 2.5]), [1, 4]),
      });
      expect(Float32Array.from(result.output.probabilities.data)).toEqual(direct.probabilities?.data);

      // No chain here: the data dir's own node key (from its files, not from the node) is the root.
      const verify = await verity('verify', bundlePath, '--json');
      expect(verify.code, verify.stdout).toBe(0);
      const bundle = JSON.parse(await readFile(bundlePath, 'utf8'));
      bundle.output.probabilities.data[2] = 0.25;
      await writeFile(bundlePath, JSON.stringify(bundle));
      const tampered = await verity('verify', bundlePath, '--json');
      expect(tampered.code).toBe(1);
      expect(JSON.parse(tampered.stdout).error.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');

      const checkpoint = await verity('log', 'checkpoint', '--url', url, '--json');
      expect((JSON.parse(checkpoint.stdout) as { size: number }).size).toBeGreaterThanOrEqual(1);
      const proof = await verity('log', 'proof', '--index', '0', '--url', url, '--json');
      expect((JSON.parse(proof.stdout) as { type: string }).type).toBe('inclusion');
    },
    4 * SLOW,
  );

  it(
    'explains mistakes in one line with a code',
    async () => {
      const missing = await verity('infer', 'nope', '--input', '{"x": [[1, 2, 3, 4]]}', '--url', url);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^verity: MODEL_NOT_FOUND: /);
      const badInput = await verity('infer', 'iris@2.0.0', '--input', '{"x": [[1, 2]]}', '--url', url);
      expect(badInput.stderr).toMatch(/^verity: TENSOR_SHAPE_MISMATCH: /);
      const noKey = await verity('model', 'push', IRIS, '--url', url, '--api-key', 'wrong');
      expect(noKey.stderr).toMatch(/^verity: UNAUTHORIZED: /);
      const down = await verity('model', 'ls', '--url', 'http://127.0.0.1:1');
      expect(down.stderr).toMatch(/^verity: NETWORK_ERROR: /);
      expect(readFileSync(join(dataDir, 'keys.json')).length).toBeGreaterThan(0);
      // A node that is neither the data dir's nor on a chain is trusted only when asked to, insecurely.
      const stranger = await verity(
        'infer',
        'iris@2.0.0',
        '--input',
        '{"x": [[1, 2, 3, 4]]}',
        '--url',
        url.replace('127.0.0.1', 'localhost'),
      );
      expect(stranger.code).toBe(2);
      expect(stranger.stderr).toMatch(/^verity: say whom to trust/);
    },
    4 * SLOW,
  );
});

describe('verity chat against a node', () => {
  it(
    'pushes a GGUF, chats (one-shot and piped turns), and the saved bundle verifies; tampered, it fails',
    async () => {
      const push = await verity('model', 'push', TINY_CHAT, '--url', url, '--data-dir', dataDir, '--json');
      expect(push.code, push.stderr).toBe(0);
      const pushed = JSON.parse(push.stdout) as {
        ref: string;
        manifest: { format: string; metadata: Record<string, string> };
      };
      expect(pushed.ref).toBe('tiny-chat@1.0.0');
      expect(pushed.manifest.format).toBe('gguf');
      expect(pushed.manifest.metadata.parameter_count).toMatch(/^[0-9]+$/);
      const show = await verity('model', 'show', 'tiny-chat', '--url', url);
      expect(show.stdout).toContain('llm      llama');

      const bundlePath = join(dataDir, 'chat-bundle.json');
      const args = [
        'chat',
        'tiny-chat',
        '--message',
        'Hello!',
        '--seed',
        '7',
        '--temperature',
        '0.8',
        '--max-tokens',
        '24',
      ];
      const one = await verity(...args, '--url', url, '--out', bundlePath, '--json');
      expect(one.code, one.stderr).toBe(0);
      const answer = JSON.parse(one.stdout) as {
        message: { content: string };
        verified: boolean;
        params: { seed: number };
      };
      expect(answer.verified).toBe(true);
      expect(answer.params.seed).toBe(7);
      // Same seed, same words; in mode audited the node also keeps the payload, and says until when.
      const again = JSON.parse(
        (await verity(...args, '--mode', 'audited', '--url', url, '--json')).stdout,
      ) as typeof answer & { requestId: string; record: { mode: string }; audit?: { payload: string } };
      expect(again.message).toEqual(answer.message);
      expect(again.record.mode).toBe('audited');
      expect(again.audit?.payload).toBe(`/v1/payloads/${again.requestId}`);

      const verify = await verity('verify', bundlePath, '--json');
      expect(verify.code, verify.stdout).toBe(0);
      const bundle = JSON.parse(await readFile(bundlePath, 'utf8'));
      bundle.output.message.content = `${bundle.output.message.content}.`;
      await writeFile(bundlePath, JSON.stringify(bundle));
      const tampered = await verity('verify', bundlePath, '--json');
      expect(tampered.code).toBe(1);
      expect(JSON.parse(tampered.stdout).error.code).toBe('RECEIPT_OUTPUT_DIGEST_MISMATCH');

      // Piped input: each line is a turn; every answer is verified.
      const piped = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'chat', 'tiny-chat', '--url', url, '--max-tokens', '8', '--json'], {
          env: { ...process.env, VERITY_DATA_DIR: dataDir },
        });
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
        });
        child.on('exit', (code) => resolve({ code, stdout }));
        child.stdin.end('Hi\nHow are you?\n');
      });
      expect(piped.code).toBe(0);
      const turns = piped.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { verified: boolean });
      expect(turns).toHaveLength(2);
      expect(turns.every((t) => t.verified)).toBe(true);

      const unknown = await verity('chat', 'nope', '--message', 'x', '--url', url);
      expect(unknown.stderr).toMatch(/^verity: MODEL_NOT_FOUND: /);
    },
    4 * SLOW,
  );
});

describe('verity zk commands against a node', () => {
  it(
    'push --zk, infer --mode zk, verify: local-dev setups refused unless accepted, a doctored proof refused',
    async () => {
      const push = await verity(
        'model',
        'push',
        IRIS,
        '--name',
        'iris-zk',
        '--zk',
        '--url',
        url,
        '--data-dir',
        dataDir,
        '--json',
      );
      expect(push.code, push.stderr).toBe(0);
      const pushed = JSON.parse(push.stdout) as { manifest: { metadata: Record<string, string> } };
      expect(pushed.manifest.metadata['zk.setup']).toBe('local-dev');
      expect(pushed.manifest.metadata['zk.r1cs']).toMatch(/^[0-9a-f]{64}$/);

      const bundlePath = join(dataDir, 'zk-bundle.json');
      const input = JSON.stringify({ x: [[5.0, 3.6, 1.4, 0.2]] });
      const refused = await verity('infer', 'iris-zk', '--mode', 'zk', '--url', url, '--input', input);
      expect(refused.stderr).toMatch(/^verity: ZK_SETUP_UNTRUSTED: /);
      const run = await verity(
        'infer',
        'iris-zk',
        '--mode',
        'zk',
        '--url',
        url,
        '--input',
        input,
        '--out',
        bundlePath,
        '--accept-local-dev-setup',
        '--json',
      );
      expect(run.code, run.stderr).toBe(0);

      expect((await verity('verify', bundlePath)).code).toBe(1);
      const ok = await verity('verify', bundlePath, '--accept-local-dev-setup', '--json');
      expect(ok.code, ok.stdout).toBe(0);
      const bundle = JSON.parse(await readFile(bundlePath, 'utf8'));
      bundle.zk.proof.pi_a[0] = bundle.zk.proof.pi_c[0];
      await writeFile(bundlePath, JSON.stringify(bundle));
      const doctored = await verity('verify', bundlePath, '--accept-local-dev-setup', '--json');
      expect(doctored.code).toBe(1);
      expect(JSON.parse(doctored.stdout).error.code).toBe('ZK_PROOF_INVALID');
    },
    6 * SLOW,
  );
});
