/**
 * The admin API of a test server, for the pages that show it (Catalog's quarantine, System): calls with
 * the data directory's admin token, as `tally` commands beside a running server make them, and a
 * server-wide admin key (no tenant), which the dashboard signs in with to read the server's state.
 */
import type { Page } from 'playwright-core';
import { type DashboardServer, TENANT } from './server.js';

export interface AdminApi {
  token: string;
  /** A JSON call under /v1/admin with `auth` (default: the admin token); throws unless 200. */
  call<T = Record<string, unknown>>(method: string, path: string, body?: unknown, auth?: string): Promise<T>;
  /** A streamed (NDJSON) operation's `result` line; throws on its `error` line. */
  run<T = Record<string, unknown>>(path: string, body?: unknown, auth?: string): Promise<T>;
  /** A new server-wide admin key. */
  serverAdminKey(): Promise<string>;
}

export function adminApi(server: DashboardServer): AdminApi {
  const token = server.adminToken;
  const send = (method: string, path: string, body: unknown, auth: string | undefined) =>
    fetch(`${server.url}/v1/admin${path}`, {
      method,
      headers: {
        authorization: `Bearer ${auth ?? token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const api: AdminApi = {
    token,
    async call<T>(method: string, path: string, body?: unknown, auth?: string) {
      const res = await send(method, path, body, auth);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`${method} /v1/admin${path}: ${res.status} ${text}`);
      return JSON.parse(text) as T;
    },
    async run<T>(path: string, body?: unknown, auth?: string) {
      const res = await send('POST', path, body ?? {}, auth);
      const lines = (await res.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { result?: T; error?: { code: string; message: string } });
      const last = lines.at(-1);
      if (res.status !== 200 || !last || last.error || last.result === undefined) {
        throw new Error(`POST /v1/admin${path}: ${res.status} ${JSON.stringify(last)}`);
      }
      return last.result;
    },
    serverAdminKey: () => server.createKey('admin', null),
  };
  return api;
}

/**
 * Signs in with a server-wide admin key: the sign-in screen asks which tenant to read (the test tenant),
 * then opens `hash`.
 */
export async function signInServerAdmin(page: Page, base: string, key: string, hash: string): Promise<void> {
  await page.goto(`${base}/${hash}`);
  await page.getByLabel('Read key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByLabel('Tenant').selectOption(TENANT);
  await page.getByRole('button', { name: 'Open' }).click();
  await page.getByRole('navigation', { name: 'Pages' }).waitFor();
}
