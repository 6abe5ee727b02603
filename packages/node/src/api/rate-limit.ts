/**
 * A token bucket per client address: `rate` tokens per second, at most `burst` banked. Buckets of
 * idle clients are dropped, so memory stays bounded by the number of recently active clients.
 */
export interface RateLimiter {
  /** Takes a token for `client`; false when the client is over its rate. */
  take(client: string): boolean;
}

export function createRateLimiter(rate: number, burst: number, maxClients = 100_000): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number }>();
  return {
    take(client) {
      const now = performance.now();
      let b = buckets.get(client);
      if (!b) {
        if (buckets.size >= maxClients) {
          // Forget the longest-idle clients first (Map keeps insertion order; refreshed on use).
          for (const k of buckets.keys()) {
            buckets.delete(k);
            if (buckets.size < maxClients / 2) break;
          }
        }
        b = { tokens: burst, at: now };
      } else {
        buckets.delete(client);
        b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * rate);
        b.at = now;
      }
      buckets.set(client, b);
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    },
  };
}
