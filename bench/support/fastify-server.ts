/**
 * The server under test of the Fastify benchmark, in its own process (forked by bench/fastify.bench.ts
 * under tsx), so the load generator does not share its thread. `fastify-server.ts <variant> <workDir>`:
 *
 *   bare         Fastify hello world.
 *   pino         + pino-http in an onRequest hook, logger on a worker-thread transport (`pino/file`
 *                into <workDir>/pino.log), pino-http's defaults (no redaction).
 *   pino-redact  the same with pino's `redact` on the headers Tally redacts.
 *   tally        + @tally/fastify's plugin (header redaction on by default) → tracker → direct sink →
 *                exactly-once writer → PGlite in <workDir>/pglite; the writer and PGlite on a worker
 *                thread of this process (`createStore({ worker: true })`).
 *   tally-inline the same with PGlite and the writer on the server's own thread (diagnostic).
 *   tally-pg     the same storing into Postgres (127.0.0.1, the schema given as a third argument), store
 *                and writer on a worker thread as for PGlite (diagnostic: the engine is the difference).
 *   tally-null   the plugin and tracker into a sink that only counts (no storage): the hot path's cost.
 *
 * Every variant counts requests on the HTTP server's `request` event (one listener, the same for all).
 * On `stop` it closes, drains the logger and counts what the logger stored, then exits.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defineCatalog } from '@tally/core';
import { tallyRequestLog } from '@tally/fastify';
import { createTracker, type Sink } from '@tally/node';
import { createDirectSink, createStore, createWriter } from '@tally/store';
import Fastify from 'fastify';
import pino from 'pino';
import { pinoHttp } from 'pino-http';
import { PG_URL } from './pg.js';
import {
  PINO_REDACT_PATHS,
  type ServerCommand,
  SERVER_VARIANTS,
  type ServerMark,
  type ServerVariant,
  sendToParent,
} from './fastify-protocol.js';

const [variant, workDir, pgSchema] = process.argv.slice(2) as [ServerVariant, string, string | undefined];
if (!SERVER_VARIANTS.includes(variant) || !workDir || (variant === 'tally-pg' && !pgSchema)) {
  throw new Error(`usage: fastify-server.ts <variant> <workDir> [<pg schema>]; got ${process.argv.slice(2)}`);
}

const app = Fastify();
let served = 0;
app.server.on('request', () => {
  served++;
});

/** Drains the variant's logger after the server closed; returns what it stored and a note. */
let drain: () => Promise<{ stored: number; note?: string }> = async () => ({ stored: 0 });
let queued: () => number | undefined = () => undefined;
/** Logs the variant's logger has stored so far (Tally: committed by the writer; null sink: delivered). */
let storedSoFar: () => number | undefined = () => undefined;

if (variant === 'pino' || variant === 'pino-redact') {
  const file = join(workDir, 'pino.log');
  const transport = pino.transport({ target: 'pino/file', options: { destination: file, mkdir: true } });
  const logger = pino(
    variant === 'pino-redact' ? { redact: { paths: PINO_REDACT_PATHS, censor: '[REDACTED]' } } : {},
    transport,
  );
  const httpLogger = pinoHttp({ logger });
  app.addHook('onRequest', (request, reply, next) => {
    httpLogger(request.raw, reply.raw);
    next();
  });
  drain = async () => {
    // Ends the worker's stream: everything written so far reaches the file before `close`.
    await new Promise<void>((resolve, reject) => {
      transport.once('close', resolve);
      transport.once('error', reject);
      transport.end();
    });
    const text = await readFile(file, 'utf8');
    let lines = 0;
    for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lines++;
    const leaked = variant === 'pino-redact' && text.includes('Bearer x');
    return { stored: lines, note: leaked ? 'an unredacted authorization value is in the log' : undefined };
  };
} else if (variant === 'tally' || variant === 'tally-inline' || variant === 'tally-pg') {
  const spoolDir = join(workDir, 'spool');
  // `nice`: the store thread takes the CPU the server leaves (see createStore's `worker` option).
  // Postgres: the parent's fresh schema (it drops it afterwards), the same worker thread and priority.
  const store = await createStore(
    variant === 'tally-pg'
      ? { kind: 'postgres', url: PG_URL, schema: pgSchema as string, worker: { nice: 19 } }
      : { kind: 'pglite', dataDir: join(workDir, 'pglite'), worker: variant === 'tally' && { nice: 19 } },
  );
  await store.migrate();
  const writer = createWriter({ store, spoolDir });
  // With the store on its own thread the server can serve faster than PGlite stores, and the backlog
  // waits in the tracker's queue. Its default bound (64 MiB of estimated 4 KiB logs: ~16k) would move the
  // excess to the disk spool for the next start; here the queue holds the whole run, so every log is
  // stored in this run (checked below), and the bench reports the backlog, the drain and the stored rate.
  const tracker = createTracker({
    catalog: defineCatalog({}),
    sink: createDirectSink(writer),
    spool: spoolDir,
    maxQueueEvents: 2_000_000,
    maxQueueBytes: 2_000_000 * 4096,
  });
  await app.register(tallyRequestLog, { tracker });
  queued = () => tracker.stats().queued;
  storedSoFar = () => writer.stats().stored;
  drain = async () => {
    const report = await tracker.shutdown({ timeoutMs: 300_000 });
    const writerStats = await writer.close({ timeoutMs: 300_000 });
    const [row] = await store.sql.query<{ n: string | number }>('SELECT count(*) AS n FROM request_logs');
    const [leak] = await store.sql.query<{ n: string | number }>(
      `SELECT count(*) AS n FROM request_logs WHERE headers::text LIKE '%Bearer x%'`,
    );
    await store.close();
    const s = tracker.stats();
    const dropped = Object.entries(s.dropped)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    const problems = [
      s.spooled > 0 ? `tracker spooled ${s.spooled}` : '',
      dropped ? `tracker dropped ${dropped}` : '',
      report.timedOut ? 'tracker shutdown timed out' : '',
      writerStats.spooled > 0 ? `writer spooled ${writerStats.spooled}` : '',
      writerStats.deadLettered > 0 ? `writer dead-lettered ${writerStats.deadLettered}` : '',
      Number(leak?.n) > 0 ? `${leak?.n} rows hold an unredacted authorization/cookie value` : '',
    ].filter(Boolean);
    return {
      stored: Number(row?.n),
      note:
        `tracker delivered ${s.delivered}; writer ${writerStats.batches} batches, ${writerStats.retries} retries, ` +
        `${writerStats.overloaded} overloaded` +
        (problems.length > 0 ? `; ${problems.join('; ')}` : ''),
    };
  };
}

if (variant === 'tally-null') {
  let delivered = 0;
  const sink: Sink = {
    name: 'null',
    async send(events) {
      delivered += events.length;
      return { ok: true };
    },
    async close() {},
  };
  const tracker = createTracker({ catalog: defineCatalog({}), sink, spool: false, overflow: 'drop-oldest' });
  await app.register(tallyRequestLog, { tracker });
  queued = () => tracker.stats().queued;
  storedSoFar = () => delivered;
  drain = async () => {
    const report = await tracker.shutdown({ timeoutMs: 60_000 });
    const dropped = Object.entries(tracker.stats().dropped);
    return {
      stored: delivered,
      note: dropped.length > 0 || report.timedOut ? `tracker dropped ${JSON.stringify(dropped)}` : undefined,
    };
  };
}

app.get('/', async () => ({ hello: 'world' }));

let profiler: Session | undefined;
const profileFile = join(workDir, `${variant}.cpuprofile`);

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** USER_HZ: 100 on every Linux this runs on (`getconf CLK_TCK`). */
const CLOCK_TICKS = 100;

/** CPU seconds of the main (server) thread alone, from /proc (Linux; undefined elsewhere). */
function mainCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

function mark(): ServerMark {
  return {
    type: 'mark',
    served,
    cpuSeconds: cpuSeconds(),
    mainCpuSeconds: mainCpuSeconds(),
    queued: queued(),
    stored: storedSoFar(),
  };
}

process.on('message', (message: ServerCommand) => {
  void handle(message).catch((error: Error) =>
    sendToParent({
      type: 'done',
      served,
      cpuSeconds: cpuSeconds(),
      drainMs: 0,
      error: error.stack ?? error.message,
    }).finally(() => process.exit(1)),
  );
});

async function handle(message: ServerCommand): Promise<void> {
  if (message.type === 'mark') {
    await sendToParent(mark());
  } else if (message.type === 'profile-start') {
    profiler = new Session();
    profiler.connect();
    await profiler.post('Profiler.enable');
    await profiler.post('Profiler.setSamplingInterval', { interval: 100 });
    await profiler.post('Profiler.start');
    await sendToParent(mark());
  } else if (message.type === 'stop') {
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(profileFile, JSON.stringify(profile));
      profiler.disconnect();
    }
    const t0 = performance.now();
    await app.close();
    const { stored, note } = await drain();
    const drainMs = performance.now() - t0;
    await sendToParent({ type: 'done', served, cpuSeconds: cpuSeconds(), drainMs, stored, note });
    process.exit(0);
  }
}

// The parent going away (or dying) ends this process too.
process.on('disconnect', () => process.exit(0));

await app.listen({ port: 0, host: '127.0.0.1' });
await sendToParent({ type: 'ready', port: (app.server.address() as { port: number }).port });
