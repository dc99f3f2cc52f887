/**
 * The Store (types.ts) on an opened engine: the same SQL on PGlite and Postgres. Inserts are idempotent
 * by id, and each insert feeds its rollups from exactly the rows it inserted, in the same statement:
 * a redelivered batch inserts nothing and so counts nothing, and SUM(rollup) = COUNT(detail) always.
 */
import { CopyBuffer, copyValue } from './copy-text.js';
import { EVENT_ROW_BYTES, eventsBinary, REQUEST_LOG_ROW_BYTES, requestLogsBinary } from './copy-rows.js';
import {
  fallsBack,
  INSERT_PATH_STATS,
  MERGE_PATH_STATS,
  planDirect,
  planDirectLogs,
  refusesDirect,
  directRollup,
  ROLLUP_PATH_GROUPS,
} from './direct-copy.js';
import { requestHistory, requestLog } from './history.js';
import { migrate } from './migrate.js';
import { runQuery } from './query/run.js';
import type { RollupDimensions } from './query/types.js';
import {
  type DimensionMap,
  dimensionArrays,
  dimensionMap,
  activityFigures,
  EVENT_COUNTS_FIGURES,
  INSERT_ACTIVITY,
  INSERT_PROPS,
  latencyBucket,
  MERGE_ACTIVITY,
  MERGE_PROPS,
  PATH_STATS_FIGURES,
  propsFigures,
  registerActivity,
  registerDimensions,
} from './rollups.js';
import type { EventRow, RequestLogRow } from './rows.js';
import type { SqlClient } from './sql-client.js';
import { asTenantRole } from './tenant-role.js';
import type { Engine, Store } from './types.js';

const EVENT_COLUMNS = 'id, tenant_id, name, user_id, anonymous_id, properties, context, ts, received_at';

/**
 * Inserts the events `input` yields (EVENT_COLUMNS, as text) and rolls up exactly those inserted. The
 * casts are here, not in the input, so that a bad value fails this statement with its own SQLSTATE
 * (which the writer classifies) whichever way the rows came in.
 *
 * With `dims` (the parameter numbers of the dimensions' names and keys: a batch holding an event of a
 * name that has dimensions), the inserted rows' properties are rolled up too (rollups.ts); with
 * `activity` (the store keeps user_activity_hourly: StoreConfig.activityRollup), their user keys per hour.
 * The CTEs take event_counts_hourly, event_props_hourly and user_activity_hourly in that order, the order
 * rebuildRollups locks them in.
 */
const insertEventsFrom = (input: string, dims: [names: string, keys: string] | undefined, activity: boolean) => `
WITH input AS (${input}), ins AS (
  INSERT INTO events (${EVENT_COLUMNS})
  SELECT id::uuid, tenant_id, name, user_id, anonymous_id, properties::jsonb, context::jsonb, ts::timestamptz, received_at::timestamptz
  FROM input
  -- Sorted, so two writers inserting overlapping batches lock rows in the same order (no deadlock).
  ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id, tenant_id, name, ${activity ? 'user_id, anonymous_id, ' : ''}ts, context${dims ? ', properties' : ''}
), rollup AS (
  INSERT INTO event_counts_hourly AS r (tenant_id, name, hour, count, weighted)
  SELECT ${EVENT_COUNTS_FIGURES}
  FROM ins GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
  ON CONFLICT (tenant_id, name, hour)
  DO UPDATE SET count = r.count + EXCLUDED.count, weighted = r.weighted + EXCLUDED.weighted
)${
  dims
    ? `, props AS (
  ${INSERT_PROPS}
  ${propsFigures('ins e', dims[0], dims[1])}
  ORDER BY 1, 2, 3, 5, 4
  ${MERGE_PROPS}
)`
    : ''
}${
  activity
    ? `, activity AS (
  ${INSERT_ACTIVITY}
  ${activityFigures('ins')}
  -- Sorted, as the keys of event_counts_hourly above: concurrent writers wait on shared keys in one order.
  ORDER BY 1, 2, 3, 4
  ${MERGE_ACTIVITY}
)`
    : ''
}
SELECT id::text AS id FROM ins`;

/** The batch as nine text arrays, one per column (PGlite, which has no COPY from a stream). */
const UNNEST_EVENTS = `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
    AS t(${EVENT_COLUMNS})`;
/**
 * By [props][activity]: without and with the properties' rollup (the dimensions' names and keys are $10
 * and $11), and without and with user activity.
 */
const INSERT_EVENTS = [
  [insertEventsFrom(UNNEST_EVENTS, undefined, false), insertEventsFrom(UNNEST_EVENTS, undefined, true)],
  [insertEventsFrom(UNNEST_EVENTS, ['$10', '$11'], false), insertEventsFrom(UNNEST_EVENTS, ['$10', '$11'], true)],
] as const;

/**
 * A staging table for COPY (Postgres): the batch is COPYed in, then inserted from it by the very
 * statement the arrays feed on PGlite, in one transaction on one connection. COPY's text format costs
 * the client about half what encoding the arrays does, and the server less than unnesting them.
 * - Text columns, no constraints, no indexes: COPY only moves the text, so a bad value fails the INSERT
 *   with its exact SQLSTATE, as on PGlite (see insertEventsFrom).
 * - A temp table lives in the session: created once per pooled connection (IF NOT EXISTS, sent with the
 *   COPY in one message, so it costs no round trip), emptied by every commit (a rollback leaves nothing
 *   visible either). Named through pg_temp, so a table of the same name in the store's schema is never
 *   the one meant.
 */
interface Staging {
  copy: string;
  insert: string;
}

function staging(table: string, columns: string, insertFrom: (input: string) => string): Staging {
  const name = `pg_temp.${table}`;
  const textColumns = columns
    .split(', ')
    .map((c) => `${c} text`)
    .join(', ');
  return {
    copy: `CREATE TEMP TABLE IF NOT EXISTS ${name} (${textColumns}) ON COMMIT DELETE ROWS;
           COPY ${name} (${columns}) FROM STDIN`,
    insert: insertFrom(`SELECT ${columns} FROM ${name}`),
  };
}

/** By [props][activity], as INSERT_EVENTS; with properties, the dimensions' names and keys are $1 and $2. */
const stagedEvents = (dims: [string, string] | undefined, activity: boolean) =>
  staging('tally_staged_events', EVENT_COLUMNS, (input) => insertEventsFrom(input, dims, activity));
const EVENTS_STAGING = [
  [stagedEvents(undefined, false), stagedEvents(undefined, true)],
  [stagedEvents(['$1', '$2'], false), stagedEvents(['$1', '$2'], true)],
] as const;
/** A batch of new events straight into the table (direct-copy.ts; Postgres, and PGlite on disk). */
const DIRECT_COPY = `COPY events (${EVENT_COLUMNS}) FROM STDIN`;

const REQUEST_LOG_COLUMNS =
  `id, tenant_id, request_id, method, route, url, status, duration_ms, request_bytes, response_bytes, user_id,
  api_key_id, ip, user_agent, headers, request_body, response_body, body_truncated, stream_body, aborted, error,
  ts, received_at`.replace(/\s+/g, ' ');

/** As insertEventsFrom, for request logs and their path stats. */
const insertRequestLogsFrom = (input: string) => `
WITH input AS (${input}), ins AS (
  INSERT INTO request_logs (${REQUEST_LOG_COLUMNS})
  SELECT id::uuid, tenant_id, request_id, method, route, url, status::int, duration_ms::float8, request_bytes::int,
    response_bytes::int, user_id, api_key_id, ip, user_agent, headers::jsonb, request_body, response_body,
    coalesce(body_truncated::bool, false), stream_body, coalesce(aborted::bool, false), error, ts::timestamptz,
    received_at::timestamptz
  FROM input ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id, tenant_id, method, route, status, duration_ms, ts
), bucketed AS (
  SELECT ins.*, ${latencyBucket('ins.duration_ms')} AS bucket
  FROM ins
), rollup AS (
  ${INSERT_PATH_STATS}
  SELECT ${PATH_STATS_FIGURES}
  FROM bucketed GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
  ${MERGE_PATH_STATS}
)
SELECT id::text AS id FROM ins`;

const INSERT_REQUEST_LOGS = insertRequestLogsFrom(
  `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::float8[],
                       $9::int[], $10::int[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
                       $17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[])
    AS t(${REQUEST_LOG_COLUMNS})`,
);

const REQUEST_LOGS_STAGING = staging('tally_staged_request_logs', REQUEST_LOG_COLUMNS, insertRequestLogsFrom);
const DIRECT_COPY_REQUEST_LOGS = `COPY request_logs (${REQUEST_LOG_COLUMNS}) FROM STDIN`;

/** A request log's values in REQUEST_LOG_COLUMNS order. */
function requestLogValues(r: RequestLogRow): (string | number | null)[] {
  return [
    r.id,
    r.tenantId,
    r.requestId ?? null,
    r.method,
    r.route ?? null,
    r.url,
    r.status,
    r.durationMs,
    r.requestBytes ?? null,
    r.responseBytes ?? null,
    r.userId ?? null,
    r.apiKeyId ?? null,
    r.ip ?? null,
    r.userAgent ?? null,
    r.headers === undefined ? null : JSON.stringify(r.headers),
    r.requestBody ?? null,
    r.responseBody ?? null,
    // Booleans travel as 't'/'f' text: postgres.js mis-types boolean arrays as a scalar boolean.
    r.bodyTruncated ? 't' : 'f',
    r.streamBody ?? null,
    r.aborted ? 't' : 'f',
    r.error ?? null,
    r.timestamp,
    r.receivedAt,
  ];
}

/** COPY the batch into its staging table and insert from there, in one transaction. */
function insertStaged(
  sql: SqlClient,
  { stage, params }: { stage: Staging; params?: readonly unknown[] },
  data: Uint8Array,
): Promise<string[]> {
  return sql.transaction(async (tx) => {
    await copyInto(tx, stage.copy, data);
    return (await tx.query<{ id: string }>(stage.insert, params)).map((r) => r.id);
  });
}

/**
 * The direct way for a batch: its COPY statement (text format), the batch in binary format when every
 * value encodes so (copy-binary.ts: nearly always), its rollup statement and the plan behind them.
 */
interface Direct {
  copy: string;
  binary: Uint8Array | undefined;
  rollup: string;
  /** The rollup statement's parameters: the plan's groups. */
  params: readonly unknown[];
  /** The plan's rows, in the order COPY sends them. */
  rows: readonly { id: string }[];
}

/**
 * COPY a batch of new rows straight into their table, in binary or else as `text()`, and roll them up, in
 * one transaction (direct-copy.ts).
 */
function insertDirect(sql: SqlClient, { copy, binary, rollup, params, rows }: Direct, text: () => Uint8Array) {
  return sql.transaction(async (tx) => {
    if (binary) await copyInto(tx, `${copy} (FORMAT binary)`, binary);
    else await copyInto(tx, copy, text());
    await tx.query(rollup, params);
    // COPY is all or nothing: having returned, it inserted every row.
    return rows.map((r) => r.id);
  });
}

function copyInto(tx: SqlClient, statement: string, data: Uint8Array): Promise<void> {
  if (!tx.copyIn) throw new Error('COPY is not available inside this transaction');
  return tx.copyIn(statement, data);
}

/**
 * JSON.stringify that remembers its last argument: events of one scope share one context object (the
 * SDK's per-scope context, a batch's context on the wire), so a batch serializes it once, not per row.
 */
function sharedJson(): (value: unknown) => string {
  let last: unknown;
  let json = '';
  return (value) => {
    if (value !== last) {
      last = value;
      json = JSON.stringify(value);
    }
    return json;
  };
}

/** The Store on an opened engine: the same SQL on every engine, COPY where the engine has it. */
export function buildStore(
  engine: Engine,
  options: { dimensions?: RollupDimensions; activityRollup?: boolean } = {},
): Store {
  const { kind, schema, sql, capabilities } = engine;
  // Events and request logs go by direct COPY (direct-copy.ts) until the server refuses it to this role.
  let direct = true;

  // The property rollup (rollups.ts) is kept for `options.dimensions` once they are registered in
  // rollup_dimensions (by migrate(), or before the first insert on a schema migrated elsewhere), never
  // before: what a reader finds registered is maintained by every insert since. On a schema not migrated
  // that far the store rolls up no properties until migrate() registers them.
  const wanted = dimensionMap(options.dimensions);
  let dims: DimensionMap = new Map();
  let dimParams: [string[], string[]] = [[], []];
  // The user activity rollup likewise: kept once rollup_coverage says from when it is complete, and a
  // store that does not keep it marks it so (registerActivity), whichever it is, at the same moments.
  const activityWanted = options.activityRollup === true;
  let activity = false;
  let registration: 'due' | 'done' | 'absent' = 'due';
  let registering: Promise<void> | undefined;
  const registerAll = async () => {
    let ok = true;
    if (options.dimensions !== undefined) {
      ok = await registerDimensions(sql, wanted);
      if (ok) {
        dims = wanted;
        dimParams = dimensionArrays(wanted);
      }
    }
    const found = await registerActivity(sql, activityWanted);
    activity = found && activityWanted;
    registration = ok && found ? 'done' : 'absent';
  };
  const register = () =>
    (registering ??= registerAll().finally(() => {
      registering = undefined;
    }));
  const hasDims = (rows: readonly EventRow[]) => dims.size > 0 && rows.some((r) => dims.has(r.name));

  /**
   * Stores a batch: the direct way when planned, else (or when that fails on the data) staged.
   * `makeText()` builds the batch's COPY text: at most once, and only if a COPY needs it.
   */
  async function copied(
    makeText: () => Uint8Array,
    staging: { stage: Staging; params?: readonly unknown[] },
    directly?: Direct,
  ): Promise<string[]> {
    let made: Uint8Array | undefined;
    const text = () => (made ??= makeText());
    if (directly) {
      try {
        return await insertDirect(sql, directly, text);
      } catch (error) {
        if (!fallsBack(error)) throw error;
        if (refusesDirect(error)) direct = false;
      }
    }
    return insertStaged(sql, staging, text());
  }

  return {
    kind,
    schema,
    capabilities,
    sql,
    async migrate() {
      const result = await migrate(sql);
      await register();
      return result;
    },

    async insertEvents(rows) {
      if (rows.length === 0) return [];
      if (registration === 'due') await register();
      const contextJson = sharedJson();
      if (sql.copyIn) {
        const plan = direct ? planDirect(rows, dims, activity) : undefined;
        // EVENT_COLUMNS order, as the arrays below. Written out rather than through a shared values array
        // (as request logs do): that measured 0.6–0.8 µs a row slower, ~3 % of the collector's CPU per event.
        const text = () => {
          const data = new CopyBuffer(rows.length * EVENT_ROW_BYTES);
          for (const r of plan?.rows ?? rows) {
            data.line(
              `${copyValue(r.id)}\t${copyValue(r.tenantId)}\t${copyValue(r.name)}\t${copyValue(r.userId)}\t` +
                `${copyValue(r.anonymousId)}\t${copyValue(JSON.stringify(r.properties))}\t` +
                `${copyValue(contextJson(r.context))}\t${copyValue(r.timestamp)}\t${copyValue(r.receivedAt)}\n`,
            );
          }
          return data.bytes();
        };
        const rollup = plan && directRollup(plan);
        const directly: Direct | undefined = plan &&
          rollup && {
            copy: DIRECT_COPY,
            binary: eventsBinary(plan.rows, contextJson),
            rollup: rollup.statement,
            params: rollup.params,
            rows: plan.rows,
          };
        const withDims = hasDims(rows);
        const stage = EVENTS_STAGING[withDims ? 1 : 0][activity ? 1 : 0];
        const staged = withDims ? { stage, params: dimParams } : { stage };
        return copied(text, staged, directly);
      }
      const cols: (string | null)[][] = [[], [], [], [], [], [], [], [], []];
      for (const r of rows) {
        cols[0]?.push(r.id);
        cols[1]?.push(r.tenantId);
        cols[2]?.push(r.name);
        cols[3]?.push(r.userId ?? null);
        cols[4]?.push(r.anonymousId ?? null);
        cols[5]?.push(JSON.stringify(r.properties));
        cols[6]?.push(contextJson(r.context));
        cols[7]?.push(r.timestamp);
        cols[8]?.push(r.receivedAt);
      }
      const withDims = hasDims(rows);
      const statement = INSERT_EVENTS[withDims ? 1 : 0][activity ? 1 : 0];
      const params = withDims ? [...cols, ...dimParams] : cols;
      return (await sql.query<{ id: string }>(statement, params)).map((r) => r.id);
    },

    async insertRequestLogs(rows) {
      if (rows.length === 0) return [];
      if (sql.copyIn) {
        const plan = direct ? planDirectLogs(rows) : undefined;
        const text = () => {
          const data = new CopyBuffer(rows.length * REQUEST_LOG_ROW_BYTES);
          for (const r of plan?.rows ?? rows) data.line(`${requestLogValues(r).map(copyValue).join('\t')}\n`);
          return data.bytes();
        };
        return copied(
          text,
          { stage: REQUEST_LOGS_STAGING },
          plan && {
            copy: DIRECT_COPY_REQUEST_LOGS,
            binary: requestLogsBinary(plan.rows),
            rollup: ROLLUP_PATH_GROUPS,
            params: plan.groups,
            rows: plan.rows,
          },
        );
      }
      const cols: unknown[][] = Array.from({ length: 23 }, () => []);
      for (const r of rows) {
        const values = requestLogValues(r);
        for (let i = 0; i < values.length; i++) cols[i]?.push(values[i]);
      }
      return (await sql.query<{ id: string }>(INSERT_REQUEST_LOGS, cols)).map((r) => r.id);
    },

    asTenant(tenantId, fn) {
      return sql.transaction(async (tx) => {
        await asTenantRole(tx, tenantId);
        return fn(tx);
      });
    },

    query: (tenantId, query, queryOptions) =>
      runQuery(engine.querySql ?? sql, tenantId, query, { ...queryOptions, dimensions: options.dimensions }),

    requestHistory: (query) => requestHistory(sql, query),
    requestLog: (tenantId, userId, id) => requestLog(sql, tenantId, userId, id),

    async totals() {
      const [row] = await sql.query<Record<string, string | number>>(
        `SELECT (SELECT count(*) FROM events) AS events,
                (SELECT coalesce(sum(count), 0) FROM event_counts_hourly) AS event_rollup,
                (SELECT count(*) FROM request_logs) AS request_logs,
                (SELECT coalesce(sum(count), 0) FROM path_stats_hourly) AS path_rollup`,
      );
      return {
        events: Number(row?.events),
        eventRollup: Number(row?.event_rollup),
        requestLogs: Number(row?.request_logs),
        pathRollup: Number(row?.path_rollup),
      };
    },

    close: () => engine.close(),
  };
}
