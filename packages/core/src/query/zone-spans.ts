/**
 * A time zone's UTC offset over a range, as spans of constant offset: what an engine needs to work out
 * local time with arithmetic alone (`ts + offset`), with core's zone data (Intl) rather than its own. An
 * engine whose time zone functions disagree with bucketStart (an older or differently built zone
 * database, offset changes inside an hour) still buckets exactly as bucketStart does.
 */
import { zoneOffset } from './time.js';

const DAY = 86_400_000;

/** From `start` on (until the next span's start), the zone is `offset` ms ahead of UTC. */
export interface OffsetSpan {
  start: number;
  offset: number;
}

/** The first instant in (lo, hi] whose offset differs from lo's (hi's differs): a transition. */
function transition(lo: number, hi: number, before: number, tz: string): number {
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (zoneOffset(mid, tz) === before) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * The spans of constant offset covering [from, to). The first starts a day before `from` (or at the
 * transition within that day), so that it also covers the start of the hour or day that holds `from`.
 * Offsets are sampled once a day and each change is located to the millisecond: two changes within one
 * day that cancel out would go unseen (no zone has had such a pair in this century).
 */
export function offsetSpans(from: number, to: number, tz: string): OffsetSpan[] {
  let at = from - DAY;
  let offset = zoneOffset(at, tz);
  const spans: OffsetSpan[] = [{ start: at, offset }];
  while (at < to) {
    const next = Math.min(at + DAY, to);
    const o = zoneOffset(next, tz);
    if (o !== offset) {
      spans.push({ start: transition(at, next, offset, tz), offset: o });
      offset = o;
    }
    at = next;
  }
  return spans;
}
