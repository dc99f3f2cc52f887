/**
 * ISO 8601 formatting that is ~30× cheaper than `new Date(ms).toISOString()` (~1.4 µs on Node 20)
 * for timestamps that arrive in time order, as event timestamps do: the date-and-seconds prefix is
 * formatted once per second and reused. Output is identical to toISOString() for years 0000–9999.
 */
let cachedSecond = Number.NaN;
let cachedPrefix = '';
// Events come in bursts within one millisecond: they share one string, which a serializer then finds
// already flat (a fresh concatenation is a rope that JSON.stringify has to flatten, event by event).
let lastMs = Number.NaN;
let lastIso = '';

export function isoTime(ms: number): string {
  if (ms === lastMs) return lastIso;
  lastMs = ms;
  // A Date keeps whole milliseconds (toward zero): so must this, or 1.5 would print as "001.5Z".
  lastIso = format(Math.trunc(ms));
  return lastIso;
}

function format(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const frac = ms - second * 1000;
  return `${cachedPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

/**
 * The milliseconds of `text` when it is exactly what isoTime (and toISOString) prints for them
 * (`YYYY-MM-DDTHH:mm:ss.sssZ`, a real calendar date), else NaN. A few times cheaper than Date.parse
 * (~0.3 µs a call on these machines), and a yes also tells the caller that `text` can be kept as the
 * event's time instead of being formatted again.
 */
export function canonicalTime(text: string): number {
  if (
    text.length !== 24 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 || // T
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46 || // .
    text.charCodeAt(23) !== 90 // Z
  ) {
    return NaN;
  }
  const century = twoDigits(text, 0);
  const yy = twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  const centis = twoDigits(text, 20);
  const last = text.charCodeAt(22) - 48;
  if (
    century < 0 ||
    yy < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 59 ||
    centis < 0 ||
    last < 0 ||
    last > 9
  ) {
    return NaN;
  }
  const year = century * 100 + yy;
  // Date.parse takes Feb 30 as Mar 1; isoTime would print that, not the text: not canonical.
  if (day > 28 && day > daysInMonth(year, month)) return NaN;
  return ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + centis * 10 + last;
}

/** Date.parse, cheaper for the canonical form (the one Tally's producers send). */
export function parseTime(text: string): number {
  const ms = canonicalTime(text);
  return Number.isNaN(ms) ? Date.parse(text) : ms;
}

function twoDigits(text: string, at: number): number {
  const a = text.charCodeAt(at) - 48;
  const b = text.charCodeAt(at + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}
