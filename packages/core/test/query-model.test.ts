import { describe, expect, it } from 'vitest';
import { ErrorCodes, parseFormula, parsePropertyPath, parseQuery, type Query } from '../src/index.js';

function ok(input: unknown): Query {
  const r = parseQuery(input);
  if (!r.ok) throw new Error(`expected ok, got ${r.error.message}`);
  return r.query;
}

const base = { explain: false, range: { last: '30d' }, tz: 'UTC' };

describe('parseQuery: every kind with its defaults', () => {
  it('trends', () => {
    expect(ok({ kind: 'trends', series: [{ event: 'conversation_started' }] })).toEqual({
      kind: 'trends',
      ...base,
      series: [{ event: 'conversation_started', filters: [], measure: 'count' }],
      interval: 'day',
    });
  });

  it('trends with breakdown, compare, formula and a numeric measure', () => {
    const q = ok({
      kind: 'trends',
      tz: 'Europe/Berlin',
      range: { this: 'month' },
      series: [
        { event: 'conversation_started' },
        { event: 'escalation_triggered', filters: [{ property: 'context.channel', op: 'in', value: ['web', 'sms'] }] },
        { event: 'reply_sent', measure: 'p95', property: 'properties.latency.ms' },
      ],
      breakdown: { property: 'properties.plan' },
      compare: 'previous_period',
      formula: 'B / A',
    });
    expect(q).toMatchObject({
      breakdown: { property: 'properties.plan', limit: 10 },
      formula: 'B / A',
      tz: 'Europe/Berlin',
    });
  });

  it('funnel', () => {
    expect(
      ok({ kind: 'funnel', steps: [{ event: 'a' }, { event: 'b', window: '1h' }], exclusions: [{ event: 'x' }] }),
    ).toEqual({
      kind: 'funnel',
      ...base,
      steps: [
        { event: 'a', filters: [] },
        { event: 'b', filters: [], window: '1h' },
      ],
      window: '14d',
      order: 'ordered',
      exclusions: [{ event: 'x', filters: [], from: 0, to: 1 }],
    });
  });

  it('all events: event null in a trends series and in retention, never in a funnel', () => {
    const t = ok({ kind: 'trends', series: [{ event: null, measure: 'unique_users' }] });
    expect(t.kind === 'trends' && t.series[0]).toEqual({ event: null, filters: [], measure: 'unique_users' });
    const r = ok({ kind: 'retention', start: { event: null }, return: { event: null } });
    expect(r.kind === 'retention' && [r.start, r.return]).toEqual([
      { event: null, filters: [] },
      { event: null, filters: [] },
    ]);
    const funnel = parseQuery({ kind: 'funnel', steps: [{ event: null }, { event: 'b' }] });
    expect(funnel.ok || funnel.error.details).toEqual({ path: 'steps[0].event' });
  });

  it('retention', () => {
    expect(ok({ kind: 'retention', start: { event: 'signup' }, return: { event: 'login' } })).toEqual({
      kind: 'retention',
      ...base,
      start: { event: 'signup', filters: [] },
      return: { event: 'login', filters: [] },
      period: 'week',
      periods: 8,
      mode: 'first_time',
    });
  });

  it('routes', () => {
    expect(ok({ kind: 'routes' })).toEqual({ kind: 'routes', ...base, sort: 'count', limit: 10 });
    expect(
      ok({
        kind: 'routes',
        route: '/users/:id',
        method: 'GET',
        statusClass: '5xx',
        interval: 'hour',
        range: { last: '24h' },
      }),
    ).toMatchObject({
      route: '/users/:id',
      interval: 'hour',
    });
  });

  it('logs', () => {
    expect(ok({ kind: 'logs' })).toEqual({ kind: 'logs', ...base, filters: {}, limit: 50 });
    expect(ok({ kind: 'logs', filters: { status: 500, url: "'; DROP TABLE events; --" }, limit: 200 })).toMatchObject({
      filters: { status: 500, url: "'; DROP TABLE events; --" },
    });
  });

  it('explore', () => {
    expect(ok({ kind: 'explore' })).toEqual({ kind: 'explore', ...base, what: 'events', limit: 100 });
    expect(ok({ kind: 'explore', what: 'properties', event: 'signup', explain: true })).toMatchObject({
      event: 'signup',
      explain: true,
    });
  });

  it('keeps hostile strings as data: keys and values pass through unchanged', () => {
    const key = `a'"); DROP TABLE events; --`;
    const q = ok({
      kind: 'trends',
      series: [{ event: key, filters: [{ property: `properties.${key}`, op: 'eq', value: key }] }],
    });
    expect(q.kind === 'trends' && q.series[0]).toMatchObject({
      event: key,
      filters: [{ property: `properties.${key}`, value: key }],
    });
    expect(parsePropertyPath(`properties.${key}.b`)).toEqual({ root: 'properties', keys: [key, 'b'] });
    expect(parsePropertyPath('userId')).toEqual({ root: 'column', column: 'userId' });
  });

  it('round-trips through JSON to the same value', () => {
    const queries: unknown[] = [
      {
        kind: 'trends',
        series: [{ event: 'a' }, { event: 'b', measure: 'sum', property: 'properties.n' }],
        formula: '(A+B)*100/B',
        breakdown: { property: 'userId', limit: 5 },
        range: { from: '2026-01-01', to: '2026-02-01T00:00:00+01:00' },
        tz: 'Asia/Kolkata',
      },
      {
        kind: 'funnel',
        steps: [
          { event: 'a' },
          { event: 'b', window: '30m', filters: [{ property: 'name', op: 'is_set' }] },
          { event: 'c' },
        ],
        order: 'strict',
        window: '1d',
      },
      {
        kind: 'retention',
        start: { event: 'a' },
        return: { event: 'b' },
        period: 'month',
        periods: 12,
        range: { previous: 'year' },
      },
      { kind: 'routes', sort: 'p95', limit: 50 },
      { kind: 'logs', filters: { userId: 'u1', method: 'POST' }, cursor: 'abc' },
      { kind: 'explore', what: 'properties' },
    ];
    for (const input of queries) {
      const q = ok(input);
      expect(ok(JSON.parse(JSON.stringify(q)))).toEqual(q);
    }
  });
});

const trend = (over: object = {}, series: object = {}): object => ({
  kind: 'trends',
  series: [{ event: 'a', ...series }],
  ...over,
});
const steps = (third: object): object => ({
  kind: 'funnel',
  steps: [{ event: 'a' }, { event: 'b' }, { event: 'c', ...third }],
});
const long = 'x'.repeat(201);

// [name, input, expected details.path]
const BAD: [string, unknown, string][] = [
  ['not an object', [1], 'query'],
  ['no kind', {}, 'kind'],
  ['unknown kind', { kind: 'paths' }, 'kind'],
  ['unknown top-level key (typo)', trend({ intreval: 'day' }), 'intreval'],
  ['unknown key in a series', trend({}, { evnt: 'x' }), 'series[0].evnt'],
  ['no series', { kind: 'trends', series: [] }, 'series'],
  ['too many series', { kind: 'trends', series: Array.from({ length: 11 }, () => ({ event: 'a' })) }, 'series'],
  ['series event not a string', trend({}, { event: 3 }), 'series[0].event'],
  ['series event too long', trend({}, { event: long }), 'series[0].event'],
  ['series event empty', trend({}, { event: '' }), 'series[0].event'],
  ['numeric measure without property', trend({}, { measure: 'sum' }), 'series[0].property'],
  ['count with a property', trend({}, { property: 'properties.n' }), 'series[0].property'],
  ['unknown measure', trend({}, { measure: 'median' }), 'series[0].measure'],
  ['bad interval', trend({ interval: 'minute' }), 'interval'],
  ['hourly over 90 days', trend({ interval: 'hour', range: { last: '90d' } }), 'interval'],
  ['bad filter op', trend({}, { filters: [{ property: 'name', op: 'like', value: 'x' }] }), 'series[0].filters[0].op'],
  [
    'filter path without root',
    trend({}, { filters: [{ property: 'plan', op: 'eq', value: 'x' }] }),
    'series[0].filters[0].property',
  ],
  [
    'filter path too deep',
    trend({}, { filters: [{ property: 'properties.a.b.c.d.e.f', op: 'eq', value: 1 }] }),
    'series[0].filters[0].property',
  ],
  [
    'filter path empty key',
    trend({}, { filters: [{ property: 'properties..a', op: 'eq', value: 1 }] }),
    'series[0].filters[0].property',
  ],
  [
    'in with a scalar',
    trend({}, { filters: [{ property: 'name', op: 'in', value: 'x' }] }),
    'series[0].filters[0].value',
  ],
  [
    'in with an object inside',
    trend({}, { filters: [{ property: 'name', op: 'in', value: ['a', {}] }] }),
    'series[0].filters[0].value[1]',
  ],
  [
    'is_set with a value',
    trend({}, { filters: [{ property: 'name', op: 'is_set', value: 1 }] }),
    'series[0].filters[0].value',
  ],
  ['eq without value', trend({}, { filters: [{ property: 'name', op: 'eq' }] }), 'series[0].filters[0].value'],
  [
    'gt with a boolean',
    trend({}, { filters: [{ property: 'properties.n', op: 'gt', value: true }] }),
    'series[0].filters[0].value',
  ],
  [
    'too many filters',
    trend({}, { filters: Array.from({ length: 51 }, () => ({ property: 'name', op: 'is_set' })) }),
    'series[0].filters',
  ],
  ['breakdown limit 0', trend({ breakdown: { property: 'name', limit: 0 } }), 'breakdown.limit'],
  ['breakdown bad path', trend({ breakdown: { property: 'headers.x' } }), 'breakdown.property'],
  ['compare unknown', trend({ compare: 'last_year' }), 'compare'],
  ['formula with SQL', trend({ formula: 'A; DROP' }), 'formula'],
  ['bad tz', trend({ tz: 'Mars/Olympus' }), 'tz'],
  ['range from not ISO', trend({ range: { from: 'yesterday', to: '2026-01-01' } }), 'range.from'],
  ['range from an impossible date', trend({ range: { from: '2026-02-30', to: '2026-03-05' } }), 'range.from'],
  ['range without to', trend({ range: { from: '2026-01-01' } }), 'range.to'],
  ['range to before from', trend({ range: { from: '2026-02-01', to: '2026-01-01' } }), 'range.to'],
  ['range over 400 days', trend({ range: { from: '2025-01-01', to: '2026-03-01' } }), 'range.to'],
  ['range last malformed', trend({ range: { last: '30 days' } }), 'range.last'],
  ['range last too long', trend({ range: { last: '401d' } }), 'range.last'],
  ['range last and this', trend({ range: { last: '7d', this: 'day' } }), 'range.this'],
  ['range this unknown unit', trend({ range: { this: 'quarter' } }), 'range.this'],
  ['range unknown key', trend({ range: { since: '2026-01-01' } }), 'range.since'],
  ['explain not boolean', trend({ explain: 'yes' }), 'explain'],
  ['one funnel step', { kind: 'funnel', steps: [{ event: 'a' }] }, 'steps'],
  ['21 funnel steps', { kind: 'funnel', steps: Array.from({ length: 21 }, () => ({ event: 'a' })) }, 'steps'],
  ['step window malformed', steps({ window: '1 hour' }), 'steps[2].window'],
  [
    'step window over the funnel window',
    { kind: 'funnel', window: '1h', steps: [{ event: 'a' }, { event: 'b', window: '2h' }] },
    'steps[1].window',
  ],
  [
    'first step with a window',
    { kind: 'funnel', steps: [{ event: 'a', window: '1h' }, { event: 'b' }] },
    'steps[0].window',
  ],
  ['step event missing', steps({ event: undefined }), 'steps[2].event'],
  [
    'a step window in any order',
    { kind: 'funnel', order: 'any', steps: [{ event: 'a' }, { event: 'b', window: '1h' }] },
    'steps[1].window',
  ],
  [
    'exclusions in any order',
    { kind: 'funnel', order: 'any', steps: [{ event: 'a' }, { event: 'b' }], exclusions: [{ event: 'x' }] },
    'exclusions',
  ],
  ['funnel order unknown', { kind: 'funnel', order: 'unordered', steps: [{ event: 'a' }, { event: 'b' }] }, 'order'],
  ['funnel window too long', { kind: 'funnel', window: '100d', steps: [{ event: 'a' }, { event: 'b' }] }, 'window'],
  [
    'exclusion to out of range',
    { kind: 'funnel', steps: [{ event: 'a' }, { event: 'b' }], exclusions: [{ event: 'x', to: 5 }] },
    'exclusions[0].to',
  ],
  ['retention without return', { kind: 'retention', start: { event: 'a' } }, 'return'],
  [
    'retention 53 periods',
    { kind: 'retention', start: { event: 'a' }, return: { event: 'b' }, periods: 53 },
    'periods',
  ],
  [
    'retention period hour',
    { kind: 'retention', start: { event: 'a' }, return: { event: 'b' }, period: 'hour' },
    'period',
  ],
  ['routes bad method', { kind: 'routes', method: 'get' }, 'method'],
  ['routes limit fractional', { kind: 'routes', limit: 2.5 }, 'limit'],
  ['logs limit over 200', { kind: 'logs', limit: 201 }, 'limit'],
  ['logs status out of range', { kind: 'logs', filters: { status: 700 } }, 'filters.status'],
  ['logs unknown filter', { kind: 'logs', filters: { ip: '1.2.3.4' } }, 'filters.ip'],
  ['logs url with a control character', { kind: 'logs', filters: { url: 'a\u0000b' } }, 'filters.url'],
  ['explore event with what events', { kind: 'explore', event: 'a' }, 'event'],
  ['explore what unknown', { kind: 'explore', what: 'users' }, 'what'],
];

describe('parseQuery: refusals name the field', () => {
  it.each(BAD)('%s → %s', (_name, input, path) => {
    const r = parseQuery(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(ErrorCodes.BAD_QUERY);
    expect(r.error.status).toBe(400);
    expect(r.error.details.path).toBe(path);
    expect(r.error.message.startsWith(`${path}: `)).toBe(true);
  });

  it('says what is allowed', () => {
    const r = parseQuery(trend({ interval: 'minute' }));
    expect(!r.ok && r.error.message).toBe('interval: must be one of "hour", "day", "week", "month"');
    const u = parseQuery(trend({ intreval: 'day' }));
    expect(!u.ok && u.error.message).toContain('allowed here: kind, range, tz, explain, series, interval');
  });
});

describe('formulas', () => {
  it('parses arithmetic over series letters into an AST', () => {
    expect(parseFormula('A / B', 2)).toEqual({
      ok: true,
      series: [0, 1],
      ast: { type: 'binary', op: '/', left: { type: 'series', index: 0 }, right: { type: 'series', index: 1 } },
    });
    const r = parseFormula('(A+B)*100/C', 3);
    expect(r.ok && r.ast).toEqual({
      type: 'binary',
      op: '/',
      left: {
        type: 'binary',
        op: '*',
        left: { type: 'binary', op: '+', left: { type: 'series', index: 0 }, right: { type: 'series', index: 1 } },
        right: { type: 'number', value: 100 },
      },
      right: { type: 'series', index: 2 },
    });
    expect(parseFormula('-A + 0.5 * B - 2', 2).ok).toBe(true);
    expect(parseFormula('A - B - C', 3)).toMatchObject({
      ast: { op: '-', left: { op: '-', left: { index: 0 }, right: { index: 1 } }, right: { index: 2 } },
    });
  });

  it.each([
    ['A; DROP', 2],
    ['A/', 2],
    ['Z', 2],
    ['C / A', 2],
    ['a / b', 2],
    ['(A + B', 2],
    ['A + B)', 2],
    ['A B', 2],
    ['2 * 3', 2],
    ['', 2],
    ['A ** B', 2],
    ['1..2 * A', 2],
    ['sqrt(A)', 2],
    ['('.repeat(40) + 'A' + ')'.repeat(40), 2],
  ] as const)('refuses %j', (formula, count) => {
    const r = parseFormula(formula, count);
    expect(r.ok).toBe(false);
  });

  it('parseQuery refuses a bad formula at the path formula', () => {
    for (const formula of ['A; DROP', 'A/', 'Z']) {
      const r = parseQuery({ kind: 'trends', series: [{ event: 'a' }, { event: 'b' }], formula });
      expect(!r.ok && r.error.details.path).toBe('formula');
      expect(!r.ok && r.error.message).toContain('allowed: series letters A–B');
    }
  });
});
