/**
 * A real `tally serve` for the browser tests: a child process on a free port with a temp data directory
 * and embedded PGlite (the default setup a user starts with), serving the built dashboard. Keys are
 * created through the admin API with the data directory's admin token (as `tally keys create` does beside
 * a running server), and the seed data goes through the collector with the write key, as apps send it.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../../node/test/support/helpers.js';
import { launchServe, type ServeProcess } from '../../../server/test/support/child-process.js';
import { ensureBuilt } from './build.js';
import { type SeedData, seedData } from './seed.js';

const CLI = fileURLToPath(new URL('../../../server/test/support/tally-child.ts', import.meta.url));

export const TENANT = 'acme';

export interface TestKeys {
  read: string;
  write: string;
  /** An admin key of the tenant. */
  admin: string;
}

export interface DashboardServer {
  url: string;
  keys: TestKeys;
  seed?: SeedData;
  /** When the seed was made: its events lie in the six days before. */
  anchor: number;
  process: ServeProcess;
  /** The data directory's admin token (loopback only), as `tally` commands beside the server use it. */
  adminToken: string;
  /** POST /v1/events with the write key, as an app sends; the collector's answer (throws unless 200). */
  send(batch: readonly object[]): Promise<{ accepted: number; rejected: unknown[] }>;
  /** POST /v1/query with the read key: the answer the dashboard must show. */
  query(q: unknown): Promise<{ columns: { name: string }[]; rows: unknown[][]; meta: Record<string, unknown> }>;
  /** Another key of the tenant (or a server-wide admin key with `tenant: null`), through the admin API. */
  createKey(scope: 'read' | 'write' | 'admin', tenant?: string | null): Promise<string>;
  revokeKey(key: string): Promise<void>;
  dispose(): Promise<void>;
}

export async function startDashboardServer(
  options: { args?: string[]; seed?: boolean } = {},
): Promise<DashboardServer> {
  await ensureBuilt();
  const data = tempDir('tally-dashboard-');
  let proc: ServeProcess | undefined;
  const dispose = async () => {
    if (proc && proc.proc.exitCode === null) {
      const exited = once(proc.proc, 'exit');
      proc.proc.kill('SIGTERM');
      const timer = setTimeout(() => proc?.proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    data.cleanup();
  };
  try {
    proc = await launchServe(CLI, ['--data-dir', data.dir, ...(options.args ?? [])]);
    const url = proc.url;
    const token = readFileSync(join(data.dir, 'admin-token'), 'utf8').trim();
    const createKey = async (scope: 'read' | 'write' | 'admin', tenant: string | null = TENANT) => {
      const res = await fetch(`${url}/v1/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ tenant, scope, name: `dashboard test ${scope}` }),
      });
      const body = (await res.json()) as { key: string };
      if (res.status !== 200) throw new Error(`creating a ${scope} key: ${res.status} ${JSON.stringify(body)}`);
      return body.key;
    };
    const keys: TestKeys = {
      write: await createKey('write'),
      read: await createKey('read'),
      admin: await createKey('admin'),
    };

    const send: DashboardServer['send'] = async (batch) => {
      const res = await fetch(`${url}/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.write}`, 'content-type': 'application/json' },
        body: JSON.stringify({ batch }),
      });
      if (res.status !== 200) throw new Error(`sending ${batch.length} events: ${res.status} ${await res.text()}`);
      return (await res.json()) as { accepted: number; rejected: unknown[] };
    };

    const query: DashboardServer['query'] = async (q) => {
      const res = await fetch(`${url}/v1/query`, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.read}`, 'content-type': 'application/json' },
        body: JSON.stringify(q),
      });
      const body = (await res.json()) as Awaited<ReturnType<DashboardServer['query']>>;
      if (res.status !== 200) throw new Error(`query ${JSON.stringify(q)}: ${res.status} ${JSON.stringify(body)}`);
      return body;
    };

    const revokeKey = async (key: string) => {
      // By the key's shown prefix (its first 10 characters).
      const res = await fetch(`${url}/v1/admin/keys/${encodeURIComponent(key.slice(0, 10))}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
      });
      if (res.status !== 200) throw new Error(`revoking a key: ${res.status} ${await res.text()}`);
    };

    const anchor = Date.now();
    let seed: SeedData | undefined;
    if (options.seed !== false) {
      seed = seedData(anchor);
      const all = [...seed.events, ...seed.logs];
      for (let i = 0; i < all.length; i += 100) {
        const body = await send(all.slice(i, i + 100));
        if (body.accepted !== Math.min(100, all.length - i)) throw new Error(`seeding: ${JSON.stringify(body)}`);
      }
      await waitStored(query, seed);
    }
    return { url, keys, seed, anchor, process: proc, adminToken: token, send, query, createKey, revokeKey, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/** Until the explore and routes answers count every seeded event and log (stored, rollups included). */
async function waitStored(query: DashboardServer['query'], seed: SeedData): Promise<void> {
  const want = seed.events.length;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const events = await query({ kind: 'explore', range: { last: '7d' }, tz: 'UTC' });
    const routes = await query({ kind: 'routes', range: { last: '7d' }, tz: 'UTC', limit: 100 });
    const stored = sumOf(events, 'count');
    const logs = sumOf(routes, 'count');
    if (stored === want && logs === seed.logs.length) return;
    if (Date.now() > deadline) throw new Error(`seed not stored after 30 s: ${stored}/${want} events, ${logs} logs`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function sumOf(answer: Awaited<ReturnType<DashboardServer['query']>>, column: string): number {
  const i = answer.columns.findIndex((c) => c.name === column);
  return answer.rows.reduce((n, r) => n + Number(r[i]), 0);
}
