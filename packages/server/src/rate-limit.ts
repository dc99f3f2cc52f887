/**
 * Per-tenant token buckets. A request costs one token per event; a tenant that runs dry is refused
 * (429 with the wait until enough tokens return) without touching anyone else's bucket or the writer.
 */
export interface RateLimiter {
  /** Takes `cost` tokens, or says how long until they would be there (ms). `rate` 0 means unlimited. */
  take(tenantId: string, cost: number, rate: number): { ok: true } | { ok: false; retryAfterMs: number };
}

export function createRateLimiter(options: { burstSeconds: number }, now: () => number = Date.now): RateLimiter {
  const buckets = new Map<string, { tokens: number; at: number; rate: number }>();
  return {
    take(tenantId, cost, rate) {
      if (rate <= 0) return { ok: true };
      const capacity = Math.max(1, rate * options.burstSeconds);
      const t = now();
      let b = buckets.get(tenantId);
      if (!b || b.rate !== rate) {
        b = { tokens: capacity, at: t, rate };
        buckets.set(tenantId, b);
      }
      b.tokens = Math.min(capacity, b.tokens + ((t - b.at) / 1000) * rate);
      b.at = t;
      // A batch larger than the whole bucket could never pass: let it through when the bucket is full,
      // so the tenant is slowed down, not locked out.
      const need = Math.min(cost, capacity);
      if (b.tokens >= need) {
        b.tokens -= cost;
        return { ok: true };
      }
      return { ok: false, retryAfterMs: Math.ceil(((need - b.tokens) / rate) * 1000) };
    },
  };
}
