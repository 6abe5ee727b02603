/**
 * Loaded models by manifest CID: loaded on first use, shared by concurrent requests (one load
 * per model however many requests arrive at once), least recently used ones closed beyond a bound.
 */
import type { LoadedModel, Runtime } from './runtimes/runtime.js';

export interface ModelCache<M extends { close(): Promise<void> } = LoadedModel> {
  get(manifestCid: string, artifactPath: string): Promise<M>;
  readonly size: number;
  closeAll(): Promise<void>;
}

export function createModelCache<M extends { close(): Promise<void> } = LoadedModel>(
  runtime: Runtime<M>,
  maxLoaded = 16,
): ModelCache<M> {
  const loaded = new Map<string, Promise<M>>();
  return {
    get size() {
      return loaded.size;
    },
    get(cid, path) {
      let p = loaded.get(cid);
      if (p) {
        loaded.delete(cid); // refresh recency
        loaded.set(cid, p);
        return p;
      }
      p = runtime.load(path);
      loaded.set(cid, p);
      p.catch(() => loaded.delete(cid));
      if (loaded.size > maxLoaded) {
        const [oldest, model] = loaded.entries().next().value as [string, Promise<M>];
        loaded.delete(oldest);
        void model.then((m) => m.close()).catch(() => {});
      }
      return p;
    },
    async closeAll() {
      const all = [...loaded.values()];
      loaded.clear();
      await Promise.allSettled(all.map((p) => p.then((m) => m.close())));
    },
  };
}
