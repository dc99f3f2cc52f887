/**
 * Funnel answers on every engine: the columns, the rows of one group from the users reaching each step,
 * and the plan of exclusion runs the engines follow chains by. What differs per engine is only how the
 * users reaching each step and their times to convert are found.
 */
import type { FunnelQuery } from './model.js';
import type { Cell, Column } from './result.js';

export function funnelColumns(query: FunnelQuery): Column[] {
  return [
    { name: 'step', type: 'number' },
    { name: 'event', type: 'string' },
    ...(query.breakdown ? [{ name: 'breakdown', type: 'string' } as const] : []),
    { name: 'entered', type: 'number' },
    { name: 'converted', type: 'number' },
    { name: 'dropped', type: 'number' },
    { name: 'conversion_from_first', type: 'number' },
    { name: 'conversion_from_previous', type: 'number' },
    { name: 'median_seconds', type: 'number' },
    { name: 'p90_seconds', type: 'number' },
  ];
}

/** What one group (all users, or one breakdown value) of a funnel found. */
export interface FunnelGroup {
  /** Users reaching each step, by step index. */
  entered: readonly number[];
  /** By step index, [median, p90] of the time to convert in seconds (null for step 1, or nobody). */
  times: readonly (readonly [number | null, number | null] | null | undefined)[];
}

const ratio = (a: number, b: number): number | null => (b === 0 ? null : a / b);

/** The rows of one group, one per step (all zeros when `group` is undefined: nobody entered). */
export function funnelGroupRows(query: FunnelQuery, group: FunnelGroup | undefined, breakdown: Cell[]): Cell[][] {
  const n = query.steps.length;
  const entered = query.steps.map((_, i) => group?.entered[i] ?? 0);
  return query.steps.map((step, i) => {
    const e = entered[i] as number;
    const converted = i + 1 < n ? (entered[i + 1] as number) : e;
    const pct = i === 0 ? null : group?.times[i];
    return [
      i + 1,
      step.event,
      ...breakdown,
      e,
      converted,
      e - converted,
      ratio(e, entered[0] as number),
      ratio(e, i === 0 ? e : (entered[i - 1] as number)),
      pct?.[0] ?? null,
      pct?.[1] ?? null,
    ];
  });
}

/**
 * Linear-interpolated percentile (percentile_cont) at `q` of `count` sorted values, from the two values
 * around its position: `at(i)` is the i-th smallest (0-based). The arithmetic is percentile_cont's, in this
 * order, so that every engine and the brute-force evaluator give the same float.
 */
export function percentileContAt(count: number, q: number, at: (index: number) => number): number | null {
  if (count === 0) return null;
  const pos = q * (count - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = at(lo);
  return a + (at(hi) - a) * (pos - lo);
}

/**
 * Exclusions change which chains count: a chain reaching step index j must respect every exclusion whose
 * `to` is at most j, and no other (one ending later does not apply to it yet). Chains are therefore
 * followed once per set of applicable exclusions: run 0 with none (the levels below the smallest `to`),
 * run r with those whose `to` ≤ the r-th smallest `to` (the levels from there to the next). Below the
 * smallest `from` of its exclusions no exclusion constrains a chain, so a run computes its own levels only
 * from that `from` + 1 on and shares run 0's below.
 */
export interface FunnelRun {
  /** Indexes into the query's exclusions. */
  exclusions: number[];
  /** The levels (0-based step indexes) this run computes (none when last < first). */
  first: number;
  last: number;
  /** The levels whose answer is this run's. */
  targets: [number, number];
}

export function funnelRuns(q: FunnelQuery): FunnelRun[] {
  const n = q.steps.length;
  const ends = [...new Set(q.exclusions.map((x) => x.to))].sort((a, b) => a - b);
  const top0 = ends.length === 0 ? n - 1 : (ends[0] as number) - 1;
  const runs: FunnelRun[] = [{ exclusions: [], first: 1, last: top0, targets: [0, top0] }];
  ends.forEach((end, r) => {
    const exclusions = q.exclusions.flatMap((x, i) => (x.to <= end ? [i] : []));
    const minFrom = Math.min(...exclusions.map((i) => (q.exclusions[i] as FunnelQuery['exclusions'][number]).from));
    const last = r + 1 < ends.length ? (ends[r + 1] as number) - 1 : n - 1;
    runs.push({ exclusions, first: minFrom + 1, last, targets: [end, last] });
  });
  return runs;
}

/** The run whose levels hold level j for run r: r itself, or run 0 below r's own levels. */
export function funnelRunOf(runs: readonly FunnelRun[], r: number, j: number): number {
  const run = runs[r] as FunnelRun;
  return j >= run.first && j <= run.last ? r : 0;
}

/** The run whose answer level j is. */
export function funnelRunAt(runs: readonly FunnelRun[], j: number): number {
  return runs.findIndex((run) => j >= run.targets[0] && j <= run.targets[1]);
}
