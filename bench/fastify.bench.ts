/**
 * Fastify request-logging benchmark (issue 5): hello world under load, in the same run,
 *
 *   bare         Fastify alone;
 *   pino         + pino-http (defaults) on pino's worker-thread transport (`pino/file` to a temp file);
 *   pino-redact  the same with pino's `redact` on the headers Tally redacts (figures only: same work);
 *   tally        + @tally/fastify (header redaction on, its default) → tracker → direct sink →
 *                exactly-once writer → PGlite on disk, writer and PGlite on a worker thread of the
 *                server's process (`createStore({ worker: true })`);
 *   tally-inline the same with writer and PGlite on the server's own thread (diagnostic: what the
 *                worker thread buys);
 *   tally-pg     the same storing into Postgres at 127.0.0.1 (a fresh schema, dropped after the run), store
 *                and writer on the same worker thread (diagnostic: Postgres instead of PGlite, same box);
 *   tally-null   the plugin and tracker into a sink that only counts (diagnostic: the cost without storage).
 *
 * Each run is a fresh server process (bench/support/fastify-server.ts under tsx) and the load generator
 * in another process, so it never shares the server's thread: wrk (one thread) when it is installed,
 * else autocannon's CLI (BENCH_LOAD=wrk|autocannon chooses). Warm-up (2 s), then the measured window
 * (10 s), 50 connections, pipelining 1, every request carrying `authorization: Bearer x` and
 * `cookie: a=b` so redaction has work. The variants run in order, then in reverse (A…E, E…A); each
 * variant's figure is the MEAN of its two runs (both are printed). CPU per request is the server
 * process's (all threads) and its main thread's alone.
 *
 * Checked after every logging run: the server stops, the logger drains, and what it stored (rows in
 * `request_logs`, lines in pino's file) must equal the requests the server saw (warm-up included). That
 * count is also compared with the load generator's: completed ≤ seen ≤ sent (the difference is what was
 * in flight when it stopped). A mismatch is printed loudly and fails the bench.
 *
 * Targets (issue 5): Tally ≥ 0.85× bare, and faster than pino-http.
 * Prints a table, then as its last line `{"bench":"fastify",…,"ratio":<tally vs bare>}`.
 * BENCH_QUICK=1: bare, pino, tally once each, 0.3 s warm-up, 1 s measured: a smoke run (figures not
 * meaningful).
 * BENCH_PROFILE=1 profiles the measured window of extra bare, Tally and Tally null-sink runs (V8's CPU
 * profiler in the server, through the inspector) and prints CPU µs per request by area and by function
 * against bare; a full run does so by itself when Tally misses 0.85× bare (BENCH_PROFILE=0: never).
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatProfile, type ProfileSummary, summarizeProfile } from './support/cpu-profile.js';
import type { ServerCommand, ServerDone, ServerMark, ServerReady, ServerVariant } from './support/fastify-protocol.js';
import { fmt, round } from './support/figures.js';
import { printTable, runBench } from './support/harness.js';
import { nextMessage } from './support/ipc.js';
import { type BenchPostgres, benchPostgres } from './support/pg.js';

const QUICK = process.env.BENCH_QUICK === '1';
const WARMUP_S = QUICK ? 0.3 : 2;
const MEASURE_S = QUICK ? 1 : 10;
const CONNECTIONS = 50;
const PIPELINING = 1;
const HEADERS = ['authorization=Bearer x', 'cookie=a=b'];
const TARGET_VS_BARE = 0.85;
const PROFILE = process.env.BENCH_PROFILE;

const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER = fileURLToPath(new URL('./support/fastify-server.ts', import.meta.url));
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon');
/**
 * The load generator: `wrk` (C, one epoll thread) when installed, else autocannon (Node). On 2 vCPUs
 * autocannon takes most of a core to drive bare Fastify, which leaves a logger's second thread (pino's
 * transport, Tally's store) little CPU to run on; wrk drives a higher load with less. BENCH_LOAD picks.
 */
const LOAD = (process.env.BENCH_LOAD ?? (hasWrk() ? 'wrk' : 'autocannon')) as 'wrk' | 'autocannon';
if (LOAD !== 'wrk' && LOAD !== 'autocannon') throw new Error(`BENCH_LOAD must be wrk or autocannon, got ${LOAD}`);

function hasWrk(): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined;
}

interface Variant {
  key: ServerVariant;
  label: string;
  /** Does it log (so what it stored is checked)? */
  logs: boolean;
}

const VARIANTS: Variant[] = [
  { key: 'bare', label: 'Fastify, bare', logs: false },
  { key: 'pino', label: 'Fastify + pino-http (worker transport)', logs: true },
  { key: 'pino-redact', label: 'Fastify + pino-http + redact (same headers)', logs: true },
  { key: 'tally', label: 'Fastify + Tally (redaction, PGlite on a worker thread)', logs: true },
  { key: 'tally-inline', label: 'Fastify + Tally, PGlite on the server thread (diagnostic)', logs: true },
  { key: 'tally-pg', label: 'Fastify + Tally, storing into Postgres (diagnostic)', logs: true },
  { key: 'tally-null', label: 'Fastify + Tally, null sink (no storage; diagnostic)', logs: true },
];

/**
 * Full: every variant in order, then in reverse. Quick: the headline three once, a smoke run (starting a
 * server with PGlite on disk alone takes seconds).
 */
const ONLY = process.env.BENCH_ONLY?.split(',');
const CHOSEN = ONLY ? VARIANTS.filter((v) => ONLY.includes(v.key)) : VARIANTS;
const ORDERS: Variant[][] = QUICK
  ? [CHOSEN.filter((v) => ['bare', 'pino', 'tally'].includes(v.key))]
  : [CHOSEN, [...CHOSEN].reverse()];

// ---------------------------------------------------------------- processes and cleanup

const workRoot = mkdtempSync(join(tmpdir(), 'tally-bench-fastify-'));
const children = new Set<ChildProcess>();

/** Postgres for the tally-pg variant, connected when it first runs. */
let pg: BenchPostgres | undefined;

async function cleanup(): Promise<void> {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  rmSync(workRoot, { recursive: true, force: true });
  await pg?.cleanup();
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanup().finally(() => process.exit(130));
  });
}

function ask<T extends { type: string }>(child: ChildProcess, command: ServerCommand, timeoutMs = 30_000): Promise<T> {
  const reply = nextMessage<T>(child, command.type === 'stop' ? 'done' : 'mark', timeoutMs, 'server');
  child.send(command);
  return reply;
}

interface Load {
  /** Responses received (any status). */
  completed: number;
  /** Requests written to the sockets. */
  sent: number;
  ok2xx: number;
  /** Non-2xx responses, socket errors and timeouts. */
  problems: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
}

/** A run of the chosen load generator against the server on `port`. */
function load(port: number, seconds: number): Promise<Load> {
  return LOAD === 'wrk' ? wrk(port, seconds) : autocannon(port, seconds);
}

/** Runs a load generator's process to its end; resolves with its stdout. */
async function runTool(command: string, args: string[]): Promise<string> {
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  children.delete(child);
  if (code !== 0) throw new Error(`${basename(command)} exited with ${code}: ${err.trim()}`);
  return out;
}

/** wrk's `done` hook, printing its summary as one JSON line (latencies in µs). */
const WRK_REPORT = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"duration_us":%d,"errors":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;

/**
 * One wrk run (one thread, whole seconds). wrk counts completed responses only; with pipelining 1 a
 * connection has at most one request unanswered, so `sent` ≤ completed + connections.
 */
async function wrk(port: number, seconds: number): Promise<Load> {
  const script = join(workRoot, 'wrk-report.lua');
  if (!existsSync(script)) writeFileSync(script, WRK_REPORT);
  const args = ['-t', '1', '-c', String(CONNECTIONS), '-d', `${Math.max(1, Math.round(seconds))}s`, '-s', script];
  for (const h of HEADERS) args.push('-H', h.replace('=', ': '));
  args.push(`http://127.0.0.1:${port}/`);
  const out = await runTool('wrk', args);
  const r = JSON.parse(out.trim().split('\n').pop() as string) as {
    requests: number;
    duration_us: number;
    errors: number;
    status: number;
    timeout: number;
    p50_us: number;
    p99_us: number;
  };
  const secondsRun = r.duration_us / 1e6;
  return {
    completed: r.requests,
    sent: r.requests + CONNECTIONS,
    ok2xx: r.requests - r.status,
    problems: r.errors + r.status + r.timeout,
    seconds: secondsRun,
    rps: r.requests / secondsRun,
    p50: r.p50_us / 1000,
    p99: r.p99_us / 1000,
  };
}

/** One autocannon run in its own process (the CLI with `--json`). */
async function autocannon(port: number, seconds: number): Promise<Load> {
  const args = [AUTOCANNON, '-c', String(CONNECTIONS), '-p', String(PIPELINING), '-d', String(seconds), '-n', '-j'];
  for (const h of HEADERS) args.push('-H', h);
  args.push(`http://127.0.0.1:${port}/`);
  const out = await runTool(process.execPath, args);
  const r = JSON.parse(out.trim().split('\n').pop() as string) as {
    requests: { total: number; sent: number };
    latency: { p50: number; p99: number };
    duration: number;
    errors: number;
    timeouts: number;
    non2xx: number;
    '2xx': number;
  };
  return {
    completed: r.requests.total,
    sent: r.requests.sent,
    ok2xx: r['2xx'],
    problems: r.non2xx + r.errors + r.timeouts,
    seconds: r.duration,
    rps: r.requests.total / r.duration,
    p50: r.latency.p50,
    p99: r.latency.p99,
  };
}

// ---------------------------------------------------------------- one run

interface Run {
  load: Load;
  /** Requests the server saw during the measured window. */
  windowRequests: number;
  /** Server CPU µs per request over the measured window (all its threads). */
  cpuUsPerRequest: number;
  /** The same, the main (serving) thread alone; undefined where /proc does not tell it. */
  mainCpuUsPerRequest?: number;
  /** Tally: records in the tracker's queue when the measured window ended. */
  queuedAtEnd?: number;
  /** Tally: logs stored per second during the measured window (what the storage kept up with). */
  storedRps?: number;
  served: number;
  completed: number;
  sent: number;
  stored?: number;
  drainMs: number;
  note?: string;
}

async function runOnce(variant: Variant, profileTo?: (file: string) => void): Promise<Run> {
  const dir = mkdtempSync(join(workRoot, `${variant.key}-`));
  let schema: string | undefined;
  if (variant.key === 'tally-pg') {
    pg ??= benchPostgres({ name: 'fastify' });
    await pg.ensureReachable();
    schema = pg.newSchema();
  }
  const child = fork(SERVER, [variant.key, dir, ...(schema ? [schema] : [])], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx'],
    env: process.env,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.add(child);
  try {
    const { port } = await nextMessage<ServerReady>(child, 'ready', 60_000, 'server');
    const warm = await load(port, WARMUP_S);
    const m0 = await ask<ServerMark>(child, { type: profileTo ? 'profile-start' : 'mark' });
    const t0 = performance.now();
    const measured = await load(port, MEASURE_S);
    const m1 = await ask<ServerMark>(child, { type: 'mark' });
    const windowS = (performance.now() - t0) / 1000;
    const done = await ask<ServerDone>(child, { type: 'stop' }, 600_000);
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
    if (done.error) throw new Error(`server: ${done.error}`);
    if (warm.problems + measured.problems > 0) {
      throw new Error(`${warm.problems + measured.problems} non-2xx responses, errors or timeouts`);
    }
    if (profileTo) profileTo(join(dir, `${variant.key}.cpuprofile`));
    const usPerRequest = (s0: number, s1: number) => ((s1 - s0) * 1e6) / Math.max(1, m1.served - m0.served);
    return {
      load: measured,
      windowRequests: m1.served - m0.served,
      cpuUsPerRequest: usPerRequest(m0.cpuSeconds, m1.cpuSeconds),
      mainCpuUsPerRequest:
        m0.mainCpuSeconds === undefined || m1.mainCpuSeconds === undefined
          ? undefined
          : usPerRequest(m0.mainCpuSeconds, m1.mainCpuSeconds),
      queuedAtEnd: m1.queued,
      storedRps: m0.stored === undefined || m1.stored === undefined ? undefined : (m1.stored - m0.stored) / windowS,
      served: done.served,
      completed: warm.completed + measured.completed,
      sent: warm.sent + measured.sent,
      stored: variant.logs ? done.stored : undefined,
      drainMs: done.drainMs,
      note: done.note || undefined,
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    children.delete(child);
    rmSync(dir, { recursive: true, force: true });
    if (schema) await pg?.dropSchema(schema);
  }
}

// ---------------------------------------------------------------- checks

const failures: string[] = [];
const warnings: string[] = [];

function loud(message: string): void {
  const bar = '!'.repeat(78);
  console.error(`\n${bar}\n!!! ${message}\n${bar}\n`);
}

/** Stored = seen by the server (exact); completed ≤ seen ≤ sent (the load generator's own counts). */
function check(variant: Variant, run: Run): string {
  const inFlight = run.served - run.completed;
  const parts = [`seen ${run.served}`, `${LOAD} completed ${run.completed} (+${inFlight} in flight at stop)`];
  if (run.served < run.completed || run.served > run.sent) {
    const message = `${variant.key}: server saw ${run.served} requests, ${LOAD} completed ${run.completed} and sent ${run.sent}`;
    warnings.push(message);
    loud(`COUNT MISMATCH ${message}`);
  }
  if (variant.logs) {
    parts.unshift(`stored ${run.stored}`);
    if (run.stored !== run.served) {
      const message = `${variant.key}: logger stored ${run.stored} of ${run.served} requests the server saw (${run.note ?? ''})`;
      failures.push(message);
      loud(`ROW COUNT MISMATCH ${message}`);
    }
  }
  return parts.join(', ');
}

// ---------------------------------------------------------------- main

const runs = new Map<ServerVariant, Run[]>(VARIANTS.map((v) => [v.key, []]));
const checks = new Map<ServerVariant, string[]>(VARIANTS.map((v) => [v.key, []]));
let profileText: string | undefined;

async function measure(variant: Variant): Promise<void> {
  try {
    const run = await runOnce(variant);
    runs.get(variant.key)?.push(run);
    const verdict = check(variant, run);
    checks.get(variant.key)?.push(verdict);
    console.error(
      `  ${variant.key.padEnd(11)} ${fmt(run.load.rps, 0).padStart(7)} req/s  p99 ${run.load.p99} ms  ` +
        `${fmt(run.cpuUsPerRequest, 1)} µs cpu/req (main thread ${fmt(run.mainCpuUsPerRequest ?? null, 1)})  ${verdict}; drain ${fmt(run.drainMs / 1000, 2)} s` +
        (run.storedRps !== undefined ? `; stored ${fmt(run.storedRps, 0)}/s in the window` : '') +
        (run.queuedAtEnd !== undefined ? `, ${run.queuedAtEnd} queued at its end` : '') +
        (run.note ? `; ${run.note}` : ''),
    );
  } catch (error) {
    const message = `${variant.key}: ${error instanceof Error ? error.message : String(error)}`;
    failures.push(message);
    console.error(`  ${variant.key}: FAILED ${message}`);
  }
}

async function main(): Promise<void> {
  console.error(
    `fastify bench${QUICK ? ' (quick)' : ''}: warm-up ${WARMUP_S} s + ${MEASURE_S} s measured per run, ` +
      `${CONNECTIONS} connections, pipelining ${PIPELINING}, ${LOAD} in its own process`,
  );
  for (const [i, order] of ORDERS.entries()) {
    console.error(`order ${order.map((v) => v.key).join(', ')}${i === 0 ? '' : ' (reversed)'}`);
    for (const v of order) await measure(v);
  }
  const ratio = ratioOf('tally', 'bare');
  const wanted = PROFILE === '1' || (PROFILE !== '0' && !QUICK && ratio !== null && ratio < TARGET_VS_BARE);
  if (wanted) {
    // The same measured window of bare Fastify first, as the baseline the Tally profile is read against.
    console.error('profiling extra bare, Tally and Tally null-sink runs (measured window only)');
    const profiled = async (key: ServerVariant) => {
      let summary: ProfileSummary | undefined;
      const run = await runOnce(VARIANTS.find((v) => v.key === key) as Variant, (file) => {
        summary = summarizeProfile(file);
      });
      return { summary: summary as ProfileSummary, requests: run.windowRequests, name: key };
    };
    try {
      const bare = await profiled('bare');
      const tally = await profiled('tally');
      const nullSink = await profiled('tally-null');
      profileText = [
        'Tally (PGlite) against bare Fastify:',
        formatProfile(tally.summary, tally.requests, bare),
        '',
        'Tally with the null sink (plugin + tracker, no storage) against bare Fastify:',
        formatProfile(nullSink.summary, nullSink.requests, bare),
      ].join('\n');
    } catch (error) {
      console.error(`  profiling failed: ${(error as Error).message}`);
    }
  }
}

// ---------------------------------------------------------------- report

function mean(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

function rps(key: ServerVariant): number | null {
  return mean((runs.get(key) ?? []).map((r) => r.load.rps));
}

/** Logs stored per second during the window: the rate the storage sustains (a backlog is not). */
function storedRps(key: ServerVariant): number | null {
  return mean((runs.get(key) ?? []).flatMap((r) => (r.storedRps === undefined ? [] : [r.storedRps])));
}

function ratioOfStored(key: ServerVariant): number | null {
  const a = storedRps(key);
  const b = rps('bare');
  return a === null || b === null || b <= 0 ? null : a / b;
}

function ratioOf(key: ServerVariant, baseline: ServerVariant): number | null {
  const a = rps(key);
  const b = rps(baseline);
  return a === null || b === null || b <= 0 ? null : a / b;
}

function report(): void {
  const header = [
    'variant',
    'req/s',
    '× bare',
    '× pino',
    'target',
    'stored/s',
    'p50/p99 ms',
    'cpu µs/req',
    'main thread',
    'runs (req/s)',
  ];
  const table = (ORDERS[0] ?? []).map((v) => {
    const rs = runs.get(v.key) ?? [];
    const vsBare = ratioOf(v.key, 'bare');
    const vsPino = ratioOf(v.key, 'pino');
    const target =
      v.key !== 'tally'
        ? ''
        : `≥ ${TARGET_VS_BARE}× bare ${vsBare !== null && vsBare >= TARGET_VS_BARE ? 'ok' : 'MISSED'}, ` +
          `> pino ${vsPino !== null && vsPino > 1 ? 'ok' : 'MISSED'}`;
    return [
      v.label,
      fmt(rps(v.key), 0),
      fmt(vsBare, 2),
      v.key === 'bare' ? '' : fmt(vsPino, 2),
      target,
      v.key.startsWith('tally') ? fmt(mean(rs.map((r) => r.storedRps ?? 0)), 0) : '',
      `${fmt(mean(rs.map((r) => r.load.p50)), 1)}/${fmt(mean(rs.map((r) => r.load.p99)), 1)}`,
      fmt(mean(rs.map((r) => r.cpuUsPerRequest)), 1),
      fmt(mean(rs.flatMap((r) => (r.mainCpuUsPerRequest === undefined ? [] : [r.mainCpuUsPerRequest]))), 1),
      rs.map((r) => fmt(r.load.rps, 0)).join(', '),
    ];
  });
  console.log('');
  console.log(
    `Fastify hello world, ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${MEASURE_S} s measured ` +
      `after ${WARMUP_S} s warm-up; req/s = mean of ${ORDERS.length} run(s) a variant ` +
      `(${ORDERS.length > 1 ? 'in order, then reversed' : 'one order'}), each on a fresh server process`,
  );
  printTable(header, table, [0, 4, 9]);
  console.log('');
  console.log('stored vs requests (warm-up included; "seen" = the server\'s own count):');
  for (const v of ORDERS[0] ?? []) {
    for (const [i, c] of (checks.get(v.key) ?? []).entries()) {
      const run = runs.get(v.key)?.[i];
      const extra = [
        run?.queuedAtEnd !== undefined ? `queued at end of window ${run.queuedAtEnd}` : '',
        v.logs && run ? `drain ${fmt(run.drainMs / 1000, 2)} s` : '',
        run?.note ?? '',
      ].filter(Boolean);
      console.log(`  ${v.key.padEnd(11)} run ${i + 1}: ${c}${extra.length > 0 ? `; ${extra.join('; ')}` : ''}`);
    }
  }
  if (profileText) {
    console.log('');
    console.log('CPU profiles of the server over a measured window (extra runs):');
    console.log(profileText);
  }
  for (const w of warnings) console.log(`WARNING ${w}`);
  for (const f of failures) console.log(`FAILED ${f}`);

  const ratioVsBare = round(ratioOf('tally', 'bare'), 3);
  const rowsOk = VARIANTS.filter((v) => v.logs).every((v) =>
    (runs.get(v.key) ?? []).every((r) => r.stored === r.served),
  );
  console.log(
    JSON.stringify({
      bench: 'fastify',
      quick: QUICK,
      load_generator: LOAD,
      connections: CONNECTIONS,
      measured_s: MEASURE_S,
      stat: 'mean',
      bare_rps: round(rps('bare'), 0),
      pino_rps: round(rps('pino'), 0),
      pino_redact_rps: round(rps('pino-redact'), 0),
      tally_rps: round(rps('tally'), 0),
      ratio_vs_bare: ratioVsBare,
      ratio_vs_pino: round(ratioOf('tally', 'pino'), 3),
      ratio_vs_pino_redact: round(ratioOf('tally', 'pino-redact'), 3),
      tally_stored_rps: round(storedRps('tally'), 0),
      tally_stored_ratio_vs_bare: round(ratioOfStored('tally'), 3),
      tally_inline_rps: round(rps('tally-inline'), 0),
      tally_inline_ratio_vs_bare: round(ratioOf('tally-inline', 'bare'), 3),
      tally_pg_rps: round(rps('tally-pg'), 0),
      tally_pg_ratio_vs_bare: round(ratioOf('tally-pg', 'bare'), 3),
      tally_null_rps: round(rps('tally-null'), 0),
      tally_null_ratio_vs_bare: round(ratioOf('tally-null', 'bare'), 3),
      pino_ratio_vs_bare: round(ratioOf('pino', 'bare'), 3),
      rows_ok: rowsOk,
      ratio: ratioVsBare,
    }),
  );
}

await runBench({ main, cleanup, report, failures });
