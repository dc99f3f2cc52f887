/**
 * Property-based fuzzing of `tally serve` (a real child process, PGlite): 20,000 random requests —
 * methods, known and random paths, lying or garbage headers (Content-Type, protobuf's among them, Content-Encoding,
 * Content-Length, credentials), bodies of random bytes, JSON-ish values, gzip of anything, oversized
 * ones and a gzip bomb, written in random pieces with pauses, some cut off mid-upload — sent over 16
 * raw keep-alive connections at once. Every answer must be the collector's typed JSON error with its
 * table status, or a 2xx (the ingest answer on POST); no 5xx but 503 with Retry-After; the process stays
 * up with a clean log, its memory after a GC bounded, nothing it acknowledged lost, and a good batch
 * stored after.
 *
 * Reproducible: a fixed seed and run count (fast-check prints seed and path on failure).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { deflateSync, gzipSync } from 'node:zlib';
import { httpStatusOf } from '@tally/core';
import { createStore } from '@tally/store';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { type IpcServeProcess, spawnServeIpc, UNHANDLED } from './support/child-process-ipc.js';
import {
  goodBody,
  goodEventsRequest,
  gzipBomb,
  INGEST_PATHS,
  isTypedError,
  pool,
  truncatedGzip,
} from './support/collector-requests.js';
import { type Outcome, RawConnection, type RawRequest } from './support/raw-http.js';

const SEED = 20_261_204;
const RUNS = 200;
const PER_RUN = 100; // RUNS × PER_RUN = 20,000 requests
const CONCURRENCY = 16;
const MAX_BODY = 64 * 1024;
/** RSS (after a GC) may grow by at most this over the run; the heap by at most HEAP_GROWTH. */
const RSS_GROWTH = 150 * 1024 * 1024;
const HEAP_GROWTH = 40 * 1024 * 1024;

type Auth = 'none' | 'good' | 'bad' | 'basic-good' | 'basic-garbage' | 'bearer-empty' | 'x-tally-key' | 'lower-bearer';
type BodySpec =
  | { kind: 'good' }
  | { kind: 'good-key-in-body' }
  | { kind: 'json'; value: unknown }
  | { kind: 'cut-good'; at: number }
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'huge'; size: number; fill: number }
  | { kind: 'empty' }
  | { kind: 'bomb' };
/** How the body bytes are packed; `as-declared` follows the Content-Encoding header (gzip for gzip…). */
type Packing = 'as-declared' | 'plain' | 'gzip' | 'deflate' | 'truncated-gzip';
type Framing = 'exact' | 'chunked' | 'short' | 'long' | 'garbage' | 'both';

interface FuzzRequest {
  method: string;
  path: string;
  host: boolean;
  contentType: string | undefined;
  contentEncoding: string | undefined;
  auth: Auth | { raw: string };
  body: BodySpec;
  packing: Packing;
  framing: Framing;
  extra: [string, string][];
  chunks: number;
  pauseMs: number;
  /** Fraction of the request's bytes after which the client hangs up. */
  abortAt: number | undefined;
}

const token = fc.stringMatching(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,16}$/);
const printable = fc.stringMatching(/^[ -~]{0,40}$/);

const fuzzRequest: fc.Arbitrary<FuzzRequest> = fc.record({
  method: fc.oneof(
    { weight: 14, arbitrary: fc.constant('POST') },
    { weight: 2, arbitrary: fc.constant('GET') },
    { weight: 2, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD') },
  ),
  path: fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...INGEST_PATHS) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        '/v1/identify',
        '/v1/page',
        '/batch/',
        '/capture/',
        '/v1/events?x=1',
        '/healthz',
        '/metrics',
        '/v1/snapshots/latest',
        '/',
      ),
    },
    { weight: 2, arbitrary: fc.webPath().map((p) => (p.startsWith('/') ? p : `/${p}`)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('/%zz', '/v1/%E0%A4%A', '//v1//events', `/${'a'.repeat(3000)}`, '/v1/events#x'),
    },
  ),
  host: fc.oneof({ weight: 30, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  contentType: fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/json') },
    // Protobuf: random bytes and JSON read as a tally.v1.Batch (a 400, or events refused one by one).
    { weight: 2, arbitrary: fc.constantFrom('application/x-protobuf', 'application/protobuf; proto=x') },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'text/plain',
        'text/plain;charset=UTF-8',
        'application/x-www-form-urlencoded',
        'x/y;;;',
        'multipart/form-data; boundary=zz',
        ';',
        'application/json; charset=utf-16',
      ),
    },
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: printable },
  ),
  contentEncoding: fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    { weight: 4, arbitrary: fc.constantFrom('gzip', 'deflate') },
    {
      weight: 2,
      arbitrary: fc.constantFrom('x-gzip', 'GZIP', 'identity', 'br', 'zstd', 'gzip, gzip', ' gzip ', 'compress'),
    },
    { weight: 1, arbitrary: token },
  ),
  auth: fc.oneof(
    { weight: 8, arbitrary: fc.constant<Auth>('good') },
    {
      weight: 5,
      arbitrary: fc.constantFrom<Auth>(
        'none',
        'bad',
        'basic-good',
        'basic-garbage',
        'bearer-empty',
        'x-tally-key',
        'lower-bearer',
      ),
    },
    { weight: 1, arbitrary: printable.map((raw) => ({ raw })) },
  ),
  body: fc.oneof(
    { weight: 8, arbitrary: fc.constant<BodySpec>({ kind: 'good' }) },
    { weight: 1, arbitrary: fc.constant<BodySpec>({ kind: 'good-key-in-body' }) },
    { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((value): BodySpec => ({ kind: 'json', value })) },
    { weight: 2, arbitrary: fc.nat(400).map((at): BodySpec => ({ kind: 'cut-good', at })) },
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 2048 }).map((bytes): BodySpec => ({ kind: 'bytes', bytes })) },
    {
      weight: 1,
      arbitrary: fc
        .record({ size: fc.integer({ min: MAX_BODY + 1, max: 3 * MAX_BODY }), fill: fc.nat(255) })
        .map((h): BodySpec => ({ kind: 'huge', ...h })),
    },
    { weight: 1, arbitrary: fc.constant<BodySpec>({ kind: 'empty' }) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        { weight: 9, arbitrary: fc.constant<BodySpec>({ kind: 'empty' }) },
        { weight: 1, arbitrary: fc.constant<BodySpec>({ kind: 'bomb' }) },
      ),
    },
  ),
  packing: fc.oneof(
    { weight: 3, arbitrary: fc.constant<Packing>('as-declared') },
    { weight: 2, arbitrary: fc.constantFrom<Packing>('plain', 'gzip', 'deflate', 'truncated-gzip') },
  ),
  framing: fc.oneof(
    { weight: 30, arbitrary: fc.constant<Framing>('exact') },
    { weight: 3, arbitrary: fc.constant<Framing>('chunked') },
    { weight: 1, arbitrary: fc.constantFrom<Framing>('short', 'long', 'garbage', 'both') },
  ),
  extra: fc.array(
    fc.oneof(
      fc.tuple(fc.stringMatching(/^x-[a-z-]{1,10}$/), printable),
      fc.constantFrom<[string, string]>(
        ['expect', '100-continue'],
        ['expect', 'the-unexpected'],
        ['connection', 'close'],
        ['x-forwarded-for', '1.2.3.4'],
        ['accept-encoding', 'gzip'],
        ['content-type', 'application/json'],
      ),
    ),
    { maxLength: 2 },
  ),
  chunks: fc.integer({ min: 1, max: 6 }),
  pauseMs: fc.integer({ min: 0, max: 2 }),
  abortAt: fc.oneof(
    { weight: 24, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.double({ min: 0, max: 0.99, noNaN: true }) },
  ),
});

let s: IpcServeProcess;
const data = tempDir('tally-fuzz-');
const TAG = `fuzz-${randomBytes(4).toString('hex')}`;
let bomb: Buffer;
let baseline: NodeJS.MemoryUsage;
const tally = {
  requests: 0,
  answered: 0,
  closed: 0,
  acknowledged: 0,
  goodSent: 0,
  statuses: new Map<number, number>(),
};

beforeAll(async () => {
  bomb = await gzipBomb(1);
  s = await spawnServeIpc([
    '--data-dir',
    data.dir,
    '--max-body-bytes',
    String(MAX_BODY),
    '--headers-timeout-ms',
    '2000',
    '--request-timeout-ms',
    '3000',
  ]);
}, 90_000);

afterAll(async () => {
  await s?.stop();
  data.cleanup();
});

function bodyBytes(r: FuzzRequest): { bytes: Buffer; good: boolean } {
  let raw: Buffer;
  let good = false;
  switch (r.body.kind) {
    case 'good':
      good = true;
      raw = Buffer.from(JSON.stringify(goodBody(r.path, TAG)));
      break;
    case 'good-key-in-body':
      good = true;
      raw = Buffer.from(JSON.stringify({ ...goodBody(r.path, TAG), writeKey: s.key, api_key: s.key }));
      break;
    case 'json':
      raw = Buffer.from(JSON.stringify(r.body.value) ?? 'null');
      break;
    case 'cut-good': {
      const full = JSON.stringify(goodBody(r.path, `${TAG}-cut`));
      raw = Buffer.from(full.slice(0, r.body.at % full.length));
      break;
    }
    case 'bytes':
      raw = Buffer.from(r.body.bytes);
      break;
    case 'huge':
      raw = Buffer.alloc(r.body.size, r.body.fill);
      break;
    case 'empty':
      raw = Buffer.alloc(0);
      break;
    case 'bomb':
      return { bytes: bomb, good: false };
  }
  const declared = r.contentEncoding?.trim().toLowerCase();
  const packing =
    r.packing !== 'as-declared'
      ? r.packing
      : declared === 'gzip' || declared === 'x-gzip'
        ? 'gzip'
        : declared === 'deflate'
          ? 'deflate'
          : 'plain';
  if (packing === 'gzip') return { bytes: gzipSync(raw), good };
  if (packing === 'deflate') return { bytes: deflateSync(raw), good };
  if (packing === 'truncated-gzip') return { bytes: truncatedGzip(raw), good };
  return { bytes: raw, good };
}

function authHeaders(auth: FuzzRequest['auth']): [string, string][] {
  if (typeof auth === 'object') return [['authorization', auth.raw]];
  switch (auth) {
    case 'none':
      return [];
    case 'good':
      return [['authorization', `Bearer ${s.key}`]];
    case 'bad':
      return [['authorization', 'Bearer tk_0000000000000000000000000000000']];
    case 'basic-good':
      return [['authorization', `Basic ${Buffer.from(`${s.key}:`).toString('base64')}`]];
    case 'basic-garbage':
      return [['authorization', 'Basic ::::%%%']];
    case 'bearer-empty':
      return [['authorization', 'Bearer ']];
    case 'x-tally-key':
      return [['x-tally-key', s.key]];
    case 'lower-bearer':
      return [['authorization', `bearer ${s.key}`]];
  }
}

/** The request as sent, and whether it is "dirty" (the connection cannot be reused after it). */
function build(r: FuzzRequest): { req: RawRequest; dirty: boolean; good: boolean } {
  const { bytes, good } = bodyBytes(r);
  const headers: [string, string][] = [];
  if (r.host) headers.push(['host', 'collector.test']);
  if (r.contentType !== undefined) headers.push(['content-type', r.contentType]);
  if (r.contentEncoding !== undefined) headers.push(['content-encoding', r.contentEncoding]);
  headers.push(...authHeaders(r.auth), ...r.extra);
  let body: Buffer = bytes;
  let dirty =
    r.abortAt !== undefined || r.extra.some(([k, v]) => k === 'connection' || (k === 'expect' && v !== '100-continue'));
  switch (r.framing) {
    case 'exact':
      headers.push(['content-length', String(bytes.length)]);
      break;
    case 'chunked': {
      headers.push(['transfer-encoding', 'chunked']);
      const half = bytes.length >> 1;
      const chunk = (b: Buffer) =>
        b.length === 0 ? [] : [Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')];
      body = Buffer.concat([
        ...chunk(bytes.subarray(0, half)),
        ...chunk(bytes.subarray(half)),
        Buffer.from('0\r\n\r\n'),
      ]);
      break;
    }
    case 'short':
      headers.push(['content-length', String(bytes.length >> 1)]);
      dirty = true;
      break;
    case 'long':
      headers.push(['content-length', String(bytes.length + 1 + (bytes.length >> 1))]);
      dirty = true;
      break;
    case 'garbage':
      headers.push(['content-length', '12abc']);
      dirty = true;
      break;
    case 'both':
      headers.push(['content-length', String(bytes.length)], ['transfer-encoding', 'chunked']);
      dirty = true;
      break;
  }
  const req: RawRequest = { method: r.method, path: r.path, headers, body, chunks: r.chunks, pauseMs: r.pauseMs };
  if (r.abortAt !== undefined) {
    const full = Buffer.byteLength(`${r.method} ${r.path}`) + body.length;
    req.abortAfter = Math.floor(full * r.abortAt);
  }
  return { req, dirty, good: good && r.method === 'POST' };
}

const INGEST = new Set<string>(INGEST_PATHS);

/** Why this outcome is wrong, or undefined when it is as the collector promises. */
function check(r: FuzzRequest, dirty: boolean, o: Outcome): string | undefined {
  if (o.kind === 'closed') return dirty ? undefined : `no answer (${o.error})`;
  const { status, headers, body } = o.response;
  tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1);
  if (status >= 500 && !(status === 503 && headers['retry-after'] !== undefined)) return `status ${status}: ${body}`;
  if ((status >= 300 && status < 400) || status < 200 || status > 599) return `status ${status}`;
  if (r.method === 'HEAD') return undefined;
  if (status < 300) {
    if (r.method !== 'POST') return undefined;
    let json: { accepted?: unknown };
    try {
      json = JSON.parse(body.toString('utf8')) as { accepted?: unknown };
    } catch {
      return `${status} with a body that is not JSON: ${body.toString('utf8').slice(0, 100)}`;
    }
    if (typeof json.accepted !== 'number')
      return `${status} without "accepted": ${body.toString('utf8').slice(0, 200)}`;
    if (INGEST.has(r.path)) tally.acknowledged += json.accepted;
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return `${status} with a body that is not JSON: ${body.toString('utf8').slice(0, 100)}`;
  }
  if (!isTypedError(json)) return `${status} without a typed error: ${body.toString('utf8').slice(0, 200)}`;
  if (httpStatusOf(json.error.code) !== status)
    return `${status} for ${json.error.code} (the table says ${httpStatusOf(json.error.code)})`;
  return undefined;
}

function label(r: FuzzRequest): string {
  const body = r.body.kind === 'bytes' ? `bytes(${r.body.bytes.length})` : r.body.kind;
  return `${r.method} ${r.path.slice(0, 60)} type=${r.contentType} enc=${r.contentEncoding} auth=${typeof r.auth === 'object' ? 'raw' : r.auth} body=${body}/${r.packing} framing=${r.framing} chunks=${r.chunks}×${r.pauseMs}ms abort=${r.abortAt ?? '-'} extra=${JSON.stringify(r.extra)}`;
}

it(`${RUNS * PER_RUN} random requests: typed answers only, the process up with a clean log, memory bounded, nothing acknowledged lost`, async () => {
  const connections = Array.from({ length: CONCURRENCY }, () => new RawConnection(s.port));
  const started = Date.now();
  try {
    // Warm up (JIT, pools, caches) before the memory baseline.
    await pool(
      Array.from({ length: 400 }, (_, i) => i),
      CONCURRENCY,
      async (_, worker) => {
        await (connections[worker] as RawConnection).send(goodEventsRequest(s.key, `${TAG}-warm`));
      },
    );
    baseline = await s.memory();

    await fc.assert(
      fc.asyncProperty(fc.array(fuzzRequest, { minLength: PER_RUN, maxLength: PER_RUN }), async (requests) => {
        const failures: string[] = [];
        await pool(requests, CONCURRENCY, async (r, worker) => {
          const c = connections[worker] as RawConnection;
          const { req, dirty, good } = build(r);
          // A request whose length lies may be waiting for bytes that never come: give it a moment to be
          // answered early (415, 413…), then hang up, as a client would.
          const outcome = await c.send(req, r.framing === 'long' ? 100 : 15_000);
          tally.requests++;
          if (good) tally.goodSent++;
          if (outcome.kind === 'response') tally.answered++;
          else tally.closed++;
          if (dirty) c.close();
          const problem = check(r, dirty, outcome);
          if (problem) failures.push(`${label(r)}\n    → ${problem}`);
        });
        if (s.proc.exitCode !== null || s.proc.signalCode !== null)
          failures.push(`the server exited (${s.proc.exitCode})`);
        if (failures.length > 0)
          throw new Error(`${failures.length} of ${requests.length} wrong:\n${failures.slice(0, 10).join('\n')}`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  } finally {
    for (const c of connections) c.close();
  }
  const seconds = (Date.now() - started) / 1000;
  console.log(
    `fuzz: ${tally.requests} requests in ${seconds.toFixed(1)} s, ${tally.answered} answered, ${tally.closed} cut off; ` +
      `statuses ${JSON.stringify(Object.fromEntries([...tally.statuses].sort((a, b) => a[0] - b[0])))}`,
  );
  expect(tally.requests).toBe(RUNS * PER_RUN);

  const after = await s.memory();
  console.log(
    `fuzz memory after GC: rss ${(baseline.rss / 2 ** 20).toFixed(0)} → ${(after.rss / 2 ** 20).toFixed(0)} MB, ` +
      `heap ${(baseline.heapUsed / 2 ** 20).toFixed(0)} → ${(after.heapUsed / 2 ** 20).toFixed(0)} MB`,
  );
  expect(after.rss - baseline.rss).toBeLessThan(RSS_GROWTH);
  expect(after.heapUsed - baseline.heapUsed).toBeLessThan(HEAP_GROWTH);

  // Alive, serving, and a good batch after it all.
  expect((await fetch(`${s.url}/healthz`)).status).toBe(200);
  const last = await fetch(`${s.url}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
    body: JSON.stringify(goodBody('/v1/events', `${TAG}-last`)),
  });
  expect(await last.json()).toMatchObject({ accepted: 1 });
  const metrics = await (await fetch(`${s.url}/metrics`)).text();
  expect(metrics).not.toMatch(/^tally_internal_errors_total\{[^}]*\} [1-9]/m);

  expect(await s.stop()).toBe(0);
  expect(s.output()).not.toMatch(UNHANDLED);
  // A fault answered 500 is logged as such; there were none.
  expect(s.output()).not.toMatch(/collector fault/);
  const store = await createStore({ kind: 'pglite', dataDir: join(data.dir, 'pglite'), schema: 'tally' });
  try {
    const count = async (tag: string) =>
      Number(
        (
          await store.sql.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM events WHERE properties->>'source' = $1`,
            [tag],
          )
        )[0]?.n,
      );
    expect(await count(`${TAG}-last`)).toBe(1);
    // Every event acknowledged is stored (some cut-off uploads may be stored unacknowledged).
    const stored = await count(TAG);
    expect(stored).toBeGreaterThanOrEqual(tally.acknowledged);
    expect(stored).toBeLessThanOrEqual(tally.goodSent);
  } finally {
    await store.close();
  }
}, 300_000);
