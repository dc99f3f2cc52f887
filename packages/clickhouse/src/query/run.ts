/**
 * runQuery on ClickHouse: a validated Query answered from the tables of one tenant (every statement
 * filters on tenant_id, the sorting key's first column), under a time limit the server enforces
 * (`max_execution_time`).
 */
import {
  DEFAULT_MAX_ROWS,
  DEFAULT_QUERY_TIMEOUT_MS,
  ErrorCodes,
  type Query,
  type QueryOptions,
  type QueryResult,
  resolveRange,
  type RollupDimensions,
  TallyError,
} from '@tally/core';
import { type ClickHouseClient, ClickHouseQueryError } from '../client.js';
import { explore } from './explore.js';
import { funnel } from './funnel.js';
import { logs } from './logs.js';
import { retention } from './retention.js';
import { routes } from './routes.js';
import { trends } from './trends.js';
import type { KindAnswer, QueryContext } from './types.js';

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

/** TIMEOUT_EXCEEDED: the statement ran past max_execution_time. */
const TIMEOUT_EXCEEDED = 159;

export async function runQuery(
  client: ClickHouseClient,
  db: string,
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
    result = await answer(query, {
      client,
      db,
      // Whole seconds: the setting's unit; a query is never given less than one.
      settings: { max_execution_time: Math.max(1, Math.ceil(timeoutMs / 1000)) },
      tenantId,
      tz: query.tz,
      from,
      to,
      now,
      maxRows: options.maxRows ?? DEFAULT_MAX_ROWS,
      dimensions: options.dimensions ?? {},
      ...(options.listedEvents ? { listedEvents: new Set(options.listedEvents) } : {}),
    });
  } catch (error) {
    if (error instanceof ClickHouseQueryError && error.clickhouseCode === TIMEOUT_EXCEEDED) {
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
