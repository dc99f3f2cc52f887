/**
 * The Live page in real Chromium against a seeded `tally serve`: events and request logs sent with the
 * write key while the page is open appear in it (newest first, a log linking to its page), the filters
 * are the endpoint's and live in the URL (a reload keeps them), pause holds what arrives and says how
 * many, resume shows them; CSV of the rows; no console error or failed request, no serious axe
 * violation, usable at phone width; the screenshot.
 */
import { readFileSync } from 'node:fs';
import { isoTime, uuidv7 } from '@tally/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  launchBrowser,
  openPage,
  PHONE,
  screenshot,
  seriousViolations,
  signIn,
  withChromium,
} from './support/browser.js';
import { signInServerAdmin, adminApi } from './support/admin.js';
import { seedData, type SeedEnvelope } from './support/seed.js';
import { type DashboardServer, startDashboardServer } from './support/server.js';

const VIEW = '#/live?tz=UTC';

/** Sends envelopes with the write key, as an app does; all must be accepted. */
async function send(server: DashboardServer, batch: SeedEnvelope[]): Promise<void> {
  const body = await server.send(batch);
  if (body.accepted !== batch.length) throw new Error(`send: ${JSON.stringify(body)}`);
}

/** Events of the seed's kinds, sent now: fresh ids, this moment's time. */
function fresh(kind: 'events' | 'logs', n: number, userId?: string): SeedEnvelope[] {
  const seed = seedData(Date.now());
  return seed[kind].slice(0, n).map((e) => {
    const id = uuidv7();
    const timestamp = isoTime(Date.now());
    if (kind === 'logs') return { ...e, id, timestamp, properties: { ...e.properties, id, timestamp } };
    return { ...e, id, timestamp, ...(userId ? { userId, anonymousId: undefined } : {}) };
  });
}

const cells = (page: Page, col: string) =>
  page
    .locator(`[data-card="live"] td[data-col="${col}"]`)
    .evaluateAll((tds) => tds.map((td) => td.getAttribute('data-value')));

async function connected(page: Page): Promise<void> {
  await page.locator('[data-live-status="live"]').waitFor({ timeout: 30_000 });
}

withChromium.describe('Live page', () => {
  let server: DashboardServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('an event sent during the test appears in Live; a request log too, linking to its page; CSV; axe; screenshot', async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.read, VIEW);
      await connected(page);
      expect(await page.locator('[data-card="live"] td.empty').textContent()).toMatch(/waiting for the next event/);

      const user = `live-${uuidv7().slice(-8)}`;
      const [event] = fresh('events', 1, user) as [SeedEnvelope];
      await send(server, [event]);
      const row = page.locator('[data-card="live"] tbody tr', {
        has: page.locator(`td[data-col="user"][data-value="${user}"]`),
      });
      await row.waitFor({ timeout: 15_000 });
      expect(await row.locator('td[data-col="name"]').getAttribute('data-value')).toBe(event.name);
      expect(await row.locator('td[data-col="kind"]').getAttribute('data-value')).toBe('event');
      expect(await row.locator('td[data-col="timestamp"]').getAttribute('data-value')).toBe(event.timestamp);
      expect(JSON.parse((await row.locator('td[data-col="details"]').getAttribute('data-value')) as string)).toEqual(
        event.properties,
      );

      // More traffic: events of several kinds, then request logs; the newest is on top.
      const events = fresh('events', 8);
      const logs = fresh('logs', 5);
      await send(server, events);
      await send(server, logs);
      await page.waitForFunction(() => document.querySelectorAll('[data-card="live"] tbody tr').length >= 14);
      const kinds = await cells(page, 'kind');
      expect(kinds.slice(0, 5)).toEqual(['log', 'log', 'log', 'log', 'log']);
      expect(kinds.slice(5, 13)).toEqual(Array(8).fill('event'));
      expect(await cells(page, 'name')).toEqual([
        ...logs.map((l) => `${l.properties.method} ${l.properties.route}`).reverse(),
        ...events.map((e) => e.name).reverse(),
        event.name,
      ]);
      expect(await cells(page, 'status')).toEqual([
        ...logs.map((l) => String(l.properties.status)).reverse(),
        ...Array(9).fill(''),
      ]);
      const newestLog = logs.at(-1) as SeedEnvelope;
      expect(await page.locator('[data-card="live"] tbody tr').first().locator('a').getAttribute('href')).toBe(
        `#/logs/${newestLog.id}?tz=UTC`,
      );
      expect(await page.locator('[data-stat="received"] .stat-value').getAttribute('data-value')).toBe('14');

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('[data-card="live"] .card-actions button', { hasText: 'CSV' }).click(),
      ]);
      const csv = readFileSync(await download.path(), 'utf8').split('\r\n');
      expect(csv[0]).toBe(
        'received_at,timestamp,kind,id,name,route,url,status,duration_ms,user_id,anonymous_id,count,details',
      );
      expect(csv.length).toBe(14 + 2);
      expect(csv[1]).toContain(`,log,${newestLog.id},`);

      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'live');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('pause holds what arrives and says how many; resume shows them, newest first', async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.read, VIEW);
      await connected(page);
      const first = fresh('events', 1);
      await send(server, first);
      await page.locator('[data-card="live"] tbody tr td[data-col="kind"]').first().waitFor();

      await page.getByRole('button', { name: 'Pause' }).click();
      await page.waitForURL(/paused=1/);
      await page.locator('[data-live-status="paused"]').waitFor();
      const held = fresh('events', 3);
      await send(server, held);
      const resume = page.getByRole('button', { name: 'Resume (3 new)' });
      await resume.waitFor({ timeout: 15_000 });
      expect(await page.locator('[data-stat="held"] .stat-value').getAttribute('data-value')).toBe('3');
      // The list did not move.
      expect(await page.locator('[data-card="live"] tbody tr').count()).toBe(1);

      await resume.click();
      await page.locator('[data-live-status="live"]').waitFor();
      expect(page.url()).not.toMatch(/paused/);
      expect(await cells(page, 'name')).toEqual([...first, ...held].map((e) => e.name).reverse());
      expect(await page.locator('[data-stat="held"] .stat-value').getAttribute('data-value')).toBe('0');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it("filters are the endpoint's, held in the URL: a reload keeps them and only matching rows arrive", async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.read, VIEW);
      await connected(page);
      const user = `filter-${uuidv7().slice(-8)}`;
      await page.getByLabel('Show').selectOption('events');
      await page.getByLabel('Event names (comma-separated)').fill('checkout_completed, user_signed_up');
      await page.getByLabel('User id').fill(user);
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.waitForURL(/kind=events/);
      const url = page.url();
      expect(url).toContain('name=checkout_completed%2Cuser_signed_up');
      expect(url).toContain(`user=${user}`);
      await page.reload();
      await connected(page);
      expect(await page.getByLabel('Event names (comma-separated)').inputValue()).toBe(
        'checkout_completed,user_signed_up',
      );
      expect(await page.getByLabel('User id').inputValue()).toBe(user);
      expect(await page.getByLabel('Show').inputValue()).toBe('events');

      const seed = seedData(Date.now());
      const at = isoTime(Date.now());
      const pick = (name: string) => ({
        ...(seed.events.find((e) => e.name === name) as SeedEnvelope),
        id: uuidv7(),
        timestamp: at,
      });
      const wanted = { ...pick('checkout_completed'), userId: user };
      await send(server, [
        { ...pick('message_sent'), userId: user },
        { ...pick('user_signed_up'), userId: 'someone-else' },
        ...fresh('logs', 2).map((l) => ({ ...l, properties: { ...l.properties, userId: user } })),
        wanted,
      ]);
      await page.locator(`[data-card="live"] td[data-col="name"][data-value="checkout_completed"]`).waitFor();
      // One batch, stored and streamed in order: what the filters let through would have come before it.
      expect(await cells(page, 'name')).toEqual(['checkout_completed']);
      expect(await cells(page, 'user')).toEqual([user]);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a server-wide admin key reads the tenant it chose; phone width does not scroll sideways', async () => {
    const key = await adminApi(server).serverAdminKey();
    const t = await openPage(browser, { viewport: PHONE });
    try {
      const { page } = t;
      await signInServerAdmin(page, server.url, key, VIEW);
      await connected(page);
      const user = `admin-${uuidv7().slice(-8)}`;
      await send(server, fresh('events', 1, user));
      await page.locator(`[data-card="live"] td[data-col="user"][data-value="${user}"]`).waitFor({ timeout: 15_000 });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      expect(await seriousViolations(page)).toEqual([]);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
