/** Prometheus metrics (text exposition at `GET /metrics`). One registry per node. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly inferenceSeconds: Histogram<'model'>;
  readonly logAppendSeconds: Histogram;
  /** Log batches (signed checkpoints) answers were committed in: records per batch = appends / this. */
  readonly logBatches: Counter;
  readonly modelsLoaded: Gauge;
  /** Mode zk: proofs made, their time (queueing excluded), and the process's RSS after the latest. */
  readonly zkProofs: Counter;
  readonly zkProveSeconds: Histogram;
  readonly zkRssAfterProveBytes: Gauge;
}

/**
 * Creates the node's metrics; `sample` is called at scrape time for gauges that mirror state.
 */
export function createMetrics(
  sample: () => {
    pending: number;
    running: number;
    logSize: number;
    models: number;
    zk: { pending: number; running: number; rejected: number; timedOut: number };
  },
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'verity_process_' });
  const current = () => sample();
  new Gauge({
    name: 'verity_executor_pending',
    help: 'Inference requests waiting in the executor queues',
    registers: [registry],
    collect() {
      this.set(current().pending);
    },
  });
  new Gauge({
    name: 'verity_executor_running',
    help: 'Inference runs in flight',
    registers: [registry],
    collect() {
      this.set(current().running);
    },
  });
  new Gauge({
    name: 'verity_log_size',
    help: 'Records in the node log (size of the latest checkpoint)',
    registers: [registry],
    collect() {
      this.set(current().logSize);
    },
  });
  new Gauge({
    name: 'verity_zk_pending',
    help: 'zk jobs (proofs, ceremony contributions) waiting in the zk queue',
    registers: [registry],
    collect() {
      this.set(current().zk.pending);
    },
  });
  new Gauge({
    name: 'verity_zk_running',
    help: 'zk jobs in flight',
    registers: [registry],
    collect() {
      this.set(current().zk.running);
    },
  });
  new Gauge({
    name: 'verity_zk_refused',
    help: 'zk jobs refused (queue full) or timed out since start',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      const zk = current().zk;
      this.set({ reason: 'queue_full' }, zk.rejected);
      this.set({ reason: 'timeout' }, zk.timedOut);
    },
  });
  return {
    registry,
    zkProofs: new Counter({ name: 'verity_zk_proofs_total', help: 'zk proofs made', registers: [registry] }),
    zkProveSeconds: new Histogram({
      name: 'verity_zk_prove_seconds',
      help: 'Time to prove one zk inference (witness and Groth16 proof), queueing excluded',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    zkRssAfterProveBytes: new Gauge({
      name: 'verity_zk_rss_after_prove_bytes',
      help: 'Resident set size of the node process right after its latest zk proof',
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: 'verity_http_requests_total',
      help: 'HTTP requests by route, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    inferenceSeconds: new Histogram({
      name: 'verity_inference_seconds',
      help: 'Time from a validated request to its output, including queueing',
      labelNames: ['model'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    logAppendSeconds: new Histogram({
      name: 'verity_log_append_seconds',
      help: 'Time to make a record durable and covered by a signed checkpoint',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers: [registry],
    }),
    logBatches: new Counter({
      name: 'verity_log_batches_total',
      help: 'Log batches (signed checkpoints) that answers were committed in; verity_log_append_seconds_count / this is the records per batch of the group commit',
      registers: [registry],
    }),
    modelsLoaded: new Gauge({
      name: 'verity_models_loaded',
      help: 'Models loaded in a runtime',
      registers: [registry],
      collect() {
        this.set(current().models);
      },
    }),
  };
}
