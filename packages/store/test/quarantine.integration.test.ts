/**
 * The quarantine and key scopes on every engine: refused events are kept once per (tenant, id), listed
 * and counted by filter, trimmed to a per-tenant cap and expired by age; keys carry their scope, and a
 * server-wide key can only be an admin key.
 */
import { uuidv7 } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countQuarantine,
  createApiKey,
  expireQuarantine,
  findKeyOwner,
  listApiKeys,
  listQuarantine,
  QUARANTINE_ITEM_MAX_BYTES,
  type QuarantineEntry,
  quarantineEvents,
  quarantineTenants,
  removeQuarantined,
  type Store,
  trimQuarantine,
  updateQuarantined,
} from '../src/index.js';
import { engines, openStore } from './support/stores.js';

function entry(overrides: Partial<QuarantineEntry> = {}): QuarantineEntry {
  const id = uuidv7();
  return {
    tenantId: 'acme',
    eventId: id,
    name: 'order_placed',
    code: 'TALLY_MISSING_PROPERTY',
    message: 'order_placed: missing required "amount"',
    item: JSON.stringify({ id, name: 'order_placed', properties: {} }),
    source: '/v1/batch',
    keyId: 'key_1',
    sentAt: null,
    receivedAt: new Date().toISOString(),
    ...overrides,
  };
}

describe.each(engines.filter((e) => e === 'pglite' || e === 'postgres'))('quarantine on %s', (engine) => {
  let store: Store;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ store, dispose } = await openStore(engine));
  });
  afterAll(() => dispose?.());

  it('keeps each refused event once, however often its batch is resent', async () => {
    const batch = [entry(), entry({ code: 'TALLY_UNKNOWN_EVENT', name: 'nope' }), entry({ tenantId: 'other' })];
    expect(await quarantineEvents(store.sql, batch)).toBe(3);
    expect(await quarantineEvents(store.sql, batch)).toBe(0);
    expect(await countQuarantine(store.sql, { tenantId: 'acme' })).toEqual({
      TALLY_MISSING_PROPERTY: 1,
      TALLY_UNKNOWN_EVENT: 1,
    });
    const listed = await listQuarantine(store.sql, { tenantId: 'acme', code: 'TALLY_UNKNOWN_EVENT' });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ name: 'nope', eventId: batch[1]?.eventId, truncated: false, keyId: 'key_1' });
    expect(JSON.parse(listed[0]?.item as string)).toMatchObject({ name: 'order_placed' });
    expect(await quarantineTenants(store.sql)).toEqual(['acme', 'other']);
  });

  it('lists newest first or oldest first, pages by seq, filters by name and time', async () => {
    const older = entry({ tenantId: 'paging', receivedAt: '2026-01-01T00:00:00.000Z' });
    const newer = entry({ tenantId: 'paging', name: 'other_event' });
    await quarantineEvents(store.sql, [older, newer]);
    const newest = await listQuarantine(store.sql, { tenantId: 'paging' });
    expect(newest.map((e) => e.eventId)).toEqual([newer.eventId, older.eventId]);
    const oldest = await listQuarantine(store.sql, { tenantId: 'paging', limit: 1 }, 'oldest');
    expect(oldest.map((e) => e.eventId)).toEqual([older.eventId]);
    const next = await listQuarantine(store.sql, { tenantId: 'paging', afterSeq: oldest[0]?.seq }, 'oldest');
    expect(next.map((e) => e.eventId)).toEqual([newer.eventId]);
    expect(await listQuarantine(store.sql, { tenantId: 'paging', name: 'other_event' })).toHaveLength(1);
    expect(await listQuarantine(store.sql, { tenantId: 'paging', since: '2026-06-01T00:00:00Z' })).toHaveLength(1);
  });

  it('cuts an item over the cap on a character boundary and marks it truncated', async () => {
    const big = entry({ tenantId: 'big', item: JSON.stringify({ text: '€'.repeat(QUARANTINE_ITEM_MAX_BYTES) }) });
    await quarantineEvents(store.sql, [big]);
    const [kept] = await listQuarantine(store.sql, { tenantId: 'big' });
    expect(kept?.truncated).toBe(true);
    expect(Buffer.byteLength(kept?.item ?? '')).toBeLessThanOrEqual(QUARANTINE_ITEM_MAX_BYTES);
    expect(kept?.item).not.toContain('\uFFFD');
  });

  it('updates reasons, removes replayed events, trims to a cap and expires by age', async () => {
    const rows = Array.from({ length: 10 }, () => entry({ tenantId: 'cap' }));
    await quarantineEvents(store.sql, rows);
    await updateQuarantined(store.sql, 'cap', [{ eventId: rows[0]?.eventId as string, code: 'X', message: 'y' }]);
    expect(await countQuarantine(store.sql, { tenantId: 'cap', code: 'X' })).toEqual({ X: 1 });
    expect(await removeQuarantined(store.sql, 'cap', [rows[0]?.eventId as string])).toBe(1);
    expect(await trimQuarantine(store.sql, 'cap', 4)).toBe(5);
    const left = await listQuarantine(store.sql, { tenantId: 'cap' }, 'oldest');
    expect(left.map((e) => e.eventId)).toEqual(rows.slice(6).map((r) => r.eventId));
    expect(await trimQuarantine(store.sql, 'cap', 4)).toBe(0);
    await quarantineEvents(store.sql, [entry({ tenantId: 'old', receivedAt: '2025-01-01T00:00:00.000Z' })]);
    expect(await expireQuarantine(store.sql, 30)).toBeGreaterThanOrEqual(1);
    expect(await listQuarantine(store.sql, { tenantId: 'old' })).toEqual([]);
  });

  it('keys carry a scope; only an admin key may be server-wide', async () => {
    const write = await createApiKey(store.sql, 'scoped');
    const read = await createApiKey(store.sql, 'scoped', { scope: 'read', name: 'dashboard' });
    const admin = await createApiKey(store.sql, null, { scope: 'admin' });
    expect(await findKeyOwner(store.sql, write.key)).toMatchObject({ scope: 'write', tenant: { id: 'scoped' } });
    expect(await findKeyOwner(store.sql, read.key)).toMatchObject({ scope: 'read', tenant: { id: 'scoped' } });
    expect(await findKeyOwner(store.sql, admin.key)).toMatchObject({ scope: 'admin', tenant: null });
    await expect(createApiKey(store.sql, null, { scope: 'read' })).rejects.toMatchObject({ code: 'TALLY_CONFIG' });
    await expect(createApiKey(store.sql, 'scoped', { scope: 'root' as unknown as 'admin' })).rejects.toMatchObject({
      code: 'TALLY_CONFIG',
    });
    const listed = await listApiKeys(store.sql);
    expect(listed.find((k) => k.id === admin.info.id)).toMatchObject({ tenantId: null, scope: 'admin' });
    expect(listed.find((k) => k.id === read.info.id)).toMatchObject({ scope: 'read', name: 'dashboard' });
  });
});
