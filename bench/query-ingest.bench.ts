/**
 * Ingestion while queries run, on the embedded default (PGlite behind its worker thread, on disk, as
 * `tally serve` runs it). PGlite has one connection: a query and a writer's batch cannot run at once, so
 * the store gives writes their turn first (packages/store/src/write-first.ts). Measured here: the
 * writer's throughput alone, then the same writer with two dashboard clients querying back to back
 * (a trends breakdown over 30 days from the detail rows, the event list, the route table), in the same
 * run, on the same store.
 *
 * ratio = events/s while querying ÷ events/s alone (1.0: queries cost ingestion nothing).
 * Also printed: the queries answered meanwhile and their p50/p95.
 * BENCH_QUICK=1: a smoke run of seconds (figures not meaningful).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseQuery, type Query } from '@tally/core';
import { createStore, createWriter, type EventRow, type Store } from '@tally/store';
import { fmt, round } from './support/figures.js';
import { check, cpuTimed, printTable, runBench } from './support/harness.js';
import { makeEventRows } from './support/ingest-rows.js';

const QUICK = process.env.BENCH_QUICK === '1';
/** Events already stored, so that queries have something to chew on. */
const PRELOAD = QUICK ? 10_000 : 300_000;
/** Events written in each measured phase. */
const N = QUICK ? 5_000 : 100_000;
const CALL_ROWS = 500;
const CALLS_IN_FLIGHT = 8;
const QUERY_CLIENTS = 2;
const TENANT = 'tenant-acme';
const TARGET = 0.7;

const failures: string[] = [];
const figures: Record<string, number | null> = {};
const dir = mkdtempSync(join(tmpdir(), 'tally-bench-query-ingest-'));

function query(input: unknown): Query {
  const parsed = parseQuery(input);
  if (!parsed.ok) throw parsed.error;
  return parsed.query;
}

const DASHBOARD: Query[] = [
  query({
    kind: 'trends',
    range: { last: '30d' },
    series: [{ event: 'task_created' }],
    interval: 'day',
    breakdown: { property: 'properties.taskType' },
  }),
  query({ kind: 'explore', range: { last: '30d' }, what: 'events' }),
  query({ kind: 'routes', range: { last: '7d' } }),
];

async function writeAll(store: Store, rows: readonly EventRow[]): Promise<{ seconds: number; eps: number }> {
  const writer = createWriter({ store, spoolDir: join(dir, `spool-${Math.random()}`), maxBatchRows: 1000 });
  let stored = 0;
  try {
    const { seconds } = await cpuTimed(async () => {
      let next = 0;
      const lane = async () => {
        while (next < rows.length) {
          const from = next;
          next = Math.min(rows.length, from + CALL_ROWS);
          // Awaited before the sum: `stored += await …` would read `stored` before the wait and lose updates.
          const result = await writer.writeEvents(rows.slice(from, next));
          stored += result.stored;
        }
      };
      await Promise.all(Array.from({ length: CALLS_IN_FLIGHT }, lane));
      await writer.flush();
    });
    check(stored === rows.length, `writer stored ${stored} of ${rows.length}`);
    return { seconds, eps: rows.length / seconds };
  } finally {
    await writer.close();
  }
}

/** Dashboard clients querying back to back until `stop` says so; every answer's latency, ms. */
async function dashboard(store: Store, stop: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  const client = async (offset: number) => {
    for (let i = offset; !stop(); i++) {
      const t0 = performance.now();
      await store.query(TENANT, DASHBOARD[i % DASHBOARD.length] as Query);
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: QUERY_CLIENTS }, (_, i) => client(i)));
  return latencies;
}

const pct = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null;

await runBench({
  failures,
  async main() {
    const store = await createStore({ kind: 'pglite', dataDir: join(dir, 'pglite'), worker: true });
    try {
      await store.migrate();
      const now = Date.now();
      const preload = makeEventRows(PRELOAD, { seed: 11, endMs: now - 3_600_000, spanMs: 29 * 86_400_000 });
      for (let i = 0; i < preload.length; i += 5000) await store.insertEvents(preload.slice(i, i + 5000));
      // Warm the engine and the query plans before measuring either phase.
      await writeAll(store, makeEventRows(2_000, { seed: 12, endMs: now }));
      for (const q of DASHBOARD) await store.query(TENANT, q);

      const alone = await writeAll(store, makeEventRows(N, { seed: 13, endMs: now }));
      let done = false;
      const queries = dashboard(store, () => done);
      const querying = await writeAll(store, makeEventRows(N, { seed: 14, endMs: now })).finally(() => {
        done = true;
      });
      const latencies = (await queries).sort((a, b) => a - b);
      // What the queries cost when nothing else runs, for comparison.
      const quiet: number[] = [];
      for (let i = 0; i < 3 * DASHBOARD.length; i++) {
        const t0 = performance.now();
        await store.query(TENANT, DASHBOARD[i % DASHBOARD.length] as Query);
        quiet.push(performance.now() - t0);
      }
      quiet.sort((a, b) => a - b);
      check(latencies.length > 0, 'no query was answered while the writer ran');
      Object.assign(figures, {
        preload: PRELOAD,
        events: N,
        alone_eps: round(alone.eps, 0),
        querying_eps: round(querying.eps, 0),
        queries: latencies.length,
        query_p50_ms: round(pct(latencies, 0.5), 1),
        query_p95_ms: round(pct(latencies, 0.95), 1),
        quiet_query_p50_ms: round(pct(quiet, 0.5), 1),
        ratio: round(querying.eps / alone.eps, 2),
      });
      printTable(
        ['PGlite (worker, on disk)', 'events/s', 'queries', 'query p50 ms', 'query p95 ms'],
        [
          ['writer alone', fmt(alone.eps, 0), '—', '—', '—'],
          [
            `writer + ${QUERY_CLIENTS} dashboard clients`,
            fmt(querying.eps, 0),
            String(latencies.length),
            fmt(pct(latencies, 0.5), 1),
            fmt(pct(latencies, 0.95), 1),
          ],
          ['queries alone', '—', String(quiet.length), fmt(pct(quiet, 0.5), 1), fmt(pct(quiet, 0.95), 1)],
        ],
      );
      console.log(`ratio ${fmt(querying.eps / alone.eps, 2)} (target ≥ ${TARGET})`);
    } finally {
      await store.close();
    }
  },
  cleanup: () => rmSync(dir, { recursive: true, force: true }),
  report: () => {
    for (const f of failures) console.log(`FAILED ${f}`);
    console.log(JSON.stringify({ bench: 'query-ingest', quick: QUICK, ...figures, target: TARGET }));
  },
});
