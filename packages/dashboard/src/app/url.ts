/**
 * The URL is the view: `#/<page>[/<sub>…]?<params>` holds the page, the date range, the time zone and the
 * page's own query, so reloading, sharing or bookmarking a link shows the same thing. Nothing of a view
 * lives anywhere else (no view state in storage, none only in memory).
 *
 * Shared params: `range` (`24h`, `7d`, `30d`, `90d` or `month`; default `7d`) or `from` + `to` (a custom
 * range: `YYYY-MM-DD` or `YYYY-MM-DDTHH:mm`, wall times in the zone, `to` exclusive), and `tz` (an IANA
 * zone; default the browser's). Every other param belongs to the page.
 */
import { createContext } from 'preact';
import { useContext, useEffect, useState } from 'preact/hooks';
import { type QueryRange, isValidTimeZone, parseRangeTime, resolveRange } from '@tally/core';

export interface Route {
  /** The page name (`overview`, `trends`, …). */
  page: string;
  /** Path segments after the page: `#/logs/<id>` has `['<id>']`. */
  rest: string[];
  params: Record<string, string>;
  /** The address bar's hash this route was read from (the shell shows it on `<main data-hash>`). */
  hash?: string;
}

export const RANGE_PRESETS = [
  { id: '24h', label: 'Last 24 hours', range: { last: '24h' } },
  { id: '7d', label: 'Last 7 days', range: { last: '7d' } },
  { id: '30d', label: 'Last 30 days', range: { last: '30d' } },
  { id: '90d', label: 'Last 90 days', range: { last: '90d' } },
  { id: 'month', label: 'This month', range: { this: 'month' } },
] as const satisfies readonly { id: string; label: string; range: QueryRange }[];

export type RangePreset = (typeof RANGE_PRESETS)[number]['id'];
export const DEFAULT_PRESET: RangePreset = '7d';
export const DEFAULT_PAGE = 'overview';

/** The date range and time zone every page shows, from the URL. */
export interface View {
  /** A preset's id, or `custom` for `from` + `to`. */
  preset: RangePreset | 'custom';
  /** As the query API takes it. */
  range: QueryRange;
  tz: string;
  /** The range resolved now, epoch ms, half-open (for choosing intervals and labels). */
  from: number;
  to: number;
}

export function browserTimeZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
}

export function parseHash(hash: string): Route {
  const text = hash.replace(/^#/, '');
  const q = text.indexOf('?');
  const path = q === -1 ? text : text.slice(0, q);
  const search = q === -1 ? '' : text.slice(q + 1);
  const [page = '', ...rest] = path
    .split('/')
    .filter((s) => s !== '')
    .map((s) => safeDecode(s));
  const params: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(search)) params[k] = v;
  return { page: page || DEFAULT_PAGE, rest, params };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** `#/<page>/<rest…>?<params>`, params in the order given, empty ones left out. */
export function formatHash(route: Pick<Route, 'page'> & Partial<Pick<Route, 'rest' | 'params'>>): string {
  const path = [route.page, ...(route.rest ?? [])].map(encodeURIComponent).join('/');
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(route.params ?? {})) if (v !== undefined && v !== '') search.set(k, v);
  const s = search.toString();
  return `#/${path}${s ? `?${s}` : ''}`;
}

/** The view of a route's params at `now`; a param that does not parse falls back to its default. */
export function viewOf(params: Record<string, string>, now = Date.now()): View {
  const tz = params.tz && isValidTimeZone(params.tz) ? params.tz : browserTimeZone();
  if (params.from && params.to) {
    const from = parseRangeTime(params.from, tz);
    const to = parseRangeTime(params.to, tz);
    if (from !== undefined && to !== undefined && from < to) {
      return { preset: 'custom', range: { from: params.from, to: params.to }, tz, from, to };
    }
  }
  const preset = RANGE_PRESETS.find((p) => p.id === params.range) ?? presetOf(DEFAULT_PRESET);
  const { from, to } = resolveRange(preset.range, tz, now);
  return { preset: preset.id, range: preset.range, tz, from, to };
}

function presetOf(id: RangePreset) {
  return RANGE_PRESETS.find((p) => p.id === id) as (typeof RANGE_PRESETS)[number];
}

/** The shared params of a view (what a link to another page carries over). */
export function viewParams(params: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['range', 'from', 'to', 'tz']) if (params[k] !== undefined) out[k] = params[k] as string;
  return out;
}

/** A link to `page` with the current range and time zone and the page's own `params`. */
export function hrefFor(current: Route, page: string, params: Record<string, string> = {}, rest: string[] = []) {
  return formatHash({ page, rest, params: { ...viewParams(current.params), ...params } });
}

/** Goes to a route: a new history entry, or `replace` the current one (e.g. while typing). */
export function navigate(route: Route, options: { replace?: boolean } = {}): void {
  const hash = formatHash(route);
  if (hash === location.hash) return;
  if (options.replace) {
    history.replaceState(history.state, '', hash);
    // replaceState fires no hashchange: tell the app ourselves.
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    location.hash = hash;
  }
}

/** The current route, following the address bar. */
export function useHashRoute(): Route {
  const read = () => ({ ...parseHash(location.hash), hash: location.hash });
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

export interface RouteState {
  route: Route;
  view: View;
  /**
   * Changes some params of the current route (undefined or '' removes one), keeping the rest:
   * `setParams({ interval: 'hour' })`. `replace` for changes not worth a Back step.
   */
  setParams(patch: Record<string, string | undefined>, options?: { replace?: boolean }): void;
}

export const RouteContext = createContext<RouteState | null>(null);

/** The route, the view and setParams, for any component below the shell. */
export function useRoute(): RouteState {
  const state = useContext(RouteContext);
  if (!state) throw new Error('useRoute: outside the dashboard shell');
  return state;
}

/**
 * setParams for a route (see RouteState). The patch applies to the address bar as it is now, not to the
 * route of the last render: two changes made before the page re-renders both stay. A call from a page
 * the user has left (an answer arriving late) changes nothing.
 */
export function patchParams(
  route: Route,
  patch: Record<string, string | undefined>,
  options: { replace?: boolean } = {},
): void {
  const current = parseHash(location.hash);
  if (current.page !== route.page || current.rest.join('/') !== route.rest.join('/')) return;
  const params = { ...current.params };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined || v === '') delete params[k];
    else params[k] = v;
  }
  navigate({ ...current, params }, options);
}
