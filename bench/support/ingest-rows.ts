/**
 * Rows for the ingest benchmarks (bench/ingest.bench.ts, bench/ingest-http.bench.ts; the lifecycle
 * benchmark's events too): events shaped like the product catalog's, as the writer receives them, and
 * the two encodings the raw peers use — COPY text format and the column arrays of an `unnest(…)` insert.
 * Deterministic (seeded), so every variant of a run gets the same rows.
 */
import { isoTime, type JsonValue, uuidv7 } from '@tally/core';
import type { EventRow } from '@tally/store';
import { hex, int, pick, type Rand, seeded, weighted } from './seeded.js';

/** The events table's columns, in the order both encodings below use. */
export const EVENT_COLUMNS = [
  'id',
  'tenant_id',
  'name',
  'user_id',
  'anonymous_id',
  'properties',
  'context',
  'ts',
  'received_at',
] as const;

/** The tenants every generated row belongs to (request logs too). */
export const TENANTS = ['tenant-acme', 'tenant-globex', 'tenant-initech', 'tenant-umbrella', 'tenant-hooli'];
// Skewed like real traffic: one big tenant, a long tail.
const TENANT_WEIGHTS = [0.4, 0.25, 0.15, 0.12, 0.08];
const TASK_TYPES = ['summarize', 'transcribe', 'render', 'classify', 'embed'];
const PROVIDERS = ['openai', 'anthropic', 'mistral', 'local'];
const MODELS = ['gpt-4o-mini', 'claude-haiku', 'mistral-small', 'llama-3-8b'];
const USERS = 3000;
const LIBRARY = { name: '@tally/node', version: '0.1.0' };

/** Ten catalog events with their relative frequency and a props builder (3–5 keys each). */
const EVENTS: { name: string; weight: number; props: (rand: Rand, taskId: string) => Record<string, JsonValue> }[] = [
  {
    name: 'task_created',
    weight: 0.16,
    props: (r, taskId) => ({ taskId, taskType: pick(r, TASK_TYPES), priority: int(r, 5), source: 'api' }),
  },
  {
    name: 'task_enqueued',
    weight: 0.16,
    props: (r, taskId) => ({ taskId, queue: `queue-${int(r, 4)}`, delayMs: int(r, 2000) }),
  },
  {
    name: 'task_routed',
    weight: 0.14,
    props: (r, taskId) => ({ taskId, provider: pick(r, PROVIDERS), model: pick(r, MODELS), reason: 'cheapest' }),
  },
  {
    name: 'task_completed',
    weight: 0.14,
    props: (r, taskId) => ({
      taskId,
      taskType: pick(r, TASK_TYPES),
      durationMs: Math.round(r() * 30_000) / 10,
      attempts: 1 + int(r, 3),
      provider: pick(r, PROVIDERS),
    }),
  },
  {
    name: 'task_failed',
    weight: 0.04,
    props: (r, taskId) => ({
      taskId,
      errorCode: 'PROVIDER_TIMEOUT',
      // Quotes and a backslash: JSON escapes them, and COPY text format must escape the backslashes again.
      errorMessage: `provider "${pick(r, PROVIDERS)}" timed out after 30s (path C:\\tmp)`,
      attempts: 1 + int(r, 3),
      retryable: r() < 0.7,
    }),
  },
  {
    name: 'task_rate_limited',
    weight: 0.05,
    props: (r, taskId) => ({ taskId, provider: pick(r, PROVIDERS), retryAfterMs: int(r, 60_000), limit: 'rpm' }),
  },
  {
    name: 'asset_uploaded',
    weight: 0.08,
    props: (r) => ({
      assetId: `asset-${hex(r)}`,
      kind: pick(r, ['image', 'video', 'audio', 'document']),
      bytes: int(r, 50_000_000),
      mimeType: 'image/png',
    }),
  },
  {
    name: 'rag_query_completed',
    weight: 0.15,
    props: (r) => ({
      queryId: `q-${hex(r)}`,
      durationMs: Math.round(r() * 5000) / 10,
      documents: int(r, 20),
      tokensIn: int(r, 4000),
      cacheHit: r() < 0.3,
    }),
  },
  {
    name: 'user_signed_up',
    weight: 0.03,
    props: (r) => ({ method: pick(r, ['email', 'google', 'github']), plan: 'free', referrer: 'https://example.com/' }),
  },
  {
    name: 'worker_guards_blocked',
    weight: 0.05,
    props: (r, taskId) => ({
      taskId,
      guard: pick(r, ['budget', 'policy', 'safety']),
      reason: 'monthly budget reached',
    }),
  },
];
const EVENT_WEIGHTS = EVENTS.map((e) => e.weight);

/**
 * `n` events born in time order over the `spanMs` before `endMs` (so rollups span several hours), each
 * with a UUIDv7 id of its own birth time, a user (or, for 5%, only an anonymous id) and request context.
 */
export function makeEventRows(n: number, options: { seed?: number; endMs?: number; spanMs?: number } = {}): EventRow[] {
  const rand = seeded(options.seed ?? 1);
  const spanMs = options.spanMs ?? 6 * 3600_000;
  const start = (options.endMs ?? Date.now()) - spanMs;
  const rows: EventRow[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const born = start + Math.floor((i * spanMs) / n);
    const event = weighted(rand, EVENTS, EVENT_WEIGHTS);
    const anonymous = rand() < 0.05;
    const context: EventRow['context'] = {
      service: rand() < 0.6 ? 'api' : 'worker',
      requestId: `req-${hex(rand)}${hex(rand)}`,
      library: LIBRARY,
    };
    // The SDK samples this high-frequency event; the rollup's weighted count scales it back.
    if (event.name === 'task_enqueued') context.sampleRate = 0.5;
    const row: EventRow = {
      id: uuidv7(born),
      name: event.name,
      tenantId: weighted(rand, TENANTS, TENANT_WEIGHTS),
      properties: event.props(rand, `task-${hex(rand)}`),
      context,
      timestamp: isoTime(born),
      receivedAt: isoTime(born + 50 + int(rand, 200)),
    };
    if (anonymous) row.anonymousId = `anon-${hex(rand)}`;
    else row.userId = `user-${int(rand, USERS)}`;
    rows[i] = row;
  }
  return rows;
}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const NEEDS_ESCAPE = /[\\\t\n\r]/;

/** A value in COPY text format: backslash, tab, newline and CR escaped; null as `\N`. */
export function copyValue(value: string | number | boolean | undefined): string {
  if (value === undefined) return '\\N';
  // Strings skip String(): this runs inside the timed COPY variants, once a column a row.
  const s = typeof value === 'string' ? value : String(value);
  return NEEDS_ESCAPE.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c] as string) : s;
}

/** Rows `[from, to)` as COPY text-format lines, columns in {@link EVENT_COLUMNS} order. */
export function copyText(rows: readonly EventRow[], from = 0, to = rows.length): string {
  let text = '';
  for (let i = from; i < to; i++) {
    const r = rows[i] as EventRow;
    text +=
      `${r.id}\t${copyValue(r.tenantId)}\t${copyValue(r.name)}\t${copyValue(r.userId)}\t` +
      `${copyValue(r.anonymousId)}\t${copyValue(JSON.stringify(r.properties))}\t` +
      `${copyValue(JSON.stringify(r.context))}\t${r.timestamp}\t${r.receivedAt}\n`;
  }
  return text;
}

/** Rows per COPY data chunk (~200 KB of text). */
export const COPY_CHUNK_ROWS = 1000;

/**
 * COPY text of every `streams`-th chunk of {@link COPY_CHUNK_ROWS} rows, starting at chunk `lane`: with
 * `streams` > 1, that many COPYs on their own connections share the rows between them.
 */
export function* copyChunks(rows: readonly EventRow[], lane = 0, streams = 1): Generator<string> {
  const step = COPY_CHUNK_ROWS * streams;
  for (let i = lane * COPY_CHUNK_ROWS; i < rows.length; i += step) yield copyText(rows, i, i + COPY_CHUNK_ROWS);
}

/** Rows `[from, to)` as the nine text arrays of an `unnest(…)` insert (as the store builds them). */
export function unnestColumns(rows: readonly EventRow[], from = 0, to = rows.length): (string | null)[][] {
  const cols: (string | null)[][] = [[], [], [], [], [], [], [], [], []];
  const [id, tenant, name, user, anon, props, context, ts, received] = cols as [
    (string | null)[],
    (string | null)[],
    (string | null)[],
    (string | null)[],
    (string | null)[],
    (string | null)[],
    (string | null)[],
    (string | null)[],
    (string | null)[],
  ];
  for (let i = from; i < to; i++) {
    const r = rows[i] as EventRow;
    id.push(r.id);
    tenant.push(r.tenantId);
    name.push(r.name);
    user.push(r.userId ?? null);
    anon.push(r.anonymousId ?? null);
    props.push(JSON.stringify(r.properties));
    context.push(JSON.stringify(r.context));
    ts.push(r.timestamp);
    received.push(r.receivedAt);
  }
  return cols;
}
