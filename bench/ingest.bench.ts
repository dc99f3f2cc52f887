/**
 * Ingest benchmark (issue 4): Tally's exactly-once writer against the raw floor of the same engine, on
 * the same rows, into the same schema (`store.migrate()`: same table, same indexes), in the same run.
 *
 *   Postgres  raw COPY (text format, streamed; no ON CONFLICT, no rollups) vs the writer fed like the
 *             collector feeds it: writeEvents calls of 500 rows, 8 in flight; rollups on.
 *   PGlite    raw `INSERT … SELECT FROM unnest(…)`, 1000 rows a statement (no ON CONFLICT, no rollups)
 *             vs the writer on the same in-process engine; rollups on.
 *   Extras    (Postgres, figures only) the store's insertEvents (COPY into a temp staging table of text
 *             columns, then INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING + rollup, one transaction
 *             a batch) against the same statement fed from unnest arrays (what the store did before, and
 *             still does on PGlite) and against staging into a typed table (`LIKE events`); the cost of
 *             each step of the statement; and the writer's batch size × concurrency.
 *
 * Every measured variant gets a fresh Postgres schema (or a fresh in-memory PGlite), dropped afterwards,
 * and is checked: detail rows = N, and for Tally rollup total = N. A failed check fails the bench.
 * Timing covers encoding the rows (COPY text, JSON, arrays) and excludes connecting and migrating.
 * "node cpu" is this process (PGlite runs in it); "other cpu" is the rest of the machine (Postgres).
 *
 * Target (issue 4): Tally ≥ 0.7× raw COPY on Postgres, ≥ 0.8× raw on PGlite.
 * Prints a table, then as its last line `{"bench":"ingest",…,"ratio":<pg_ratio>}`.
 * BENCH_QUICK=1: 10k rows, one repetition, a smoke run of seconds (figures not meaningful).
 * BENCH_ONLY=copy,pg,store_1000,…: only the variants with those keys (A/B runs of one change).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createStore, createWriter, type EventRow, type Store } from '@tally/store';
import type postgres from 'postgres';
import { fmt, round } from './support/figures.js';
import { check, cpuTimed, measureOnce, type Outcome, printTable, runBench } from './support/harness.js';
import { copyChunks, copyText, EVENT_COLUMNS, makeEventRows, unnestColumns } from './support/ingest-rows.js';
import { benchPostgres, countEvents, migrateSchema, PG_URL, pgClient } from './support/pg.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ONLY = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
const N = QUICK ? 10_000 : 300_000;
const WARMUP_N = QUICK ? 2_000 : 20_000;
/** Repetitions of the headline variants (alternating raw and Tally); the best of each is reported. */
const REPS = QUICK ? 1 : 2;
/** Rows per writeEvents call and calls in flight: a collector with a few concurrent requests. */
const CALL_ROWS = 500;
const CALLS_IN_FLIGHT = 8;
const TARGET = { postgres: 0.7, pglite: 0.8 };
const COLUMNS = EVENT_COLUMNS.join(', ');

// ---------------------------------------------------------------- Postgres and cleanup

const { ensureReachable, inFreshSchema, tempDir, removeDir, settlePostgres, cleanup } = benchPostgres({
  name: 'ingest',
});

// ---------------------------------------------------------------- measuring

interface Measured {
  rows: number;
  seconds: number;
  eps: number;
  nodeCpu: number;
  otherCpu: number;
}

async function timed(rows: number, fn: () => Promise<void>): Promise<Measured> {
  const { seconds, nodeCpu, otherCpu } = await cpuTimed(fn);
  return { rows, seconds, eps: rows / seconds, nodeCpu, otherCpu };
}

/** Runs `work(from, to)` over `[0, total)` in chunks of `batch`, `concurrency` chunks at a time. */
async function inLanes(
  total: number,
  batch: number,
  concurrency: number,
  work: (from: number, to: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < total) {
      const from = next;
      const to = Math.min(total, from + batch);
      next = to;
      await work(from, to);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

/** Opens `max` connections now, so connecting is not timed. */
async function connect(sql: postgres.Sql, max: number): Promise<void> {
  await Promise.all(Array.from({ length: max }, () => sql.begin((tx) => tx`SELECT pg_sleep(0.01)`)));
}

// ---------------------------------------------------------------- Postgres: raw COPY

/** Raw COPY of all rows; with `streams` > 1, that many COPYs on their own connections share the chunks. */
async function pgCopy(rows: readonly EventRow[], streams = 1): Promise<Measured> {
  return inFreshSchema(async (schema) => {
    await migrateSchema(schema);
    const sql = pgClient(schema, streams);
    try {
      await connect(sql, streams);
      await settlePostgres();
      const m = await timed(rows.length, async () => {
        await Promise.all(
          Array.from({ length: streams }, async (_, lane) => {
            const stream = await sql.unsafe(`COPY events (${COLUMNS}) FROM STDIN`).writable();
            await pipeline(Readable.from(copyChunks(rows, lane, streams)), stream);
          }),
        );
      });
      const { events } = await countEvents(sql);
      check(events === rows.length, `raw COPY: ${events} rows in events, expected ${rows.length}`);
      return m;
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
}

// ---------------------------------------------------------------- Tally's writer (both engines)

interface WriterPlan {
  maxBatchRows: number;
  concurrency: number;
  /** writeEvents calls of CALL_ROWS in flight at once. */
  inFlight: number;
}

const DEFAULT_PLAN: WriterPlan = { maxBatchRows: 1000, concurrency: 2, inFlight: CALLS_IN_FLIGHT };

/** Feeds the writer as the collector does and checks every row came back stored, then the totals. */
async function runWriter(store: Store, rows: readonly EventRow[], plan: WriterPlan): Promise<Measured> {
  const spoolDir = tempDir();
  const writer = createWriter({
    store,
    spoolDir,
    maxBatchRows: plan.maxBatchRows,
    concurrency: plan.concurrency,
  });
  const outcome = { stored: 0, duplicates: 0, rejected: 0, spooled: 0, refused: 0 };
  let firstProblem: string | undefined;
  try {
    if (store.kind === 'postgres') await settlePostgres();
    const m = await timed(rows.length, async () => {
      await inLanes(rows.length, CALL_ROWS, plan.inFlight, async (from, to) => {
        const r = await writer.writeEvents(rows.slice(from, to));
        outcome.stored += r.stored;
        outcome.duplicates += r.duplicates;
        outcome.rejected += r.rejected.length;
        outcome.spooled += r.spooled;
        if (!r.ok) outcome.refused += to - from;
        firstProblem ??= r.rejected[0]?.message ?? r.code;
      });
      await writer.flush();
    });
    check(
      outcome.stored === rows.length,
      `Tally writer on ${store.kind}: ${JSON.stringify(outcome)} of ${rows.length} rows` +
        (firstProblem ? ` (first problem: ${firstProblem})` : ''),
    );
    const totals = await store.totals();
    check(
      totals.events === rows.length && totals.eventRollup === rows.length,
      `Tally writer on ${store.kind}: events ${totals.events}, rollup ${totals.eventRollup}, expected ${rows.length} each`,
    );
    return m;
  } finally {
    await writer.close();
    removeDir(spoolDir);
  }
}

async function pgTally(rows: readonly EventRow[], plan: WriterPlan = DEFAULT_PLAN): Promise<Measured> {
  return inFreshSchema(async (schema) => {
    const store = await createStore({ kind: 'postgres', url: PG_URL, schema, poolSize: Math.max(4, plan.concurrency) });
    try {
      await store.migrate();
      return await runWriter(store, rows, plan);
    } finally {
      await store.close();
    }
  });
}

// ---------------------------------------------------------------- PGlite

const PGLITE_SCHEMA = 'tally_bench';

const UNNEST_INPUT = `unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
    AS t(${COLUMNS})`;
const UNNEST_CAST = `id::uuid, tenant_id, name, user_id, anonymous_id, properties::jsonb, context::jsonb, ts::timestamptz, received_at::timestamptz`;

/** The fastest honest plain insert: no ON CONFLICT, no RETURNING, no rollups. */
const PLAIN_INSERT = `INSERT INTO events (${COLUMNS}) SELECT ${UNNEST_CAST} FROM ${UNNEST_INPUT}`;

async function pgliteRaw(rows: readonly EventRow[]): Promise<Measured> {
  const store = await createStore({ kind: 'pglite', schema: PGLITE_SCHEMA });
  try {
    await store.migrate();
    const m = await timed(rows.length, async () => {
      for (let i = 0; i < rows.length; i += 1000) await store.sql.query(PLAIN_INSERT, unnestColumns(rows, i, i + 1000));
    });
    const { events } = await store.totals();
    check(events === rows.length, `PGlite raw insert: ${events} rows in events, expected ${rows.length}`);
    return m;
  } finally {
    await store.close();
  }
}

async function pgliteTally(rows: readonly EventRow[]): Promise<Measured> {
  const store = await createStore({ kind: 'pglite', schema: PGLITE_SCHEMA });
  try {
    await store.migrate();
    return await runWriter(store, rows, { ...DEFAULT_PLAN, concurrency: 1 });
  } finally {
    await store.close();
  }
}

// ---------------------------------------------------------------- Postgres extras: unnest vs staging

// The store's rollup, fed from the rows the insert returned (as packages/store/src/store.ts INSERT_EVENTS).
const ROLLUP_FROM_INS = `rollup AS (
  INSERT INTO event_counts_hourly AS r (tenant_id, name, hour, count, weighted)
  SELECT tenant_id, name, date_trunc('hour', ts, 'UTC'), count(*),
         sum(1.0 / coalesce((context->>'sampleRate')::float8, 1.0))
  FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (tenant_id, name, hour)
  DO UPDATE SET count = r.count + EXCLUDED.count, weighted = r.weighted + EXCLUDED.weighted
)`;

/** The store's statement minus the rollup: what ON CONFLICT + RETURNING alone cost. */
const UNNEST_CONFLICT_NO_ROLLUP = `INSERT INTO events (${COLUMNS}) SELECT ${UNNEST_CAST} FROM ${UNNEST_INPUT}
  ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id::text AS id`;

/** The store's statement fed from unnest arrays (as it still is on PGlite): the rollup of the inserted rows. */
const UNNEST_ROLLUP = `WITH ins AS (
  INSERT INTO events (${COLUMNS}) SELECT ${UNNEST_CAST} FROM ${UNNEST_INPUT}
  ORDER BY id ON CONFLICT (id) DO NOTHING RETURNING id, tenant_id, name, ts, context
), ${ROLLUP_FROM_INS}
SELECT id::text AS id FROM ins`;

const STAGING_CREATE = {
  // Created once per connection, emptied by every commit (a truncate in place, no catalog churn).
  reused: `CREATE TEMP TABLE IF NOT EXISTS tally_staging (LIKE events) ON COMMIT DELETE ROWS`,
  // Created and dropped by every batch's transaction.
  dropped: `CREATE TEMP TABLE tally_staging (LIKE events) ON COMMIT DROP`,
};
type StagingMode = keyof typeof STAGING_CREATE;

const STAGING_INSERT = `WITH ins AS (
  INSERT INTO events (${COLUMNS})
  SELECT ${COLUMNS} FROM tally_staging
  ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id, tenant_id, name, ts, context
), ${ROLLUP_FROM_INS}
SELECT id::text AS id FROM ins`;

/** Inserts batches through a raw statement over unnest arrays; checks what landed. */
async function pgUnnest(
  rows: readonly EventRow[],
  batch: number,
  concurrency: number,
  statement: 'plain' | 'conflict' | 'rollup' | 'store',
): Promise<Measured> {
  return inFreshSchema(async (schema) => {
    if (statement === 'store') {
      // The store's own insertEvents (COPY → staging + ON CONFLICT DO NOTHING RETURNING + rollup), no writer.
      const store = await createStore({ kind: 'postgres', url: PG_URL, schema, poolSize: concurrency });
      try {
        await store.migrate();
        await Promise.all(Array.from({ length: concurrency }, () => store.sql.query('SELECT pg_sleep(0.01)')));
        await settlePostgres();
        let inserted = 0;
        const m = await timed(rows.length, () =>
          inLanes(rows.length, batch, concurrency, async (from, to) => {
            const ids = await store.insertEvents(rows.slice(from, to));
            inserted += ids.length;
          }),
        );
        const totals = await store.totals();
        check(
          inserted === rows.length && totals.events === rows.length && totals.eventRollup === rows.length,
          `store.insertEvents: returned ${inserted}, events ${totals.events}, rollup ${totals.eventRollup}, expected ${rows.length}`,
        );
        return m;
      } finally {
        await store.close();
      }
    }
    await migrateSchema(schema);
    const sql = pgClient(schema, concurrency);
    try {
      await connect(sql, concurrency);
      await settlePostgres();
      const text =
        statement === 'plain' ? PLAIN_INSERT : statement === 'conflict' ? UNNEST_CONFLICT_NO_ROLLUP : UNNEST_ROLLUP;
      const m = await timed(rows.length, () =>
        inLanes(rows.length, batch, concurrency, async (from, to) => {
          await sql.unsafe(text, unnestColumns(rows, from, to));
        }),
      );
      const { events, rollup } = await countEvents(sql);
      check(events === rows.length, `unnest ${statement}: ${events} rows in events, expected ${rows.length}`);
      check(
        statement !== 'rollup' || rollup === rows.length,
        `unnest rollup: rollup ${rollup}, expected ${rows.length}`,
      );
      return m;
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
}

/**
 * COPY into a temp staging table, then INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING with the rollup
 * of the returned rows: one transaction a batch, so a crash leaves the batch wholly in or wholly out.
 */
async function pgStaging(
  rows: readonly EventRow[],
  batch: number,
  concurrency: number,
  mode: StagingMode,
): Promise<Measured> {
  return inFreshSchema(async (schema) => {
    await migrateSchema(schema);
    const sql = pgClient(schema, concurrency);
    try {
      await connect(sql, concurrency);
      await settlePostgres();
      let inserted = 0;
      const m = await timed(rows.length, () =>
        inLanes(rows.length, batch, concurrency, async (from, to) => {
          const ids = await sql.begin(async (tx) => {
            await tx.unsafe(STAGING_CREATE[mode]);
            const stream = await tx.unsafe(`COPY tally_staging (${COLUMNS}) FROM STDIN`).writable();
            await pipeline(Readable.from([copyText(rows, from, to)]), stream);
            return tx.unsafe<{ id: string }[]>(STAGING_INSERT);
          });
          inserted += ids.length;
        }),
      );
      const { events, rollup } = await countEvents(sql);
      check(
        inserted === rows.length && events === rows.length && rollup === rows.length,
        `staging (${mode}): returned ${inserted}, events ${events}, rollup ${rollup}, expected ${rows.length}`,
      );
      return m;
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
}

// ---------------------------------------------------------------- plan

interface Variant {
  key: string;
  section: 'Postgres' | 'PGlite' | 'Postgres extras (vs raw COPY)' | 'Writer on Postgres: maxBatchRows × concurrency';
  label: string;
  run: (rows: readonly EventRow[]) => Promise<Measured>;
  /** Key of the variant this one is compared with. */
  baseline?: string;
  target?: number;
}

const HEADLINE: Variant[] = [
  {
    key: 'copy',
    section: 'Postgres',
    label: 'raw COPY (text, streamed; no ON CONFLICT, no rollup)',
    run: (rows) => pgCopy(rows),
  },
  {
    key: 'pg',
    section: 'Postgres',
    label: 'Tally writer (batch 1000 × 2; calls of 500, 8 in flight; rollup)',
    run: (rows) => pgTally(rows),
    baseline: 'copy',
    target: TARGET.postgres,
  },
  {
    key: 'pglite_raw',
    section: 'PGlite',
    label: 'raw INSERT … unnest, 1000/stmt (no ON CONFLICT, no rollup)',
    run: pgliteRaw,
  },
  {
    key: 'pglite',
    section: 'PGlite',
    label: 'Tally writer (batch 1000; calls of 500, 8 in flight; rollup)',
    run: pgliteTally,
    baseline: 'pglite_raw',
    target: TARGET.pglite,
  },
];

const EXTRA = 'Postgres extras (vs raw COPY)' as const;
const extra = (key: string, label: string, run: Variant['run']): Variant => ({
  key,
  section: EXTRA,
  label,
  run,
  baseline: 'copy',
});
const EXTRAS: Variant[] = [
  extra('copy_2', 'raw COPY, 2 streams on 2 connections (chunks of 1000 alternating)', (rows) => pgCopy(rows, 2)),
  extra('plain_1000', 'unnest INSERT, plain (no ON CONFLICT, no rollup) 1000 × 2', (rows) =>
    pgUnnest(rows, 1000, 2, 'plain'),
  ),
  extra('conflict_1000', 'unnest INSERT … ON CONFLICT DO NOTHING RETURNING, no rollup 1000 × 2', (rows) =>
    pgUnnest(rows, 1000, 2, 'conflict'),
  ),
  extra('unnest_1000', 'unnest INSERT … ON CONFLICT DO NOTHING RETURNING + rollup 1000 × 2', (rows) =>
    pgUnnest(rows, 1000, 2, 'rollup'),
  ),
  extra('unnest_5000', 'unnest INSERT … ON CONFLICT DO NOTHING RETURNING + rollup 5000 × 2', (rows) =>
    pgUnnest(rows, 5000, 2, 'rollup'),
  ),
  extra('store_1000', 'store.insertEvents: COPY → text staging + INSERT ON CONFLICT + rollup 1000 × 2', (rows) =>
    pgUnnest(rows, 1000, 2, 'store'),
  ),
  extra(
    'staging_1000',
    'staging: COPY → typed temp (ON COMMIT DELETE ROWS) + INSERT ON CONFLICT + rollup 1000 × 2',
    (rows) => pgStaging(rows, 1000, 2, 'reused'),
  ),
  extra(
    'staging_5000',
    'staging: COPY → typed temp (ON COMMIT DELETE ROWS) + INSERT ON CONFLICT + rollup 5000 × 2',
    (rows) => pgStaging(rows, 5000, 2, 'reused'),
  ),
  extra(
    'staging_drop_1000',
    'staging: COPY → typed temp (ON COMMIT DROP) + INSERT ON CONFLICT + rollup 1000 × 2',
    (rows) => pgStaging(rows, 1000, 2, 'dropped'),
  ),
];

const SWEEP_SECTION = 'Writer on Postgres: maxBatchRows × concurrency' as const;
const SWEEP: Variant[] = [500, 1000, 2000].flatMap((maxBatchRows) =>
  [1, 2, 4].map((concurrency) => ({
    key: `writer_${maxBatchRows}x${concurrency}`,
    section: SWEEP_SECTION,
    label: `writer batch ${maxBatchRows} × concurrency ${concurrency}`,
    // Enough calls in flight that the writer is never starved: two full rounds of batches, at least 8.
    run: (rows: readonly EventRow[]) =>
      pgTally(rows, {
        maxBatchRows,
        concurrency,
        inFlight: Math.max(CALLS_IN_FLIGHT, Math.ceil((2 * maxBatchRows * concurrency) / CALL_ROWS)),
      }),
    baseline: 'copy',
  })),
);

// ---------------------------------------------------------------- run

// Filled as variants are first measured: the table follows the order they ran in.
const outcomes = new Map<string, Outcome<Variant, Measured>>();
const failures: string[] = [];

async function measure(variant: Variant, rows: readonly EventRow[]): Promise<void> {
  const outcome = outcomes.get(variant.key) ?? { variant, runs: [] };
  outcomes.set(variant.key, outcome);
  await measureOnce(
    outcome,
    failures,
    () => variant.run(rows),
    (m) => `${fmt(m.eps, 0)} rows/s in ${fmt(m.seconds, 2)} s`,
  );
}

const selected = (variants: Variant[]) => variants.filter((v) => !ONLY || ONLY.includes(v.key));

async function main(): Promise<void> {
  await ensureReachable();
  console.error(`ingest bench: ${N.toLocaleString('en-US')} rows${QUICK ? ' (quick)' : ''}; generating rows…`);
  const rows = makeEventRows(N, { seed: 1 });
  const warmRows = makeEventRows(WARMUP_N, { seed: 2, endMs: Date.now() - 86_400_000 });

  console.error('warm-up');
  for (const v of selected([...HEADLINE, ...EXTRAS])) {
    try {
      await v.run(warmRows);
    } catch (error) {
      console.error(`  warm-up of ${v.key} failed: ${(error as Error).message}`);
    }
  }

  // Raw and Tally alternate (ABBA…), so drift in the machine's state hits both alike.
  for (let rep = 0; rep < REPS; rep++) {
    console.error(`headline, repetition ${rep + 1}/${REPS}`);
    const order = rep % 2 === 0 ? selected(HEADLINE) : selected(HEADLINE).reverse();
    for (const v of order) await measure(v, rows);
  }
  console.error('extras');
  for (const v of selected(EXTRAS)) await measure(v, rows);
  console.error('writer sweep');
  for (const v of selected(SWEEP)) await measure(v, rows);
}

// ---------------------------------------------------------------- report

function eps(key: string): number | null {
  return outcomes.get(key)?.best?.eps ?? null;
}

function ratioOf(key: string, baseline: string | undefined): number | null {
  const a = eps(key);
  const b = baseline ? eps(baseline) : null;
  return a === null || b === null || b <= 0 ? null : a / b;
}

function report(): void {
  const header = ['variant', 'rows/s', '× raw', 'target', 'seconds', 'node cpu s', 'other cpu s', 'runs (rows/s)'];
  const table: string[][] = [];
  let section = '';
  for (const o of outcomes.values()) {
    const v = o.variant;
    if (v.section !== section) {
      section = v.section;
      table.push([`${section}${section === 'Postgres' || section === 'PGlite' ? ` (${N / 1000}k rows)` : ''}`]);
    }
    const r = ratioOf(v.key, v.baseline);
    const verdict =
      v.target === undefined ? '' : r === null ? `≥ ${v.target}` : `≥ ${v.target} ${r >= v.target ? 'ok' : 'MISSED'}`;
    table.push([
      `  ${v.label}`,
      o.error ? 'FAILED' : fmt(o.best?.eps, 0),
      v.baseline ? fmt(r, 2) : '1.00',
      verdict,
      fmt(o.best?.seconds, 2),
      fmt(o.best?.nodeCpu, 1),
      fmt(o.best?.otherCpu, 1),
      o.runs.map((m) => fmt(m.eps, 0)).join(', '),
    ]);
  }
  console.log('');
  printTable(header, table, [0, 7]);
  console.log('');

  const sweep = SWEEP.map((v) => ({ v, eps: eps(v.key) })).filter((s) => s.eps !== null);
  const best = sweep.sort((a, b) => (b.eps ?? 0) - (a.eps ?? 0))[0];
  if (best) console.log(`fastest writer setting: ${best.v.label} (${fmt(best.eps, 0)} rows/s)`);
  for (const f of failures) console.log(`FAILED ${f}`);

  const pgRatio = round(ratioOf('pg', 'copy'), 2);
  console.log(
    JSON.stringify({
      bench: 'ingest',
      rows: N,
      pg_eps: round(eps('pg'), 0),
      copy_eps: round(eps('copy'), 0),
      pg_ratio: pgRatio,
      pglite_eps: round(eps('pglite'), 0),
      pglite_raw_eps: round(eps('pglite_raw'), 0),
      pglite_ratio: round(ratioOf('pglite', 'pglite_raw'), 2),
      staging_eps: round(eps('staging_1000'), 0),
      unnest_eps: round(eps('unnest_1000'), 0),
      store_eps: round(eps('store_1000'), 0),
      staging_5000_eps: round(eps('staging_5000'), 0),
      unnest_5000_eps: round(eps('unnest_5000'), 0),
      writer_best: best ? best.v.key.replace('writer_', '') : null,
      writer_best_eps: round(best?.eps, 0),
      ratio: pgRatio,
    }),
  );
}

await runBench({ main, cleanup, report, failures });
