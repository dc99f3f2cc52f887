/**
 * The Catalog page in real Chromium against a seeded `tally serve`, with refused events sent by the test
 * (an unknown name, a wrong type, a missing property) and unlisted events the tenant accepts: events,
 * properties and the unlisted ones equal the explore answers, the quarantine by reason equals the admin
 * API's, a replay runs as a dry run, then for real once confirmed, and what it stored shows up; a read
 * key sees no quarantine and is told which key does; no console error or failed request, no serious axe
 * violation; the screenshot.
 */
import { isoTime, uuidv7 } from '@tally/core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type AdminApi, adminApi } from './support/admin.js';
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
import { recordsOf, column, statValue } from './support/read.js';

const VIEW = '#/catalog?range=7d&tz=UTC';
const COMMON = { range: { last: '7d' }, tz: 'UTC' };

const asText = (v: unknown) =>
  v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);

interface RejectedList {
  events: { name: string | null; code: string }[];
  counts: Record<string, number>;
}

const event = (name: string, properties: object, userId = 'u01') => ({
  id: uuidv7(),
  name,
  userId,
  properties,
  timestamp: isoTime(Date.now() - 60_000),
});

withChromium.describe('Catalog page', () => {
  let server: DashboardServer;
  let browser: Browser;
  let admin: AdminApi;
  const rejected = () => admin.call<RejectedList>('GET', `/rejected?tenant=${TENANT}&limit=100`);

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
    admin = adminApi(server);
    // Refused, one by one, into the quarantine: a name the catalog does not list (twice), a wrong type, a
    // required property missing.
    const refused = await server.send([
      event('promo_clicked', { campaign: 'spring' }),
      event('promo_clicked', { campaign: 'summer' }, 'u02'),
      event('checkout_completed', { orderId: 'o-x', plan: 'pro', amountCents: 'lots', currency: 'EUR' }),
      event('conversation_started', { conversationId: 'c-x' }),
    ]);
    expect(refused).toMatchObject({ accepted: 0 });
    expect(refused.rejected).toHaveLength(4);
    // The tenant then accepts unlisted events: these are stored, marked.
    await admin.call('PATCH', `/tenants/${TENANT}`, { acceptUnlisted: true });
    const accepted = await server.send([
      event('feature_flag_toggled', { flag: 'new-nav', on: true }),
      event('feature_flag_toggled', { flag: 'new-nav', on: 'yes' }, 'u03'),
      event('feature_flag_toggled', { flag: 'dark-mode', on: false }, 'u04'),
    ]);
    expect(accepted.accepted).toBe(3);
    for (const deadline = Date.now() + 30_000; ;) {
      const names = recordsOf(await server.query({ kind: 'explore', ...COMMON })).map((r) => r.event);
      if (names.includes('feature_flag_toggled')) break;
      if (Date.now() > deadline) throw new Error('the unlisted events were not stored');
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('events, unlisted events, properties and the quarantine equal the query and admin APIs; axe; screenshot', async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.admin, VIEW);
      await settled(page);

      const events = recordsOf(await server.query({ kind: 'explore', what: 'events', ...COMMON, limit: 1000 }));
      expect(await column(page, 'events', 'event')).toEqual(events.map((r) => r.event));
      expect(await column(page, 'events', 'count')).toEqual(events.map((r) => String(r.count)));
      expect(await column(page, 'events', 'last_seen')).toEqual(events.map((r) => r.last_seen));
      expect(await column(page, 'events', 'listed')).toEqual(events.map((r) => String(r.listed)));
      const total = events.reduce((s, r) => s + Number(r.count), 0);
      expect(await statValue(page, 'events')).toBe(String(total));
      expect(await statValue(page, 'names')).toBe(String(events.length));
      // The unlisted one is marked in the list and has its own card.
      const unlisted = events.filter((r) => r.listed === false).map((r) => r.event);
      expect(unlisted).toEqual(['feature_flag_toggled']);
      expect(await column(page, 'unlisted', 'event')).toEqual(unlisted);
      expect(await statValue(page, 'unlisted')).toBe('1');
      expect(
        await page
          .locator('[data-card="events"] tr', { hasText: 'feature_flag_toggled' })
          .locator('.badge')
          .textContent(),
      ).toBe('unlisted');

      const props = recordsOf(await server.query({ kind: 'explore', what: 'properties', ...COMMON, limit: 1000 }));
      for (const col of ['event', 'property', 'type', 'count', 'top_values']) {
        expect(await column(page, 'properties', col), col).toEqual(props.map((r) => asText(r[col])));
      }
      // `on` came as a boolean and as a string: two types under one key.
      expect(
        props.filter((r) => r.event === 'feature_flag_toggled' && r.property === 'properties.on').map((r) => r.type),
      ).toEqual(['boolean', 'string']);
      expect(await statValue(page, 'mixed')).toBe('1');

      const q = await rejected();
      expect(q.counts).toEqual({ TALLY_INVALID_TYPE: 1, TALLY_MISSING_PROPERTY: 1, TALLY_UNKNOWN_EVENT: 2 });
      const reasons = Object.entries(q.counts).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
      expect(await column(page, 'quarantine', 'code')).toEqual(reasons.map(([code]) => code));
      expect(await column(page, 'quarantine', 'count')).toEqual(reasons.map(([, n]) => String(n)));
      expect(await column(page, 'rejected', 'name')).toEqual(q.events.map((e) => e.name));
      expect(await column(page, 'rejected', 'code')).toEqual(q.events.map((e) => e.code));

      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'catalog');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it("an event's properties by link, in the URL: a reload keeps them; 'Every event' goes back", async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.read, VIEW);
      await settled(page);
      await page.getByRole('link', { name: 'Properties of checkout_completed' }).first().click();
      await page.waitForURL(/event=checkout_completed/);
      await settled(page);
      const props = recordsOf(
        await server.query({
          kind: 'explore',
          what: 'properties',
          event: 'checkout_completed',
          ...COMMON,
          limit: 1000,
        }),
      );
      expect(props.length).toBeGreaterThan(0);
      const shown = async () => ({
        title: await page.locator('[data-card="properties"] h2').textContent(),
        property: await column(page, 'properties', 'property'),
        count: await column(page, 'properties', 'count'),
        top: await column(page, 'properties', 'top_values'),
      });
      const before = await shown();
      expect(before).toEqual({
        title: 'Properties of checkout_completed',
        property: props.map((r) => r.property),
        count: props.map((r) => String(r.count)),
        top: props.map((r) => r.top_values),
      });
      await page.reload();
      await settled(page);
      expect(await shown()).toEqual(before);
      await page.locator('[data-control="event"]').selectOption('');
      await page.waitForURL((u) => !u.hash.includes('event='));
      await settled(page);
      expect(await page.locator('[data-card="properties"] h2').textContent()).toBe('Properties');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('replay of one reason: a dry run says what would pass, the confirmed replay stores it once', async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.admin, VIEW);
      await settled(page);
      await page.locator('[data-card="quarantine"] a', { hasText: 'TALLY_UNKNOWN_EVENT' }).click();
      await page.waitForURL(/reason=TALLY_UNKNOWN_EVENT/);
      await settled(page);
      expect(await column(page, 'rejected', 'name')).toEqual(['promo_clicked', 'promo_clicked']);

      await page.getByRole('button', { name: 'Replay 2 refused for TALLY_UNKNOWN_EVENT…' }).click();
      const dry = page.locator('[data-replay="confirm"]');
      await dry.waitFor();
      // The tenant now accepts unlisted events: both would pass. Nothing has changed yet.
      expect(await dry.textContent()).toContain('2 examined: 2 would be stored, 0 already stored, 0 still refused.');
      expect((await rejected()).counts.TALLY_UNKNOWN_EVENT).toBe(2);

      await page.getByRole('button', { name: 'Replay 2 now' }).click();
      const done = page.locator('[data-replay="done"]');
      await done.waitFor();
      expect(await done.textContent()).toContain('2 examined: 2 stored, 0 already stored, 0 still refused.');
      const after = await rejected();
      expect(after.counts).toEqual({ TALLY_INVALID_TYPE: 1, TALLY_MISSING_PROPERTY: 1 });
      await page.locator('[data-card="rejected"] td.empty').waitFor();

      // What the replay stored is an unlisted event now: the page asked again.
      await page.locator('[data-card="unlisted"] td[data-col="event"][data-value="promo_clicked"]').waitFor();
      const events = recordsOf(await server.query({ kind: 'explore', what: 'events', ...COMMON, limit: 1000 }));
      expect(events.find((r) => r.event === 'promo_clicked')).toMatchObject({ count: 2, listed: false });
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a read key sees no quarantine and is told which key does; no admin call; phone width', async () => {
    const t = await openPage(browser, { viewport: PHONE });
    try {
      const { page } = t;
      const admins: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/v1/admin/')) admins.push(r.url());
      });
      await signIn(page, server.url, server.keys.read, VIEW);
      await settled(page);
      expect(await page.locator('[data-needs="admin"]').textContent()).toMatch(
        /admin keys only.*tally keys create --tenant acme --scope admin/,
      );
      expect(await page.locator('[data-card="rejected"]').count()).toBe(0);
      expect(admins).toEqual([]);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).toBeLessThanOrEqual(0);
      expect(await seriousViolations(page)).toEqual([]);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
