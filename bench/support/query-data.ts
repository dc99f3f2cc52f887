/**
 * The query benchmark's data (bench/query.bench.ts): a support bot's month of events and request logs,
 * deterministic (seeded), generated in time order and streamed in batches so that 10M events never sit
 * in memory at once, and loaded through the store's own insert path (COPY, rollups in the same
 * transaction) as the collector would have stored them.
 *
 * Events follow the support-bot catalog (packages/core/src/catalogs/support-bot.ts). Conversations arrive
 * on a daily and weekly rhythm; each is a `conversation_started`, then messages seconds apart (user and
 * assistant taking turns, ~7 a conversation), and for a share that depends on the channel an
 * `escalation_triggered` minutes to hours after the start, followed by a human agent's messages. Rarer
 * events (knowledge ingestion, integrations, quotas, checkouts and plan changes) arrive on their own.
 * Users are drawn from a skewed pool (a few heavy users, a long tail, so users return week after week);
 * 12% of conversations come from anonymous visitors (an anonymous id and no user id). 95% of everything
 * belongs to the queried tenant, the rest to another, so a query that leaked across tenants would count
 * wrong.
 *
 * Request logs cover ~30 routes of the bot's API with a lognormal latency per route and a mix of
 * statuses (redirects, client errors, a few server errors, timeouts).
 */
import type { JsonValue } from '@tally/core';
import type { EventRow, RequestLogRow, Store } from '@tally/store';
import { hex, int, pick, type Rand, seeded, weighted } from './seeded.js';

/** Bump when the generated data changes: a kept schema of another version is not reused. */
export const QUERY_DATA_VERSION = 1;

export const TENANT = 'tenant-bot';
export const OTHER_TENANT = 'tenant-other';
const OTHER_SHARE = 0.05;

const MINUTE = 60_000;
/** The canonical form the store's direct COPY path takes (core's isoTime writes the same, slower). */
const iso = (ms: number) => new Date(ms).toISOString();
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export interface QueryDataOptions {
  /** Events to generate (exactly this many, unless the month runs out first; see makeEventBatches). */
  events: number;
  requestLogs: number;
  /** Size of the user pool. */
  users: number;
  /** Calendar days (UTC) the data covers, the last one ending at `now`. */
  days: number;
  seed: number;
  /** "Now": the end of the data, and the time relative ranges are resolved against. */
  now: number;
}

/** A Monday evening; the data covers the 30 UTC days ending with it (29 whole days and 18 hours). */
export const QUERY_DATA_NOW = Date.parse('2026-11-30T18:00:00.000Z');

export function queryDataOptions(events: number, requestLogs: number): QueryDataOptions {
  return {
    events,
    requestLogs,
    // 1M users for 10M events; the same proportion at other scales.
    users: Math.max(100, Math.round(events / 10)),
    days: 30,
    seed: 16,
    now: QUERY_DATA_NOW,
  };
}

/** Start of the first UTC day of the data. */
export function dataStart(o: QueryDataOptions): number {
  return Math.floor(o.now / DAY) * DAY - (o.days - 1) * DAY;
}

// ---------------------------------------------------------------- randomness

/** A lognormal draw with the given median and sigma (Box–Muller on the seeded generator). */
function lognormal(rand: Rand, median: number, sigma: number): number {
  const u = 1 - rand();
  const v = rand();
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return median * Math.exp(sigma * z);
}

/** 1 + a geometric count with the given mean of extras. */
function onePlusGeometric(rand: Rand, meanExtra: number): number {
  const p = meanExtra / (1 + meanExtra);
  return 1 + Math.floor(Math.log(1 - rand()) / Math.log(p));
}

/**
 * A UUIDv7 of `ms` (the event's time, as the SDK stamps it) whose last 48 bits are the row's sequence
 * number: unique by construction and the same run after run.
 */
function uuidAt(ms: number, seq: number, rand: Rand): string {
  const t = ms.toString(16).padStart(12, '0');
  const r = int(rand, 0x1000).toString(16).padStart(3, '0');
  const v = (0x8000 | int(rand, 0x4000)).toString(16);
  return `${t.slice(0, 8)}-${t.slice(8, 12)}-7${r}-${v}-${seq.toString(16).padStart(12, '0')}`;
}

// ---------------------------------------------------------------- time: a daily and weekly rhythm

/** Relative traffic at `ms`: a daytime peak around 15:00 UTC, a night trough, quieter weekends. */
function rhythm(ms: number): number {
  const hour = (ms % DAY) / HOUR;
  const weekday = new Date(ms).getUTCDay();
  const daily = 1 + 0.7 * Math.cos(((hour - 15) / 24) * 2 * Math.PI);
  return daily * (weekday === 0 || weekday === 6 ? 0.65 : 1);
}

/**
 * `count` times in order over [from, to), spread by the rhythm: the inverse of its cumulative curve at
 * (i + u) / count, minute by minute. Evenly stratified, so the count is exact and the rhythm smooth.
 */
function* rhythmicTimes(rand: Rand, count: number, from: number, to: number): Generator<number> {
  const minutes = Math.ceil((to - from) / MINUTE);
  const cum = new Float64Array(minutes + 1);
  for (let m = 0; m < minutes; m++) cum[m + 1] = (cum[m] as number) + rhythm(from + m * MINUTE + MINUTE / 2);
  const total = cum[minutes] as number;
  let m = 0;
  for (let i = 0; i < count; i++) {
    const target = ((i + rand()) / count) * total;
    while (m < minutes - 1 && (cum[m + 1] as number) < target) m++;
    const within = (target - (cum[m] as number)) / ((cum[m + 1] as number) - (cum[m] as number));
    yield Math.min(to - 1, Math.floor(from + (m + within) * MINUTE));
  }
}

// ---------------------------------------------------------------- events

const CHANNELS = ['web', 'widget', 'email', 'slack', 'api'] as const;
const CHANNEL_WEIGHTS = [0.38, 0.27, 0.15, 0.12, 0.08];
/** Share of conversations escalated to a human, by channel (email and Slack users ask for one more). */
const ESCALATION_RATE: Record<(typeof CHANNELS)[number], number> = {
  web: 0.1,
  widget: 0.08,
  email: 0.22,
  slack: 0.15,
  api: 0.04,
};
const REASONS = ['user_requested', 'low_confidence', 'negative_sentiment', 'policy', 'billing_question'];
const MODELS = ['gpt-4o-mini', 'claude-haiku', 'mistral-small'];
const SOURCES = ['notion', 'confluence', 'zendesk', 'gdrive', 'website'];
const INTEGRATIONS = ['slack', 'zendesk', 'intercom', 'salesforce', 'hubspot'];
const PLANS = ['free', 'starter', 'team', 'business'];
const QUOTAS = [
  { quota: 'messages', limit: 10_000, period: 'month', route: '/v1/conversations/:id/messages' },
  { quota: 'documents', limit: 500, period: 'month', route: '/v1/knowledge/ingest' },
  { quota: 'requests', limit: 600, period: 'minute', route: '/v1/conversations' },
];
const CONTEXT: EventRow['context'] = { library: { name: '@tally/node', version: '0.4.0' } };

/** Arrivals planned beyond the events asked for, so that the count is reached before `now`. */
const HEADROOM = 0.004;

/** Mean messages a conversation before any escalation: 1 + 6 on average. */
const MESSAGES_EXTRA = 6;

/** What arrives on its own, per conversation started (the rest of the catalog, rarer). */
const OTHER_ARRIVALS: { kind: string; perConversation: number; events: number }[] = [
  { kind: 'ingest', perConversation: 0.012, events: 2 },
  { kind: 'integration_connected', perConversation: 0.002, events: 1 },
  { kind: 'integration_failed', perConversation: 0.0008, events: 1 },
  { kind: 'quota_exceeded', perConversation: 0.03, events: 1 },
  { kind: 'checkout', perConversation: 0.003, events: 1.6 },
  { kind: 'plan_updated', perConversation: 0.002, events: 1 },
];

/** Expected events a conversation yields (start, messages, escalation and the agent's replies). */
function eventsPerConversation(): number {
  const escalation = CHANNELS.reduce((s, c, i) => s + (CHANNEL_WEIGHTS[i] as number) * ESCALATION_RATE[c], 0);
  return 1 + (1 + MESSAGES_EXTRA) + escalation * (1 + 1.5);
}

interface Pending {
  ts: number;
  order: number;
  row: Omit<EventRow, 'id' | 'receivedAt'>;
}

/** A binary min-heap on (ts, order): the events scheduled but not yet due, emitted in time order. */
class Schedule {
  private readonly items: Pending[] = [];
  private order = 0;

  get size(): number {
    return this.items.length;
  }

  peek(): Pending | undefined {
    return this.items[0];
  }

  push(ts: number, row: Pending['row']): void {
    const items = this.items;
    const item = { ts, order: this.order++, row };
    let i = items.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(item, items[parent] as Pending)) break;
      items[i] = items[parent] as Pending;
      i = parent;
    }
    items[i] = item;
  }

  pop(): Pending | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let least = last;
      let at = -1;
      if (l < items.length && before(items[l] as Pending, least)) {
        least = items[l] as Pending;
        at = l;
      }
      if (r < items.length && before(items[r] as Pending, least)) {
        least = items[r] as Pending;
        at = r;
      }
      if (at < 0) break;
      items[i] = least;
      i = at;
    }
    items[i] = last;
    return top;
  }
}

const before = (a: Pending, b: Pending) => a.ts < b.ts || (a.ts === b.ts && a.order < b.order);

/**
 * The events in time order, in batches of `batchSize`: exactly `options.events` of them. Arrivals are
 * planned for a little more than that, so the count is reached an hour or two before `now` (the conversations still
 * going on then have not finished yet, as at any real "now"); should the month run out first, it ends
 * there with fewer.
 */
export function* makeEventBatches(options: QueryDataOptions, batchSize: number): Generator<EventRow[]> {
  const rand = seeded(options.seed);
  const from = dataStart(options);
  const to = options.now;
  const otherPer = OTHER_ARRIVALS.reduce((s, a) => s + a.perConversation * a.events, 0);
  const conversations = Math.ceil((options.events * (1 + HEADROOM)) / (eventsPerConversation() + otherPer));
  const arrivalKinds = ['conversation', ...OTHER_ARRIVALS.map((a) => a.kind)];
  const arrivalWeights = [1, ...OTHER_ARRIVALS.map((a) => a.perConversation)];
  const weightSum = arrivalWeights.reduce((s, w) => s + w, 0);
  const arrivals = Math.round(conversations * weightSum);
  const normalized = arrivalWeights.map((w) => w / weightSum);

  const schedule = new Schedule();
  let seq = 0;
  let conversationSeq = 0;
  let batch: EventRow[] = [];
  // Skewed towards low indexes: user-0 is the heaviest, the tail comes back now and then.
  const user = () => `user-${Math.floor(options.users * rand() ** 1.6)}`;
  const tenant = () => (rand() < OTHER_SHARE ? OTHER_TENANT : TENANT);
  const event = (name: string, tenantId: string, who: Who, properties: Record<string, JsonValue>) => ({
    name,
    tenantId,
    ...who,
    properties,
    context: CONTEXT,
    timestamp: '',
  });

  const emit = (p: Pending): EventRow => {
    const row = p.row as EventRow;
    row.id = uuidAt(p.ts, seq++, rand);
    row.timestamp = iso(p.ts);
    row.receivedAt = iso(p.ts + 40 + int(rand, 400));
    return row;
  };

  function conversation(t0: number): void {
    const tenantId = tenant();
    const who: Who = rand() < 0.12 ? { anonymousId: `anon-${hex(rand)}${hex(rand)}` } : { userId: user() };
    const conversationId = `conv-${(conversationSeq++).toString(36)}`;
    const channel = weighted(rand, CHANNELS, CHANNEL_WEIGHTS);
    schedule.push(
      t0,
      event('conversation_started', tenantId, who, { conversationId, channel, botId: `bot-${int(rand, 12)}` }),
    );
    const messages = onePlusGeometric(rand, MESSAGES_EXTRA);
    let t = t0 + Math.round(lognormal(rand, 8_000, 0.6));
    let n = 0;
    const message = (role: string) => {
      const assistant = role === 'assistant';
      schedule.push(
        t,
        event('message_sent', tenantId, who, {
          conversationId,
          messageId: `msg-${conversationId}-${n++}`,
          role,
          chars: assistant ? 200 + int(rand, 1200) : 10 + int(rand, 300),
          ...(assistant ? { latencyMs: Math.round(lognormal(rand, 900, 0.5)), model: pick(rand, MODELS) } : {}),
        }),
      );
    };
    for (let i = 0; i < messages; i++) {
      message(i % 2 === 0 ? 'user' : 'assistant');
      t += Math.round(lognormal(rand, 20_000, 0.9));
    }
    const weekend = [0, 6].includes(new Date(t0).getUTCDay());
    if (rand() < ESCALATION_RATE[channel] * (weekend ? 1.25 : 1)) {
      // Minutes to hours after the start (median 12 min, one in ten after more than an hour and a half).
      let te = t0 + Math.round(lognormal(rand, 12 * MINUTE, 1.4));
      const reason = pick(rand, REASONS);
      schedule.push(
        te,
        event('escalation_triggered', tenantId, who, {
          conversationId,
          reason,
          automatic: reason !== 'user_requested',
        }),
      );
      const replies = int(rand, 4);
      for (let i = 0; i < replies; i++) {
        te += Math.round(lognormal(rand, 3 * MINUTE, 0.8));
        t = te;
        message('agent');
      }
    }
  }

  function other(kind: string, t0: number): void {
    const tenantId = tenant();
    const who: Who = { userId: user() };
    switch (kind) {
      case 'ingest': {
        const ingestId = `ing-${hex(rand)}`;
        const source = pick(rand, SOURCES);
        const documents = 1 + int(rand, 400);
        schedule.push(t0, event('ingest_started', tenantId, who, { ingestId, source, documents }));
        const t1 = t0 + Math.round(lognormal(rand, 2 * MINUTE, 1));
        if (rand() < 0.9) {
          schedule.push(
            t1,
            event('ingest_completed', tenantId, who, {
              ingestId,
              source,
              documents,
              chunks: documents * (3 + int(rand, 20)),
              durationMs: t1 - t0,
            }),
          );
        } else {
          schedule.push(
            t1,
            event('ingest_failed', tenantId, who, {
              ingestId,
              source,
              errorCode: pick(rand, ['SOURCE_UNREACHABLE', 'AUTH_EXPIRED', 'PARSE_ERROR']),
              errorMessage: `could not read from ${source}`,
            }),
          );
        }
        return;
      }
      case 'integration_connected':
        schedule.push(
          t0,
          event(kind, tenantId, who, { integration: pick(rand, INTEGRATIONS), integrationId: `int-${hex(rand)}` }),
        );
        return;
      case 'integration_failed':
        schedule.push(
          t0,
          event(kind, tenantId, who, {
            integration: pick(rand, INTEGRATIONS),
            errorCode: 'OAUTH_DENIED',
            errorMessage: 'the user denied access',
          }),
        );
        return;
      case 'quota_exceeded': {
        const q = pick(rand, QUOTAS);
        schedule.push(t0, event(kind, tenantId, who, { ...q, usage: q.limit + int(rand, 50) }));
        return;
      }
      case 'checkout': {
        const plan = pick(rand, PLANS.slice(1));
        const interval = rand() < 0.3 ? 'year' : 'month';
        schedule.push(
          t0,
          event('checkout_completed', tenantId, who, {
            orderId: `ord-${hex(rand)}`,
            plan,
            amountCents: (PLANS.indexOf(plan) * 2900 + 900) * (interval === 'year' ? 10 : 1),
            currency: pick(rand, ['USD', 'EUR', 'GBP']),
            interval,
          }),
        );
        if (rand() < 0.6) {
          schedule.push(
            t0 + 1000 + int(rand, 5000),
            event('plan_updated', tenantId, who, {
              fromPlan: 'free',
              toPlan: plan,
              seats: 1 + int(rand, 20),
              interval,
            }),
          );
        }
        return;
      }
      case 'plan_updated': {
        const i = 1 + int(rand, PLANS.length - 1);
        schedule.push(
          t0,
          event(kind, tenantId, who, {
            fromPlan: PLANS[i] as string,
            toPlan: PLANS[i - 1] as string,
            seats: 1 + int(rand, 20),
            interval: 'month',
          }),
        );
        return;
      }
    }
  }

  /** Emits what is due before `until`; false once `options.events` have been emitted. */
  function* drain(until: number): Generator<EventRow[], boolean> {
    for (let next = schedule.peek(); next !== undefined && next.ts < until; next = schedule.peek()) {
      batch.push(emit(schedule.pop() as Pending));
      if (seq >= options.events) return false;
      if (batch.length >= batchSize) {
        yield batch;
        batch = [];
      }
    }
    return true;
  }

  let going = true;
  for (const t of rhythmicTimes(rand, arrivals, from, to)) {
    going = yield* drain(t);
    if (!going) break;
    const kind = weighted(rand, arrivalKinds, normalized);
    if (kind === 'conversation') conversation(t);
    else other(kind, t);
  }
  if (going) yield* drain(to);
  if (batch.length > 0) yield batch;
}

type Who = { userId: string } | { anonymousId: string };

// ---------------------------------------------------------------- request logs

interface RouteSpec {
  method: string;
  route: string;
  weight: number;
  /** Median latency, ms, and the lognormal's sigma. */
  median: number;
  sigma: number;
  /** Share of 5xx and of 4xx answers. */
  e5: number;
  e4: number;
  /** The status of a success (201 for creations, 204 for deletes…). */
  ok?: number;
  /** Share of 304 answers (cached assets). */
  notModified?: number;
}

const ROUTES: RouteSpec[] = [
  { method: 'GET', route: '/v1/conversations', weight: 10, median: 35, sigma: 0.6, e5: 0.002, e4: 0.01 },
  { method: 'POST', route: '/v1/conversations', weight: 6, median: 80, sigma: 0.5, e5: 0.004, e4: 0.02, ok: 201 },
  { method: 'GET', route: '/v1/conversations/:id', weight: 14, median: 22, sigma: 0.5, e5: 0.001, e4: 0.03 },
  { method: 'GET', route: '/v1/conversations/:id/messages', weight: 10, median: 30, sigma: 0.6, e5: 0.002, e4: 0.02 },
  // The model call: slow, spread, and the most failing.
  {
    method: 'POST',
    route: '/v1/conversations/:id/messages',
    weight: 18,
    median: 900,
    sigma: 0.8,
    e5: 0.02,
    e4: 0.03,
    ok: 201,
  },
  { method: 'POST', route: '/v1/conversations/:id/escalate', weight: 1, median: 120, sigma: 0.6, e5: 0.005, e4: 0.02 },
  {
    method: 'DELETE',
    route: '/v1/conversations/:id',
    weight: 0.3,
    median: 45,
    sigma: 0.5,
    e5: 0.002,
    e4: 0.05,
    ok: 204,
  },
  { method: 'GET', route: '/v1/bots', weight: 3, median: 15, sigma: 0.5, e5: 0.001, e4: 0.005 },
  { method: 'POST', route: '/v1/bots', weight: 0.2, median: 90, sigma: 0.5, e5: 0.005, e4: 0.08, ok: 201 },
  { method: 'GET', route: '/v1/bots/:id', weight: 3, median: 12, sigma: 0.5, e5: 0.001, e4: 0.02 },
  { method: 'PATCH', route: '/v1/bots/:id', weight: 0.5, median: 60, sigma: 0.5, e5: 0.003, e4: 0.06 },
  { method: 'DELETE', route: '/v1/bots/:id', weight: 0.05, median: 40, sigma: 0.5, e5: 0.003, e4: 0.05, ok: 204 },
  { method: 'POST', route: '/v1/knowledge/ingest', weight: 0.5, median: 2500, sigma: 0.9, e5: 0.03, e4: 0.05, ok: 202 },
  { method: 'GET', route: '/v1/knowledge/sources', weight: 1, median: 40, sigma: 0.6, e5: 0.002, e4: 0.01 },
  {
    method: 'DELETE',
    route: '/v1/knowledge/sources/:id',
    weight: 0.1,
    median: 200,
    sigma: 0.7,
    e5: 0.01,
    e4: 0.04,
    ok: 204,
  },
  { method: 'GET', route: '/v1/integrations', weight: 1, median: 20, sigma: 0.5, e5: 0.001, e4: 0.01 },
  { method: 'POST', route: '/v1/integrations/:name/connect', weight: 0.1, median: 1500, sigma: 0.8, e5: 0.04, e4: 0.1 },
  { method: 'POST', route: '/v1/webhooks/slack', weight: 4, median: 45, sigma: 0.7, e5: 0.003, e4: 0.01 },
  { method: 'POST', route: '/v1/webhooks/email', weight: 2, median: 60, sigma: 0.7, e5: 0.004, e4: 0.02 },
  { method: 'GET', route: '/v1/billing/plans', weight: 0.8, median: 10, sigma: 0.4, e5: 0.001, e4: 0.002 },
  { method: 'POST', route: '/v1/billing/checkout', weight: 0.1, median: 700, sigma: 0.6, e5: 0.01, e4: 0.06 },
  { method: 'GET', route: '/v1/billing/invoices', weight: 0.3, median: 90, sigma: 0.6, e5: 0.003, e4: 0.01 },
  { method: 'GET', route: '/v1/usage', weight: 2, median: 150, sigma: 0.7, e5: 0.004, e4: 0.01 },
  { method: 'POST', route: '/v1/auth/login', weight: 1, median: 180, sigma: 0.4, e5: 0.002, e4: 0.12 },
  { method: 'POST', route: '/v1/auth/refresh', weight: 3, median: 25, sigma: 0.5, e5: 0.001, e4: 0.04 },
  { method: 'GET', route: '/v1/me', weight: 5, median: 8, sigma: 0.5, e5: 0.001, e4: 0.03 },
  { method: 'OPTIONS', route: '/v1/conversations', weight: 1, median: 1, sigma: 0.5, e5: 0, e4: 0, ok: 204 },
  { method: 'GET', route: '/widget.js', weight: 5, median: 3, sigma: 0.6, e5: 0.0005, e4: 0.001, notModified: 0.4 },
  { method: 'GET', route: '/healthz', weight: 8, median: 1, sigma: 0.4, e5: 0.0005, e4: 0 },
  { method: 'HEAD', route: '/healthz', weight: 0.5, median: 1, sigma: 0.4, e5: 0.0005, e4: 0 },
  { method: 'GET', route: '/metrics', weight: 2, median: 5, sigma: 0.5, e5: 0.001, e4: 0 },
];
const ROUTE_WEIGHTS = ROUTES.map((r) => r.weight / ROUTES.reduce((s, x) => s + x.weight, 0));
const CLIENT_ERRORS = [400, 401, 403, 404, 409, 422, 429];
const CLIENT_ERROR_WEIGHTS = [0.25, 0.25, 0.05, 0.25, 0.03, 0.07, 0.1];
const SERVER_ERRORS = [500, 502, 503, 504];
const SERVER_ERROR_WEIGHTS = [0.5, 0.2, 0.2, 0.1];
const USER_AGENTS = ['tally-widget/2.3', 'Mozilla/5.0 (Macintosh)', 'Slackbot 1.0', 'python-requests/2.32', 'curl/8.5'];

/** Exactly `options.requestLogs` request logs in time order, in batches of `batchSize`. */
export function* makeRequestLogBatches(options: QueryDataOptions, batchSize: number): Generator<RequestLogRow[]> {
  const rand = seeded(options.seed + 1);
  let batch: RequestLogRow[] = [];
  let seq = 0;
  for (const ts of rhythmicTimes(rand, options.requestLogs, dataStart(options), options.now)) {
    const spec = weighted(rand, ROUTES, ROUTE_WEIGHTS);
    const r = rand();
    let status = spec.ok ?? 200;
    let durationMs = lognormal(rand, spec.median, spec.sigma);
    if (r < spec.e5) {
      status = weighted(rand, SERVER_ERRORS, SERVER_ERROR_WEIGHTS);
      // A gateway timeout waited for the upstream's 30 s.
      if (status === 504) durationMs = 30_000 + rand() * 100;
    } else if (r < spec.e5 + spec.e4) {
      status = weighted(rand, CLIENT_ERRORS, CLIENT_ERROR_WEIGHTS);
      durationMs = Math.min(durationMs, lognormal(rand, 5, 0.6));
    } else if (spec.notModified && rand() < spec.notModified) {
      status = 304;
    }
    const url = spec.route
      .replace(':id', () => `${hex(rand)}${hex(rand)}`)
      .replace(':name', () => pick(rand, INTEGRATIONS));
    const signedIn = rand() < 0.7;
    const row: RequestLogRow = {
      id: uuidAt(ts, seq++, rand),
      tenantId: rand() < OTHER_SHARE ? OTHER_TENANT : TENANT,
      requestId: `req-${hex(rand)}${hex(rand)}`,
      method: spec.method,
      route: spec.route,
      url: rand() < 0.2 ? `${url}?limit=${10 + int(rand, 90)}` : url,
      status,
      durationMs: Math.round(durationMs * 100) / 100,
      requestBytes: spec.method === 'GET' || spec.method === 'HEAD' ? 0 : 80 + int(rand, 4000),
      responseBytes: status === 204 || status === 304 ? 0 : 60 + int(rand, 20_000),
      ip: `10.${int(rand, 256)}.${int(rand, 256)}.${int(rand, 256)}`,
      userAgent: pick(rand, USER_AGENTS),
      timestamp: iso(ts),
      receivedAt: iso(ts + 100 + int(rand, 900)),
    };
    if (signedIn) row.userId = `user-${Math.floor(options.users * rand() ** 1.6)}`;
    else if (rand() < 0.6) row.apiKeyId = `key-${int(rand, 200)}`;
    batch.push(row);
    if (batch.length >= batchSize) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

// ---------------------------------------------------------------- loading

export interface LoadReport {
  events: number;
  requestLogs: number;
  eventSeconds: number;
  requestLogSeconds: number;
}

/**
 * Loads the data through `store.insertEvents` / `insertRequestLogs` (the collector's path: COPY and the
 * rollups in one transaction a batch), `inFlight` batches at a time, printing progress to stderr.
 * Generating the next batch overlaps with the batches in flight.
 */
export async function loadQueryData(
  store: Store,
  options: QueryDataOptions,
  plan: { batchSize: number; inFlight: number; label: string },
): Promise<LoadReport> {
  const events = await loadBatches(
    `${plan.label} events`,
    options.events,
    makeEventBatches(options, plan.batchSize),
    (rows) => store.insertEvents(rows),
    plan.inFlight,
  );
  const requestLogs = await loadBatches(
    `${plan.label} request logs`,
    options.requestLogs,
    makeRequestLogBatches(options, plan.batchSize),
    (rows) => store.insertRequestLogs(rows),
    plan.inFlight,
  );
  return {
    events: events.rows,
    requestLogs: requestLogs.rows,
    eventSeconds: events.seconds,
    requestLogSeconds: requestLogs.seconds,
  };
}

async function loadBatches<R>(
  label: string,
  expected: number,
  batches: Iterator<R[]>,
  insert: (rows: R[]) => Promise<string[]>,
  inFlight: number,
): Promise<{ rows: number; seconds: number }> {
  const started = performance.now();
  let rows = 0;
  let stored = 0;
  let lastPrint = started;
  const lane = async () => {
    for (let next = batches.next(); !next.done; next = batches.next()) {
      rows += next.value.length;
      const ids = await insert(next.value);
      stored += ids.length;
      const now = performance.now();
      if (now - lastPrint > 10_000) {
        lastPrint = now;
        const s = (now - started) / 1000;
        console.error(
          `  ${label}: ${stored.toLocaleString('en-US')} of ~${expected.toLocaleString('en-US')} ` +
            `(${Math.round(stored / s).toLocaleString('en-US')}/s, ${s.toFixed(0)} s)`,
        );
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const seconds = (performance.now() - started) / 1000;
  if (stored !== rows) throw new Error(`${label}: the store took ${stored} of ${rows} rows (duplicate ids?)`);
  console.error(
    `  ${label}: ${rows.toLocaleString('en-US')} in ${seconds.toFixed(1)} s (${Math.round(rows / seconds).toLocaleString('en-US')}/s)`,
  );
  return { rows, seconds };
}
