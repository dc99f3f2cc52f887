/**
 * The Overview page in real Chromium against a seeded `tally serve`: every number it shows equals the
 * query API's answer for the same range and zone (and the seed's own counts where it has them), its CSV is
 * the data shown, a copied link shows the same view, no console error or failed request, no serious axe
 * violation; screenshots at 1280 px and at phone width; first paint and first chart timings printed.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatNumber, formatPercent } from '../src/app/format.js';
import {
  launchBrowser,
  openPage,
  PHONE,
  screenshot,
  seriousViolations,
  signIn,
  type TestPage,
  withChromium,
  settled,
} from './support/browser.js';
import { type DashboardServer, startDashboardServer } from './support/server.js';
import { recordsOf, column, statValue, downloadCsv } from './support/read.js';

const TZ = 'Europe/Berlin';
const VIEW = `#/overview?range=7d&tz=${encodeURIComponent(TZ)}`;

withChromium.describe('Overview page', () => {
  let server: DashboardServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  describe('against the query API', () => {
    let t: TestPage;
    beforeAll(async () => {
      t = await openPage(browser);
      await signIn(t.page, server.url, server.keys.read, VIEW);
      await settled(t.page);
    }, 60_000);
    afterAll(() => t?.close());

    it('shows the numbers the query API answers for the same range and zone', async () => {
      const { page } = t;
      const seed = server.seed as NonNullable<DashboardServer['seed']>;
      const range = { last: '7d' };
      const common = { range, tz: TZ };
      const explore = recordsOf(await server.query({ kind: 'explore', ...common, limit: 200 }));
      const names = explore.map((r) => r.event as string);

      // Events: the explore counts, which are the seed's.
      const total = explore.reduce((s, r) => s + Number(r.count), 0);
      expect(total).toBe(seed.events.length);
      expect(await statValue(page, 'events')).toBe(String(total));
      expect(Object.fromEntries(explore.map((r) => [r.event, r.count]))).toEqual(seed.counts);

      // Active users: whoever did any event, once each: the funnel's step 1 and the seed's distinct users.
      const funnel = recordsOf(
        await server.query({
          kind: 'funnel',
          ...common,
          order: 'any',
          window: '1d',
          steps: names.map((event) => ({ event })),
        }),
      );
      const distinct = new Set(seed.events.map((e) => e.userId ?? e.anonymousId)).size;
      expect(funnel[0]?.entered).toBe(distinct);
      expect(await statValue(page, 'active-users')).toBe(String(distinct));

      // Requests and the 5xx share: the routes answer, which counts every seeded log.
      const routes = recordsOf(await server.query({ kind: 'routes', ...common, sort: 'count', limit: 1000 }));
      const requests = routes.reduce((s, r) => s + Number(r.count), 0);
      const fivexx = routes.reduce((s, r) => s + Number(r.errors_5xx), 0);
      expect(requests).toBe(seed.logs.length);
      expect(fivexx).toBe(seed.logs.filter((l) => Number(l.properties.status) >= 500).length);
      expect(await statValue(page, 'requests')).toBe(String(requests));
      expect(Number(await statValue(page, 'error-rate'))).toBeCloseTo(fivexx / requests, 12);
      expect(await page.locator('[data-stat="error-rate"] .stat-value').textContent()).toBe(
        formatPercent(fivexx / requests),
      );

      // Ingestion rate: events per hour from hourly trends, averaged over the hours begun, and the peak.
      const hourly = recordsOf(
        await server.query({ kind: 'trends', ...common, interval: 'hour', series: names.map((event) => ({ event })) }),
      );
      const perHour = new Map<string, number>();
      for (const r of hourly) perHour.set(r.time as string, (perHour.get(r.time as string) ?? 0) + Number(r.value));
      // The page asks for all events at once (`event: null`): the same counts as the names summed.
      const all = recordsOf(
        await server.query({ kind: 'trends', ...common, interval: 'hour', series: [{ event: null }] }),
      );
      expect(new Map(all.map((r) => [r.time as string, Number(r.value)]))).toEqual(perHour);
      const begun = [...perHour].filter(([time]) => Date.parse(time) <= Date.now());
      expect(begun.reduce((s, [, v]) => s + v, 0)).toBe(total);
      const average = Math.round((total / begun.length) * 100) / 100;
      // The page counted the hours begun a moment earlier: the same, unless an hour began in between.
      const averageBefore = Math.round((total / (begun.length - 1)) * 100) / 100;
      expect([String(average), String(averageBefore)]).toContain(await statValue(page, 'ingestion'));
      const peak = Math.max(...begun.map(([, v]) => v));
      expect(await page.locator('[data-stat="ingestion"] .stat-hint').textContent()).toContain(
        `peak ${formatNumber(peak)}/h`,
      );

      // Top events: explore's rows, in its order.
      expect(await column(page, 'top-events', 'event')).toEqual(names.slice(0, 10));
      expect(await column(page, 'top-events', 'count')).toEqual(explore.slice(0, 10).map((r) => String(r.count)));

      // Top routes: the routes answer's first ten, with error rate and p95.
      const top = routes.slice(0, 10);
      expect(await column(page, 'top-routes', 'route')).toEqual(top.map((r) => r.route));
      // Each route links to its own page.
      const link = await page.locator('[data-card="top-routes"] td[data-col="route"] a').first().getAttribute('href');
      const first = top[0] as Record<string, unknown>;
      expect(link?.startsWith(`#/routes/${first.method}/${encodeURIComponent(String(first.route))}?`), link ?? '').toBe(
        true,
      );
      expect(await column(page, 'top-routes', 'count')).toEqual(top.map((r) => String(r.count)));
      expect(await column(page, 'top-routes', 'error_rate')).toEqual(top.map((r) => String(r.error_rate)));
      expect(await column(page, 'top-routes', 'p95_ms')).toEqual(top.map((r) => String(r.p95_ms)));

      // Recent 5xx: the logs answer with the status filter, newest first.
      const logs = recordsOf(
        await server.query({ kind: 'logs', ...common, filters: { statusClass: '5xx' }, limit: 10 }),
      );
      expect(logs.length).toBeGreaterThan(0);
      expect(await column(page, 'recent-5xx', 'time')).toEqual(logs.map((r) => r.time));
      expect(await column(page, 'recent-5xx', 'status')).toEqual(logs.map((r) => String(r.status)));
      expect(await column(page, 'recent-5xx', 'url')).toEqual(logs.map((r) => r.url));

      // Events per day (7 days > 2: daily buckets in Berlin), as the chart's CSV saves them.
      const daily = recordsOf(
        await server.query({ kind: 'trends', ...common, interval: 'day', series: names.map((event) => ({ event })) }),
      );
      const perDay = new Map<string, number>();
      for (const r of daily) perDay.set(r.time as string, (perDay.get(r.time as string) ?? 0) + Number(r.value));
      const csv = await downloadCsv(page, 'events-over-time');
      expect(csv).toBe(
        ['time,events', ...[...perDay].map(([time, v]) => `${new Date(time).toISOString()},${v}`)].join('\r\n') +
          '\r\n',
      );
      const topCsv = await downloadCsv(page, 'top-events');
      expect(topCsv.split('\r\n')[0]).toBe('event,count,last_seen,listed');
      expect(topCsv.split('\r\n').length).toBe(explore.length + 2);

      expect(t.problems()).toEqual([]);
    });

    it('has no serious accessibility violation; screenshots at 1280 px and phone width', async () => {
      const { page } = t;
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'overview');

      const phone = await openPage(browser, { viewport: PHONE });
      try {
        await signIn(phone.page, server.url, server.keys.read, VIEW);
        await settled(phone.page);
        // Nothing wider than the screen: the page does not scroll sideways.
        const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow).toBeLessThanOrEqual(0);
        expect(await seriousViolations(phone.page)).toEqual([]);
        await screenshot(phone.page, 'overview-phone');
        expect(phone.problems()).toEqual([]);
      } finally {
        await phone.close();
      }
      expect(t.problems()).toEqual([]);
    });
  });

  it('dark theme: the toggle sets it, localStorage keeps it across a reload, axe finds no serious violation', async () => {
    const t = await openPage(browser);
    try {
      await signIn(t.page, server.url, server.keys.read, VIEW);
      await settled(t.page);
      // Until the toggle is pressed, the system's (here light) choice applies.
      expect(await t.page.evaluate(() => document.documentElement.getAttribute('data-theme'))).toBeNull();
      await t.page.getByRole('button', { name: 'Switch to dark theme' }).click();
      await settled(t.page);
      const background = () => t.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      expect(await background()).toBe('rgb(15, 18, 22)');
      expect(await t.page.evaluate(() => localStorage.getItem('tally.theme'))).toBe('dark');
      await t.page.reload();
      await settled(t.page);
      expect(await background()).toBe('rgb(15, 18, 22)');
      expect(await seriousViolations(t.page)).toEqual([]);
      await t.page.screenshot({ path: '/tmp/tally-overview-dark.png' });
      await t.page.getByRole('button', { name: 'Switch to light theme' }).click();
      expect(await background()).toBe('rgb(246, 247, 249)');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a query the API refuses shows its code and message in each card, never a blank', async () => {
    const t = await openPage(browser);
    try {
      // More than the 400 days a range may span.
      await signIn(t.page, server.url, server.keys.read, '#/overview?from=2020-01-01&to=2026-01-01&tz=UTC');
      t.expect(/^400 POST .*\/v1\/query$/);
      t.expect(/status of 400/);
      await t.page.locator('[data-card="top-events"] .error-box').waitFor();
      const text = await t.page.locator('[data-card="top-events"] .error-box').textContent();
      expect(text).toMatch(/TALLY_BAD_QUERY.*range/);
      await t.page.locator('[data-card="top-routes"] .error-box').waitFor();
      await t.page.locator('[data-card="recent-5xx"] .error-box').waitFor();
      expect(await t.page.getByRole('alert').count()).toBeGreaterThanOrEqual(3);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a key revoked while signed in: the next load goes back to sign-in, saying why', async () => {
    const t = await openPage(browser);
    try {
      const key = await server.createKey('read');
      await signIn(t.page, server.url, key, VIEW);
      await settled(t.page);
      await server.revokeKey(key);
      t.expect(/^401 POST .*\/v1\/query$/);
      t.expect(/status of 401/);
      await t.page.reload();
      await t.page.getByLabel('Read key').waitFor();
      expect(await t.page.getByRole('status').textContent()).toMatch(/no longer accepts this key/);
      expect(await t.page.evaluate(() => sessionStorage.length)).toBe(0);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('keyboard: a skip link first, then the nav; focus is visible', async () => {
    const t = await openPage(browser);
    try {
      await signIn(t.page, server.url, server.keys.read, VIEW);
      await settled(t.page);
      const focused = () =>
        t.page.evaluate(() => {
          const el = document.activeElement as HTMLElement;
          const style = getComputedStyle(el);
          return { text: el.textContent?.trim(), outline: style.outlineStyle, width: style.outlineWidth };
        });
      // From the top: the skip link, the brand, theme, sign-out, then the pages.
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        await t.page.keyboard.press('Tab');
        names.push((await focused()).text ?? '');
        if (i === 0) expect(await focused()).toMatchObject({ outline: 'solid', width: '2px' });
      }
      expect(names).toEqual(['Skip to content', 'Tally', 'Dark', 'Sign out', 'Overview', 'Trends']);
      expect(await focused()).toMatchObject({ outline: 'solid', width: '2px' });
      await t.page.keyboard.press('Tab');
      await t.page.keyboard.press('Enter');
      await t.page.waitForURL(/#\/funnels\?/);
      expect(t.page.url()).toContain(`tz=${encodeURIComponent(TZ)}`);
      // The skip link moves focus past the header to the page.
      await t.page.reload();
      await t.page.keyboard.press('Tab');
      await t.page.keyboard.press('Enter');
      expect(await t.page.evaluate(() => document.activeElement?.id)).toBe('main');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a custom range: first and last day shown, the URL holds from and the exclusive to', async () => {
    const t = await openPage(browser);
    try {
      await signIn(t.page, server.url, server.keys.read, '#/overview?range=7d&tz=UTC');
      await settled(t.page);
      const day = (offset: number) => new Date(server.anchor - offset * 86_400_000).toISOString().slice(0, 10);
      await t.page.getByLabel('Range').selectOption('custom');
      await t.page.getByLabel('First day').fill(day(3));
      await t.page.getByLabel('Last day').fill(day(1));
      await t.page.getByRole('button', { name: 'Apply' }).click();
      await t.page.waitForURL(new RegExp(`from=${day(3)}&to=${day(0)}`));
      await settled(t.page);
      expect(await t.page.getByLabel('Range').inputValue()).toBe('custom');
      const events = recordsOf(
        await server.query({ kind: 'explore', range: { from: day(3), to: day(0) }, tz: 'UTC', limit: 200 }),
      );
      expect(await statValue(t.page, 'events')).toBe(String(events.reduce((s, r) => s + Number(r.count), 0)));
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a copied URL, reloaded in a new session, shows the same view', async () => {
    const a = await openPage(browser);
    const b = await openPage(browser);
    try {
      await signIn(a.page, server.url, server.keys.read, '#/overview');
      await settled(a.page);
      // Change the view with the header's controls, as a user would.
      await a.page.getByLabel('Range').selectOption('30d');
      await a.page.getByLabel('Time zone').selectOption('America/New_York');
      await a.page.waitForURL(/range=30d/);
      await a.page.waitForURL(/tz=America%2FNew_York/);
      await settled(a.page);
      const url = a.page.url();
      const shown = async (page: Page) => ({
        range: await page.getByLabel('Range').inputValue(),
        tz: await page.getByLabel('Time zone').inputValue(),
        sub: await page.locator('.page-sub').textContent(),
        stats: await page.locator('.stat-value').evaluateAll((els) => els.map((e) => e.getAttribute('data-value'))),
        events: await column(page, 'top-events', 'event'),
        routes: await column(page, 'top-routes', 'route'),
      });
      const before = await shown(a.page);
      expect(before.range).toBe('30d');
      expect(before.tz).toBe('America/New_York');

      await signIn(b.page, server.url, server.keys.read, url.slice(url.indexOf('#')));
      await settled(b.page);
      expect(b.page.url()).toBe(url);
      expect(await shown(b.page)).toEqual(before);
      // And a plain reload of the tab keeps it too (the session survives in this tab).
      await a.page.reload();
      await settled(a.page);
      expect(await shown(a.page)).toEqual(before);
      expect(a.problems()).toEqual([]);
      expect(b.problems()).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('first paint and first chart drawn, on a signed-in load of the Overview', async () => {
    const t = await openPage(browser);
    try {
      await signIn(t.page, server.url, server.keys.read, VIEW);
      await settled(t.page);
      const samples: { fcp: number; chart: number }[] = [];
      for (let i = 0; i < 5; i++) {
        await t.page.reload();
        await settled(t.page);
        samples.push(
          await t.page.evaluate(() => ({
            fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? NaN,
            chart: performance.getEntriesByName('tally:first-chart')[0]?.startTime ?? NaN,
          })),
        );
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
      const fcp = median(samples.map((s) => s.fcp));
      const chart = median(samples.map((s) => s.chart));
      console.log(
        `dashboard paint (embedded PGlite, ${server.seed?.events.length} events, median of 5 loads): ` +
          `first contentful paint ${fcp.toFixed(0)} ms, first chart drawn ${chart.toFixed(0)} ms`,
      );
      expect(fcp).toBeGreaterThan(0);
      expect(chart).toBeGreaterThanOrEqual(fcp);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
