/**
 * ClickHouse benchmark (issue 18): storing into ClickHouse and answering from it, on each engine that
 * runs here, labelled: Debian's clickhouse-server 18.16 (HTTP, 127.0.0.1:8123) and the current engine
 * in-process through chDB.
 *
 * Data: the query benchmark's support-bot month (bench/support/query-data.ts): 10M events over 1M users
 * and 1M request logs, written once to two files — the envelopes as JSON lines (what a consumer receives)
 * and the same rows as ClickHouse JSONEachRow (what Tally's store sends).
 *
 * Measured, same run:
 *   insert      Tally's store path — parse each envelope, encode it, check which ids are stored,
 *               insert (batches of 20 000, two in flight: one encodes while the other inserts) — against
 *               the peer inserting the encoded rows as they are: `clickhouse-client … FORMAT JSONEachRow`
 *               on the server, chDB's raw JSONEachRow insert in-process. ratio = Tally / peer.
 *   nats        (server) `tally serve`'s consumer draining the same events from JetStream into
 *               ClickHouse: published beforehand as messages of 1000 events, then the server started
 *               and timed until every event is stored. Target ≥ 100k events/s.
 *   queries     over what Tally stored: trends by day × channel (top 10), the escalation rate (B / A),
 *               the 3-step funnel with windows (1d overall, 1h on the last step), 8-week retention, the
 *               route p95 table; p50/p95 of RUNS runs, after the rollups job has built the hourly counts
 *               of the sealed days (timed; trends is also measured before, from the detail rows alone).
 *               Targets: trends < 100 ms, funnel < 1 s. The same questions on Postgres are
 *               bench/query.bench.ts's.
 * Every count is checked: each table holds exactly the events sent, no id twice.
 *
 * Last line: `{"bench":"clickhouse",…,"ratio":<server insert ratio, else chDB's>}`.
 * BENCH_QUICK=1: 50k events and 5k request logs, 3 runs. BENCH_EVENTS / BENCH_REQUEST_LOGS / BENCH_RUNS
 * override; BENCH_ENGINES=server,chdb picks engines, BENCH_PARTS=insert,nats what is measured (insert
 * includes the queries over what was inserted).
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import {
  type ClickHouseClient,
  type ClickHouseStore,
  createClickHouseStore,
  createServerClient,
  openChdbClient,
} from '@tally/clickhouse';
import {
  catalogDimensions,
  type EventRow,
  parseQuery,
  type Query,
  type RequestLogRow,
  supportBotCatalog,
} from '@tally/core';
import { connect as natsConnect, jetstream, jetstreamManager, publishBatch } from '@tally/nats';
import { encodeEvents, EVENT_COLUMNS } from '../packages/clickhouse/src/rows.js';
import { loadConfig } from '../packages/server/dist/config.js';
import { startServer } from '../packages/server/dist/serve.js';
import { fmt, round } from './support/figures.js';
import { check, printTable, runBench } from './support/harness.js';
import {
  makeEventBatches,
  makeRequestLogBatches,
  QUERY_DATA_NOW,
  queryDataOptions,
  TENANT,
} from './support/query-data.js';

const QUICK = process.env.BENCH_QUICK === '1';
/** The catalog's enums and booleans, as `tally serve` passes them (and bench/query.bench.ts). */
const DIMENSIONS = catalogDimensions(supportBotCatalog);
const envInt = (name: string, fallback: number) => {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number.parseInt(v, 10);
};
const EVENTS = envInt('BENCH_EVENTS', QUICK ? 50_000 : 10_000_000);
const REQUEST_LOGS = envInt('BENCH_REQUEST_LOGS', QUICK ? 5_000 : 1_000_000);
const RUNS = envInt('BENCH_RUNS', QUICK ? 3 : 7);
const ENGINES = (process.env.BENCH_ENGINES ?? 'server,chdb').split(',').map((s) => s.trim());
/** What to measure on each engine: insert (and the queries over what was inserted), nats (server only). */
const PARTS = (process.env.BENCH_PARTS ?? 'insert,nats').split(',').map((s) => s.trim());
const SERVER_URL = 'http://127.0.0.1:8123';
const NATS_URL = 'nats://127.0.0.1:4222';
const BATCH_ROWS = 20_000;
const MESSAGE_EVENTS = 1000;

const failures: string[] = [];
const work = mkdtempSync(join(tmpdir(), 'tally-bench-ch-'));
const ENVELOPES = join(work, 'envelopes.jsonl');
const ROWS = join(work, 'rows.jsonl');
const options = queryDataOptions(EVENTS, REQUEST_LOGS);
const cleanups: (() => Promise<unknown>)[] = [];

function query(input: Record<string, unknown>): Query {
  const parsed = parseQuery({ tz: 'UTC', ...input });
  if (!parsed.ok) throw parsed.error;
  return parsed.query;
}

const QUERIES = [
  {
    key: 'trends',
    label: 'trends by day × channel (top 10)',
    targetMs: 100,
    query: query({
      kind: 'trends',
      range: { last: '30d' },
      series: [{ event: 'conversation_started' }],
      interval: 'day',
      breakdown: { property: 'properties.channel' },
    }),
  },
  {
    key: 'escalation',
    label: 'escalation rate per day (B / A)',
    query: query({
      kind: 'trends',
      range: { last: '30d' },
      series: [{ event: 'conversation_started' }, { event: 'escalation_triggered' }],
      interval: 'day',
      formula: 'B / A',
    }),
  },
  {
    key: 'funnel',
    label: 'funnel: 3 steps, 1d, 1h on step 3',
    targetMs: 1000,
    query: query({
      kind: 'funnel',
      range: { last: '30d' },
      window: '1d',
      order: 'ordered',
      steps: [
        { event: 'conversation_started' },
        { event: 'message_sent' },
        { event: 'escalation_triggered', window: '1h' },
      ],
    }),
  },
  {
    key: 'retention',
    label: 'retention: 8 weeks',
    query: query({
      kind: 'retention',
      range: { last: '30d' },
      start: { event: 'conversation_started' },
      return: { event: 'message_sent' },
      period: 'week',
      periods: 8,
      mode: 'first_time',
    }),
  },
  {
    key: 'routes',
    label: 'route p95 table (1M request logs)',
    query: query({ kind: 'routes', range: { last: '30d' }, sort: 'p95', limit: 1000 }),
  },
] as const;

interface EngineFigures {
  label: string;
  tallyEps?: number;
  peerEps?: number;
  insertRatio?: number;
  natsEps?: number;
  /** Seconds to build the hourly counts of every sealed day (the rollups job's first run). */
  sealS?: number;
  queries: Record<string, { p50: number; p95: number }>;
}
const results: Record<string, EngineFigures> = {};

// ---------------------------------------------------------------- data files

/** Writes the envelopes and their encoded rows (the same rows) and returns how many. */
async function writeFiles(): Promise<number> {
  const envelopes = createWriteStream(ENVELOPES);
  const rows = createWriteStream(ROWS);
  let n = 0;
  const started = performance.now();
  for (const batch of makeEventBatches(options, 10_000)) {
    let a = '';
    for (const e of batch) a += `${JSON.stringify(e)}\n`;
    const b = encodeEvents(batch, 'JSONEachRow').body;
    n += batch.length;
    if (!envelopes.write(a)) await once(envelopes, 'drain');
    if (!rows.write(b)) await once(rows, 'drain');
  }
  envelopes.end();
  rows.end();
  await Promise.all([once(envelopes, 'finish'), once(rows, 'finish')]);
  console.error(`data: ${n} events written in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return n;
}

/** The envelope file in batches of `size` parsed events. */
async function* envelopeBatches(size: number): AsyncGenerator<EventRow[]> {
  let batch: EventRow[] = [];
  for await (const line of createInterface({ input: createReadStream(ENVELOPES), crlfDelay: Infinity })) {
    batch.push(JSON.parse(line) as EventRow);
    if (batch.length === size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

// ---------------------------------------------------------------- measuring

/** Tally's store path: parse, encode, check, insert; two batches in flight. */
async function tallyInsert(store: ClickHouseStore): Promise<number> {
  const started = performance.now();
  const inFlight = new Set<Promise<unknown>>();
  let stored = 0;
  for await (const batch of envelopeBatches(BATCH_ROWS)) {
    const p = store.insertEvents(batch).then((ids) => (stored += ids.length));
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    if (inFlight.size >= 2) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - started) / 1000;
  check(stored === EVENTS, `Tally stored ${stored} of ${EVENTS} events`);
  return EVENTS / seconds;
}

/** clickhouse-client inserting the encoded rows from the file. */
async function clientInsert(database: string): Promise<number> {
  const started = performance.now();
  const child = spawn(
    'clickhouse-client',
    [
      '--host',
      '127.0.0.1',
      '--query',
      `INSERT INTO ${database}.events (${EVENT_COLUMNS.join(', ')}) FORMAT JSONEachRow`,
    ],
    { stdio: ['pipe', 'inherit', 'inherit'] },
  );
  createReadStream(ROWS).pipe(child.stdin);
  const [code] = (await once(child, 'exit')) as [number];
  check(code === 0, `clickhouse-client exited with ${code}`);
  return EVENTS / ((performance.now() - started) / 1000);
}

const jsonEachRow = (lines: string[]) => ({
  format: 'JSONEachRow' as const,
  body: lines.join('\n'),
  rows: lines.length,
});

/** chDB's raw insert of the encoded rows, in the same batch size as Tally's. */
async function chdbRawInsert(client: ClickHouseClient, database: string): Promise<number> {
  const started = performance.now();
  let lines: string[] = [];
  for await (const line of createInterface({ input: createReadStream(ROWS), crlfDelay: Infinity })) {
    lines.push(line);
    if (lines.length === BATCH_ROWS) {
      await client.insert(`${database}.events`, EVENT_COLUMNS, jsonEachRow(lines));
      lines = [];
    }
  }
  if (lines.length > 0) await client.insert(`${database}.events`, EVENT_COLUMNS, jsonEachRow(lines));
  return EVENTS / ((performance.now() - started) / 1000);
}

async function countEvents(client: ClickHouseClient, database: string): Promise<{ rows: number; ids: number }> {
  const [r] = await client.query<{ rows: number; ids: number }>(
    `SELECT count() AS rows, uniqExact(id) AS ids FROM ${database}.events`,
  );
  return { rows: Number(r?.rows), ids: Number(r?.ids) };
}

async function loadRequestLogs(store: ClickHouseStore): Promise<void> {
  for (const batch of makeRequestLogBatches(options, BATCH_ROWS))
    await store.insertRequestLogs(batch as RequestLogRow[]);
}

async function measureQuery(store: ClickHouseStore, query: Query): Promise<{ p50: number; p95: number }> {
  await store.query(TENANT, query, { now: QUERY_DATA_NOW, timeoutMs: 600_000 });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await store.query(TENANT, query, { now: QUERY_DATA_NOW, timeoutMs: 600_000 });
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))] as number;
  return { p50: at(0.5), p95: at(0.95) };
}

/**
 * The trends query from the detail rows alone first; then every sealed day's hourly counts built (as
 * the rollups job does an hour after each day ends; the month's last day is still open at
 * QUERY_DATA_NOW, so it stays on the detail rows), and every query measured.
 */
async function measureQueries(store: ClickHouseStore, figures: EngineFigures): Promise<void> {
  figures.queries.trends_detail = await measureQuery(store, QUERIES[0]!.query);
  const started = performance.now();
  const sealed = await store.sealRollups({ now: QUERY_DATA_NOW });
  figures.sealS = (performance.now() - started) / 1000;
  console.error(`${figures.label}: built ${sealed.built} days (${sealed.events} events) in ${fmt(figures.sealS, 1)} s`);
  for (const q of QUERIES) {
    figures.queries[q.key] = await measureQuery(store, q.query);
    if (q.key === 'trends') {
      const r = await store.query(TENANT, { ...q.query, explain: true }, { now: QUERY_DATA_NOW });
      check(r.meta.source === 'rollup', `trends after sealing came from ${r.meta.source}: ${r.meta.explain?.reason}`);
    }
  }
}

/** Events through `tally serve`'s NATS consumer into ClickHouse: publish first, then drain. */
async function natsDrain(database: string): Promise<number> {
  const stream = `BENCH_CH_${Math.random().toString(36).slice(2, 8).toUpperCase()}`;
  const prefix = `bch${Math.random().toString(36).slice(2, 8)}`;
  const dataDir = mkdtempSync(join(work, 'serve-'));
  const flags = {
    port: '0',
    'data-dir': dataDir,
    'nats-url': NATS_URL,
    'nats-stream': stream,
    'nats-prefix': prefix,
    'clickhouse-url': SERVER_URL,
    'clickhouse-database': database,
    jobs: 'off',
    dashboard: 'off',
  };
  const nc = await natsConnect({ servers: NATS_URL });
  cleanups.push(async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => undefined);
    await nc.close();
  });
  // The first start creates the stream and the durable consumer; stopped, it leaves them waiting.
  await (await startServer(loadConfig(flags, {}), { logLevel: 'warn' })).close();
  const js = jetstream(nc);
  const maxPayload = nc.info?.max_payload ?? 1 << 20;
  let published = 0;
  const pubStarted = performance.now();
  for await (const batch of envelopeBatches(MESSAGE_EVENTS)) {
    // receivedAt is the server's: a producer never sends it.
    const events = batch.map(({ receivedAt: _r, ...e }) => e);
    await publishBatch(js, prefix, events, maxPayload, 30_000);
    published += events.length;
  }
  console.error(`nats: ${published} events published in ${((performance.now() - pubStarted) / 1000).toFixed(1)} s`);
  const client = createServerClient({ url: SERVER_URL });
  cleanups.push(() => client.close());
  const started = performance.now();
  const server = await startServer(loadConfig(flags, {}), { logLevel: 'warn' });
  try {
    for (;;) {
      // count() alone while polling (uniqExact over the growing table would take the server's CPU from
      // the inserts being measured); every id is checked once at the end.
      const [c] = await client.query<{ rows: number }>(`SELECT count() AS rows FROM ${database}.events`);
      const rows = Number(c?.rows);
      if (rows >= EVENTS) break;
      if (performance.now() - started > 1_800_000) throw new Error(`NATS drain: ${rows} of ${EVENTS} after 30 min`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await server.close();
  }
  const eps = EVENTS / ((performance.now() - started) / 1000);
  const counted = await countEvents(client, database);
  check(counted.rows === EVENTS && counted.ids === EVENTS, `NATS path stored ${JSON.stringify(counted)} of ${EVENTS}`);
  return eps;
}

// ---------------------------------------------------------------- engines

async function serverEngine(): Promise<void> {
  const client = createServerClient({ url: SERVER_URL });
  cleanups.push(() => client.close());
  const [v] = await client.query<{ v: string }>('SELECT version() AS v');
  const figures: EngineFigures = { label: `clickhouse-server ${v?.v}`, queries: {} };
  results.server = figures;
  const db = (name: string) => `tally_bench_${name}_${Math.random().toString(36).slice(2, 8)}`;
  const open = async (database: string) => {
    const store = createClickHouseStore({ client, database, dimensions: DIMENSIONS });
    await store.migrate();
    cleanups.push(() => client.command(`DROP DATABASE IF EXISTS ${database}`));
    return store;
  };

  if (PARTS.includes('insert')) await serverInsertAndQueries(client, figures, db, open);
  if (PARTS.includes('nats')) {
    const natsDb = db('nats');
    await open(natsDb);
    figures.natsEps = await natsDrain(natsDb);
    console.error(`server NATS → ClickHouse: ${fmt(figures.natsEps, 0)} events/s`);
  }
}

async function serverInsertAndQueries(
  client: ClickHouseClient,
  figures: EngineFigures,
  db: (name: string) => string,
  open: (database: string) => Promise<ClickHouseStore>,
): Promise<void> {
  const peerDb = db('peer');
  await open(peerDb);
  figures.peerEps = await clientInsert(peerDb);
  const peerCount = await countEvents(client, peerDb);
  check(peerCount.rows === EVENTS, `clickhouse-client stored ${peerCount.rows} of ${EVENTS}`);
  await client.command(`DROP DATABASE IF EXISTS ${peerDb}`);

  const tally = await open(db('tally'));
  figures.tallyEps = await tallyInsert(tally);
  figures.insertRatio = figures.tallyEps / figures.peerEps;
  const counted = await countEvents(client, tally.database);
  check(counted.rows === EVENTS && counted.ids === EVENTS, `Tally's table holds ${JSON.stringify(counted)}`);
  console.error(`server insert: Tally ${fmt(figures.tallyEps, 0)}/s, clickhouse-client ${fmt(figures.peerEps, 0)}/s`);

  await loadRequestLogs(tally);
  await measureQueries(tally, figures);
  await client.command(`DROP DATABASE IF EXISTS ${tally.database}`);
}

async function chdbEngine(): Promise<void> {
  if (!PARTS.includes('insert')) return;
  const client = await openChdbClient(join(work, 'chdb'));
  cleanups.push(() => client.close());
  const [v] = await client.query<{ v: string }>('SELECT version() AS v');
  const figures: EngineFigures = { label: `chDB ${v?.v}`, queries: {} };
  results.chdb = figures;
  const peer = createClickHouseStore({ client, database: 'bench_peer' });
  await peer.migrate();
  figures.peerEps = await chdbRawInsert(client, 'bench_peer');
  await client.command('DROP DATABASE IF EXISTS bench_peer');
  const tally = createClickHouseStore({ client, database: 'bench_tally', dimensions: DIMENSIONS });
  await tally.migrate();
  figures.tallyEps = await tallyInsert(tally);
  figures.insertRatio = figures.tallyEps / figures.peerEps;
  const counted = await countEvents(client, 'bench_tally');
  check(counted.rows === EVENTS && counted.ids === EVENTS, `Tally's chDB table holds ${JSON.stringify(counted)}`);
  console.error(`chDB insert: Tally ${fmt(figures.tallyEps, 0)}/s, raw insert ${fmt(figures.peerEps, 0)}/s`);
  await loadRequestLogs(tally);
  await measureQueries(tally, figures);
}

// ---------------------------------------------------------------- report

function report(): void {
  const rows: string[][] = [];
  for (const f of Object.values(results)) {
    rows.push([`${f.label}: insert events/s`, fmt(f.tallyEps, 0), fmt(f.peerEps, 0), fmt(f.insertRatio, 2), '≥ 0.8']);
    if (f.natsEps !== undefined)
      rows.push([`${f.label}: NATS → ClickHouse events/s`, fmt(f.natsEps, 0), '', '', '≥ 100 000']);
    const detail = f.queries.trends_detail;
    if (detail)
      rows.push([
        `${f.label}: trends from the detail rows only, p50 (p95) ms`,
        `${fmt(detail.p50, 1)} (${fmt(detail.p95, 1)})`,
        '',
        '',
        '',
      ]);
    if (f.sealS !== undefined)
      rows.push([`${f.label}: building the month's hourly counts, s`, fmt(f.sealS, 1), '', '', '']);
    for (const q of QUERIES) {
      const m = f.queries[q.key];
      if (!m) continue;
      rows.push([
        `${f.label}: ${q.label}, p50 (p95) ms`,
        `${fmt(m.p50, 1)} (${fmt(m.p95, 1)})`,
        '',
        '',
        'targetMs' in q ? `< ${q.targetMs}` : '',
      ]);
    }
  }
  printTable(['measure', 'Tally', 'peer', 'ratio', 'target'], rows);
  const json: Record<string, unknown> = { bench: 'clickhouse', events: EVENTS, requestLogs: REQUEST_LOGS };
  for (const [engine, f] of Object.entries(results)) {
    json[engine] = {
      version: f.label,
      tally_eps: round(f.tallyEps, 0),
      peer_eps: round(f.peerEps, 0),
      insert_ratio: round(f.insertRatio, 3),
      ...(f.natsEps !== undefined ? { nats_eps: round(f.natsEps, 0) } : {}),
      ...(f.sealS !== undefined ? { seal_s: round(f.sealS, 1) } : {}),
      ...Object.fromEntries(Object.entries(f.queries).map(([k, m]) => [`${k}_p50_ms`, round(m.p50, 1)])),
    };
  }
  if (failures.length > 0) json.failures = failures;
  json.ratio = round(results.server?.insertRatio ?? results.chdb?.insertRatio, 3);
  console.log(JSON.stringify(json));
}

await runBench({
  failures,
  async main() {
    const written = await writeFiles();
    check(written === EVENTS, `the generator made ${written} of ${EVENTS} events`);
    if (ENGINES.includes('server')) await serverEngine();
    if (ENGINES.includes('chdb')) await chdbEngine();
  },
  async cleanup() {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  },
  report,
});
