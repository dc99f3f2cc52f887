/**
 * Generated data for the query engine's correctness suites: random users, names, properties and time
 * stamps over a range, written through the store's own insert path the way real traffic arrives — in
 * shuffled batches (events out of order), some resent whole or in part (the same ids again), some late
 * (received long after they happened). `stored` is what the detail table holds afterwards, one row per
 * id: the brute-force evaluators (oracle/) answer every query from it.
 */
import { isoTime, parseQuery, uuidv7 } from '@tally/core';
import type { AnalyticsStore, EventRow, Query, RequestLogRow } from '@tally/core';

/** Any engine's store: the data goes in through its own insert path. */
type Inserts = Pick<AnalyticsStore, 'insertEvents' | 'insertRequestLogs'>;

export type Rand = () => number;

/** mulberry32: the same seed gives the same data (a failing seed can be replayed). */
export function seeded(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(rand: Rand, list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;

/** A query as the API parses it, for inputs a test knows to be valid: throws, with the input, if not. */
export function parsedQuery<Q extends Query = Query>(input: unknown): Q {
  const r = parseQuery(input);
  if (!r.ok) throw new Error(`${r.error.message}: ${JSON.stringify(input)}`);
  return r.query as Q;
}

export const EVENT_NAMES = ['signup', 'view', 'click', 'purchase', 'churn'] as const;
export const PLANS = ['free', 'pro', 'team'] as const;
export const CHANNELS = ['web', 'email', 'api', 'slack'] as const;

export interface EventData {
  /** The tenant the suite queries; `otherTenant` holds a decoy of the same shape that must never show. */
  tenant: string;
  otherTenant: string;
  from: number;
  to: number;
  /** One row per id, as stored (the tenant's and the other's). */
  stored: EventRow[];
}

export interface EventDataOptions {
  seed: number;
  /** Distinct events (before resends). Default 2000. */
  events?: number;
  /** Users (plus a few anonymous-only visitors). Default 60. */
  users?: number;
  /** The span, ending at `to`. Default 21 days before 2026-03-30T00:00Z (across Europe's DST change). */
  from?: number;
  to?: number;
  tenant?: string;
  /** Names to draw from; default EVENT_NAMES. */
  names?: readonly string[];
}

/**
 * Properties with every shape a filter or breakdown meets: an enum-like string, a number (sometimes a
 * numeric string, sometimes missing or null), a boolean, a nested object, free text.
 */
function properties(rand: Rand): Record<string, EventRow['properties'][string]> {
  const p: Record<string, EventRow['properties'][string]> = {};
  const r = rand();
  if (r < 0.85) p.plan = pick(rand, PLANS);
  else if (r < 0.9) p.plan = null;
  p.channel = pick(rand, CHANNELS);
  const a = rand();
  if (a < 0.8) p.amount = Math.round(rand() * 10_000) / 100;
  else if (a < 0.85) p.amount = String(Math.round(rand() * 100));
  else if (a < 0.9) p.amount = null;
  if (rand() < 0.7) p.beta = rand() < 0.5;
  if (rand() < 0.5) p.meta = { source: pick(rand, ['ad', 'seo', 'referral']), depth: Math.floor(rand() * 4) };
  if (rand() < 0.3) p.note = pick(rand, ['hello world', "it's quoted", 'percent % and _', 'ümlaut']);
  return p;
}

/** Events for `tenant` and a decoy tenant, stored through `store.insertEvents` (see the module comment). */
export async function loadEvents(store: Inserts, options: EventDataOptions): Promise<EventData> {
  const rand = seeded(options.seed);
  const to = options.to ?? Date.parse('2026-03-30T00:00:00Z');
  const from = options.from ?? to - 21 * 86_400_000;
  const tenant = options.tenant ?? `t_${options.seed}`;
  const otherTenant = `${tenant}_other`;
  const names = options.names ?? EVENT_NAMES;
  const users = Array.from({ length: options.users ?? 60 }, (_, i) => `u${i}`);
  const visitors = Array.from({ length: 10 }, (_, i) => `anon${i}`);
  const rows: EventRow[] = [];
  const count = options.events ?? 2000;
  for (let i = 0; i < count; i++) {
    // Users act in sessions: most events follow the same user's previous one within minutes, so
    // funnels and retention see real sequences, not only noise.
    const ts = Math.floor(from + rand() * (to - from));
    const who = rand();
    const userId = who < 0.85 ? pick(rand, users) : undefined;
    const anonymousId = who >= 0.8 ? pick(rand, visitors) : undefined;
    const late = rand() < 0.05;
    const base = {
      name: pick(rand, names),
      ...(userId ? { userId } : {}),
      ...(anonymousId ? { anonymousId } : {}),
      properties: properties(rand),
      context: { library: { name: 'test', version: '0' } },
      timestamp: isoTime(ts),
      receivedAt: isoTime(late ? ts + 3 * 86_400_000 : ts + 1000),
    };
    rows.push({ ...base, id: uuidv7(ts), tenantId: rand() < 0.85 ? tenant : otherTenant });
    // Follow-ups of the same user shortly after: sequences for funnels.
    if (userId && rand() < 0.5) {
      const next = ts + Math.floor(rand() * 3 * 3_600_000);
      if (next < to) {
        rows.push({
          ...base,
          id: uuidv7(next),
          tenantId: tenant,
          name: pick(rand, names),
          properties: properties(rand),
          timestamp: isoTime(next),
          receivedAt: isoTime(next + 1000),
        });
      }
    }
  }
  // Shuffle (events out of order), then batch with resends: each batch re-sends a slice of an earlier one.
  for (let i = rows.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [rows[i], rows[j]] = [rows[j] as EventRow, rows[i] as EventRow];
  }
  const batches: EventRow[][] = [];
  for (let i = 0; i < rows.length; i += 250) batches.push(rows.slice(i, i + 250));
  for (let b = 0; b < batches.length; b++) {
    const batch = batches[b] as EventRow[];
    await store.insertEvents(batch);
    if (b > 0 && rand() < 0.5) {
      const earlier = batches[Math.floor(rand() * b)] as EventRow[];
      await store.insertEvents(earlier.slice(0, 1 + Math.floor(rand() * earlier.length)));
    }
  }
  await store.insertEvents(batches[0] ?? []); // a whole batch again
  return { tenant, otherTenant, from, to, stored: rows };
}

export const ROUTES = [
  ['GET', '/users/:id'],
  ['GET', '/search'],
  ['POST', '/orders'],
  ['DELETE', '/orders/:id'],
  ['GET', '/health'],
] as const;

export interface LogData {
  tenant: string;
  otherTenant: string;
  from: number;
  to: number;
  stored: RequestLogRow[];
}

/** Request logs for `tenant` and a decoy tenant, stored as loadEvents stores events (resends included). */
export async function loadRequestLogs(
  store: Inserts,
  options: { seed: number; logs?: number; from?: number; to?: number; tenant?: string },
): Promise<LogData> {
  const rand = seeded(options.seed);
  const to = options.to ?? Date.parse('2026-03-30T00:00:00Z');
  const from = options.from ?? to - 14 * 86_400_000;
  const tenant = options.tenant ?? `t_${options.seed}`;
  const otherTenant = `${tenant}_other`;
  const rows: RequestLogRow[] = [];
  for (let i = 0; i < (options.logs ?? 1500); i++) {
    const ts = Math.floor(from + rand() * (to - from));
    const [method, route] = pick(rand, ROUTES);
    const s = rand();
    const status = s < 0.8 ? 200 : s < 0.85 ? 301 : s < 0.95 ? pick(rand, [400, 404, 422]) : 500;
    // Log-normal-ish latencies from sub-millisecond to tens of seconds: every histogram bucket gets some.
    const durationMs = Math.round(Math.exp(rand() * 11 - 2) * 1000) / 1000;
    const id = uuidv7(ts);
    const userId = rand() < 0.7 ? `u${Math.floor(rand() * 20)}` : undefined;
    rows.push({
      id,
      tenantId: rand() < 0.85 ? tenant : otherTenant,
      method,
      route: rand() < 0.97 ? route : undefined,
      url: `${route.replace(':id', String(Math.floor(rand() * 1000)))}?q=${pick(rand, ['a', 'b%', 'c_d', "e'f"])}`,
      status,
      durationMs,
      ...(userId ? { userId } : {}),
      ...(rand() < 0.5 ? { apiKeyId: pick(rand, ['k1', 'k2']) } : {}),
      requestBody: rand() < 0.3 ? '{"password":"[redacted]"}' : undefined,
      responseBody: rand() < 0.3 ? '{"ok":true}' : undefined,
      timestamp: isoTime(ts),
      receivedAt: isoTime(ts + 5),
    });
  }
  for (let i = 0; i < rows.length; i += 200) {
    const batch = rows.slice(i, i + 200);
    await store.insertRequestLogs(batch);
    if (rand() < 0.3) await store.insertRequestLogs(batch.slice(0, 50));
  }
  return { tenant, otherTenant, from, to, stored: rows };
}

/** Hostile strings every field of a query must treat as data (the security suites use them). */
export const HOSTILE = [
  "'; DROP TABLE events; --",
  '" OR 1=1 --',
  '$1',
  '\\',
  '%_',
  '{a,b}',
  '); SELECT pg_sleep(10); --',
  '∑ ünïcödé',
  'a"b',
  "x' || (SELECT current_user) || '",
];
