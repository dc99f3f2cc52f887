/**
 * The funnel's one statement. It reads the step (and exclusion) events once, in one sort by (user, time),
 * and follows every user's events with window functions: no join per step, so the cost grows with the
 * events read, not with the number of steps times the events of each.
 *
 * Times are bigint microseconds since the epoch (`t`): exact, and what RANGE frames with a bound offset
 * need. An event's steps are a bitmask `m` (bit i: it matches step i's name and filters; step 0 only before
 * `to`), so an event matching two steps is one row that can serve either, and a chain, whose times rise
 * strictly, can use it only once.
 *
 * `ordered` and `strict`: for each level j (0-based step index) a column holding, per row e, the latest
 * start among the valid chains that end at e at level j (null: none). The latest start is all a chain's
 * future needs: the overall window asks only t(last) − start ≤ window, per-step windows and exclusions
 * look only at the predecessor and the events between it and the next step. So level j is one window pass
 * over level j − 1: the max of the predecessors' starts in a frame of strictly earlier rows, kept when
 * e matches step j and t(e) − start ≤ window. Chains reaching level j are those whose prefixes reach j − 1:
 * nothing is lost by keeping only the maximum per row.
 *
 * `any`: per row and step, the first time at or after the row that matches the step (a running min
 * walking each user's events backwards); the sorted first times within the window give the time each
 * level is reached from that start.
 */
import { ErrorCodes, type FunnelQuery, parseDuration, TallyError } from '@tally/core';
import { filtersSql, Params, pathSql, timeParam, userKeySql } from './sql.js';
import type { QueryContext } from './types.js';

/** One row of the answer's SQL: a group (rank, breakdown value), a 1-based step and its figures. */
export interface FunnelSqlRow {
  rank: number;
  bd: string | null;
  k: number;
  entered: number;
  /** [median, p90] of seconds from the previous step; null for step 1 and for nobody. */
  pct: (number | null)[] | null;
}

export interface FunnelStatement {
  text: string;
  values: unknown[];
}

const MICROS = 1000;

/** What the builders share: the parameters, the query, and the placeholders used many times. */
interface Build {
  p: Params;
  q: FunnelQuery;
  n: number;
  /** The overall window, µs, as a bigint placeholder. */
  w: string;
  /** `to` as timestamptz. */
  to: string;
  runs: Run[];
}

/**
 * Exclusions change which chains count: a chain reaching level j must respect every exclusion whose `to`
 * is at most j, and no other (one ending later does not apply to it yet). Chains are therefore followed
 * once per set of applicable exclusions: run 0 with none (levels below the smallest `to`), run r with
 * those whose `to` ≤ the r-th smallest `to`. Run r follows its own levels from the smallest `from` of its
 * exclusions + 1 on; below that no exclusion of it constrains anything, so it shares run 0's columns.
 */
interface Run {
  exclusions: number[];
  /** First and last level this run computes (run 0: 1 … ; empty when last < first). */
  first: number;
  last: number;
  /** The levels answered from this run. */
  targets: [number, number];
}

function plan(q: FunnelQuery): Run[] {
  const n = q.steps.length;
  const ends = [...new Set(q.exclusions.map((x) => x.to))].sort((a, b) => a - b);
  const top0 = ends.length === 0 ? n - 1 : (ends[0] as number) - 1;
  const runs: Run[] = [{ exclusions: [], first: 1, last: top0, targets: [0, top0] }];
  ends.forEach((end, r) => {
    const exclusions = q.exclusions.flatMap((x, i) => (x.to <= end ? [i] : []));
    const minFrom = Math.min(...exclusions.map((i) => (q.exclusions[i] as FunnelQuery['exclusions'][number]).from));
    const last = r + 1 < ends.length ? (ends[r + 1] as number) - 1 : n - 1;
    runs.push({ exclusions, first: minFrom + 1, last, targets: [end, last] });
  });
  return runs;
}

const bit = (j: number) => 1 << j;

/**
 * The events read: the tenant's events in [from, to + window) with a user key, of the steps' and
 * exclusions' names (strict: of every name, since any event in between breaks a chain). Per event: the
 * user key, t, the step mask, per exclusion 0/1, and for a breakdown the id and the property as text.
 */
function scanSql(b: Build, from: string, end: string, tenant: string): string {
  const { p, q } = b;
  const stepMatch = (i: number) => {
    const s = q.steps[i] as FunnelQuery['steps'][number];
    const before = i === 0 ? ` AND e.ts < ${b.to}` : '';
    return `(e.name = ${p.add(s.event)} AND ${filtersSql(s.filters, p)}${before})`;
  };
  const mask = q.steps.map((_, i) => `CASE WHEN ${stepMatch(i)} THEN ${bit(i)} ELSE 0 END`).join(' | ');
  const cols = [`${userKeySql()} AS u`, 'e.ts', `(extract(epoch FROM e.ts) * 1000000)::bigint AS t`, `${mask} AS m`];
  q.exclusions.forEach((x, i) => {
    cols.push(`CASE WHEN e.name = ${p.add(x.event)} AND ${filtersSql(x.filters, p)} THEN 1 ELSE 0 END AS x${i}`);
  });
  if (q.breakdown) cols.push('e.id', `${pathSql(q.breakdown.property, p, 'text')} AS bd`);
  const names = [...new Set([...q.steps.map((s) => s.event), ...q.exclusions.map((x) => x.event)])];
  const byName = q.order === 'strict' ? '' : ` AND e.name = ANY(${p.add(names)}::text[])`;
  return `SELECT ${cols.join(', ')} FROM events e
    WHERE e.tenant_id = ${tenant}${byName} AND e.ts >= ${from} AND e.ts < ${end}
      AND (e.user_id IS NOT NULL OR e.anonymous_id IS NOT NULL)`;
}

/** A row's state at level j in run r: the condition for it to be at that level, and its start then. */
interface Level {
  cond: string;
  start: string;
}

const runOf = (b: Build, r: number, j: number): number => {
  const run = b.runs[r] as Run;
  return j >= run.first && j <= run.last ? r : 0;
};

/**
 * The components that must equal the current row's value for a predecessor at level j − 1 to be
 * followed by the current row at level j, in front of the start in a composite max:
 * - ordered: per exclusion of the run covering the pair (from ≤ j − 1 < to), the count of its events
 *   up to and including the predecessor's time (`xu`), which must equal the count strictly before the
 *   current row (`xb`): no exclusion event strictly between the two.
 * - strict: the predecessor's time, which must be the user's previous event time (`pt`): no event of the
 *   user strictly between. Exclusion events between are then impossible, so no count is needed.
 * All these components only grow with the predecessor's time, so the lexicographic max of [components…,
 * start] over the frame has components equal to the current row's values exactly when some predecessor
 * qualifies, and then its start is the latest start among the qualifying ones.
 */
function components(b: Build, r: number, j: number): { pred: string[]; cur: string[] } {
  if (b.q.order === 'strict') return { pred: ['t'], cur: ['pt'] };
  const xs = (b.runs[r] as Run).exclusions.filter((i) => {
    const x = b.q.exclusions[i] as FunnelQuery['exclusions'][number];
    return x.from <= j - 1 && j - 1 < x.to;
  });
  return { pred: xs.map((i) => `xu${i}`), cur: xs.map((i) => `xb${i}`) };
}

/**
 * A predecessor at level j − 1 strictly inside an exclusion's span (from < j − 1 < to) is itself between
 * the exclusion's from and to steps: an exclusion event at its very time disqualifies it.
 */
function pointConds(b: Build, r: number, j: number): string[] {
  return (b.runs[r] as Run).exclusions.flatMap((i) => {
    const x = b.q.exclusions[i] as FunnelQuery['exclusions'][number];
    return x.from < j - 1 && j - 1 < x.to ? [`xu${i} = xb${i}`] : [];
  });
}

/** The window aggregate column of level j in run r (computed in layer j). */
const aggCol = (r: number, j: number) => `a${r}_${j}`;

function level(b: Build, r: number, j: number): Level {
  if (j === 0) return { cond: `(m & 1) <> 0`, start: 't' };
  const rr = runOf(b, r, j);
  const a = aggCol(rr, j);
  const { cur } = components(b, rr, j);
  const conds = [`(m & ${bit(j)}) <> 0`];
  if (cur.length === 0) {
    conds.push(`${a} >= t - ${b.w}`);
    return { cond: conds.join(' AND '), start: a };
  }
  cur.forEach((c, i) => conds.push(`${a}[${i + 1}] = ${c}`));
  const start = `${a}[${cur.length + 1}]`;
  conds.push(`${start} >= t - ${b.w}`);
  const window = b.q.steps[j]?.window;
  // Strict: the predecessor is at the previous event time; its step window is checked against that.
  if (b.q.order === 'strict' && window) conds.push(`t - pt <= ${b.p.add(parseDuration(window)! * MICROS)}::bigint`);
  return { cond: conds.join(' AND '), start };
}

/** What a row offers its successors at level j (it being at level j − 1 in run r). */
function contribution(b: Build, r: number, j: number): string {
  const prev = level(b, r, j - 1);
  const { pred } = components(b, r, j);
  const cond = [prev.cond, ...pointConds(b, r, j)].join(' AND ');
  return pred.length === 0
    ? `CASE WHEN ${cond} THEN ${prev.start} END`
    : `CASE WHEN ${cond} THEN ARRAY[${[...pred, prev.start].join(', ')}] END`;
}

/**
 * The frame of level j: the user's strictly earlier rows (`1 PRECEDING` on integer microseconds: rows
 * at the same time are not before each other), within the step's window when it has one (ordered;
 * inclusive: a gap equal to the window counts). Strict looks at every earlier row and keeps the
 * previous time's through `pt`.
 */
function frame(b: Build, j: number): string {
  const window = b.q.steps[j]?.window;
  const head = b.q.order === 'ordered' && window ? `${b.p.add(parseDuration(window)! * MICROS)}::bigint` : 'UNBOUNDED';
  return `PARTITION BY u ORDER BY t RANGE BETWEEN ${head} PRECEDING AND 1 PRECEDING`;
}

/** The ordered/strict layers: l0 (running exclusion counts, previous time), then one layer per level. */
function chainLayers(b: Build): { ctes: string[]; last: string } {
  const { q, n } = b;
  const l0: string[] = ['s.*'];
  q.exclusions.forEach((_, i) => {
    l0.push(`sum(x${i}) OVER upto AS xu${i}`, `coalesce(sum(x${i}) OVER before, 0) AS xb${i}`);
  });
  if (q.order === 'strict') l0.push('max(t) OVER before AS pt');
  const ctes = [
    `l0 AS (SELECT ${l0.join(', ')} FROM scan s
      WINDOW upto AS (PARTITION BY u ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW),
        before AS (PARTITION BY u ORDER BY t RANGE BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING))`,
  ];
  for (let j = 1; j < n; j++) {
    const aggs = b.runs.flatMap((run, r) =>
      j >= run.first && j <= run.last ? [`max(${contribution(b, r, j)}) OVER w AS ${aggCol(r, j)}`] : [],
    );
    ctes.push(`l${j} AS (SELECT *, ${aggs.join(', ')} FROM l${j - 1} WINDOW w AS (${frame(b, j)}))`);
  }
  return { ctes, last: `l${n - 1}` };
}

/** Per user: the earliest time each level is reached (null: never), and the breakdown value. */
function chainUsers(b: Build, last: string): string {
  const reach = b.q.steps.map((_, j) => {
    const r = b.runs.findIndex((run) => j >= run.targets[0] && j <= run.targets[1]);
    const l = level(b, r, j);
    return `min(CASE WHEN ${l.cond} THEN t END)`;
  });
  return `users AS (
    SELECT u, ARRAY[${reach.join(', ')}]::bigint[] AS r${breakdownAgg(b)}
    FROM ${last} GROUP BY u HAVING bool_or((m & 1) <> 0))`;
}

/** The property on the user's first step-1 event (by time, then id: a deterministic pick among ties). */
function breakdownAgg(b: Build): string {
  return b.q.breakdown ? `, (array_agg(bd ORDER BY t, id) FILTER (WHERE (m & 1) <> 0))[1] AS bd` : '';
}

/**
 * `any`: per row, each step's first time at or after it (the window runs newest first, so a running min
 * over the rows so far is the min over the user's later rows, peers at the same time included); a row
 * that matches some step before `to` starts a span, whose steps are those first met within the window.
 * Sorted, the k-th of those times is when the span reaches level k; per-step windows do not apply.
 */
function anyCtes(b: Build, to: number): string[] {
  const { q } = b;
  const firsts = q.steps.map((_, j) => `min(CASE WHEN (m & ${bit(j)}) <> 0 THEN t END) OVER nx AS f${j}`);
  const fs = q.steps.map((_, j) => `f${j}`).join(', ');
  const reach = q.steps.map((_, j) => `min(a[${j + 1}])`).join(', ');
  return [
    `l0 AS (SELECT s.*, ${firsts.join(', ')} FROM scan s
      WINDOW nx AS (PARTITION BY u ORDER BY t DESC RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW))`,
    `spans AS (
      SELECT l0.*, (SELECT array_agg(f ORDER BY f) FROM unnest(ARRAY[${fs}]) AS f WHERE f <= l0.t + ${b.w}) AS a
      FROM l0 WHERE m <> 0 AND t < ${b.p.add(to * MICROS)}::bigint)`,
    `users AS (SELECT u, ARRAY[${reach}]::bigint[] AS r${breakdownAgg(b)} FROM spans GROUP BY u)`,
  ];
}

/**
 * Groups: one without a breakdown; with one, its values ranked by users entering step 1 (then by value,
 * code-point order, null last), the top `limit` kept and the rest pooled as "other" (ranked last).
 */
function groupsSql(b: Build): string {
  if (!b.q.breakdown) return `grouped AS (SELECT 1 AS rank, NULL::text AS bd, r FROM users)`;
  const limit = `${b.p.add(b.q.breakdown.limit)}::int`;
  return `ranked AS (
      SELECT bd IS NULL AS none, coalesce(bd, '') AS key,
        row_number() OVER (ORDER BY count(*) DESC, bd COLLATE "C" NULLS LAST) AS rank
      FROM users GROUP BY bd),
    grouped AS (
      SELECT CASE WHEN g.rank <= ${limit} THEN g.rank ELSE ${limit} + 1 END AS rank,
        CASE WHEN g.rank <= ${limit} THEN s.bd ELSE 'other' END AS bd, s.r
      FROM users s JOIN ranked g ON g.none = (s.bd IS NULL) AND g.key = coalesce(s.bd, ''))`;
}

export function funnelStatement(q: FunnelQuery, ctx: QueryContext): FunnelStatement {
  if (q.order === 'any' && q.exclusions.length > 0) {
    throw new TallyError(
      ErrorCodes.BAD_QUERY,
      'exclusions: a funnel in any order has no steps in between; use order "ordered" or "strict"',
      { path: 'exclusions' },
    );
  }
  const p = new Params();
  const windowMs = parseDuration(q.window)!;
  const b: Build = {
    p,
    q,
    n: q.steps.length,
    w: `${p.add(windowMs * MICROS)}::bigint`,
    to: timeParam(ctx.to, p),
    runs: plan(q),
  };
  const scan = scanSql(b, timeParam(ctx.from, p), timeParam(ctx.to + windowMs, p), p.add(ctx.tenantId));
  let ctes: string[];
  if (q.order === 'any') {
    ctes = anyCtes(b, ctx.to);
  } else {
    const layers = chainLayers(b);
    ctes = [...layers.ctes, chainUsers(b, layers.last)];
  }
  const text = `WITH scan AS (${scan}),
    ${ctes.join(',\n    ')},
    ${groupsSql(b)}
    SELECT rank::int AS rank, bd, k, count(*)::int AS entered,
      percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY (r[k] - r[k - 1])::float8 / 1000000) AS pct
    FROM grouped CROSS JOIN generate_series(1, ${b.n}) AS k
    WHERE r[k] IS NOT NULL
    GROUP BY rank, bd, k ORDER BY rank, k`;
  return { text, values: p.values };
}
