/**
 * The executor: bounded queues per model, a cap on runs in flight, timeouts, backpressure, and
 * batching of requests that queue up together: the step between the route and the runtime on
 * the request path (docs/architecture.md §2).
 *
 * Memory stays bounded: at most `maxQueue` requests wait per model and `maxPending` in all;
 * beyond that a request fails at once with QUEUE_FULL (429) or OVERLOADED (503) and the HTTP
 * layer adds `Retry-After`. There is no batching window: when a run slot frees up, whatever
 * compatible requests are waiting for that model go together in one run (up to `maxBatch`), so
 * an idle node adds no latency and a loaded one amortises each run over many requests.
 */
import { fail, type TensorMap, VerityError } from '@verity/protocol';
import type { ExecutorSettings } from './config.js';

/**
 * What the executor needs of a loaded model: ONNX models take and give tensors, language models
 * a generation job and its result.
 */
export interface ExecutableModel<I = TensorMap, O = TensorMap> {
  /** Whether requests may be concatenated along dimension 0 and split back. */
  readonly batchable: boolean;
  /** Runs in flight for this model at most (default: the executor's `concurrency`). */
  readonly concurrency?: number;
  run(inputs: I): Promise<O>;
}

/** Work that is not a model run (a zk proof, a ceremony contribution), queued as one. */
export type Task<T = unknown> = () => Promise<T>;

/**
 * The model of a lane of tasks: it runs the task it is given, at most `concurrency` at a time.
 * Tasks share the executor's bounds, timeouts and 429/503 answers with model runs.
 *
 * @example
 * ```ts
 * const proof = await executor.run('zk', taskLane(1), () => prove(...));
 * ```
 */
export function taskLane(concurrency: number): ExecutableModel<Task, unknown> {
  return { batchable: false, concurrency, run: (task) => task() };
}

/** The input type of an executable model. */
type InputOf<M> = M extends ExecutableModel<infer I, unknown> ? I : never;
/** The output type of an executable model. */
type OutputOf<M> = M extends ExecutableModel<unknown, infer O> ? O : never;

/** Runs several requests as one (concatenate, run once, split); results in request order. */
export type BatchRunner<M extends ExecutableModel<never, unknown>> = (
  model: M,
  requests: InputOf<M>[],
) => Promise<OutputOf<M>[]>;

/** Executor statistics, for metrics. */
export interface ExecutorStats {
  readonly pending: number;
  readonly running: number;
  readonly runs: number;
  readonly batchedRequests: number;
  readonly rejected: number;
  readonly timedOut: number;
}

/** Options of one {@link Executor.run}. */
export interface RunOptions {
  /** Overrides the executor's `timeoutMs` (e.g. for long generations). */
  timeoutMs?: number;
}

export interface Executor<M extends ExecutableModel<never, unknown> = ExecutableModel> {
  /** Runs `inputs` on `model`; `key` groups requests per model (its CID). */
  run<X extends M>(key: string, model: X, inputs: InputOf<X>, options?: RunOptions): Promise<OutputOf<X>>;
  stats(): ExecutorStats;
  /** Resolves when nothing is pending or running (for graceful shutdown). */
  idle(): Promise<void>;
}

interface Job {
  readonly inputs: unknown;
  readonly resolve: (out: unknown) => void;
  readonly reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  settled: boolean;
}

interface Lane<M> {
  readonly model: M;
  readonly queue: Job[];
  running: number;
}

/** Shape signature of a request without its first dimension: requests batch only when these agree. */
function batchKey(inputs: unknown): string {
  const map = inputs as TensorMap;
  return Object.keys(map)
    .sort()
    .map((name) => {
      const t = map[name] as { dtype: string; shape: readonly number[] };
      return `${name}:${t.dtype}:${t.shape.length}:${t.shape.slice(1).join('x')}`;
    })
    .join('|');
}

/**
 * Creates an executor.
 *
 * @example
 * ```ts
 * const executor = createExecutor(config.executor, runBatched);
 * const output = await executor.run(manifestCid, model, inputs);
 * ```
 */
export function createExecutor<M extends ExecutableModel<never, unknown>>(
  settings: ExecutorSettings,
  runBatch: BatchRunner<M>,
): Executor<M> {
  const lanes = new Map<string, Lane<M>>();
  let pending = 0;
  let running = 0;
  let runs = 0;
  let batchedRequests = 0;
  let rejected = 0;
  let timedOut = 0;
  let idleWaiters: (() => void)[] = [];

  const settle = (job: Job, fn: () => void) => {
    if (job.settled) return;
    job.settled = true;
    if (job.timer) clearTimeout(job.timer);
    fn();
  };

  const checkIdle = () => {
    if (pending === 0 && running === 0 && idleWaiters.length > 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };

  const pump = (key: string, lane: Lane<M>) => {
    while (lane.running < (lane.model.concurrency ?? settings.concurrency) && lane.queue.length > 0) {
      const first = lane.queue.shift() as Job;
      const batch = [first];
      if (lane.model.batchable && lane.queue.length > 0) {
        const k = batchKey(first.inputs);
        for (let i = 0; i < lane.queue.length && batch.length < settings.maxBatch; ) {
          const job = lane.queue[i] as Job;
          if (batchKey(job.inputs) === k) {
            batch.push(job);
            lane.queue.splice(i, 1);
          } else i++;
        }
      }
      pending -= batch.length;
      lane.running++;
      running++;
      runs++;
      if (batch.length > 1) batchedRequests += batch.length;
      const model = lane.model as unknown as ExecutableModel<unknown, unknown>;
      const work: Promise<unknown[]> =
        batch.length === 1
          ? model.run(first.inputs).then((out) => [out])
          : runBatch(
              lane.model,
              batch.map((j) => j.inputs as InputOf<M>),
            );
      work
        .then(
          (outputs) => {
            batch.forEach((job, i) => {
              settle(job, () => job.resolve(outputs[i]));
            });
          },
          (cause: unknown) => {
            const error =
              cause instanceof VerityError
                ? cause
                : new VerityError('INFERENCE_FAILED', 'the runtime failed to run the model', { cause });
            for (const job of batch) settle(job, () => job.reject(error));
          },
        )
        .finally(() => {
          lane.running--;
          running--;
          if (lane.queue.length === 0 && lane.running === 0) lanes.delete(key);
          else pump(key, lane);
          checkIdle();
        });
    }
  };

  return {
    run(key, model, inputs, options = {}) {
      const timeoutMs = options.timeoutMs ?? settings.timeoutMs;
      if (pending >= settings.maxPending) {
        rejected++;
        fail('OVERLOADED', 'the node is overloaded; retry later', { pending });
      }
      let lane = lanes.get(key);
      if (!lane) {
        lane = { model, queue: [], running: 0 };
        lanes.set(key, lane);
      }
      if (lane.queue.length >= settings.maxQueue) {
        rejected++;
        fail('QUEUE_FULL', 'too many requests are waiting for this model; retry later', { queued: lane.queue.length });
      }
      const current = lane;
      return new Promise((resolve, reject) => {
        const job: Job = {
          inputs,
          resolve: resolve as (out: unknown) => void,
          reject,
          timer: undefined,
          settled: false,
        };
        job.timer = setTimeout(() => {
          settle(job, () => {
            timedOut++;
            const i = current.queue.indexOf(job);
            if (i >= 0) {
              current.queue.splice(i, 1);
              pending--;
              checkIdle();
            }
            reject(new VerityError('INFERENCE_TIMEOUT', `inference did not finish within ${timeoutMs} ms`));
          });
        }, timeoutMs);
        current.queue.push(job);
        pending++;
        pump(key, current);
      });
    },
    stats: () => ({ pending, running, runs, batchedRequests, rejected, timedOut }),
    idle() {
      if (pending === 0 && running === 0) return Promise.resolve();
      return new Promise((resolve) => idleWaiters.push(resolve));
    },
  };
}
