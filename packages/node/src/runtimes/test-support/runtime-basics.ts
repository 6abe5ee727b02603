/**
 * What every {@link Runtime} does, whatever its models take and give (ONNX tensors, LLM
 * generation jobs): it names itself, refuses what is not a model with stable codes, runs a job
 * the same way twice, and closes cleanly. The ONNX runtimes also pass the deeper tensor suite in
 * `runtime-compliance.ts`.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVerityError } from '@verity/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Runtime } from '../runtime.js';

/** A model a runtime can run, as the basics need it. */
interface Runnable {
  run(job: never): Promise<unknown>;
  close(): Promise<void>;
}

/** What the basics need of one runtime. */
export interface RuntimeBasicsFixture<M extends Runnable> {
  /** A valid model file, with the extension the runtime expects. */
  readonly modelPath: string;
  /** Execution profiles the runtime may report. */
  readonly profiles: readonly string[];
  /** A job to run on that model, and how to compare two results (default: deep equality). */
  readonly job: Parameters<M['run']>[0];
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    if (!isVerityError(e)) throw e;
    return e.code;
  }
}

/**
 * Registers the shared runtime tests.
 *
 * @example
 * ```ts
 * describeRuntimeBasics('node-llama-cpp', () => createLlmRuntime({ gpu: false }), { modelPath, profiles: ['cpu'], job });
 * ```
 */
export function describeRuntimeBasics<M extends Runnable>(
  name: string,
  createRuntime: () => Runtime<M> | Promise<Runtime<M>>,
  fixture: RuntimeBasicsFixture<M>,
): void {
  describe(`Runtime basics: ${name}`, () => {
    let runtime: Runtime<M>;
    const dir = mkdtempSync(join(tmpdir(), 'verity-runtime-basics-'));
    const opened: M[] = [];
    const load = async (path: string) => {
      const m = await runtime.load(path);
      opened.push(m);
      return m;
    };
    beforeAll(async () => {
      runtime = await createRuntime();
    });
    afterAll(async () => {
      await Promise.all(opened.map((m) => m.close()));
    });

    it('names itself: id, version and execution profile', () => {
      expect(runtime.id).toMatch(/^\S+$/);
      expect(runtime.version).toMatch(/^\d+\.\d+\.\d+/);
      expect(fixture.profiles).toContain(runtime.profile);
    });

    it('refuses what is not a model: MODEL_NOT_FOUND for a missing path, MODEL_INVALID for the rest', async () => {
      const bytes = readFileSync(fixture.modelPath);
      const ext = fixture.modelPath.slice(fixture.modelPath.lastIndexOf('.'));
      const file = (label: string, content: Uint8Array) => {
        const p = join(dir, `${label}${ext}`);
        writeFileSync(p, content);
        return p;
      };
      expect(await codeOf(runtime.load(join(dir, `missing${ext}`)))).toBe('MODEL_NOT_FOUND');
      expect(await codeOf(runtime.load(dir))).toBe('MODEL_INVALID');
      expect(await codeOf(runtime.load(file('empty', new Uint8Array(0))))).toBe('MODEL_INVALID');
      expect(await codeOf(runtime.load(file('text', new TextEncoder().encode('not a model at all'))))).toBe(
        'MODEL_INVALID',
      );
      expect(await codeOf(runtime.load(file('truncated', bytes.subarray(0, Math.floor(bytes.length / 2)))))).toBe(
        'MODEL_INVALID',
      );
      expect(await codeOf(runtime.load(file('header-only', bytes.subarray(0, 64))))).toBe('MODEL_INVALID');
    });

    it('runs a job the same way twice, from the same file and from a copy', async () => {
      const copy = join(dir, `copy${fixture.modelPath.slice(fixture.modelPath.lastIndexOf('.'))}`);
      copyFileSync(fixture.modelPath, copy);
      const a = await load(fixture.modelPath);
      const b = await load(copy);
      const first = await a.run(fixture.job as never);
      expect(await a.run(fixture.job as never)).toEqual(first);
      expect(await b.run(fixture.job as never)).toEqual(first);
    });

    it('refuses runs once closed with INFERENCE_FAILED; close is idempotent', async () => {
      const m = await runtime.load(fixture.modelPath);
      await m.run(fixture.job as never);
      await m.close();
      await m.close();
      expect(await codeOf(m.run(fixture.job as never))).toBe('INFERENCE_FAILED');
    });
  });
}
