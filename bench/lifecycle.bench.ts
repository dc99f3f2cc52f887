/**
 * Lifecycle benchmark (issue 7): Tally's archive and cleanup jobs against a naive peer doing the same
 * job on the same rows, in the same run.
 *
 *   Rows      1M events over 10 UTC days, 5 tenants (skewed), the ingest benchmark's catalog events with
 *             realistic properties and context, plus 100k request logs (redacted headers, small bodies);
 *             COPYed into a fresh migrated schema, rollups (event_counts_hourly, path_stats_hourly) built
 *             from them in SQL as the store's insert would have, then copied whole into a second,
 *             identical schema. Both are vacuumed and analyzed before anything is timed.
 *   Archive   Tally: `runArchive` with a local directory target, olderThanDays 3 with `now` at noon of
 *             the day after the last row: 7 of the 10 days (70% of rows), one gzip JSONL file per table,
 *             tenant and day, with its manifest row.
 *             Peer:  per table, `COPY (SELECT row_to_json(t) FROM t WHERE ts < cutoff) TO STDOUT` piped
 *             (coalesced into 256 KB writes) through Node's gzip (level 6, as Tally) into one file, fsynced
 *             (Tally's target fsyncs too).
 *   Cleanup   Tally: `runCleanup` (verifies each file, then DELETE … WHERE id = ANY($1) in batches of 5000).
 *             Peer:  one `DELETE FROM t WHERE ts < cutoff` per table, on the second schema.
 *
 * Order: peer archive, Tally archive, Tally cleanup, peer delete (ABBA), a CHECKPOINT before each.
 * Checked (a failed check fails the bench): Tally archived exactly the rows older than the cutoff, and
 * the peer copied as many; rows left + archived rows = rows loaded; both schemas keep the same rows;
 * every part is cleaned, none refused; the rollup tables are unchanged (an md5 over every row).
 * "node cpu" is this process (Tally's jobs run in it); "other cpu" is the rest of the machine (Postgres).
 *
 * Prints a table, then as its last line `{"bench":"lifecycle",…,"ratio":<archive_ratio>}`.
 * BENCH_QUICK=1: 45k events + 5k request logs, a smoke run of seconds (figures not meaningful).
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createStore, LATENCY_BUCKETS_MS, type Store } from '@tally/store';
import type postgres from 'postgres';
import { cutoff, runArchive } from '../packages/server/src/lifecycle/archive.js';
import { runCleanup } from '../packages/server/src/lifecycle/cleanup.js';
import { createLocalTarget } from '../packages/server/src/lifecycle/targets/local.js';
import { fmt, round } from './support/figures.js';
import { check, cpuTimed, printTable, runBench } from './support/harness.js';
import { EVENT_COLUMNS } from './support/ingest-rows.js';
import { eventChunks, REQUEST_LOG_COLUMNS, requestLogChunks } from './support/lifecycle-rows.js';
import { benchPostgres, migrateSchema, PG_URL, pgClient } from './support/pg.js';

const QUICK = process.env.BENCH_QUICK === '1';
const EVENTS = QUICK ? 45_000 : 1_000_000;
const LOGS = QUICK ? 5_000 : 100_000;
const DAY = 86_400_000;
const SPAN_DAYS = 10;
const OLDER_THAN_DAYS = 3;
/** Rows end at the last UTC midnight; the jobs run at noon of that day, so days 1–7 of 10 are old enough. */
const END_MS = Math.floor(Date.now() / DAY) * DAY;
const NOW_MS = END_MS + DAY / 2;
const CUTOFF = cutoff(NOW_MS, OLDER_THAN_DAYS);
const TABLES = ['events', 'request_logs'] as const;
type Table = (typeof TABLES)[number];

// ---------------------------------------------------------------- Postgres and cleanup

const { admin, ensureReachable, newSchema, tempDir, settlePostgres, cleanup } = benchPostgres({ name: 'lifecycle' });

// ---------------------------------------------------------------- measuring

interface Measured {
  rows: number;
  seconds: number;
  rps: number;
  nodeCpu: number;
  otherCpu: number;
}

/** Times `fn`, which returns how many rows it handled. */
async function timed(fn: () => Promise<number>): Promise<Measured> {
  const { result: rows, seconds, nodeCpu, otherCpu } = await cpuTimed(fn);
  return { rows, seconds, rps: rows / seconds, nodeCpu, otherCpu };
}

async function count(sql: postgres.Sql, query: string, params: string[] = []): Promise<number> {
  const [row] = await sql.unsafe<{ n: string }[]>(query, params);
  return Number(row?.n);
}

/** An md5 over every rollup row, so "unchanged" means unchanged, not only the same totals. */
async function rollupDigest(sql: postgres.Sql): Promise<string> {
  const [row] = await sql.unsafe<{ e: string; p: string; total: string }[]>(
    `SELECT md5(coalesce(string_agg(concat_ws('|', tenant_id, name, hour, count, weighted), ',' ORDER BY tenant_id, name, hour), '')) AS e,
            (SELECT md5(coalesce(string_agg(concat_ws('|', tenant_id, method, route, hour, count, status_2xx, status_3xx,
                    status_4xx, status_5xx, duration_sum, duration_min, duration_max, latency_buckets),
                    ',' ORDER BY tenant_id, method, route, hour), '')) FROM path_stats_hourly) AS p,
            (SELECT sum(count) FROM event_counts_hourly) + (SELECT coalesce(sum(count), 0) FROM path_stats_hourly) AS total
     FROM event_counts_hourly`,
  );
  return `${row?.e}/${row?.p}/${row?.total}`;
}

// ---------------------------------------------------------------- loading

interface Loaded {
  events: number;
  logs: number;
  oldEvents: number;
  oldLogs: number;
  rollups: string;
  seconds: number;
}

/** The rollups the store's inserts would have kept for these rows (same expressions as its SQL). */
async function buildRollups(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(
    `INSERT INTO event_counts_hourly (tenant_id, name, hour, count, weighted)
     SELECT tenant_id, name, date_trunc('hour', ts, 'UTC'), count(*),
            sum(1.0 / coalesce((context->>'sampleRate')::float8, 1.0))
     FROM events GROUP BY 1, 2, 3`,
  );
  const buckets = LATENCY_BUCKETS_MS.length + 1;
  const bucketArray = `ARRAY[${Array.from({ length: buckets }, (_, i) => `count(*) FILTER (WHERE bucket = ${i + 1})`).join(', ')}]::bigint[]`;
  await sql.unsafe(
    `INSERT INTO path_stats_hourly (tenant_id, method, route, hour, count, status_2xx, status_3xx, status_4xx,
       status_5xx, duration_sum, duration_min, duration_max, latency_buckets)
     SELECT tenant_id, method, coalesce(route, '(unmatched)'), date_trunc('hour', ts, 'UTC'), count(*),
       count(*) FILTER (WHERE status BETWEEN 200 AND 299), count(*) FILTER (WHERE status BETWEEN 300 AND 399),
       count(*) FILTER (WHERE status BETWEEN 400 AND 499), count(*) FILTER (WHERE status >= 500),
       sum(duration_ms), min(duration_ms), max(duration_ms), ${bucketArray}
     FROM (SELECT l.*, 1 + (SELECT count(*) FROM unnest('{${LATENCY_BUCKETS_MS.join(',')}}'::float8[]) AS b(bound) WHERE l.duration_ms > b.bound) AS bucket
           FROM request_logs l) x
     GROUP BY 1, 2, 3, 4`,
  );
}

/** COPYs the rows into `schema` (migrated), builds the rollups, and clones it all into `clone`. */
async function load(schema: string, clone: string): Promise<Loaded> {
  await migrateSchema(schema);
  await migrateSchema(clone);
  const sql = pgClient(schema);
  try {
    const t0 = performance.now();
    const events = await sql.unsafe(`COPY events (${EVENT_COLUMNS.join(', ')}) FROM STDIN`).writable();
    await pipeline(Readable.from(eventChunks(EVENTS, END_MS, SPAN_DAYS * DAY)), events);
    const logs = await sql.unsafe(`COPY request_logs (${REQUEST_LOG_COLUMNS.join(', ')}) FROM STDIN`).writable();
    await pipeline(Readable.from(requestLogChunks(LOGS, END_MS, SPAN_DAYS * DAY)), logs);
    await buildRollups(sql);
    const copied = (performance.now() - t0) / 1000;
    console.error(`  COPY + rollups: ${fmt(EVENTS + LOGS, 0)} rows in ${fmt(copied, 1)} s`);
    for (const t of [...TABLES, 'event_counts_hourly', 'path_stats_hourly']) {
      await sql.unsafe(`INSERT INTO "${clone}".${t} SELECT * FROM ${t} ORDER BY 1`);
    }
    for (const s of [schema, clone]) {
      for (const t of TABLES) await sql.unsafe(`VACUUM (ANALYZE) "${s}".${t}`);
    }
    const loaded: Loaded = {
      events: await count(sql, 'SELECT count(*) AS n FROM events'),
      logs: await count(sql, 'SELECT count(*) AS n FROM request_logs'),
      oldEvents: await count(sql, 'SELECT count(*) AS n FROM events WHERE ts < $1::timestamptz', [CUTOFF]),
      oldLogs: await count(sql, 'SELECT count(*) AS n FROM request_logs WHERE ts < $1::timestamptz', [CUTOFF]),
      rollups: await rollupDigest(sql),
      seconds: (performance.now() - t0) / 1000,
    };
    check(loaded.events === EVENTS, `loaded ${loaded.events} events, expected ${EVENTS}`);
    check(loaded.logs === LOGS, `loaded ${loaded.logs} request logs, expected ${LOGS}`);
    return loaded;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

// ---------------------------------------------------------------- the peer

/**
 * Counts bytes and newlines going through, and hands them on in chunks of at least 256 KB: postgres.js
 * delivers a COPY TO as one chunk per row, and zlib fed ~500-byte writes spends more on the calls than on
 * compressing. Coalescing keeps the peer an honest floor rather than a strawman.
 */
class Counter extends Transform {
  bytes = 0;
  lines = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  constructor(private readonly coalesce = 0) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (error?: Error | null, data?: Buffer) => void) {
    this.bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) this.lines++;
    if (this.coalesce === 0) return done(null, chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= this.coalesce) this.flushPending();
    done();
  }
  override _flush(done: (error?: Error | null) => void) {
    this.flushPending();
    done();
  }
  private flushPending(): void {
    if (this.pendingBytes === 0) return;
    this.push(Buffer.concat(this.pending, this.pendingBytes));
    this.pending = [];
    this.pendingBytes = 0;
  }
}

interface PeerArchive {
  rows: number;
  bytes: number;
  rawBytes: number;
}

/**
 * COPY (SELECT row_to_json(t) … WHERE ts < cutoff) TO STDOUT | gzip > file, one file per table, fsynced.
 * Each COPY gets its own connection (`clients`, connected beforehand), closed afterwards: postgres.js can
 * leave a connection paused after a COPY TO that met backpressure (porsager/postgres#499, PR #1016), and
 * the next query on it never completes.
 */
async function peerArchive(clients: Record<Table, postgres.Sql>, dir: string, out: PeerArchive): Promise<number> {
  for (const t of TABLES) {
    const raw = new Counter(256 * 1024);
    const packed = new Counter();
    const copy = await clients[t]
      .unsafe(`COPY (SELECT row_to_json(x) FROM ${t} x WHERE ts < '${CUTOFF}'::timestamptz) TO STDOUT`)
      .readable();
    await pipeline(
      copy,
      raw,
      createGzip({ level: 6 }),
      packed,
      createWriteStream(join(dir, `${t}.jsonl.gz`), { flush: true }),
    );
    out.rows += raw.lines;
    out.rawBytes += raw.bytes;
    out.bytes += packed.bytes;
  }
  return out.rows;
}

/** One DELETE … WHERE ts < cutoff per table. */
async function peerDelete(sql: postgres.Sql): Promise<number> {
  let deleted = 0;
  for (const t of TABLES) {
    const result = await sql.unsafe(`DELETE FROM ${t} WHERE ts < $1::timestamptz`, [CUTOFF]);
    deleted += result.count;
  }
  return deleted;
}

// ---------------------------------------------------------------- run

interface Results {
  loaded?: Loaded;
  copyOut?: Measured;
  archive?: Measured;
  cleanup?: Measured;
  del?: Measured;
  peer: PeerArchive;
  files: number;
  bytes: number;
  rawBytes: number;
}

const results: Results = { peer: { rows: 0, bytes: 0, rawBytes: 0 }, files: 0, bytes: 0, rawBytes: 0 };
const failures: string[] = [];

async function main(): Promise<void> {
  await ensureReachable();
  console.error(
    `lifecycle bench: ${fmt(EVENTS, 0)} events + ${fmt(LOGS, 0)} request logs over ${SPAN_DAYS} days` +
      `${QUICK ? ' (quick)' : ''}; archive before ${CUTOFF}`,
  );
  const tally = newSchema();
  const peer = newSchema();
  console.error('loading');
  const loaded = await load(tally, peer);
  results.loaded = loaded;
  const old = loaded.oldEvents + loaded.oldLogs;
  console.error(`  loaded in ${fmt(loaded.seconds, 1)} s; ${fmt(old, 0)} rows older than the cutoff`);

  const store: Store = await createStore({ kind: 'postgres', url: PG_URL, schema: tally });
  const peerSql = pgClient(peer);
  const sqlA = pgClient(tally);
  const archiveDir = tempDir();
  const peerDir = tempDir();
  const target = createLocalTarget(archiveDir);
  try {
    await store.sql.query('SELECT 1');
    await peerSql`SELECT 1`;

    const copyClients = { events: pgClient(peer), request_logs: pgClient(peer) };
    try {
      for (const c of Object.values(copyClients)) await c`SELECT 1`;
      await settlePostgres();
      results.copyOut = await timed(() => peerArchive(copyClients, peerDir, results.peer));
    } finally {
      for (const c of Object.values(copyClients)) await c.end({ timeout: 1 }).catch(() => undefined);
    }
    console.error(`  peer COPY out | gzip: ${fmt(results.copyOut.rps, 0)} rows/s`);

    await settlePostgres();
    results.archive = await timed(async () => {
      const r = await runArchive(store, target, { olderThanDays: OLDER_THAN_DAYS, now: NOW_MS });
      results.files = r.files;
      return r.rows;
    });
    console.error(`  Tally archive: ${fmt(results.archive.rps, 0)} rows/s (${results.files} files)`);
    const [m] = await sqlA<{ rows: string; bytes: string; raw: string; files: string }[]>`
      SELECT sum(rows) AS rows, sum(bytes) AS bytes, sum(raw_bytes) AS raw, count(*) AS files FROM archive_metadata`;
    results.bytes = Number(m?.bytes);
    results.rawBytes = Number(m?.raw);
    check(Number(m?.rows) === old, `Tally archived ${m?.rows} rows, expected the ${old} older than ${CUTOFF}`);
    check(results.peer.rows === old, `the peer copied ${results.peer.rows} rows, expected ${old}`);

    await settlePostgres();
    let refused = 0;
    results.cleanup = await timed(async () => {
      const r = await runCleanup(store, target);
      refused = r.refused.length;
      return r.deleted;
    });
    console.error(`  Tally cleanup: ${fmt(results.cleanup.rps, 0)} rows/s`);
    check(refused === 0, `cleanup refused ${refused} parts`);

    await settlePostgres();
    results.del = await timed(() => peerDelete(peerSql));
    console.error(`  peer DELETE: ${fmt(results.del.rps, 0)} rows/s`);

    // Correctness.
    check(results.cleanup.rows === old, `Tally cleanup deleted ${results.cleanup.rows} rows, expected ${old}`);
    check(results.del.rows === old, `the peer deleted ${results.del.rows} rows, expected ${old}`);
    const archivedEvents = await count(sqlA, `SELECT sum(rows) AS n FROM archive_metadata WHERE table_name = 'events'`);
    const archivedLogs = await count(
      sqlA,
      `SELECT coalesce(sum(rows), 0) AS n FROM archive_metadata WHERE table_name = 'request_logs'`,
    );
    const leftEvents = await count(sqlA, 'SELECT count(*) AS n FROM events');
    const leftLogs = await count(sqlA, 'SELECT count(*) AS n FROM request_logs');
    check(
      leftEvents + archivedEvents === EVENTS,
      `events: ${leftEvents} left + ${archivedEvents} archived ≠ ${EVENTS} loaded`,
    );
    check(leftLogs + archivedLogs === LOGS, `request logs: ${leftLogs} left + ${archivedLogs} archived ≠ ${LOGS}`);
    const uncleaned = await count(sqlA, 'SELECT count(*) AS n FROM archive_metadata WHERE cleaned_at IS NULL');
    check(uncleaned === 0, `${uncleaned} archive parts not marked cleaned`);
    const oldLeft = await count(sqlA, 'SELECT count(*) AS n FROM events WHERE ts < $1::timestamptz', [CUTOFF]);
    check(oldLeft === 0, `${oldLeft} events older than the cutoff left after cleanup`);
    const [diff] = await admin.unsafe<{ n: string }[]>(
      `SELECT (SELECT count(*) FROM ((SELECT id FROM "${tally}".events EXCEPT SELECT id FROM "${peer}".events)
               UNION ALL (SELECT id FROM "${peer}".events EXCEPT SELECT id FROM "${tally}".events)) d) AS n`,
    );
    check(Number(diff?.n) === 0, `Tally and the peer kept different events (${diff?.n} ids differ)`);
    check((await rollupDigest(sqlA)) === loaded.rollups, 'Tally: rollups changed by archive + cleanup');
    check((await rollupDigest(peerSql)) === loaded.rollups, 'peer: rollups changed by the DELETE');
    console.error('  checks passed');
  } finally {
    await store.close().catch(() => undefined);
    await peerSql.end({ timeout: 5 }).catch(() => undefined);
    await sqlA.end({ timeout: 5 }).catch(() => undefined);
  }
}

// ---------------------------------------------------------------- report

function ratio(a: Measured | undefined, b: Measured | undefined): number | null {
  return a && b && b.rps > 0 ? a.rps / b.rps : null;
}

function report(): void {
  const r = results;
  const header = ['phase', 'rows', 'rows/s', '× peer', 'seconds', 'node cpu s', 'other cpu s'];
  const phases: [string, Measured | undefined, Measured | undefined][] = [
    ['archive: peer COPY (row_to_json) TO STDOUT | gzip', r.copyOut, undefined],
    ['archive: Tally runArchive (local dir)', r.archive, r.copyOut],
    ['cleanup: peer DELETE … WHERE ts < cutoff', r.del, undefined],
    ['cleanup: Tally runCleanup (batch 5000)', r.cleanup, r.del],
  ];
  const table = phases.map(([label, m, peer]) => [
    label,
    fmt(m?.rows, 0),
    fmt(m?.rps, 0),
    peer ? fmt(ratio(m, peer), 2) : '1.00',
    fmt(m?.seconds, 2),
    fmt(m?.nodeCpu, 1),
    fmt(m?.otherCpu, 1),
  ]);
  console.log('');
  console.log(
    `${fmt(EVENTS, 0)} events + ${fmt(LOGS, 0)} request logs over ${SPAN_DAYS} days; archived before ${CUTOFF}`,
  );
  printTable(header, table);
  const compression = r.bytes > 0 ? r.rawBytes / r.bytes : null;
  const peerCompression = r.peer.bytes > 0 ? r.peer.rawBytes / r.peer.bytes : null;
  console.log(
    `Tally: ${r.files} files, ${fmt(r.bytes / 1e6, 1)} MB gzip of ${fmt(r.rawBytes / 1e6, 1)} MB JSONL (${fmt(compression, 2)}×); ` +
      `peer: 2 files, ${fmt(r.peer.bytes / 1e6, 1)} MB of ${fmt(r.peer.rawBytes / 1e6, 1)} MB (${fmt(peerCompression, 2)}×)`,
  );
  console.log('');
  for (const f of failures) console.log(`FAILED ${f}`);

  const archiveRatio = round(ratio(r.archive, r.copyOut), 2);
  console.log(
    JSON.stringify({
      bench: 'lifecycle',
      rows: EVENTS + LOGS,
      archived_rows: r.archive?.rows ?? null,
      archive_rows_per_s: round(r.archive?.rps, 0),
      copy_out_rows_per_s: round(r.copyOut?.rps, 0),
      archive_ratio: archiveRatio,
      cleanup_rows_per_s: round(r.cleanup?.rps, 0),
      delete_rows_per_s: round(r.del?.rps, 0),
      cleanup_ratio: round(ratio(r.cleanup, r.del), 2),
      archive_files: r.files,
      archive_bytes: r.bytes,
      compression_ratio: round(compression, 2),
      peer_compression_ratio: round(peerCompression, 2),
      ok: failures.length === 0,
      ratio: archiveRatio,
    }),
  );
}

await runBench({ main, cleanup, report, failures });
