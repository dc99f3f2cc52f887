/**
 * The edge SDK in a Next.js app built with `next build` and run with `next start`: a route handler on the
 * edge runtime and a server action on Node's track through `trackAfter`, which hands delivery to Next's
 * `after()`. The responses do not wait for the collector, and what was tracked is stored once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectorProxy, serveFor, type TestServer, waitForStored } from './support/collector.js';
import { buildNextApp, type NextApp, startNextApp } from './support/next-app.js';

/** Stored sign-ups of the app, by plan (the route handler tracks `team`, the server action `pro`). */
async function signups(s: TestServer): Promise<Record<string, number>> {
  const rows = await s.server.store.sql.query<{ plan: string; n: number; d: number }>(
    `SELECT properties->>'plan' AS plan, count(*)::int AS n, count(DISTINCT id)::int AS d FROM events
     WHERE name = 'user_signed_up' AND context->>'service' = 'next-fixture' GROUP BY 1`,
  );
  for (const r of rows) expect(r.d).toBe(r.n);
  return Object.fromEntries(rows.map((r) => [r.plan, r.n]));
}

describe('a Next.js app tracking into tally serve', () => {
  let s: TestServer;
  let proxy: Awaited<ReturnType<typeof collectorProxy>>;
  let app: NextApp;
  beforeAll(async () => {
    [s] = await Promise.all([serveFor('pglite'), buildNextApp()]);
    proxy = await collectorProxy(s.server.url);
    app = await startNextApp(proxy.url, s.key);
  }, 240_000);
  afterAll(async () => {
    await app?.stop();
    await proxy?.close();
    await s?.dispose();
  });

  it('a route handler on the edge runtime answers before delivery, and its events are stored once', async () => {
    // The collector answers 3 s late: a response that waited for delivery would take that long.
    proxy.answerLate(1, 3000);
    const started = Date.now();
    const res = await fetch(`${app.url}/api/signup`, { method: 'POST', body: JSON.stringify({ n: 20 }) });
    expect(await res.json()).toEqual({ tracked: 20 });
    expect(Date.now() - started).toBeLessThan(2500);
    for (let i = 0; i < 2; i++) {
      await fetch(`${app.url}/api/signup`, { method: 'POST', body: JSON.stringify({ n: 20 }) });
    }
    await waitForStored(s, 60);
    // The late answer was not waited for by the tracker either (5 s request timeout): nothing resent.
    await new Promise((r) => setTimeout(r, 500));
    expect(await signups(s)).toEqual({ team: 60 });
    const [row] = await s.server.store.sql.query<{ context: Record<string, unknown> }>(
      `SELECT context FROM events WHERE context->>'service' = 'next-fixture' LIMIT 1`,
    );
    expect(row?.context).toMatchObject({ library: { name: '@tally/edge' } });
  }, 60_000);

  it('a server action tracks, and each submission is stored once', async () => {
    // The form's action as a browser without JavaScript submits it: the page names the action in a
    // hidden field, and a multipart POST to the page runs it.
    const html = await (await fetch(app.url)).text();
    const action = /name="(\$ACTION_ID_[0-9a-f]+)"/.exec(html)?.[1];
    expect(action, html.slice(0, 2000)).toBeDefined();
    for (let i = 0; i < 3; i++) {
      const form = new FormData();
      form.set(action as string, '');
      form.set('plan', 'pro');
      const res = await fetch(app.url, { method: 'POST', body: form, redirect: 'manual' });
      expect(res.status, await res.text()).toBeLessThan(400);
    }
    await waitForStored(s, 63);
    expect(await signups(s)).toEqual({ team: 60, pro: 3 });
  }, 60_000);
});
