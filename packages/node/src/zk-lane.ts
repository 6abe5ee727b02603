/**
 * zk work through the executor: proofs and ceremony contributions run in the zk executor's one
 * lane (`config.zk.concurrency` at a time, default 1), behind a bounded queue (429 QUEUE_FULL)
 * and a timeout (504 INFERENCE_TIMEOUT), the same answers as model runs.
 */
import type { NodeContext } from './context.js';
import { type Task, taskLane } from './executor.js';

const lanes = new WeakMap<NodeContext, ReturnType<typeof taskLane>>();

/**
 * Runs `task` in the zk lane of `ctx`'s zk executor.
 *
 * @example
 * ```ts
 * const proof = await runZkTask(ctx, () => ctx.zk.prove(cid, manifest, path, inputs));
 * ```
 */
export async function runZkTask<T>(ctx: NodeContext, task: Task<T>): Promise<T> {
  let lane = lanes.get(ctx);
  if (lane === undefined) {
    lane = taskLane(ctx.config.zk.concurrency);
    lanes.set(ctx, lane);
  }
  return (await ctx.zkExecutor.run('zk', lane, task)) as T;
}
