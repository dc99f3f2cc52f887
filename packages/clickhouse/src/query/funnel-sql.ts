/**
 * The funnel's statement on ClickHouse: one scan of the steps' (and exclusions') events, one group per
 * user holding the user's events as an array sorted by time, and the chains followed along that array
 * with array functions, in one pass per step, linear in the user's events (funnel-arrays.ts). Then one
 * row per group (breakdown value) with the users reaching each step and the order statistics of their
 * times to convert.
 *
 * Why not `windowFunnel`: it fits none of the funnels exactly. On 18.16 it counts in whole seconds
 * (DateTime or UInt32 times only), takes two events at the same instant as one after the other, has no
 * step windows, no strict order or exclusions, and answers only the deepest step reached, never the time
 * it took. Why not evaluate the arrays in TypeScript: every user's events would cross the wire (10M
 * values for 10M events), where the arrays here send back one row per breakdown value.
 *
 * Times are relative, `t = ts_ms − (from − 1)`: every event read has t ≥ 1, so 0 means "none" in the
 * running maxima, and every value stays far below 2^50 (`NEVER`), which means "never" in running minima.
 *
 * `ordered` and `strict` follow the Postgres engine's chains exactly (its funnel-sql.ts says why they are
 * exact): per level j, each event's latest start among the valid chains that end at it, and the time of
 * the latest qualifying predecessor. Among the user's strictly earlier events (by time: events at one
 * instant are not one after another) that can go on, the latest has the largest start, and the step
 * window and the exclusions ask only about it, so each level is a running maximum over the events of
 * strictly earlier times (`earlier`), of the start and of the time of the events at the level below.
 * - the step window: the predecessor's time l ≥ t − window;
 * - strict: l is the user's previous event time (of any name; the scan reads every name);
 * - an exclusion spanning the pair (from ≤ j − 1 < to): none strictly between l and t, i.e. the last
 *   exclusion event strictly before t is at or before l;
 * - an exclusion whose span holds the predecessor's own step (from < j − 1 < to): none at l's very time.
 * Exclusions apply per run (core's funnelRuns): a level is computed once per set of exclusions in force.
 *
 * `any`: per event, each step's first time at or after it (a running minimum from the end, peers at the
 * same instant included), those within the window sorted: the k-th is when the span from that event
 * reaches level k.
 *
 * Per user and level, the time to convert is taken on the chain reaching it first: the earliest event at
 * the level, less its predecessor's time (events at one instant share their predecessor; `any`: the
 * shortest gap among the spans reaching the level at that earliest time).
 */
import {
  ErrorCodes,
  type FunnelQuery,
  type FunnelRun,
  funnelRunAt,
  funnelRunOf,
  funnelRuns,
  parseDuration,
  TallyError,
} from '@tally/core';
import { int, str } from '../sql.js';
import { ArrayDefs } from './funnel-arrays.js';
import { filtersSql, pathSql } from './sql.js';
import type { QueryContext } from './types.js';

/** Above every relative time (and time plus window): "never" in a running minimum. */
const NEVER = `toInt64(${2 ** 50})`;

/** The two percentiles of the time to convert the answer reports. */
export const FUNNEL_PERCENTILES = [0.5, 0.9] as const;

/**
 * One row per group: `rank` (1 without a breakdown; else the value's place, limit + 1 for "other"), `bd`
 * (the value: '' for none, else 'v' + its text), `e<k>` users reaching step index k, and for k ≥ 1 `s<k>`:
 * per percentile of FUNNEL_PERCENTILES, the two times to convert (ms) around its position (see
 * percentileContAt), from the `e<k>` users' times sorted.
 */
export interface FunnelSqlRow {
  rank: number;
  bd: string;
  [figure: `e${number}` | `s${number}`]: number | number[];
}

type Step = FunnelQuery['steps'][number];
type Exclusion = FunnelQuery['exclusions'][number];

/**
 * What a level carries per event for the next: its latest start and the time of its latest qualifying
 * predecessor, read by a lambda from the elements of `arrays` (one packed array, or two).
 */
interface Carried {
  arrays: string[];
  start: (v: string[]) => string;
  last: (v: string[]) => string;
}

interface Level {
  /** UInt8 array: the event is at this level. */
  cond: string;
  state: Carried;
}

/** Whether a user reached a level, and the time it took (ms): SQL expressions. */
interface Reach {
  reached: string;
  gap: string;
}

/** A user's events as one sorted array (`name`), and how to read each part of an element. */
interface EventsArray {
  name: string;
  t: (e: string) => string;
  m: (e: string) => string;
  x: (e: string) => string;
}

/**
 * The user's events as one array sorted by time. Packed into one Int64 per event, `t << bits | xm << n
 * | m`, when the relative times leave room for the step and exclusion bits (up to 26 of them for a
 * 400-day range and a 90-day window): sorting integers costs half what sorting tuples does (measured on
 * 10M events). Else tuples `(t, m, xm)`.
 */
function eventsArray(q: FunnelQuery, maxT: number): { element: string; array: EventsArray } {
  const n = q.steps.length;
  const nx = q.exclusions.length;
  const bits = n + nx;
  const tBits = Math.ceil(Math.log2(maxT + 1));
  if (tBits + bits <= 62) {
    const packed = `bitOr(bitShiftLeft(t, ${bits}), ${nx > 0 ? `bitOr(bitShiftLeft(toInt64(xm), ${n}), m)` : 'm'})`;
    return {
      element: packed,
      array: {
        name: 'ev',
        t: (e) => `bitShiftRight(${e}, ${bits})`,
        m: (e) => `bitAnd(${e}, ${int(2 ** n - 1)})`,
        x: (e) => `bitAnd(bitShiftRight(${e}, ${n}), ${int(2 ** nx - 1)})`,
      },
    };
  }
  return {
    element: '(t, m, xm)',
    array: { name: 'ev', t: (e) => `${e}.1`, m: (e) => `${e}.2`, x: (e) => `${e}.3` },
  };
}

/** The per-user arrays a Builder reads: relative times, step masks, exclusion masks ('' without). */
interface Arrays {
  T: string;
  M: string;
  X: string;
}

/**
 * One evaluation of the funnel over a user's arrays. `peers`: the arrays may hold several events at one
 * instant, which must not see each other as earlier; without peers (every time distinct, the common
 * case), the event just before is strictly earlier and a running maximum needs no second pass.
 */
class Builder {
  readonly n: number;
  readonly runs: FunnelRun[];
  readonly windowMs: number;
  private readonly levels = new Map<string, Level>();
  private readonly memo = new Map<string, string>();
  readonly T: string;
  readonly M: string;
  readonly X: string;

  constructor(
    readonly q: FunnelQuery,
    readonly a: ArrayDefs,
    arrays: Arrays,
    /** Bits of the largest relative time. */
    readonly tBits: number,
    readonly peers: boolean,
  ) {
    this.n = q.steps.length;
    this.runs = funnelRuns(q);
    this.windowMs = parseDuration(q.window) as number;
    ({ T: this.T, M: this.M, X: this.X } = arrays);
  }

  /** UInt8: the event's time differs from the one before (the first of its instant). */
  private get NEW(): string {
    return this.once('new', () =>
      this.a.def(`arrayMap((t, p) -> t != p, ${this.T}, ${this.a.shifted(this.T, '0')})`, 'new'),
    );
  }

  private once(key: string, make: () => string): string {
    let name = this.memo.get(key);
    if (name === undefined) this.memo.set(key, (name = make()));
    return name;
  }

  bit(j: number): string {
    return this.once(`bit${j}`, () => this.a.def(`arrayMap(m -> bitAnd(m, ${int(2 ** j)}) != 0, ${this.M})`, 'b'));
  }

  xbit(i: number): string {
    return this.once(`xbit${i}`, () => this.a.def(`arrayMap(x -> bitAnd(x, ${int(2 ** i)}) != 0, ${this.X})`, 'xb'));
  }

  /**
   * Per event, the maximum of w over the events of strictly earlier times (0: none), given `negated`
   * = −w (w ≥ 0, 0 where it does not count): the running maximum up to each event, shifted by one, kept
   * at the first event of each instant and carried over its peers.
   */
  earlierOfNegated(negated: string): string {
    return this.carry(this.a.cummaxOfNegated(negated));
  }

  /**
   * From the running maximum `upto` (over each event and all before it), the maximum over the events of
   * strictly earlier times. With peers: shifted by one, kept at the first event of each instant and
   * carried over its peers. Without: the value just before, `upto − diff(upto)` — except at the first
   * event, which gets its own (no level's condition lets an event follow itself: `l < t`).
   */
  private carry(upto: string): string {
    if (!this.peers) return this.a.def(`arrayMap((u, d) -> u - d, ${upto}, arrayDifference(${upto}))`, 'e');
    const atNew = this.a.def(`arrayMap((n, s) -> if(n, -s, 0), ${this.NEW}, ${this.a.shifted(upto, '0')})`, 'e');
    return this.a.cummaxOfNegated(atNew);
  }

  /** Per event, the maximum of `v` over the strictly earlier events where `cond` holds (0: none). */
  earlier(cond: string, v: string): string {
    return this.earlierOfNegated(this.a.def(`arrayMap((c, v) -> if(c, -v, 0), ${cond}, ${v})`, 'w'));
  }

  /**
   * Per event, the start and the time of the latest strictly earlier event where `can` holds (0: none),
   * from the events' own states at the level below. One running maximum carries both when they fit in
   * 62 bits: the time, shifted, and how far the start lies before it (within the funnel's window, so
   * `start − t + window` is in [0, window]); the latest time wins, and events at one instant share their
   * start. Else one running maximum each.
   */
  private latest(can: string, below: Carried): Carried {
    const vars = below.arrays.map((_, k) => `v${k}`);
    const startBelow = below.start(vars);
    const wBits = Math.ceil(Math.log2(this.windowMs + 1));
    const w = int(this.windowMs);
    if (this.tBits + wBits > 62) {
      const starts = this.a.def(`arrayMap((${vars.join(', ')}) -> ${startBelow}, ${below.arrays.join(', ')})`, 's');
      const start = this.earlier(can, starts);
      const last = this.earlier(can, this.T);
      return { arrays: [start, last], start: (v) => v[0] as string, last: (v) => v[1] as string };
    }
    const negated = this.a.def(
      `arrayMap((c, t, ${vars.join(', ')}) -> if(c, -bitOr(bitShiftLeft(t, ${wBits}), ${startBelow} - t + ${w}), 0), ${can}, ${this.T}, ${below.arrays.join(', ')})`,
      'pk',
    );
    const carried = this.earlierOfNegated(negated);
    return {
      arrays: [carried],
      start: ([p]) => `if(${p} = 0, 0, bitAnd(${p}, ${int(2 ** wBits - 1)}) + bitShiftRight(${p}, ${wBits}) - ${w})`,
      last: ([p]) => `bitShiftRight(${p}, ${wBits})`,
    };
  }

  /** The user's previous event time (strict order): 0 for the first. */
  previousTime(): string {
    // Sorted times are their own running maximum.
    return this.once('pt', () => this.carry(this.T));
  }

  /** Per event, the time of exclusion i's last event strictly before it (0: none). */
  exclusionBefore(i: number): string {
    return this.once(`xb${i}`, () => this.earlier(this.xbit(i), this.T));
  }

  /** Per event, whether an event of exclusion i happens at its very time (itself or a peer). */
  exclusionAt(i: number): string {
    if (!this.peers) return this.xbit(i);
    return this.once(`xat${i}`, () => {
      const x = this.xbit(i);
      const upto = this.a.cummaxOfNegated(this.a.def(`arrayMap((c, t) -> if(c, -t, 0), ${x}, ${this.T})`, 'w'));
      const from = this.a.suffixMin(this.a.def(`arrayMap((c, t) -> if(c, t, ${NEVER}), ${x}, ${this.T})`, 'w'));
      return this.a.def(`arrayMap((u, f, t) -> u = t OR f = t, ${upto}, ${from}, ${this.T})`, 'xat');
    });
  }

  private exclusionsOf(r: number): { i: number; x: Exclusion }[] {
    return (this.runs[r] as FunnelRun).exclusions.map((i) => ({ i, x: this.q.exclusions[i] as Exclusion }));
  }

  /** Level j of run r (see the module comment). */
  level(r: number, j: number): Level {
    if (j === 0)
      return { cond: this.bit(0), state: { arrays: [this.T], start: ([t]) => t as string, last: () => '0' } };
    const rr = funnelRunOf(this.runs, r, j);
    const key = `${rr}:${j}`;
    const found = this.levels.get(key);
    if (found) return found;
    const prev = this.level(rr, j - 1);
    // Events at level j − 1 that can go on: not barred by an exclusion at their very time.
    const points = this.exclusionsOf(rr).filter(({ x }) => x.from < j - 1 && j - 1 < x.to);
    const can =
      points.length === 0
        ? prev.cond
        : this.a.def(
            `arrayMap((c, ${points.map((_, k) => `p${k}`).join(', ')}) -> c AND NOT (${points.map((_, k) => `p${k}`).join(' OR ')}), ${prev.cond}, ${points.map(({ i }) => this.exclusionAt(i)).join(', ')})`,
            'can',
          );
    const state = this.latest(can, prev.state);
    const vars = state.arrays.map((_, k) => `v${k}`);
    const args = ['b', 't', ...vars];
    const arrays = [this.bit(j), this.T, ...state.arrays];
    const s = state.start(vars);
    const l = state.last(vars);
    const conds = ['b', `${s} > 0`, `${l} < t`, `${s} >= t - ${int(this.windowMs)}`];
    const window = (this.q.steps[j] as Step).window;
    const stepMs = window === undefined ? undefined : (parseDuration(window) as number);
    if (this.q.order === 'strict') {
      args.push('pt');
      arrays.push(this.previousTime());
      conds.push(`${l} = pt`);
      if (stepMs !== undefined) conds.push(`pt >= t - ${int(stepMs)}`);
    } else {
      if (stepMs !== undefined) conds.push(`${l} >= t - ${int(stepMs)}`);
      // Strict order has nothing between consecutive steps, so only ordered chains check spans.
      this.exclusionsOf(rr)
        .filter(({ x }) => x.from <= j - 1 && j - 1 < x.to)
        .forEach(({ i }, k) => {
          args.push(`x${k}`);
          arrays.push(this.exclusionBefore(i));
          conds.push(`x${k} <= ${l}`);
        });
    }
    const cond = this.a.def(`arrayMap((${args.join(', ')}) -> ${conds.join(' AND ')}, ${arrays.join(', ')})`, 'lv');
    const level = { cond, state };
    this.levels.set(key, level);
    return level;
  }

  /** Per level j ≥ 1, whether the user reached it and the time it took (ms). */
  chainReach(): Reach[] {
    const out: Reach[] = [];
    for (let j = 1; j < this.n; j++) {
      const lv = this.level(funnelRunAt(this.runs, j), j);
      const first = this.a.def(`arrayFirstIndex(c -> c, ${lv.cond})`, 'first');
      out.push({
        reached: `${first} > 0`,
        gap: `arrayElement(${this.T}, ${first}) - ${lv.state.last(lv.state.arrays.map((a) => `arrayElement(${a}, ${first})`))}`,
      });
    }
    return out;
  }

  /** `any` (see the module comment). */
  anyReach(toRel: number): Reach[] {
    const { a, T } = this;
    const span = a.def(`arrayMap((m, t) -> m != 0 AND t < ${int(toRel)}, ${this.M}, ${T})`, 'span');
    // Per step, its first time at or after each event within the window (NEVER: none).
    const within = this.q.steps.map((_, j) => {
      const b = this.bit(j);
      const from = a.suffixMin(a.def(`arrayMap((c, t) -> if(c, t, ${NEVER}), ${b}, ${T})`, 'w'));
      const within = `if(f <= t + ${int(this.windowMs)}, f, ${NEVER})`;
      if (!this.peers) return a.def(`arrayMap((f, t) -> ${within}, ${from}, ${T})`, 'f');
      // A peer before the event (same instant, earlier in the array) counts as at or after it.
      const upto = a.cummaxOfNegated(a.def(`arrayMap((c, t) -> if(c, -t, 0), ${b}, ${T})`, 'w'));
      return a.def(`arrayMap((u, f, t) -> if(u = t, t, ${within}), ${upto}, ${from}, ${T})`, 'f');
    });
    const names = within.map((_, j) => `f${j}`);
    const sorted = a.def(
      `arrayMap((${names.join(', ')}) -> arraySort([${names.join(', ')}]), ${within.join(', ')})`,
      'sorted',
    );
    const out: Reach[] = [];
    for (let k = 1; k < this.n; k++) {
      const at = a.def(`arrayMap((s, x) -> if(s, x[${k + 1}], ${NEVER}), ${span}, ${sorted})`, 'at');
      const gap = a.def(`arrayMap((s, x) -> if(s, x[${k + 1}] - x[${k}], 0), ${span}, ${sorted})`, 'gap');
      const earliest = a.def(`arrayReduce('min', ${at})`, 'earliest');
      out.push({
        reached: `${earliest} < ${NEVER}`,
        gap: `arrayReduce('min', arrayFilter((g, x) -> x = ${earliest}, ${gap}, ${at}))`,
      });
    }
    return out;
  }
}

/** A step's (or exclusion's) event: its name and filters. */
const matchSql = (s: { event: string; filters: Step['filters'] }) =>
  `(name = ${str(s.event)} AND ${filtersSql(s.filters)})`;

/** The breakdown's value on an event: '' when missing, else 'v' and its text (kept non-null: see below). */
function breakdownSql(q: FunnelQuery): string {
  const p = pathSql((q.breakdown as NonNullable<FunnelQuery['breakdown']>).property);
  return `if(${p.type} = 0, '', concat('v', ${p.text}))`;
}

/**
 * The top breakdown values, as an array literal's worth of SQL (a scalar subquery): the value on each
 * entering user's first step-1 event in the range (by time, then id), ranked by users, then by value in
 * byte order (code-point order), none last. Users entering are those with a step-1 event in the range
 * (`any`: with an event of any step in it). The value is a non-null string: aggregates skip nulls, and a
 * user whose first step-1 event lacks the property has none, not a later event's value.
 */
function topValuesSql(q: FunnelQuery, ctx: QueryContext, db: string, keep: string): string {
  const step1 = matchSql(q.steps[0] as Step);
  const entering = q.order === 'any' ? q.steps.map(matchSql).join(' OR ') : step1;
  return `(SELECT groupArray(bd) FROM (
      SELECT bd FROM (
        SELECT argMinIf(${breakdownSql(q)}, (ts_ms, toString(id)), ${step1}) AS bd
        FROM ${db}.events
        WHERE tenant_id = ${str(ctx.tenantId)} AND ts_ms >= ${int(ctx.from)} AND ts_ms < ${int(ctx.to)}
          AND name IN (${[...new Set(q.steps.map((s) => s.event))].map(str).join(', ')})
          AND (user_id != '' OR anonymous_id != '') AND (${entering})
        GROUP BY ${keep}
      ) GROUP BY bd ORDER BY count() DESC, bd = '', bd LIMIT ${int(q.breakdown?.limit ?? 0)}))`;
}

export function funnelStatement(q: FunnelQuery, ctx: QueryContext): string {
  if (q.order === 'any' && q.exclusions.length > 0) {
    throw new TallyError(
      ErrorCodes.BAD_QUERY,
      'exclusions: a funnel in any order has no steps in between; use order "ordered" or "strict"',
      { path: 'exclusions' },
    );
  }
  const windowMs = parseDuration(q.window) as number;
  const base = ctx.from - 1;
  const toRel = ctx.to - base;
  const db = ctx.db;
  const user = `if(user_id != '', user_id, anonymous_id)`;

  // The scan: per event, the user, the relative time, the step mask (step 1 only before `to`) and the
  // exclusion mask; strict order reads every name, since any event in between breaks a chain.
  const mask = q.steps
    .map((s, j) => `if(${matchSql(s)}${j === 0 ? ` AND ts_ms < ${int(ctx.to)}` : ''}, ${int(2 ** j)}, 0)`)
    .join(' + ');
  const xmask = q.exclusions.map((x, i) => `if(${matchSql(x)}, ${int(2 ** i)}, 0)`).join(' + ') || '0';
  const names = [...new Set([...q.steps.map((s) => s.event), ...q.exclusions.map((x) => x.event)])];
  const byName = q.order === 'strict' ? '' : ` AND name IN (${names.map(str).join(', ')})`;
  const bd = q.breakdown ? `, ${breakdownSql(q)} AS bd, toString(id) AS id` : '';
  const scan = `SELECT ${user} AS u, ts_ms - ${int(base)} AS t, toUInt32(${mask}) AS m, toUInt64(${xmask}) AS xm${bd}
    FROM ${db}.events
    WHERE tenant_id = ${str(ctx.tenantId)}${byName} AND ts_ms >= ${int(ctx.from)} AND ts_ms < ${int(ctx.to + windowMs)}
      AND (user_id != '' OR anonymous_id != '')`;
  // An event that matches no step and no exclusion plays no part (strict excepted: it sits in between).
  const useful = q.order === 'strict' ? '' : ' WHERE m != 0 OR xm != 0';
  const entered = q.order === 'any' ? `max(m != 0 AND t < ${int(toRel)})` : 'max(bitAnd(m, 1))';
  const events = eventsArray(q, toRel + windowMs);
  const bdAgg = q.breakdown ? `, argMinIf(bd, (t, id), bitAnd(m, 1) != 0) AS bd` : `, '' AS bd`;
  const users = `SELECT arraySort(groupArray(${events.element})) AS ev${bdAgg}
    FROM (${scan})${useful}
    GROUP BY u HAVING ${entered} = 1`;

  // Users whose events all have distinct times (nearly all) take the cheaper evaluation; the others the
  // one that keeps peers apart. Each path runs on every user, over an empty array for the other users.
  const a = new ArrayDefs();
  const e = events.array;
  const tBits = Math.ceil(Math.log2(toRel + windowMs + 1));
  const peers = a.def(`arrayCount(d -> d = 0, arrayDifference(arrayMap(e -> ${e.t('e')}, ev))) > 1`, 'peers');
  const reach = [false, true].map((withPeers) => {
    // The whole array or none of it, by its length (see `pick` for why not if()).
    const keep = withPeers ? peers : `(1 - ${peers})`;
    const ev = a.def(`arraySlice(ev, 1, ${keep} * length(ev))`, 'ev');
    const arrays = {
      T: a.column(`arrayMap(e -> ${e.t('e')}, ${ev})`, 't'),
      M: a.column(`arrayMap(e -> ${e.m('e')}, ${ev})`, 'm'),
      X: q.exclusions.length > 0 ? a.column(`arrayMap(e -> ${e.x('e')}, ${ev})`, 'x') : '',
    };
    const b = new Builder(q, a, arrays, tBits, withPeers);
    return q.order === 'any' ? b.anyReach(toRel) : b.chainReach();
  });
  const [distinct, tied] = reach as [Reach[], Reach[]];
  const outputs = distinct.flatMap((d, i) => {
    const p = tied[i] as Reach;
    // Arithmetic, not if(): the current engine evaluates if()'s branches lazily, on filtered copies of
    // their inputs, which here are every array the evaluation made (measured: three times the work).
    const pick = (slow: string, fast: string) => `${peers} * (${slow}) + (1 - ${peers}) * (${fast})`;
    return [`toUInt8(${pick(p.reached, d.reached)}) AS r${i + 1}`, `${pick(p.gap, d.gap)} AS g${i + 1}`];
  });
  const limit = q.breakdown?.limit ?? 0;
  let rank = '1';
  let top = '';
  if (q.breakdown) {
    top = `WITH ${topValuesSql(q, ctx, db, user)} AS top\n    `;
    rank = `if(indexOf(top, bd) = 0, ${int(limit + 1)}, indexOf(top, bd))`;
  }
  const arrays = a.from(`(${users})`, outputs.join(',\n      '), ['bd', 'ev']);
  const perUser = `${top}SELECT ${rank} AS rank, bd, ${arrays.uses}
    FROM ${arrays.from}`;

  // Per group: users per level, and per level ≥ 1 their times sorted, of which two per percentile.
  const levels = q.steps.slice(1).map((_, i) => i + 1);
  const aggs = [
    'count() AS e0',
    ...levels.flatMap((k) => [`countIf(r${k}) AS e${k}`, `arraySort(groupArrayIf(g${k}, r${k})) AS all${k}`]),
  ];
  const stats = levels.map((k) => {
    const pos = (p: number) => `${p} * greatest(toInt64(length(all${k})) - 1, 0)`;
    const picks = FUNNEL_PERCENTILES.flatMap((p) => [
      `all${k}[toUInt64(floor(${pos(p)})) + 1]`,
      `all${k}[toUInt64(ceil(${pos(p)})) + 1]`,
    ]);
    return `[${picks.join(', ')}] AS s${k}`;
  });
  const figures = ['rank', 'bd', ...q.steps.map((_, k) => `e${k}`)];
  // The sorted times stay in ClickHouse: only their order statistics come back.
  return `SELECT ${figures.join(', ')}${stats.length > 0 ? `, ${stats.join(', ')}` : ''}
    FROM (
      SELECT rank, any(bd) AS bd, ${aggs.join(', ')}
      FROM (${perUser})
      GROUP BY rank)
    ORDER BY rank`;
}
