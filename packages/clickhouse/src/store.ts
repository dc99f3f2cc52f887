/**
 * The ClickHouse analytics store: events and request logs, stored exactly once, and the query engine.
 *
 * Exactly once without transactions or unique keys. ClickHouse has neither, and a materialized view
 * counts what is inserted, duplicates included. So the store keeps one rule: no id is ever inserted
 * twice. Answers come from the detail rows, or for plain counts from hourly counts a job builds from
 * them once a day is over (rollup.ts); an insert into such a day marks it dirty first.
 * - Every insert first reads which of its ids are already stored (by tenant, name and the batch's time
 *   ranges: the sorting key's prefix and the partition key, so it reads a few granules, not the table;
 *   see presentIds) and inserts the others.
 *   The ids it inserts are what it returns: the writer's `stored` and `duplicates` mean what they do on
 *   Postgres.
 * - Inserts into one database run one at a time (`serialize`): in-process by default; `tally serve`
 *   processes sharing a Postgres control plane pass an advisory lock. Without that, two writers could
 *   both find an id absent and both insert it.
 * - An insert of fewer rows than `max_insert_block_size` (~1M) writes one part per day partition,
 *   atomically. A process killed mid-insert leaves each day wholly in or out; its batch comes back
 *   (NATS redelivers, the pending spool re-ingests) and the read finds which rows are already there.
 * - The tables are ReplacingMergeTree keyed by id: should a second copy get in some other way (two
 *   deployments writing one database without a shared lock), merges remove it, and `duplicates()`
 *   reports it until they have.
 */
import type {
  AnalyticsStore,
  RollupDimensions,
  EventRow,
  HistoryItem,
  HistoryQuery,
  Query,
  QueryOptions,
  QueryResult,
  RequestLogDetail,
  RequestLogRow,
  StoreTotals,
} from '@tally/core';
import type { ClickHouseClient } from './client.js';
import { requestHistory, requestLog } from './history.js';
import { runQuery } from './query/run.js';
import type { InsertFormat } from './row-writer.js';
import {
  EVENT_COLUMNS,
  type EncodedRows,
  eventEncoder,
  pickRows,
  REQUEST_LOG_COLUMNS,
  type RowEncoder,
  requestLogEncoder,
} from './rows.js';
import { daysOf, markDirty, type SealResult, sealDays } from './rollup.js';
import { migrate } from './schema.js';
import { ident, int, str } from './sql.js';

/** Runs `fn` while no other insert into the same database runs. */
export type Serialize = <T>(fn: () => Promise<T>) => Promise<T>;

export interface ClickHouseStoreOptions {
  client: ClickHouseClient;
  /** Database of the tables (created by migrate). Default `tally`. */
  database?: string;
  /** Mutual exclusion of inserts across processes; default: within this process only. */
  serialize?: Serialize;
  /**
   * Top-level properties counted per value in the hourly rollup, by event name (the server passes the
   * catalog's enums and booleans): a trends breakdown by one of them reads sealed days from the rollup.
   */
  dimensions?: RollupDimensions;
}

export interface ClickHouseStore extends AnalyticsStore {
  readonly kind: 'clickhouse';
  readonly client: ClickHouseClient;
  readonly database: string;
  /** The lock every insert runs under: whatever must not fall between a check and its insert takes it too. */
  readonly serialize: Serialize;
  migrate(): Promise<{ applied: string[] }>;
  /** Rows stored more than once per table (0 unless something bypassed the store; see the module comment). */
  duplicates(): Promise<{ events: number; requestLogs: number }>;
  /** Builds the hourly counts of the days that are over and not built yet, or marked dirty (rollup.ts). */
  sealRollups(options?: {
    now?: number;
    signal?: AbortSignal;
    onProgress?: (line: string) => void;
  }): Promise<SealResult>;
}

/** A mutex: each call runs after the previous one settles. */
export function localSerialize(): Serialize {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

interface Keyed {
  id: string;
  tenantId: string;
  name?: string;
}

/**
 * Ids per statement when they are listed: a statement must stay under the server's max_query_size
 * (256 KiB by default; chDB takes no setting for it in the statement). 2000 ids are ~82 KiB, leaving
 * room for the ranges.
 */
const CHECK_ROWS = 2000;
/**
 * Ranges beyond one per (tenant, name): a group's times are cut at the widest gaps of the batch, if
 * wider than MIN_GAP_MS. Each range costs 18.16 some milliseconds of index analysis per part (66
 * ranges took ~300 ms where 17 took ~45 ms, over 50 parts), so a few cuts go where they save the most
 * rows: around a late event, hours or days from its group's others.
 */
const MAX_CUTS = 16;
const MIN_GAP_MS = 600_000;
/** Longest range condition the first read sends; a batch of very many groups lists its ids instead. */
const MAX_RANGE_SQL = 64 * 1024;
/** Stored rows the range read takes, at least; past it (or twice the batch), the ids are listed instead. */
const RANGE_READ_ROWS = 10_000;

/**
 * Which of `rows`' ids `table` holds (lower case), found in the key ranges the batch touches: per tenant
 * and name (request logs: per tenant), its rows' times cut where they leave a gap, so that a late event
 * does not widen its group to days of rows.
 *
 * First every id stored in those ranges is read, up to a bound: a batch of fresh events finds few rows
 * there (events arrive roughly in time order), and no id is sent. 20 000 ids as literals are ~800 KiB
 * of SQL, which costs 18.16 more to parse than the read; the read names the partitions too (by `ts`),
 * so other days' parts are not looked at. Only when the ranges hold more rows than the bound (a batch
 * replayed from a spool, events spread over hours of busy traffic) are the batch's ids listed, in
 * statements of CHECK_ROWS.
 */
async function presentIds(
  client: ClickHouseClient,
  table: string,
  rows: readonly Keyed[],
  times: Float64Array,
  byName: boolean,
) {
  const present = new Set<string>();
  const ranges = rangeCondition(keyGroups(rows, times, byName));
  const bound = Math.max(RANGE_READ_ROWS, 2 * rows.length);
  if (ranges.length <= MAX_RANGE_SQL) {
    const stored = await client.query<{ id: string }>(
      `SELECT toString(id) AS id FROM ${table} WHERE ${ranges} LIMIT ${int(bound + 1)}`,
    );
    if (stored.length <= bound) {
      for (const r of stored) present.add(r.id);
      return present;
    }
  }
  for (let i = 0; i < rows.length; i += CHECK_ROWS) {
    const chunk = rows.slice(i, i + CHECK_ROWS);
    const chunkTimes = times.subarray(i, i + CHECK_ROWS);
    // A chunk of very many names is bounded by tenant and time only: a wider read, a statement that fits.
    let chunkRanges = rangeCondition(keyGroups(chunk, chunkTimes, byName));
    if (chunkRanges.length > MAX_RANGE_SQL) chunkRanges = rangeCondition(keyGroups(chunk, chunkTimes, false));
    // IN builds a hash set once (of UUIDs: the literals are converted, not every id read to text).
    const ids = [...new Set(chunk.map((r) => str(r.id.toLowerCase())))].join(', ');
    const found = await client.query<{ id: string }>(
      `SELECT DISTINCT toString(id) AS id FROM ${table} WHERE ${chunkRanges} AND id IN (${ids})`,
    );
    for (const r of found) present.add(r.id);
  }
  return present;
}

interface KeyGroup {
  head: string;
  /** The group's rows' times, ascending. */
  times: number[];
}

/** `rows` by tenant (and name), each with its rows' times (`times`, by position) in order. */
function keyGroups(rows: readonly Keyed[], times: Float64Array, byName: boolean): KeyGroup[] {
  // Tenant, then name: no key string built per row.
  const tenants = new Map<string, Map<string | undefined, KeyGroup>>();
  const out: KeyGroup[] = [];
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as Keyed;
    let names = tenants.get(r.tenantId);
    if (!names) tenants.set(r.tenantId, (names = new Map()));
    const name = byName ? r.name : undefined;
    let g = names.get(name);
    if (!g) {
      const head = `tenant_id = ${str(r.tenantId)}${byName ? ` AND name = ${str(r.name as string)}` : ''}`;
      names.set(name, (g = { head, times: [] }));
      out.push(g);
    }
    g.times.push(times[i] as number);
  }
  for (const g of out) g.times.sort((a, b) => a - b);
  return out;
}

/** Seconds a DateTime holds (UInt32): within them `ts` follows ts_ms, and a partition is named by it. */
const DATETIME_MS = 2 ** 32 * 1000;

/** The key ranges of `groups`: one per group, cut at the batch's MAX_CUTS widest gaps over MIN_GAP_MS. */
function rangeCondition(groups: readonly KeyGroup[]): string {
  const gaps: number[] = [];
  for (const g of groups)
    for (let i = 1; i < g.times.length; i++) {
      const gap = (g.times[i] as number) - (g.times[i - 1] as number);
      if (gap > MIN_GAP_MS) gaps.push(gap);
    }
  // Cut at gaps wider than `over`: the MAX_CUTS widest (fewer where gaps tie).
  const over = gaps.length <= MAX_CUTS ? MIN_GAP_MS : (gaps.sort((x, y) => y - x)[MAX_CUTS] as number);
  const terms: string[] = [];
  const term = (head: string, lo: number, hi: number) => {
    // ts (the partition key, a DateTime of ts_ms's seconds) bounded too: other days' parts are skipped.
    const partition =
      lo >= 0 && hi < DATETIME_MS
        ? ` AND ts BETWEEN toDateTime(${int(Math.floor(lo / 1000))}, 'UTC') AND toDateTime(${int(Math.floor(hi / 1000))}, 'UTC')`
        : '';
    terms.push(`(${head} AND ts_ms BETWEEN ${int(lo)} AND ${int(hi)}${partition})`);
  };
  for (const g of groups) {
    const times = g.times;
    let lo = times[0] as number;
    for (let i = 1; i < times.length; i++) {
      if ((times[i] as number) - (times[i - 1] as number) > over) {
        term(g.head, lo, times[i - 1] as number);
        lo = times[i] as number;
      }
    }
    term(g.head, lo, times[times.length - 1] as number);
  }
  return `(${terms.join(' OR ')})`;
}

/** Rows encoded between turns of the event loop: ~5 ms of work each. */
const ENCODE_SLICE = 1000;

/**
 * Encodes all of `encoder`'s rows, a slice at a time, letting the event loop run between slices. The
 * insert holding the lock meanwhile waits on the server, and its answer is taken at once instead of
 * after a whole batch's encoding: that wait is time the lock is held for nothing.
 */
async function encodeInSlices(encoder: RowEncoder): Promise<EncodedRows> {
  for (;;) {
    encoder.step(encoder.encoded + ENCODE_SLICE);
    if (encoder.encoded >= encoder.length) return encoder.finish();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Positions of the rows whose ids are neither stored nor earlier in the batch (a batch may carry one id twice). */
function fresh(rows: readonly Keyed[], present: Set<string>): number[] {
  const out: number[] = [];
  rows.forEach((r, i) => {
    const id = r.id.toLowerCase();
    if (present.has(id)) return;
    present.add(id);
    out.push(i);
  });
  return out;
}

export function createClickHouseStore(options: ClickHouseStoreOptions): ClickHouseStore {
  const client = options.client;
  const database = ident(options.database ?? 'tally');
  const serialize = options.serialize ?? localSerialize();
  const events = `${database}.events`;
  const requestLogs = `${database}.request_logs`;

  async function insert<R extends Keyed>(
    table: string,
    rows: readonly R[],
    byName: boolean,
    columns: readonly string[],
    encoder: (rows: readonly R[], format: InsertFormat) => RowEncoder,
  ): Promise<string[]> {
    if (rows.length === 0) return [];
    // Encoded before the lock (the previous batch's insert runs meanwhile), in the engine's fastest format.
    const encoded = await encodeInSlices(encoder(rows, client.insertFormat));
    return serialize(async () => {
      const todo = fresh(rows, await presentIds(client, table, rows, encoded.times, byName));
      if (todo.length === 0) return [];
      // Late events into a sealed day make it dirty first: its hourly counts no longer hold them.
      if (table === events) {
        const times = todo.map((i) => encoded.times[i] as number);
        await markDirty(
          client,
          database,
          daysOf(
            todo.map((i) => (rows[i] as R).tenantId),
            times,
          ),
        );
      }
      await client.insert(table, columns, pickRows(encoded, todo));
      return todo.map((i) => (rows[i] as R).id);
    });
  }

  return {
    kind: 'clickhouse',
    client,
    database,
    serialize,
    migrate: () => migrate(client, database),
    sealRollups: (o = {}) => sealDays(client, database, serialize, { ...o, dimensions: options.dimensions ?? {} }),
    insertEvents: (rows: readonly EventRow[]) => insert(events, rows, true, EVENT_COLUMNS, eventEncoder),
    insertRequestLogs: (rows: readonly RequestLogRow[]) =>
      insert(requestLogs, rows, false, REQUEST_LOG_COLUMNS, requestLogEncoder),
    requestHistory: (query: HistoryQuery): Promise<HistoryItem[]> => requestHistory(client, database, query),
    requestLog: (tenantId: string, userId: string | null, id: string): Promise<RequestLogDetail | undefined> =>
      requestLog(client, database, tenantId, userId, id),
    query: (tenantId: string, query: Query, queryOptions?: QueryOptions): Promise<QueryResult> =>
      runQuery(client, database, tenantId, query, { ...queryOptions, dimensions: options.dimensions ?? {} }),
    async totals(): Promise<StoreTotals> {
      const [row] = await client.query<{ events: number; logs: number }>(
        `SELECT (SELECT count() FROM ${events}) AS events, (SELECT count() FROM ${requestLogs}) AS logs`,
      );
      // The hourly counts are built from the detail rows and read only while they equal them (rollup.ts).
      const e = Number(row?.events ?? 0);
      const l = Number(row?.logs ?? 0);
      return { events: e, eventRollup: e, requestLogs: l, pathRollup: l };
    },
    async duplicates() {
      const [row] = await client.query<{ events: number; logs: number }>(
        `SELECT (SELECT count() - uniqExact(tenant_id, id) FROM ${events}) AS events,
                (SELECT count() - uniqExact(tenant_id, id) FROM ${requestLogs}) AS logs`,
      );
      return { events: Number(row?.events ?? 0), requestLogs: Number(row?.logs ?? 0) };
    },
    close: () => client.close(),
  };
}
