/**
 * `tally query <kind>`: flags to a query (the same JSON `POST /v1/query` takes, checked by parseQuery
 * before anything is opened), and the answer as an aligned table, CSV or JSON. A mistake names the flag
 * it came from, not the field of the JSON, unless the query was given as JSON (`--query`).
 *
 * Flag syntax, kept small (docs/query.md "CLI"; anything else: `--query '<json>'`):
 *   --filter 'PATH OP VALUE'  OP: = != > >= < <= ~ (contains); `=a,b` and `!=a,b` are in / not in. VALUE
 *                             is a number or true/false when it reads as one, text otherwise ("42" in
 *                             double quotes stays text). `A:PATH=V` (a series letter) or `2:PATH=V` (a
 *                             step number) applies it to that series or step only; otherwise to all.
 *   --step 'EVENT@1h'         a funnel step with its window from the step before.
 *   --exclude 'EVENT@2-3'     an exclusion between steps 2 and 3 (1-based; default first to last).
 */
import { readFileSync } from 'node:fs';
import { csvTable, isTallyError, parseQuery, type Query, type QueryKind } from '@tally/core';
import type { QueryAnswer } from './admin/ops.js';
import { type CommandSpec, type OptionSpec, UsageError } from './cli-args.js';

type Options = Record<string, string | boolean | string[] | undefined>;

export interface QueryCommandSpec extends CommandSpec {
  kind: QueryKind;
}

const RANGE: Record<string, OptionSpec> = {
  last: { type: 'string', arg: 'N', help: 'the last N hours, days or weeks: 24h, 30d, 12w (default 30d)' },
  this: { type: 'string', arg: 'UNIT', help: 'this day, week, month or year so far' },
  previous: { type: 'string', arg: 'UNIT', help: 'the whole previous day, week, month or year' },
  from: { type: 'string', arg: 'TIME', help: 'start (ISO date or time; without a zone, in --tz), with --to' },
  to: { type: 'string', arg: 'TIME', help: 'end, exclusive' },
  tz: { type: 'string', arg: 'ZONE', help: 'IANA time zone for days, hours and ranges (default UTC)' },
};

const COMMON: Record<string, OptionSpec> = {
  tenant: { type: 'string', arg: 'T', help: 'the tenant (default: the only one there is)' },
  format: { type: 'string', arg: 'F', help: 'table (default), csv or json' },
  explain: { type: 'boolean', help: 'also say how it was answered (rollup or detail, and why)' },
  query: { type: 'string', arg: 'JSON', help: 'the whole query as JSON instead of the flags' },
  'query-file': { type: 'string', arg: 'FILE', help: 'the whole query from a JSON file' },
};

const FILTER: OptionSpec = {
  type: 'string',
  arg: 'F',
  multiple: true,
  help: "a condition, e.g. 'properties.plan=pro' (= != > >= < <= ~; repeatable; A: or 2: for one series/step)",
};
const BREAKDOWN: Record<string, OptionSpec> = {
  breakdown: { type: 'string', arg: 'PATH', help: 'group by a property: properties.<key>, context.<key>, userId…' },
  'breakdown-limit': { type: 'string', arg: 'N', help: 'top N values, the rest as "other" (default 10)' },
};

const TAIL =
  'Range: --last 30d (default), --this month, --previous week or --from/--to. Output: --format table|csv|json.';

export const QUERY_COMMANDS: QueryCommandSpec[] = [
  {
    kind: 'trends',
    name: 'query trends',
    summary: 'event counts (or another measure) over time, by series, breakdown, formula',
    usage: [
      'query trends --event E [--event E2…] [--measure M] [--property P] [--interval I] [--breakdown P] [--formula F] [--filter F]',
    ],
    about:
      'One series per --event (A, B, C… in order); --measure and --property once for all series, or once\n' +
      'per series in order. Examples:\n' +
      '  tally query trends --event conversation_started --interval day --last 30d --breakdown properties.channel\n' +
      "  tally query trends --event conversation_started --event escalation_triggered --formula 'B / A'\n" +
      '  tally query trends --event reply_sent --measure p95 --property properties.latencyMs --interval hour --last 24h\n' +
      TAIL,
    options: {
      event: { type: 'string', arg: 'E', multiple: true, help: 'an event name: one series each (repeatable)' },
      measure: {
        type: 'string',
        arg: 'M',
        multiple: true,
        help: 'count (default), unique_users, sum, avg, min, max, p50, p90, p95, p99',
      },
      property: { type: 'string', arg: 'P', multiple: true, help: 'the numeric property of sum … p99' },
      interval: { type: 'string', arg: 'I', help: 'hour, day (default), week or month' },
      ...BREAKDOWN,
      compare: { type: 'boolean', help: 'also the previous period of the same length' },
      formula: { type: 'string', arg: 'F', help: "arithmetic over series letters, e.g. 'B / A'" },
      filter: FILTER,
      ...RANGE,
      ...COMMON,
    },
    settings: true,
  },
  {
    kind: 'funnel',
    name: 'query funnel',
    summary: 'how many users go through steps in order, and how long they take',
    usage: ['query funnel --step E1 --step E2[@WINDOW]… [--window W] [--order O] [--exclude E[@A-B]] [--breakdown P]'],
    about:
      'Users (user id, else anonymous id) who do each step, with conversion and time to convert. A step\n' +
      "may carry its own window from the step before: --step 'escalation_triggered@1h'. Example:\n" +
      "  tally query funnel --step conversation_started --step 'escalation_triggered@1h' --window 1d\n" +
      TAIL,
    options: {
      step: {
        type: 'string',
        arg: 'E[@W]',
        multiple: true,
        help: 'a step (2–20, in order); @W: its window, e.g. @30m',
      },
      window: { type: 'string', arg: 'W', help: 'first step to last, e.g. 1h, 7d (default 14d)' },
      order: { type: 'string', arg: 'O', help: 'ordered (default), strict or any' },
      exclude: {
        type: 'string',
        arg: 'E[@A-B]',
        multiple: true,
        help: 'drop users who do E between steps A and B (1-based; default first to last)',
      },
      ...BREAKDOWN,
      filter: FILTER,
      ...RANGE,
      ...COMMON,
    },
    settings: true,
  },
  {
    kind: 'retention',
    name: 'query retention',
    summary: 'cohorts by first event, and how many come back each period',
    usage: ['query retention --start E --return E2 [--period P] [--periods N] [--mode M]'],
    about:
      'Example:\n  tally query retention --start conversation_started --return conversation_started --period week --periods 8\n' +
      TAIL,
    options: {
      start: { type: 'string', arg: 'E', help: 'the event that puts a user in a cohort' },
      return: { type: 'string', arg: 'E', help: 'the event that counts as coming back' },
      period: { type: 'string', arg: 'P', help: 'day, week (default) or month' },
      periods: { type: 'string', arg: 'N', help: 'periods after the first (default 8, at most 52)' },
      mode: { type: 'string', arg: 'M', help: 'first_time (default) or recurring' },
      filter: FILTER,
      ...RANGE,
      ...COMMON,
    },
    settings: true,
  },
  {
    kind: 'routes',
    name: 'query routes',
    summary: 'request counts, error rates and latency percentiles per route',
    usage: ['query routes [--route R] [--method M] [--status-class C] [--sort S] [--limit N] [--interval I]'],
    about:
      'Examples:\n  tally query routes --sort p95 --limit 20\n  tally query routes --route /users/:id --interval hour --last 24h\n' +
      TAIL,
    options: {
      route: { type: 'string', arg: 'R', help: 'one route, as the framework names it (/users/:id)' },
      method: { type: 'string', arg: 'M', help: 'GET, POST, …' },
      'status-class': { type: 'string', arg: 'C', help: '1xx … 5xx' },
      sort: { type: 'string', arg: 'S', help: 'count (default), errors, error_rate, p50, p95 or p99' },
      limit: { type: 'string', arg: 'N', help: 'routes to show (default 10)' },
      interval: { type: 'string', arg: 'I', help: 'one route over time: hour, day, week or month' },
      ...RANGE,
      ...COMMON,
    },
    settings: true,
  },
  {
    kind: 'logs',
    name: 'query logs',
    summary: 'search request logs (newest first), page by page',
    usage: [
      'query logs [--status N|4xx] [--route R] [--method M] [--user U] [--key K] [--url TEXT] [--limit N] [--cursor C]',
    ],
    about:
      'Examples:\n  tally query logs --status 5xx --last 24h\n  tally query logs --user u-42 --url /checkout\n' +
      'The answer ends with the --cursor of the next page when there is one. ' +
      TAIL,
    options: {
      status: { type: 'string', arg: 'N', help: 'a status (404) or a class (5xx)' },
      route: { type: 'string', arg: 'R', help: 'a route (/users/:id)' },
      method: { type: 'string', arg: 'M', help: 'GET, POST, …' },
      user: { type: 'string', arg: 'U', help: "a user id's requests" },
      key: { type: 'string', arg: 'K', help: "an API key id's requests" },
      url: { type: 'string', arg: 'TEXT', help: 'text the URL contains' },
      limit: { type: 'string', arg: 'N', help: 'logs per page (default 50, at most 200)' },
      cursor: { type: 'string', arg: 'C', help: 'the next page, as the previous answer said' },
      ...RANGE,
      ...COMMON,
    },
    settings: true,
  },
  {
    kind: 'explore',
    name: 'query explore',
    summary: 'event names with volume and last seen; with --event, its properties and top values',
    usage: ['query explore [--event E] [--limit N]'],
    about: 'Examples:\n  tally query explore\n  tally query explore --event conversation_started\n' + TAIL,
    options: {
      event: { type: 'string', arg: 'E', help: "this event's property keys, types and top values" },
      limit: { type: 'string', arg: 'N', help: 'rows (default 100)' },
      ...RANGE,
      ...COMMON,
    },
    settings: true,
  },
];

const str = (v: Options[string]): string | undefined => (typeof v === 'string' ? v : undefined);
const many = (v: Options[string]): string[] => (Array.isArray(v) ? v : typeof v === 'string' ? [v] : []);

/** A whole number flag, or a usage error naming it. */
function whole(o: Options, flag: string): number | undefined {
  const v = str(o[flag]);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${flag} must be a whole number, not "${v}"`);
  return Number(v);
}

/** A filter value as typed: a number or boolean when it reads as one, text otherwise. */
function value(text: string): string | number | boolean {
  const quoted = /^"(.*)"$/s.exec(text);
  if (quoted) return quoted[1] as string;
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  return text;
}

const OPS: [string, string][] = [
  ['!=', 'neq'],
  ['>=', 'gte'],
  ['<=', 'lte'],
  ['=', 'eq'],
  ['>', 'gt'],
  ['<', 'lt'],
  ['~', 'contains'],
];

interface ParsedFilter {
  /** Series letter index or step index (0-based) it applies to; undefined: all. */
  target?: number;
  filter: { property: string; op: string; value: unknown };
}

/** `[A:|2:]PATH OP VALUE` (see the module comment). */
export function parseFilter(text: string, targets: 'letters' | 'numbers'): ParsedFilter {
  let rest = text.trim();
  let target: number | undefined;
  const prefix = /^([A-Za-z]|\d+):(?=[A-Za-z])/.exec(rest);
  if (prefix) {
    const p = prefix[1] as string;
    if (/^\d+$/.test(p)) {
      if (targets === 'letters') throw new UsageError(`--filter '${text}': name a series by its letter (A:, B:…)`);
      target = Number(p) - 1;
      if (target < 0) throw new UsageError(`--filter '${text}': steps are numbered from 1`);
    } else {
      if (targets === 'numbers') throw new UsageError(`--filter '${text}': name a step by its number (1:, 2:…)`);
      target = p.toUpperCase().charCodeAt(0) - 65;
    }
    rest = rest.slice(prefix[0].length);
  }
  const at = rest.search(/[!=<>~]/);
  if (at <= 0) {
    throw new UsageError(`--filter '${text}' is not PATH OP VALUE, e.g. 'properties.plan=pro' (OP: = != > >= < <= ~)`);
  }
  const property = rest.slice(0, at).trim();
  const [symbol, op] = OPS.find(([s]) => rest.startsWith(s, at)) ?? [];
  if (symbol === undefined || op === undefined) {
    throw new UsageError(`--filter '${text}': unknown operator; use = != > >= < <= or ~ (contains)`);
  }
  const raw = rest.slice(at + symbol.length).trim();
  if ((op === 'eq' || op === 'neq') && raw.includes(',') && !/^".*"$/s.test(raw)) {
    return {
      target,
      filter: { property, op: op === 'eq' ? 'in' : 'nin', value: raw.split(',').map((v) => value(v.trim())) },
    };
  }
  return { target, filter: { property, op, value: op === 'contains' ? raw : value(raw) } };
}

/** `EVENT@SUFFIX` when SUFFIX matches `suffix`; otherwise the whole text is the event. */
function splitAt(text: string, suffix: RegExp): [string, string | undefined] {
  const at = text.lastIndexOf('@');
  if (at > 0 && suffix.test(text.slice(at + 1))) return [text.slice(0, at), text.slice(at + 1)];
  return [text, undefined];
}

function range(o: Options): Record<string, string> | undefined {
  const given = ['last', 'this', 'previous', 'from'].filter((k) => o[k] !== undefined);
  if (o.to !== undefined && o.from === undefined) throw new UsageError('--to needs --from');
  if (o.from !== undefined && o.to === undefined) throw new UsageError('--from needs --to');
  if (given.length > 1) {
    throw new UsageError(`give one range: --${given[0]} and --${given[1]} do not go together`);
  }
  if (o.last !== undefined) return { last: str(o.last) as string };
  if (o.this !== undefined) return { this: str(o.this) as string };
  if (o.previous !== undefined) return { previous: str(o.previous) as string };
  if (o.from !== undefined) return { from: str(o.from) as string, to: str(o.to) as string };
  return undefined;
}

/** Every option a kind's flags may set (the rest of the command's options: tenant, format, query…). */
const MODEL_FLAGS = (spec: QueryCommandSpec) =>
  Object.keys(spec.options ?? {}).filter((k) => !['tenant', 'format', 'query', 'query-file'].includes(k));

/** The query the flags describe (JSON, not yet checked). */
export function buildQuery(spec: QueryCommandSpec, o: Options): Record<string, unknown> {
  const inline = str(o.query);
  const file = str(o['query-file']);
  if (inline !== undefined || file !== undefined) {
    if (inline !== undefined && file !== undefined) throw new UsageError('give --query or --query-file, not both');
    const extra = MODEL_FLAGS(spec).filter((k) => o[k] !== undefined);
    if (extra.length > 0) {
      throw new UsageError(
        `--query${file !== undefined ? '-file' : ''} is the whole query: drop --${extra.join(', --')}`,
      );
    }
    let text = inline as string;
    if (file !== undefined) {
      try {
        text = readFileSync(file, 'utf8');
      } catch (e) {
        throw new UsageError(`--query-file ${file}: ${(e as Error).message}`);
      }
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--query${file !== undefined ? '-file' : ''} is not JSON: ${(e as Error).message}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new UsageError('--query must be a JSON object ({"kind": …})');
    }
    const q = json as Record<string, unknown>;
    if (q.kind === undefined) return { kind: spec.kind, ...q };
    if (q.kind !== spec.kind) {
      throw new UsageError(`the query's kind is ${JSON.stringify(q.kind)}: run it with tally query ${String(q.kind)}`);
    }
    return q;
  }

  const q: Record<string, unknown> = { kind: spec.kind };
  const r = range(o);
  if (r) q.range = r;
  if (o.tz !== undefined) q.tz = o.tz;
  if (o.explain === true) q.explain = true;
  const breakdown = () => {
    if (o.breakdown === undefined) {
      if (o['breakdown-limit'] !== undefined) throw new UsageError('--breakdown-limit needs --breakdown');
      return;
    }
    q.breakdown = {
      property: o.breakdown,
      ...(o['breakdown-limit'] !== undefined ? { limit: whole(o, 'breakdown-limit') } : {}),
    };
  };
  const filtersFor = (count: number, targets: 'letters' | 'numbers') => {
    const lists: Record<string, unknown>[][] = Array.from({ length: count }, () => []);
    for (const text of many(o.filter)) {
      const { target, filter } = parseFilter(text, targets);
      if (target !== undefined && target >= count) {
        const what = targets === 'letters' ? `series ${String.fromCharCode(65 + target)}` : `step ${target + 1}`;
        throw new UsageError(`--filter '${text}': there is no ${what}`);
      }
      for (let i = 0; i < count; i++) if (target === undefined || target === i) lists[i]?.push(filter);
    }
    return lists;
  };

  switch (spec.kind) {
    case 'trends': {
      const events = many(o.event);
      if (events.length === 0) throw new UsageError('which events? --event E (one series each)');
      const measures = many(o.measure);
      const properties = many(o.property);
      for (const [flag, list] of [
        ['measure', measures],
        ['property', properties],
      ] as const) {
        if (list.length > 1 && list.length !== events.length) {
          throw new UsageError(`--${flag} once for all series, or once per --event (${events.length})`);
        }
      }
      const filters = filtersFor(events.length, 'letters');
      q.series = events.map((event, i) => {
        const s: Record<string, unknown> = { event };
        const measure = measures.length > 1 ? measures[i] : measures[0];
        const property = properties.length > 1 ? properties[i] : properties[0];
        if (measure !== undefined) s.measure = measure;
        if (property !== undefined) s.property = property;
        if ((filters[i] ?? []).length > 0) s.filters = filters[i];
        return s;
      });
      if (o.interval !== undefined) q.interval = o.interval;
      breakdown();
      if (o.compare === true) q.compare = 'previous_period';
      if (o.formula !== undefined) q.formula = o.formula;
      break;
    }
    case 'funnel': {
      const steps = many(o.step);
      if (steps.length < 2) throw new UsageError('a funnel needs at least two steps: --step E1 --step E2');
      const filters = filtersFor(steps.length, 'numbers');
      q.steps = steps.map((text, i) => {
        // A suffix starting with a digit is meant as a window: a typo in it is refused, not taken as a name.
        const [event, window] = splitAt(text, /^\d/);
        const s: Record<string, unknown> = { event };
        if (window !== undefined) s.window = window;
        if ((filters[i] ?? []).length > 0) s.filters = filters[i];
        return s;
      });
      if (o.window !== undefined) q.window = o.window;
      if (o.order !== undefined) q.order = o.order;
      const exclusions = many(o.exclude).map((text) => {
        const [event, between] = splitAt(text, /^\d/);
        const e: Record<string, unknown> = { event };
        if (between !== undefined) {
          if (!/^\d+-\d+$/.test(between)) {
            throw new UsageError(`--exclude '${text}': after @ give the steps it lies between, e.g. @1-2`);
          }
          const [a, b] = between.split('-').map(Number) as [number, number];
          e.from = a - 1;
          e.to = b - 1;
        }
        return e;
      });
      if (exclusions.length > 0) q.exclusions = exclusions;
      breakdown();
      break;
    }
    case 'retention': {
      if (o.start === undefined) throw new UsageError('which start event? --start E');
      if (o.return === undefined) throw new UsageError('which return event? --return E');
      const filters = many(o.filter).map((t) => parseFilter(t, 'numbers'));
      const on = (n: number) => filters.filter((f) => f.target === undefined || f.target === n).map((f) => f.filter);
      if (filters.some((f) => f.target !== undefined && f.target > 1)) {
        throw new UsageError('--filter: 1: is the start event, 2: the return event');
      }
      q.start = { event: o.start, ...(on(0).length > 0 ? { filters: on(0) } : {}) };
      q.return = { event: o.return, ...(on(1).length > 0 ? { filters: on(1) } : {}) };
      if (o.period !== undefined) q.period = o.period;
      if (o.periods !== undefined) q.periods = whole(o, 'periods');
      if (o.mode !== undefined) q.mode = o.mode;
      break;
    }
    case 'routes': {
      if (o.sort !== undefined) q.sort = o.sort;
      if (o.limit !== undefined) q.limit = whole(o, 'limit');
      if (o.method !== undefined) q.method = str(o.method)?.toUpperCase();
      if (o.route !== undefined) q.route = o.route;
      if (o['status-class'] !== undefined) q.statusClass = str(o['status-class'])?.toLowerCase();
      if (o.interval !== undefined) q.interval = o.interval;
      break;
    }
    case 'logs': {
      const f: Record<string, unknown> = {};
      const status = str(o.status);
      if (status !== undefined) {
        if (/^[1-5]xx$/i.test(status)) f.statusClass = status.toLowerCase();
        else if (/^\d{3}$/.test(status)) f.status = Number(status);
        else throw new UsageError(`--status must be a status (404) or a class (1xx … 5xx), not "${status}"`);
      }
      if (o.route !== undefined) f.route = o.route;
      if (o.method !== undefined) f.method = str(o.method)?.toUpperCase();
      if (o.user !== undefined) f.userId = o.user;
      if (o.key !== undefined) f.apiKeyId = o.key;
      if (o.url !== undefined) f.url = o.url;
      if (Object.keys(f).length > 0) q.filters = f;
      if (o.limit !== undefined) q.limit = whole(o, 'limit');
      if (o.cursor !== undefined) q.cursor = o.cursor;
      break;
    }
    case 'explore': {
      if (o.event !== undefined) {
        q.what = 'properties';
        q.event = o.event;
      }
      if (o.limit !== undefined) q.limit = whole(o, 'limit');
      break;
    }
  }
  return q;
}

/** The flag a field of the query came from (`series[1].measure` → `--measure`), for messages. */
export function flagOf(kind: QueryKind, path: string): string {
  const p = path.replace(/\[\d+\]/g, '[]');
  if (p.startsWith('range.')) return `--${p.slice(6)}`;
  if (p === 'range') return '--last/--this/--previous/--from';
  if (p === 'tz') return '--tz';
  if (p === 'breakdown.property' || p === 'breakdown') return '--breakdown';
  if (p === 'breakdown.limit') return '--breakdown-limit';
  if (p.includes('.filters')) return '--filter';
  const table: Partial<Record<QueryKind, Record<string, string>>> = {
    trends: {
      series: '--event',
      'series[]': '--event',
      'series[].event': '--event',
      'series[].measure': '--measure',
      'series[].property': '--property',
      interval: '--interval',
      compare: '--compare',
      formula: '--formula',
    },
    funnel: {
      steps: '--step',
      'steps[]': '--step',
      'steps[].event': '--step',
      'steps[].window': '--step (its @window)',
      window: '--window',
      order: '--order',
      exclusions: '--exclude',
      'exclusions[].event': '--exclude',
      'exclusions[].from': '--exclude (its @A-B)',
      'exclusions[].to': '--exclude (its @A-B)',
    },
    retention: {
      'start.event': '--start',
      'return.event': '--return',
      period: '--period',
      periods: '--periods',
      mode: '--mode',
    },
    routes: {
      sort: '--sort',
      limit: '--limit',
      method: '--method',
      route: '--route',
      statusClass: '--status-class',
      interval: '--interval',
    },
    logs: {
      'filters.status': '--status',
      'filters.statusClass': '--status',
      'filters.method': '--method',
      'filters.route': '--route',
      'filters.userId': '--user',
      'filters.apiKeyId': '--key',
      'filters.url': '--url',
      limit: '--limit',
      cursor: '--cursor',
    },
    explore: { event: '--event', limit: '--limit', what: '--event' },
  };
  return table[kind]?.[p] ?? path;
}

/**
 * Checks the query as the server would; a mistake is a usage error naming the flag (or, for a query given
 * as JSON, the field).
 */
export function checkQuery(spec: QueryCommandSpec, q: Record<string, unknown>, fromJson: boolean): Query {
  const parsed = parseQuery(q);
  if (parsed.ok) return parsed.query;
  const path = typeof parsed.error.details.path === 'string' ? parsed.error.details.path : '';
  const message = parsed.error.message.replace(/^[^:]*: /, '');
  if (fromJson || path === '') throw new UsageError(parsed.error.message);
  const flag = flagOf(spec.kind, path);
  throw new UsageError(flag === path ? parsed.error.message : `${flag}: ${message} (${path})`);
}

export type OutputFormat = 'table' | 'csv' | 'json';

export function outputFormat(o: Options): OutputFormat {
  const f = str(o.format) ?? 'table';
  if (f !== 'table' && f !== 'csv' && f !== 'json') {
    throw new UsageError(`--format must be table, csv or json, not "${f}"`);
  }
  return f;
}

/** The answer in the format asked for; `tz` shows times of a table in the query's zone. */
export function render(answer: QueryAnswer, format: OutputFormat, query: Query): string {
  const { tz, kind } = query;
  if (format === 'json') return `${JSON.stringify(answer, null, 2)}\n`;
  if (format === 'csv') {
    return csvTable(
      answer.columns.map((c) => c.name),
      answer.rows,
    );
  }
  const { columns, rows, meta } = answer;
  const times = timeFormat(columns, rows, tz);
  const cells = rows.map((row) =>
    row.map((cell, i) => {
      const type = columns[i]?.type;
      if (cell === null) return '';
      if (type === 'time' && typeof cell === 'string') return times(cell);
      if (typeof cell === 'number') return formatNumber(cell);
      const text = typeof cell === 'string' ? cell : JSON.stringify(cell);
      return text.length > 60 ? `${text.slice(0, 59)}…` : text;
    }),
  );
  const head = columns.map((c) => c.name);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const right = columns.map((c) => c.type === 'number');
  const line = (r: string[]) =>
    r
      .map((c, i) => (right[i] ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  let out = rows.length === 0 ? 'no rows\n' : `${[line(head), ...cells.map(line)].join('\n')}\n`;
  const about = [
    `${rows.length} row${rows.length === 1 ? '' : 's'}`,
    `from ${meta.source}`,
    `${meta.ms} ms`,
    `${meta.range.from} – ${meta.range.to}`,
  ];
  if (meta.truncated) about.push('truncated');
  out += `\n${about.join(' · ')}\n`;
  if (query.kind === 'trends') {
    out += `series: ${query.series.map((s, i) => `${String.fromCharCode(65 + i)} = ${s.event}`).join(', ')}\n`;
  }
  if (meta.explain) out += `explain: ${meta.explain.source}: ${meta.explain.reason}\n`;
  if (meta.next) out += `next page: tally query ${kind} … --cursor ${meta.next}\n`;
  return out;
}

function formatNumber(n: number): string {
  if (Number.isInteger(n)) return String(n);
  const abs = Math.abs(n);
  return abs >= 100 ? n.toFixed(1) : abs >= 1 ? n.toFixed(2) : n.toPrecision(3);
}

/** Times in `tz`: `YYYY-MM-DD` when every time of the answer is a local midnight, `YYYY-MM-DD HH:MM` else. */
function timeFormat(columns: QueryAnswer['columns'], rows: QueryAnswer['rows'], tz: string): (iso: string) => string {
  const fmt = new Intl.DateTimeFormat('en-CA', {
    timeZone: tz,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  });
  const parts = (iso: string) => {
    const ms = Date.parse(iso);
    if (!Number.isFinite(ms)) return undefined;
    const p = Object.fromEntries(fmt.formatToParts(ms).map((x) => [x.type, x.value]));
    return { date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}`, seconds: p.second };
  };
  const timeColumns = columns.flatMap((c, i) => (c.type === 'time' ? [i] : []));
  let midnights = true;
  let wholeMinutes = true;
  for (const row of rows) {
    for (const i of timeColumns) {
      const v = row[i];
      if (typeof v !== 'string') continue;
      const p = parts(v);
      if (p && p.time !== '00:00') midnights = false;
      if (p && p.seconds !== '00') wholeMinutes = false;
    }
  }
  return (iso) => {
    const p = parts(iso);
    if (!p) return iso;
    if (midnights) return p.date;
    return `${p.date} ${p.time}${wholeMinutes ? '' : `:${p.seconds}`}`;
  };
}

/** A TallyError of a query, said with the flag it came from. */
export function explainError(kind: QueryKind, e: unknown, fromJson: boolean): string | undefined {
  if (!isTallyError(e) || typeof e.details.path !== 'string' || fromJson) return undefined;
  const flag = flagOf(kind, e.details.path);
  return flag === e.details.path ? undefined : `${e.code}: ${flag}: ${e.message.replace(/^[^:]*: /, '')}`;
}
