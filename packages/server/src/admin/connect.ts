/**
 * Where the CLI's operations run. When the data directory's state file names a live `tally serve` that
 * answers (and serves the same database), everything goes through its admin API: that works beside the
 * server, and key and tenant changes reach its caches at once. Otherwise the CLI opens the store itself.
 *
 * Embedded PGlite takes one process, so there the state file is also a lock: a command that opens the
 * database directly holds it while it works, and a live holder that cannot be reached (a server
 * starting, draining or stuck; another command) makes the CLI wait a little, then refuse, rather than
 * open files another process has open. Postgres takes many connections: with no server to ask, the CLI
 * simply connects.
 */
import { join } from 'node:path';
import type { ClickHouseStore } from '@tally/clickhouse';
import { type Catalog, catalogDimensions, ErrorCodes, TallyError } from '@tally/core';
import { VERSION } from '@tally/node';
import { createStore, createWriter, type Writer, writeEnvelopes } from '@tally/store';
import { analyticsStore, openClickHouse } from '../analytics.js';
import { loadCatalog } from '../catalog-module.js';
import type { Config } from '../config.js';
import { createReplayer } from '../quarantine.js';
import { type ArchiveTarget, targetFromUrl } from '../lifecycle/targets/index.js';
import { createRemoteOps, fetchStatus } from './client.js';
import { createLocalOps } from './local.js';
import type { AdminOps } from './ops.js';
import {
  claimServerState,
  isOtherProcessAlive,
  readAdminToken,
  readServerState,
  removeServerState,
  type ServerState,
  STATE_FILE,
  TOKEN_FILE,
} from './state.js';

export function describeStore(config: Config): string {
  const relational =
    config.store.kind === 'pglite'
      ? `PGlite at ${config.store.dataDir}`
      : `Postgres ${new URL(config.store.url).host}, schema ${config.store.schema}`;
  if (!config.clickhouse) return relational;
  const ch = config.clickhouse;
  return `ClickHouse ${new URL(ch.url).host}, database ${ch.database} (events and request logs) and ${relational}`;
}

/**
 * Which database a config names, to check that a server found in the data directory is the one meant:
 * the engine, where it is (not the credentials) and the schema. PGlite's files are the data directory's.
 */
export function databaseOf(config: Config): string {
  const { store } = config;
  if (store.kind === 'pglite') return `pglite schema ${store.schema ?? 'tally'}`;
  const u = new URL(store.url);
  return `postgres ${u.host}${u.pathname} schema ${store.schema ?? 'tally'}`;
}

export interface OpenOptions {
  /** The command, recorded in the state file while it holds the embedded database (`keys create`). */
  command?: string;
  /** Apply migrations when opening the store directly (every command but `migrate`, which reports them). */
  migrate?: boolean;
  /** A line for the user about the route taken (a stale state file). */
  notice?: (line: string) => void;
  /** How long to wait for a live holder to answer (a server) or let go (a command). Default 30 s. */
  waitMs?: number;
}

export async function openAdminOps(config: Config, options: OpenOptions = {}): Promise<AdminOps> {
  const where = await locate(config, options);
  if ('server' in where) return where.server;
  return openLocalOps(config, options.migrate ?? true, where.release);
}

/**
 * For a command that opens the database with code of its own (doctor): the running server's URL to ask,
 * or the right to open the database directly until `release` (the same waiting and refusals as above).
 */
export async function reserveDatabase(
  config: Config,
  options: OpenOptions = {},
): Promise<{ url: string } | { release: () => Promise<void> }> {
  const where = await locate(config, options);
  if ('server' in where) return { url: (where.server.target.server as { url: string }).url };
  return where;
}

async function locate(
  config: Config,
  options: OpenOptions,
): Promise<{ server: AdminOps } | { release: () => Promise<void> }> {
  const dir = config.dataDir;
  const stateFile = join(dir, STATE_FILE);
  const pglite = config.store.kind === 'pglite';
  const deadline = Date.now() + (options.waitMs ?? 30_000);
  const direct = { release: async () => undefined };
  let reported = false;
  let waited = false;
  for (;;) {
    const state = await readServerState(dir);
    let waitingFor = '';
    if (state && isOtherProcessAlive(state.pid)) {
      if (state.command === 'serve' && state.url !== undefined) {
        const r = await tryServer(config, state, Math.max(500, deadline - Date.now()));
        if ('ops' in r) return { server: r.ops };
        if (r.otherDatabase !== undefined) {
          if (!pglite) return direct;
          throw new TallyError(
            ErrorCodes.CONFIG,
            `tally serve (pid ${state.pid}) holds ${dir} with ${r.otherDatabase}, not the ${databaseOf(config)} this command names`,
          );
        }
        if (!pglite) return direct;
        waitingFor = `tally serve (pid ${state.pid}) holds ${dir} but does not answer at ${state.url} (${r.problem})`;
      } else if (pglite) {
        waitingFor =
          state.command === 'serve'
            ? `tally serve (pid ${state.pid}) is starting on ${dir}`
            : `tally ${state.command} (pid ${state.pid}) has the database in ${dir} open`;
      } else return direct;
    } else {
      if (state && !reported) {
        options.notice?.(
          `${stateFile} is stale (pid ${state.pid} is not running: it stopped without cleaning up); opening the database directly`,
        );
        reported = true;
      }
      if (!pglite) return direct;
      const mine: ServerState = {
        pid: process.pid,
        command: options.command ?? 'cli',
        startedAt: new Date().toISOString(),
        version: VERSION,
      };
      if ((await claimServerState(dir, mine)).ok) return { release: () => removeServerState(dir) };
      continue; // someone took it in between: look again
    }
    if (!waited) {
      options.notice?.(`waiting: ${waitingFor}…`);
      waited = true;
    }
    if (Date.now() >= deadline) {
      throw new TallyError(
        ErrorCodes.UNAVAILABLE,
        `${waitingFor}. Embedded PGlite takes one process at a time: try again when it has started or finished; ` +
          `if pid ${state.pid} is no tally process, delete ${stateFile}.`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The server's ops, or why not (`otherDatabase`: the one it serves, when the config names another). */
async function tryServer(
  config: Config,
  state: ServerState,
  timeoutMs: number,
): Promise<{ ops: AdminOps } | { problem: string; otherDatabase?: string }> {
  const dir = config.dataDir;
  let token: string | undefined;
  try {
    token = await readAdminToken(dir);
  } catch (e) {
    throw new TallyError(
      ErrorCodes.UNAUTHORIZED,
      `tally serve (pid ${state.pid}) runs on ${dir}, but its admin token cannot be read: ${(e as Error).message} (run as the user that runs tally serve)`,
    );
  }
  if (token === undefined) {
    throw new TallyError(
      ErrorCodes.UNAUTHORIZED,
      `tally serve (pid ${state.pid}) runs on ${dir}, but ${join(dir, TOKEN_FILE)} is missing; restart the server to recreate it`,
    );
  }
  const client = { url: state.url as string, token };
  try {
    const status = await fetchStatus(client, Math.min(timeoutMs, 3000));
    if (status.pid !== state.pid) return { problem: `pid ${status.pid} answers there` };
    if (status.database !== databaseOf(config)) {
      return { problem: `it serves ${status.database}`, otherDatabase: status.database };
    }
    return { ops: createRemoteOps(client, { store: status.store, server: { pid: state.pid, url: client.url } }) };
  } catch (e) {
    // A refusal (a wrong token, a caller that is not loopback) will not change by waiting.
    if ((e as TallyError).code !== ErrorCodes.UNAVAILABLE) throw e;
    return { problem: (e as Error).message };
  }
}

async function openLocalOps(config: Config, migrate: boolean, unlock: () => Promise<void>): Promise<AdminOps> {
  let store;
  let catalog: Catalog;
  try {
    // The same rollup dimensions and user activity as tally serve: rows this process stores (replays,
    // restores) are rolled up as the server's are, and opening it with the other setting would mark the
    // user activity rollup covered or not behind the server's back.
    catalog = await loadCatalog(config.catalogModule);
    store = await createStore({
      ...config.store,
      dimensions: catalogDimensions(catalog),
      activityRollup: config.activityRollup,
    });
  } catch (e) {
    await unlock();
    throw e;
  }
  const relational = store;
  let clickhouse: ClickHouseStore | undefined;
  try {
    if (migrate) await store.migrate();
    // With ClickHouse the rows this process reads, stores, archives and deletes are there, as for serve.
    if (config.clickhouse) {
      clickhouse = await openClickHouse(config.clickhouse, store, undefined, {
        migrate,
        dimensions: catalogDimensions(catalog),
      });
      store = analyticsStore(store, clickhouse);
    }
  } catch (e) {
    await relational.close();
    await unlock();
    throw e;
  }
  let target: Promise<ArchiveTarget> | undefined;
  let writer: Writer | undefined;
  const openWriter = () => (writer ??= createWriter({ store, spoolDir: config.spoolDir }));
  return createLocalOps({
    store,
    config,
    listedEvents: Object.keys(catalog.events),
    target: { store: describeStore(config) },
    archiveTarget: () =>
      (target ??= targetFromUrl(config.lifecycle.target, { dataDir: config.dataDir, ...config.lifecycle.s3 })),
    writer: openWriter,
    // No server runs: events that now pass go straight to the store, through a writer (exactly once by id).
    async replayRejected(filter, options) {
      const replay = createReplayer({
        store,
        catalog,
        config,
        publish: async (events) => {
          const r = await writeEnvelopes(openWriter(), events);
          if (!r.ok) throw new TallyError(ErrorCodes.UNAVAILABLE, `the writer refused the replayed events: ${r.code}`);
          return r;
        },
      });
      return replay(filter, options);
    },
    async release() {
      await writer?.close();
      const t = await target?.catch(() => undefined);
      (t as { close?: () => void } | undefined)?.close?.();
      await clickhouse?.close();
      await store.close();
      await unlock();
    },
  });
}
