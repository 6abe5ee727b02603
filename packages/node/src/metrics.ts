/** Prometheus metrics (text exposition at `GET /metrics`). One registry per node. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly inferenceSeconds: Histogram<'model'>;
  readonly logAppendSeconds: Histogram;
  readonly modelsLoaded: Gauge;
}

/**
 * Creates the node's metrics; `sample` is called at scrape time for gauges that mirror state.
 */
export function createMetrics(
  sample: () => { pending: number; running: number; logSize: number; models: number },
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
  return {
    registry,
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
