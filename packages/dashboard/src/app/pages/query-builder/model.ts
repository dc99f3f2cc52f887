/**
 * The queries the Trends and Funnels pages build by clicking, as they live in the URL's `q=` param: the
 * core query model without `range`/`tz` (the header's) and with its defaults and empty lists left out, so
 * a link stays short. A `q` pasted or edited by hand is read leniently (fields of the wrong shape fall
 * back to their defaults) and checked before it is sent: what would only earn a 400 (a numeric measure
 * without its property, a formula naming a series that is not there, a step window longer than the
 * funnel's) is said next to the control instead. The server checks everything again.
 */
import {
  type FilterOp,
  type FilterScalar,
  type FunnelOrder,
  type Interval,
  type Measure,
  NUMERIC_MEASURES,
  parseDuration,
  parseFormula,
  QUERY_LIMITS,
} from '@tally/core';

export interface Filter {
  property: string;
  op: FilterOp;
  value?: FilterScalar | FilterScalar[];
}

export interface Breakdown {
  property: string;
  limit?: number;
}

export interface Series {
  event: string;
  measure: Measure;
  property?: string;
  filters: Filter[];
}

export interface TrendsQ {
  kind: 'trends';
  series: Series[];
  interval: Interval;
  breakdown?: Breakdown;
  compare?: 'previous_period';
  formula?: string;
}

export interface Step {
  event: string;
  filters: Filter[];
  window?: string;
}

export interface Exclusion {
  event: string;
  filters: Filter[];
  from: number;
  to: number;
}

export interface FunnelQ {
  kind: 'funnel';
  steps: Step[];
  window: string;
  order: FunnelOrder;
  exclusions: Exclusion[];
  breakdown?: Breakdown;
}

/** Trends series are named A, B, C… in order; formulas use the letters. */
export const letter = (i: number): string => String.fromCharCode(65 + i);

export const MEASURES: readonly { id: Measure; label: string }[] = [
  { id: 'count', label: 'Total events' },
  { id: 'unique_users', label: 'Unique users' },
  { id: 'sum', label: 'Sum of property' },
  { id: 'avg', label: 'Average of property' },
  { id: 'min', label: 'Minimum of property' },
  { id: 'max', label: 'Maximum of property' },
  { id: 'p50', label: 'Median (p50) of property' },
  { id: 'p90', label: 'p90 of property' },
  { id: 'p95', label: 'p95 of property' },
  { id: 'p99', label: 'p99 of property' },
];

export const INTERVALS: readonly { id: Interval; label: string }[] = [
  { id: 'hour', label: 'Hour' },
  { id: 'day', label: 'Day' },
  { id: 'week', label: 'Week' },
  { id: 'month', label: 'Month' },
];

export const FILTER_OPS: readonly { id: FilterOp; label: string }[] = [
  { id: 'eq', label: 'equals' },
  { id: 'neq', label: 'not equal' },
  { id: 'in', label: 'is one of' },
  { id: 'nin', label: 'is none of' },
  { id: 'contains', label: 'contains' },
  { id: 'gt', label: '>' },
  { id: 'gte', label: '≥' },
  { id: 'lt', label: '<' },
  { id: 'lte', label: '≤' },
  { id: 'is_set', label: 'is set' },
  { id: 'is_not_set', label: 'is not set' },
];

export const ORDERS: readonly { id: FunnelOrder; label: string; hint: string }[] = [
  { id: 'ordered', label: 'In order', hint: 'Steps in order; other events may come between them.' },
  { id: 'strict', label: 'Strict order', hint: 'Each step must be the user’s very next event.' },
  {
    id: 'any',
    label: 'Any order',
    hint: 'Every step within the window, in any order: steps have no windows of their own, and no exclusions.',
  },
];

/** The dashboard offers up to 10 funnel steps (the API takes 20): more does not fit a screen of bars. */
export const MAX_STEPS = 10;
export const MAX_SERIES = QUERY_LIMITS.series;

export const isNumericMeasure = (m: Measure): boolean => NUMERIC_MEASURES.includes(m);
export const valueless = (op: FilterOp): boolean => op === 'is_set' || op === 'is_not_set';
const listOp = (op: FilterOp): boolean => op === 'in' || op === 'nin';

// ---- Reading `q` ----

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const oneOf = <T extends string>(v: unknown, list: readonly { id: T }[], fallback: T): T =>
  list.some((x) => x.id === v) ? (v as T) : fallback;

const isScalar = (v: unknown): v is FilterScalar =>
  typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

function readFilters(v: unknown): Filter[] {
  const out: Filter[] = [];
  for (const f of arr(v)) {
    if (!isObj(f) || typeof f.property !== 'string') continue;
    const op = oneOf(f.op, FILTER_OPS, 'eq');
    const filter: Filter = { property: f.property, op };
    if (!valueless(op)) {
      if (Array.isArray(f.value)) filter.value = f.value.filter(isScalar);
      else if (isScalar(f.value)) filter.value = f.value;
    }
    out.push(filter);
  }
  return out;
}

function readBreakdown(v: unknown): Breakdown | undefined {
  if (!isObj(v) || typeof v.property !== 'string' || v.property === '') return undefined;
  const limit = typeof v.limit === 'number' && Number.isInteger(v.limit) ? v.limit : undefined;
  return limit === undefined ? { property: v.property } : { property: v.property, limit };
}

export type Read<T> = { q?: T; error?: string };

function parseJson(text: string | undefined): { value?: unknown; error?: string } {
  if (text === undefined || text === '') return {};
  try {
    return { value: JSON.parse(text) };
  } catch {
    return { error: 'The link’s query (q=) is not valid JSON.' };
  }
}

export function readTrends(text: string | undefined): Read<TrendsQ> {
  const { value, error } = parseJson(text);
  if (error) return { error };
  if (value === undefined) return {};
  if (!isObj(value)) return { error: 'The link’s query (q=) is not a trends query.' };
  const series = arr(value.series)
    .filter(isObj)
    .slice(0, MAX_SERIES)
    .map((s): Series => {
      const measure = oneOf(s.measure, MEASURES, 'count');
      const out: Series = { event: str(s.event) ?? '', measure, filters: readFilters(s.filters) };
      if (isNumericMeasure(measure)) out.property = str(s.property) ?? '';
      return out;
    });
  if (series.length === 0) series.push({ event: '', measure: 'count', filters: [] });
  const q: TrendsQ = { kind: 'trends', series, interval: oneOf(value.interval, INTERVALS, 'day') };
  const breakdown = readBreakdown(value.breakdown);
  if (breakdown) q.breakdown = breakdown;
  if (value.compare === 'previous_period') q.compare = 'previous_period';
  const formula = str(value.formula)?.trim();
  if (formula) q.formula = formula;
  return { q };
}

export function readFunnel(text: string | undefined): Read<FunnelQ> {
  const { value, error } = parseJson(text);
  if (error) return { error };
  if (value === undefined) return {};
  if (!isObj(value)) return { error: 'The link’s query (q=) is not a funnel query.' };
  const steps = arr(value.steps)
    .filter(isObj)
    .slice(0, MAX_STEPS)
    .map((s, i): Step => {
      const step: Step = { event: str(s.event) ?? '', filters: readFilters(s.filters) };
      const window = str(s.window);
      if (i > 0 && window) step.window = window;
      return step;
    });
  while (steps.length < 2) steps.push({ event: '', filters: [] });
  const last = steps.length - 1;
  const exclusions = arr(value.exclusions)
    .filter(isObj)
    .map((e): Exclusion => {
      const from = typeof e.from === 'number' && Number.isInteger(e.from) ? Math.min(Math.max(e.from, 0), last - 1) : 0;
      const to = typeof e.to === 'number' && Number.isInteger(e.to) ? Math.min(Math.max(e.to, from + 1), last) : last;
      return { event: str(e.event) ?? '', filters: readFilters(e.filters), from, to };
    });
  const q: FunnelQ = {
    kind: 'funnel',
    steps,
    window: str(value.window) ?? '14d',
    order: oneOf(value.order, ORDERS, 'ordered'),
    exclusions,
  };
  const breakdown = readBreakdown(value.breakdown);
  if (breakdown) q.breakdown = breakdown;
  return { q };
}

// ---- Writing `q` and the query sent ----

/** Leaves out what the server fills by default (empty filter lists, no exclusions). */
function compactFilters<T extends { filters: Filter[] }>(x: T): T | Omit<T, 'filters'> {
  if (x.filters.length > 0) return x;
  const { filters: _f, ...rest } = x;
  return rest;
}

/** The `q=` text of a trends query. */
export function writeTrends(q: TrendsQ): string {
  return JSON.stringify({ ...q, series: q.series.map(compactFilters) });
}

export function writeFunnel(q: FunnelQ): string {
  const { exclusions, ...rest } = q;
  return JSON.stringify({
    ...rest,
    steps: q.steps.map(compactFilters),
    ...(exclusions.length > 0 ? { exclusions: exclusions.map(compactFilters) } : {}),
  });
}

/** A filter is sent once it has a property and, unless it takes none, a value: one being written waits. */
export function filterComplete(f: Filter): boolean {
  if (f.property === '') return false;
  if (valueless(f.op)) return true;
  if (Array.isArray(f.value)) return f.value.length > 0;
  return f.value !== undefined && f.value !== '';
}

const sentFilters = (filters: Filter[]) =>
  filters.filter(filterComplete).map((f) => (valueless(f.op) ? { property: f.property, op: f.op } : f));

export interface Checked<T> {
  /** The query to send, or null while something stops it. */
  input: T | null;
  /** What stops it, by the control it belongs to (`series[1].property`, `formula`, `steps[2].window`). */
  problems: Record<string, string>;
}

export function checkTrends(q: TrendsQ, rangeDays: number): Checked<TrendsQ> {
  const problems: Record<string, string> = {};
  q.series.forEach((s, i) => {
    if (s.event === '') problems[`series[${i}].event`] = 'Pick an event.';
    if (isNumericMeasure(s.measure) && !s.property) problems[`series[${i}].property`] = 'Pick a numeric property.';
  });
  if (q.formula) {
    const parsed = parseFormula(q.formula, q.series.length);
    if (!parsed.ok) problems.formula = parsed.message.replace(/^formula: /, '');
  }
  if (q.interval === 'hour' && rangeDays > QUERY_LIMITS.hourlyRangeDays) {
    problems.interval = `Hourly buckets cover at most ${QUERY_LIMITS.hourlyRangeDays} days: pick a day interval or a shorter range.`;
  }
  if (Object.keys(problems).length > 0) return { input: null, problems };
  const input: TrendsQ = {
    ...q,
    series: q.series.map((s) => ({ ...s, filters: sentFilters(s.filters) })),
  };
  return { input, problems };
}

export function checkFunnel(q: FunnelQ): Checked<FunnelQ> {
  const problems: Record<string, string> = {};
  const overall = parseDuration(q.window);
  const maxMs = QUERY_LIMITS.windowDays * 86_400_000;
  if (overall === undefined) problems.window = 'Give the funnel’s window, e.g. 14 days.';
  else if (overall > maxMs) problems.window = `At most ${QUERY_LIMITS.windowDays} days.`;
  q.steps.forEach((s, i) => {
    if (s.event === '') problems[`steps[${i}].event`] = 'Pick an event.';
    if (s.window !== undefined) {
      const ms = parseDuration(s.window);
      if (ms === undefined) problems[`steps[${i}].window`] = 'A whole number of a unit, e.g. 1 hour.';
      else if (overall !== undefined && ms > overall) {
        problems[`steps[${i}].window`] = 'Longer than the funnel’s window.';
      }
    }
  });
  q.exclusions.forEach((e, i) => {
    if (e.event === '') problems[`exclusions[${i}].event`] = 'Pick an event.';
  });
  if (Object.keys(problems).length > 0) return { input: null, problems };
  const input: FunnelQ = {
    ...q,
    steps: q.steps.map((s) => ({ ...s, filters: sentFilters(s.filters) })),
    exclusions: q.exclusions.map((e) => ({ ...e, filters: sentFilters(e.filters) })),
  };
  return { input, problems };
}

// ---- Filter values as typed ----

/**
 * A filter value from what was typed: a list for in/nin (comma-separated), and each item a number or a
 * boolean when the property holds those (as explore saw it), text otherwise. Without a known type, text
 * that reads as a number or true/false is one (as `tally query --filter` reads it); "42" in double quotes
 * stays text.
 */
export function parseFilterValue(text: string, op: FilterOp, types: readonly string[]): Filter['value'] {
  const one = (raw: string): FilterScalar => {
    const t = raw.trim();
    if (/^".*"$/.test(t)) return t.slice(1, -1);
    const numeric = t !== '' && Number.isFinite(Number(t));
    const onlyText = types.length > 0 && !types.includes('number') && !types.includes('boolean');
    if (onlyText) return t;
    if ((types.length === 0 || types.includes('number')) && numeric) return Number(t);
    if ((types.length === 0 || types.includes('boolean')) && (t === 'true' || t === 'false')) return t === 'true';
    return t;
  };
  if (listOp(op)) {
    return text
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')
      .map(one);
  }
  if (op === 'contains') return text;
  return text.trim() === '' ? undefined : one(text);
}

/** A filter value as the input shows it. */
export function formatFilterValue(value: Filter['value']): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map(String).join(', ');
  return String(value);
}

// ---- Durations ----

export const DURATION_UNITS = [
  { id: 'm', label: 'minutes', seconds: 60 },
  { id: 'h', label: 'hours', seconds: 3600 },
  { id: 'd', label: 'days', seconds: 86_400 },
  { id: 'w', label: 'weeks', seconds: 604_800 },
  { id: 's', label: 'seconds', seconds: 1 },
] as const;

/** `30m` → `{ amount: 30, unit: 'm' }`; undefined for anything else. */
export function splitDuration(text: string | undefined): { amount: number; unit: string } | undefined {
  const m = /^([1-9][0-9]{0,5})([smhdw])$/.exec(text ?? '');
  return m ? { amount: Number(m[1]), unit: m[2] as string } : undefined;
}

/**
 * A breakdown group as people read it: the null group is "(none)"; `other` is the rest pooled only when
 * the answer says it was cut (`meta.truncated`), otherwise it is a value like any.
 */
export function groupLabel(group: unknown, truncated: boolean): string {
  if (group === null || group === undefined) return '(none)';
  if (group === 'other' && truncated) return 'Other';
  return String(group);
}
