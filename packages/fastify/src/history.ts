/**
 * The history API: a user's own request logs, newest first. Authentication is the app's (a hook it
 * provides); authorization is by construction: every query is scoped to the caller's tenant and user,
 * runs under row-level security, and another user's id answers 404, the same as a missing one.
 */
import {
  type ErrorCode,
  ErrorCodes,
  type HistoryDetail,
  historyDetailOf,
  type HistoryItem,
  type HistoryQuery,
  httpStatusOf,
  isTallyError,
  isUuid,
  TallyError,
} from '@tally/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface HistoryCaller {
  tenantId: string;
  userId: string;
}

/** What the routes read from (the Store implements it). */
export interface HistorySource {
  requestHistory(query: HistoryQuery): Promise<HistoryItem[]>;
  requestLog(tenantId: string, userId: string, id: string): Promise<HistoryDetail | undefined>;
}

export interface HistoryOptions {
  source: HistorySource;
  /** Who is asking; undefined answers 401. Typically reads the app's session or API key. */
  authenticate: (request: FastifyRequest) => HistoryCaller | undefined | Promise<HistoryCaller | undefined>;
  /** Default `/api/history`. */
  prefix?: string;
  /** Page size when `limit` is absent. Default 50; `limit` may not exceed 200. */
  defaultLimit?: number;
}

const MAX_LIMIT = 200;

export function historyRoutes(app: FastifyInstance, options: HistoryOptions): void {
  const prefix = options.prefix ?? '/api/history';
  const defaultLimit = options.defaultLimit ?? 50;

  async function caller(request: FastifyRequest, reply: FastifyReply): Promise<HistoryCaller | undefined> {
    const who = await options.authenticate(request);
    if (!who) {
      void refuse(reply, ErrorCodes.UNAUTHORIZED, 'sign in to see your request history');
      return undefined;
    }
    return who;
  }

  app.get(prefix, async (request, reply) => {
    const who = await caller(request, reply);
    if (!who) return reply;
    let query: HistoryQuery;
    try {
      query = { ...who, ...parseQuery(request.query as Record<string, unknown>, defaultLimit) };
    } catch (e) {
      if (isTallyError(e)) return refuse(reply, e.code, e.message);
      throw e;
    }
    // One row more than the page tells whether there is a next page without a count.
    const rows = await options.source.requestHistory({ ...query, limit: query.limit + 1 });
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return {
      items,
      nextCursor: rows.length > query.limit && last ? encodeCursor(last.timestamp, last.id) : null,
    };
  });

  app.get(`${prefix}/:id`, async (request, reply) => {
    const who = await caller(request, reply);
    if (!who) return reply;
    const { id } = request.params as { id: string };
    const log = isUuid(id) ? await options.source.requestLog(who.tenantId, who.userId, id) : undefined;
    if (!log) return refuse(reply, ErrorCodes.NOT_FOUND, 'no such request in your history');
    // The user's own request, as far as history shows it (not the key or address it came with).
    return historyDetailOf(log);
  });
}

function parseQuery(q: Record<string, unknown>, defaultLimit: number) {
  const one = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw badQuery(`${name} must be given once`);
    return v;
  };
  const out: {
    limit: number;
    before?: { ts: string; id: string };
    from?: string;
    to?: string;
    statusClass?: number;
    route?: string;
  } = {
    limit: defaultLimit,
  };
  const limit = one('limit');
  if (limit !== undefined) {
    const n = Number(limit);
    if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
      throw badQuery(`limit must be an integer from 1 to ${MAX_LIMIT}`);
    out.limit = n;
  }
  for (const name of ['from', 'to'] as const) {
    const v = one(name);
    if (v === undefined) continue;
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) throw badQuery(`${name} must be an ISO 8601 date-time`);
    out[name] = new Date(ms).toISOString();
  }
  if (out.from && out.to && out.from >= out.to) throw badQuery('from must be before to');
  const status = one('status');
  if (status !== undefined) {
    const m = /^([2-5])xx$/.exec(status);
    if (!m) throw badQuery('status must be 2xx, 3xx, 4xx or 5xx');
    out.statusClass = Number(m[1]);
  }
  const route = one('route');
  if (route !== undefined) out.route = route;
  const cursor = one('cursor');
  if (cursor !== undefined) out.before = decodeCursor(cursor);
  return out;
}

/** Opaque to clients: the (ts, id) of the last item seen. */
function encodeCursor(ts: string, id: string): string {
  return Buffer.from(`${ts}|${id}`).toString('base64url');
}

function decodeCursor(cursor: string): { ts: string; id: string } {
  const [ts, id, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (extra !== undefined || !ts || !id || Number.isNaN(Date.parse(ts)) || !isUuid(id)) {
    throw badQuery('cursor is not one this API gave out');
  }
  return { ts, id };
}

/** A malformed or out-of-range parameter: answered 400 with its code, never thrown past the route. */
function badQuery(message: string): TallyError {
  return new TallyError(ErrorCodes.BAD_QUERY, message);
}

/** Answers `{error:{code,message}}` with the code's own HTTP status. */
function refuse(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(httpStatusOf(code)).send({ error: { code, message } });
}
