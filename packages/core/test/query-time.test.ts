import { describe, expect, it } from 'vitest';
import { bucketStart, bucketsBetween, fromWall, type Interval, resolveRange, zoneOffset } from '../src/index.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const utc = (s: string): number => Date.parse(s);

/** Local wall-clock text of an instant, to read expectations the way a person in that zone would. */
function local(ts: number, tz: string): string {
  const f = new Intl.DateTimeFormat('sv-SE', {
    timeZone: tz,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    weekday: 'short',
  });
  return f.format(new Date(ts)).replace(',', '');
}

describe('zone offsets from Intl', () => {
  it('reads fractional and DST offsets', () => {
    expect(zoneOffset(utc('2026-01-15T00:00:00Z'), 'Asia/Kolkata')).toBe(5.5 * HOUR);
    expect(zoneOffset(utc('2026-01-15T00:00:00Z'), 'Pacific/Chatham')).toBe(13.75 * HOUR);
    expect(zoneOffset(utc('2026-07-15T00:00:00Z'), 'Pacific/Chatham')).toBe(12.75 * HOUR);
    expect(zoneOffset(utc('2026-07-15T00:00:00Z'), 'America/New_York')).toBe(-4 * HOUR);
    expect(zoneOffset(utc('2026-07-15T00:00:00.999Z'), 'UTC')).toBe(0);
  });

  it('maps a wall time in a gap to the transition and in an overlap to the earlier instant', () => {
    // Berlin 2026-03-29 02:30 does not exist (02:00 → 03:00 at 01:00Z): moved forward to 03:30 as Temporal does.
    expect(fromWall(Date.UTC(2026, 2, 29, 2, 30), 'Europe/Berlin')).toBe(utc('2026-03-29T01:30:00Z'));
    expect(fromWall(Date.UTC(2026, 2, 29, 2, 0), 'Europe/Berlin')).toBe(utc('2026-03-29T01:00:00Z'));
    // America/Santiago skips midnight (2026-09-06 00:00 → 01:00): the day starts at the transition.
    const santiagoDay = bucketStart(utc('2026-09-06T12:00:00Z'), 'day', 'America/Santiago');
    expect(local(santiagoDay, 'America/Santiago')).toBe('sön 2026-09-06 01:00');
    // Berlin 2026-10-25 02:30 happens twice: first at 00:30Z (CEST).
    expect(fromWall(Date.UTC(2026, 9, 25, 2, 30), 'Europe/Berlin')).toBe(utc('2026-10-25T00:30:00Z'));
  });
});

describe('hourly buckets across DST changes', () => {
  it.each([
    ['Europe/Berlin', '2026-03-29', 23],
    ['Europe/Berlin', '2026-10-25', 25],
    ['America/New_York', '2026-03-08', 23],
    ['America/New_York', '2026-11-01', 25],
    ['Europe/Berlin', '2026-06-01', 24],
  ] as const)('%s %s has %i hours', (tz, day, hours) => {
    const from = fromWall(Date.parse(`${day}T00:00:00Z`), tz);
    const [days] = bucketsBetween(from, from + 1, 'day', tz);
    expect(days).toBe(from);
    const to = bucketsBetween(from + 30 * HOUR, from + 30 * HOUR + 1, 'day', tz)[0]!;
    expect((to - from) / HOUR).toBe(hours);
    const buckets = bucketsBetween(from, to, 'hour', tz);
    expect(buckets).toHaveLength(hours);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]! - buckets[i - 1]!).toBe(HOUR);
    expect(local(buckets[0]!, tz)).toContain(`${day} 00:00`);
  });
});

describe('month buckets over a year', () => {
  it.each([['Asia/Kolkata'], ['Pacific/Chatham']] as const)(
    '%s: 12 months each starting on the 1st at 00:00 local',
    (tz) => {
      const from = fromWall(Date.UTC(2026, 0, 1), tz);
      const to = fromWall(Date.UTC(2027, 0, 1), tz);
      const months = bucketsBetween(from, to, 'month', tz);
      expect(months).toHaveLength(12);
      months.forEach((m, i) => {
        expect(local(m, tz)).toMatch(new RegExp(`^\\S+ 2026-${String(i + 1).padStart(2, '0')}-01 00:00$`));
        expect(bucketStart(m + 20 * 86_400_000, 'month', tz)).toBe(m);
      });
      if (tz === 'Asia/Kolkata') expect(new Date(months[1]!).toISOString()).toBe('2026-01-31T18:30:00.000Z');
      // Chatham: UTC+13:45 in (southern) summer, +12:45 in winter.
      if (tz === 'Pacific/Chatham') {
        expect(new Date(months[1]!).toISOString()).toBe('2026-01-31T10:15:00.000Z');
        expect(new Date(months[6]!).toISOString()).toBe('2026-06-30T11:15:00.000Z');
      }
    },
  );
});

describe('week buckets', () => {
  it('start on Monday 00:00 local', () => {
    for (const tz of ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Pacific/Chatham']) {
      const weeks = bucketsBetween(utc('2026-03-01T00:00:00Z'), utc('2026-05-01T00:00:00Z'), 'week', tz);
      expect(weeks.length).toBeGreaterThanOrEqual(9);
      for (const w of weeks) expect(local(w, tz)).toMatch(/^mån \d{4}-\d{2}-\d{2} 00:00$/);
    }
  });
});

describe('relative ranges', () => {
  it("last 7d with now just after midnight in tz: today's minute counts as a day", () => {
    const tz = 'America/New_York';
    const now = fromWall(Date.UTC(2026, 10, 5, 0, 1), tz); // 2026-11-05 00:01 local
    const { from, to } = resolveRange({ last: '7d' }, tz, now);
    expect(local(from, tz)).toContain('2026-10-30 00:00');
    expect(local(to, tz)).toContain('2026-11-06 00:00');
    // The range crosses the fall-back of 2026-11-01: 7 days and one hour.
    expect(to - from).toBe(7 * 24 * HOUR + HOUR);
    expect(bucketsBetween(from, to, 'day', tz)).toHaveLength(7);
  });

  it('last 24h and 12w', () => {
    const now = utc('2026-06-10T15:20:00Z');
    expect(resolveRange({ last: '24h' }, 'UTC', now)).toEqual({
      from: utc('2026-06-09T16:00:00Z'),
      to: utc('2026-06-10T16:00:00Z'),
    });
    // Across Berlin's fall-back (2026-10-25): 24 hours of time, 24 hourly buckets.
    const berlin = resolveRange({ last: '24h' }, 'Europe/Berlin', utc('2026-10-25T10:20:00Z'));
    expect(berlin).toEqual({ from: utc('2026-10-24T11:00:00Z'), to: utc('2026-10-25T11:00:00Z') });
    expect(bucketsBetween(berlin.from, berlin.to, 'hour', 'Europe/Berlin')).toHaveLength(24);
    const w = resolveRange({ last: '12w' }, 'UTC', now);
    expect(new Date(w.from).toISOString()).toBe('2026-03-23T00:00:00.000Z'); // Monday, 11 weeks before 2026-06-08
    expect(new Date(w.to).toISOString()).toBe('2026-06-15T00:00:00.000Z');
  });

  it('this and previous', () => {
    const tz = 'Europe/Berlin';
    const now = utc('2026-03-31T22:30:00Z'); // already 2026-04-01 00:30 in Berlin
    const thisMonth = resolveRange({ this: 'month' }, tz, now);
    expect(new Date(thisMonth.from).toISOString()).toBe('2026-03-31T22:00:00.000Z');
    expect(thisMonth.to).toBe(now);
    const prev = resolveRange({ previous: 'month' }, tz, now);
    expect(new Date(prev.from).toISOString()).toBe('2026-02-28T23:00:00.000Z');
    expect(prev.to).toBe(thisMonth.from);
    expect(new Date(resolveRange({ this: 'year' }, tz, now).from).toISOString()).toBe('2025-12-31T23:00:00.000Z');
    const prevWeek = resolveRange({ previous: 'week' }, tz, now);
    expect(local(prevWeek.from, tz)).toBe('mån 2026-03-23 00:00');
    expect(local(prevWeek.to, tz)).toBe('mån 2026-03-30 00:00');
  });

  it('absolute bounds: with a zone an instant, without one a wall time in tz', () => {
    expect(resolveRange({ from: '2026-03-01', to: '2026-03-02T06:30' }, 'Asia/Kolkata', 0)).toEqual({
      from: utc('2026-02-28T18:30:00Z'),
      to: utc('2026-03-02T01:00:00Z'),
    });
    expect(
      resolveRange({ from: '2026-03-01T00:00:00Z', to: '2026-03-01T12:00:00.5+02:00' }, 'Asia/Kolkata', 0),
    ).toEqual({
      from: utc('2026-03-01T00:00:00Z'),
      to: utc('2026-03-01T10:00:00.500Z'),
    });
  });
});

/**
 * A plain evaluator: walk minute by minute, and start a new bucket whenever the local calendar key changes
 * (for hours: the local hour together with the offset, so a repeated hour is a new bucket).
 */
function bruteForce(from: number, to: number, interval: Interval, tz: string): Map<number, number> {
  const starts = new Map<number, number>();
  let key = '';
  let start = 0;
  for (let t = from; t < to; t += MINUTE) {
    const offset = zoneOffset(t, tz);
    const wall = new Date(t + offset);
    const y = wall.getUTCFullYear();
    const m = wall.getUTCMonth();
    const d = wall.getUTCDate();
    const monday = new Date(Date.UTC(y, m, d - ((wall.getUTCDay() + 6) % 7))).toISOString().slice(0, 10);
    const k =
      interval === 'hour'
        ? `${y}-${m}-${d} ${wall.getUTCHours()} ${offset}`
        : interval === 'day'
          ? `${y}-${m}-${d}`
          : interval === 'week'
            ? monday
            : `${y}-${m}`;
    if (k !== key) {
      key = k;
      start = t;
    }
    starts.set(t, start);
  }
  return starts;
}

describe('bucketStart against a minute-by-minute walk', () => {
  it.each([
    ['Europe/Berlin', '2026-03-27T00:00:00Z', '2026-04-01T00:00:00Z'],
    ['America/New_York', '2026-10-30T00:00:00Z', '2026-11-04T00:00:00Z'],
    ['Pacific/Chatham', '2026-04-03T00:00:00Z', '2026-04-08T00:00:00Z'],
  ] as const)('%s from %s', (tz, fromText, toText) => {
    // Start the walk on the Monday on or before a local month start, so that every bucket holding a checked
    // minute begins inside the walk.
    const monthStart = new Date(Date.UTC(2026, new Date(fromText).getUTCMonth(), 1));
    const from = fromWall(monthStart.getTime() - ((monthStart.getUTCDay() + 6) % 7) * 86_400_000, tz);
    const to = utc(toText);
    for (const interval of ['hour', 'day', 'week', 'month'] as const) {
      const expected = bruteForce(from, to, interval, tz);
      let checked = 0;
      for (const [t, start] of expected) {
        if (t < utc(fromText)) continue;
        if (bucketStart(t, interval, tz) !== start) {
          throw new Error(
            `${tz} ${interval} ${new Date(t).toISOString()}: got ${new Date(bucketStart(t, interval, tz)).toISOString()}, want ${new Date(start).toISOString()}`,
          );
        }
        checked++;
      }
      expect(checked).toBe((to - utc(fromText)) / MINUTE);
      // bucketsBetween steps through exactly the walk's bucket starts.
      const starts = [...new Set([...expected].filter(([t]) => t >= utc(fromText)).map(([, b]) => b))];
      expect(bucketsBetween(utc(fromText), to, interval, tz)).toEqual(starts);
    }
  });
});
