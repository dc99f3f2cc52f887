import type { ComponentType } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ErrorBox } from './components/error-box.js';
import { RangePicker, ThemeToggle, TimeZonePicker } from './components/view-controls.js';
import { PAGES, type PageDef, type PageProps, pageOf } from './pages/registry.js';
import { type SessionState, SessionContext, tenantOf } from './session.js';
import { type Route, RouteContext, type RouteState, hrefFor, patchParams, viewOf } from './url.js';

/**
 * The frame around every page: the header (brand, tenant, range, time zone, theme, sign-out), the nav of
 * pages, and the page itself, loaded on first visit. The route (from the URL) and the session are given
 * to everything below through contexts (useRoute, useSession).
 */
export function Shell({ route, session }: { route: Route; session: SessionState }) {
  // Resolved once per URL: "this month" ends now, and the view must not change under a page while it renders.
  const view = useMemo(() => viewOf(route.params), [route]);
  const state = useMemo<RouteState>(
    () => ({ route, view, setParams: (patch, options) => patchParams(route, patch, options) }),
    [route, view],
  );
  const isAdmin = session.session.scope === 'admin';
  const pages = PAGES.filter((p) => !p.adminOnly || isAdmin);
  const page = pageOf(route.page);
  const allowed = page && (!page.adminOnly || isAdmin);

  useEffect(() => {
    document.title = `${page?.title ?? 'Not found'} · Tally`;
  }, [page]);

  return (
    <SessionContext.Provider value={session}>
      <RouteContext.Provider value={state}>
        <a class="skip-link" href="#main" onClick={skipToMain}>
          Skip to content
        </a>
        <header class="top">
          <div class="top-row">
            <a class="brand" href={hrefFor(route, 'overview')}>
              <span class="brand-mark" aria-hidden="true" />
              Tally
            </a>
            <span class="tenant" title="Tenant">
              {tenantOf(session.session)}
              <span class="scope">{session.session.scope}</span>
            </span>
            <div class="top-actions">
              <ThemeToggle />
              <button type="button" class="button small ghost" data-control="sign-out" onClick={session.signOut}>
                Sign out
              </button>
            </div>
          </div>
          <nav class="pages" aria-label="Pages">
            <ul>
              {pages.map((p) => (
                <li key={p.name}>
                  <a href={hrefFor(route, p.name)} aria-current={p.name === route.page ? 'page' : undefined}>
                    {p.title}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <div class="view-controls">
            <RangePicker key={`${view.preset}|${route.params.from}|${route.params.to}`} route={route} view={view} />
            <TimeZonePicker route={route} view={view} />
          </div>
        </header>
        {/* data-hash: the URL this render shows, so a test can tell a new URL's render from the last one's. */}
        <main id="main" tabIndex={-1} data-hash={route.hash}>
          {allowed ? (
            <PageHost def={page} props={state} />
          ) : page ? (
            <>
              <h1>{page.title}</h1>
              <p class="notice" data-needs="admin">
                {page.title} is shown to admin keys: sign in with an admin key (
                <code>tally keys create --tenant &lt;id&gt; --scope admin</code>).
              </p>
            </>
          ) : (
            <>
              <h1>Not found</h1>
              <ErrorBox error={{ name: 'NotFound', message: `There is no page "${route.page}".` } as Error} />
            </>
          )}
        </main>
      </RouteContext.Provider>
    </SessionContext.Provider>
  );
}

function skipToMain(e: Event) {
  e.preventDefault();
  document.getElementById('main')?.focus();
}

const loaded = new Map<string, ComponentType<PageProps>>();

/** Loads a page's chunk on first visit (kept for later visits) and renders it. */
function PageHost({ def, props }: { def: PageDef; props: PageProps }) {
  const [, setTick] = useState(0);
  const [error, setError] = useState<Error>();
  const Page = loaded.get(def.name);

  useEffect(() => {
    setError(undefined);
    if (!def.load || loaded.has(def.name)) return;
    let live = true;
    def.load().then(
      (m) => {
        loaded.set(def.name, m.default);
        if (live) setTick((t) => t + 1);
      },
      (e: Error) => live && setError(e),
    );
    return () => {
      live = false;
    };
  }, [def.name]);

  if (error) {
    return (
      <>
        <h1>{def.title}</h1>
        <ErrorBox error={new Error(`This page could not be loaded (${error.message}). Reload to try again.`)} />
      </>
    );
  }
  if (!def.load) return <h1>{def.title}</h1>;
  if (!Page) return <p class="muted loading">Loading…</p>;
  return <Page {...props} />;
}
