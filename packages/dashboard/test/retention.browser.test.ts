/**
 * The Retention page in real Chromium against a seeded `tally serve`: its cohort grid is the retention
 * query's answer for the same view (sizes, returned users, rates, and the pooled row computed from them),
 * its CSV is the API's CSV, the controls change the question through the URL, a copied URL reloads to the
 * same grid, the heat map's text is readable in light and dark (axe's contrast check over every cell), it
 * fits a phone screen; no console error or failed request; a screenshot.
 */
import { readFileSync } from 'node:fs';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatNumber, formatPercent } from '../src/app/format.js';
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
import { type DashboardServer, startDashboardServer } from './support/server.js';
import { type Answer, type Rec, recordsOf } from './support/read.js';

const TZ = 'Europe/Berlin';
const VIEW = `range=7d&tz=${encodeURIComponent(TZ)}`;
const COMMON = { range: { last: '7d' }, tz: TZ };
const POLL = { timeout: 15_000, interval: 100 };

interface GridCell {
  period: number;
  returned: string | null;
  rate: string | null;
  text: string;
}

/** The grid as shown: per cohort row (and the pooled row, `all`), its size and its cells. */
function grid(page: Page) {
  return page.locator('[data-grid="retention"] tr[data-cohort]').evaluateAll((trs) =>
    trs.map((tr) => ({
      cohort: tr.getAttribute('data-cohort'),
      size: tr.querySelector('[data-col="cohort_size"]')?.getAttribute('data-value'),
      cells: [...tr.querySelectorAll('td[data-period]')].map((td): GridCell => ({
        period: Number(td.getAttribute('data-period')),
        returned: td.getAttribute('data-returned'),
        rate: td.getAttribute('data-value'),
        text: (td as HTMLElement).innerText.replace(/\s+/g, ' ').trim(),
      })),
    })),
  );
}

/** The grid the API's answer makes: a row per cohort, a cell per reported period, then the pooled row. */
function expectedGrid(answer: Answer, periods: number) {
  const rows = recordsOf(answer);
  const cohorts = [...new Set(rows.map((r) => r.cohort as string))];
  const cell = (period: number, returned: number | undefined, rate: number | null | undefined): GridCell =>
    returned === undefined
      ? { period, returned: null, rate: '', text: '' }
      : {
          period,
          returned: String(returned),
          rate: rate === null || rate === undefined ? '' : String(rate),
          text: `${formatPercent(rate)} ${formatNumber(returned)}`,
        };
  const out = cohorts.map((cohort) => {
    const mine = rows.filter((r) => r.cohort === cohort);
    return {
      cohort,
      size: String(mine[0]?.cohort_size),
      cells: Array.from({ length: periods }, (_, n) => {
        const r = mine.find((x) => x.period === n);
        return cell(n, r?.returned as number | undefined, r?.rate as number | null | undefined);
      }),
    };
  });
  // Pooled: per period, the returned users of the cohorts that report it over their sizes.
  const pooled = Array.from({ length: periods }, (_, n) => {
    const having = rows.filter((r) => r.period === n);
    const size = having.reduce((s, r) => s + Number(r.cohort_size), 0);
    const returned = having.reduce((s, r) => s + Number(r.returned), 0);
    return size > 0 ? cell(n, returned, returned / size) : cell(n, undefined, undefined);
  });
  const all = rows.filter((r) => r.period === 0).reduce((s, r) => s + Number(r.cohort_size), 0);
  return [...out, { cohort: 'all', size: String(all), cells: pooled }];
}

withChromium.describe('Retention page', () => {
  let server: DashboardServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('shows the retention query’s cohorts as a heat map, with its CSV; a copied URL shows the same', async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      const question = {
        start: { event: 'conversation_started' },
        return: { event: 'message_sent' },
        period: 'day',
        periods: 7,
      };
      await signIn(
        page,
        server.url,
        server.keys.read,
        `#/retention?${VIEW}&start=conversation_started&return=message_sent&period=day&periods=7`,
      );
      await page.locator('[data-grid="retention"] tr[data-cohort]').first().waitFor();
      await settled(page);
      const answer = await server.query({ kind: 'retention', ...COMMON, ...question });
      const want = expectedGrid(answer, 7);
      // Seven days in the range, each a cohort (seven or eight: the range's first day may begin a day earlier).
      expect(want.length).toBeGreaterThanOrEqual(8);
      expect(recordsOf(answer).some((r) => Number(r.returned) > 0)).toBe(true);
      expect(await grid(page)).toEqual(want);

      // The CSV is the API's CSV of the same query.
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.locator('[data-card="retention"] .card-actions button', { hasText: 'CSV' }).click(),
      ]);
      const csv = readFileSync(await download.path(), 'utf8');
      const res = await fetch(`${server.url}/v1/query?format=csv`, {
        method: 'POST',
        headers: { authorization: `Bearer ${server.keys.read}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind: 'retention', ...COMMON, ...question }),
      });
      expect(csv).toBe(await res.text());

      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'retention');

      // Reloaded from a copied URL in a new session: the same grid.
      const url = page.url();
      const other = await openPage(browser);
      try {
        await signIn(other.page, server.url, server.keys.read, url.slice(url.indexOf('#')));
        await other.page.locator('[data-grid="retention"] tr[data-cohort]').first().waitFor();
        await settled(other.page);
        expect(await grid(other.page)).toEqual(want);
        expect(await other.page.locator('[data-control="start"]').inputValue()).toBe('conversation_started');
        expect(await other.page.locator('[data-control="return"]').inputValue()).toBe('message_sent');
        expect(other.problems()).toEqual([]);
      } finally {
        await other.close();
      }
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('changes the question with its controls, through the URL', async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await signIn(page, server.url, server.keys.read, `#/retention?${VIEW}`);
      // Without events named, the most frequent one, written into the URL.
      const top = recordsOf(await server.query({ kind: 'explore', ...COMMON, limit: 1000 }))[0]?.event as string;
      await page.waitForURL((u) => u.hash.includes(`start=${top}`) && u.hash.includes(`return=${top}`));
      const check = async (question: Rec) => {
        const answer = await server.query({ kind: 'retention', ...COMMON, ...question });
        const periods = (question.periods as number | undefined) ?? 8;
        await expect.poll(() => grid(page), POLL).toEqual(expectedGrid(answer, periods));
        await settled(page);
      };
      await check({ start: { event: top }, return: { event: top }, period: 'day' });

      // Each change waits for the URL: a control changes the URL the page was drawn from.
      await page.locator('[data-control="start"]').selectOption('user_signed_up');
      await page.waitForURL(/start=user_signed_up/);
      await page.locator('[data-control="return"]').selectOption('conversation_started');
      await page.waitForURL(/return=conversation_started/);
      await check({ start: { event: 'user_signed_up' }, return: { event: 'conversation_started' }, period: 'day' });

      await page.locator('[data-control="mode"]').selectOption('recurring');
      await page.waitForURL(/mode=recurring/);
      await page.locator('[data-control="periods"]').fill('4');
      await page.locator('[data-control="periods"]').press('Enter');
      await page.waitForURL(/periods=4/);
      const recurring = {
        start: { event: 'user_signed_up' },
        return: { event: 'conversation_started' },
        period: 'day',
        periods: 4,
        mode: 'recurring',
      };
      await check(recurring);

      await page.locator('[data-control="period"]').selectOption('week');
      await page.waitForURL(/period=week/);
      await check({ ...recurring, period: 'week' });

      // Any event: cohorts by first seen at all, any activity as a return (the query's event null).
      await page.locator('[data-control="mode"]').selectOption('first_time');
      await page.waitForURL((u) => !u.hash.includes('mode=recurring'));
      await page.locator('[data-control="start"]').selectOption({ label: 'Any event (first seen)' });
      await page.waitForURL((u) => u.hash.includes('startAny=1') && !u.hash.includes('start=user_signed_up'));
      await page.locator('[data-control="return"]').selectOption({ label: 'Any event' });
      await page.waitForURL(/returnAny=1/);
      await check({ start: { event: null }, return: { event: null }, period: 'week', periods: 4 });
      await page.reload();
      await check({ start: { event: null }, return: { event: null }, period: 'week', periods: 4 });
      expect(await page.locator('[data-control="start"]').inputValue()).toBe('\u0000any');
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('reads in dark: every cell’s text has enough contrast; and fits a phone screen', async () => {
    const hash = `#/retention?${VIEW}&start=conversation_started&return=conversation_started&period=day&periods=7`;
    const dark = await openPage(browser, { colorScheme: 'dark' });
    try {
      await signIn(dark.page, server.url, server.keys.read, hash);
      await dark.page.locator('[data-grid="retention"] tr[data-cohort]').first().waitFor();
      await settled(dark.page);
      // The grid has cells across the scale (a return event equal to the start: day 0 is 100%).
      const rates = (await grid(dark.page)).flatMap((r) => r.cells.map((c) => Number(c.rate || 0)));
      expect(Math.max(...rates)).toBe(1);
      expect(rates.some((r) => r > 0 && r < 1)).toBe(true);
      expect(await seriousViolations(dark.page)).toEqual([]);
      // The theme toggle repaints the cells in the other theme's colours, still readable.
      const before = await dark.page
        .locator('td[data-returned]')
        .first()
        .evaluate((td) => getComputedStyle(td).backgroundColor);
      await dark.page.getByRole('button', { name: 'Switch to light theme' }).click();
      await expect
        .poll(() =>
          dark.page
            .locator('td[data-returned]')
            .first()
            .evaluate((td) => getComputedStyle(td).backgroundColor),
        )
        .not.toBe(before);
      expect(await seriousViolations(dark.page)).toEqual([]);
      expect(dark.problems()).toEqual([]);
    } finally {
      await dark.close();
    }

    const phone = await openPage(browser, { viewport: PHONE });
    try {
      await signIn(phone.page, server.url, server.keys.read, hash);
      await phone.page.locator('[data-grid="retention"] tr[data-cohort]').first().waitFor();
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
