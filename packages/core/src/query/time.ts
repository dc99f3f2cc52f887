/**
 * Calendar arithmetic in an IANA time zone with nothing but `Intl` (core runs in Workers and browsers too,
 * where no tz database package is wanted). Every function works on epoch milliseconds; a "wall" value is the
 * local date-time written as if it were UTC (`Date.UTC(y, m, d, h)`), which makes calendar steps plain
 * `Date.UTC` arithmetic, and converting wall ↔ instant is where the zone's offset comes in.
 */
import type { Interval, QueryRange } from './model.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    // hourCycle h23: with hour12 off some engines still print midnight as "24".
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Whether `tz` is a time zone this runtime knows (Intl throws a RangeError for an unknown one). */
export function isValidTimeZone(tz: string): boolean {
  try {
    formatter(tz);
    return true;
  } catch {
    return false;
  }
}

/** The zone's offset from UTC at instant `ts`, in ms (Europe/Berlin in summer: +7_200_000). */
export function zoneOffset(ts: number, tz: string): number {
  const parts = formatter(tz).formatToParts(new Date(ts));
  const get = (type: Intl.DateTimeFormatPartTypes): number => Number(parts.find((p) => p.type === type)?.value ?? 0);
  let year = get('year');
  // Years before 1 CE come back with an era part; queries never reach them, but keep the sign right.
  if (parts.some((p) => p.type === 'era' && p.value.startsWith('B'))) year = 1 - year;
  const wall = Date.UTC(year, get('month') - 1, get('day'), get('hour') % 24, get('minute'), get('second'));
  // Intl drops milliseconds, so compare against the instant truncated to the second.
  return wall - Math.floor(ts / 1000) * 1000;
}

/** The local wall time of instant `ts` (see the module comment). */
export function toWall(ts: number, tz: string): number {
  return ts + zoneOffset(ts, tz);
}

/**
 * The instant a local wall time happens. In a fall-back overlap the earlier of the two instants; in a
 * spring-forward gap (a local time that never happens) the wall time moved forward by the gap's length, as
 * Temporal's `compatible` does: a bucket that starts where the gap starts (midnight in zones that switch at
 * 00:00) then starts at the transition itself.
 */
export function fromWall(wall: number, tz: string): number {
  // The offsets that can apply lie within a day of the wall time (offsets span −12 h … +14 h and
  // transitions are months apart), so one day either side brackets any single transition.
  const offsets = new Set([zoneOffset(wall - DAY, tz), zoneOffset(wall, tz), zoneOffset(wall + DAY, tz)]);
  let best: number | undefined;
  for (const o of offsets) {
    const t = wall - o;
    if (zoneOffset(t, tz) === o && (best === undefined || t < best)) best = t;
  }
  if (best !== undefined) return best;
  return wall - Math.min(...offsets);
}

function wallFields(wall: number): { y: number; m: number; d: number; dow: number } {
  const date = new Date(wall);
  return { y: date.getUTCFullYear(), m: date.getUTCMonth(), d: date.getUTCDate(), dow: date.getUTCDay() };
}

/** The wall start of the calendar bucket containing wall time `wall` (days, ISO weeks from Monday, months, years). */
function wallStart(wall: number, unit: 'day' | 'week' | 'month' | 'year'): number {
  const { y, m, d, dow } = wallFields(wall);
  switch (unit) {
    case 'day':
      return Date.UTC(y, m, d);
    case 'week':
      return Date.UTC(y, m, d - ((dow + 6) % 7));
    case 'month':
      return Date.UTC(y, m, 1);
    case 'year':
      return Date.UTC(y, 0, 1);
  }
}

function wallAdd(wall: number, unit: 'day' | 'week' | 'month' | 'year', n: number): number {
  const { y, m, d } = wallFields(wall);
  switch (unit) {
    case 'day':
      return Date.UTC(y, m, d + n);
    case 'week':
      return Date.UTC(y, m, d + 7 * n);
    case 'month':
      return Date.UTC(y, m + n, d);
    case 'year':
      return Date.UTC(y + n, m, d);
  }
}

/**
 * The first instant of the `interval` bucket that holds `ts`, in `tz`. Hours are the zone's own hours: on a
 * fall-back day the repeated local hour is two buckets (a 25-hour day has 25), in zones with a half- or
 * quarter-hour offset (Asia/Kolkata, Pacific/Chatham) an hour starts at :30 or :15 UTC, and an offset
 * change inside a local hour starts a new bucket.
 */
export function bucketStart(ts: number, interval: Interval, tz: string): number {
  if (interval === 'hour') {
    // Floor within the offset in force at ts, so each real hour keeps its own bucket …
    const offset = zoneOffset(ts, tz);
    const floor = ts - ((((ts + offset) % HOUR) + HOUR) % HOUR);
    // … unless the offset changed since that floor (Pacific/Chatham shifts at :45): the hour began then.
    return zoneOffset(floor, tz) === offset ? floor : firstWithOffset(floor, ts, offset, tz);
  }
  return fromWall(wallStart(toWall(ts, tz), interval), tz);
}

/** The first instant in (lo, hi] whose offset is `offset` (hi has it, lo does not): a transition. */
function firstWithOffset(lo: number, hi: number, offset: number, tz: string): number {
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (zoneOffset(mid, tz) === offset) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The start of the bucket after the one starting at `start` (a bucket start from `bucketStart`). */
export function nextBucket(start: number, interval: Interval, tz: string): number {
  if (interval === 'hour') {
    // The next local hour in the current offset, or an offset change before it, whichever comes first.
    const offset = zoneOffset(start, tz);
    const next = start + HOUR - ((((start + offset) % HOUR) + HOUR) % HOUR);
    const after = zoneOffset(next - 1, tz);
    return after === offset ? next : firstWithOffset(start, next - 1, after, tz);
  }
  return fromWall(wallAdd(wallStart(toWall(start, tz), interval), interval, 1), tz);
}

/**
 * The starts of every bucket overlapping the half-open range [from, to): the first one is the bucket that
 * holds `from` (it may start before `from`). Engines fill gaps with zero from this list.
 */
export function bucketsBetween(from: number, to: number, interval: Interval, tz: string): number[] {
  const out: number[] = [];
  for (let b = bucketStart(from, interval, tz); b < to; b = nextBucket(b, interval, tz)) out.push(b);
  return out;
}

/** `'30d'` → `{ n: 30, unit: 'day' }`; the grammar `range.last` accepts (validated by parseQuery). */
export function parseLast(last: string): { n: number; unit: 'hour' | 'day' | 'week' } | undefined {
  const m = /^([1-9][0-9]{0,4})([hdw])$/.exec(last);
  if (!m) return undefined;
  return { n: Number(m[1]), unit: m[2] === 'h' ? 'hour' : m[2] === 'd' ? 'day' : 'week' };
}

const DURATION_UNITS: Record<string, number> = { s: 1000, m: 60_000, h: HOUR, d: DAY, w: 7 * DAY };

/** `'30m'` → 1_800_000: the grammar of funnel windows, `<n>s|m|h|d|w` (validated by parseQuery). */
export function parseDuration(text: string): number | undefined {
  const m = /^([1-9][0-9]{0,5})([smhdw])$/.exec(text);
  if (!m) return undefined;
  return Number(m[1]) * (DURATION_UNITS[m[2]!] ?? 0);
}

/**
 * An absolute range bound: an ISO time with a zone (`2026-03-01T00:00:00Z`, `…+01:00`) is that instant; a
 * date or date-time without one (`2026-03-01`, `2026-03-01T08:00`) is a wall time in the query's zone, so a
 * saved "March" means March wherever it is opened with the same tz.
 */
export function parseRangeTime(text: string, tz: string): number | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:\d{2})?)?$/.exec(
    text,
  );
  if (!m) return undefined;
  const [, y, mo, d, h = '0', mi = '0', s = '0', ms = '0', zone] = m;
  const fields = [Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)] as const;
  const wall = Date.UTC(...fields, Number(ms.padEnd(3, '0')));
  // Date.UTC rolls 2026-02-30 over to March: refuse it instead of guessing.
  const check = new Date(wall);
  if (
    check.getUTCFullYear() !== fields[0] ||
    check.getUTCMonth() !== fields[1] ||
    check.getUTCDate() !== fields[2] ||
    check.getUTCHours() !== fields[3] ||
    check.getUTCMinutes() !== fields[4] ||
    check.getUTCSeconds() !== fields[5]
  ) {
    return undefined;
  }
  if (zone === undefined) return fromWall(wall, tz);
  if (zone === 'Z') return wall;
  const sign = zone.startsWith('-') ? -1 : 1;
  const offset = sign * (Number(zone.slice(1, 3)) * HOUR + Number(zone.slice(4, 6)) * 60_000);
  return wall - offset;
}

/**
 * A range as epoch ms, half-open [from, to), in `tz` at time `now`:
 * - `{ last: '30d' }`: the 30 whole days ending with today (today included), to the end of today;
 *   `'24h'` the 24 whole hours ending with this one; `'12w'` the 12 ISO weeks ending with this one.
 * - `{ this: 'month' }`: from the start of this month to `now`.
 * - `{ previous: 'month' }`: the whole previous month.
 * - `{ from, to }`: see parseRangeTime.
 * The range must have been validated (parseQuery); a malformed one throws.
 */
export function resolveRange(range: QueryRange, tz: string, now: number): { from: number; to: number } {
  if ('last' in range) {
    const last = parseLast(range.last);
    if (!last) throw new RangeError(`invalid range.last: ${range.last}`);
    const current = bucketStart(now, last.unit, tz);
    const to = nextBucket(current, last.unit, tz);
    if (last.unit === 'hour') {
      // Hours of elapsed time: the same as counting local hour buckets back, except where an offset
      // change splits a local hour (Pacific/Chatham), which would otherwise count as two.
      return { from: bucketStart(current - (last.n - 1) * HOUR, 'hour', tz), to };
    }
    return { from: fromWall(wallAdd(toWall(current, tz), last.unit, 1 - last.n), tz), to };
  }
  if ('this' in range) {
    return { from: fromWall(wallStart(toWall(now, tz), range.this), tz), to: now };
  }
  if ('previous' in range) {
    const currentWall = wallStart(toWall(now, tz), range.previous);
    return {
      from: fromWall(wallAdd(currentWall, range.previous, -1), tz),
      to: fromWall(currentWall, tz),
    };
  }
  const from = parseRangeTime(range.from, tz);
  const to = parseRangeTime(range.to, tz);
  if (from === undefined || to === undefined) throw new RangeError('invalid absolute range');
  return { from, to };
}
