/**
 * The read side's pure parts: CSV as RFC 4180 with the formula guard, which rows of a write the live
 * streams may show, the catalog's rollup dimensions, and `tally query` flags to the query model.
 */
import {
  catalogDimensions,
  csvField,
  csvTable,
  defineCatalog,
  isoTime,
  parseQuery,
  t,
  type TallyEvent,
  uuidv7,
} from '@tally/core';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/cli-args.js';
import { buildQuery, checkQuery, flagOf, parseFilter, QUERY_COMMANDS } from '../src/cli-query.js';
import { storedRows } from '../src/query/live.js';

describe('CSV', () => {
  it('quotes what RFC 4180 says to, doubles quotes, ends records with CRLF', () => {
    expect(
      csvTable(
        ['a', 'b'],
        [
          ['x,y', 'say "hi"'],
          ['line\nbreak', null],
        ],
      ),
    ).toBe('a,b\r\n"x,y","say ""hi"""\r\n"line\nbreak",\r\n');
    expect(csvField(3.5)).toBe('3.5');
    expect(csvField(-2)).toBe('-2');
    expect(csvField(true)).toBe('true');
    expect(csvField({ k: 'v,w' })).toBe('"{""k"":""v,w""}"');
  });

  it('a text cell a spreadsheet would run as a formula gets a leading quote', () => {
    for (const text of ['=1+2', '+1', '-1', '@SUM(A1)', '\tx', '\rx']) expect(csvField(text)).toMatch(/^"?'/);
    expect(csvField('=HYPERLINK("http://x","y")')).toBe(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csvField('a=b')).toBe('a=b');
    // A number stays a number, negative or not.
    expect(csvField(-1)).toBe('-1');
  });
});

describe('rows a write stored (live streams)', () => {
  const event = (id = uuidv7()): TallyEvent => ({
    id,
    name: 'conversation_started',
    tenantId: 'acme',
    properties: {},
    context: {},
    timestamp: isoTime(Date.now()),
  });
  const outcome = (stored: number, duplicateIndexes: number[] = [], rejected: number[] = []) => ({
    stored,
    duplicates: duplicateIndexes.length,
    duplicateIndexes,
    rejected: rejected.map((index) => ({ index })),
  });

  it('all rows when none was a duplicate; rejected and duplicate rows left out by position', () => {
    const batch = [event(), event(), event()];
    expect(storedRows(batch, outcome(3))).toEqual(batch);
    expect(storedRows(batch, outcome(2, [], [1]))).toEqual([batch[0], batch[2]]);
    expect(storedRows(batch, outcome(1, [0], [2]))).toEqual([batch[1]]);
    expect(storedRows(batch, outcome(0, [0, 1, 2]))).toEqual([]);
  });

  it('undecided when the positions do not add up to the stored count (rows spooled at shutdown)', () => {
    const batch = [event(), event()];
    expect(storedRows(batch, outcome(1))).toBeUndefined();
  });

  it('request logs alike', () => {
    const id = uuidv7();
    const log: TallyEvent = {
      ...event(id),
      name: '$request',
      properties: { id, tenantId: 'acme', method: 'GET', url: '/', status: 200, durationMs: 1, timestamp: '' },
    };
    expect(storedRows([log], outcome(0, [0]))).toEqual([]);
    expect(storedRows([log], outcome(1))).toEqual([log]);
  });
});

describe('rollup dimensions', () => {
  it("are each event's top-level enum and boolean properties", () => {
    const catalog = defineCatalog({
      a: { properties: { plan: t.enum(['free', 'pro']), trial: t.boolean(), n: t.number(), s: t.string() } },
      b: { properties: { s: t.string() } },
      c: { properties: { nested: t.object({ x: t.enum(['y']) }), flag: t.boolean() } },
    });
    expect(catalogDimensions(catalog)).toEqual({ a: ['plan', 'trial'], c: ['flag'] });
  });
});

describe('tally query flags', () => {
  const spec = (kind: string) => QUERY_COMMANDS.find((c) => c.kind === kind)!;
  const build = (kind: string, o: Record<string, string | boolean | string[]>) => buildQuery(spec(kind), o);

  it('trends: a series per --event, measures per series or for all, filters, breakdown, formula', () => {
    const q = build('trends', {
      event: ['conversation_started', 'escalation_triggered'],
      interval: 'day',
      last: '30d',
      breakdown: 'properties.channel',
      'breakdown-limit': '5',
      formula: 'B / A',
      filter: ['properties.plan=pro', 'B:properties.automatic=true', 'properties.n>=3', 'context.locale=de,fr'],
      tz: 'Europe/Berlin',
      explain: true,
    });
    expect(q).toEqual({
      kind: 'trends',
      range: { last: '30d' },
      tz: 'Europe/Berlin',
      explain: true,
      series: [
        {
          event: 'conversation_started',
          filters: [
            { property: 'properties.plan', op: 'eq', value: 'pro' },
            { property: 'properties.n', op: 'gte', value: 3 },
            { property: 'context.locale', op: 'in', value: ['de', 'fr'] },
          ],
        },
        {
          event: 'escalation_triggered',
          filters: [
            { property: 'properties.plan', op: 'eq', value: 'pro' },
            { property: 'properties.automatic', op: 'eq', value: true },
            { property: 'properties.n', op: 'gte', value: 3 },
            { property: 'context.locale', op: 'in', value: ['de', 'fr'] },
          ],
        },
      ],
      interval: 'day',
      breakdown: { property: 'properties.channel', limit: 5 },
      formula: 'B / A',
    });
    expect(parseQuery(q).ok).toBe(true);
    const m = build('trends', {
      event: ['a', 'b'],
      measure: ['count', 'p95'],
      property: ['properties.x', 'properties.y'],
    });
    expect(m.series).toEqual([
      { event: 'a', measure: 'count', property: 'properties.x' },
      { event: 'b', measure: 'p95', property: 'properties.y' },
    ]);
  });

  it('funnel: steps with @window, exclusions between 1-based steps, per-step filters', () => {
    const q = build('funnel', {
      step: ['conversation_started', 'escalation_triggered@1h', 'plan_updated'],
      window: '1d',
      order: 'strict',
      exclude: ['checkout_completed@1-2', 'quota_exceeded'],
      filter: ['2:properties.automatic=false'],
    });
    expect(q).toMatchObject({
      kind: 'funnel',
      window: '1d',
      order: 'strict',
      steps: [
        { event: 'conversation_started' },
        { event: 'escalation_triggered', window: '1h', filters: [{ property: 'properties.automatic', value: false }] },
        { event: 'plan_updated' },
      ],
      exclusions: [{ event: 'checkout_completed', from: 0, to: 1 }, { event: 'quota_exceeded' }],
    });
    expect(parseQuery(q).ok).toBe(true);
    // An @ that is no window is part of the name.
    expect(build('funnel', { step: ['a@b', 'c'] }).steps).toEqual([{ event: 'a@b' }, { event: 'c' }]);
  });

  it('retention, routes, logs, explore', () => {
    expect(
      build('retention', { start: 'a', return: 'b', period: 'week', periods: '8', mode: 'recurring', this: 'year' }),
    ).toEqual({
      kind: 'retention',
      range: { this: 'year' },
      start: { event: 'a' },
      return: { event: 'b' },
      period: 'week',
      periods: 8,
      mode: 'recurring',
    });
    expect(build('routes', { sort: 'p95', method: 'get', 'status-class': '5XX', limit: '20' })).toEqual({
      kind: 'routes',
      sort: 'p95',
      method: 'GET',
      statusClass: '5xx',
      limit: 20,
    });
    expect(build('logs', { status: '5xx', user: 'u-1', url: '/checkout', cursor: 'abc' })).toEqual({
      kind: 'logs',
      filters: { statusClass: '5xx', userId: 'u-1', url: '/checkout' },
      cursor: 'abc',
    });
    expect(build('logs', { status: '404' }).filters).toEqual({ status: 404 });
    expect(build('explore', { event: 'a', from: '2026-01-01', to: '2026-02-01' })).toEqual({
      kind: 'explore',
      what: 'properties',
      event: 'a',
      range: { from: '2026-01-01', to: '2026-02-01' },
    });
  });

  it('--query and --query-file give the whole query; the kind must agree', () => {
    expect(build('trends', { query: '{"series":[{"event":"a"}]}' })).toEqual({
      kind: 'trends',
      series: [{ event: 'a' }],
    });
    expect(() => build('trends', { query: '{"kind":"funnel"}' })).toThrow(/run it with tally query funnel/);
    expect(() => build('trends', { query: '{', event: 'a' })).toThrow(/drop --event/);
    expect(() => build('trends', { query: '[1]' })).toThrow(UsageError);
  });

  it('mistakes are usage errors naming the flag', () => {
    expect(() => build('trends', {})).toThrow(/--event/);
    expect(() => build('trends', { event: 'a', last: '7d', this: 'month' })).toThrow(/--last and --this/);
    expect(() => build('trends', { event: 'a', from: '2026-01-01' })).toThrow(/--from needs --to/);
    expect(() => build('trends', { event: ['a', 'b', 'c'], measure: ['count', 'sum'] })).toThrow(/--measure once/);
    expect(() => build('funnel', { step: 'a' })).toThrow(/at least two steps/);
    expect(() => build('trends', { event: 'a', filter: 'properties.plan' })).toThrow(/PATH OP VALUE/);
    expect(() => build('trends', { event: 'a', filter: 'C:properties.x=1' })).toThrow(/no series C/);
    expect(() => build('funnel', { step: ['a', 'b'], filter: 'A:properties.x=1' })).toThrow(/by its number/);
    expect(() => build('logs', { status: 'bad' })).toThrow(/--status must be/);
    expect(() => build('routes', { limit: 'ten' })).toThrow(/--limit must be a whole number/);

    const check = (kind: string, o: Record<string, string | string[]>) => checkQuery(spec(kind), build(kind, o), false);
    expect(() => check('trends', { event: 'a', interval: 'fortnight' })).toThrow(
      /^--interval: must be one of "hour", "day", "week", "month" \(interval\)$/,
    );
    expect(() => check('trends', { event: 'a', measure: 'sum' })).toThrow(/^--property: is required/);
    expect(() => check('funnel', { step: ['a', 'b@1hour'] })).toThrow(/^--step \(its @window\): must be/);
    expect(() => build('funnel', { step: ['a', 'b'], exclude: 'c@2' })).toThrow(/e\.g\. @1-2/);
    expect(() => check('funnel', { step: ['a', 'b@30d'], window: '1d' })).toThrow(/^--step \(its @window\)/);
    expect(() => check('trends', { event: 'a', last: 'lots' })).toThrow(/^--last: must be/);
    expect(() => check('trends', { event: 'a', tz: 'Mars/Olympus' })).toThrow(/^--tz:/);
    expect(flagOf('logs', 'filters.userId')).toBe('--user');
    expect(flagOf('trends', 'series[3].filters[0].value')).toBe('--filter');
  });

  it('filter values: numbers and booleans as such, quoted text stays text, ~ is contains', () => {
    expect(parseFilter('properties.n<-2.5', 'letters').filter).toEqual({
      property: 'properties.n',
      op: 'lt',
      value: -2.5,
    });
    expect(parseFilter('properties.code="42"', 'letters').filter.value).toBe('42');
    expect(parseFilter('properties.code="a,b"', 'letters').filter).toEqual({
      property: 'properties.code',
      op: 'eq',
      value: 'a,b',
    });
    expect(parseFilter('properties.url~/a=b', 'letters').filter).toEqual({
      property: 'properties.url',
      op: 'contains',
      value: '/a=b',
    });
    expect(parseFilter('userId!=u1,u2', 'letters').filter).toEqual({
      property: 'userId',
      op: 'nin',
      value: ['u1', 'u2'],
    });
  });
});
