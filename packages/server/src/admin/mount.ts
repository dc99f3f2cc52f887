/**
 * The admin side of `tally serve`, in steps serve.ts calls in order: `announceServer` before the store
 * opens (the state file the CLI looks for), `mountAdmin` before the port listens (routes on the
 * collector's app, sharing its store, writer, archive target and key cache), `listening` once it
 * listens, and `remove` after the store is closed, so no CLI opens the database while the server still
 * drains into it.
 */
import { TallyConfigError, type Transport } from '@tally/core';
import { VERSION } from '@tally/node';
import type { Store, Writer } from '@tally/store';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { KeyCache } from '../key-cache.js';
import type { ArchiveTarget } from '../lifecycle/targets/index.js';
import type { Metrics } from '../metrics.js';
import type { LiveHub } from '../query/live.js';
import { databaseOf, describeStore } from './connect.js';
import type { Replayer } from '../quarantine.js';
import { createLocalOps } from './local.js';
import { adminRoutes } from './routes.js';
import { systemStatus } from './system.js';
import {
  claimServerState,
  ensureAdminToken,
  loopbackUrl,
  removeServerState,
  type ServerState,
  writeServerState,
} from './state.js';

export interface AdminDeps {
  config: Config;
  store: Store;
  writer: Writer;
  archiveTarget: ArchiveTarget;
  keys: KeyCache;
  /** `tally rejected replay`: judged like the collector's events, published through the transport. */
  replayRejected: Replayer;
  /** The catalog's event names (see LocalOpsDeps). */
  listedEvents: readonly string[];
  /** What GET /v1/admin/system reports beside the writer. */
  transport: Transport;
  metrics: Metrics;
  live: LiveHub;
}

export async function mountAdmin(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { config } = deps;
  const ops = createLocalOps({
    store: deps.store,
    config,
    target: { store: describeStore(config) },
    archiveTarget: async () => deps.archiveTarget,
    writer: () => deps.writer,
    keys: deps.keys,
    replayRejected: deps.replayRejected,
    listedEvents: deps.listedEvents,
  });
  await app.register(adminRoutes, {
    prefix: '/v1/admin',
    ops,
    token: await ensureAdminToken(config.dataDir),
    keys: deps.keys,
    status: {
      pid: process.pid,
      version: VERSION,
      startedAt: new Date().toISOString(),
      store: describeStore(config),
      database: databaseOf(config),
    },
    spoolDir: config.spoolDir,
    system: () =>
      systemStatus({
        writer: deps.writer,
        transport: deps.transport,
        metrics: deps.metrics,
        live: deps.live,
        spoolDir: config.spoolDir,
      }),
  });
}

export interface Announcement {
  /** Adds the URL once the port listens. */
  listening(port: number): Promise<void>;
  /** Removes the state file (after the store is closed). */
  remove(): Promise<void>;
}

/**
 * Takes `<data-dir>/server.json` before the store opens. With embedded PGlite a live holder (another
 * server, or a command working on the database directly) stops the start: two processes must never
 * open the same PGlite files. With Postgres the file only tells the CLI where the server is.
 */
export async function announceServer(config: Config): Promise<Announcement> {
  const state: ServerState = {
    pid: process.pid,
    command: 'serve',
    startedAt: new Date().toISOString(),
    version: VERSION,
  };
  if (config.store.kind === 'pglite') {
    const claim = await claimServerState(config.dataDir, state);
    if (!claim.ok) {
      const h = claim.holder;
      throw new TallyConfigError(
        `${config.dataDir} is in use by tally ${h.command} (pid ${h.pid}${h.url ? `, ${h.url}` : ''}): embedded PGlite ` +
          `takes one process. ${h.command === 'serve' ? 'Stop that server first' : 'Wait for that command to finish'}, or use another --data-dir.`,
      );
    }
  } else {
    await writeServerState(config.dataDir, state);
  }
  return {
    listening: (port) => writeServerState(config.dataDir, { ...state, url: loopbackUrl(config.host, port) }),
    remove: () => removeServerState(config.dataDir),
  };
}
