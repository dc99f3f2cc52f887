/**
 * The dashboard as `tally serve` serves it, in real Chromium: its files and security headers, sign-in
 * (a write key refused with the server's message, a read key let in), sign-out clearing the session, and
 * `--dashboard off`.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { launchBrowser, openPage, screenshot, seriousViolations, signIn, withChromium } from './support/browser.js';
import { type DashboardServer, startDashboardServer } from './support/server.js';

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function expectSecurityHeaders(h: Headers) {
  expect(h.get('content-security-policy')).toBe(CSP);
  expect(h.get('x-content-type-options')).toBe('nosniff');
  expect(h.get('referrer-policy')).toBe('no-referrer');
  expect(h.get('set-cookie')).toBeNull();
}

withChromium.describe('dashboard: serving and sign-in', () => {
  let server: DashboardServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startDashboardServer({ seed: false }), launchBrowser()]);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it('serves index.html and hashed assets with a strict CSP, caching and precompression', async () => {
    const index = await fetch(`${server.url}/`);
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expectSecurityHeaders(index.headers);
    const html = await index.text();
    // No inline script or style: every <script> has a src, there is no <style> and no style attribute.
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc="\/assets\/main-[A-Z0-9]+\.js"/);
      expect(attrs).toMatch(/type="module"/);
      expect(body).toBe('');
    }
    expect(html).not.toMatch(/<style|\sstyle=|\son[a-z]+=|javascript:/i);

    const etag = index.headers.get('etag') as string;
    expect((await fetch(`${server.url}/`, { headers: { 'if-none-match': etag } })).status).toBe(304);

    const entry = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1] as string;
    const css = /href="(\/assets\/[^"]+\.css)"/.exec(html)?.[1] as string;
    for (const path of [entry, css]) {
      const plain = await fetch(`${server.url}${path}`, { headers: { 'accept-encoding': 'identity' } });
      expect(plain.status).toBe(200);
      expect(plain.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(plain.headers.get('content-encoding')).toBeNull();
      expect(plain.headers.get('vary')).toBe('accept-encoding');
      expectSecurityHeaders(plain.headers);
      const body = Buffer.from(await plain.arrayBuffer());
      // fetch() decompresses; the raw sizes say which encoding came.
      for (const encoding of ['gzip', 'br'] as const) {
        const res = await fetch(`${server.url}${path}`, { headers: { 'accept-encoding': encoding } });
        expect(res.headers.get('content-encoding')).toBe(encoding);
        expect(Number(res.headers.get('content-length'))).toBeLessThan(body.length);
        expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
        expect(res.headers.get('etag')).not.toBe(plain.headers.get('etag'));
      }
    }
    expect((await fetch(`${server.url}${entry}`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');

    const missing = await fetch(`${server.url}/assets/main-NOSUCHHASH.js`);
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('TALLY_NOT_FOUND');
    expectSecurityHeaders(missing.headers);
    expect((await fetch(`${server.url}/assets/..%2Fmanifest.json`)).status).toBe(404);
  });

  it('refuses a write key at sign-in with the server’s message; takes a read key; sign-out clears the session', async () => {
    const t = await openPage(browser);
    try {
      const { page } = t;
      await page.goto(`${server.url}/`);
      await page.getByRole('heading', { name: 'Tally' }).waitFor();
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'sign-in');

      // The refusal is the server's 403 answer, shown; it is the one failed request this test expects.
      t.expect(/^403 GET .*\/v1\/whoami$/);
      t.expect(/status of 403/);
      await page.getByLabel('Read key').fill(server.keys.write);
      await page.getByRole('button', { name: 'Sign in' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      expect(await alert.textContent()).toMatch(/TALLY_FORBIDDEN.*a write key cannot read: use a read key/);
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

      await page.getByLabel('Read key').fill(server.keys.read);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('navigation', { name: 'Pages' }).waitFor();
      const stored = await page.evaluate(() => JSON.stringify(sessionStorage));
      expect(stored).toContain(server.keys.read);
      // Only in this tab's session storage: no cookie, nothing in localStorage or the URL.
      expect(await t.context.cookies()).toEqual([]);
      expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain('tk_');
      expect(page.url()).not.toContain('tk_');
      // System is for admin keys.
      const nav = await page.getByRole('navigation', { name: 'Pages' }).getByRole('link').allTextContents();
      expect(nav).toEqual(['Overview', 'Trends', 'Funnels', 'Retention', 'Routes', 'Request logs', 'Live', 'Catalog']);

      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('Read key').waitFor();
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
      // A reload after sign-out stays signed out.
      await page.reload();
      await page.getByLabel('Read key').waitFor();
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a server with no data: the Overview shows zeros and empty tables, no error', async () => {
    const t = await openPage(browser);
    try {
      await signIn(t.page, server.url, server.keys.read, '#/overview?range=24h&tz=UTC');
      await t.page.waitForFunction(
        () =>
          document.querySelectorAll('[data-card]').length > 0 &&
          document.querySelectorAll('[aria-busy="true"], .loading').length === 0,
      );
      const stats = await t.page
        .locator('.stat-value')
        .evaluateAll((els) =>
          els.map((e) => [e.parentElement?.getAttribute('data-stat'), e.getAttribute('data-value')]),
        );
      expect(Object.fromEntries(stats)).toMatchObject({
        events: '0',
        'active-users': '0',
        requests: '0',
        'error-rate': '0',
      });
      expect(await t.page.locator('[data-card="recent-5xx"] td.empty').textContent()).toBe(
        'No server errors in this range.',
      );
      expect(await t.page.locator('.error-box').count()).toBe(0);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a server-wide admin key picks the tenant it reads; its reads name it', async () => {
    const t = await openPage(browser);
    try {
      const key = await server.createKey('admin', null);
      const asked: string[] = [];
      t.page.on('request', (r) => {
        if (r.url().includes('/v1/query')) asked.push(r.url());
      });
      await t.page.goto(`${server.url}/#/overview?range=24h&tz=UTC`);
      await t.page.getByLabel('Read key').fill(key);
      await t.page.getByRole('button', { name: 'Sign in' }).click();
      await t.page.getByLabel('Tenant').selectOption('acme');
      await t.page.getByRole('button', { name: 'Open' }).click();
      await t.page.locator('[data-card="top-events"][aria-busy="false"]').waitFor();
      expect(await t.page.locator('.tenant').textContent()).toContain('acme');
      expect(asked.length).toBeGreaterThan(0);
      for (const url of asked) expect(url).toMatch(/\/v1\/query\?tenant=acme$/);
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it('a new tab (a new session) asks for the key again', async () => {
    const t = await openPage(browser);
    try {
      await signIn(t.page, server.url, server.keys.read);
      const other = await t.context.newPage();
      await other.goto(`${server.url}/#/overview`);
      await other.getByLabel('Read key').waitFor();
      await other.close();
      expect(t.problems()).toEqual([]);
    } finally {
      await t.close();
    }
  });
});

withChromium.describe('dashboard: --dashboard off', () => {
  let server: DashboardServer;
  beforeAll(async () => {
    server = await startDashboardServer({ seed: false, args: ['--dashboard', 'off'] });
  }, 120_000);
  afterAll(() => server?.dispose());

  it('/ and /assets are 404 JSON like any unknown path; the API still answers', async () => {
    for (const path of ['/', '/assets/main.js']) {
      const res = await fetch(`${server.url}${path}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('TALLY_NOT_FOUND');
      expect(res.headers.get('content-security-policy')).toBeNull();
    }
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });
});
