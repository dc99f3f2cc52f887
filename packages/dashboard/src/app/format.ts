/**
 * How the dashboard writes numbers, durations and times. One module, so that every page writes a value
 * the same way and a test can write the query API's answer as the page does and compare the text.
 * Times are written in the view's time zone, never the browser's (a link shows the same to everyone).
 */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

/** `1,234` for whole numbers, `12.35` otherwise; `–` for a missing value. */
export function formatNumber(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  return Number.isInteger(value) ? integer.format(value) : decimal.format(value);
}

/** `12.3K`: for axes and tight spaces. */
export function formatCompact(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  return compact.format(value);
}

/** A ratio 0–1 as `12.5%`. */
export function formatPercent(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  return `${decimal.format(Math.round(value * 1000) / 10)}%`;
}

/** Milliseconds: `850 ms`, `1.25 s`. */
export function formatMs(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  if (value < 1000) return `${decimal.format(Math.round(value * 10) / 10)} ms`;
  return `${decimal.format(Math.round(value / 10) / 100)} s`;
}

const timeFormats = new Map<string, Intl.DateTimeFormat>();

type TimeStyle = 'second' | 'minute' | 'hour' | 'day';

function timeFormat(tz: string, style: TimeStyle): Intl.DateTimeFormat {
  const key = `${tz}|${style}`;
  let f = timeFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: tz,
      year: style === 'day' ? 'numeric' : undefined,
      month: 'short',
      day: 'numeric',
      hour: style === 'day' ? undefined : '2-digit',
      minute: style === 'day' ? undefined : '2-digit',
      second: style === 'second' ? '2-digit' : undefined,
      hourCycle: 'h23',
    });
    timeFormats.set(key, f);
  }
  return f;
}

/** An instant (ISO text or epoch ms) in `tz`: `3 Mar, 14:05`, `3 Mar, 14:05:07` for `second`, or `3 Mar 2026` for `day`. */
export function formatTime(value: unknown, tz: string, style: TimeStyle = 'minute'): string {
  const ms = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(value) : NaN;
  if (!Number.isFinite(ms)) return '–';
  return timeFormat(tz, style).format(new Date(ms));
}

/** A duration in seconds (a funnel's time to convert): `45 s`, `12.5 min`, `3.2 h`, `1.5 d`. */
export function formatSeconds(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  const round = (v: number) => String(Math.round(v * 10) / 10);
  if (value < 60) return `${round(value)} s`;
  if (value < 3600) return `${round(value / 60)} min`;
  if (value < 86_400) return `${round(value / 3600)} h`;
  return `${round(value / 86_400)} d`;
}

/** Bytes: `512 B`, `1.5 KB`, `3.2 MB`. */
export function formatBytes(value: unknown): string {
  if (typeof value !== 'number' || !Number.isFinite(value)) return '–';
  if (value < 1024) return `${integer.format(value)} B`;
  if (value < 1024 * 1024) return `${decimal.format(Math.round(value / 102.4) / 10)} KB`;
  return `${decimal.format(Math.round(value / (1024 * 102.4)) / 10)} MB`;
}

const axisFormats = new Map<string, Intl.DateTimeFormat>();

/**
 * A chart axis label: `29 Nov` for day steps; `14:00` for hour steps, `29 Nov` at local midnight (short, so
 * labels do not run into each other at 1280 px or on a phone).
 */
export function formatAxisTime(ms: number, tz: string, step: 'day' | 'hour'): string {
  const key = `${tz}|${step}`;
  let f = axisFormats.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat('en-GB', {
      timeZone: tz,
      ...(step === 'day'
        ? { day: 'numeric', month: 'short' }
        : { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }),
    });
    axisFormats.set(key, f);
  }
  const text = f.format(new Date(ms));
  if (step === 'hour' && text === '00:00') return formatAxisTime(ms, tz, 'day');
  return text;
}
