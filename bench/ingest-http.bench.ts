/**
 * HTTP ingest benchmark (issue 6): `tally serve` taking event batches over HTTP into Postgres, against
 * the raw floor of the same engine (one `COPY … FROM STDIN` stream), on the same rows, into the same
 * schema (the store's migration), in the same run:
 *
 *   copy      raw COPY (text format, streamed; no ON CONFLICT, no rollups) of the N rows (as bench/ingest).
 *   http_pg   a load generator POSTs the N rows to `/v1/events` in bodies of BATCH events over CONNECTIONS
 *             keep-alive connections, each sending its next body once the previous one is answered;
 *             `tally serve` (in-process transport) answers once the batch is stored in Postgres.
 *   nats      the same with `tally serve` on NATS JetStream: the answer means "committed to the stream",
 *             the durable consumer stores it moments later.
 *
 * `tally serve` runs in its own process (bench/support/ingest-http-server.ts: the built server's
 * startServer, what the CLI runs) and so does the load generator (bench/support/ingest-http-load.ts),
 * which encodes its bodies before the clock starts. Each server gets a fresh schema (and stream), is
 * warmed up with WARMUP_N other rows which are then truncated, and Postgres is checkpointed. Timing runs
 * from the first request to all N rows stored (the writer's counter, polled over IPC), and is checked
 * afterwards: `count(*)` and the hourly rollup's sum must both equal N (+ the freshness probes).
 *
 * Freshness: during every HTTP run, this process sends a probe (one event with a known id, its own
 * connection) every PROBE_EVERY_MS and polls Postgres every POLL_MS for the probes not seen yet: sent →
 * queryable latency, p50/p95 (a poll's start time counts, so the figure is at most POLL_MS pessimistic).
 *
 * CPU columns: the server and load generator processes (their own counters), Postgres and nats-server
 * (every process of that name in /proc: other users of the same Postgres count too), and the machine.
 *
 * Targets (issue 6): ≥ 50k events/s into Postgres, ≥ 0.7× raw COPY, freshness p95 < 2 s.
 * Prints a table, then as its last line `{"bench":"ingest-http",…,"ratio":<http_pg_eps / copy_eps>}`.
 * BENCH_QUICK=1: 20k rows, one repetition, a smoke run of seconds (figures not meaningful).
 * Full: 300k rows, two repetitions in ABC/CBA order, the best of each reported.
 * Knobs for exploring (the headline uses the defaults): BENCH_BATCH (events a request, 1000),
 * BENCH_CONNECTIONS (8), BENCH_WRITER=<maxBatchRows>x<concurrency> (the writer's, default the product's),
 * BENCH_PROFILE=1 (V8 CPU profile of the server's measured window, written to a temp file per run),
 * BENCH_ONLY=copy,http_pg,nats (a subset of the variants).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { isoTime, uuidv7 } from '@tally/core';
import { connect as natsConnect, jetstreamManager } from '@tally/nats';
import type { EventRow } from '@tally/store';
import type postgres from 'postgres';
import { fmt, round } from './support/figures.js';
import { check, machineBusy, measureOnce, type Outcome, printTable, runBench } from './support/harness.js';
import { copyChunks, EVENT_COLUMNS, makeEventRows } from './support/ingest-rows.js';
import { nextMessage } from './support/ipc.js';
import {
  type LoadPlan,
  type LoadReport,
  percentile,
  type ServerMark,
  type ServerReady,
  type ServerSpec,
} from './support/ingest-http-protocol.js';
import { benchPostgres, countEvents, migrateSchema, PG_URL, pgClient } from './support/pg.js';

const QUICK = process.env.BENCH_QUICK === '1';
const N = QUICK ? 20_000 : 300_000;
const WARMUP_N = QUICK ? 2_000 : 20_000;
const REPS = QUICK ? 1 : 2;
const BATCH = Number(process.env.BENCH_BATCH ?? 1000);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 8);
const WRITER = parseWriter(process.env.BENCH_WRITER);
const PROFILE = process.env.BENCH_PROFILE === '1';
const ONLY = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
const NATS_URL = 'nats://127.0.0.1:4222';
const PROBE_EVERY_MS = 100;
const POLL_MS = 20;
const STORED_TIMEOUT_MS = 120_000;
const TARGET = { eps: 50_000, ratio: 0.7, freshnessP95Ms: 2000 };
/** The tenant the server's first write key belongs to: every row the collector stores carries it. */
const TENANT = 'default';
/** All variants' rows are born over the 6 h before this instant (same seed: same rows, fresh ids). */
const END_MS = Date.now();

const SERVER = fileURLToPath(new URL('./support/ingest-http-server.ts', import.meta.url));
const LOAD = fileURLToPath(new URL('./support/ingest-http-load.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

function parseWriter(value: string | undefined): ServerSpec['writer'] {
  if (!value) return undefined;
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m) throw new Error(`BENCH_WRITER must be <maxBatchRows>x<concurrency>, e.g. 1000x4; got ${value}`);
  return { maxBatchRows: Number(m[1]), concurrency: Number(m[2]) };
}

// ---------------------------------------------------------------- Postgres and cleanup

const liveStreams = new Set<string>();
const children = new Set<ChildProcess>();

const { ensureReachable, inFreshSchema, tempDir, removeDir, settlePostgres, cleanup } = benchPostgres({
  name: 'ingest-http',
  async onCleanup() {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const stream of liveStreams) await deleteStream(stream).catch(() => undefined);
  },
});

async function deleteStream(stream: string): Promise<void> {
  const nc = await natsConnect({ servers: NATS_URL });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream).catch(() => undefined);
    liveStreams.delete(stream);
  } finally {
    await nc.close();
  }
}

// ---------------------------------------------------------------- measuring

interface Cpu {
  machine: number;
  postgres: number;
  nats: number;
}

/** CPU seconds used so far by every live process with the given command name (Linux /proc; 0 elsewhere). */
function processCpu(comm: string): number {
  let ticks = 0;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      if (stat.slice(stat.indexOf('(') + 1, close) !== comm) continue;
      const fields = stat.slice(close + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14, 15)
    } catch {
      // gone meanwhile
    }
  }
  return ticks / 100; // USER_HZ
}

function cpuNow(): Cpu {
  return { machine: machineBusy(), postgres: processCpu('postgres'), nats: processCpu('nats-server') };
}

function cpuSince(c0: Cpu): Cpu {
  const c1 = cpuNow();
  return { machine: c1.machine - c0.machine, postgres: c1.postgres - c0.postgres, nats: c1.nats - c0.nats };
}

interface Measured {
  rows: number;
  seconds: number;
  eps: number;
  cpu: Cpu;
  serverCpu?: number;
  loadCpu?: number;
  /** Sent → queryable latency of the probes, ms. */
  freshness?: { p50: number; p95: number; max: number; probes: number };
  /** Answer time of the load generator's requests, ms. */
  answer?: { p50: number; p95: number };
  retries?: number;
}

// ---------------------------------------------------------------- raw COPY

/** The rows as the collector stores them: every one bound to the write key's tenant. */
function copyRows(): EventRow[] {
  return makeEventRows(N, { seed: 1, endMs: END_MS }).map((r) => ({ ...r, tenantId: TENANT }));
}

async function pgCopy(rows: readonly EventRow[]): Promise<Measured> {
  return inFreshSchema(async (schema) => {
    await migrateSchema(schema);
    const sql = pgClient(schema, 1);
    try {
      await sql`SELECT 1`;
      await settlePostgres();
      const c0 = cpuNow();
      const t0 = performance.now();
      const stream = await sql.unsafe(`COPY events (${EVENT_COLUMNS.join(', ')}) FROM STDIN`).writable();
      await pipeline(Readable.from(copyChunks(rows)), stream);
      const seconds = (performance.now() - t0) / 1000;
      const cpu = cpuSince(c0);
      const { events } = await countEvents(sql);
      check(events === rows.length, `raw COPY: ${events} rows in events, expected ${rows.length}`);
      return { rows: rows.length, seconds, eps: rows.length / seconds, cpu };
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
}

// ---------------------------------------------------------------- child processes

function forkTs(file: string, args: string[]): ChildProcess {
  // The server's logs (stdout) go to stderr, so this benchmark's stdout ends with its JSON line.
  const child = fork(file, args, {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx'],
    env: process.env,
    stdio: ['ignore', 2, 2, 'ipc'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

interface ServerProcess {
  child: ChildProcess;
  url: string;
  key: string;
  mark(): Promise<ServerMark>;
  stop(): Promise<ServerMark>;
}

async function startServerProcess(spec: ServerSpec): Promise<ServerProcess> {
  const child = forkTs(SERVER, [JSON.stringify(spec)]);
  const ready = await nextMessage<ServerReady>(child, 'ready', 60_000);
  let stopped: Promise<ServerMark> | undefined;
  return {
    child,
    url: ready.url,
    key: ready.key,
    mark() {
      const answer = nextMessage<ServerMark>(child, 'mark', 10_000);
      child.send({ type: 'mark' });
      return answer;
    },
    stop() {
      if (!stopped) {
        stopped = nextMessage<ServerMark>(child, 'done', 60_000);
        child.send({ type: 'stop' });
      }
      return stopped;
    },
  };
}

/** The load generator process of one server: `prepare` encodes a plan's bodies, `go` sends them. */
function startLoad(server: ServerProcess) {
  const child = forkTs(LOAD, []);
  return {
    async prepare(rows: number, seed: number, endMs: number): Promise<void> {
      const encoded = nextMessage<LoadReport>(child, 'encoded', 120_000);
      const plan: LoadPlan = {
        type: 'plan',
        url: server.url,
        key: server.key,
        rows,
        seed,
        endMs,
        batch: BATCH,
        connections: CONNECTIONS,
      };
      child.send(plan);
      await encoded;
    },
    go(): Promise<Extract<LoadReport, { type: 'done' }>> {
      const done = nextMessage<Extract<LoadReport, { type: 'done' }>>(child, 'done', 600_000);
      child.send({ type: 'go' });
      return done;
    },
    stop(): void {
      if (child.connected) child.disconnect();
    },
  };
}

/** Polls the server until its writer has stored `target` rows in all; returns when it saw that. */
async function waitStored(server: ServerProcess, target: number): Promise<number> {
  const deadline = performance.now() + STORED_TIMEOUT_MS;
  for (;;) {
    const m = await server.mark();
    const now = performance.now();
    if (m.stored >= target) return now;
    if (now > deadline)
      throw new Error(`the writer stored ${m.stored} of ${target} rows within ${STORED_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

// ---------------------------------------------------------------- freshness probes

/**
 * Every PROBE_EVERY_MS, one event with a fresh id, on its own keep-alive connection; every POLL_MS, one
 * query for the probes not seen yet. Latency: send → the start of the first poll that saw it.
 */
function startProbes(server: ServerProcess, sql: postgres.Sql) {
  const url = new URL('/v1/events', server.url);
  // No socket limit: a probe must go out when it is due, not wait for an earlier one's answer.
  const agent = new Agent({ keepAlive: true });
  const unseen = new Map<string, number>();
  const latencies: number[] = [];
  let sent = 0;
  let acked = 0;
  let failure: string | undefined;
  const answers: Promise<void>[] = [];

  const send = () => {
    const at = Date.now();
    const id = uuidv7(at);
    const body = JSON.stringify({
      batch: [{ id, name: 'waitlist_joined', properties: { source: 'probe' }, timestamp: isoTime(at) }],
      sentAt: isoTime(at),
    });
    unseen.set(id, performance.now());
    sent++;
    answers.push(
      new Promise<void>((resolve) => {
        const req = request(
          url,
          {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', authorization: `Bearer ${server.key}` },
          },
          (res) => {
            let text = '';
            res.on('data', (c: Buffer) => (text += c.toString('utf8')));
            res.on('end', () => {
              if (res.statusCode === 200) acked++;
              else failure ??= `probe answered ${res.statusCode}: ${text.slice(0, 200)}`;
              resolve();
            });
          },
        );
        req.on('error', (e) => {
          failure ??= `probe: ${e.message}`;
          resolve();
        });
        req.end(body);
      }),
    );
  };

  let polling = false;
  const poll = async () => {
    if (polling || unseen.size === 0) return;
    polling = true;
    try {
      const started = performance.now();
      const rows = await sql.unsafe<{ id: string }[]>(`SELECT id::text AS id FROM events WHERE id = ANY($1::uuid[])`, [
        [...unseen.keys()],
      ]);
      for (const { id } of rows) {
        const at = unseen.get(id);
        if (at === undefined) continue;
        latencies.push(started - at);
        unseen.delete(id);
      }
    } catch (e) {
      failure ??= `probe poll: ${(e as Error).message}`;
    } finally {
      polling = false;
    }
  };

  send();
  const sender = setInterval(send, PROBE_EVERY_MS);
  const poller = setInterval(() => void poll(), POLL_MS);
  return {
    /** Stops everything at once (on a failure). */
    dispose() {
      clearInterval(sender);
      clearInterval(poller);
      agent.destroy();
    },
    /** Stops sending and waits for every probe's answer; returns how many were accepted. */
    async stop(): Promise<number> {
      clearInterval(sender);
      await Promise.all(answers);
      return acked;
    },
    /** Waits for every probe to be seen (or 30 s); then the figures. */
    async finish() {
      clearInterval(sender);
      await Promise.all(answers);
      const deadline = performance.now() + 30_000;
      while (unseen.size > 0 && performance.now() < deadline) {
        await poll();
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
      clearInterval(poller);
      agent.destroy();
      if (unseen.size > 0) failure ??= `${unseen.size} of ${sent} probes never became queryable`;
      return {
        sent,
        acked,
        failure,
        p50: percentile(latencies, 50) ?? NaN,
        p95: percentile(latencies, 95) ?? NaN,
        max: percentile(latencies, 100) ?? NaN,
      };
    },
  };
}

// ---------------------------------------------------------------- HTTP through tally serve

async function httpRun(transport: 'pg' | 'nats', profileTag: string): Promise<Measured> {
  return inFreshSchema(async (schema) => {
    const dataDir = tempDir();
    const flags: Record<string, string> = {
      port: '0',
      'data-dir': dataDir,
      schema,
      'database-url': PG_URL,
      'rate-limit': '0',
    };
    let stream: string | undefined;
    if (transport === 'nats') {
      const tag = randomBytes(5).toString('hex');
      stream = `BENCH_${tag.toUpperCase()}`;
      liveStreams.add(stream);
      Object.assign(flags, { 'nats-url': NATS_URL, 'nats-stream': stream, 'nats-prefix': `b${tag}` });
    }
    const profileFile = PROFILE
      ? join(tmpdir(), `tally-ingest-http-${profileTag}-${Date.now()}.cpuprofile`)
      : undefined;
    const server = await startServerProcess({ flags, writer: WRITER, profileFile });
    const sql = pgClient(schema, 1);
    const load = startLoad(server);
    let probes: ReturnType<typeof startProbes> | undefined;
    try {
      // Warm-up on other rows (a day older), then emptied: the measured window starts on empty tables.
      await load.prepare(WARMUP_N, 2, END_MS - 86_400_000);
      const warmed = await load.go();
      check(!warmed.error, `warm-up: ${warmed.error}`);
      await waitStored(server, WARMUP_N);
      await sql`TRUNCATE events, event_counts_hourly`;
      await settlePostgres();

      await load.prepare(N, 1, END_MS);
      const m0 = await server.mark();
      if (profileFile) server.child.send({ type: 'profile-start' });
      const c0 = cpuNow();
      const t0 = performance.now();
      const answered = load.go();
      probes = startProbes(server, sql);
      let report: Extract<LoadReport, { type: 'done' }>;
      let probesAcked: number;
      try {
        report = await answered;
      } finally {
        probesAcked = await probes.stop();
      }
      check(!report.error, `load generator: ${report.error}`);
      check(report.accepted === N, `load generator: ${report.accepted} events accepted, expected ${N}`);
      // In-process: answered means stored. NATS: committed to the stream; wait for the consumer.
      const tEnd = await waitStored(server, m0.stored + N + probesAcked);
      const seconds = (tEnd - t0) / 1000;
      const cpu = cpuSince(c0);
      const m1 = await server.mark();
      const p = await probes.finish();
      check(!p.failure, p.failure ?? '');
      check(m1.deadLettered === m0.deadLettered, `${m1.deadLettered - m0.deadLettered} rows dead-lettered`);
      const { events, rollup } = await countEvents(sql);
      const expected = N + p.acked;
      check(
        events === expected && rollup === expected,
        `${transport}: events ${events}, rollup ${rollup}, expected ${expected} (${N} rows + ${p.acked} probes)`,
      );
      const serverDone = await server.stop();
      if (profileFile) console.error(`  CPU profile of the server: ${profileFile}`);
      check(!serverDone.error, `server close: ${serverDone.error}`);
      return {
        rows: N,
        seconds,
        eps: N / seconds,
        cpu,
        serverCpu: m1.cpuSeconds - m0.cpuSeconds,
        loadCpu: report.cpuSeconds,
        freshness: { p50: p.p50, p95: p.p95, max: p.max, probes: p.sent },
        answer: { p50: report.p50Ms, p95: report.p95Ms },
        retries: report.retries,
      };
    } finally {
      probes?.dispose();
      load.stop();
      await sql.end({ timeout: 5 });
      await server.stop().catch(() => undefined);
      if (stream) await deleteStream(stream).catch(() => undefined);
      removeDir(dataDir);
    }
  });
}

// ---------------------------------------------------------------- plan and run

interface Variant {
  key: 'copy' | 'http_pg' | 'nats';
  label: string;
  run: (rep: number) => Promise<Measured>;
}

let rowsForCopy: EventRow[] = [];
const VARIANTS: Variant[] = [
  { key: 'copy', label: 'raw COPY (text, 1 stream; no ON CONFLICT, no rollup)', run: () => pgCopy(rowsForCopy) },
  {
    key: 'http_pg',
    label: `tally serve → Postgres (HTTP, ${BATCH}/request × ${CONNECTIONS} connections)`,
    run: (rep) => httpRun('pg', `pg-${rep}`),
  },
  {
    key: 'nats',
    label: `tally serve → NATS JetStream → Postgres (same load)`,
    run: (rep) => httpRun('nats', `nats-${rep}`),
  },
];

type VariantOutcome = Outcome<Variant, Measured>;
// Every variant has its row, in this order, even one BENCH_ONLY leaves out.
const outcomes = new Map<string, VariantOutcome>(VARIANTS.map((v) => [v.key, { variant: v, runs: [] }]));
const failures: string[] = [];

async function measure(variant: Variant, rep: number): Promise<void> {
  await measureOnce(
    outcomes.get(variant.key) as VariantOutcome,
    failures,
    () => variant.run(rep),
    (m) => {
      const fresh = m.freshness
        ? `; freshness p50 ${fmt(m.freshness.p50, 0)} ms, p95 ${fmt(m.freshness.p95, 0)} ms`
        : '';
      return `${fmt(m.eps, 0)} events/s in ${fmt(m.seconds, 2)} s${fresh}`;
    },
  );
}

async function main(): Promise<void> {
  await ensureReachable();
  console.error(
    `ingest-http bench: ${N.toLocaleString('en-US')} events${QUICK ? ' (quick)' : ''}, ${BATCH} a request, ` +
      `${CONNECTIONS} connections, writer ${WRITER ? `${WRITER.maxBatchRows}×${WRITER.concurrency}` : 'defaults'}`,
  );
  rowsForCopy = copyRows();
  for (let rep = 0; rep < REPS; rep++) {
    console.error(`repetition ${rep + 1}/${REPS}`);
    const selected = VARIANTS.filter((v) => !ONLY || ONLY.includes(v.key));
    const order = rep % 2 === 0 ? selected : [...selected].reverse();
    for (const v of order) await measure(v, rep);
  }
}

// ---------------------------------------------------------------- report

function eps(key: string): number | null {
  return outcomes.get(key)?.best?.eps ?? null;
}

/** The freshness of the run whose throughput is reported, or the worst p95 over runs. */
function freshness(key: string): Measured['freshness'] | undefined {
  const runs = outcomes.get(key)?.runs ?? [];
  return runs.map((m) => m.freshness).sort((a, b) => (b?.p95 ?? 0) - (a?.p95 ?? 0))[0];
}

function report(): void {
  const copy = eps('copy');
  const header = [
    'variant',
    'events/s',
    '× COPY',
    'seconds',
    'server cpu s',
    'load cpu s',
    'postgres cpu s',
    'nats cpu s',
    'machine cpu s',
    'fresh p50/p95 ms',
    'answer p50/p95 ms',
    'runs (events/s)',
  ];
  const table: string[][] = [];
  for (const o of outcomes.values()) {
    const b = o.best;
    table.push([
      `  ${o.variant.label}`,
      o.error ? 'FAILED' : fmt(b?.eps, 0),
      fmt(b && copy ? b.eps / copy : null, 2),
      fmt(b?.seconds, 2),
      fmt(b?.serverCpu, 1),
      fmt(b?.loadCpu, 1),
      fmt(b?.cpu.postgres, 1),
      fmt(b?.cpu.nats, 1),
      fmt(b?.cpu.machine, 1),
      b?.freshness ? `${fmt(b.freshness.p50, 0)} / ${fmt(b.freshness.p95, 0)}` : '',
      b?.answer ? `${fmt(b.answer.p50, 0)} / ${fmt(b.answer.p95, 0)}` : '',
      o.runs.map((m) => fmt(m.eps, 0)).join(', '),
    ]);
  }
  console.log('');
  console.log(`${N / 1000}k events; best of ${REPS} run(s) each; freshness and answer times of that run`);
  printTable(header, table, [0, 11]);
  console.log('');

  const pg = eps('http_pg');
  const ratio = pg !== null && copy ? pg / copy : null;
  const fresh = freshness('http_pg');
  const verdict = (ok: boolean | null) => (ok === null ? '—' : ok ? 'ok' : 'MISSED');
  console.log(
    `targets: ≥ ${fmt(TARGET.eps, 0)} events/s into Postgres: ${verdict(pg === null ? null : pg >= TARGET.eps)}; ` +
      `≥ ${TARGET.ratio}× COPY: ${verdict(ratio === null ? null : ratio >= TARGET.ratio)}; ` +
      `freshness p95 < ${TARGET.freshnessP95Ms} ms: ${verdict(fresh ? fresh.p95 < TARGET.freshnessP95Ms : null)}` +
      ' (worst p95 over runs)',
  );
  for (const f of failures) console.log(`FAILED ${f}`);

  const natsFresh = freshness('nats');
  console.log(
    JSON.stringify({
      bench: 'ingest-http',
      rows: N,
      batch: BATCH,
      connections: CONNECTIONS,
      writer: WRITER ? `${WRITER.maxBatchRows}x${WRITER.concurrency}` : 'default',
      http_pg_eps: round(pg, 0),
      copy_eps: round(copy, 0),
      nats_eps: round(eps('nats'), 0),
      nats_ratio: round(eps('nats') !== null && copy ? (eps('nats') as number) / copy : null, 2),
      freshness_p50_ms: round(fresh?.p50, 0),
      freshness_p95_ms: round(fresh?.p95, 0),
      nats_freshness_p50_ms: round(natsFresh?.p50, 0),
      nats_freshness_p95_ms: round(natsFresh?.p95, 0),
      probes: fresh?.probes ?? null,
      ratio: round(ratio, 2),
    }),
  );
}

await runBench({ main, cleanup, report, failures });
