import { describe, expect, it } from 'vitest';
import { backoffDelay, parseRetryAfter, RETRY_AFTER_CAP_MS, sleep } from '../src/index.js';

describe('backoffDelay', () => {
  const opts = { initialMs: 100, maxMs: 2000 };

  it('draws from [0, initial · 2^attempt), never above maxMs', () => {
    for (let attempt = 0; attempt < 10; attempt++) {
      const ceiling = Math.min(opts.maxMs, opts.initialMs * 2 ** attempt);
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(attempt, opts);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThan(ceiling);
      }
    }
  });

  it("honours a server's Retry-After past maxMs, with a little jitter, up to the cap", () => {
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(0, opts, 10_000);
      expect(d).toBeGreaterThanOrEqual(10_000);
      expect(d).toBeLessThanOrEqual(11_000);
    }
    expect(backoffDelay(0, opts, 86_400_000)).toBe(RETRY_AFTER_CAP_MS);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates, and nothing else', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('1.5')).toBe(1500);
    const now = Date.UTC(2026, 0, 1, 0, 0, 0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter('')).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('sleep', () => {
  it('sleeps the whole time and says so', async () => {
    const start = performance.now();
    expect(await sleep(30)).toBe(true);
    expect(performance.now() - start).toBeGreaterThanOrEqual(25);
  });

  it('returns false at once when the signal is already aborted or aborts meanwhile', async () => {
    expect(await sleep(10_000, AbortSignal.abort())).toBe(false);
    const ac = new AbortController();
    const start = performance.now();
    const slept = sleep(10_000, ac.signal);
    setTimeout(() => ac.abort(), 20);
    expect(await slept).toBe(false);
    expect(performance.now() - start).toBeLessThan(5000);
  });

  it('does not keep a Node process alive (its timer is unref’d)', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const ac = new AbortController();
    const slept = sleep(60_000, ac.signal);
    expect(timers()).toBe(before);
    ac.abort();
    expect(await slept).toBe(false);
  });
});
