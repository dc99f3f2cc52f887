/**
 * Prometheus metrics (`GET /metrics`). One registry per server, so tests can run several side by side.
 * Counters the writer and transport already keep are read from their stats at scrape time.
 */
import type { TallyEvent, Transport } from '@tally/core';
import type { Writer } from '@tally/store';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  readonly registry: Registry;
  accepted(n: number): void;
  rejected(code: string, n?: number): void;
  /** A whole request refused (401, 413, 429, 503…). */
  refused(code: string): void;
  batchWritten(
    events: readonly TallyEvent[],
    r: { stored: number; duplicates: number; rejected: readonly { code: string }[] },
    seconds: number,
  ): void;
  /** A refused event kept in the quarantine. */
  quarantined(code: string): void;
  /** Quarantined events dropped because their tenant reached the cap. */
  quarantineDropped(n: number): void;
  /** One step of `tally rejected replay`. */
  replayed(r: { stored: number; duplicates: number; stillFailing: number }): void;
  /** A lifecycle job finished (ok, failed or skipped because another process ran it). */
  jobRun(job: string, outcome: string): void;
  /**
   * A bug caught at the last line of defence: `request` (a collector 500), `unhandledRejection`,
   * `uncaughtException`. Any increase deserves an alert and a look at the log, which has the stack.
   */
  internalError(kind: string): void;
  /** A connection closed on accept because the server already had --max-connections open. */
  connectionDropped(): void;
  /** Wires in the read side: live streams (open, dropped frames) and exports in progress. */
  watchReads(parts: {
    live: () => { clients: number; dropped: number; unresolved: number };
    exports: () => number;
  }): void;
  /** One insert into ClickHouse: its outcome, rows and time. */
  clickhouseInsert(outcome: 'ok' | 'error', rows: number, seconds: number): void;
  /** Wires in the parts whose own stats are exported, and the health probes. */
  watch(parts: {
    writer: Writer;
    transport: Transport;
    dbUp: () => boolean;
    natsUp?: () => boolean;
    clickhouseUp?: () => boolean;
  }): void;
}

export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tally_process_' });
  const registers = [registry];
  // Monotonic totals kept elsewhere (the writer, the transport, the live hub): a counter advanced by the
  // difference at each scrape.
  const mirror = (name: string, help: string, read: () => number) => {
    let seen = 0;
    new Counter({
      name,
      help,
      registers,
      collect() {
        const v = read();
        if (v > seen) this.inc(v - seen);
        seen = v;
      },
    });
  };

  const accepted = new Counter({
    name: 'tally_events_accepted_total',
    help: 'Events accepted by the collector (durable when answered)',
    registers,
  });
  const rejected = new Counter({
    name: 'tally_events_rejected_total',
    help: 'Events refused, by error code',
    labelNames: ['code'],
    registers,
  });
  const refused = new Counter({
    name: 'tally_requests_refused_total',
    help: 'Whole requests refused, by error code',
    labelNames: ['code'],
    registers,
  });
  const stored = new Counter({
    name: 'tally_events_stored_total',
    help: 'Rows inserted (events and request logs)',
    registers,
  });
  const duplicates = new Counter({
    name: 'tally_events_duplicate_total',
    help: 'Rows whose id was already stored (retries, redeliveries)',
    registers,
  });
  const batchSize = new Histogram({
    name: 'tally_batch_events',
    help: 'Events per stored batch',
    buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000],
    registers,
  });
  const writeSeconds = new Histogram({
    name: 'tally_write_duration_seconds',
    help: 'From a batch reaching the writer to its commit',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  // Newest stored timestamp, kept as the ISO string: the stored format compares in time order, so no
  // Date.parse per event (it was 1.7 % of the collector's CPU under load).
  let newest = '';
  new Gauge({
    name: 'tally_ingestion_lag_seconds',
    help: 'Now minus the timestamp of the newest stored event (0 before the first)',
    registers,
    collect() {
      this.set(newest === '' ? 0 : Math.max(0, (Date.now() - Date.parse(newest)) / 1000));
    },
  });

  const jobRuns = new Counter({
    name: 'tally_job_runs_total',
    help: 'Lifecycle job runs by outcome',
    labelNames: ['job', 'outcome'],
    registers,
  });
  const jobSuccess = new Gauge({
    name: 'tally_job_last_success_timestamp_seconds',
    help: 'When each lifecycle job last succeeded',
    labelNames: ['job'],
    registers,
  });

  const quarantined = new Counter({
    name: 'tally_events_quarantined_total',
    help: 'Refused events kept in the quarantine (replayable), by error code',
    labelNames: ['code'],
    registers,
  });
  const quarantineDropped = new Counter({
    name: 'tally_quarantine_dropped_total',
    help: "Quarantined events dropped, oldest first, beyond their tenant's cap",
    registers,
  });
  const replayed = new Counter({
    name: 'tally_quarantine_replayed_total',
    help: 'Quarantined events re-checked by a replay, by outcome (stored, duplicate, still_failing)',
    labelNames: ['outcome'],
    registers,
  });

  const internalErrors = new Counter({
    name: 'tally_internal_errors_total',
    help: 'Bugs caught instead of crashing or answered 500, by kind (request, unhandledRejection, uncaughtException)',
    labelNames: ['kind'],
    registers,
  });
  const dropped = new Counter({
    name: 'tally_connections_dropped_total',
    help: 'Connections closed on accept because --max-connections were open',
    registers,
  });

  const clickhouseInserts = new Counter({
    name: 'tally_clickhouse_inserts_total',
    help: 'Inserts into ClickHouse, by outcome (ok, error: retried by the writer)',
    labelNames: ['outcome'],
    registers,
  });
  const clickhouseRows = new Counter({
    name: 'tally_clickhouse_insert_rows_total',
    help: 'Rows sent in inserts into ClickHouse that succeeded',
    registers,
  });
  const clickhouseSeconds = new Histogram({
    name: 'tally_clickhouse_insert_duration_seconds',
    help: 'Time of one insert statement into ClickHouse',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });

  return {
    registry,
    clickhouseInsert(outcome, rows, seconds) {
      clickhouseInserts.inc({ outcome });
      if (outcome === 'ok') clickhouseRows.inc(rows);
      clickhouseSeconds.observe(seconds);
    },
    internalError: (kind) => internalErrors.inc({ kind }),
    connectionDropped: () => dropped.inc(),
    quarantined: (code) => quarantined.inc({ code }),
    quarantineDropped: (n) => quarantineDropped.inc(n),
    replayed(r) {
      replayed.inc({ outcome: 'stored' }, r.stored);
      replayed.inc({ outcome: 'duplicate' }, r.duplicates);
      replayed.inc({ outcome: 'still_failing' }, r.stillFailing);
    },
    jobRun(job, outcome) {
      jobRuns.inc({ job, outcome });
      if (outcome === 'ok') jobSuccess.set({ job }, Date.now() / 1000);
    },
    accepted: (n) => accepted.inc(n),
    rejected: (code, n = 1) => rejected.inc({ code }, n),
    refused: (code) => refused.inc({ code }),
    batchWritten(events, r, seconds) {
      stored.inc(r.stored);
      duplicates.inc(r.duplicates);
      for (const x of r.rejected) rejected.inc({ code: x.code });
      batchSize.observe(events.length);
      writeSeconds.observe(seconds);
      for (const e of events) if (e.timestamp > newest) newest = e.timestamp;
    },
    watchReads({ live, exports }) {
      new Gauge({
        name: 'tally_live_clients',
        help: 'Open live streams (GET /v1/live)',
        registers,
        collect() {
          this.set(live().clients);
        },
      });
      new Gauge({
        name: 'tally_exports_active',
        help: 'Exports (GET /v1/export) being streamed',
        registers,
        collect() {
          this.set(exports());
        },
      });
      mirror('tally_live_dropped_total', 'Live frames dropped for clients that did not keep up', () => live().dropped);
      mirror(
        'tally_live_unresolved_total',
        'Stored rows not streamed live: the write did not say which of its rows were stored (spooled at shutdown)',
        () => live().unresolved,
      );
    },
    watch({ writer, transport, dbUp, natsUp, clickhouseUp }) {
      mirror(
        'tally_writer_retries_total',
        'Insert statements retried after a transient error',
        () => writer.stats().retries,
      );
      mirror(
        'tally_events_spooled_total',
        'Rows written to the pending spool at shutdown',
        () => writer.stats().spooled,
      );
      mirror(
        'tally_events_dead_lettered_total',
        'Rows sent to the dead-letter spool',
        () => writer.stats().deadLettered,
      );
      mirror(
        'tally_transport_redelivered_total',
        'Batches delivered again (handler failure, crash, timeout)',
        () => transport.stats().redelivered,
      );
      mirror(
        'tally_transport_dead_lettered_total',
        'Transport messages given up on (poison)',
        () => transport.stats().deadLettered,
      );
      const gauge = (name: string, help: string, read: () => number) =>
        new Gauge({
          name,
          help,
          registers,
          collect() {
            this.set(read());
          },
        });
      gauge('tally_writer_queue_rows', 'Rows waiting in the writer', () => writer.stats().queued);
      gauge(
        'tally_transport_in_flight',
        'Batches handed to the writer, not yet acknowledged',
        () => transport.stats().inFlight,
      );
      gauge('tally_db_up', '1 when the database answered the last probe', () => (dbUp() ? 1 : 0));
      if (natsUp) gauge('tally_nats_up', '1 when connected to NATS and the stream exists', () => (natsUp() ? 1 : 0));
      if (clickhouseUp) {
        gauge('tally_clickhouse_up', '1 when ClickHouse answered the last probe', () => (clickhouseUp() ? 1 : 0));
      }
    },
  };
}
