/**
 * The dashboard's weight and speed per page, as the browser sees them: for each page of the build
 * manifest, a fresh browser context signs in straight onto the page, then reloads it three times. Per page:
 * the JavaScript the browser fetched (bytes as sent, from the resource timing entries: brotli, which
 * Chromium asks for), first contentful paint, and the time until everything the page shows has arrived
 * (no card or stat busy, every chart drawn), medians of the reloads. Printed as a table for the README;
 * asserted are only the budget (< 300 KB gzip of JavaScript for a first page, from the manifest) and that
 * every page settles with no console error or failed request. Timings are figures, not pass marks.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchBrowser, openPage, settled, signIn, withChromium } from './support/browser.js';
import type { BuildManifest } from '../build.mjs';
import { ensureBuilt } from './support/build.js';
import { type DashboardServer, startDashboardServer } from './support/server.js';

const BUDGET_GZIP = 300 * 1024;
const RELOADS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

withChromium.describe('dashboard figures per page', () => {
  let server: DashboardServer;
  let browser: Browser;
  let manifest: BuildManifest;

  beforeAll(async () => {
    manifest = await ensureBuilt();
    [server, browser] = await Promise.all([startDashboardServer(), launchBrowser()]);
  }, 180_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('every page: JavaScript within the budget, first paint and data shown, no problem', async () => {
    const rows: string[] = [];
    for (const [name, sizes] of Object.entries(manifest.pages)) {
      expect(sizes.firstLoadGzipBytes, name).toBeLessThan(BUDGET_GZIP);
      const t = await openPage(browser);
      try {
        await signIn(t.page, server.url, server.keys.admin, `#/${name}?range=7d&tz=UTC`);
        await settled(t.page);
        const samples: { js: number; fcp: number; shown: number }[] = [];
        for (let i = 0; i < RELOADS; i++) {
          await t.page.reload();
          const shown = await settled(t.page);
          samples.push({
            shown,
            ...(await t.page.evaluate(() => ({
              js: performance
                .getEntriesByType('resource')
                .filter((e) => (e as PerformanceResourceTiming).initiatorType === 'script' || e.name.endsWith('.js'))
                .reduce((s, e) => s + (e as PerformanceResourceTiming).encodedBodySize, 0),
              fcp: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN,
            }))),
          });
        }
        const js = median(samples.map((s) => s.js));
        expect(js, name).toBeGreaterThan(0);
        rows.push(
          `${name.padEnd(10)} ${(sizes.firstLoadGzipBytes / 1024).toFixed(1).padStart(8)} KB gzip ` +
            `${(js / 1024).toFixed(1).padStart(8)} KB fetched  first paint ${median(samples.map((s) => s.fcp))
              .toFixed(0)
              .padStart(4)} ms  ` +
            `data shown ${median(samples.map((s) => s.shown))
              .toFixed(0)
              .padStart(4)} ms`,
        );
        expect(t.problems(), name).toEqual([]);
      } finally {
        await t.close();
      }
    }
    console.log(
      `dashboard per page (embedded PGlite, ${server.seed?.events.length} events; median of ${RELOADS} reloads):\n` +
        `page       first load JS        as fetched  timings\n${rows.join('\n')}`,
    );
  });
});
