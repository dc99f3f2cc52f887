/**
 * The NATS transport's ledger on its own, on a fake clock: the events it keeps for its consumer, the
 * lag, and back-pressure (a publish waits while the backlog would need more than the bound at the rate
 * the consumer stores, and waiting publishes go in order as messages are stored).
 */
import { isoTime, type TallyEvent, uuidv7 } from '@tally/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { type Admission, createLedger } from '../src/ledger.js';

const events = (n: number): TallyEvent[] =>
  Array.from({ length: n }, () => ({
    id: uuidv7(),
    name: 'e',
    tenantId: 't',
    properties: {},
    context: {},
    timestamp: isoTime(Date.now()),
  }));

/** A settled-or-not view of a promise. */
function watch(p: Promise<Admission>) {
  const state: { value?: Admission } = {};
  void p.then((v) => (state.value = v));
  return state;
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the NATS ledger', () => {
  it('keeps the events of its own messages for its consumer, once each, dropping the oldest past its bound', () => {
    const ledger = createLedger({ maxLagMs: 1000, maxKeptEvents: 4 });
    const a = events(3);
    const b = events(3);
    ledger.add('a', a, false);
    ledger.add('b', b, false);
    expect(ledger.take('a')).toBeUndefined(); // dropped to stay within 4
    expect(ledger.take('b')).toBe(b);
    expect(ledger.take('b')).toBeUndefined();
    expect(ledger.take(undefined)).toBeUndefined();
    expect(ledger.backlog()).toBe(6); // dropped or taken, both are still to be stored
  });

  it('the lag is the age of the oldest message not yet stored', () => {
    const ledger = createLedger({ maxLagMs: 1000, maxKeptEvents: 100 });
    ledger.add('a', events(1), false);
    vi.advanceTimersByTime(200);
    ledger.add('b', events(1), false);
    vi.advanceTimersByTime(100);
    expect(ledger.lag()).toBe(300);
    const msg = {};
    ledger.handling(msg, Date.now() - 100, 1, 'a');
    ledger.handled(msg, 'a', 'stored');
    expect(ledger.lag()).toBe(100);
    // A foreign message stored by the stream long ago and being handled now counts too.
    const foreign = {};
    ledger.handling(foreign, Date.now() - 900, 5, undefined);
    expect(ledger.lag()).toBe(900);
    expect(ledger.backlog()).toBe(6);
    ledger.handled(foreign, undefined, 'stored');
    ledger.withdraw('b');
    expect(ledger.lag()).toBe(0);
    expect(ledger.backlog()).toBe(0);
  });

  it('a publish goes at once into an empty backlog, however large', async () => {
    const ledger = createLedger({ maxLagMs: 1000, maxKeptEvents: 100 });
    await expect(ledger.admit(1_000_000, 100)).resolves.toBe('go');
  });

  it('waits while the backlog would take longer than the bound to store; waiters go in order as messages are stored', async () => {
    const ledger = createLedger({ maxLagMs: 1000, maxKeptEvents: 100_000 });
    for (let i = 0; i < 10; i++) ledger.add(`m${i}`, events(1000), false);
    // The consumer stores one 1000-event message every 100 ms: 10 events a ms.
    const store = (i: number) => {
      const msg = {};
      ledger.handling(msg, Date.now(), 1000, `m${i}`);
      vi.advanceTimersByTime(100);
      ledger.handled(msg, `m${i}`, 'stored');
    };
    for (let i = 0; i < 3; i++) store(i);
    expect(ledger.ratePerSecond()).toBeCloseTo(10_000);
    expect(ledger.lag()).toBe(300); // well within the bound by age alone
    // 7000 ahead + 4000 = 1.1 s at 10 events a ms: past the bound.
    const big = watch(ledger.admit(4000, 10_000));
    const small = watch(ledger.admit(1, 10_000));
    await vi.advanceTimersByTimeAsync(0);
    expect(big.value).toBeUndefined();
    expect(small.value).toBeUndefined(); // behind the first, though it would fit
    store(3); // 6000 + 4000 at 10 a ms: 1 s, within the bound
    await vi.advanceTimersByTimeAsync(0);
    expect(big.value).toBe('waited');
    expect(small.value).toBeUndefined(); // 10 000 ahead with the reserved 4000
    expect(ledger.backlog()).toBe(10_000);
    ledger.add('big', events(4000), true);
    expect(ledger.backlog()).toBe(10_000);
    store(4);
    await vi.advanceTimersByTimeAsync(0);
    expect(small.value).toBe('waited');
  });

  it('the rate outlives a drained backlog: the next burst is let in at what the consumer stores, not all at once', async () => {
    const ledger = createLedger({ maxLagMs: 1000, maxKeptEvents: 100_000 });
    for (let i = 0; i < 5; i++) ledger.add(`m${i}`, events(1000), false);
    for (let i = 0; i < 5; i++) {
      const msg = {};
      ledger.handling(msg, Date.now(), 1000, `m${i}`);
      vi.advanceTimersByTime(100);
      ledger.handled(msg, `m${i}`, 'stored');
    }
    expect(ledger.backlog()).toBe(0);
    vi.advanceTimersByTime(10_000); // idle: not part of the rate
    expect(ledger.ratePerSecond()).toBeCloseTo(10_000);
    for (let i = 0; i < 10; i++) ledger.add(`n${i}`, events(1000), false);
    // Young (lag 0), but 10 000 + 1000 events take 1.1 s at 10 a ms.
    const next = watch(ledger.admit(1000, 10_000));
    await vi.advanceTimersByTimeAsync(0);
    expect(next.value).toBeUndefined();
  });

  it('past the bound by age alone (no rate known yet), a publish waits; it is refused after its wait', async () => {
    const ledger = createLedger({ maxLagMs: 1000, maxKeptEvents: 100 });
    ledger.add('stuck', events(1), false);
    vi.advanceTimersByTime(1500);
    const refused = watch(ledger.admit(1, 500));
    const later = watch(ledger.admit(1, 5000));
    await vi.advanceTimersByTimeAsync(499);
    expect(refused.value).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(refused.value).toBe('timeout');
    expect(later.value).toBeUndefined();
    const msg = {};
    ledger.handling(msg, Date.now() - 2000, 1, 'stuck');
    ledger.handled(msg, 'stuck', 'failed'); // not stored: still ours, still old
    await vi.advanceTimersByTimeAsync(0);
    expect(later.value).toBeUndefined();
    ledger.handling(msg, Date.now() - 2000, 1, 'stuck');
    ledger.handled(msg, 'stuck', 'stored');
    await vi.advanceTimersByTimeAsync(0);
    expect(later.value).toBe('waited');
  });

  it('own messages at or below the consumer ack floor were stored elsewhere; close lets every waiter go', async () => {
    const ledger = createLedger({ maxLagMs: 1000, maxKeptEvents: 100 });
    ledger.add('a', events(1), false);
    ledger.sequenced('a', 7);
    ledger.add('b', events(1), false);
    ledger.sequenced('b', 9);
    vi.advanceTimersByTime(2000);
    const waiting = watch(ledger.admit(1, 10_000));
    ledger.settled(8, 0);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.value).toBeUndefined(); // 'b' is still 2 s old
    ledger.settled(9, 0);
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.value).toBe('waited');
    expect(ledger.lag()).toBe(0);

    ledger.add('c', events(1), false);
    vi.advanceTimersByTime(2000);
    const closing = watch(ledger.admit(1, 10_000));
    ledger.close();
    await vi.advanceTimersByTimeAsync(0);
    expect(closing.value).toBe('closed');
    await expect(ledger.admit(1, 10)).resolves.toBe('closed');
  });

  it('with no bound, nothing ever waits', async () => {
    const ledger = createLedger({ maxLagMs: 0, maxKeptEvents: 100 });
    ledger.add('a', events(1), false);
    vi.advanceTimersByTime(60_000);
    await expect(ledger.admit(1000, 10)).resolves.toBe('go');
  });
});
