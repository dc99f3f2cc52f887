/**
 * Funnels, brute force: every chain of every user enumerated by plain recursion over the user's events,
 * each definition of docs/query.md applied literally (the generated data is small enough for this).
 */
import { type FunnelQuery, parseDuration } from '@tally/core';
import type { EventRow } from '../../../src/index.js';
import { matchesAll, percentileCont, textOf, tsOf, userKey, valueAt } from './common.js';

type Cell = string | number | boolean | null;

interface Ev {
  row: EventRow;
  ts: number;
}

/** Code-point order, null last (the engine's `COLLATE "C" NULLS LAST`). */
function compareValues(a: string | null, b: string | null): number {
  if (a === null || b === null) return a === b ? 0 : a === null ? 1 : -1;
  const x = [...a].map((c) => c.codePointAt(0) as number);
  const y = [...b].map((c) => c.codePointAt(0) as number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return x.length - y.length;
}

/**
 * Per level (0-based), the earliest time a chain of this user reaches it, and the time it converted from
 * the level before on the chain doing so (the latest predecessor of all valid chains ending at that event;
 * at equal earliest times, the shortest gap).
 */
interface Reach {
  ts: (number | undefined)[];
  gap: (number | undefined)[];
}

function newReach(n: number): Reach & { record(k: number, ts: number, prev: number | undefined): void } {
  const ts: (number | undefined)[] = new Array(n).fill(undefined);
  const gap: (number | undefined)[] = new Array(n).fill(undefined);
  return {
    ts,
    gap,
    record(k, at, prev) {
      const g = prev === undefined ? undefined : at - prev;
      if (ts[k] === undefined || at < (ts[k] as number)) {
        ts[k] = at;
        gap[k] = g;
      } else if (at === ts[k] && g !== undefined && g < (gap[k] as number)) {
        gap[k] = g;
      }
    },
  };
}

/** `events` are the user's considered events sorted by time. */
function chainReach(q: FunnelQuery, events: Ev[], to: number): Reach {
  const W = parseDuration(q.window) as number;
  const n = q.steps.length;
  const stepMatch = (e: Ev, i: number) => {
    const s = q.steps[i] as FunnelQuery['steps'][number];
    return e.row.name === s.event && matchesAll(e.row, s.filters) && (i > 0 || e.ts < to);
  };
  const excluded = (x: FunnelQuery['exclusions'][number], lo: number, hi: number) =>
    events.some((e) => e.row.name === x.event && matchesAll(e.row, x.filters) && e.ts > lo && e.ts < hi);
  const reach = newReach(n);
  // `chain` is valid: record its level, then try every extension.
  const extend = (chain: Ev[]) => {
    const k = chain.length;
    reach.record(k - 1, (chain[k - 1] as Ev).ts, chain[k - 2]?.ts);
    if (k === n) return;
    const last = chain[k - 1] as Ev;
    const first = chain[0] as Ev;
    const step = q.steps[k] as FunnelQuery['steps'][number];
    for (const e of events) {
      if (e.ts <= last.ts || !stepMatch(e, k)) continue;
      if (step.window !== undefined && e.ts - last.ts > (parseDuration(step.window) as number)) continue;
      if (e.ts - first.ts > W) continue;
      if (q.order === 'strict' && events.some((o) => o.ts > last.ts && o.ts < e.ts)) continue;
      const next = [...chain, e];
      // Exclusions ending at this step apply from now on (earlier ones were checked when they ended).
      const bad = q.exclusions.some((x) => x.to === k && excluded(x, (next[x.from] as Ev).ts, (next[x.to] as Ev).ts));
      if (!bad) extend(next);
    }
  };
  for (const e of events) if (stepMatch(e, 0)) extend([e]);
  return reach;
}

/** `any`: spans [t, t + window] from each step event before `to`; level k at the k-th step first met. */
function anyReach(q: FunnelQuery, events: Ev[], to: number): Reach {
  const W = parseDuration(q.window) as number;
  const n = q.steps.length;
  const stepMatch = (e: Ev, i: number) => {
    const s = q.steps[i] as FunnelQuery['steps'][number];
    return e.row.name === s.event && matchesAll(e.row, s.filters) && (i > 0 || e.ts < to);
  };
  const reach = newReach(n);
  for (const start of events) {
    if (start.ts >= to || !q.steps.some((_, i) => stepMatch(start, i))) continue;
    const firsts: number[] = [];
    for (let i = 0; i < n; i++) {
      const times = events.filter((e) => e.ts >= start.ts && e.ts <= start.ts + W && stepMatch(e, i)).map((e) => e.ts);
      if (times.length > 0) firsts.push(Math.min(...times));
    }
    firsts.sort((a, b) => a - b);
    firsts.forEach((ts, k) => reach.record(k, ts, firsts[k - 1]));
  }
  return reach;
}

export function funnelOracle(
  rows: readonly EventRow[],
  q: FunnelQuery,
  range: { tenant: string; from: number; to: number },
): Cell[][] {
  const { from, to } = range;
  const W = parseDuration(q.window) as number;
  const names = new Set([...q.steps.map((s) => s.event), ...q.exclusions.map((x) => x.event)]);
  const byUser = new Map<string, Ev[]>();
  for (const row of rows) {
    const u = userKey(row);
    const ts = tsOf(row);
    if (row.tenantId !== range.tenant || u === undefined || ts < from || ts >= to + W) continue;
    if (q.order !== 'strict' && !names.has(row.name)) continue;
    byUser.set(u, [...(byUser.get(u) ?? []), { row, ts }]);
  }
  const users: { reach: Reach; bd: string | null }[] = [];
  for (const events of byUser.values()) {
    events.sort((a, b) => a.ts - b.ts);
    const reach = q.order === 'any' ? anyReach(q, events, to) : chainReach(q, events, to);
    if (reach.ts[0] === undefined) continue;
    let bd: string | null = null;
    if (q.breakdown) {
      const step = q.steps[0] as FunnelQuery['steps'][number];
      const firsts = events
        .filter((e) => e.row.name === step.event && matchesAll(e.row, step.filters) && e.ts < to)
        .sort((a, b) => a.ts - b.ts || (a.row.id < b.row.id ? -1 : 1));
      const first = firsts[0];
      bd = first ? textOf(valueAt(first.row, q.breakdown.property)) : null;
    }
    users.push({ reach, bd });
  }
  const groups: { bd: string | null; members: typeof users }[] = [];
  if (!q.breakdown) {
    groups.push({ bd: null, members: users });
  } else {
    const values = new Map<string | null, typeof users>();
    for (const u of users) values.set(u.bd, [...(values.get(u.bd) ?? []), u]);
    const ranked = [...values.entries()].sort((a, b) => b[1].length - a[1].length || compareValues(a[0], b[0]));
    for (const [bd, members] of ranked.slice(0, q.breakdown.limit)) groups.push({ bd, members });
    const rest = ranked.slice(q.breakdown.limit).flatMap(([, members]) => members);
    if (rest.length > 0) groups.push({ bd: 'other', members: rest });
  }
  const out: Cell[][] = [];
  for (const g of groups) {
    const entered = q.steps.map((_, k) => g.members.filter((u) => u.reach.ts[k] !== undefined).length);
    q.steps.forEach((step, k) => {
      const e = entered[k] as number;
      const converted = k + 1 < q.steps.length ? (entered[k + 1] as number) : e;
      const seconds =
        k === 0
          ? []
          : g.members
              .filter((u) => u.reach.ts[k] !== undefined)
              .map((u) => (u.reach.gap[k] as number) / 1000)
              .sort((a, b) => a - b);
      const first = entered[0] as number;
      const previous = k === 0 ? e : (entered[k - 1] as number);
      out.push([
        k + 1,
        step.event,
        ...(q.breakdown ? [g.bd] : []),
        e,
        converted,
        e - converted,
        first === 0 ? null : e / first,
        previous === 0 ? null : e / previous,
        percentileCont(seconds, 0.5),
        percentileCont(seconds, 0.9),
      ]);
    });
  }
  return out;
}
