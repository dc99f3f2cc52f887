import { describe, expect, it } from 'vitest';
import { applyBatchContext, encodeBatch, type EventBatch, type TallyEvent, uuidv7 } from '../src/index.js';

const shared = Object.freeze({ service: 'api', library: { name: '@tally/node', version: '0.1.0' } });

function event(context: TallyEvent['context'], n: number): TallyEvent {
  return {
    id: uuidv7(),
    name: 'task_created',
    tenantId: 'acme',
    properties: { taskId: `t-${n}` },
    context,
    timestamp: '2026-11-23T10:00:00.000Z',
  };
}

/** What a receiver sees: the parsed body with the batch's context applied. */
function decode(json: string): { body: EventBatch; events: TallyEvent[] } {
  const body = JSON.parse(json) as EventBatch;
  applyBatchContext(body.batch, body.context);
  return { body, events: body.batch as TallyEvent[] };
}

describe('batch wire format: a shared context is sent once', () => {
  it('events sharing one context object carry none of their own; decoded, every event is whole again', () => {
    const events = [event(shared, 1), event(shared, 2), event(shared, 3)];
    const json = encodeBatch(events, '2026-11-23T10:00:01.000Z');
    const raw = JSON.parse(json) as EventBatch;
    expect(raw.context).toEqual(shared);
    expect(raw.batch.every((e) => !('context' in e))).toBe(true);
    expect(json.length).toBeLessThan(JSON.stringify({ batch: events, sentAt: '2026-11-23T10:00:01.000Z' }).length);
    expect(decode(json).events).toEqual(events);
    // The caller's events are untouched: a retry sends them again.
    expect(events.every((e) => e.context === shared)).toBe(true);
  });

  it('an event with another context keeps its own, even one with fewer keys (replaced, never merged)', () => {
    const other = { service: 'worker' };
    const events = [event(shared, 1), event(other, 2), event(shared, 3), event({}, 4)];
    const { body, events: decoded } = decode(encodeBatch(events, 'now'));
    expect(body.context).toEqual(shared);
    expect(decoded).toEqual(events);
    expect(decoded[1]?.context).toEqual({ service: 'worker' });
    expect(decoded[3]?.context).toEqual({});
  });

  it('no sharing, nothing hoisted: the plain batch of version 1', () => {
    const events = [event({ a: 1 }, 1), event({ a: 1 }, 2)];
    const json = encodeBatch(events, 'now');
    expect(json).toBe(JSON.stringify({ batch: events, sentAt: 'now' }));
    expect(encodeBatch([], 'now')).toBe('{"batch":[],"sentAt":"now"}');
  });

  it('a malformed batch context or item is left for the receiver to refuse', () => {
    const items: unknown[] = [null, 3, 'x', { id: 'a' }, { id: 'b', context: { own: true } }];
    applyBatchContext(items, ['not', 'an', 'object']);
    expect(items[3]).toEqual({ id: 'a' });
    applyBatchContext(items, { service: 'api' });
    expect(items).toEqual([
      null,
      3,
      'x',
      { id: 'a', context: { service: 'api' } },
      { id: 'b', context: { own: true } },
    ]);
  });
});
