/**
 * The Trends and Funnels pages in real Chromium against a seeded `tally serve`: a trend (conversation_started
 * per day by channel, then an escalation rate as a formula `B / A`) and a funnel (conversation_started →
 * message_sent within 5 minutes → escalation_triggered within an hour, then by channel and one channel's
 * bars) are built by clicking; the query each page sends is the one meant, and the numbers it shows equal
 * POST /v1/query's answer to it. Reloading the page and opening its copied URL in a new session show the
 * same view; the CSV is the answer's rows; line, bar and table views draw; no console error or failed
 * request; no serious axe violation in light, dark and at phone width; screenshots.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseQuery } from '@tally/core';
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
import { parsedQuery } from '../../store/test/support/query-data.js';
import { type DashboardServer, startDashboardServer } from './support/server.js';
import { type Answer, recordsOf, downloadCsv } from './support/read.js';

const TZ = 'UTC';
const COMMON = { range: { last: '7d' }, tz: TZ };

type Row = Record<string, unknown>;
const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v));

const control = (page: Page, name: string) => page.locator(`[data-control="${name}"]`);

/** A table's rows as `data-col → data-value`. */
const tableOf = (page: Page, card: string) =>
  page
    .locator(`[data-card="${card}"] table tbody tr`)
    .evaluateAll((trs) =>
      trs.map((tr) =>
        Object.fromEntries(
          [...tr.querySelectorAll('td[data-col]')].map((td) => [
            td.getAttribute('data-col'),
            td.getAttribute('data-value'),
          ]),
        ),
      ),
    );

/** The trends answer pivoted as the table shows it: a row per bucket, a column per series (and group). */
function trendTable(answer: Answer): Row[] {
  const truncated = answer.meta.truncated === true;
  const hasGroups = answer.columns.some((c) => c.name === 'breakdown');
  const rows = new Map<string, Row>();
  for (const r of recordsOf(answer)) {
    const time = new Date(String(r.time)).toISOString();
    let row = rows.get(time);
    if (!row) rows.set(time, (row = { time }));
    const group = !hasGroups
      ? undefined
      : r.breakdown === null
        ? '(none)'
        : r.breakdown === 'other' && truncated
          ? 'Other'
          : String(r.breakdown);
    const key = group === undefined ? String(r.series) : `${String(r.series)}|${group}`;
    row[key] = cell(r.value);
    if ('previous' in r) row[`${key}|previous`] = cell(r.previous);
  }
  return [...rows.values()];
}

const STEP_COLS = [
  'step',
  'event',
  'entered',
  'converted',
  'dropped',
  'conversion_from_first',
  'conversion_from_previous',
  'median_seconds',
  'p90_seconds',
];
const stepTable = (rows: Row[]) => rows.map((r) => Object.fromEntries(STEP_COLS.map((c) => [c, cell(r[c])])));

/** The POST /v1/query bodies a page sent, parsed with the server's own parser (defaults filled). */
function watchQueries(page: Page): { sent: () => unknown[] } {
  const bodies: unknown[] = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/v1/query')
      bodies.push(JSON.parse(r.postData() ?? 'null'));
  });
  return {
    sent: () =>
      bodies.map((b) => {
        const parsed = parseQuery(b);
        return parsed.ok ? parsed.query : b;
      }),
  };
}

/** The answer's CSV as the API writes it (the page's CSV must be the same file). */
async function apiCsv(server: DashboardServer, q: unknown): Promise<string> {
  const res = await fetch(`${server.url}/v1/query?format=csv`, {
    method: 'POST',
    headers: { authorization: `Bearer ${server.keys.read}`, 'content-type': 'application/json' },
    body: JSON.stringify(q),
  });
  expect(res.status).toBe(200);
  return res.text();
}

/** The view's hash (`#/…`) of a page's URL: what a copied link carries. */
const hashOf = (page: Page) => new URL(page.url()).hash;

withChromium.describe('Trends and Funnels pages', () => {
  let server: DashboardServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('a trend built by clicking shows the query API’s numbers; its copied URL shows the same view', async () => {
    const t = await openPage(browser);
    const { page } = t;
    const queries = watchQueries(page);
    try {
      await signIn(page, server.url, server.keys.read, `#/trends?range=7d&tz=${TZ}`);
      // Without a query the page counts the range's most frequent event per day, and writes that into the URL.
      await page.waitForURL(/[?&]q=/);
      const top = recordsOf(await server.query({ kind: 'explore', ...COMMON }))[0]?.event;
      expect(JSON.parse(new URL(`http://x/${hashOf(page).slice(2)}`).searchParams.get('q') ?? '')).toEqual({
        kind: 'trends',
        series: [{ event: top, measure: 'count' }],
        interval: 'day',
      });

      // conversation_started counted per day, broken down by channel.
      await control(page, 'series-0-event').selectOption('conversation_started');
      await control(page, 'series-0-measure').selectOption('unique_users');
      await control(page, 'series-0-measure').selectOption('count');
      await control(page, 'interval').selectOption('week');
      await control(page, 'interval').selectOption('day');
      await control(page, 'breakdown').selectOption('properties.channel');
      await control(page, 'chart-table').click();
      const byChannel = {
        kind: 'trends',
        ...COMMON,
        interval: 'day',
        series: [{ event: 'conversation_started', measure: 'count' }],
        breakdown: { property: 'properties.channel' },
      };
      const byChannelAnswer = await server.query(byChannel);
      const expected = trendTable(byChannelAnswer);
      expect(Object.keys(expected[0] ?? {})).toEqual(
        expect.arrayContaining(['time', 'A|web', 'A|widget', 'A|email', 'A|slack', 'A|api']),
      );
      await expect.poll(() => tableOf(page, 'trends-result'), { timeout: 15_000 }).toEqual(expected);
      await settled(page);
      expect(queries.sent().at(-1)).toEqual(parsedQuery(byChannel));
      // The CSV is the answer's rows, as the API writes them.
      expect(await downloadCsv(page, 'trends-result')).toBe(await apiCsv(server, byChannel));

      // The lines and the bars draw; the screenshot is the lines.
      await control(page, 'chart-bar').click();
      await page.locator('[data-card="trends-result"] .bar-chart svg[data-drawn]').waitFor();
      expect(await page.locator('[data-card="trends-result"] .bar-chart rect').count()).toBeGreaterThan(0);
      await control(page, 'chart-line').click();
      await page.locator('[data-card="trends-result"] .chart[data-drawn]').waitFor();
      await settled(page);
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'trends');

      // The escalation rate: a second series and the formula B / A, compared with the previous period.
      await control(page, 'breakdown').selectOption('');
      await control(page, 'series-add').click();
      await control(page, 'series-1-event').selectOption('escalation_triggered');
      await control(page, 'formula').fill('B / A');
      await control(page, 'formula').press('Tab');
      await control(page, 'compare').check();
      await control(page, 'chart-table').click();
      const rate = {
        kind: 'trends',
        ...COMMON,
        interval: 'day',
        series: [
          { event: 'conversation_started', measure: 'count' },
          { event: 'escalation_triggered', measure: 'count' },
        ],
        formula: 'B / A',
        compare: 'previous_period',
      };
      const rateAnswer = await server.query(rate);
      const rateTable = trendTable(rateAnswer);
      expect(rateTable.some((r) => r.formula !== '' && r.formula !== undefined)).toBe(true);
      await expect.poll(() => tableOf(page, 'trends-result'), { timeout: 15_000 }).toEqual(rateTable);
      await settled(page);
      expect(queries.sent().at(-1)).toEqual(parsedQuery(rate));
      expect(await seriousViolations(page)).toEqual([]);

      // Reloading the page, and the copied URL in a new session, show the same view.
      const copied = hashOf(page);
      await page.reload();
      await expect.poll(() => tableOf(page, 'trends-result'), { timeout: 15_000 }).toEqual(rateTable);
      const other = await openPage(browser);
      try {
        await signIn(other.page, server.url, server.keys.read, copied);
        await expect.poll(() => tableOf(other.page, 'trends-result'), { timeout: 15_000 }).toEqual(rateTable);
        expect(await control(other.page, 'formula').inputValue()).toBe('B / A');
        expect(await control(other.page, 'series-1-event').inputValue()).toBe('escalation_triggered');
        expect(await control(other.page, 'compare').isChecked()).toBe(true);
        expect(other.problems()).toEqual([]);
      } finally {
        await other.close();
      }
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a funnel built by clicking shows the query API’s numbers, per group too; its copied URL shows the same view', async () => {
    const t = await openPage(browser);
    const { page } = t;
    const queries = watchQueries(page);
    try {
      await signIn(page, server.url, server.keys.read, `#/funnels?range=7d&tz=${TZ}`);
      await page.waitForURL(/[?&]q=/);

      await control(page, 'step-0-event').selectOption('conversation_started');
      await control(page, 'step-1-event').selectOption('message_sent');
      await control(page, 'step-add').click();
      await control(page, 'step-2-event').selectOption('escalation_triggered');
      // message_sent within 5 minutes of the start, the escalation within an hour of the message.
      await control(page, 'step-1-window-unit').selectOption('m');
      await control(page, 'step-1-window-amount').fill('5');
      await control(page, 'step-1-window-amount').press('Tab');
      await control(page, 'step-2-window-amount').fill('1');
      await control(page, 'step-2-window-amount').press('Tab');
      // The whole funnel within a day.
      await control(page, 'window-amount').fill('1');
      await control(page, 'window-amount').press('Tab');
      const funnel = {
        kind: 'funnel',
        ...COMMON,
        window: '1d',
        steps: [
          { event: 'conversation_started' },
          { event: 'message_sent', window: '5m' },
          { event: 'escalation_triggered', window: '1h' },
        ],
      };
      const answer = recordsOf(await server.query(funnel));
      expect(answer.map((r) => r.entered)).toEqual([expect.any(Number), expect.any(Number), expect.any(Number)]);
      expect(Number(answer[2]?.entered)).toBeGreaterThan(0);
      await expect.poll(() => tableOf(page, 'funnel-steps'), { timeout: 15_000 }).toEqual(stepTable(answer));
      await settled(page);
      expect(queries.sent().at(-1)).toEqual(parsedQuery(funnel));
      // The bars say the same: users per step, conversion from first and previous, the times to convert.
      expect(
        await page
          .locator('[data-card="funnel-bars"] .funnel-count')
          .evaluateAll((els) => els.map((e) => e.getAttribute('data-value'))),
      ).toEqual(answer.map((r) => String(r.entered)));
      const meta = await page
        .locator('[data-card="funnel-bars"] .funnel-step-meta span[data-field]')
        .evaluateAll((els) => els.map((e) => [e.getAttribute('data-field'), e.getAttribute('data-value')]));
      // Step 2's previous step is step 1: its share of the previous is said once.
      expect(meta).toEqual(
        answer
          .slice(1)
          .flatMap((r, i) =>
            (i === 0
              ? ['conversion_from_first', 'median_seconds', 'p90_seconds']
              : ['conversion_from_first', 'conversion_from_previous', 'median_seconds', 'p90_seconds']
            ).map((f) => [f, cell(r[f])]),
          ),
      );
      const last = answer.at(-1) as Row;
      expect(await page.locator('[data-stat="funnel-conversion"] .stat-value').getAttribute('data-value')).toBe(
        cell(last.conversion_from_first),
      );
      expect(await downloadCsv(page, 'funnel-steps')).toBe(
        [STEP_COLS.join(','), ...answer.map((r) => STEP_COLS.map((c) => cell(r[c])).join(','))].join('\r\n') + '\r\n',
      );

      // By channel: the groups' table, then one channel's bars and steps.
      await control(page, 'breakdown').selectOption('properties.channel');
      const byChannel = { ...funnel, breakdown: { property: 'properties.channel' } };
      const grouped = recordsOf(await server.query(byChannel));
      const groups = [...new Set(grouped.map((r) => r.breakdown))];
      expect(groups.length).toBeGreaterThan(1);
      const groupTable = groups.map((g) => {
        const rows = grouped.filter((r) => r.breakdown === g);
        return {
          group: cell(g),
          entered: cell(rows[0]?.entered),
          step_2: cell(rows[1]?.conversion_from_first),
          step_3: cell(rows[2]?.conversion_from_first),
          median_seconds: cell(rows[2]?.median_seconds),
        };
      });
      await expect.poll(() => tableOf(page, 'funnel-groups'), { timeout: 15_000 }).toEqual(groupTable);
      // "All users" stays the answer without a breakdown.
      expect(await tableOf(page, 'funnel-steps')).toEqual(stepTable(answer));
      const chosen = groups[0] as string;
      await control(page, 'group').selectOption(JSON.stringify(chosen));
      const chosenRows = grouped.filter((r) => r.breakdown === chosen);
      await expect.poll(() => tableOf(page, 'funnel-steps'), { timeout: 15_000 }).toEqual(stepTable(chosenRows));
      await settled(page);
      expect(queries.sent().some((q) => JSON.stringify(q) === JSON.stringify(parsedQuery(byChannel)))).toBe(true);
      expect(await downloadCsv(page, 'funnel-groups')).toBe(await apiCsv(server, byChannel));
      await control(page, 'group').selectOption('');
      await expect.poll(() => tableOf(page, 'funnel-steps'), { timeout: 15_000 }).toEqual(stepTable(answer));
      await settled(page);
      await page.mouse.move(0, 0);
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'funnels');

      // One group shown: reloading, and the copied URL in a new session, show the same.
      await control(page, 'group').selectOption(JSON.stringify(chosen));
      await expect.poll(() => tableOf(page, 'funnel-steps'), { timeout: 15_000 }).toEqual(stepTable(chosenRows));
      const copied = hashOf(page);
      await page.reload();
      await expect.poll(() => tableOf(page, 'funnel-steps'), { timeout: 15_000 }).toEqual(stepTable(chosenRows));
      expect(await tableOf(page, 'funnel-groups')).toEqual(groupTable);
      const other = await openPage(browser);
      try {
        await signIn(other.page, server.url, server.keys.read, copied);
        await expect
          .poll(() => tableOf(other.page, 'funnel-steps'), { timeout: 15_000 })
          .toEqual(stepTable(chosenRows));
        expect(await control(other.page, 'step-1-window-amount').inputValue()).toBe('5');
        expect(await control(other.page, 'step-1-window-unit').inputValue()).toBe('m');
        expect(await control(other.page, 'breakdown').inputValue()).toBe('properties.channel');
        expect(other.problems()).toEqual([]);
      } finally {
        await other.close();
      }
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('says what is wrong: a link whose query is not JSON, a formula naming no series, a query the server refuses', async () => {
    const t = await openPage(browser);
    const { page } = t;
    const queries = watchQueries(page);
    try {
      await signIn(page, server.url, server.keys.read, `#/trends?range=7d&tz=${TZ}&q=%7Bnot-json`);
      await expect(page.getByRole('alert').first().textContent()).resolves.toContain('not valid JSON');
      await page.getByRole('button', { name: 'Retry' }).first().click();
      await page.waitForURL(/[?&]q=%7B/);
      await page.locator('[data-card="trends-result"] .chart[data-drawn]').waitFor();

      // A formula naming a series the query does not have is said at the field, and nothing is sent.
      const before = queries.sent().length;
      await control(page, 'formula').fill('C / A');
      await control(page, 'formula').press('Tab');
      await expect
        .poll(() => page.locator('[data-control="formula"] ~ .field-problem').textContent(), { timeout: 5_000 })
        .toMatch(/C/);
      expect(await page.locator('[data-card="trends-result"]').textContent()).toContain('Finish the query');
      expect(queries.sent().length).toBe(before);

      // What only the server refuses (a breakdown's top 0) comes back as its error in the card.
      t.expect(/^400 POST .*\/v1\/query$/);
      t.expect(/the server responded with a status of 400/);
      const bad = encodeURIComponent(
        JSON.stringify({
          kind: 'trends',
          series: [{ event: 'conversation_started' }],
          interval: 'day',
          breakdown: { property: 'properties.channel', limit: 0 },
        }),
      );
      await page.goto(`${server.url}/#/trends?range=7d&tz=${TZ}&q=${bad}`);
      const error = page.locator('[data-card="trends-result"] .error-box');
      await error.waitFor();
      expect(await error.textContent()).toContain('TALLY_BAD_QUERY');
      expect(await error.textContent()).toContain('breakdown.limit');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('dark and at phone width: no serious accessibility violation, nothing wider than the screen', async () => {
    const trend = encodeURIComponent(
      JSON.stringify({
        kind: 'trends',
        series: [
          { event: 'conversation_started', filters: [{ property: 'properties.channel', op: 'neq', value: 'api' }] },
        ],
        interval: 'day',
        breakdown: { property: 'properties.channel', limit: 3 },
      }),
    );
    const funnel = encodeURIComponent(
      JSON.stringify({
        kind: 'funnel',
        steps: [{ event: 'conversation_started' }, { event: 'escalation_triggered', window: '1h' }],
        window: '1d',
        exclusions: [{ event: 'checkout_completed', from: 0, to: 1 }],
        breakdown: { property: 'properties.channel' },
      }),
    );
    for (const options of [{ colorScheme: 'dark' as const }, { viewport: PHONE }]) {
      for (const hash of [`#/trends?range=7d&tz=${TZ}&q=${trend}`, `#/funnels?range=7d&tz=${TZ}&q=${funnel}`]) {
        const t: TestPage = await openPage(browser, options);
        try {
          await signIn(t.page, server.url, server.keys.read, hash);
          await t.page.locator('[data-card$="-result"] .chart, [data-card="funnel-groups"] table').first().waitFor();
          await settled(t.page);
          const overflow = await t.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
          expect(overflow).toBeLessThanOrEqual(0);
          expect(await seriousViolations(t.page)).toEqual([]);
          expect(t.problems()).toEqual([]);
        } finally {
          await t.close();
        }
      }
    }
  });
});
