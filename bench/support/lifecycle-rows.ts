/**
 * Rows for the lifecycle benchmark (bench/lifecycle.bench.ts): days of events (the ingest benchmark's
 * catalog events, {@link makeEventRows}) and request logs, as COPY text-format chunks generated a slice
 * of time at a time, so a million rows are streamed into Postgres without ever being held in memory
 * at once. Deterministic (seeded): every schema of a run gets the same rows.
 */
import { isoTime, uuidv7 } from '@tally/core';
import { copyText, copyValue, makeEventRows, TENANTS } from './ingest-rows.js';
import { hex, int, pick, type Rand, seeded } from './seeded.js';

/** The request_logs columns, in the order {@link requestLogChunks} writes them. */
export const REQUEST_LOG_COLUMNS = [
  'id',
  'tenant_id',
  'request_id',
  'method',
  'route',
  'url',
  'status',
  'duration_ms',
  'request_bytes',
  'response_bytes',
  'user_id',
  'api_key_id',
  'ip',
  'user_agent',
  'headers',
  'request_body',
  'response_body',
  'body_truncated',
  'stream_body',
  'aborted',
  'error',
  'ts',
  'received_at',
] as const;

/** Rows per generated slice of time (and so per COPY chunk handed to the stream). */
const SLICE_ROWS = 2000;

/**
 * `total` events over `[endMs - spanMs, endMs)`, in time order, as COPY text chunks of the events
 * table's columns ({@link EVENT_COLUMNS}); each slice of time gets its own seed.
 */
export function* eventChunks(total: number, endMs: number, spanMs: number, seed = 1): Generator<string> {
  const slices = Math.ceil(total / SLICE_ROWS);
  const startMs = endMs - spanMs;
  for (let s = 0; s < slices; s++) {
    const n = Math.min(SLICE_ROWS, total - s * SLICE_ROWS);
    const sliceStart = startMs + Math.floor((s * spanMs) / slices);
    const sliceEnd = startMs + Math.floor(((s + 1) * spanMs) / slices);
    const rows = makeEventRows(n, { seed: seed * 100_003 + s, endMs: sliceEnd, spanMs: sliceEnd - sliceStart });
    yield copyText(rows);
  }
}

const ROUTES: { method: string; route: string; url: (r: Rand) => string; body: boolean }[] = [
  { method: 'GET', route: '/v1/tasks/:id', url: (r) => `/v1/tasks/task-${hex(r)}`, body: false },
  { method: 'POST', route: '/v1/tasks', url: () => '/v1/tasks', body: true },
  { method: 'GET', route: '/v1/tasks', url: (r) => `/v1/tasks?limit=${10 * (1 + int(r, 5))}&status=done`, body: false },
  { method: 'POST', route: '/v1/rag/query', url: () => '/v1/rag/query', body: true },
  { method: 'GET', route: '/v1/assets/:id', url: (r) => `/v1/assets/asset-${hex(r)}`, body: false },
  { method: 'DELETE', route: '/v1/assets/:id', url: (r) => `/v1/assets/asset-${hex(r)}`, body: false },
  { method: 'GET', route: '/healthz', url: () => '/healthz', body: false },
];
const AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  'tally-sdk-python/0.4.1',
  'curl/8.5.0',
];

/**
 * `total` request logs over `[endMs - spanMs, endMs)`, in time order, as COPY text chunks of
 * {@link REQUEST_LOG_COLUMNS}: redacted headers, small JSON bodies on writes, 2% 5xx, 6% 4xx.
 */
export function* requestLogChunks(total: number, endMs: number, spanMs: number, seed = 7): Generator<string> {
  const rand = seeded(seed);
  const startMs = endMs - spanMs;
  let text = '';
  for (let i = 0; i < total; i++) {
    const born = startMs + Math.floor((i * spanMs) / total);
    const route = pick(rand, ROUTES);
    const roll = rand();
    const status = roll < 0.02 ? 503 : roll < 0.08 ? 404 : route.method === 'POST' ? 201 : 200;
    const durationMs = Math.round((route.route === '/v1/rag/query' ? 400 : 20) * (0.2 + 3 * rand() ** 3) * 100) / 100;
    const userId = rand() < 0.9 ? `user-${int(rand, 3000)}` : undefined;
    const agent = pick(rand, AGENTS);
    const headers = JSON.stringify({
      host: 'api.example.com',
      'user-agent': agent,
      accept: 'application/json',
      authorization: '[REDACTED]',
      'x-request-id': `req-${hex(rand)}${hex(rand)}`,
      ...(route.body ? { 'content-type': 'application/json' } : {}),
    });
    const requestBody = route.body
      ? JSON.stringify({ taskType: 'summarize', input: `doc-${hex(rand)}`, priority: int(rand, 5) })
      : undefined;
    const responseBody =
      status >= 500
        ? JSON.stringify({ error: 'upstream unavailable', code: 'PROVIDER_TIMEOUT' })
        : route.body
          ? JSON.stringify({ id: `task-${hex(rand)}`, status: 'queued' })
          : undefined;
    const values = [
      uuidv7(born),
      pick(rand, TENANTS),
      `req-${hex(rand)}${hex(rand)}`,
      route.method,
      route.route,
      route.url(rand),
      status,
      durationMs,
      requestBody?.length ?? 0,
      responseBody?.length ?? int(rand, 20_000),
      userId,
      userId ? `key-${int(rand, 50)}` : undefined,
      `10.${int(rand, 256)}.${int(rand, 256)}.${int(rand, 256)}`,
      agent,
      headers,
      requestBody,
      responseBody,
      false,
      undefined,
      rand() < 0.005,
      status >= 500 ? 'upstream timed out after 30000 ms' : undefined,
      isoTime(born),
      isoTime(born + 20 + int(rand, 300)),
    ];
    text += `${values.map(copyValue).join('\t')}\n`;
    if ((i + 1) % SLICE_ROWS === 0) {
      yield text;
      text = '';
    }
  }
  if (text !== '') yield text;
}
