/**
 * The dashboard's pages, in nav order. Each built page is its own module, `pages/<name>.tsx`, loaded by a
 * dynamic import() when first opened, so it is its own chunk (its JavaScript is counted per page in
 * dist/manifest.json) and a page's weight never slows another's first paint. A page module's default
 * export is a component taking PageProps.
 */
import type { ComponentType } from 'preact';
import type { Route, View } from '../url.js';

export interface PageProps {
  route: Route;
  view: View;
  setParams(patch: Record<string, string | undefined>, options?: { replace?: boolean }): void;
}

export interface PageModule {
  default: ComponentType<PageProps>;
}

export interface PageDef {
  name: string;
  title: string;
  /** Shown in the nav for admin keys only. */
  adminOnly?: boolean;
  /** Absent until the page is built: the shell then shows its title alone. */
  load?: () => Promise<PageModule>;
}

export const PAGES: readonly PageDef[] = [
  { name: 'overview', title: 'Overview', load: () => import('./overview.js') },
  { name: 'trends', title: 'Trends', load: () => import('./trends.js') },
  { name: 'funnels', title: 'Funnels', load: () => import('./funnels.js') },
  { name: 'retention', title: 'Retention', load: () => import('./retention.js') },
  { name: 'routes', title: 'Routes', load: () => import('./routes.js') },
  { name: 'logs', title: 'Request logs', load: () => import('./logs.js') },
  { name: 'live', title: 'Live', load: () => import('./live.js') },
  { name: 'catalog', title: 'Catalog', load: () => import('./catalog.js') },
  { name: 'system', title: 'System', adminOnly: true, load: () => import('./system.js') },
];

export function pageOf(name: string): PageDef | undefined {
  return PAGES.find((p) => p.name === name);
}
