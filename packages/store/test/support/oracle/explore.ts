/**
 * Explore, plainly (docs/query.md "Explore"): event names with count and last time seen; and the
 * top-level property keys of the most recent 10,000 events of the range with their JSON types and most
 * frequent values.
 */
import type { ExploreQuery } from '@tally/core';
import type { EventRow } from '../../../src/index.js';
import { tsOf } from './common.js';

export interface Frame {
  tenant: string;
  from: number;
  to: number;
}

export const SAMPLE = 10_000;

function codePointCompare(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

const inFrame = (r: EventRow, frame: Frame) =>
  r.tenantId === frame.tenant && tsOf(r) >= frame.from && tsOf(r) < frame.to;

/** Rows: event, count, last_seen (ISO); by count descending, then name. */
export function exploreEventsOracle(rows: readonly EventRow[], q: ExploreQuery, frame: Frame): unknown[][] {
  const byName = new Map<string, { count: number; last: number }>();
  for (const r of rows) {
    if (!inFrame(r, frame)) continue;
    const e = byName.get(r.name) ?? { count: 0, last: -Infinity };
    e.count++;
    e.last = Math.max(e.last, tsOf(r));
    byName.set(r.name, e);
  }
  return [...byName.entries()]
    .sort((a, b) => b[1].count - a[1].count || codePointCompare(a[0], b[0]))
    .slice(0, q.limit)
    .map(([name, e]) => [name, e.count, new Date(e.last).toISOString()]);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v; // string, number, boolean, object
}

/** The sample: the tenant's events in the range (of `event` if given), the SAMPLE most recent by (ts, id). */
export function sampleOf(rows: readonly EventRow[], q: ExploreQuery, frame: Frame): EventRow[] {
  const mine = rows.filter((r) => inFrame(r, frame) && (q.event === undefined || r.name === q.event));
  mine.sort((a, b) => tsOf(b) - tsOf(a) || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return mine.slice(0, SAMPLE);
}

/** Rows: event, property, type, count, top_values (JSON text); by event, count descending, property, type. */
export function explorePropertiesOracle(rows: readonly EventRow[], q: ExploreQuery, frame: Frame): unknown[][] {
  const stats = new Map<
    string,
    { event: string; key: string; type: string; count: number; values: Map<string, number> }
  >();
  for (const r of sampleOf(rows, q, frame)) {
    for (const [key, value] of Object.entries(r.properties)) {
      const type = typeOf(value);
      const id = JSON.stringify([r.name, key, type]);
      const s = stats.get(id) ?? { event: r.name, key, type, count: 0, values: new Map<string, number>() };
      s.count++;
      if (type === 'string' || type === 'number' || type === 'boolean') {
        const text = typeof value === 'string' ? value : JSON.stringify(value);
        s.values.set(text, (s.values.get(text) ?? 0) + 1);
      }
      stats.set(id, s);
    }
  }
  return [...stats.values()]
    .sort(
      (a, b) =>
        codePointCompare(a.event, b.event) ||
        b.count - a.count ||
        codePointCompare(a.key, b.key) ||
        codePointCompare(a.type, b.type),
    )
    .slice(0, q.limit)
    .map((s) => {
      const top = [...s.values.entries()]
        .sort((a, b) => b[1] - a[1] || codePointCompare(a[0], b[0]))
        .slice(0, 5)
        .map(([value, count]) => ({ value, count }));
      return [s.event, `properties.${s.key}`, s.type, s.count, JSON.stringify(top)];
    });
}
