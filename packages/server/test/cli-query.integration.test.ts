/**
 * `tally query` and `tally rollups rebuild` as a user runs them: on the embedded database with no server
 * (the CLI opens it), and beside a running `tally serve` that holds it (through its admin API). The
 * answers are checked against the events stored; mistakes exit 2 naming the flag, failures exit 1.
 */
import { catalogDimensions, isoTime, mergeCatalogs, productCatalog, supportBotCatalog, uuidv7 } from '@tally/core';
import { createStore, ensureTenant, type EventRow, type RequestLogRow, rollupDimensions } from '@tally/store';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { tally as run, tallyProcess } from './support/cli.js';
import { type ServeProcess, spawnServe } from './support/child-process.js';
import { event, requestLog, send } from './support/read-api.js';

const DAY = 86_400_000;
/** Noon UTC two days ago: inside "the last 30 days" whatever the hour. */
const T0 = Math.floor(Date.now() / DAY) * DAY - 2 * DAY + 12 * 3_600_000;

function seedEvents(tenantId: string): EventRow[] {
  const at = (minutes: number) => isoTime(T0 + minutes * 60_000);
  const e = (name: string, userId: string, minutes: number, properties: Record<string, unknown>): EventRow => ({
    id: uuidv7(),
    name,
    tenantId,
    userId,
    properties: properties as EventRow['properties'],
    context: {},
    timestamp: at(minutes),
    receivedAt: at(minutes),
  });
  return [
    e('conversation_started', 'u1', 0, { conversationId: 'c1', channel: 'web' }),
    e('conversation_started', 'u2', 1, { conversationId: 'c2', channel: 'web' }),
    e('conversation_started', 'u3', 2, { conversationId: 'c3', channel: 'slack' }),
    // u1 escalates within the hour; u3 only after two.
    e('escalation_triggered', 'u1', 10, { conversationId: 'c1', reason: 'angry' }),
    e('escalation_triggered', 'u3', 125, { conversationId: 'c3', reason: 'slow' }),
  ];
}

function seedLogs(tenantId: string): RequestLogRow[] {
  return [200, 200, 404, 500, 503].map((status, i) => ({
    id: uuidv7(),
    tenantId,
    method: 'GET',
    route: '/things/:id',
    url: `/things/${i}`,
    status,
    durationMs: 10 * (i + 1),
    userId: 'u1',
    timestamp: isoTime(T0 + i * 1000),
    receivedAt: isoTime(T0 + i * 1000),
  }));
}

describe('tally query without a server (embedded database)', () => {
  const tmp = tempDir('tally-query-');
  const dir = ['--data-dir', tmp.dir];

  beforeAll(async () => {
    expect((await run(['migrate', ...dir])).code).toBe(0);
    // The CLI opened the store with the catalog's enum and boolean properties as rollup dimensions.
    const plain = await createStore({ kind: 'pglite', dataDir: `${tmp.dir}/pglite` });
    try {
      const dims = await rollupDimensions(plain.sql);
      expect([...(dims.get('conversation_started')?.keys() ?? [])]).toEqual(['channel']);
      expect([...(dims.get('escalation_triggered')?.keys() ?? [])]).toEqual(['automatic']);
    } finally {
      await plain.close();
    }
    const store = await createStore({
      kind: 'pglite',
      dataDir: `${tmp.dir}/pglite`,
      dimensions: catalogDimensions(mergeCatalogs(productCatalog, supportBotCatalog)),
    });
    try {
      await ensureTenant(store.sql, 'acme');
      await store.insertEvents(seedEvents('acme'));
      await store.insertRequestLogs(seedLogs('acme'));
    } finally {
      await store.close();
    }
  }, 120_000);
  afterAll(() => tmp.cleanup());

  const json = async (args: string[]) => {
    const r = await run(['query', ...args, '--format', 'json', ...dir]);
    expect(r.code, r.err).toBe(0);
    return JSON.parse(r.out) as { columns: { name: string }[]; rows: unknown[][]; meta: Record<string, unknown> };
  };
  const column = (a: { columns: { name: string }[]; rows: unknown[][] }, name: string) => {
    const i = a.columns.findIndex((c) => c.name === name);
    return a.rows.map((r) => r[i]);
  };

  it('trends: by day with a breakdown, as JSON, a table and CSV', async () => {
    const args = ['trends', '--event', 'conversation_started', '--interval', 'day', '--last', '30d'];
    const byChannel = await json([...args, '--breakdown', 'properties.channel']);
    const sum = (value: string) =>
      byChannel.rows
        .filter((r) => r[byChannel.columns.findIndex((c) => c.name === 'breakdown')] === value)
        .reduce((n, r) => n + Number(r[byChannel.columns.findIndex((c) => c.name === 'value')]), 0);
    expect(sum('web')).toBe(2);
    expect(sum('slack')).toBe(1);

    const table = await run(['query', ...args, ...dir]);
    expect(table.code, table.err).toBe(0);
    const lines = table.out.split('\n');
    expect(lines[0]).toMatch(/^time\s+series\s+value$/);
    // Days in the query's zone, counts right-aligned; then how it was answered.
    const day = new Date(T0).toISOString().slice(0, 10);
    expect(table.out).toMatch(new RegExp(`^${day}\\s+A\\s+3$`, 'm'));
    expect(table.out).toContain('series: A = conversation_started');
    expect(table.out).toMatch(/rows · from (rollup|detail) · [\d.]+ ms/);

    const csv = await run(['query', ...args, '--format', 'csv', ...dir]);
    expect(csv.out.split('\r\n')[0]).toBe('time,series,value');

    const rate = await json([
      'trends',
      '--event',
      'conversation_started',
      '--event',
      'escalation_triggered',
      '--formula',
      'B / A',
      '--explain',
    ]);
    expect(rate.meta.explain).toMatchObject({ reason: expect.any(String) });
    expect(JSON.stringify(rate.rows)).toContain(String(2 / 3).slice(0, 6));
  }, 60_000);

  it('funnel with a per-step window, retention, routes, logs, explore', async () => {
    const funnel = await json(['funnel', '--step', 'conversation_started', '--step', 'escalation_triggered@1h']);
    expect(column(funnel, 'entered')).toEqual([3, 1]);
    const wider = await json(['funnel', '--step', 'conversation_started', '--step', 'escalation_triggered@3h']);
    expect(column(wider, 'entered')).toEqual([3, 2]);

    const retention = await json([
      'retention',
      '--start',
      'conversation_started',
      '--return',
      'escalation_triggered',
      '--period',
      'day',
      '--periods',
      '3',
    ]);
    expect(column(retention, 'cohort_size')).toContain(3);

    const routes = await json(['routes', '--sort', 'p95']);
    expect(routes.rows).toHaveLength(1);
    expect(column(routes, 'count')).toEqual([5]);
    expect(column(routes, 'errors_5xx')).toEqual([2]);

    const logs = await json(['logs', '--status', '5xx']);
    expect(column(logs, 'status').sort()).toEqual([500, 503]);
    const page = await json(['logs', '--limit', '2']);
    expect(page.rows).toHaveLength(2);
    const next = await json(['logs', '--limit', '2', '--cursor', page.meta.next as string]);
    expect(column(next, 'id')).not.toContain(column(page, 'id')[0]);
    const logsTable = await run(['query', 'logs', '--limit', '2', ...dir]);
    expect(logsTable.out).toMatch(/next page: tally query logs … --cursor \S+/);

    const explore = await json(['explore']);
    expect(column(explore, 'event').sort()).toEqual(['conversation_started', 'escalation_triggered']);
    const props = await json(['explore', '--event', 'conversation_started']);
    expect(column(props, 'property')).toEqual(
      expect.arrayContaining(['properties.channel', 'properties.conversationId']),
    );

    const viaJson = await json(['explore', '--query', '{"what":"events","range":{"last":"30d"}}']);
    expect(viaJson.rows).toEqual(explore.rows);
  }, 60_000);

  it('mistakes exit 2 and name the flag and what is allowed; failures exit 1', async () => {
    const bad = await run(['query', 'trends', '--event', 'a', '--interval', 'fortnight', ...dir]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/tally query trends: --interval: must be one of "hour", "day", "week", "month"/);
    expect(bad.err).toMatch(/Usage: tally query trends/);
    const noEvent = await run(['query', 'trends', ...dir]);
    expect(noEvent.code).toBe(2);
    expect(noEvent.err).toMatch(/--event/);
    expect((await run(['query', 'trends', '--event', 'a', '--format', 'xml', ...dir])).err).toMatch(
      /--format must be table, csv or json/,
    );
    expect((await run(['query', 'funnel', '--step', 'a', '--step', 'b', '--ordr', 'strict', ...dir])).err).toMatch(
      /unknown option --ordr; did you mean --order\?/,
    );
    const tenant = await run(['query', 'explore', '--tenant', 'nobody', ...dir]);
    expect(tenant.code).toBe(1);
    expect(tenant.err).toMatch(/no tenant "nobody" \(see tally tenants list\)/);
    expect((await run(['query', ...dir])).code).toBe(2);
  }, 60_000);

  it('rollups rebuild: a line per day, the same answers after', async () => {
    const before = await json(['trends', '--event', 'conversation_started', '--interval', 'hour', '--last', '72h']);
    const r = await run(['rollups', 'rebuild', ...dir]);
    expect(r.code, r.err).toBe(0);
    const day = new Date(T0).toISOString().slice(0, 10);
    expect(r.out).toContain(`${day}: 5 events, 5 request logs`);
    expect(r.out).toMatch(/rebuilt 1 day: 5 events, 5 request logs/);
    const after = await json(['trends', '--event', 'conversation_started', '--interval', 'hour', '--last', '72h']);
    expect(after.rows).toEqual(before.rows);
    expect((await run(['rollups', 'rebuild', '--from', 'last week', ...dir])).code).toBe(2);
    const none = await run(['rollups', 'rebuild', '--from', '2020-01-01', '--to', '2020-01-02', ...dir]);
    expect(none.out).toMatch(/rebuilt 1 day: 0 events, 0 request logs/);
  }, 60_000);

  it('with two tenants, asks which', async () => {
    const store = await createStore({ kind: 'pglite', dataDir: `${tmp.dir}/pglite` });
    try {
      await ensureTenant(store.sql, 'globex');
    } finally {
      await store.close();
    }
    const r = await run(['query', 'explore', ...dir]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/which tenant\? --tenant T \(one of: acme, globex\)/);
    expect((await run(['query', 'explore', '--tenant', 'globex', ...dir])).out).toMatch(/^no rows$/m);
  }, 60_000);
});

describe('tally query beside a running server', () => {
  const tmp = tempDir('tally-query-serve-');
  let serve: ServeProcess;

  beforeAll(async () => {
    serve = await spawnServe(['--data-dir', tmp.dir]);
    const key = serve.key as string;
    await send(serve.url, key, [
      event('conversation_started', { conversationId: 'c1', channel: 'web' }, { userId: 'u1' }),
      event('conversation_started', { conversationId: 'c2', channel: 'email' }, { userId: 'u2' }),
      event('escalation_triggered', { conversationId: 'c1', reason: 'angry' }, { userId: 'u1' }),
      requestLog({ route: '/x', url: '/x', status: 502 }),
    ]);
  }, 120_000);
  afterAll(async () => {
    serve?.proc.kill('SIGTERM');
    await new Promise((r) => serve?.proc.once('exit', r));
    tmp.cleanup();
  });

  it('answers through its admin API (the embedded database is the server’s), as a user runs it', async () => {
    const dir = ['--data-dir', tmp.dir];
    const r = await tallyProcess(['query', 'explore', ...dir]);
    expect(r.code, r.err).toBe(0);
    // listed: the server's catalog declares these events.
    expect(r.out).toMatch(/^event\s+count\s+last_seen\s+listed$/m);
    expect(r.out).toMatch(/^conversation_started\s+2\s.*\strue$/m);
    expect(r.out).toMatch(/^escalation_triggered\s+1\s.*\strue$/m);

    const logs = await run(['query', 'logs', '--status', '502', '--format', 'json', ...dir]);
    expect(logs.code, logs.err).toBe(0);
    expect((JSON.parse(logs.out) as { rows: unknown[] }).rows).toHaveLength(1);

    const bad = await run(['query', 'trends', '--event', 'a', '--measure', 'sum', ...dir]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--property: is required for measure "sum"/);

    const rebuild = await run(['rollups', 'rebuild', ...dir]);
    expect(rebuild.code, rebuild.err).toBe(0);
    expect(rebuild.out).toMatch(/^\d{4}-\d{2}-\d{2}: 3 events, 1 request logs$/m);
    const after = await run(['query', 'explore', ...dir]);
    expect(after.out).toMatch(/^conversation_started\s+2\s/m);
  }, 120_000);
});
