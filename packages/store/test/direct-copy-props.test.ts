/**
 * planDirect's property groups (event_props_hourly): the figures the direct path sends must be what the
 * SQL path computes with `properties->>key` (rollups.integration.test.ts checks both against detail on
 * the engines; this pins the plan itself, including when it must leave a batch to the SQL path).
 */
import { describe, expect, it } from 'vitest';
import { planDirect } from '../src/direct-copy.js';
import type { EventRow } from '../src/index.js';
import { dimensionMap } from '../src/rollups.js';
import { eventRow } from './support/stores.js';

const dims = dimensionMap({ signup: ['plan', 'trial', 'seats', 'plan'], constructor: ['valueOf'] });
const at = (timestamp: string, name: string, properties: Record<string, unknown>, tenantId = 't') =>
  eventRow({ tenantId, name, timestamp, properties: properties as EventRow['properties'] });

describe('planDirect property groups', () => {
  it('counts each (tenant, name, key, value, hour) of a scalar dimension value, as `->>` prints it', () => {
    const plan = planDirect(
      [
        at('2026-11-23T10:00:00.000Z', 'signup', { plan: 'pro', trial: true, seats: 3, other: 'x' }),
        at('2026-11-23T10:59:59.999Z', 'signup', { plan: 'pro', trial: false, seats: 2.5 }),
        at('2026-11-23T11:00:00.000Z', 'signup', { plan: 'pro', seats: -0 }, 'u'),
        at('2026-11-23T10:30:00.000Z', 'signup', { plan: null, trial: { a: 1 }, seats: [1] }),
        at('2026-11-23T10:30:00.000Z', 'signup', { plan: undefined, seats: Number.NaN }),
        at('2026-11-23T10:30:00.000Z', 'login', { plan: 'pro' }),
        at('2026-11-23T10:30:00.000Z', 'constructor', { valueOf: 'own' }),
        at('2026-11-23T10:30:00.000Z', 'constructor', {}),
      ],
      dims,
    );
    const H10 = '2026-11-23T10:00:00Z';
    const H11 = '2026-11-23T11:00:00Z';
    expect(plan?.props).toEqual([
      ['t', 't', 't', 't', 't', 'u', 'u', 't'],
      ['signup', 'signup', 'signup', 'signup', 'signup', 'signup', 'signup', 'constructor'],
      ['plan', 'trial', 'seats', 'trial', 'seats', 'plan', 'seats', 'valueOf'],
      ['pro', 'true', '3', 'false', '2.5', 'pro', '0', 'own'],
      [H10, H10, H10, H10, H10, H11, H11, H10],
      ['2', '1', '1', '1', '1', '1', '1', '1'],
    ]);
  });

  it('has no property groups without dimensions, or when no event of the batch has any', () => {
    const rows = [at('2026-11-23T10:00:00.000Z', 'login', { plan: 'pro' })];
    expect(planDirect(rows)?.props).toBeUndefined();
    expect(planDirect(rows, dims)?.props).toBeUndefined();
    expect(planDirect(rows, dims)?.groups[0]).toEqual(['t']);
  });

  it.each([
    ['a number JavaScript writes with an exponent (large)', 1e21],
    ['a number JavaScript writes with an exponent (small)', 1.5e-7],
    ['a value with a toJSON', new Date(0)],
    ['a wrapper object', Object(3) as unknown],
    ['a class instance', new (class Plan {})()],
  ])('leaves a batch with %s in a dimension to the SQL path', (_, value) => {
    const rows = [eventRow(), at('2026-11-23T10:00:00.000Z', 'signup', { plan: value })];
    expect(planDirect(rows, dims)).toBeUndefined();
    // The same value under a key that is not a dimension costs nothing.
    expect(planDirect([at('2026-11-23T10:00:00.000Z', 'signup', { other: value })], dims)).toBeDefined();
  });

  it('leaves a batch whose properties serialize through a toJSON to the SQL path', () => {
    const properties = { plan: 'pro', toJSON: () => ({ plan: 'free' }) };
    expect(planDirect([at('2026-11-23T10:00:00.000Z', 'signup', properties)], dims)).toBeUndefined();
  });
});
