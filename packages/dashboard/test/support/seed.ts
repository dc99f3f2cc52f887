/**
 * The data set the browser tests show: events of the built-in catalogs and request logs, spread over the
 * six days before `anchor`, drawn from a fixed-seed generator, so every run sends the same rows at the
 * same distances from its start. 40 users (and a few anonymous visitors), ~430 events, 160 request logs of
 * five routes with 4xx and 5xx answers, each log carrying an Authorization header as the Fastify plugin
 * sends it: redacted.
 */
import { isoTime, REDACTED, uuidv7 } from '@tally/core';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Mulberry32: a small deterministic generator (the same seed, the same data). */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)] as T,
  };
}

export interface SeedEnvelope {
  id: string;
  name: string;
  timestamp: string;
  userId?: string;
  anonymousId?: string;
  properties: Record<string, unknown>;
}

export interface SeedData {
  events: SeedEnvelope[];
  logs: SeedEnvelope[];
  /** Events per name (request logs not included). */
  counts: Record<string, number>;
  /** The one log whose headers and bodies tests look at. */
  redactedLogId: string;
}

const CHANNELS = ['web', 'widget', 'email', 'slack', 'api'] as const;
const ROLES = ['user', 'assistant', 'agent'] as const;
const PLANS = ['starter', 'pro', 'team'] as const;
const ROUTES = [
  { method: 'POST', route: '/v1/chat', weight: 5, ms: [40, 900] },
  { method: 'GET', route: '/v1/conversations/:id', weight: 4, ms: [5, 120] },
  { method: 'POST', route: '/v1/messages', weight: 3, ms: [20, 400] },
  { method: 'GET', route: '/users/:id', weight: 2, ms: [3, 60] },
  { method: 'POST', route: '/v1/checkout', weight: 1, ms: [80, 2500] },
] as const;

export function seedData(anchor: number): SeedData {
  const r = generator(17);
  const at = (maxAgeMs: number) => anchor - MINUTE - Math.floor(r.next() * maxAgeMs);
  const users = Array.from({ length: 40 }, (_, i) => `u${String(i + 1).padStart(2, '0')}`);
  const events: SeedEnvelope[] = [];
  const add = (name: string, ts: number, properties: Record<string, unknown>, who?: string) => {
    const e: SeedEnvelope = { id: uuidv7(), name, timestamp: isoTime(ts), properties };
    if (who?.startsWith('anon')) e.anonymousId = who;
    else if (who) e.userId = who;
    events.push(e);
  };

  for (let c = 0; c < 90; c++) {
    // A third of the conversations in the last day, so hourly views have something to show.
    const ts = c % 3 === 0 ? at(DAY - 2 * MINUTE) : at(6 * DAY);
    const who = c % 11 === 0 ? `anon-${c}` : r.pick(users);
    const conversationId = `c${c}`;
    add('conversation_started', ts, { conversationId, channel: r.pick(CHANNELS), botId: 'support' }, who);
    const messages = r.int(1, 4);
    for (let m = 0; m < messages; m++) {
      add(
        'message_sent',
        Math.min(anchor - MINUTE, ts + (m + 1) * r.int(5, 90) * 1000),
        {
          conversationId,
          messageId: `${conversationId}-m${m}`,
          role: r.pick(ROLES),
          chars: r.int(10, 800),
          latencyMs: r.int(200, 4000),
        },
        who,
      );
    }
    if (r.next() < 0.2) {
      add(
        'escalation_triggered',
        Math.min(anchor - MINUTE, ts + 10 * MINUTE),
        { conversationId, reason: r.pick(['angry', 'billing', 'bug']), automatic: r.next() < 0.5 },
        who,
      );
    }
  }
  for (let i = 0; i < 24; i++) {
    add('user_signed_up', at(6 * DAY), { method: r.pick(['email', 'google', 'github'] as const) }, users[i]);
  }
  for (let i = 0; i < 14; i++) {
    const plan = r.pick(PLANS);
    add(
      'checkout_completed',
      at(6 * DAY),
      { orderId: `o${i}`, plan, amountCents: plan === 'starter' ? 900 : plan === 'pro' ? 2900 : 9900, currency: 'EUR' },
      r.pick(users),
    );
  }

  const logs: SeedEnvelope[] = [];
  const weighted = ROUTES.flatMap((x) => Array.from({ length: x.weight }, () => x));
  let redactedLogId = '';
  for (let i = 0; i < 160; i++) {
    const route = r.pick(weighted);
    const roll = r.next();
    const status = roll < 0.07 ? r.pick([500, 502, 503]) : roll < 0.15 ? r.pick([400, 404, 429]) : 200;
    const ts = i % 2 === 0 ? at(DAY - 2 * MINUTE) : at(6 * DAY);
    const id = uuidv7();
    const timestamp = isoTime(ts);
    const url = route.route.replace(':id', String(r.int(1, 500)));
    const userId = r.pick(users);
    if (status >= 500 && !redactedLogId) redactedLogId = id;
    logs.push({
      id,
      name: '$request',
      timestamp,
      properties: {
        id,
        tenantId: 'ignored',
        method: route.method,
        route: route.route,
        url,
        status,
        durationMs: r.int(route.ms[0], route.ms[1]) + r.int(0, 99) / 100,
        requestBytes: route.method === 'POST' ? r.int(80, 4000) : 0,
        responseBytes: r.int(50, 20000),
        userId,
        userAgent: 'seed-client/1.0',
        headers: { authorization: REDACTED, 'user-agent': 'seed-client/1.0', accept: 'application/json' },
        requestBody: route.method === 'POST' ? `{"userId":"${userId}","password":"${REDACTED}"}` : undefined,
        responseBody: status >= 500 ? '{"error":"upstream timed out"}' : undefined,
        error: status >= 500 ? 'upstream timed out' : undefined,
        timestamp,
      },
    });
  }

  const counts: Record<string, number> = {};
  for (const e of events) counts[e.name] = (counts[e.name] ?? 0) + 1;
  return { events, logs, counts, redactedLogId };
}
