/**
 * Suppresses the same event twice within a window, e.g. when an audit log is mirrored into analytics
 * and the same task reports its completion from two places. Bounded: the oldest keys go first.
 */
export class Deduper {
  // Insertion order is expiry order (one window for all keys), so expired keys are always at the front.
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
  ) {}

  /** True when `key` was seen within the window (the event is a duplicate); records it otherwise. */
  isDuplicate(key: string, now: number): boolean {
    const expires = this.seen.get(key);
    if (expires !== undefined && expires > now) return true;
    if (expires !== undefined) this.seen.delete(key);
    this.evict(now);
    this.seen.set(key, now + this.windowMs);
    return false;
  }

  get size(): number {
    return this.seen.size;
  }

  private evict(now: number): void {
    for (const [key, expires] of this.seen) {
      if (expires > now && this.seen.size < this.maxKeys) return;
      this.seen.delete(key);
    }
  }
}
