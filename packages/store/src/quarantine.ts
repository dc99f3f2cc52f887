/**
 * The quarantine: events the collector refused one by one, kept so that nothing refused is lost. The
 * official Segment and PostHog SDKs ignore the per-event `rejected` list of an answer, so without it a
 * catalog mismatch would drop their events silently. Rows are keyed by (tenant, event id): a resent
 * batch quarantines each refused event once, and a replay stores each one once.
 */
import type { SqlClient } from './sql-client.js';

/** The longest `item` kept, in UTF-8 bytes; a longer one is cut and marked `truncated` (not replayable). */
export const QUARANTINE_ITEM_MAX_BYTES = 16 * 1024;

export interface QuarantineEntry {
  tenantId: string;
  /** The event's own id, or one derived from its content when it has none. */
  eventId: string;
  name: string | null;
  code: string;
  message: string;
  /** The candidate envelope as JSON text (Segment and PostHog messages already in Tally's shape). */
  item: string;
  /** Collector route (`/v1/batch`…) the event came through. */
  source: string;
  keyId: string | null;
  /** The batch's `sentAt`, as the producer sent it: a replay judges the event's clock as the collector did. */
  sentAt: string | null;
  receivedAt: string;
}

export interface QuarantinedEvent extends QuarantineEntry {
  seq: number;
  truncated: boolean;
}

export interface QuarantineFilter {
  tenantId?: string;
  code?: string;
  name?: string;
  /** ISO time: only events received at or after it. */
  since?: string;
  /** Only events with a seq above this (paging in replay order). */
  afterSeq?: number;
  limit?: number;
}

/** Stores refused events; returns how many were new (a resent event is kept once, as first refused). */
export async function quarantineEvents(sql: SqlClient, entries: readonly QuarantineEntry[]): Promise<number> {
  if (entries.length === 0) return 0;
  const cols: unknown[][] = [[], [], [], [], [], [], [], [], [], [], []];
  for (const e of entries) {
    const { text, truncated } = capItem(e.item);
    // Booleans as text: postgres.js sends a JS boolean[] parameter as one boolean, not as an array.
    const values = [e.tenantId, e.eventId, e.name, e.code, e.message, text, truncated ? 't' : 'f', e.source, e.keyId];
    values.push(e.sentAt, e.receivedAt);
    for (let i = 0; i < values.length; i++) (cols[i] as unknown[]).push(values[i]);
  }
  const rows = await sql.query(
    `INSERT INTO quarantine (tenant_id, event_id, name, code, message, item, truncated, source, key_id, sent_at,
       received_at)
     SELECT * FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]::boolean[],
       $8::text[], $9::text[], $10::text[], $11::timestamptz[])
     ON CONFLICT (tenant_id, event_id) DO NOTHING
     RETURNING 1`,
    cols,
  );
  return rows.length;
}

/** Refused events, oldest first (the order a replay takes them) or newest first for a listing. */
export async function listQuarantine(
  sql: SqlClient,
  filter: QuarantineFilter = {},
  order: 'oldest' | 'newest' = 'newest',
): Promise<QuarantinedEvent[]> {
  const rows = await sql.query<QuarantineRow>(
    `SELECT ${COLUMNS} FROM quarantine ${WHERE}
     ORDER BY seq ${order === 'newest' ? 'DESC' : 'ASC'} LIMIT $6`,
    [...filterParams(filter), filter.limit ?? 100],
  );
  return rows.map(toEvent);
}

/** How many refused events match, by error code. */
export async function countQuarantine(sql: SqlClient, filter: QuarantineFilter = {}): Promise<Record<string, number>> {
  const rows = await sql.query<{ code: string; n: number }>(
    `SELECT code, count(*)::int AS n FROM quarantine ${WHERE} GROUP BY code ORDER BY code`,
    filterParams(filter),
  );
  return Object.fromEntries(rows.map((r) => [r.code, Number(r.n)]));
}

/** Forgets events that a replay stored (or found stored already). */
export async function removeQuarantined(
  sql: SqlClient,
  tenantId: string,
  eventIds: readonly string[],
): Promise<number> {
  if (eventIds.length === 0) return 0;
  const rows = await sql.query(
    'DELETE FROM quarantine WHERE tenant_id = $1 AND event_id = ANY($2::uuid[]) RETURNING 1',
    [tenantId, eventIds],
  );
  return rows.length;
}

/** Records why an event still fails after a replay (the catalog or the policy may have changed). */
export async function updateQuarantined(
  sql: SqlClient,
  tenantId: string,
  updates: readonly { eventId: string; code: string; message: string }[],
): Promise<void> {
  if (updates.length === 0) return;
  await sql.query(
    `UPDATE quarantine q SET code = u.code, message = u.message
     FROM unnest($2::uuid[], $3::text[], $4::text[]) AS u (event_id, code, message)
     WHERE q.tenant_id = $1 AND q.event_id = u.event_id`,
    [tenantId, updates.map((u) => u.eventId), updates.map((u) => u.code), updates.map((u) => u.message)],
  );
}

/** Keeps a tenant's newest `maxRows` refused events; returns how many older ones it dropped. */
export async function trimQuarantine(sql: SqlClient, tenantId: string, maxRows: number): Promise<number> {
  const rows = await sql.query(
    `DELETE FROM quarantine WHERE tenant_id = $1 AND seq <= (
       SELECT seq FROM quarantine WHERE tenant_id = $1 ORDER BY seq DESC OFFSET $2 LIMIT 1)
     RETURNING 1`,
    [tenantId, maxRows],
  );
  return rows.length;
}

/** Deletes refused events received more than `days` days ago; returns how many. */
export async function expireQuarantine(sql: SqlClient, days: number, now = Date.now()): Promise<number> {
  const rows = await sql.query('DELETE FROM quarantine WHERE received_at < $1::timestamptz RETURNING 1', [
    new Date(now - days * 86_400_000).toISOString(),
  ]);
  return rows.length;
}

/** The tenants that have refused events (replay and trimming go tenant by tenant). */
export async function quarantineTenants(sql: SqlClient, tenantId?: string): Promise<string[]> {
  const rows = await sql.query<{ tenant_id: string }>(
    'SELECT DISTINCT tenant_id FROM quarantine WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY tenant_id',
    [tenantId ?? null],
  );
  return rows.map((r) => r.tenant_id);
}

/** Cuts JSON text to the cap on a character boundary (never half a UTF-16 pair). */
function capItem(item: string): { text: string; truncated: boolean } {
  // Each UTF-16 unit is at most 3 UTF-8 bytes: short texts need no measuring.
  if (item.length * 3 <= QUARANTINE_ITEM_MAX_BYTES) return { text: item, truncated: false };
  const bytes = Buffer.from(item, 'utf8');
  if (bytes.length <= QUARANTINE_ITEM_MAX_BYTES) return { text: item, truncated: false };
  let text = bytes.subarray(0, QUARANTINE_ITEM_MAX_BYTES).toString('utf8');
  if (text.endsWith('\uFFFD')) text = text.slice(0, -1); // a multi-byte character cut in half
  return { text, truncated: true };
}

const WHERE = `WHERE ($1::text IS NULL OR tenant_id = $1) AND ($2::text IS NULL OR code = $2)
  AND ($3::text IS NULL OR name = $3) AND ($4::timestamptz IS NULL OR received_at >= $4)
  AND ($5::bigint IS NULL OR seq > $5)`;

function filterParams(f: QuarantineFilter): unknown[] {
  return [f.tenantId ?? null, f.code ?? null, f.name ?? null, f.since ?? null, f.afterSeq ?? null];
}

const COLUMNS = `seq, tenant_id, event_id::text AS event_id, name, code, message, item, truncated, source, key_id,
  sent_at, to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS received_at`;

interface QuarantineRow {
  seq: number | string;
  tenant_id: string;
  event_id: string;
  name: string | null;
  code: string;
  message: string;
  item: string;
  truncated: boolean;
  source: string;
  key_id: string | null;
  sent_at: string | null;
  received_at: string;
}

function toEvent(r: QuarantineRow): QuarantinedEvent {
  return {
    seq: Number(r.seq),
    tenantId: r.tenant_id,
    eventId: r.event_id,
    name: r.name,
    code: r.code,
    message: r.message,
    item: r.item,
    truncated: r.truncated,
    source: r.source,
    keyId: r.key_id,
    sentAt: r.sent_at,
    receivedAt: r.received_at,
  };
}
