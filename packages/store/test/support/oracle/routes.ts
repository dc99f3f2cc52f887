/**
 * Routes, plainly (docs/query.md "Routes"): loops over the stored request logs, no SQL. Each group's
 * durations go into the histogram buckets of LATENCY_BUCKETS_MS (bucket i holds durations ≤ bound i and
 * above the bound before; the last bucket the rest), and a percentile is read from the bucket where the
 * running count reaches q·count, interpolated inside its bounds narrowed to the group's min and max.
 */
import type { RoutesQuery } from '@tally/core';
import { LATENCY_BUCKETS_MS, type RequestLogRow } from '../../../src/index.js';
import { bucketIso, tsOf } from './common.js';

export interface Frame {
  tenant: string;
  /** The resolved range, epoch ms, half-open. */
  from: number;
  to: number;
}

export const UNMATCHED = '(unmatched)';

const BOUNDS: number[] = [...LATENCY_BUCKETS_MS];

/** The histogram bucket of a duration: the first bound it does not exceed, or the last, open bucket. */
export function bucketOf(durationMs: number): number {
  for (let i = 0; i < BOUNDS.length; i++) if (durationMs <= (BOUNDS[i] as number)) return i;
  return BOUNDS.length;
}

/** A group's request logs, with what the answer reports of them. */
export interface Group {
  method: string;
  route: string;
  logs: RequestLogRow[];
}

export function classOf(status: number): string {
  return `${Math.floor(status / 100)}xx`;
}

/** The logs of the tenant in the range matching the query's filters. */
export function selected(rows: readonly RequestLogRow[], q: RoutesQuery, frame: Frame): RequestLogRow[] {
  const out: RequestLogRow[] = [];
  for (const r of rows) {
    if (r.tenantId !== frame.tenant) continue;
    const t = tsOf(r);
    if (t < frame.from || t >= frame.to) continue;
    if (q.method !== undefined && r.method !== q.method) continue;
    if (q.route !== undefined && (r.route ?? UNMATCHED) !== q.route) continue;
    if (q.statusClass !== undefined && classOf(r.status) !== q.statusClass) continue;
    out.push(r);
  }
  return out;
}

/** The sorted durations' ⌈q·n⌉-th smallest (nearest rank): the exact percentile the estimate bounds. */
export function nearestRank(durations: readonly number[], q: number): number {
  const sorted = [...durations].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(q * sorted.length) - 1)] as number;
}

/** The bounds [lower, upper] of bucket b narrowed to [min, max]: where an estimate in bucket b lies. */
export function narrowedBucket(b: number, min: number, max: number): [number, number] {
  const lower = b === 0 ? min : Math.max(BOUNDS[b - 1] as number, min);
  const upper = b === BOUNDS.length ? max : Math.min(BOUNDS[b] as number, max);
  return [lower, upper];
}

export function estimate(durations: readonly number[], q: number): number | null {
  if (durations.length === 0) return null;
  const counts = new Array<number>(BOUNDS.length + 1).fill(0);
  for (const d of durations) counts[bucketOf(d)] = (counts[bucketOf(d)] as number) + 1;
  const min = Math.min(...durations);
  const max = Math.max(...durations);
  const rank = q * durations.length;
  let below = 0;
  for (let b = 0; b < counts.length; b++) {
    const n = counts[b] as number;
    if (n > 0 && below + n >= rank) {
      const [lower, upper] = narrowedBucket(b, min, max);
      return lower + (upper - lower) * ((rank - below) / n);
    }
    below += n;
  }
  throw new Error('unreachable: the buckets hold every duration');
}

function figures(logs: readonly RequestLogRow[]) {
  const durations = logs.map((r) => r.durationMs);
  let e4 = 0;
  let e5 = 0;
  let sum = 0;
  for (const r of logs) {
    if (r.status >= 400 && r.status <= 499) e4++;
    if (r.status >= 500) e5++;
    sum += r.durationMs;
  }
  const count = logs.length;
  return {
    count,
    e4,
    e5,
    rate: count === 0 ? null : (e4 + e5) / count,
    avg: count === 0 ? null : sum / count,
    max: count === 0 ? null : Math.max(...durations),
    p50: estimate(durations, 0.5),
    p95: estimate(durations, 0.95),
    p99: estimate(durations, 0.99),
  };
}

function codePointCompare(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/** The groups of a table answer, in the answer's order, before the limit. */
export function routeGroups(rows: readonly RequestLogRow[], q: RoutesQuery, frame: Frame): Group[] {
  const groups = new Map<string, Group>();
  for (const r of selected(rows, q, frame)) {
    const route = r.route ?? UNMATCHED;
    const key = JSON.stringify([r.method, route]);
    if (!groups.has(key)) groups.set(key, { method: r.method, route, logs: [] });
    groups.get(key)?.logs.push(r);
  }
  const keyOf = (g: Group): number => {
    const f = figures(g.logs);
    if (q.sort === 'count') return f.count;
    if (q.sort === 'errors') return f.e4 + f.e5;
    if (q.sort === 'error_rate') return f.rate as number;
    return f[q.sort] as number;
  };
  return [...groups.values()].sort(
    (a, b) => keyOf(b) - keyOf(a) || codePointCompare(a.method, b.method) || codePointCompare(a.route, b.route),
  );
}

/** Table rows: method, route, count, errors_4xx, errors_5xx, error_rate, avg_ms, max_ms, p50, p95, p99. */
export function routesTableOracle(rows: readonly RequestLogRow[], q: RoutesQuery, frame: Frame): unknown[][] {
  return routeGroups(rows, q, frame)
    .slice(0, q.limit)
    .map((g) => {
      const f = figures(g.logs);
      return [g.method, g.route, f.count, f.e4, f.e5, f.rate, f.avg, f.max, f.p50, f.p95, f.p99];
    });
}

/** Buckets in the query's tz: time, count, errors_4xx, errors_5xx, error_rate, p50, p95, p99. */
export function routesSeriesOracle(
  rows: readonly RequestLogRow[],
  q: RoutesQuery,
  frame: Frame,
  bucketStarts: readonly number[],
): unknown[][] {
  const interval = q.interval;
  if (!interval) throw new Error('a series needs an interval');
  const byBucket = new Map<string, RequestLogRow[]>();
  for (const r of selected(rows, q, frame)) {
    const b = bucketIso(tsOf(r), interval, q.tz);
    if (!byBucket.has(b)) byBucket.set(b, []);
    byBucket.get(b)?.push(r);
  }
  return bucketStarts.map((start) => {
    const time = new Date(start).toISOString();
    const f = figures(byBucket.get(time) ?? []);
    return [time, f.count, f.e4, f.e5, f.rate, f.p50, f.p95, f.p99];
  });
}
