import type { AbortSignalLike, PlatformAbortSignal } from './abort.js';

/** Exponential backoff with full jitter (AWS's "full jitter"): spreads retries of many clients apart. */
export interface BackoffOptions {
  /** First delay ceiling in ms. */
  initialMs: number;
  /** Largest backoff delay in ms (a server's Retry-After may ask for more; see RETRY_AFTER_CAP_MS). */
  maxMs: number;
}

/** The longest a server's Retry-After is honoured: a misconfigured `Retry-After: 86400` must not park events for a day. */
export const RETRY_AFTER_CAP_MS = 5 * 60_000;

export function backoffDelay(attempt: number, opts: BackoffOptions, retryAfterMs?: number): number {
  if (retryAfterMs !== undefined && retryAfterMs >= 0) {
    // The server said when: wait that long, even past maxMs (it knows its load better than we do), a
    // little more so a fleet does not return in lockstep, and never more than RETRY_AFTER_CAP_MS.
    const jitter = Math.random() * Math.min(1000, retryAfterMs * 0.1 + 50);
    return Math.min(Math.max(opts.maxMs, RETRY_AFTER_CAP_MS), retryAfterMs + jitter);
  }
  const ceiling = Math.min(opts.maxMs, opts.initialMs * 2 ** attempt);
  return Math.random() * ceiling;
}

/** Parses Retry-After: delta-seconds or an HTTP date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** setTimeout and clearTimeout are global in every runtime core targets; typed locally as crypto is in uuidv7.ts. */
interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

/**
 * Resolves after `ms`, or at once when the signal aborts; true when it slept the whole time.
 * On Node the timer is unref'd: a process must never stay alive just to retry (its exit hook spools instead).
 */
export function sleep(ms: number, signal?: PlatformAbortSignal): Promise<boolean> {
  // Looked up per call, not captured at load, so fake timers installed later (tests) still apply.
  const timers = globalThis as unknown as Timers;
  const aborts = signal as AbortSignalLike | undefined;
  return new Promise((resolve) => {
    if (aborts?.aborted) return resolve(false);
    const onAbort = () => {
      timers.clearTimeout(timer);
      resolve(false);
    };
    const timer = timers.setTimeout(() => {
      aborts?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    // Node's Timeout has unref; browsers and Workers return a number, and nothing keeps them alive anyway.
    (timer as { unref?: () => void }).unref?.();
    aborts?.addEventListener('abort', onAbort, { once: true });
  });
}
