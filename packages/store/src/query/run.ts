/**
 * runQuery: a validated Query answered on one engine connection, as the tenant (row-level security
 * underneath the tenant filter every statement also has), under a statement timeout, in one read-only
 * transaction so that every statement of a multi-statement answer sees the same snapshot.
 */
import {
  DEFAULT_MAX_ROWS,
  DEFAULT_QUERY_TIMEOUT_MS,
  ErrorCodes,
  type Query,
  type QueryOptions,
  type QueryResult,
  resolveRange,
  TallyError,
} from '@tally/core';
import type { SqlClient } from '../sql-client.js';
import { asTenantRole } from '../tenant-role.js';
import { explore } from './explore.js';
import { funnel } from './funnel.js';
import { logs } from './logs.js';
import { retention } from './retention.js';
import { routes } from './routes.js';
import { trends } from './trends.js';
import type { KindAnswer, QueryContext, RollupDimensions } from './types.js';

function answer(query: Query, ctx: QueryContext): Promise<KindAnswer> {
  switch (query.kind) {
    case 'trends':
      return trends(query, ctx);
    case 'funnel':
      return funnel(query, ctx);
    case 'retention':
      return retention(query, ctx);
    case 'routes':
      return routes(query, ctx);
    case 'logs':
      return logs(query, ctx);
    case 'explore':
      return explore(query, ctx);
  }
}

/** Postgres' SQLSTATE for a statement cancelled by statement_timeout. */
const QUERY_CANCELED = '57014';

export async function runQuery(
  sql: SqlClient,
  tenantId: string,
  query: Query,
  options: QueryOptions & { dimensions?: RollupDimensions } = {},
): Promise<QueryResult> {
  const now = options.now ?? Date.now();
  const timeoutMs = options.timeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS;
  const { from, to } = resolveRange(query.range, query.tz, now);
  const started = performance.now();
  let result: KindAnswer;
  try {
    result = await sql.transaction(async (tx) => {
      // One snapshot for every statement of an answer, and nothing it could write.
      await tx.exec('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      // JIT compiling costs 200–300 ms per detail statement over a few hundred thousand rows and gains
      // nothing back at these sizes.
      await tx.exec('SET LOCAL jit = off');
      await asTenantRole(tx, tenantId);
      await tx.query(`SELECT set_config('statement_timeout', $1, true)`, [String(Math.max(1, Math.round(timeoutMs)))]);
      return answer(query, {
        sql: tx,
        tenantId,
        tz: query.tz,
        from,
        to,
        now,
        maxRows: options.maxRows ?? DEFAULT_MAX_ROWS,
        dimensions: options.dimensions ?? {},
        ...(options.listedEvents ? { listedEvents: new Set(options.listedEvents) } : {}),
      });
    });
  } catch (error) {
    if ((error as { code?: unknown }).code === QUERY_CANCELED) {
      throw new TallyError(
        ErrorCodes.QUERY_TIMEOUT,
        `the query ran longer than ${timeoutMs} ms and was cancelled; narrow its range or breakdown, or raise --query-timeout-ms`,
        { timeoutMs },
        { cause: error },
      );
    }
    throw error;
  }
  const ms = Math.round((performance.now() - started) * 10) / 10;
  return {
    columns: result.columns,
    rows: result.rows,
    meta: {
      source: result.source,
      ms,
      truncated: result.truncated ?? false,
      range: { from: new Date(from).toISOString(), to: new Date(to).toISOString() },
      ...(query.explain ? { explain: { source: result.source, reason: result.reason } } : {}),
      ...(result.next ? { next: result.next } : {}),
    },
  };
}
