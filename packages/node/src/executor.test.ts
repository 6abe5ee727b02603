import type { TensorMap } from '@verity/protocol';
import { createTensor } from '@verity/protocol';
import { describe, expect, it } from 'vitest';
import { createExecutor, type ExecutableModel } from './executor.js';

// A real model in miniature: doubles x, after a controllable delay; counts its runs and batch sizes.
function doubler(options: { batchable?: boolean; delayMs?: number; fail?: boolean } = {}) {
  const batches: number[] = [];
  let gate: Promise<void> = Promise.resolve();
  let open: () => void = () => {};
  const model: ExecutableModel & { batches: number[]; hold(): void; release(): void } = {
    batchable: options.batchable ?? true,
    batches,
    hold() {
      gate = new Promise((r) => {
        open = r;
      });
    },
    release() {
      open();
    },
    async run(inputs: TensorMap) {
      await gate;
      if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs));
      if (options.fail) throw new Error('boom');
      const x = inputs.x as { shape: number[]; data: Float32Array };
      batches.push(x.shape[0] as number);
      return {
        y: createTensor(
          'float32',
          x.shape,
          x.data.map((v) => v * 2),
        ),
      };
    },
  };
  return model;
}

const req = (v: number): TensorMap => ({ x: createTensor('float32', [1, 2], new Float32Array([v, v + 1])) });

// Concatenate along dim 0, run once, split: the same contract as the runtime's runBatched.
async function runBatch(model: ExecutableModel, requests: TensorMap[]): Promise<TensorMap[]> {
  const data = new Float32Array(requests.flatMap((r) => Array.from((r.x as { data: Float32Array }).data)));
  const out = await model.run({ x: createTensor('float32', [requests.length, 2], data) });
  const y = (out.y as { data: Float32Array }).data;
  return requests.map((_, i) => ({ y: createTensor('float32', [1, 2], y.slice(2 * i, 2 * i + 2)) }));
}

const settings = { maxQueue: 4, maxPending: 100, concurrency: 1, maxBatch: 3, timeoutMs: 2000 };

describe('executor', () => {
  it('runs a request and returns its output', async () => {
    const ex = createExecutor(settings, runBatch);
    const out = await ex.run('m', doubler(), req(1));
    expect(Array.from((out.y as { data: Float32Array }).data)).toEqual([2, 4]);
  });
  it('batches requests that queue up together, each getting its own result', async () => {
    const model = doubler();
    const ex = createExecutor(settings, runBatch);
    model.hold();
    const all = [1, 2, 3, 4].map((v) => ex.run('m', model, req(v)));
    model.release();
    const outs = await Promise.all(all);
    expect(outs.map((o) => Array.from((o.y as { data: Float32Array }).data))).toEqual([
      [2, 4],
      [4, 6],
      [6, 8],
      [8, 10],
    ]);
    // First request runs alone (the slot was free), the next three wait and go together.
    expect(model.batches).toEqual([1, 3]);
    expect(ex.stats().batchedRequests).toBe(3);
  });
  it('does not batch a model that cannot be batched', async () => {
    const model = doubler({ batchable: false });
    const ex = createExecutor(settings, runBatch);
    model.hold();
    const all = [1, 2, 3].map((v) => ex.run('m', model, req(v)));
    model.release();
    await Promise.all(all);
    expect(model.batches).toEqual([1, 1, 1]);
  });
  it('rejects beyond the queue with QUEUE_FULL, at once, and recovers', async () => {
    const model = doubler();
    const ex = createExecutor(settings, runBatch);
    model.hold();
    const accepted = Array.from({ length: 5 }, (_, i) => ex.run('m', model, req(i))); // 1 running + 4 queued
    expect(() => ex.run('m', model, req(9))).toThrowError(expect.objectContaining({ code: 'QUEUE_FULL' }));
    model.release();
    await Promise.all(accepted);
    await expect(ex.run('m', model, req(1))).resolves.toBeDefined();
    expect(ex.stats().rejected).toBe(1);
  });
  it('rejects beyond the global bound with OVERLOADED', async () => {
    const model = doubler();
    const ex = createExecutor({ ...settings, maxQueue: 10, maxPending: 2 }, runBatch);
    model.hold();
    const accepted = [1, 2, 3].map((v) => ex.run('m', model, req(v))); // one runs, two wait
    expect(() => ex.run('other', model, req(4))).toThrowError(expect.objectContaining({ code: 'OVERLOADED' }));
    model.release();
    await Promise.all(accepted);
  });
  it('times out a request that waits too long, without leaking it', async () => {
    const model = doubler();
    const ex = createExecutor({ ...settings, timeoutMs: 50 }, runBatch);
    model.hold();
    const first = ex.run('m', model, req(1));
    const second = ex.run('m', model, req(2));
    await Promise.all([
      expect(first).rejects.toMatchObject({ code: 'INFERENCE_TIMEOUT' }),
      expect(second).rejects.toMatchObject({ code: 'INFERENCE_TIMEOUT' }),
    ]);
    expect(ex.stats().pending).toBe(0);
    model.release();
    await ex.idle();
    expect(ex.stats().running).toBe(0);
  });
  it('turns a runtime failure into INFERENCE_FAILED for every request of the batch', async () => {
    const ex = createExecutor(settings, runBatch);
    await expect(ex.run('m', doubler({ fail: true }), req(1))).rejects.toMatchObject({ code: 'INFERENCE_FAILED' });
  });
});
