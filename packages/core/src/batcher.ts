/**
 * One batcher for what Tally sends or stores in batches: the Node SDK's delivery (events to a sink) and
 * the store writer's inserts (rows to the database). Items wait in sources (the SDK's columnar queue; the
 * writer's queue per row kind). A batch starts when a source holds a full one (by items or bytes), when a
 * partial one has waited the interval, or on flush; at most `concurrency` batches run at once, and a
 * finishing batch starts the next. What a batch does (send with retries and splits, insert with bisection)
 * is the owner's `run`, which settles every item it is handed (delivered, stored, refused or kept) and
 * never rejects; the retry and split loop both owners run is core's `deliverBatch`.
 */

/** A queue the batcher cuts batches from. */
export interface BatchQueue<T> {
  /** Items waiting. */
  readonly size: number;
  /** Their estimated bytes. */
  readonly bytes: number;
  /** Removes the next batch: at least one item, at most `maxItems`, and past one item no more than `maxBytes`. */
  take(maxItems: number, maxBytes: number): T[];
}

export interface BatcherOptions<T> {
  /** Items a batch holds at most; a source holding this many starts one. */
  maxItems: number;
  /** Estimated bytes a batch holds at most (a single larger item still goes, alone). */
  maxBytes: number;
  /** How long a partial batch waits for company. */
  intervalMs: number;
  /** Batches running at once. */
  concurrency: number;
  /** Runs one batch of source `source` to its end. Must not reject. */
  run(batch: T[], source: number): Promise<void>;
  /**
   * How a full batch is started once `added()` sees it: at once by default. The Node SDK passes
   * setImmediate, so track() never runs a batch (finishing, serializing) on its caller's stack.
   */
  defer?: (start: () => void) => void;
  /** Unref the interval timer where the platform has it (an SDK must never keep its app alive). */
  unref?: boolean;
}

/** setTimeout and clearTimeout are global in every runtime core targets (see backoff.ts). */
interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(timer: unknown): void;
}

export class Batcher<T> {
  /** Batches running, with the count of items taken from the sources before each (flush's yardstick). */
  private readonly running = new Map<Promise<void>, number>();
  private timer: unknown;
  private startScheduled = false;
  /** The interval passed while batches still waited for a slot: the next free slot takes a partial batch. */
  private overdue = false;
  private stopped = false;
  private inFlightCount = 0;
  /** Items taken from the sources so far (flush's yardstick). */
  private taken = 0;

  private readonly maxItems: number;
  private readonly maxBytes: number;

  constructor(
    private readonly sources: readonly BatchQueue<T>[],
    private readonly options: BatcherOptions<T>,
  ) {
    this.maxItems = options.maxItems;
    this.maxBytes = options.maxBytes;
  }

  /** Items waiting in every source. */
  get queued(): number {
    let n = 0;
    for (const s of this.sources) n += s.size;
    return n;
  }

  /** Items in batches running now. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** An owner added items: a full batch starts (as `defer` says); otherwise the interval is armed. */
  added(): void {
    if (this.stopped || this.overdue) return;
    if (this.anyFull()) {
      const defer = this.options.defer;
      if (!defer) return this.pump(false);
      if (this.startScheduled) return;
      this.startScheduled = true;
      defer(() => {
        this.startScheduled = false;
        this.pump(false);
      });
    } else if (this.timer === undefined) {
      this.arm();
    }
  }

  /**
   * Starts batches while there is room: full ones, and partial ones too when `partial` (or overdue).
   * Arms the interval for what stays behind.
   */
  pump(partial = false): void {
    const { maxItems, maxBytes, concurrency } = this.options;
    const anyPartial = partial || this.overdue || this.stopped;
    this.sources.forEach((source, index) => {
      while (this.running.size < concurrency && source.size > 0) {
        if (!anyPartial && source.size < maxItems && source.bytes < maxBytes) break;
        const batch = source.take(maxItems, maxBytes);
        const takenBefore = this.taken;
        this.taken += batch.length;
        this.start(batch.length, () => this.options.run(batch, index), takenBefore);
      }
    });
    if (this.queued === 0) this.overdue = false;
    else if (this.timer === undefined && !this.overdue && !this.stopped) this.arm();
  }

  /**
   * Runs work that did not come from a source (the SDK resending its spool: `items` events) in the
   * shared budget: waits for a free slot first, so a backlog cannot starve live batches of their share.
   * Resolves once it started.
   */
  async occupy(items: number, work: () => Promise<void>): Promise<void> {
    while (this.running.size >= this.options.concurrency) await Promise.race(this.running.keys());
    this.start(items, work);
  }

  /**
   * Resolves once every item queued at the call has been run (not those that arrive meanwhile, or a busy
   * owner would never finish), and every batch running at the call has finished.
   */
  async flush(): Promise<void> {
    const before = [...this.running.keys()];
    const target = this.taken + this.queued;
    while (this.taken < target && this.queued > 0) {
      this.pump(true);
      if (this.running.size >= this.options.concurrency) await Promise.race(this.running.keys());
    }
    // Every item of the target is in a batch that started before the count passed it.
    const holding = [...this.running].filter(([, takenBefore]) => takenBefore < target).map(([run]) => run);
    await Promise.all([...before, ...holding]);
  }

  /**
   * For close: no interval from now on; batches start until the sources are empty or `signal` aborts
   * (what is left is the owner's to keep); resolves when no batch runs.
   */
  async drain(signal: { readonly aborted: boolean }): Promise<void> {
    this.stop();
    while (this.queued > 0 && !signal.aborted) {
      this.pump(true);
      if (this.running.size > 0) await Promise.race(this.running.keys());
    }
    await this.idle();
  }

  /** Resolves when no batch runs. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.keys());
  }

  /** No interval timer from now on (the owner is closing). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) (globalThis as unknown as Timers).clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** `takenBefore`: for a batch from the sources, the items taken before it; other work counts as none. */
  private start(n: number, work: () => Promise<void>, takenBefore = Number.POSITIVE_INFINITY): void {
    this.inFlightCount += n;
    const run = work().finally(() => {
      this.inFlightCount -= n;
      this.running.delete(run);
      if (!this.stopped) this.pump(false);
    });
    this.running.set(run, takenBefore);
  }

  /** On track()'s path for every event: an indexed loop over fields, nothing allocated. */
  private anyFull(): boolean {
    const sources = this.sources;
    for (let i = 0; i < sources.length; i++) {
      const s = sources[i] as BatchQueue<T>;
      if (s.size >= this.maxItems || s.bytes >= this.maxBytes) return true;
    }
    return false;
  }

  private arm(): void {
    const timers = globalThis as unknown as Timers;
    this.timer = timers.setTimeout(() => {
      this.timer = undefined;
      this.overdue = true;
      this.pump(true);
    }, this.options.intervalMs);
    if (this.options.unref) (this.timer as { unref?: () => void }).unref?.();
  }
}
