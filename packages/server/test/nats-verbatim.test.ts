/**
 * A batch the acceptor takes as it came is published through NATS as its request body with the tenant
 * and arrival time in headers (BatchSource); a consumer reads those bytes back into events. The two
 * must make the same events, or a batch stored from the stream would differ from one stored in process:
 * every verbatim batch below is read back and compared with the acceptor's events, key order included,
 * and every batch the acceptor changes in any way must not be called verbatim.
 */
import { DEFAULT_PII_POLICY, isoTime, productCatalog, REQUEST_LOG_EVENT, uuidv7 } from '@tally/core';
import { batchMessages, HEADER_RECEIVED_AT, HEADER_TENANT, readMessage } from '@tally/nats';
import { describe, expect, it } from 'vitest';
import { createAcceptor, type TenantPolicy } from '../src/ingest/accept.js';
import { parseTally } from '../src/ingest/formats.js';

const accept = createAcceptor({ catalog: productCatalog, maxPropertiesBytes: 2048, pii: DEFAULT_PII_POLICY });
const tenant: TenantPolicy = { tenantId: 'acme', acceptUnlisted: true, unplanned: 'reject' };
const NOW = Date.parse('2026-01-01T12:00:00.000Z');

function item(name: string, properties?: unknown, extra: Record<string, unknown> = {}) {
  return { id: uuidv7(NOW - 1000), name, properties, timestamp: isoTime(NOW - 1000), ...extra };
}

/** What the collector does with a body: parse, accept; then what the consumer reads from the same bytes. */
function roundTrip(body: unknown, policy: TenantPolicy = tenant) {
  const text = JSON.stringify(body);
  const parsed = parseTally(JSON.parse(text));
  if ('error' in parsed) throw new Error(parsed.error);
  const accepted = accept(parsed.items, parsed.sentAt, policy, NOW);
  const headers = new Map([
    [HEADER_TENANT, policy.tenantId],
    [HEADER_RECEIVED_AT, accepted.receivedAt],
  ]);
  const read = () => readMessage(Buffer.from(text), { get: (name) => headers.get(name) ?? '' });
  return { accepted, read };
}

describe('a batch accepted as it came, read back from its body', () => {
  it.each([
    {
      what: 'events with their own contexts, ids and a sentAt',
      body: {
        batch: [
          item('waitlist_joined', { source: 'ad' }, { userId: 'u1', context: { service: 'api' } }),
          item(
            'task_created',
            { taskId: 't1', taskType: 'render' },
            { anonymousId: 'a1', context: { requestId: 'r' } },
          ),
        ],
        sentAt: isoTime(NOW - 500),
      },
    },
    {
      what: 'a batch context shared by events without their own, and one with its own',
      body: {
        batch: [
          item('waitlist_joined', { source: 'ad' }),
          item('waitlist_joined', { source: 'seo' }, { context: { service: 'web' } }),
        ],
        context: { service: 'api', library: { name: '@tally/node', version: '1' } },
        sentAt: isoTime(NOW),
      },
    },
    {
      what: 'no context at all, null ids, no sentAt',
      body: { batch: [item('waitlist_joined', { source: 'ad' }, { userId: null, anonymousId: null })] },
    },
    {
      what: 'a sentAt that is not a time',
      body: { batch: [item('waitlist_joined', { source: 'ad' })], sentAt: 'yesterday' },
    },
    {
      what: 'keys the collector ignores or decides itself (tenant, arrival time, unknown fields)',
      body: {
        batch: [
          item('waitlist_joined', { source: 'ad' }, { tenantId: 'other', receivedAt: 'then', type: 'track', x: [1] }),
        ],
        sentAt: isoTime(NOW),
        writeKey: 'ignored',
      },
    },
    {
      what: "a system event without properties (Segment's and PostHog's own calls)",
      body: { batch: [item('$pageview', undefined, { context: { page: '/pricing' } })], sentAt: isoTime(NOW) },
    },
  ])('$what: the same events, key order included', ({ body }) => {
    const { accepted, read } = roundTrip(body);
    expect(accepted.rejected).toEqual([]);
    expect(accepted.verbatim).toBe(true);
    const events = read();
    expect(events).toStrictEqual(accepted.events);
    expect(JSON.stringify(events)).toBe(JSON.stringify(accepted.events));
  });

  it.each([
    { what: 'one item refused', batch: [item('waitlist_joined', { source: 'ad' }), item('waitlist_joined', { x: 1 })] },
    { what: 'a clock skewed past the tolerance', batch: [item('waitlist_joined', { source: 'ad' })], sentAt: 3600_000 },
    {
      what: 'a timestamp far in the future (clamped)',
      batch: [{ ...item('waitlist_joined', { source: 'ad' }), timestamp: isoTime(NOW + 48 * 3600_000) }],
    },
    {
      what: 'a timestamp not in canonical form',
      batch: [{ ...item('waitlist_joined', { source: 'ad' }), timestamp: '2026-01-01T11:59:59Z' }],
    },
    { what: 'a PII key redacted', batch: [item('Order Completed', { password: 'hunter2' })] },
    {
      what: 'a PII key in the context',
      batch: [item('waitlist_joined', { source: 'ad' }, { context: { token: 'x' } })],
    },
    { what: 'an unlisted event (marked so in its context)', batch: [item('Order Completed', { total: 5 })] },
    { what: 'undeclared properties (stripped)', batch: [item('waitlist_joined', { source: 'ad', extra: 1 })] },
    {
      what: 'a request log (its tenant and time are rewritten)',
      batch: [
        (() => {
          const id = uuidv7(NOW);
          const log = { id, tenantId: 'x', method: 'GET', route: '/', url: '/', status: 200, durationMs: 1 };
          return {
            id,
            name: REQUEST_LOG_EVENT,
            properties: { ...log, timestamp: isoTime(NOW) },
            timestamp: isoTime(NOW),
          };
        })(),
      ],
    },
  ])('not verbatim: $what', ({ batch, sentAt }) => {
    const policy: TenantPolicy = { ...tenant, unplanned: 'strip' };
    const { accepted } = roundTrip({ batch, sentAt: isoTime(NOW - (sentAt ?? 0)) }, policy);
    expect(accepted.verbatim).toBe(false);
  });

  it('is published as its body, in one message, with the tenant and arrival time as headers', () => {
    const text = JSON.stringify({ batch: [item('waitlist_joined', { source: 'ad' })], sentAt: isoTime(NOW) });
    const body = Buffer.from(text);
    const { accepted } = roundTrip(JSON.parse(text));
    const source = { body, tenantId: 'acme', receivedAt: accepted.receivedAt };
    const [m, ...more] = batchMessages('app', accepted.events, 1024 * 1024, source);
    expect(more).toEqual([]);
    expect(m?.data).toBe(body);
    expect(m?.subject).toBe('app.analytics.events');
    expect(m?.headers).toEqual([
      [HEADER_TENANT, 'acme'],
      [HEADER_RECEIVED_AT, accepted.receivedAt],
    ]);
    // Too large for the server's max payload: serialized (and split) as any other batch instead.
    const small = batchMessages('app', accepted.events, body.length, source);
    expect(small[0]?.data).not.toBe(body);
    expect(small[0]?.headers).toEqual([]);
  });
});
