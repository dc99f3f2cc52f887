/**
 * ClickHouse as the DetailStore of the lifecycle jobs and the export (core's detail-store.ts). The
 * archive files and their manifests are the same as with the relational store (the manifests stay
 * there); what differs is how a verified day leaves:
 * - a day partition (`toYYYYMMDD(ts)`) whose rows are all archived and verified, every tenant's, goes
 *   with `ALTER TABLE … DROP PARTITION`: instant, nothing rewritten;
 * - otherwise a tenant's day goes with one `ALTER TABLE … DELETE WHERE …` mutation per table and run
 *   (a mutation rewrites the parts it touches, so days are batched into one), waited for in
 *   `system.mutations`.
 * Deleting a tenant's day, not a list of ids, must not take a row the files do not hold (a late event
 * stored after the archive was made). So the day's ids are read first and compared with the files';
 * rows that are not in them are kept by the statement. That read and the statement run under the
 * store's insert lock (`serialize`): no insert falls between them, and a mutation never touches what is
 * inserted after it was made.
 *
 * Restore goes through the store's insert path, which stores an id only once. A day that loses events
 * is marked dirty for the hourly rollup (rollup.ts) before they go, under the same lock.
 */
import {
  DETAIL_TABLES,
  type DayPage,
  type DeleteMethod,
  type DeleteOptions,
  type DetailDay,
  type DetailStore,
  type DetailTable,
  type EventRow,
  type ExportCursor,
  type ExportKind,
  type ExportRow,
  type HotPaths,
  isoTime,
  LATENCY_BUCKETS_MS,
  type PartitionStats,
  type RequestLogRow,
  type TableStats,
  type VerifiedDay,
} from '@tally/core';
import type { ClickHouseClient } from './client.js';
import {
  EVENT_LINE_COLUMNS,
  eventArchiveLine,
  isoUtc,
  eventExportLine,
  eventFromArchive,
  type EventLineRow,
  REQUEST_LOG_LINE_COLUMNS,
  requestLogArchiveLine,
  requestLogExportLine,
  requestLogFromArchive,
  type RequestLogLineRow,
} from './lifecycle-lines.js';
import { markDirty } from './rollup.js';
import { serverVersion } from './schema.js';
import { ident, int, str } from './sql.js';
import type { Serialize } from './store.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

/** What the lifecycle needs of the ClickHouse store: its tables and its insert path. */
export interface ClickHouseDetailSource {
  readonly client: ClickHouseClient;
  readonly database: string;
  insertEvents(rows: readonly EventRow[]): Promise<string[]>;
  insertRequestLogs(rows: readonly RequestLogRow[]): Promise<string[]>;
  /** The lock its inserts run under, where the store exposes it (else pass `serialize` in the options). */
  readonly serialize?: Serialize;
  /** Builds the hourly counts of the days that are over (rollup.ts), where the source keeps them. */
  sealRollups?: DetailStore['sealRollups'];
}

export interface ClickHouseDetailOptions {
  /**
   * The lock the store's inserts run under (the very one the store was given): cleanup's read of a
   * day's ids and its delete hold it, so no insert falls between them. Cleanup refuses to run without.
   */
  serialize?: Serialize;
  /** Longest wait for a delete mutation to finish, ms. Default 600 000. */
  mutationTimeoutMs?: number;
  /** Between looks at `system.mutations`, ms. Default 100 (growing to 2 s). */
  mutationPollMs?: number;
}

/**
 * Ids per literal array in a statement. The server parses at most `max_query_size` (256 KiB) of a
 * statement's text and an id literal is ~40 bytes: 2000 keep a statement near 80 KiB.
 */
const IDS_PER_STATEMENT = 2000;
/** Conditions per DELETE statement, for the same reason. */
const STATEMENT_BYTES = 150_000;

/** A set of string literals for `IN` (never empty here). */
const set = (values: readonly string[]): string => `(${values.map(str).join(', ')})`;

/** `YYYY-MM-DD` as the partition value `YYYYMMDD`. */
const partitionOf = (day: string): number => {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new RangeError(`not a day: ${day}`);
  return Number(day.replaceAll('-', ''));
};
const dayOf = (partition: number | string): string => {
  const s = String(partition);
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}`;
};
/** Epoch seconds of a UTC day's midnight. */
const secondsOf = (day: string): number => Date.parse(`${day}T00:00:00Z`) / 1000;

/** Rows of one tenant's UTC day: the ts range prunes partitions on every version. */
const tenantDay = (tenantId: string, day: string): string => {
  const s = secondsOf(day);
  return `tenant_id = ${str(tenantId)} AND ts >= toDateTime(${int(s)}) AND ts < toDateTime(${int(s + 86_400)})`;
};

/** The keyset cursor of a day page: the sorting key after tenant_id (events: name, ts_ms, id). */
type DayCursor = [string, number, string] | [number, string];

export function createClickHouseDetail(
  source: ClickHouseDetailSource,
  options: ClickHouseDetailOptions = {},
): DetailStore {
  const { client } = source;
  const db = ident(source.database);
  const lock = options.serialize ?? source.serialize;
  const serialize: Serialize = <T>(fn: () => Promise<T>): Promise<T> => {
    if (!lock) {
      throw new Error(
        "the ClickHouse lifecycle deletes only under the store's insert lock: give createClickHouseDetail the store's serialize",
      );
    }
    return lock(fn);
  };
  const tableOf = (t: DetailTable): string => {
    if (!DETAIL_TABLES.includes(t)) throw new RangeError(`not a detail table: ${t}`);
    return `${db}.${t}`;
  };
  let failReason: Promise<boolean> | undefined;
  /** Whether system.mutations says why a mutation fails (`latest_fail_reason`, from 19.x on). */
  const knowsFailReason = () => (failReason ??= serverVersion(client).then((v) => v.major >= 20));

  async function waitForMutations(table: DetailTable): Promise<void> {
    const timeout = options.mutationTimeoutMs ?? 600_000;
    const started = Date.now();
    let pause = options.mutationPollMs ?? 100;
    const withReason = await knowsFailReason();
    for (;;) {
      const pending = await client.query<{ id: string; reason?: string }>(
        `SELECT mutation_id AS id${withReason ? ', latest_fail_reason AS reason' : ''} FROM system.mutations
         WHERE database = ${str(db)} AND table = ${str(table)} AND is_done = 0`,
      );
      if (pending.length === 0) return;
      const failing = pending.find((m) => m.reason);
      if (failing) throw new Error(`ClickHouse mutation ${failing.id} on ${db}.${table} fails: ${failing.reason}`);
      if (Date.now() - started > timeout) {
        throw new Error(
          `ClickHouse mutations ${pending.map((m) => m.id).join(', ')} on ${db}.${table} did not finish in ${timeout} ms; the next cleanup verifies and deletes again`,
        );
      }
      await new Promise((r) => setTimeout(r, pause));
      pause = Math.min(pause * 2, 2000);
    }
  }

  interface Planned {
    day: VerifiedDay;
    deleted: number;
    method: DeleteMethod;
  }

  /**
   * Under the insert lock: what each day's rows are, which partitions go whole, and the DELETE
   * statements for the rest, submitted. Returns what each day will have lost once they finish.
   */
  async function planAndSubmit(table: DetailTable, days: readonly VerifiedDay[]): Promise<Planned[]> {
    const t = tableOf(table);
    const partitions = [...new Set(days.map((d) => partitionOf(d.day)))];
    const present = await client.query<{ day: number; tenant_id: string; n: number }>(
      `SELECT toYYYYMMDD(ts) AS day, tenant_id, count() AS n FROM ${t}
       WHERE toYYYYMMDD(ts) IN (${partitions.map(int).join(', ')}) GROUP BY day, tenant_id`,
    );
    const counts = new Map(present.map((r) => [`${r.tenant_id}\0${dayOf(r.day)}`, Number(r.n)]));
    /** Per day: how many rows are stored, and the ids among them that its files do not hold. */
    const found = new Map<VerifiedDay, { stored: number; extra: string[] }>();
    for (const d of days) {
      if ((counts.get(`${d.tenantId}\0${d.day}`) ?? 0) === 0) {
        found.set(d, { stored: 0, extra: [] });
        continue;
      }
      const archived = new Set(d.ids.map((id) => id.toLowerCase()));
      const stored = await client.query<{ id: string }>(
        `SELECT toString(id) AS id FROM ${t} WHERE ${tenantDay(d.tenantId, d.day)}`,
      );
      found.set(d, { stored: stored.length, extra: stored.map((r) => r.id).filter((id) => !archived.has(id)) });
    }
    const of = (d: VerifiedDay) => found.get(d) as { stored: number; extra: string[] };

    // A partition goes whole when every tenant with rows in it is a day here with nothing extra.
    const whole = new Set<number>();
    for (const p of partitions) {
      const here = days.filter((d) => partitionOf(d.day) === p);
      const tenants = present.filter((r) => Number(r.day) === p);
      const covered = tenants.every((r) => here.some((d) => d.tenantId === r.tenant_id && of(d).extra.length === 0));
      if (tenants.length > 0 && covered) whole.add(p);
    }

    const planned: Planned[] = [];
    const conditions: string[] = [];
    for (const d of days) {
      const { stored, extra } = of(d);
      const p = partitionOf(d.day);
      if (stored === 0) {
        planned.push({ day: d, deleted: 0, method: 'tenant-day' });
        continue;
      }
      if (whole.has(p)) {
        planned.push({ day: d, deleted: stored, method: 'partition' });
        continue;
      }
      const head = `tenant_id = ${str(d.tenantId)} AND toYYYYMMDD(ts) = ${int(p)}`;
      // IN builds a hash set of the literals once; has() scans its array for every row (20× slower on 18.16).
      if (extra.length === 0) conditions.push(`(${head})`);
      else if (extra.length <= IDS_PER_STATEMENT) conditions.push(`(${head} AND toString(id) NOT IN ${set(extra)})`);
      else {
        // Many rows came after the archive: name the archived ones instead, a batch a condition.
        const ids = d.ids.map((id) => id.toLowerCase());
        for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT)
          conditions.push(`(${head} AND toString(id) IN ${set(ids.slice(i, i + IDS_PER_STATEMENT))})`);
      }
      planned.push({ day: d, deleted: stored - extra.length, method: 'tenant-day' });
    }

    // The hourly counts of a day that loses events no longer hold: marked dirty before the rows go.
    if (table === 'events') {
      const touched = planned.filter((p) => p.deleted > 0).map((p) => p.day);
      await markDirty(
        client,
        db,
        touched.map((d) => ({ tenantId: d.tenantId, day: Date.parse(`${d.day}T00:00:00Z`) / DAY })),
      );
    }
    for (const p of whole) await client.command(`ALTER TABLE ${t} DROP PARTITION ${int(p)}`);
    let statement: string[] = [];
    let bytes = 0;
    const submit = async () => {
      if (statement.length > 0) await client.command(`ALTER TABLE ${t} DELETE WHERE ${statement.join(' OR ')}`);
      statement = [];
      bytes = 0;
    };
    for (const c of conditions) {
      if (bytes + c.length > STATEMENT_BYTES) await submit();
      statement.push(c);
      bytes += c.length + 4;
    }
    await submit();
    return planned;
  }

  return {
    engine: 'clickhouse',
    ...(source.sealRollups ? { sealRollups: source.sealRollups } : {}),

    async oldDays(table: DetailTable, before: string): Promise<DetailDay[]> {
      const rows = await client.query<{ day: number; tenant_id: string; n: number }>(
        `SELECT toYYYYMMDD(ts) AS day, tenant_id, count() AS n FROM ${tableOf(table)}
         WHERE ts < toDateTime(${int(Math.floor(Date.parse(before) / 1000))})
         GROUP BY day, tenant_id ORDER BY day, tenant_id`,
      );
      return rows.map((r) => ({ tenantId: r.tenant_id, table, day: dayOf(r.day), rows: Number(r.n) }));
    },

    async readDayPage(table, tenantId, day, after, limit): Promise<DayPage> {
      const t = tableOf(table);
      const cursor = after === undefined ? undefined : (JSON.parse(after) as DayCursor);
      if (table === 'events') {
        const c = cursor as [string, number, string] | undefined;
        const rows = await client.query<EventLineRow>(
          `SELECT ${EVENT_LINE_COLUMNS} FROM ${t} WHERE ${tenantDay(tenantId, day)}
           ${c ? `AND (name, ts_ms, id) > (${str(c[0])}, ${int(c[1])}, toUUID(${str(c[2])}))` : ''}
           ORDER BY name, ts_ms, id LIMIT ${int(limit)}`,
        );
        const last = rows[rows.length - 1];
        return {
          lines: rows.map((r) => ({ id: r.uuid, line: eventArchiveLine(r), ts: isoUtc(r.ts_ms) })),
          ...(rows.length === limit && last ? { next: JSON.stringify([last.name, last.ts_ms, last.uuid]) } : {}),
        };
      }
      const c = cursor as [number, string] | undefined;
      const rows = await client.query<RequestLogLineRow>(
        `SELECT ${REQUEST_LOG_LINE_COLUMNS} FROM ${t} WHERE ${tenantDay(tenantId, day)}
         ${c ? `AND (ts_ms, id) > (${int(c[0])}, toUUID(${str(c[1])}))` : ''}
         ORDER BY ts_ms, id LIMIT ${int(limit)}`,
      );
      const last = rows[rows.length - 1];
      return {
        lines: rows.map((r) => ({ id: r.uuid, line: requestLogArchiveLine(r), ts: isoUtc(r.ts_ms) })),
        ...(rows.length === limit && last ? { next: JSON.stringify([last.ts_ms, last.uuid]) } : {}),
      };
    },

    async deleteArchived(days: readonly VerifiedDay[], options: DeleteOptions): Promise<number> {
      let total = 0;
      for (const table of DETAIL_TABLES) {
        const mine = days.filter((d) => d.table === table);
        if (mine.length === 0) continue;
        const planned = await serialize(() => planAndSubmit(table, mine));
        // Outside the lock: inserts go on while the mutation rewrites the parts it touches.
        if (planned.some((p) => p.method === 'tenant-day' && p.deleted > 0)) await waitForMutations(table);
        for (const p of planned) {
          await options.onDeleted(p.day, p.deleted, p.method);
          total += p.deleted;
        }
      }
      return total;
    },

    async restoreLines(table: DetailTable, lines: readonly string[]): Promise<number> {
      if (table === 'events') return (await source.insertEvents(lines.map(eventFromArchive))).length;
      if (table === 'request_logs') return (await source.insertRequestLogs(lines.map(requestLogFromArchive))).length;
      throw new RangeError(`not a detail table: ${String(table)}`);
    },

    async tableStats(): Promise<TableStats[]> {
      const parts = await client.query<{
        table: string;
        partition: string;
        rows: number;
        bytes: number;
        compressed: number;
        uncompressed: number;
        marks: number;
        pk: number;
        parts: number;
      }>(
        `SELECT table, partition, sum(rows) AS rows, sum(bytes_on_disk) AS bytes,
                sum(data_compressed_bytes) AS compressed, sum(data_uncompressed_bytes) AS uncompressed,
                sum(marks_bytes) AS marks, sum(primary_key_bytes_in_memory) AS pk, count() AS parts
         FROM system.parts
         WHERE database = ${str(db)} AND active AND table IN (${DETAIL_TABLES.map(str).join(', ')})
         GROUP BY table, partition ORDER BY table, partition`,
      );
      const out: TableStats[] = [];
      for (const table of DETAIL_TABLES) {
        const mine = parts.filter((p) => p.table === table);
        const [span] = await client.query<{ oldest: number; newest: number; n: number }>(
          `SELECT min(ts_ms) AS oldest, max(ts_ms) AS newest, count() AS n FROM ${tableOf(table)}`,
        );
        const n = Number(span?.n ?? 0);
        const second = (ms: number | undefined) => (n > 0 && ms !== undefined ? `${isoTime(ms).slice(0, 19)}Z` : null);
        const sum = (f: (p: (typeof parts)[number]) => number) => mine.reduce((a, p) => a + Number(f(p)), 0);
        const partitions: PartitionStats[] = mine.map((p) => ({
          partition: p.partition,
          rows: Number(p.rows),
          bytes: Number(p.bytes),
          uncompressedBytes: Number(p.uncompressed),
          parts: Number(p.parts),
        }));
        out.push({
          table,
          engine: 'clickhouse',
          rows: sum((p) => p.rows),
          tableBytes: sum((p) => p.compressed),
          indexBytes: sum((p) => p.marks) + sum((p) => p.pk),
          totalBytes: sum((p) => p.bytes),
          uncompressedBytes: sum((p) => p.uncompressed),
          parts: sum((p) => p.parts),
          oldest: second(span?.oldest),
          newest: second(span?.newest),
          partitions,
        });
      }
      return out;
    },

    async hotPaths(limit: number): Promise<HotPaths> {
      // The hours whose start is within the last 24 h, as the relational store reads its hourly rollups.
      const since = Math.ceil((Date.now() - DAY) / HOUR) * HOUR;
      const recent = `ts >= toDateTime(${int(Math.floor(since / 1000))}) AND ts_ms >= ${int(since)}`;
      const events = await client.query<{ tenant_id: string; name: string; count: number }>(
        `SELECT tenant_id, name, count() AS count FROM ${db}.events WHERE ${recent}
         GROUP BY tenant_id, name ORDER BY tenant_id, count DESC, name LIMIT ${int(limit)} BY tenant_id`,
      );
      // Bucket i counts durations <= bound i and above the bound before it (Prometheus' `le`), as the
      // relational rollup's histogram does; the last bucket takes the rest.
      const bounds = [...LATENCY_BUCKETS_MS];
      const buckets = [
        ...bounds.map((b, i) =>
          i === 0 ? `countIf(duration_ms <= ${b})` : `countIf(duration_ms > ${bounds[i - 1]} AND duration_ms <= ${b})`,
        ),
        `countIf(duration_ms > ${bounds[bounds.length - 1]})`,
      ];
      const paths = await client.query<{
        tenant_id: string;
        method: string;
        route: string;
        count: number;
        e5: number;
        e4: number;
        buckets: number[];
      }>(
        `SELECT tenant_id, method, if(route = '', '(unmatched)', route) AS route, count() AS count,
                countIf(status >= 500) AS e5, countIf(status >= 400 AND status < 500) AS e4,
                [${buckets.join(', ')}] AS buckets
         FROM ${db}.request_logs WHERE ${recent}
         GROUP BY tenant_id, method, route ORDER BY tenant_id, count DESC, method, route LIMIT ${int(limit)} BY tenant_id`,
      );
      const out: HotPaths = {};
      const of = (t: string) => (out[t] ??= { events: [], paths: [] });
      for (const e of events) of(e.tenant_id).events.push({ name: e.name, count: Number(e.count) });
      for (const p of paths) {
        const count = Number(p.count);
        of(p.tenant_id).paths.push({
          method: p.method,
          route: p.route,
          count,
          errorRate: count === 0 ? 0 : Number(p.e5) / count,
          clientErrorRate: count === 0 ? 0 : Number(p.e4) / count,
          buckets: p.buckets.map(Number),
        });
      }
      return out;
    },

    async exportPage(
      tenantId: string,
      kind: ExportKind,
      from: ExportCursor,
      to: string,
      limit: number,
    ): Promise<ExportRow[]> {
      const fromMs = Date.parse(from.ts);
      const toMs = Date.parse(to);
      // ts (whole seconds) prunes partitions; ts_ms is the exact range.
      const range = `tenant_id = ${str(tenantId)}
        AND ts >= toDateTime(${int(Math.floor(fromMs / 1000))}) AND ts < toDateTime(${int(Math.ceil(toMs / 1000) + 1)})
        AND ts_ms >= ${int(fromMs)} AND ts_ms < ${int(toMs)}
        ${from.id === null ? '' : `AND (ts_ms, id) > (${int(fromMs)}, toUUID(${str(from.id)}))`}`;
      if (kind === 'events') {
        const rows = await client.query<EventLineRow>(
          `SELECT ${EVENT_LINE_COLUMNS} FROM ${db}.events WHERE ${range} ORDER BY ts_ms, id LIMIT ${int(limit)}`,
        );
        return rows.map((r) => ({ ts: isoUtc(r.ts_ms), id: r.uuid, line: eventExportLine(r) }));
      }
      const rows = await client.query<RequestLogLineRow>(
        `SELECT ${REQUEST_LOG_LINE_COLUMNS} FROM ${db}.request_logs WHERE ${range} ORDER BY ts_ms, id LIMIT ${int(limit)}`,
      );
      return rows.map((r) => ({ ts: isoUtc(r.ts_ms), id: r.uuid, line: requestLogExportLine(r) }));
    },
  };
}
