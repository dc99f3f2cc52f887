/**
 * `tally serve`: store + writer + transport + collector, wired from one Config. Start order is
 * storage first (migrated, pending spool recovered), then the transport's consumer, then the HTTP port;
 * stop order is the reverse: stop accepting, let answered-or-not requests finish, drain the transport,
 * drain the writer (what cannot be stored in time goes to the pending spool), close the store.
 */
import { appendFile, mkdir } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { catalogDimensions, type Transport } from '@tally/core';
import { dashboardRoutes } from '@tally/dashboard';
import { createNatsTransport } from '@tally/nats';
import type { ClickHouseStore } from '@tally/clickhouse';
import { countApiKeys, createApiKey, createStore, createWriter, type Store, type Writer } from '@tally/store';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { announceServer, mountAdmin } from './admin/mount.js';
import { analyticsStore, openClickHouse } from './analytics.js';
import { buildCollector } from './collector.js';
import type { Config } from './config.js';
import { createKeyCache } from './key-cache.js';
import { createLogger, type LogFormat } from './log-format.js';
import { createMetrics, type Metrics } from './metrics.js';
import { loadCatalog } from './catalog-module.js';
import { collectorAcceptOptions } from './ingest/accept.js';
import { createExportRegistry } from './query/export.js';
import { createLiveHub, type LiveHub, type LiveOptions } from './query/live.js';
import { queryRoutes } from './query/routes.js';
import { natsDeadLetterPath } from './spool-files.js';
import { createQuarantine, createReplayer, type Replayer } from './quarantine.js';
import { installProcessGuard } from './process-guard.js';
import { createRateLimiter } from './rate-limit.js';
import { startScheduler } from './lifecycle/scheduler.js';
import { startSnapshots } from './lifecycle/snapshots.js';
import { type ArchiveTarget, targetFromUrl } from './lifecycle/targets/index.js';
import { createStoreHandler } from './store-handler.js';
import { createMemoryTransport } from './transport-memory.js';

export interface Server {
  /** `http://host:port` actually bound. */
  readonly url: string;
  readonly app: FastifyInstance;
  /** The relational store (control plane; with it the analytics rows unless ClickHouse holds them). */
  readonly store: Store;
  /** Set with CLICKHOUSE_URL: where events and request logs are stored and queried. */
  readonly clickhouse?: ClickHouseStore;
  readonly writer: Writer;
  readonly transport: Transport;
  readonly metrics: Metrics;
  readonly archiveTarget: ArchiveTarget;
  /** The write key created at first start (shown once), if this start created one. */
  readonly firstKey?: string;
  /**
   * Re-checks quarantined events against this server's catalog and tenant settings and publishes what
   * now passes through its transport, like fresh events (`tally rejected replay`).
   */
  readonly replayRejected: Replayer;
  /** The live streams (`GET /v1/live`) and their counts. */
  readonly live: LiveHub;
  /** Stops accepting, drains transport and writer, closes the store. Idempotent. */
  close(): Promise<void>;
}

/**
 * Inserts into ClickHouse are bounded by rows (--clickhouse-batch-rows), not by the 4 MiB the writer's
 * Postgres batches keep to: each insert pays a fixed cost (the read of the ids already stored, the check
 * for built days), and 4 MiB cut 20 000 events of ~440 bytes to ~9 500 (docs/benchmarks.md has the
 * figures). The writer's queue holds at least four batches.
 */
const CLICKHOUSE_BATCH_BYTES = 32 * 1024 * 1024;

/**
 * The NATS consumer's window when it feeds ClickHouse: messages for three batches, one inserting, one
 * being encoded and one filling (with less, the third goes out part-full at the flush interval), and
 * below the writer's queue, which refuses what passes it.
 */
const clickhouseWindow = (batchRows: number) => ({
  maxInFlight: 64,
  maxInFlightBytes: 48 * 1024 * 1024,
  maxInFlightEvents: 3 * batchRows,
});

export interface ServeOptions {
  /** Human-readable progress (start banner, first key). */
  out?: Writable;
  /** Logs (pino, stdout). Default level: warn. */
  logLevel?: string;
  /** `json` (default) or `pretty` (one readable line per record). */
  logFormat?: LogFormat;
  /** Where log lines go instead of stdout (tests). */
  logDestination?: { write(line: string): unknown };
  /** Writer tuning (tests, benchmarks). */
  writer?: { maxBatchRows?: number; flushIntervalMs?: number; concurrency?: number; maxQueueRows?: number };
  /** NATS consumer and back-pressure tuning (tests). */
  nats?: { ackWaitMs?: number; maxDeliveries?: number; durable?: string; maxLagMs?: number; lagWaitMs?: number };
  /**
   * Install the process-level handlers for unhandled rejections and uncaught exceptions (see
   * process-guard.ts). For the `tally serve` process only; off for a server embedded in another process.
   */
  guardProcess?: boolean;
  /** Live stream tuning (tests): queue bounds, heartbeat. */
  live?: Omit<LiveOptions, 'maxClients'>;
  /** Rows per page of `GET /v1/export` (tests). */
  exportPageRows?: number;
}

export async function startServer(config: Config, options: ServeOptions = {}): Promise<Server> {
  const say = (line: string) => options.out?.write(`${line}\n`);
  const log: Logger = createLogger({
    level: options.logLevel ?? 'warn',
    format: options.logFormat ?? 'json',
    destination: options.logDestination,
  });
  const catalog = await loadCatalog(config.catalogModule);
  // Before the store opens: from here on the CLI goes through this server (or waits for it to listen).
  const announced = await announceServer(config);
  // The catalog's enum and boolean properties are rolled up per hour (breakdowns and filters on them
  // are answered without the detail rows); the CLI opens the store with the same ones.
  const store = await createStore({
    ...config.store,
    dimensions: catalogDimensions(catalog),
    activityRollup: config.activityRollup,
  }).catch(async (e: unknown) => {
    await announced.remove();
    throw e;
  });
  const cleanup: (() => Promise<unknown>)[] = [announced.remove, () => store.close()];
  const unwind = async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  };
  try {
    const { applied } = await store.migrate();
    if (applied.length > 0) say(`schema: applied ${applied.join(', ')}`);

    let firstKey: string | undefined;
    if ((await countApiKeys(store.sql)) === 0) {
      firstKey = (await createApiKey(store.sql, 'default', { name: 'created at first start' })).key;
    }

    const metrics = createMetrics();
    let clickhouse: ClickHouseStore | undefined;
    if (config.clickhouse) {
      clickhouse = await openClickHouse(config.clickhouse, store, metrics.clickhouseInsert, {
        dimensions: catalogDimensions(catalog),
      });
      cleanup.push(() => (clickhouse as ClickHouseStore).close());
    }
    // What the writer stores into and the query API reads: ClickHouse's side when it is configured.
    const analytics = clickhouse ? analyticsStore(store, clickhouse) : store;
    const writer = createWriter({
      store: analytics,
      spoolDir: config.spoolDir,
      ...(config.clickhouse
        ? {
            maxBatchRows: config.clickhouse.batchRows,
            maxBatchBytes: CLICKHOUSE_BATCH_BYTES,
            maxQueueRows: Math.max(100_000, 4 * config.clickhouse.batchRows),
            flushIntervalMs: config.clickhouse.flushMs,
          }
        : {}),
      ...options.writer,
      // Dead letters and transient database failures: what an operator must be able to find afterwards.
      onError: (e) => log.warn({ code: e.code, sqlstate: e.sqlstate, rows: e.rows }, e.message),
    });
    cleanup.push(() => writer.close());
    const recovered = await writer.recoverPending();
    if (recovered.stored + recovered.duplicates > 0) {
      say(`recovered ${recovered.stored} rows from the pending spool (${recovered.duplicates} already stored)`);
    }

    let transport: Transport;
    if (config.nats) {
      const deadLetters = natsDeadLetterPath(config.spoolDir);
      transport = await createNatsTransport({
        servers: config.nats.servers,
        prefix: config.nats.prefix,
        stream: config.nats.stream,
        ...(config.clickhouse ? clickhouseWindow(config.clickhouse.batchRows) : {}),
        ...options.nats,
        onError: (e, what) => log.warn({ err: e }, what),
        async onDeadLetter(m) {
          await mkdir(config.spoolDir, { recursive: true });
          const line = {
            subject: m.subject,
            deliveries: m.deliveries,
            reason: m.reason,
            at: new Date().toISOString(),
            // JSON as text; what is not UTF-8 (a protobuf body) as base64, so nothing of it is lost.
            ...textOrBase64(m.data),
          };
          await appendFile(deadLetters, `${JSON.stringify(line)}\n`);
          log.error(
            { subject: m.subject, deliveries: m.deliveries, file: deadLetters },
            `NATS message dead-lettered: ${m.reason}`,
          );
        },
      });
    } else {
      transport = createMemoryTransport();
    }
    cleanup.push(() => transport.close());
    const live = createLiveHub({ maxClients: config.query.liveMaxClients, ...options.live });
    await transport.consume(createStoreHandler(writer, metrics, (batch, r) => live.stored(batch, r)));

    let dbUp = true;
    const probe = setInterval(() => {
      store.sql.query('SELECT 1').then(
        () => {
          if (!dbUp) log.info('database reachable again');
          dbUp = true;
        },
        (e: Error) => {
          if (dbUp) log.error({ err: e }, 'database unreachable');
          dbUp = false;
        },
      );
    }, 5000);
    probe.unref();
    cleanup.push(async () => clearInterval(probe));
    let clickhouseUp = true;
    if (clickhouse) {
      const client = clickhouse.client;
      const chProbe = setInterval(() => {
        client.query('SELECT 1').then(
          () => {
            if (!clickhouseUp) log.info('ClickHouse reachable again');
            clickhouseUp = true;
          },
          (e: Error) => {
            if (clickhouseUp) log.error({ err: e }, 'ClickHouse unreachable');
            clickhouseUp = false;
          },
        );
      }, 5000);
      chProbe.unref();
      cleanup.push(async () => clearInterval(chProbe));
    }
    metrics.watch({
      writer,
      transport,
      dbUp: () => dbUp,
      natsUp: config.nats ? () => transport.healthy() : undefined,
      clickhouseUp: clickhouse ? () => clickhouseUp : undefined,
    });

    const archiveTarget = await targetFromUrl(config.lifecycle.target, {
      dataDir: config.dataDir,
      ...config.lifecycle.s3,
    });
    cleanup.push(async () => (archiveTarget as { close?: () => void }).close?.());
    // The lifecycle and the admin side find the detail rows where `analytics` says (Store.detail).
    const snapshots = await startSnapshots(analytics, writer, {
      everyBatches: config.lifecycle.snapshotEvery,
      keep: config.lifecycle.keepSnapshots,
      onError: (e) => log.warn({ err: e }, 'hot-path snapshot failed'),
    });
    cleanup.push(() => snapshots.stop());
    if (config.lifecycle.jobs) {
      const scheduler = startScheduler(
        {
          store: analytics,
          target: archiveTarget,
          archiveAfterDays: config.lifecycle.archiveAfterDays,
          keepSnapshots: config.lifecycle.keepSnapshots,
          quarantineDays: config.quarantine.days,
          onProgress: (line) => log.info(line),
        },
        config.lifecycle.schedules,
        (name, outcome) => {
          metrics.jobRun(name, outcome.outcome);
          if (outcome.outcome === 'failed') log.error({ job: name }, `job ${name} failed: ${outcome.error}`);
          else
            log.info({ job: name, ...('counts' in outcome ? outcome.counts : {}) }, `job ${name}: ${outcome.outcome}`);
        },
      );
      cleanup.push(() => scheduler.stop());
    }

    const replayRejected = createReplayer({
      store,
      catalog,
      config,
      publish: (events) => transport.publish(events),
      metrics,
    });
    const keys = createKeyCache(store);
    const app = await buildCollector({
      transport,
      keys,
      limiter: createRateLimiter({ burstSeconds: burstSeconds(config) }),
      metrics,
      ...collectorAcceptOptions(catalog),
      maxBodyBytes: config.maxBodyBytes,
      rateLimit: config.rateLimit.perSecond,
      acceptUnlisted: config.unlisted === 'accept',
      unplanned: config.unplanned,
      quarantine: createQuarantine(store, { maxRowsPerTenant: config.quarantine.maxRowsPerTenant }, metrics),
      ready: () => dbUp && clickhouseUp && transport.healthy(),
      snapshot: () => snapshots.latest(),
      logger: log,
      http: config.http,
    });
    cleanup.push(() => app.close());
    const exports = createExportRegistry();
    metrics.watchReads({ live: () => live.stats(), exports: () => exports.active });
    await app.register(queryRoutes, {
      store: analytics,
      keys,
      live,
      exports,
      timeoutMs: config.query.timeoutMs,
      maxRows: config.query.maxRows,
      listedEvents: Object.keys(catalog.events),
      exportPageRows: options.exportPageRows,
    });
    await mountAdmin(app, {
      config,
      store: analytics,
      writer,
      archiveTarget,
      keys,
      replayRejected,
      listedEvents: Object.keys(catalog.events),
      transport,
      metrics,
      live,
    });
    // The dashboard is static files that ask the query API above, with the key its user signs in with.
    if (config.dashboard) await app.register(dashboardRoutes, { warn: (message) => log.warn(message) });
    await app.listen({ host: config.host, port: config.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    await announced.listening(port);
    const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

    let closing: Promise<void> | undefined;
    const close = () => (closing ??= unwind());
    if (options.guardProcess) {
      const guard = installProcessGuard({ log, count: (kind) => metrics.internalError(kind), drain: close });
      // Last of all: a fault while draining is still caught.
      cleanup.unshift(async () => guard.uninstall());
    }
    return {
      url,
      app,
      store,
      ...(clickhouse ? { clickhouse } : {}),
      writer,
      transport,
      metrics,
      archiveTarget,
      firstKey,
      replayRejected,
      live,
      close,
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}

function burstSeconds(config: Config): number {
  const { perSecond, burst } = config.rateLimit;
  return perSecond > 0 ? burst / perSecond : 5;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** A dead-lettered message's body for its JSON line: `data` when it is text, else `dataBase64`. */
function textOrBase64(data: Uint8Array): { data: string } | { dataBase64: string } {
  try {
    return { data: strictUtf8.decode(data) };
  } catch {
    return { dataBase64: Buffer.from(data).toString('base64') };
  }
}
