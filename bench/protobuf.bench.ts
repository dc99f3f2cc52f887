/**
 * Protobuf benchmark (issue 19): the collector's CPU per event for batches sent as protobuf
 * (proto/tally/v1/batch.proto, `Content-Type: application/x-protobuf`) against the same batches as JSON
 * (docs/wire-format.md), same run.
 *
 * The collector is the one `tally serve` runs (buildCollector: read the body, parse or decode it, find
 * the write key's tenant, check every event against the catalog, hand the batch on), with a transport
 * that answers at once and stores nothing: the figure is the collector's own work, not the store's.
 * Requests go through Fastify's inject (no sockets, the same in-process cost for both formats). Bodies
 * are encoded before the clock starts: 100 events of the product catalog each, a context shared by the
 * batch, distinct ids. Rounds alternate JSON and protobuf (ABBA), so a machine that slows down or warms
 * up weighs on both alike; CPU is this process's (user + system), per event.
 *
 * Last line: `{"bench":"protobuf",…,"ratio":<JSON CPU per event / protobuf CPU per event>}` (above 1:
 * protobuf costs the collector less). BENCH_QUICK=1: a smoke run of seconds.
 */
import { isoTime, productCatalog, type TallyEvent, uuidv7 } from '@tally/core';
import { encodeBatch as encodeProtobuf } from '@tally/core/protobuf';
import { encodeBatch as encodeJson } from '@tally/core';
import { createApiKey, createStore } from '@tally/store';
import { buildCollector } from '../packages/server/dist/collector.js';
import { createKeyCache } from '../packages/server/dist/key-cache.js';
import { createMetrics } from '../packages/server/dist/metrics.js';
import { createQuarantine } from '../packages/server/dist/quarantine.js';
import { createRateLimiter } from '../packages/server/dist/rate-limit.js';
import { collectorAcceptOptions } from '../packages/server/dist/ingest/accept.js';
import { fmt, round } from './support/figures.js';
import { check, printTable, runBench } from './support/harness.js';

const QUICK = process.env.BENCH_QUICK === '1';
const BATCH = 100;
const REQUESTS = QUICK ? 50 : 1000; // per round and format
const ROUNDS = QUICK ? 2 : 6;
const failures: string[] = [];
const cleanups: (() => Promise<unknown>)[] = [];

type Format = 'json' | 'protobuf';
const cpuUs: Record<Format, number> = { json: 0, protobuf: 0 };
const bytes: Record<Format, number> = { json: 0, protobuf: 0 };
let events = 0;

/** `count` distinct batches of BATCH events, as each format's bodies. */
function bodies(count: number): Record<Format, Buffer[]> {
  const out: Record<Format, Buffer[]> = { json: [], protobuf: [] };
  const now = Date.now();
  const context = { service: 'api', library: { name: 'bench', version: '1.0.0' }, region: 'eu-west-1' };
  for (let b = 0; b < count; b++) {
    const batch: TallyEvent[] = [];
    for (let i = 0; i < BATCH; i++) {
      const ts = now - (b * BATCH + i);
      batch.push({
        id: uuidv7(ts),
        name: 'task_completed',
        tenantId: 'default',
        userId: `user-${(b * 7 + i) % 500}`,
        properties: {
          taskId: `task-${b}-${i}`,
          taskType: 'render',
          durationMs: 25.4 + i,
          attempts: 1 + (i % 3),
          provider: 'openai',
        },
        context,
        timestamp: isoTime(ts),
      });
    }
    const sentAt = isoTime(now);
    out.json.push(Buffer.from(encodeJson(batch, sentAt)));
    out.protobuf.push(Buffer.from(encodeProtobuf(batch, sentAt)));
  }
  return out;
}

async function main(): Promise<void> {
  const store = await createStore({ kind: 'pglite' });
  await store.migrate();
  cleanups.push(() => store.close());
  const { key } = await createApiKey(store.sql, 'default');
  const metrics = createMetrics();
  let published = 0;
  const app = await buildCollector({
    transport: {
      kind: 'memory',
      async publish(list) {
        published += list.length;
        return { durability: 'stored', stored: list.length, duplicates: 0, rejected: [] };
      },
      async consume() {},
      healthy: () => true,
      stats: () => ({ published: 0, handled: 0, redelivered: 0, deadLettered: 0, inFlight: 0 }),
      async close() {},
    },
    keys: createKeyCache(store),
    limiter: createRateLimiter({ burstSeconds: 1 }),
    metrics,
    ...collectorAcceptOptions(productCatalog),
    maxBodyBytes: 10 << 20,
    rateLimit: 0,
    acceptUnlisted: false,
    unplanned: 'allow',
    quarantine: createQuarantine(store, { maxRowsPerTenant: 1000 }, metrics),
    ready: () => true,
  });
  cleanups.push(() => app.close());

  const made = bodies(REQUESTS);
  const type: Record<Format, string> = { json: 'application/json', protobuf: 'application/x-protobuf' };
  const send = async (format: Format, body: Buffer) => {
    const res = await app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: { 'content-type': type[format], authorization: `Bearer ${key}` },
      payload: body,
    });
    const answer = res.json() as { accepted?: number; rejected?: unknown[] };
    check(
      res.statusCode === 200 && answer.accepted === BATCH,
      `${format}: ${res.statusCode} ${res.body.slice(0, 300)}`,
    );
  };
  // Warm-up: both paths compiled before anything is counted.
  for (const format of ['json', 'protobuf'] as const)
    for (const body of made[format].slice(0, 50)) await send(format, body);
  published = 0;

  for (let round = 0; round < ROUNDS; round++) {
    const order: Format[] = round % 2 === 0 ? ['json', 'protobuf'] : ['protobuf', 'json'];
    for (const format of order) {
      const before = process.cpuUsage();
      for (const body of made[format]) await send(format, body);
      const used = process.cpuUsage(before);
      cpuUs[format] += used.user + used.system;
      for (const body of made[format]) bytes[format] += body.length;
      console.error(
        `round ${round + 1}/${ROUNDS} ${format}: ${fmt((used.user + used.system) / (REQUESTS * BATCH), 2)} µs/event`,
      );
    }
  }
  events = ROUNDS * REQUESTS * BATCH;
  check(published === 2 * events, `the transport got ${published} of ${2 * events} events`);
}

function report(): void {
  const per = (f: Format) => (events > 0 ? cpuUs[f] / events : null);
  const perByte = (f: Format) => (events > 0 ? bytes[f] / events : null);
  const ratio = events > 0 ? (per('json') as number) / (per('protobuf') as number) : null;
  printTable(
    ['body', 'collector CPU µs/event', 'bytes/event'],
    [
      ['JSON (application/json)', fmt(per('json'), 2), fmt(perByte('json'), 0)],
      ['protobuf (application/x-protobuf)', fmt(per('protobuf'), 2), fmt(perByte('protobuf'), 0)],
    ],
  );
  console.log(
    JSON.stringify({
      bench: 'protobuf',
      quick: QUICK,
      events,
      batch: BATCH,
      json_cpu_us_per_event: round(per('json'), 3),
      protobuf_cpu_us_per_event: round(per('protobuf'), 3),
      json_bytes_per_event: round(perByte('json'), 1),
      protobuf_bytes_per_event: round(perByte('protobuf'), 1),
      ...(failures.length > 0 ? { failures } : {}),
      ratio: round(ratio, 2),
    }),
  );
}

await runBench({
  failures,
  main,
  async cleanup() {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  },
  report,
});
