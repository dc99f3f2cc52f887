/**
 * parseQuery: the one gate from untrusted JSON (HTTP body, CLI flags, a saved view) to a `Query`. It refuses
 * the first problem it finds with TALLY_BAD_QUERY, `details.path` naming the field the way a user wrote it
 * (`steps[2].window`, `series[0].property`, `range.from`) and a message saying what is allowed; unknown keys
 * are refused too, so a typo (`intreval`) does not silently fall back to a default. What passes has every
 * default filled in, and parsing its JSON again gives the same value.
 */
import { ErrorCodes, TallyError } from '../errors.js';
import { parseFormula } from './formula.js';
import {
  type Breakdown,
  type CalendarUnit,
  type AnyEventSelector,
  type EventSelector,
  type ExploreQuery,
  type FilterOp,
  type FilterScalar,
  type FunnelExclusion,
  type FunnelQuery,
  type FunnelStep,
  HTTP_METHODS,
  type HttpMethod,
  type Interval,
  type LogFilters,
  type LogsQuery,
  type Measure,
  NUMERIC_MEASURES,
  type PropertyFilter,
  type PropertyPath,
  type Query,
  type QueryCommon,
  QUERY_KINDS,
  QUERY_LIMITS as L,
  type QueryRange,
  type RetentionQuery,
  type RouteSort,
  type RoutesQuery,
  type StatusClass,
  type TrendsQuery,
  type TrendsSeries,
} from './model.js';
import { isValidTimeZone, parseDuration, parseLast, parseRangeTime } from './time.js';

export type ParseQueryResult = { ok: true; query: Query } | { ok: false; error: TallyError };

/** Parses and checks an untrusted value as a Query (see the module comment). Never throws. */
export function parseQuery(input: unknown): ParseQueryResult {
  try {
    return { ok: true, query: query(input) };
  } catch (e) {
    if (e instanceof TallyError) return { ok: false, error: e };
    throw e;
  }
}

const DAY = 86_400_000;

function bad(path: string, message: string): never {
  const where = path === '' ? 'query' : path;
  throw new TallyError(ErrorCodes.BAD_QUERY, `${where}: ${message}`, { path: where });
}

const at = (path: string, key: string): string => (path === '' ? key : `${path}.${key}`);
const nth = (path: string, i: number): string => `${path}[${i}]`;
const list = (values: readonly unknown[]): string => values.map((v) => JSON.stringify(v)).join(', ');

type Obj = Record<string, unknown>;

/** A plain object holding only `keys`; the first unknown key is refused with its own path. */
function object(v: unknown, path: string, keys: readonly string[]): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(path, 'must be an object');
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) bad(at(path, k), `unknown field; allowed here: ${keys.join(', ')}`);
  }
  return v as Obj;
}

function string(v: unknown, path: string): string {
  if (typeof v !== 'string') bad(path, 'must be a string');
  if (v.length === 0) bad(path, 'must not be empty');
  if (v.length > L.string) bad(path, `must be at most ${L.string} characters`);
  // Control characters are never part of a name a person meant; refusing them keeps logs and CSV sane.
  if (/[\u0000-\u001f\u007f]/.test(v)) bad(path, 'must not contain control characters');
  return v;
}

function oneOf<T extends string>(v: unknown, path: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) bad(path, `must be one of ${list(values)}`);
  return v as T;
}

function integer(v: unknown, path: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    bad(path, `must be an integer from ${min} to ${max}`);
  }
  return v;
}

function array(v: unknown, path: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) bad(path, 'must be an array');
  if (v.length < min || v.length > max) bad(path, `must have ${min === max ? min : `${min} to ${max}`} items`);
  return v;
}

const COLUMNS = ['userId', 'anonymousId', 'name'];

/** The parts of a property path, for engines: a column, or a root (`properties`/`context`) and its keys. */
export type ParsedPropertyPath =
  { root: 'column'; column: string } | { root: 'properties' | 'context'; keys: string[] };

/** Splits a path validated by parseQuery; undefined when it is not one (the reason is in propertyPathError). */
export function parsePropertyPath(path: string): ParsedPropertyPath | undefined {
  return propertyPathError(path) === undefined ? splitPath(path) : undefined;
}

function splitPath(path: string): ParsedPropertyPath {
  if (COLUMNS.includes(path)) return { root: 'column', column: path };
  const [root, ...keys] = path.split('.');
  return { root: root as 'properties' | 'context', keys };
}

/** Why `path` is not a property path, or undefined when it is one. */
export function propertyPathError(path: string): string | undefined {
  const grammar = `a property path is properties.<key>[.<key>…], context.<key>[.<key>…] or one of ${COLUMNS.join(', ')}`;
  if (COLUMNS.includes(path)) return undefined;
  const [root, ...keys] = path.split('.');
  if (root !== 'properties' && root !== 'context') return grammar;
  if (keys.length === 0) return `${grammar}: a key must follow "${root}."`;
  if (keys.length > L.pathDepth) return `at most ${L.pathDepth} keys deep`;
  if (keys.some((k) => k.length === 0)) return `${grammar}: keys must not be empty`;
  return undefined;
}

function propertyPath(v: unknown, path: string): PropertyPath {
  const s = string(v, path);
  const error = propertyPathError(s);
  if (error) bad(path, error);
  return s;
}

const FILTER_OPS: readonly FilterOp[] = [
  'eq',
  'neq',
  'in',
  'nin',
  'contains',
  'gt',
  'gte',
  'lt',
  'lte',
  'is_set',
  'is_not_set',
];

function scalar(v: unknown, path: string): FilterScalar {
  if (typeof v === 'string') return string(v, path);
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  return bad(path, 'must be a string, a finite number or a boolean');
}

function filter(v: unknown, path: string): PropertyFilter {
  const o = object(v, path, ['property', 'op', 'value']);
  const property = propertyPath(o.property, at(path, 'property'));
  const op = oneOf(o.op, at(path, 'op'), FILTER_OPS);
  const vp = at(path, 'value');
  if (op === 'is_set' || op === 'is_not_set') {
    if (o.value !== undefined) bad(vp, `must be absent for ${op}`);
    return { property, op };
  }
  if (o.value === undefined) bad(vp, `is required for ${op}`);
  let value: FilterScalar | FilterScalar[];
  if (op === 'in' || op === 'nin') {
    value = array(o.value, vp, 1, L.inValues).map((x, i) => scalar(x, nth(vp, i)));
  } else if (op === 'contains') {
    value = string(o.value, vp);
  } else if (op === 'eq' || op === 'neq') {
    value = scalar(o.value, vp);
  } else {
    value = scalar(o.value, vp);
    if (typeof value === 'boolean') bad(vp, `must be a number or a string for ${op}`);
  }
  return { property, op, value };
}

function filters(v: unknown, path: string): PropertyFilter[] {
  if (v === undefined) return [];
  return array(v, path, 0, L.filters).map((f, i) => filter(f, nth(path, i)));
}

function selector(v: unknown, path: string, extra: readonly string[] = []): { o: Obj; sel: EventSelector } {
  const o = object(v, path, ['event', 'filters', ...extra]);
  return { o, sel: { event: string(o.event, at(path, 'event')), filters: filters(o.filters, at(path, 'filters')) } };
}

/** A selector whose `event` may be null: all events (see AnyEventSelector). */
function anySelector(v: unknown, path: string, extra: readonly string[] = []): { o: Obj; sel: AnyEventSelector } {
  const o = object(v, path, ['event', 'filters', ...extra]);
  const event = o.event === null ? null : string(o.event, at(path, 'event'));
  return { o, sel: { event, filters: filters(o.filters, at(path, 'filters')) } };
}

function breakdown(v: unknown, path: string): Breakdown | undefined {
  if (v === undefined) return undefined;
  const o = object(v, path, ['property', 'limit']);
  return {
    property: propertyPath(o.property, at(path, 'property')),
    limit: o.limit === undefined ? 10 : integer(o.limit, at(path, 'limit'), 1, L.breakdownLimit),
  };
}

const CALENDAR_UNITS: readonly CalendarUnit[] = ['day', 'week', 'month', 'year'];
const INTERVALS: readonly Interval[] = ['hour', 'day', 'week', 'month'];
const CALENDAR_DAYS: Record<CalendarUnit, number> = { day: 1, week: 7, month: 31, year: 366 };

/** The range and, for the checks that depend on length, its longest possible span in days. */
function range(v: unknown, tz: string): { range: QueryRange; days: number } {
  if (v === undefined) return { range: { last: '30d' }, days: 30 };
  const o = object(v, 'range', ['from', 'to', 'last', 'this', 'previous']);
  const given = Object.keys(o);
  const shapes = 'give either from and to, or last, or this, or previous';
  if ('last' in o) {
    if (given.length > 1) bad(`range.${given.find((k) => k !== 'last')}`, `not with range.last; ${shapes}`);
    const last = typeof o.last === 'string' ? parseLast(o.last) : undefined;
    if (!last) bad('range.last', 'must be <n>h, <n>d or <n>w, e.g. "24h", "30d", "12w"');
    const days = last.n * { hour: 1 / 24, day: 1, week: 7 }[last.unit];
    if (days > L.rangeDays) bad('range.last', `must span at most ${L.rangeDays} days`);
    return { range: { last: o.last as string }, days };
  }
  for (const k of ['this', 'previous'] as const) {
    if (k in o) {
      if (given.length > 1) bad(`range.${given.find((g) => g !== k)}`, `not with range.${k}; ${shapes}`);
      const unit = oneOf(o[k], `range.${k}`, CALENDAR_UNITS);
      return { range: k === 'this' ? { this: unit } : { previous: unit }, days: CALENDAR_DAYS[unit] };
    }
  }
  if (o.from === undefined) bad('range.from', `is required; ${shapes}`);
  if (o.to === undefined) bad('range.to', `is required with range.from; ${shapes}`);
  const iso = 'must be an ISO date or time, e.g. "2026-03-01" or "2026-03-01T00:00:00Z"';
  const fromText = string(o.from, 'range.from');
  const from = parseRangeTime(fromText, tz);
  if (from === undefined) bad('range.from', iso);
  const toText = string(o.to, 'range.to');
  const to = parseRangeTime(toText, tz);
  if (to === undefined) bad('range.to', iso);
  if (to <= from) bad('range.to', 'must be after range.from');
  const days = (to - from) / DAY;
  if (days > L.rangeDays) bad('range.to', `the range must span at most ${L.rangeDays} days`);
  return { range: { from: fromText, to: toText }, days };
}

function common(o: Obj): QueryCommon & { days: number } {
  const tz = o.tz === undefined ? 'UTC' : string(o.tz, 'tz');
  if (!isValidTimeZone(tz)) bad('tz', 'must be an IANA time zone name, e.g. "UTC" or "Europe/Berlin"');
  const r = range(o.range, tz);
  if (o.explain !== undefined && typeof o.explain !== 'boolean') bad('explain', 'must be true or false');
  return { range: r.range, tz, explain: o.explain === true, days: r.days };
}

const COMMON_KEYS = ['kind', 'range', 'tz', 'explain'];
const MEASURES: readonly Measure[] = ['count', 'unique_users', ...NUMERIC_MEASURES];

function hourlyFits(interval: Interval | undefined, days: number, path: string): void {
  if (interval === 'hour' && days > L.hourlyRangeDays) {
    bad(path, `"hour" allows a range of at most ${L.hourlyRangeDays} days; use "day" for longer ones`);
  }
}

function trends(input: unknown): TrendsQuery {
  const o = object(input, '', [...COMMON_KEYS, 'series', 'interval', 'breakdown', 'compare', 'formula']);
  const { days, ...c } = common(o);
  const series = array(o.series, 'series', 1, L.series).map((s, i): TrendsSeries => {
    const path = nth('series', i);
    const { o: so, sel } = anySelector(s, path, ['measure', 'property']);
    const measure = so.measure === undefined ? 'count' : oneOf(so.measure, at(path, 'measure'), MEASURES);
    const numeric = NUMERIC_MEASURES.includes(measure);
    if (numeric && so.property === undefined) bad(at(path, 'property'), `is required for measure "${measure}"`);
    if (!numeric && so.property !== undefined) {
      bad(at(path, 'property'), `only with a numeric measure (${NUMERIC_MEASURES.join(', ')})`);
    }
    return numeric
      ? { ...sel, measure, property: propertyPath(so.property, at(path, 'property')) }
      : { ...sel, measure };
  });
  const interval = o.interval === undefined ? 'day' : oneOf(o.interval, 'interval', INTERVALS);
  hourlyFits(interval, days, 'interval');
  const q: TrendsQuery = { kind: 'trends', ...c, series, interval };
  const b = breakdown(o.breakdown, 'breakdown');
  if (b) q.breakdown = b;
  if (o.compare !== undefined) q.compare = oneOf(o.compare, 'compare', ['previous_period'] as const);
  if (o.formula !== undefined) {
    const formula = string(o.formula, 'formula');
    const parsed = parseFormula(formula, series.length);
    if (!parsed.ok) bad('formula', parsed.message.replace(/^formula: /, ''));
    q.formula = formula;
  }
  return q;
}

function window(v: unknown, path: string): string {
  const s = string(v, path);
  const ms = parseDuration(s);
  if (ms === undefined) bad(path, 'must be <n>s, <n>m, <n>h, <n>d or <n>w, e.g. "30m", "1h", "7d"');
  if (ms > L.windowDays * DAY) bad(path, `must be at most ${L.windowDays} days`);
  return s;
}

function funnel(input: unknown): FunnelQuery {
  const o = object(input, '', [...COMMON_KEYS, 'steps', 'window', 'order', 'exclusions', 'breakdown']);
  const { days: _days, ...c } = common(o);
  const overall = o.window === undefined ? '14d' : window(o.window, 'window');
  const overallMs = parseDuration(overall)!;
  const steps = array(o.steps, 'steps', 2, L.steps).map((s, i): FunnelStep => {
    const path = nth('steps', i);
    const { o: so, sel } = selector(s, path, ['window']);
    if (so.window === undefined) return sel;
    if (i === 0) bad(at(path, 'window'), 'the first step has no window (it is the time from the previous step)');
    const w = window(so.window, at(path, 'window'));
    if (parseDuration(w)! > overallMs) bad(at(path, 'window'), `must not exceed the funnel's window (${overall})`);
    return { ...sel, window: w };
  });
  const last = steps.length - 1;
  const exclusions =
    o.exclusions === undefined
      ? []
      : array(o.exclusions, 'exclusions', 0, L.filters).map((e, i): FunnelExclusion => {
          const path = nth('exclusions', i);
          const { o: eo, sel } = selector(e, path, ['from', 'to']);
          const from = eo.from === undefined ? 0 : integer(eo.from, at(path, 'from'), 0, last - 1);
          const to = eo.to === undefined ? last : integer(eo.to, at(path, 'to'), from + 1, last);
          return { ...sel, from, to };
        });
  const q: FunnelQuery = {
    kind: 'funnel',
    ...c,
    steps,
    window: overall,
    order: o.order === undefined ? 'ordered' : oneOf(o.order, 'order', ['ordered', 'strict', 'any'] as const),
    exclusions,
  };
  // In any order there is no "previous step" for a step window or an exclusion's span to be measured from.
  if (q.order === 'any') {
    const windowed = steps.findIndex((s) => s.window !== undefined);
    if (windowed >= 0)
      bad(
        at(nth('steps', windowed), 'window'),
        'steps have no window of their own in order "any": give the funnel\'s window',
      );
    if (exclusions.length > 0) bad('exclusions', 'exclusions need ordered steps: use order "ordered" or "strict"');
  }
  const b = breakdown(o.breakdown, 'breakdown');
  if (b) q.breakdown = b;
  return q;
}

function retention(input: unknown): RetentionQuery {
  const o = object(input, '', [...COMMON_KEYS, 'start', 'return', 'period', 'periods', 'mode']);
  const { days: _days, ...c } = common(o);
  return {
    kind: 'retention',
    ...c,
    start: anySelector(o.start, 'start').sel,
    return: anySelector(o.return, 'return').sel,
    period: o.period === undefined ? 'week' : oneOf(o.period, 'period', ['day', 'week', 'month'] as const),
    periods: o.periods === undefined ? 8 : integer(o.periods, 'periods', 1, L.periods),
    mode: o.mode === undefined ? 'first_time' : oneOf(o.mode, 'mode', ['first_time', 'recurring'] as const),
  };
}

const STATUS_CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];
const ROUTE_SORTS: readonly RouteSort[] = ['count', 'errors', 'error_rate', 'p50', 'p95', 'p99'];

function method(v: unknown, path: string): HttpMethod {
  return oneOf(v, path, HTTP_METHODS);
}

function routes(input: unknown): RoutesQuery {
  const o = object(input, '', [...COMMON_KEYS, 'sort', 'limit', 'method', 'route', 'statusClass', 'interval']);
  const { days, ...c } = common(o);
  const q: RoutesQuery = {
    kind: 'routes',
    ...c,
    sort: o.sort === undefined ? 'count' : oneOf(o.sort, 'sort', ROUTE_SORTS),
    limit: o.limit === undefined ? 10 : integer(o.limit, 'limit', 1, L.routesLimit),
  };
  if (o.method !== undefined) q.method = method(o.method, 'method');
  if (o.route !== undefined) q.route = string(o.route, 'route');
  if (o.statusClass !== undefined) q.statusClass = oneOf(o.statusClass, 'statusClass', STATUS_CLASSES);
  if (o.interval !== undefined) {
    q.interval = oneOf(o.interval, 'interval', INTERVALS);
    hourlyFits(q.interval, days, 'interval');
  }
  return q;
}

function logs(input: unknown): LogsQuery {
  const o = object(input, '', [...COMMON_KEYS, 'filters', 'cursor', 'limit']);
  const { days: _days, ...c } = common(o);
  const f: LogFilters = {};
  if (o.filters !== undefined) {
    const fo = object(o.filters, 'filters', ['status', 'statusClass', 'method', 'route', 'userId', 'apiKeyId', 'url']);
    if (fo.status !== undefined) f.status = integer(fo.status, 'filters.status', 100, 599);
    if (fo.statusClass !== undefined) f.statusClass = oneOf(fo.statusClass, 'filters.statusClass', STATUS_CLASSES);
    if (fo.method !== undefined) f.method = method(fo.method, 'filters.method');
    for (const k of ['route', 'userId', 'apiKeyId', 'url'] as const) {
      if (fo[k] !== undefined) f[k] = string(fo[k], `filters.${k}`);
    }
  }
  const q: LogsQuery = {
    kind: 'logs',
    ...c,
    filters: f,
    limit: o.limit === undefined ? 50 : integer(o.limit, 'limit', 1, L.logsLimit),
  };
  if (o.cursor !== undefined) q.cursor = string(o.cursor, 'cursor');
  return q;
}

function explore(input: unknown): ExploreQuery {
  const o = object(input, '', [...COMMON_KEYS, 'what', 'event', 'limit']);
  const { days: _days, ...c } = common(o);
  const q: ExploreQuery = {
    kind: 'explore',
    ...c,
    what: o.what === undefined ? 'events' : oneOf(o.what, 'what', ['events', 'properties'] as const),
    limit: o.limit === undefined ? 100 : integer(o.limit, 'limit', 1, L.exploreLimit),
  };
  if (o.event !== undefined) {
    if (q.what !== 'properties') bad('event', 'only with what: "properties"');
    q.event = string(o.event, 'event');
  }
  return q;
}

function query(input: unknown): Query {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) bad('', 'must be a JSON object');
  const kind = oneOf((input as Obj).kind, 'kind', QUERY_KINDS);
  switch (kind) {
    case 'trends':
      return trends(input);
    case 'funnel':
      return funnel(input);
    case 'retention':
      return retention(input);
    case 'routes':
      return routes(input);
    case 'logs':
      return logs(input);
    case 'explore':
      return explore(input);
  }
}
