/**
 * The acceptor on its own (no transport, no database): it takes clean payloads as they are, but never
 * changes an object it was given, whatever it adds or redacts in the event it makes.
 */
import { DEFAULT_PII_POLICY, isoTime, productCatalog, uuidv7 } from '@tally/core';
import { describe, expect, it } from 'vitest';
import { createAcceptor } from '../src/ingest/accept.js';

const accept = createAcceptor({ catalog: productCatalog, maxPropertiesBytes: 2048, pii: DEFAULT_PII_POLICY });
const open = { tenantId: 't1', acceptUnlisted: true, unplanned: 'reject' } as const;
const NOW = Date.parse('2026-01-01T12:00:00.000Z');

function item(name: string, properties: unknown, context: unknown, ts = NOW) {
  return { id: uuidv7(ts), name, properties, context, timestamp: isoTime(ts), userId: 'u1' };
}

describe('acceptor', () => {
  it('a clean event keeps the producer’s objects; what it stores equals what was sent', () => {
    const sent = JSON.parse(
      JSON.stringify([
        item('waitlist_joined', { source: 'ad' }, { service: 'api', library: { name: 'x', version: '1' } }),
      ]),
    ) as ReturnType<typeof item>[];
    const out = accept(sent, isoTime(NOW), open, NOW);
    expect(out.rejected).toEqual([]);
    const [e] = out.events;
    expect(e).toEqual({
      id: sent[0]?.id,
      name: 'waitlist_joined',
      tenantId: 't1',
      properties: { source: 'ad' },
      context: { service: 'api', library: { name: 'x', version: '1' } },
      timestamp: sent[0]?.timestamp,
      receivedAt: isoTime(NOW),
      sentAt: isoTime(NOW),
      userId: 'u1',
    });
    expect(e?.properties).toBe(sent[0]?.properties);
    expect(e?.context).toBe(sent[0]?.context);
  });

  it('never changes what it was given: clamped time, unlisted mark and redaction go to the event only', () => {
    const context = { service: 'api', library: { name: 'x', version: '1' } };
    const before = structuredClone(context);
    const future = item('waitlist_joined', { source: 'ad' }, context, NOW + 48 * 3600_000);
    const unlisted = item('Order Completed', { total: 5 }, context);
    const secretContext = { ...context, authToken: 'abc' };
    const secret = item('Order Completed', { password: 'hunter2' }, secretContext);
    const out = accept([future, unlisted, secret], isoTime(NOW), open, NOW);
    expect(out.rejected).toEqual([]);
    const [a, b, c] = out.events;
    expect(a?.context).toEqual({ ...before, clientTimestamp: future.timestamp });
    expect(a?.timestamp).toBe(isoTime(NOW));
    expect(b?.context).toEqual({ ...before, unlisted: true });
    expect(c?.properties).toEqual({ password: '[REDACTED]' });
    expect(c?.context).toEqual({ ...before, authToken: '[REDACTED]', unlisted: true });
    expect(context).toEqual(before);
    expect(secret.properties).toEqual({ password: 'hunter2' });
    expect(secretContext.authToken).toBe('abc');
  });

  it('rejects each bad item alone, with its index and id', () => {
    const good = item('waitlist_joined', { source: 'ad' }, undefined);
    const out = accept(
      [good, { ...good, id: 'nope' }, null, { ...good, userId: 7 }, item('waitlist_joined', { source: 1 }, {})],
      undefined,
      { tenantId: 't1', acceptUnlisted: false, unplanned: 'reject' },
      NOW,
    );
    expect(out.positions).toEqual([0]);
    expect(out.rejected.map((r) => [r.index, r.id, r.code])).toEqual([
      [1, 'nope', 'TALLY_INVALID_ENVELOPE'],
      [2, undefined, 'TALLY_INVALID_ENVELOPE'],
      [3, good.id, 'TALLY_INVALID_ENVELOPE'],
      [4, expect.any(String), 'TALLY_INVALID_TYPE'],
    ]);
    expect(out.events[0]?.context).toEqual({});
  });

  it('keeps a time as the producer wrote it when it is canonical and stays; else prints it canonically', () => {
    const base = item('waitlist_joined', { source: 'ad' }, undefined);
    const texts = ['2026-01-01T11:59:58.250Z', '2026-01-01T11:59:58.25Z', '2026-01-01T12:59:58.250+01:00'];
    const out = accept(
      texts.map((timestamp) => ({ ...base, timestamp })),
      isoTime(NOW),
      open,
      NOW,
    );
    expect(out.events.map((e) => e.timestamp)).toEqual(Array(3).fill('2026-01-01T11:59:58.250Z'));
    // A producer clock an hour behind: every time of its batch moves by the skew.
    const skewed = accept([{ ...base, timestamp: texts[0] }], isoTime(NOW - 3600_000), open, NOW);
    expect(skewed.events[0]?.timestamp).toBe('2026-01-01T12:59:58.250Z');
  });

  it('unplanned properties by the tenant policy: rejected, allowed and listed, or stripped and listed', () => {
    const sent = item('waitlist_joined', { source: 'ad', coupon: 'x' }, { service: 'api' });
    const policy = (unplanned: 'reject' | 'allow' | 'strip') => accept([sent], undefined, { ...open, unplanned }, NOW);
    expect(policy('reject').rejected.map((r) => r.code)).toEqual(['TALLY_UNKNOWN_PROPERTY']);
    const allowed = policy('allow').events[0];
    expect(allowed?.properties).toEqual({ source: 'ad', coupon: 'x' });
    expect(allowed?.context).toEqual({ service: 'api', unplanned: ['coupon'] });
    const stripped = policy('strip').events[0];
    expect(stripped?.properties).toEqual({ source: 'ad' });
    expect(stripped?.context).toEqual({ service: 'api', stripped: ['coupon'] });
    expect(sent.properties).toEqual({ source: 'ad', coupon: 'x' });
    expect(sent.context).toEqual({ service: 'api' });
  });
});
