/**
 * Real Chromium for the dashboard tests: Debian's /usr/bin/chromium driven by playwright-core (nothing is
 * downloaded). Without it the tests skip with a reason on a workstation and fail under CI=true
 * (service-gate.ts). Each page records what must never happen (console errors, uncaught exceptions, failed
 * requests, HTTP errors) so every test can assert none happened; axe-core checks accessibility from its
 * own source file injected into the page; screenshots go to docs/screenshots/.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { needs, Requirement, updateScreenshots } from '../../../node/test/support/service-gate.js';

export const CHROMIUM = '/usr/bin/chromium';

export const chromiumInstalled = new Requirement(
  'Chromium',
  existsSync(CHROMIUM),
  `Chromium is not installed at ${CHROMIUM}`,
  'install it with `apt-get install -y chromium` (as root; .ci/run does it)',
);

/** describe/it that run, skip or fail as the Chromium requirement says. */
export const withChromium = needs(chromiumInstalled);

/**
 * Where screenshots go: docs/screenshots/ (committed, shown in the README) with UPDATE_SCREENSHOTS=1;
 * otherwise a temporary directory, so that a test run does not change the checkout (the seed is timed
 * from the run's start, so every run's pictures differ a little).
 */
export const SCREENSHOTS = updateScreenshots
  ? fileURLToPath(new URL('../../../../docs/screenshots/', import.meta.url))
  : join(tmpdir(), 'tally-dashboard-screenshots/');
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--force-color-profile=srgb', '--font-render-hinting=none'],
  });
}

export interface Problem {
  kind: 'console' | 'pageerror' | 'requestfailed' | 'http';
  text: string;
}

export interface TestPage {
  page: Page;
  context: BrowserContext;
  /** Everything that went wrong so far, minus what the test said to expect. */
  problems(): Problem[];
  /** Takes problems matching `pattern` as expected (e.g. the 403 of a refused write key). */
  expect(pattern: RegExp): void;
  close(): Promise<void>;
}

/** A fresh context (its own sessionStorage and localStorage) and page, watched for problems. */
export async function openPage(
  browser: Browser,
  options: { viewport?: { width: number; height: number }; colorScheme?: 'light' | 'dark' } = {},
): Promise<TestPage> {
  const context = await browser.newContext({
    viewport: options.viewport ?? DESKTOP,
    colorScheme: options.colorScheme ?? 'light',
    deviceScaleFactor: 1,
    locale: 'en-GB',
    timezoneId: 'UTC',
  });
  const page = await context.newPage();
  const seen: Problem[] = [];
  const expected: RegExp[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') seen.push({ kind: 'console', text: m.text() });
  });
  page.on('pageerror', (e) => seen.push({ kind: 'pageerror', text: `${e.name}: ${e.message}` }));
  page.on('requestfailed', (r) => {
    // A fetch the page cancelled itself (a newer query replaced it) is not a failure.
    if (r.failure()?.errorText === 'net::ERR_ABORTED') return;
    seen.push({ kind: 'requestfailed', text: `${r.method()} ${r.url()}: ${r.failure()?.errorText}` });
  });
  page.on('response', (r) => {
    if (r.status() >= 400) seen.push({ kind: 'http', text: `${r.status()} ${r.request().method()} ${r.url()}` });
  });
  return {
    page,
    context,
    problems: () => seen.filter((p) => !expected.some((e) => e.test(p.text))),
    expect: (pattern) => expected.push(pattern),
    close: () => context.close(),
  };
}

/** Signs in on the sign-in screen with `key` and waits for the shell. */
export async function signIn(page: Page, base: string, key: string, hash = '#/overview'): Promise<void> {
  await page.goto(`${base}/${hash}`);
  await page.getByLabel('Read key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Pages' }).waitFor();
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

/** Runs axe-core on the page; the violations of impact serious or critical. */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  // Evaluated through the DevTools protocol: the page's CSP forbids inline scripts, as it should.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    const axe = (
      window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: AxeViolation[] }> } }
    ).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })),
    }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A PNG of the page as shown, `<SCREENSHOTS><name>.png`. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = `${SCREENSHOTS}${name}.png`;
  // The top of the page, as someone opening it sees it (a test may have scrolled to click something).
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path, fullPage: false, animations: 'disabled', caret: 'hide' });
  return path;
}

/**
 * Waits until the page shows the address bar's URL (the shell's `<main data-hash>`: a new URL's render,
 * not the last one's), has drawn its cards, none of them or their stats is loading, and every chart has
 * drawn. Resolves with the page's clock then (performance.now(), ms since navigation).
 */
export async function settled(page: Page): Promise<number> {
  await page.waitForFunction(
    () =>
      (document.querySelector('main') as HTMLElement | null)?.dataset.hash === location.hash &&
      document.querySelector('main h1') !== null &&
      document.querySelectorAll('[aria-busy="true"], .loading').length === 0 &&
      [...document.querySelectorAll('.chart')].every((c) => c.hasAttribute('data-drawn')),
    undefined,
    { timeout: 30_000, polling: 'raf' },
  );
  return page.evaluate(() => performance.now());
}
