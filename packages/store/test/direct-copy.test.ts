import { describe, expect, it } from 'vitest';
import { fallsBack, planDirect, planDirectLogs, refusesDirect } from '../src/direct-copy.js';
import { eventRow, requestLog } from './support/stores.js';

describe('planDirect', () => {
  it('counts and weighs each (tenant, name, hour) as the SQL rollup does', () => {
    const rows = [
      eventRow({ tenantId: 'a', name: 'x', timestamp: '2026-11-23T10:59:59.999Z' }),
      eventRow({ tenantId: 'a', name: 'x', timestamp: '2026-11-23T10:00:00.000Z', context: { sampleRate: 0.25 } }),
      eventRow({ tenantId: 'a', name: 'x', timestamp: '2026-11-23T11:00:00.000Z' }),
      eventRow({ tenantId: 'b', name: 'x', timestamp: '2026-11-23T10:30:00.500Z', context: { sampleRate: 1 } }),
      eventRow({ tenantId: 'a', name: 'y', timestamp: '2026-11-23T10:30:00.123Z' }),
    ];
    expect(planDirect(rows)?.groups).toEqual([
      ['a', 'a', 'b', 'a'],
      ['x', 'x', 'x', 'y'],
      ['2026-11-23T10:00:00Z', '2026-11-23T11:00:00Z', '2026-11-23T10:00:00Z', '2026-11-23T10:00:00Z'],
      ['2', '1', '1', '1'],
      ['5', '1', '1', '1'],
    ]);
  });

  it('sends the rows in id order, as they are when already sorted', () => {
    const rows = [eventRow(), eventRow(), eventRow()];
    expect(planDirect(rows)?.rows).toBe(rows);
    const shuffled = [rows[2], rows[0], rows[1]] as typeof rows;
    expect(planDirect(shuffled)?.rows).toEqual(rows);
  });

  it.each([
    ['an offset', '2026-11-23T10:00:00+02:00'],
    ['a zero offset', '2026-11-23T10:00:00+00:00'],
    ['a space for the T', '2026-11-23 10:00:00Z'],
    ['no zone', '2026-11-23T10:00:00'],
    ['7 fraction digits (Postgres rounds them)', '2026-11-23T10:59:59.9999999Z'],
    ['a leap second', '2026-12-31T23:59:60Z'],
    ['24:00', '2026-11-23T24:00:00Z'],
    ['no seconds', '2026-11-23T10:00Z'],
    ['no fraction', '2026-11-23T10:00:00Z'],
    ['microseconds', '2026-11-23T10:00:00.000001Z'],
    ['a day the calendar lacks', '2026-02-29T10:00:00.000Z'],
  ])('leaves a batch with %s to the SQL path', (_, timestamp) => {
    expect(planDirect([eventRow(), eventRow({ timestamp })])).toBeUndefined();
  });

  it.each([0, -1, Number.POSITIVE_INFINITY, Number.NaN, '0.5', null])(
    'leaves a batch with sampleRate %s to the SQL path',
    (sampleRate) => {
      expect(planDirect([eventRow({ context: { sampleRate: sampleRate as number } })])).toBeUndefined();
    },
  );
});

describe('planDirectLogs', () => {
  it('rolls up each (tenant, method, route, hour) as the SQL path does', () => {
    const at = (timestamp: string, durationMs: number, status: number, route?: string) =>
      requestLog({ tenantId: 't', timestamp, durationMs, status, route });
    const plan = planDirectLogs([
      at('2026-11-23T10:00:00.000Z', 1, 200, '/a'),
      at('2026-11-23T10:59:59.999Z', 1.5, 404, '/a'),
      at('2026-11-23T10:30:00.000Z', 90_000, 503, '/a'),
      at('2026-11-23T10:30:00.000Z', 7, 101, undefined),
      at('2026-11-23T11:00:00.000Z', 0, 302, '/a'),
    ]);
    expect(plan?.groups).toEqual([
      ['t', 't', 't'],
      ['GET', 'GET', 'GET'],
      ['/a', '(unmatched)', '/a'],
      ['2026-11-23T10:00:00Z', '2026-11-23T10:00:00Z', '2026-11-23T11:00:00Z'],
      ['3', '1', '1'],
      ['1', '0', '0'],
      ['0', '0', '1'],
      ['1', '0', '0'],
      ['1', '0', '0'],
      ['90002.5', '7', '0'],
      ['1', '7', '0'],
      ['90000', '7', '0'],
      // A duration on a bound is in that bound's bucket (≤ 1 ms), 1.5 in ≤ 2 ms, 90 s in the last.
      ['{1,1,0,0,0,0,0,0,0,0,0,0,0,0,0,1}', '{0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0}', '{1,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0}'],
    ]);
  });

  it.each([
    ['a non-canonical timestamp', { timestamp: '2026-11-23T10:00:00+02:00' }],
    ['a duration that is not finite', { durationMs: Number.NaN }],
  ])('leaves a batch with %s to the SQL path', (_, overrides) => {
    expect(planDirectLogs([requestLog(), requestLog(overrides)])).toBeUndefined();
  });

  it('sends the rows in id order', () => {
    const rows = [requestLog(), requestLog(), requestLog()];
    expect(planDirectLogs([rows[2], rows[0], rows[1]] as typeof rows)?.rows).toEqual(rows);
  });
});

describe('when a direct COPY fails', () => {
  it.each([
    ['23505', true, false],
    ['22P05', true, false],
    ['22021', true, false],
    ['0A000', true, true],
    ['42501', true, true],
    ['40P01', false, false],
    ['57P01', false, false],
    [undefined, false, false],
  ])('SQLSTATE %s: falls back %s, stops trying %s', (code, back, stop) => {
    const error = Object.assign(new Error('x'), { code });
    expect(fallsBack(error)).toBe(back);
    expect(refusesDirect(error)).toBe(stop);
  });
});
