/**
 * The query model: one JSON-serializable value per question, shared by the HTTP API, the CLI and the
 * dashboard, and compiled by each analytics store to its own SQL. Everything a user typed stays a plain
 * string here (event names, property keys, filter values); engines bind them as parameters, never as SQL.
 * parseQuery (validate.ts) is the only way in: it checks every field and fills the defaults, so a `Query`
 * value always has them.
 */

/** Calendar units of `this` / `previous` ranges, in the query's time zone. */
export type CalendarUnit = 'day' | 'week' | 'month' | 'year';

/** Bucket widths of series over time; weeks are ISO weeks (Monday 00:00 local). */
export type Interval = 'hour' | 'day' | 'week' | 'month';

/**
 * A time range. Absolute bounds are ISO times (with a zone: that instant; without one: a wall time in
 * `tz`), half-open `[from, to)`. `last` is `<n>h | <n>d | <n>w`: whole units ending with the current one.
 * `this` runs from the start of the current unit to now; `previous` is the whole unit before it.
 */
export type QueryRange =
  { from: string; to: string } | { last: string } | { this: CalendarUnit } | { previous: CalendarUnit };

/**
 * A property path: `properties.<key>[.<key>…]` (the event's properties), `context.<key>[.<key>…]` (its
 * context), or one of the top-level columns `userId`, `anonymousId`, `name`. Keys are plain strings
 * (no dots; at most 5 of them); parsePropertyPath splits one for an engine.
 */
export type PropertyPath = string;

export type FilterOp = 'eq' | 'neq' | 'in' | 'nin' | 'contains' | 'gt' | 'gte' | 'lt' | 'lte' | 'is_set' | 'is_not_set';

export type FilterScalar = string | number | boolean;

/**
 * One condition on a property. `value` is a scalar for eq/neq, a non-empty array for in/nin, a string for
 * contains, a number or string for gt/gte/lt/lte, and absent for is_set/is_not_set.
 */
export interface PropertyFilter {
  property: PropertyPath;
  op: FilterOp;
  value?: FilterScalar | FilterScalar[];
}

/** An event name with conditions on it (filters are ANDed). */
export interface EventSelector {
  event: string;
  filters: PropertyFilter[];
}

/**
 * A selector that may also name every event: `event: null` is "all events" (each event once, whatever its
 * name). Trends series and retention's start and return take one; funnel steps and exclusions name an
 * event, since "any event" as a step would match every step at once.
 */
export interface AnyEventSelector {
  event: string | null;
  filters: PropertyFilter[];
}

/** Group a result by a property's values: the top `limit` values, the rest summed as "other". */
export interface Breakdown {
  property: PropertyPath;
  limit: number;
}

/** Parameters every kind shares. */
export interface QueryCommon {
  range: QueryRange;
  /** IANA time zone name; hours, days and the relative ranges are reckoned in it. */
  tz: string;
  /** Answer with how the engine would run it (rollup or detail, and why) as well. */
  explain: boolean;
}

export type Measure = 'count' | 'unique_users' | 'sum' | 'avg' | 'min' | 'max' | 'p50' | 'p90' | 'p95' | 'p99';

/** The measures of a numeric property: they need `property`; the others must not have one. */
export const NUMERIC_MEASURES: readonly Measure[] = ['sum', 'avg', 'min', 'max', 'p50', 'p90', 'p95', 'p99'];

export interface TrendsSeries extends AnyEventSelector {
  measure: Measure;
  property?: PropertyPath;
}

export interface TrendsQuery extends QueryCommon {
  kind: 'trends';
  /** Series A, B, C… in order: formulas name them by letter. */
  series: TrendsSeries[];
  interval: Interval;
  breakdown?: Breakdown;
  compare?: 'previous_period';
  /** Arithmetic over series letters, e.g. `B / A` (see parseFormula). */
  formula?: string;
}

export interface FunnelStep extends EventSelector {
  /** Longest time from the previous step to this one (`30m`, `1h`, `7d`); the first step has none. */
  window?: string;
}

/** An event that disqualifies a user when it happens between step `from` and step `to` (indexes). */
export interface FunnelExclusion extends EventSelector {
  from: number;
  to: number;
}

/**
 * `ordered`: steps in order, other events in between allowed; `strict`: no other event in between;
 * `any`: each step at any time within the window, order ignored.
 */
export type FunnelOrder = 'ordered' | 'strict' | 'any';

export interface FunnelQuery extends QueryCommon {
  kind: 'funnel';
  steps: FunnelStep[];
  /** Longest time from the first step to the last. */
  window: string;
  order: FunnelOrder;
  exclusions: FunnelExclusion[];
  breakdown?: Breakdown;
}

export interface RetentionQuery extends QueryCommon {
  kind: 'retention';
  /** The event that puts a user in a cohort (the period it happened in; see `mode`). */
  start: AnyEventSelector;
  return: AnyEventSelector;
  period: 'day' | 'week' | 'month';
  periods: number;
  /** `first_time`: cohorts by the first start event ever; `recurring`: by every start event. */
  mode: 'first_time' | 'recurring';
}

export type RouteSort = 'count' | 'errors' | 'error_rate' | 'p50' | 'p95' | 'p99';
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx';
export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

export interface RoutesQuery extends QueryCommon {
  kind: 'routes';
  sort: RouteSort;
  limit: number;
  method?: HttpMethod;
  /** One route (as the framework names it, e.g. `/users/:id`). */
  route?: string;
  statusClass?: StatusClass;
  /** One route over time: buckets of this width instead of a table of routes. */
  interval?: Interval;
}

export interface LogFilters {
  status?: number;
  statusClass?: StatusClass;
  method?: HttpMethod;
  route?: string;
  userId?: string;
  apiKeyId?: string;
  /** Text the URL contains (a substring, matched literally). */
  url?: string;
}

export interface LogsQuery extends QueryCommon {
  kind: 'logs';
  filters: LogFilters;
  /** Opaque paging cursor from the previous page's answer. */
  cursor?: string;
  limit: number;
}

export interface ExploreQuery extends QueryCommon {
  kind: 'explore';
  /** `events`: names with volume and last seen; `properties`: keys with types and top values. */
  what: 'events' | 'properties';
  /** Only this event's properties (for `properties`). */
  event?: string;
  limit: number;
}

export type Query = TrendsQuery | FunnelQuery | RetentionQuery | RoutesQuery | LogsQuery | ExploreQuery;
export type QueryKind = Query['kind'];
export const QUERY_KINDS: readonly QueryKind[] = ['trends', 'funnel', 'retention', 'routes', 'logs', 'explore'];

/** Limits parseQuery enforces; engines may rely on them. */
export const QUERY_LIMITS = {
  series: 10,
  steps: 20,
  filters: 50,
  string: 200,
  pathDepth: 5,
  rangeDays: 400,
  /** Hourly buckets beyond this many days would be thousands of points: ask for days instead. */
  hourlyRangeDays: 31,
  periods: 52,
  inValues: 100,
  breakdownLimit: 100,
  routesLimit: 1000,
  logsLimit: 200,
  exploreLimit: 1000,
  /** Funnel windows, overall and per step. */
  windowDays: 90,
} as const;
