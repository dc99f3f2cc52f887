/**
 * The System page in real Chromium against a seeded `tally serve`, signed in with a server-wide admin
 * key: the ingestion rate equals hourly trends of every event name, the lag, writer queue, dead letters,
 * job runs (an archive run made by the test), storage, archive and keys equal the admin API's answers;
 * a tenant's admin key sees the rate and its tenant's keys and is told which key shows the rest; a read
 * key has no System in the nav. No console error or failed request, no serious axe violation; the
 * screenshot.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatBytes, formatNumber } from '../src/app/format.js';
import { type AdminApi, adminApi, signInServerAdmin } from './support/admin.js';
import {
  launchBrowser,
  openPage,
  PHONE,
  screenshot,
  seriousViolations,
  signIn,
  withChromium,
  settled,
} from './support/browser.js';
import { type DashboardServer, startDashboardServer, TENANT } from './support/server.js';
import { recordsOf, column, statValue, downloadCsv } from './support/read.js';

const VIEW = '#/system?range=7d&tz=UTC';
const COMMON = { range: { last: '7d' }, tz: 'UTC' };

withChromium.describe('System page', () => {
  let server: DashboardServer;
  let browser: Browser;
  let admin: AdminApi;
  let serverKey: string;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
    admin = adminApi(server);
    serverKey = await admin.serverAdminKey();
    // One more job run (the scheduler ran each job at start): the archive job, which finds nothing old
    // enough to archive in the seed.
    await admin.run('/archive/run');
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it("a server-wide admin key: the rate, the server's state, jobs, storage, archive and keys equal the APIs; axe; screenshot", async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signInServerAdmin(page, server.url, serverKey, VIEW);
      await settled(page);

      // Ingestion rate: an hourly trends count of every event, averaged over the hours begun.
      const hourly = recordsOf(
        await server.query({ kind: 'trends', ...COMMON, interval: 'hour', series: [{ event: null }] }),
      );
      const perHour = new Map<string, number>();
      for (const r of hourly) perHour.set(r.time as string, (perHour.get(r.time as string) ?? 0) + Number(r.value));
      const begun = [...perHour].filter(([time]) => Date.parse(time) <= Date.now());
      const total = begun.reduce((s, [, v]) => s + v, 0);
      expect(total).toBe(server.seed?.events.length);
      const average = (hours: number) => String(Math.round((total / hours) * 100) / 100);
      // The page counted the hours begun a moment earlier: the same, unless an hour began in between.
      expect([average(begun.length), average(begun.length - 1)]).toContain(await statValue(page, 'ingestion'));
      expect(await page.locator('[data-stat="ingestion"] .stat-hint').textContent()).toBe(
        `peak ${formatNumber(Math.max(...begun.map(([, v]) => v)))}/h · ${formatNumber(total)} events`,
      );
      expect(await downloadCsv(page, 'ingestion-rate')).toBe(
        ['time,events', ...[...perHour].map(([time, v]) => `${new Date(time).toISOString()},${v}`)].join('\r\n') +
          '\r\n',
      );

      // The server's state: the same answer a moment later (nothing is being sent), the lag grown by that moment.
      const system = await admin.call<{
        lagSeconds: number;
        writer: Record<string, number>;
        spool: { deadLetterRows: number; files: unknown[] };
        live: { clients: number };
      }>('GET', '/system', undefined, serverKey);
      expect(await statValue(page, 'queue')).toBe(String(system.writer.queued));
      expect(await statValue(page, 'dead-letters')).toBe(String(system.spool.deadLetterRows));
      expect(await statValue(page, 'live')).toBe(String(system.live.clients));
      const lag = Number(await statValue(page, 'lag'));
      expect(lag).toBeGreaterThan(0);
      expect(lag).toBeLessThanOrEqual(system.lagSeconds);
      expect(system.lagSeconds - lag).toBeLessThan(30);
      const counters = Object.fromEntries((await column(page, 'writer', 'name')).map((n, i) => [n, i]));
      const values = await column(page, 'writer', 'value');
      for (const k of ['queued', 'stored', 'duplicates', 'deadLettered', 'retries']) {
        expect(values[counters[k as string] as number], k).toBe(String(system.writer[k]));
      }
      expect(system.writer.stored).toBe((server.seed?.events.length ?? 0) + (server.seed?.logs.length ?? 0));
      expect(await page.locator('[data-card="spool"] td.empty').textContent()).toMatch(/every row the writer took/);

      const jobs = (await admin.call<{ runs: { id: string; job: string; outcome: string }[] }>('GET', '/jobs?limit=30'))
        .runs;
      // The scheduler's runs at start, and the test's archive run.
      expect(jobs.map((j) => [j.job, j.outcome])).toContainEqual(['archive', 'ok']);
      expect(await column(page, 'jobs', 'job')).toEqual(jobs.map((j) => j.job));
      expect(await column(page, 'jobs', 'outcome')).toEqual(jobs.map((j) => j.outcome));

      const stats = await admin.call<{
        tables: { table: string; rows: number }[];
        archive: { files: number; rows: number; bytes: number; rawBytes: number; cleanedRows: number };
      }>('GET', '/stats');
      expect(await column(page, 'storage', 'table')).toEqual(stats.tables.map((s) => s.table));
      const rows = await column(page, 'storage', 'rows');
      stats.tables.forEach((s, i) => {
        // The page measured before this call; each call records one more storage_stats row, in no listed table.
        if (s.table !== 'job_runs') expect(rows[i], s.table).toBe(String(s.rows));
      });
      const a = stats.archive;
      expect(await page.locator('[data-archive-summary]').textContent()).toBe(
        `${formatNumber(a.files)} files, ${formatNumber(a.rows)} rows, ${formatBytes(a.bytes)} compressed ` +
          `(${formatBytes(a.rawBytes)} raw); detail removed for ${formatNumber(a.cleanedRows)} rows.`,
      );
      // The seed's days older than the archive age were archived by the runs.
      expect(a.rows).toBeGreaterThan(0);
      const all = (
        await admin.call<{ parts: { tenantId: string; table: string; day: string; rows: number }[] }>('GET', '/archive')
      ).parts;
      expect(all.reduce((n, p) => n + p.rows, 0)).toBe(a.rows);
      const parts = all.slice(0, 50);
      expect(await column(page, 'archive', 'tenant')).toEqual(parts.map((p) => p.tenantId));
      expect(await column(page, 'archive', 'table')).toEqual(parts.map((p) => p.table));
      expect(await column(page, 'archive', 'day')).toEqual(parts.map((p) => p.day));
      expect(await column(page, 'archive', 'rows')).toEqual(parts.map((p) => String(p.rows)));

      const keys = (
        await admin.call<{ keys: { id: string; tenantId: string | null; scope: string }[] }>('GET', '/keys')
      ).keys;
      expect(await column(page, 'keys', 'id')).toEqual(keys.map((k) => k.id));
      expect(await column(page, 'keys', 'tenant')).toEqual(keys.map((k) => k.tenantId ?? ''));
      expect(await column(page, 'keys', 'scope')).toEqual(keys.map((k) => k.scope));
      expect(await page.locator('[data-card="keys"] .badge', { hasText: 'this session' }).count()).toBe(1);

      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'system');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it("a tenant's admin key: the rate and its tenant's keys, told which key shows the rest; no refused call; phone width", async () => {
    const t = await openPage(browser, { viewport: PHONE });
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.admin, VIEW);
      await settled(page);
      expect(await page.locator('[data-needs="server-admin"]').textContent()).toMatch(
        /server-wide admin key \(tally keys create --scope admin, without --tenant\)/,
      );
      for (const card of ['writer', 'spool', 'jobs', 'storage', 'archive']) {
        expect(await page.locator(`[data-card="${card}"]`).count(), card).toBe(0);
      }
      expect(await statValue(page, 'ingestion')).not.toBe('');
      const keys = (await admin.call<{ keys: { id: string }[] }>('GET', `/keys?tenant=${TENANT}`)).keys;
      expect(await column(page, 'keys', 'id')).toEqual(keys.map((k) => k.id));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      expect(await seriousViolations(page)).toEqual([]);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a read key has no System in the nav, and is told which key shows it when it opens it by URL', async () => {
    const t = await openPage(browser);
    try {
      await signIn(t.page, server.url, server.keys.read, '#/overview?range=7d&tz=UTC');
      const nav = t.page.getByRole('navigation', { name: 'Pages' });
      expect(await nav.getByRole('link', { name: 'Catalog' }).count()).toBe(1);
      expect(await nav.getByRole('link', { name: 'System' }).count()).toBe(0);
      await t.page.goto(`${server.url}/#/system?range=7d&tz=UTC`);
      expect(await t.page.locator('[data-needs="admin"]').textContent()).toBe(
        'System is shown to admin keys: sign in with an admin key (tally keys create --tenant <id> --scope admin).',
      );
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
