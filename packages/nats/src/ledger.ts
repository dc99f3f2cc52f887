/**
 * What the NATS transport knows of the messages not yet stored, and the back-pressure it derives.
 *
 * - Its own messages, from publish until its consumer (or another instance's, seen through the
 *   consumer's ack floor) stores them: when each was published, how many events, its stream sequence,
 *   and its events themselves until the consumer takes them (bounded: past `maxKeptEvents` the oldest
 *   are dropped, and those messages are read from the stream instead).
 * - The messages its consumer is handling, with the time the stream stored each.
 * - How fast the consumer stores: events acknowledged over its last two seconds of being busy (time
 *   with nothing to store does not count, so the rate outlives a drained backlog).
 *
 * From these, the lag (age of the oldest message not yet stored) and the time the backlog needs to be
 * stored (events not yet stored ÷ that rate). A publish goes ahead when that time, with its own events
 * added, stays within `maxLagMs` (and the lag within twice that, in case the rate misleads); until a
 * rate is known, when the lag is within `maxLagMs`. Else it waits, in order of arrival, and each
 * message stored lets in as many waiting publishes as fit again. The age alone would lag behind: a
 * burst let in while the oldest message is young is only seen to be too much once it is old, and then
 * the gate stays shut until the backlog has drained, leaving the consumer idle.
 */
import type { TallyEvent } from '@tally/core';

export interface LedgerOptions {
  /** The bound on the lag and on the backlog's predicted time, ms; 0: publishes never wait. */
  maxLagMs: number;
  /** Events kept for the consumer at most. */
  maxKeptEvents: number;
  now?: () => number;
}

/** How a publish was let in: at once, after a wait (its events reserved), or not. */
export type Admission = 'go' | 'waited' | 'timeout' | 'closed';

interface Published {
  at: number;
  size: number;
  seq?: number;
  events?: TallyEvent[];
}

interface Waiter {
  n: number;
  done: (a: Admission) => void;
}

/** Acknowledgements over this much busy time make the rate. */
const RATE_WINDOW_MS = 2000;
/** Less busy time than this says too little about the rate; the lag alone decides meanwhile. */
const RATE_MIN_MS = 200;

export type Ledger = ReturnType<typeof createLedger>;

export function createLedger(options: LedgerOptions) {
  const now = options.now ?? Date.now;
  const { maxLagMs, maxKeptEvents } = options;
  const mine = new Map<string, Published>();
  const handling = new Map<object, { at: number; size: number; foreign: boolean }>();
  let mineEvents = 0;
  let foreignEvents = 0;
  let keptEvents = 0;
  // Events of waiting publishes already let go, not yet added as messages.
  let reserved = 0;
  const waiters: Waiter[] = [];
  // The busy clock: ms during which something was waiting to be stored. Acknowledgements are placed
  // on it, so the rate is events per busy ms.
  let busyBefore = 0;
  let busySince: number | undefined;
  const busyClock = () => busyBefore + (busySince === undefined ? 0 : now() - busySince);
  const acks: { at: number; n: number }[] = [];
  let ackedInWindow = 0;
  let closed = false;

  const backlog = () => mineEvents + foreignEvents + reserved;
  const busy = () => {
    if (busySince === undefined) busySince = now();
  };
  const idleIfEmpty = () => {
    if (busySince === undefined || backlog() > 0 || mine.size > 0 || handling.size > 0) return;
    busyBefore += now() - busySince;
    busySince = undefined;
  };
  const trim = (clock: number) => {
    while (acks.length > 0 && (acks[0] as { at: number }).at < clock - RATE_WINDOW_MS) {
      ackedInWindow -= (acks.shift() as { n: number }).n;
    }
  };
  const acknowledged = (n: number) => {
    const clock = busyClock();
    acks.push({ at: clock, n });
    ackedInWindow += n;
    trim(clock);
  };
  /** Events stored per busy ms, or undefined while that is not known yet. */
  const rate = (): number | undefined => {
    const clock = busyClock();
    trim(clock);
    const span = Math.min(clock, RATE_WINDOW_MS);
    if (span < RATE_MIN_MS || ackedInWindow === 0) return undefined;
    return ackedInWindow / span;
  };
  const drop = (p: Published) => {
    if (p.events) keptEvents -= p.events.length;
    p.events = undefined;
  };

  function lag(): number {
    const t = now();
    let oldest = t;
    for (const p of mine.values()) {
      oldest = p.at;
      break;
    }
    for (const h of handling.values()) if (h.at < oldest) oldest = h.at;
    return Math.max(0, t - oldest);
  }

  /** Would `n` more events keep the backlog within the bound? */
  function fits(n: number): boolean {
    if (maxLagMs <= 0) return true;
    const ahead = backlog();
    if (ahead === 0) return true;
    const r = rate();
    if (r === undefined) return lag() <= maxLagMs;
    return lag() <= 2 * maxLagMs && (ahead + n) / r <= maxLagMs;
  }

  /** Lets waiting publishes go, in order, as long as they fit. */
  function release(): void {
    while (waiters.length > 0) {
      const w = waiters[0] as Waiter;
      if (!closed && !fits(w.n)) return;
      waiters.shift();
      if (closed) {
        w.done('closed');
        continue;
      }
      reserved += w.n;
      busy();
      w.done('waited');
    }
  }

  function forget(origin: string | undefined, stored: boolean): void {
    const p = origin === undefined ? undefined : mine.get(origin);
    if (!p) return;
    drop(p);
    mine.delete(origin as string);
    mineEvents -= p.size;
    if (stored) acknowledged(p.size);
    idleIfEmpty();
    release();
  }

  return {
    lag,
    /** Events not yet stored (own messages, foreign ones being handled, publishes let in). */
    backlog,
    /** Events stored per second lately (0: not known). */
    ratePerSecond: () => (rate() ?? 0) * 1000,
    /** Publishes waiting for the lag. */
    waiting: () => waiters.length,

    /**
     * Resolves 'go' when `n` more events fit now, 'waited' once enough is stored for them to fit (their
     * events reserved: `add` with `reservedBefore` takes the reservation over, `unreserve` gives it back),
     * 'timeout' after `waitMs`, 'closed' on close.
     */
    admit(n: number, waitMs: number): Promise<Admission> {
      if (closed) return Promise.resolve('closed');
      if (waiters.length === 0 && fits(n)) return Promise.resolve('go');
      return new Promise((resolve) => {
        const w: Waiter = {
          n,
          done: (a) => {
            clearTimeout(timer);
            resolve(a);
          },
        };
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          resolve('timeout');
          // The one at the head timing out may let those behind it go.
          release();
        }, waitMs);
        waiters.push(w);
      });
    },
    /** Gives back what a wait let in and will not be published after all. */
    unreserve(n: number): void {
      reserved -= n;
      idleIfEmpty();
      release();
    },

    /** One of this instance's messages is being published (`reserved`: its events were let in by a wait). */
    add(origin: string, events: readonly TallyEvent[], reservedBefore: boolean): void {
      if (reservedBefore) reserved -= events.length;
      busy();
      mine.set(origin, { at: now(), size: events.length, events: events as TallyEvent[] });
      mineEvents += events.length;
      keptEvents += events.length;
      if (keptEvents <= maxKeptEvents) return;
      for (const p of mine.values()) {
        drop(p);
        if (keptEvents <= maxKeptEvents) return;
      }
    },
    /** Its publish was acknowledged: the stream holds it at `seq`. */
    sequenced(origin: string, seq: number): void {
      const p = mine.get(origin);
      if (p) p.seq = seq;
    },
    /** Not in the stream after all (a failed publish, or a duplicate of an earlier message). */
    withdraw(origin: string): void {
      forget(origin, false);
    },
    /** The events kept for one of this instance's messages, handed over once. */
    take(origin: string | undefined): TallyEvent[] | undefined {
      const p = origin === undefined ? undefined : mine.get(origin);
      const events = p?.events;
      if (p) drop(p);
      return events;
    },

    /** The consumer started on a message (stored by the stream at `storedAt`; `origin` when one of ours). */
    handling(key: object, storedAt: number, size: number, origin: string | undefined): void {
      const foreign = origin === undefined || !mine.has(origin);
      handling.set(key, { at: storedAt, size, foreign });
      if (foreign) {
        foreignEvents += size;
        busy();
      }
    },
    /** The consumer is done with a message: stored (and acknowledged), or given up on for now or for good. */
    handled(key: object, origin: string | undefined, outcome: 'stored' | 'failed' | 'dead-lettered'): void {
      const h = handling.get(key);
      handling.delete(key);
      if (h?.foreign) {
        foreignEvents -= h.size;
        if (outcome === 'stored') acknowledged(h.size);
      }
      // A failed one stays ours until it is stored or dead-lettered, at its next delivery.
      if (outcome !== 'failed') forget(origin, outcome === 'stored');
      idleIfEmpty();
      release();
    },
    /** The durable consumer's ack floor: our messages at or below it were stored by some instance. */
    settled(ackFloor: number, staleBefore: number): void {
      for (const [origin, p] of mine) {
        if ((p.seq !== undefined && p.seq <= ackFloor) || p.at < staleBefore) forget(origin, p.at >= staleBefore);
      }
    },

    close(): void {
      closed = true;
      release();
    },
  };
}
