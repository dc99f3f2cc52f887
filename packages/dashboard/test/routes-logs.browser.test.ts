/**
 * The Routes and Request logs pages in real Chromium against a seeded `tally serve`: the routes table, its
 * sparklines and one route over time equal the routes query's answers for the same view; sorting by a
 * header asks the server for that order; the logs search pages forward and back through the API's cursor,
 * kept in the URL; a log's page shows its redacted headers as redacted, its cut bodies as truncated and a
 * captured event stream frame by frame; copied URLs reload to the same view; no console error, failed
 * request or serious axe violation; screenshots.
 */
import { isoTime, REDACTED, uuidv7 } from '@tally/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatMs, formatNumber, formatPercent } from '../src/app/format.js';
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
import { type DashboardServer, TENANT, startDashboardServer } from './support/server.js';
import { type Answer, type Rec, recordsOf, column, downloadCsv } from './support/read.js';

const TZ = 'Europe/Berlin';
const VIEW = `range=7d&tz=${encodeURIComponent(TZ)}`;
const COMMON = { range: { last: '7d' }, tz: TZ };

const raw = (v: unknown) => (v === null || v === undefined ? '' : String(v));

/** How long a test waits for the page to show what the API answers after a click. */
const POLL = { timeout: 15_000, interval: 100 };

/** The shown text of one column of a card's table. */
const shownColumn = (page: Page, card: string, col: string) =>
  page
    .locator(`[data-card="${card}"] tbody td[data-col="${col}"]`)
    .evaluateAll((tds) => tds.map((td) => (td as HTMLElement).innerText.replace(/\s+/g, ' ').trim()));

/** The ids of the logs listed, from their links. */
const logIds = (page: Page) =>
  page
    .locator('[data-card="logs"] td[data-col="time"] a')
    .evaluateAll((as) => as.map((a) => /#\/logs\/([^?]+)/.exec(a.getAttribute('href') ?? '')?.[1]));

/** The hash of the page's URL. */
const hashOf = (page: Page) => page.url().slice(page.url().indexOf('#'));

withChromium.describe('Routes and Request logs pages', () => {
  let server: DashboardServer;
  let browser: Browser;
  /** A log of an event stream whose capture was cut, sent beside the seed. */
  const sseLogId = uuidv7();
  const sseBody =
    'event: token\ndata: {"text":"Hel"}\n\n' +
    ': heartbeat\n\n' +
    `id: 7\nevent: token\ndata: {"text":"lo","token":"${REDACTED}"}\n\n` +
    'event: done\ndata: {"fin';

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
    const ts = isoTime(server.anchor - 30 * 60_000);
    const sent = await server.send([
      {
        id: sseLogId,
        name: '$request',
        timestamp: ts,
        properties: {
          id: sseLogId,
          tenantId: TENANT,
          method: 'GET',
          route: '/v1/chat/stream',
          url: '/v1/chat/stream?conversation=c1',
          status: 200,
          durationMs: 1834.5,
          responseBytes: 9000,
          userId: 'u01',
          headers: {
            accept: 'text/event-stream',
            cookie: REDACTED,
            'response.content-type': 'text/event-stream; charset=utf-8',
          },
          responseBody: sseBody,
          bodyTruncated: true,
          timestamp: ts,
        },
      },
    ]);
    expect(sent.accepted).toBe(1);
    // Stored once the detail route finds it.
    for (let i = 0; ; i++) {
      const r = await fetch(`${server.url}/v1/query/logs/${sseLogId}`, {
        headers: { authorization: `Bearer ${server.keys.read}` },
      });
      if (r.status === 200) break;
      if (i > 100) throw new Error(`the SSE log was not stored: ${r.status}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  describe('Routes', () => {
    let t: TestPage;
    beforeAll(async () => {
      t = await openPage(browser);
      await signIn(t.page, server.url, server.keys.read, `#/routes?${VIEW}`);
      await settled(t.page);
      await t.page.locator('[data-card="routes"] svg.sparkline').first().waitFor();
    }, 60_000);
    afterAll(() => t?.close());

    it('shows each route as the routes query answers, with a sparkline of its requests per day', async () => {
      const { page } = t;
      const api = recordsOf(await server.query({ kind: 'routes', ...COMMON, sort: 'count', limit: 50 }));
      expect(api.length).toBe(6);
      for (const col of [
        'method',
        'route',
        'count',
        'errors_4xx',
        'errors_5xx',
        'error_rate',
        'p50_ms',
        'p95_ms',
        'p99_ms',
      ]) {
        expect(await column(page, 'routes', col), col).toEqual(api.map((r) => raw(r[col])));
      }
      expect(await shownColumn(page, 'routes', 'p95_ms')).toEqual(api.map((r) => formatMs(r.p95_ms)));
      expect(await shownColumn(page, 'routes', 'errors_5xx')).toEqual(
        api.map((r) => `${formatNumber(r.errors_5xx)} ${formatPercent(Number(r.errors_5xx) / Number(r.count))}`),
      );
      // Every seeded log (and the stream's) is counted.
      expect(api.reduce((s, r) => s + Number(r.count), 0)).toBe((server.seed?.logs.length ?? 0) + 1);

      // The sparklines: each route's requests per day, from a routes query over time.
      const labels = await page
        .locator('[data-card="routes"] td[data-col="trend"] svg')
        .evaluateAll((svgs) => svgs.map((s) => s.getAttribute('aria-label')));
      for (const [i, r] of api.entries()) {
        const series = recordsOf(
          await server.query({ kind: 'routes', ...COMMON, method: r.method, route: r.route, interval: 'day' }),
        );
        expect(labels[i]).toBe(
          `Requests per day to ${r.method} ${r.route}: ${series.map((s) => formatNumber(s.count)).join(', ')}`,
        );
      }

      const csv = await downloadCsv(page, 'routes', 'routes');
      const answer = await server.query({ kind: 'routes', ...COMMON, sort: 'count', limit: 50 });
      const lines = csv.split('\r\n');
      expect(lines[0]).toBe(answer.columns.map((c) => c.name).join(','));
      expect(lines.slice(1, -1)).toEqual(answer.rows.map((r) => r.map(raw).join(',')));
      expect(t.problems()).toEqual([]);
    });

    it('sorts by a header: the server answers the slowest and the most failing', async () => {
      const { page } = t;
      for (const [label, sort] of [
        ['p95', 'p95'],
        ['Error rate', 'error_rate'],
        ['Errors', 'errors'],
      ] as const) {
        await page.locator(`[data-card="routes"] th button[data-sort="${sort}"]`).click();
        await page.waitForURL(new RegExp(`sort=${sort}`));
        const api = recordsOf(await server.query({ kind: 'routes', ...COMMON, sort, limit: 50 }));
        await expect.poll(() => column(page, 'routes', 'route'), POLL).toEqual(api.map((r) => r.route));
        await settled(page);
        expect(await column(page, 'routes', 'method'), label).toEqual(api.map((r) => r.method));
        expect(await page.locator(`[data-card="routes"] th[aria-sort="descending"]`).getAttribute('data-col')).toBe(
          sort === 'errors' ? 'errors' : sort === 'error_rate' ? 'error_rate' : 'p95_ms',
        );
        expect(await page.getByLabel('Sort').inputValue()).toBe(sort);
      }
      expect(await seriousViolations(page)).toEqual([]);
      await page.locator('[data-card="routes"] th button[data-sort="p95"]').click();
      await page.waitForURL(/sort=p95/);
      await settled(page);
      await page.locator('[data-card="routes"] svg.sparkline').first().waitFor();
      await screenshot(page, 'routes');
      expect(t.problems()).toEqual([]);
    });

    it("opens a route's page over time, whose numbers are the routes query's for that route", async () => {
      const { page } = t;
      const top = recordsOf(await server.query({ kind: 'routes', ...COMMON, sort: 'p95', limit: 1 }))[0] as Rec;
      await page.locator('[data-card="routes"] td[data-col="route"] a').first().click();
      await page.waitForURL(/#\/routes\/[A-Z]+\//);
      await page.locator('[data-card="route-series"]').waitFor();
      expect(hashOf(page)).toBe(`#/routes/${top.method}/${encodeURIComponent(top.route as string)}?${VIEW}`);
      await settled(page);
      const filter = { method: top.method, route: top.route };
      const totals = recordsOf(await server.query({ kind: 'routes', ...COMMON, ...filter, limit: 1 }))[0] as Rec;
      for (const k of ['count', 'errors_4xx', 'errors_5xx', 'p50_ms', 'p95_ms', 'p99_ms']) {
        expect(await page.locator(`[data-stat="${k}"] .stat-value`).getAttribute('data-value'), k).toBe(raw(totals[k]));
      }
      const series = recordsOf(await server.query({ kind: 'routes', ...COMMON, ...filter, interval: 'day' }));
      for (const col of ['time', 'count', 'errors_4xx', 'errors_5xx', 'error_rate', 'p50_ms', 'p95_ms', 'p99_ms']) {
        expect(await column(page, 'route-series', col), col).toEqual(series.map((r) => raw(r[col])));
      }
      expect(await downloadCsv(page, 'route-latency')).toBe(
        ['time,p50_ms,p95_ms,p99_ms', ...series.map((r) => [r.time, r.p50_ms, r.p95_ms, r.p99_ms].map(raw).join(','))]
          .map((l) => `${l}\r\n`)
          .join(''),
      );
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'route');

      // Hourly, by the interval control; the URL holds it, and a reload shows the same.
      await page.getByLabel('Interval').selectOption('hour');
      await page.waitForURL(/interval=hour/);
      const hourly = recordsOf(await server.query({ kind: 'routes', ...COMMON, ...filter, interval: 'hour' }));
      await expect.poll(() => column(page, 'route-series', 'count'), POLL).toEqual(hourly.map((r) => raw(r.count)));
      await settled(page);
      const url = page.url();
      await page.reload();
      await settled(page);
      expect(page.url()).toBe(url);
      expect(await column(page, 'route-series', 'count')).toEqual(hourly.map((r) => raw(r.count)));
      expect(await page.getByLabel('Interval').inputValue()).toBe('hour');

      // Its logs, one link away.
      await page.getByRole('link', { name: 'Request logs of this route' }).click();
      await page.waitForURL(/#\/logs\?/);
      const logs = recordsOf(
        await server.query({ kind: 'logs', ...COMMON, filters: { method: top.method, route: top.route }, limit: 50 }),
      );
      await expect.poll(() => logIds(page), POLL).toEqual(logs.map((r) => r.id));
      await settled(page);
      expect(await page.getByLabel('Route').inputValue()).toBe(top.route);
      expect(t.problems()).toEqual([]);
    });

    it('fits a phone screen', async () => {
      const phone = await openPage(browser, { viewport: PHONE });
      try {
        await signIn(phone.page, server.url, server.keys.read, `#/routes?${VIEW}`);
        await settled(phone.page);
        const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        expect(overflow).toBeLessThanOrEqual(0);
        expect(await seriousViolations(phone.page)).toEqual([]);
        expect(phone.problems()).toEqual([]);
      } finally {
        await phone.close();
      }
    });
  });

  describe('Request logs', () => {
    it('pages forward and back through the cursor kept in the URL; a copied URL shows the same page', async () => {
      const t = await openPage(browser);
      try {
        const { page } = t;
        await signIn(page, server.url, server.keys.read, `#/logs?${VIEW}&limit=25`);
        await settled(page);
        const first = await server.query({ kind: 'logs', ...COMMON, limit: 25 });
        const ids = (a: Answer) => recordsOf(a).map((r) => r.id as string);
        expect(await logIds(page)).toEqual(ids(first));
        expect(await column(page, 'logs', 'status')).toEqual(recordsOf(first).map((r) => raw(r.status)));
        expect(await column(page, 'logs', 'url')).toEqual(recordsOf(first).map((r) => raw(r.url)));
        expect(await page.getByRole('button', { name: '← Newer' }).isDisabled()).toBe(true);

        const next = first.meta.next as string;
        expect(next).toMatch(/^[A-Za-z0-9_-]+$/);
        await page.getByRole('button', { name: 'Older →' }).click();
        await page.waitForURL(new RegExp(`pages=${next}`));
        const second = await server.query({ kind: 'logs', ...COMMON, limit: 25, cursor: next });
        await expect.poll(() => logIds(page), POLL).toEqual(ids(second));
        await settled(page);
        expect(await page.locator('[data-card="logs"] h2').textContent()).toBe('Logs, page 2');
        expect(ids(second)).not.toEqual(ids(first));

        // A copied link to page 2, opened in a new session.
        const url = page.url();
        const other = await openPage(browser);
        try {
          await signIn(other.page, server.url, server.keys.read, url.slice(url.indexOf('#')));
          await settled(other.page);
          expect(await logIds(other.page)).toEqual(ids(second));
          expect(other.problems()).toEqual([]);
        } finally {
          await other.close();
        }

        // A third page, then back twice by "Newer".
        await page.getByRole('button', { name: 'Older →' }).click();
        await page.waitForURL(/pages=[^&]*\./);
        const third = await server.query({ kind: 'logs', ...COMMON, limit: 25, cursor: second.meta.next });
        await expect.poll(() => logIds(page), POLL).toEqual(ids(third));
        await page.getByRole('button', { name: '← Newer' }).click();
        await expect.poll(() => logIds(page), POLL).toEqual(ids(second));
        await page.getByRole('button', { name: '← Newer' }).click();
        await expect.poll(() => logIds(page), POLL).toEqual(ids(first));
        expect(hashOf(page)).toBe(`#/logs?${VIEW}&limit=25`);
        expect(await page.getByRole('button', { name: '← Newer' }).isDisabled()).toBe(true);
        // The browser's Back goes over the same pages.
        await page.goBack();
        await expect.poll(() => logIds(page), POLL).toEqual(ids(second));
        await settled(page);
        expect(t.problems()).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it('searches by status class or code, route, URL text and user, as the logs query filters', async () => {
      const t = await openPage(browser);
      try {
        const { page } = t;
        await signIn(page, server.url, server.keys.read, `#/logs?${VIEW}`);
        await settled(page);
        const labels = ['Status', 'Route', 'URL contains', 'User', 'API key'];
        const search = async (fields: Record<string, string>, filters: Rec, params: string) => {
          // Every field as the search wants it (the form shows the last search's until then).
          for (const label of labels) await page.getByLabel(label, { exact: true }).fill(fields[label] ?? '');
          await page.getByRole('button', { name: 'Search' }).click();
          await page.waitForURL((u) => u.hash.endsWith(params));
          const api = recordsOf(await server.query({ kind: 'logs', ...COMMON, filters, limit: 50 }));
          expect(api.length, JSON.stringify(filters)).toBeGreaterThan(0);
          await expect
            .poll(() => logIds(page), { ...POLL, message: JSON.stringify(filters) })
            .toEqual(api.map((r) => r.id));
          await settled(page);
          return api;
        };
        const fivexx = await search({ Status: '5xx' }, { statusClass: '5xx' }, 'statusClass=5xx');
        expect(fivexx.every((r) => Number(r.status) >= 500)).toBe(true);
        const code = String(fivexx[0]?.status);
        await search({ Status: code }, { status: Number(code) }, `status=${code}`);
        await search({ Route: '/users/:id' }, { route: '/users/:id' }, `route=${encodeURIComponent('/users/:id')}`);
        await search({ 'URL contains': '/v1/conv' }, { url: '/v1/conv' }, `url=${encodeURIComponent('/v1/conv')}`);
        await search({ User: 'u07', Status: '2xx' }, { statusClass: '2xx', userId: 'u07' }, 'userId=u07');

        // Clear: every log of the range again, the fields empty.
        await page.getByRole('button', { name: 'Clear' }).click();
        await page.waitForURL((u) => u.hash === `#/logs?${VIEW}`);
        const all = recordsOf(await server.query({ kind: 'logs', ...COMMON, limit: 50 }));
        await expect.poll(() => logIds(page), POLL).toEqual(all.map((r) => r.id));
        await expect.poll(() => page.getByLabel('User', { exact: true }).inputValue(), POLL).toBe('');

        // A user in the list links to that user's logs.
        const user = all[0]?.user_id as string;
        await page.locator('[data-card="logs"] td[data-col="user_id"] a').first().click();
        await page.waitForURL((u) => u.hash.endsWith(`userId=${user}`));
        const mine = recordsOf(await server.query({ kind: 'logs', ...COMMON, filters: { userId: user }, limit: 50 }));
        await expect.poll(() => logIds(page), POLL).toEqual(mine.map((r) => r.id));
        await expect.poll(() => page.getByLabel('User', { exact: true }).inputValue(), POLL).toBe(user);

        // A status that is neither a class nor a code is refused before asking.
        await page.getByLabel('Status', { exact: true }).fill('5x');
        await page.getByRole('button', { name: 'Search' }).click();
        expect(await page.getByRole('alert').textContent()).toBe('A status is a class (5xx) or a code (503).');
        expect(await seriousViolations(page)).toEqual([]);
        expect(t.problems()).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it("Overview's recent 5xx links here: the list of 5xx and one log's page", async () => {
      const t = await openPage(browser);
      try {
        const { page } = t;
        await signIn(page, server.url, server.keys.read, `#/overview?${VIEW}`);
        await settled(page);
        await page.getByRole('link', { name: 'All 5xx logs' }).click();
        await page.waitForURL(/#\/logs\?/);
        expect(hashOf(page)).toBe(`#/logs?${VIEW}&statusClass=5xx`);
        const api = recordsOf(
          await server.query({ kind: 'logs', ...COMMON, filters: { statusClass: '5xx' }, limit: 50 }),
        );
        await expect.poll(() => logIds(page), POLL).toEqual(api.map((r) => r.id));
        await settled(page);
        expect(await page.getByLabel('Status', { exact: true }).inputValue()).toBe('5xx');
        await screenshot(page, 'logs');

        // One of them: its page, and back to the same list.
        await page.locator('[data-card="logs"] td[data-col="time"] a').first().click();
        await page.waitForURL(/#\/logs\/[0-9a-f-]{36}/);
        await page.locator('[data-card="log-summary"] tbody tr').first().waitFor();
        await settled(page);
        expect(hashOf(page)).toBe(`#/logs/${api[0]?.id}?${VIEW}&statusClass=5xx`);
        expect(
          await page.locator('[data-card="log-summary"] td[data-col="value"]').first().getAttribute('data-value'),
        ).toBe(api[0]?.time);
        await page.getByRole('link', { name: '← Request logs' }).click();
        await expect.poll(() => logIds(page), POLL).toEqual(api.map((r) => r.id));
        expect(hashOf(page)).toBe(`#/logs?${VIEW}&statusClass=5xx`);
        expect(t.problems()).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it("a log's page shows its redacted headers as redacted and the bodies as logged", async () => {
      const t = await openPage(browser);
      try {
        const { page } = t;
        const id = server.seed?.redactedLogId as string;
        await signIn(page, server.url, server.keys.read, `#/logs/${id}?${VIEW}`);
        await settled(page);
        const res = await fetch(`${server.url}/v1/query/logs/${id}`, {
          headers: { authorization: `Bearer ${server.keys.read}` },
        });
        const log = (await res.json()) as Rec & { headers: Record<string, string>; requestBody: string };
        expect(log.headers.authorization).toBe(REDACTED);

        const fields = await page
          .locator('[data-card="log-summary"] tbody tr')
          .evaluateAll((trs) =>
            Object.fromEntries(
              trs.map((tr) => [
                tr.querySelector('[data-col="field"]')?.getAttribute('data-value'),
                tr.querySelector('[data-col="value"]')?.getAttribute('data-value'),
              ]),
            ),
          );
        const shown = ['id', 'method', 'url', 'route', 'status', 'durationMs', 'timestamp', 'error', 'userAgent'];
        for (const k of [...shown, 'userId', 'apiKeyId', 'ip']) expect(fields[k], k).toBe(raw(log[k]));
        // The seeded log names its user: the tenant's readers see who sent it.
        expect(log.userId).toEqual(expect.any(String));
        expect(Number(log.status)).toBeGreaterThanOrEqual(500);

        // Headers: every one as logged; the redacted ones say so instead of showing the marker as a value.
        const headers = await page.locator('[data-card="log-headers"] tbody tr').evaluateAll((trs) =>
          trs.map((tr) => ({
            name: tr.querySelector('[data-col="name"]')?.getAttribute('data-value'),
            value: tr.querySelector('[data-col="value"]')?.getAttribute('data-value'),
            shown: (tr.querySelector('[data-col="value"]') as HTMLElement).innerText.trim(),
            badge: tr.querySelector('[data-col="value"] [data-redacted]') !== null,
          })),
        );
        expect(headers.map((h) => h.name).sort()).toEqual(Object.keys(log.headers).sort());
        const auth = headers.find((h) => h.name === 'authorization');
        expect(auth).toEqual({ name: 'authorization', value: REDACTED, shown: 'redacted', badge: true });
        expect(headers.find((h) => h.name === 'accept')).toMatchObject({ value: 'application/json', badge: false });
        expect(await page.locator('[data-card="log-headers"]').textContent()).toContain('One value was redacted');

        // The request body (a POST's), its password redacted where it was logged; the response body as sent.
        const request = page.locator('[data-card="log-bodies"] pre[aria-label="Request body"]');
        if (log.requestBody === null) {
          expect(await request.count()).toBe(0);
        } else {
          expect(await request.locator('[data-redacted]').count()).toBe(1);
          expect((await request.innerText()).replace(/\s+/g, '')).toBe(
            JSON.stringify(JSON.parse(log.requestBody.replace(REDACTED, 'redacted'))),
          );
        }
        expect(await page.locator('[data-card="log-bodies"] pre[aria-label="Response body"]').innerText()).toBe(
          JSON.stringify(JSON.parse(log.responseBody as string), null, 2),
        );
        expect(await page.locator('[data-card="log-bodies"] [data-truncated]').count()).toBe(0);

        const csv = await downloadCsv(page, 'log-headers');
        expect(csv.split('\r\n')).toContain(`request,authorization,${REDACTED}`);
        expect(await seriousViolations(page)).toEqual([]);
        await screenshot(page, 'log');
        expect(t.problems()).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it("a streamed answer's page shows the captured events, the cut marked as truncated", async () => {
      const t = await openPage(browser, { colorScheme: 'dark' });
      try {
        const { page } = t;
        await signIn(page, server.url, server.keys.read, `#/logs/${sseLogId}?${VIEW}`);
        await settled(page);
        const card = page.locator('[data-card="log-bodies"]');
        expect(await card.locator('[data-truncated]').textContent()).toContain('truncated');
        expect(await card.getByText('4 frames captured').count()).toBe(1);
        expect(await column(page, 'log-bodies', 'event')).toEqual(['token', '(comment)', 'token', 'done']);
        expect(await column(page, 'log-bodies', 'id')).toEqual(['', '', '7', '']);
        expect(await column(page, 'log-bodies', 'data')).toEqual([
          '{"text":"Hel"}',
          '',
          `{"text":"lo","token":"${REDACTED}"}`,
          '{"fin',
        ]);
        const shown = await shownColumn(page, 'log-bodies', 'data');
        expect(shown[1]).toBe('heartbeat');
        expect(shown[2]).toBe('{"text":"lo","token":"redacted"}');
        expect(shown[3]).toBe('{"fin cut');
        // The response headers beside the request's.
        expect(await column(page, 'log-headers', 'side')).toEqual(['request', 'request', 'response']);
        expect(await seriousViolations(page)).toEqual([]);
        expect(t.problems()).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it("fits a phone screen: the search and a log's page", async () => {
      const phone = await openPage(browser, { viewport: PHONE });
      try {
        const { page } = phone;
        await signIn(page, server.url, server.keys.read, `#/logs?${VIEW}`);
        // Each view waits for something only it shows (the page before it stays up until the URL is read).
        for (const [hash, shown] of [
          [`#/logs?${VIEW}`, '[data-card="logs"] tbody tr'],
          [`#/logs/${server.seed?.redactedLogId}?${VIEW}`, `td[data-value="${server.seed?.redactedLogId}"]`],
          [`#/logs/${sseLogId}?${VIEW}`, `td[data-value="${sseLogId}"]`],
        ] as const) {
          await page.goto(`${server.url}/${hash}`);
          await page.locator(shown).first().waitFor();
          await settled(page);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          expect(overflow, hash).toBeLessThanOrEqual(0);
          expect(await seriousViolations(page), hash).toEqual([]);
        }
        expect(phone.problems()).toEqual([]);
      } finally {
        await phone.close();
      }
    });

    it("a route of a method that does not exist: the server's refusal is shown", async () => {
      const t = await openPage(browser);
      try {
        await signIn(t.page, server.url, server.keys.read, `#/routes/FETCH/${encodeURIComponent('/v1/chat')}?${VIEW}`);
        t.expect(/400 POST .*\/v1\/query/);
        t.expect(/Failed to load resource: the server responded with a status of 400/);
        await t.page.getByRole('alert').first().waitFor();
        expect(await t.page.getByRole('alert').first().textContent()).toContain('TALLY_BAD_QUERY');
        expect(await t.page.getByRole('alert').first().textContent()).toContain('method');
        expect(t.problems()).toEqual([]);
      } finally {
        await t.close();
      }
    });

    it("an unknown log's page says so", async () => {
      const t = await openPage(browser);
      try {
        const id = uuidv7();
        await signIn(t.page, server.url, server.keys.read, `#/logs/${id}?${VIEW}`);
        t.expect(new RegExp(`404 GET .*/v1/query/logs/${id}`));
        t.expect(/Failed to load resource: the server responded with a status of 404/);
        await t.page.getByRole('alert').first().waitFor();
        expect(await t.page.getByRole('alert').first().textContent()).toContain('TALLY_NOT_FOUND');
        expect(t.problems()).toEqual([]);
      } finally {
        await t.close();
      }
    });
  });
});
