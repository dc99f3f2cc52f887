/**
 * The three request formats the collector speaks, each turned into candidate envelopes in Tally's
 * shape (checked afterwards by the acceptor, the same way for all):
 * - Tally's own batch (docs/wire-format.md), `POST /v1/events`;
 * - Segment's HTTP tracking API, `POST /v1/batch|track|identify|page|screen|group|alias`
 *   (https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/);
 * - PostHog's capture API, `POST /batch` and `/capture` (api_key in the body).
 */
import { createHash } from 'node:crypto';
import { applyBatchContext, isoTime, isUuid, UnreadableItem, uuidv7 } from '@tally/core';

export interface Parsed {
  items: unknown[];
  sentAt?: unknown;
  /** A write key carried in the body (Segment's `writeKey`, PostHog's `api_key`). */
  key?: string;
}

export type ParseResult = Parsed | { error: string };

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function parseTally(body: unknown): ParseResult {
  if (!isObject(body) || !Array.isArray(body.batch)) return { error: 'expected {"batch": [...], "sentAt": "..."}' };
  applyBatchContext(body.batch, body.context);
  return { items: body.batch, sentAt: body.sentAt };
}

export const SEGMENT_TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const;
export type SegmentType = (typeof SEGMENT_TYPES)[number];

/** `type` set: a single-call endpoint (`/v1/track`); unset: `/v1/batch`, each message names its type. */
export function parseSegment(body: unknown, tenantId: string, now: number, type?: SegmentType): ParseResult {
  if (!isObject(body)) return { error: 'expected a JSON object' };
  const key = typeof body.writeKey === 'string' ? body.writeKey : undefined;
  if (type !== undefined)
    return { items: [segmentMessage(body, type, undefined, tenantId, now)], sentAt: body.sentAt, key };
  if (!Array.isArray(body.batch)) return { error: 'expected {"batch": [...]}' };
  const shared = isObject(body.context) ? body.context : undefined;
  const items = body.batch.map((m: unknown) =>
    isObject(m) && (SEGMENT_TYPES as readonly unknown[]).includes(m.type)
      ? segmentMessage(m, m.type as SegmentType, shared, tenantId, now)
      : new UnreadableItem(`message type must be one of ${SEGMENT_TYPES.join(', ')}`, m),
  );
  return { items, sentAt: body.sentAt, key };
}

function segmentMessage(m: Json, type: SegmentType, shared: Json | undefined, tenantId: string, now: number): unknown {
  const given = typeof m.timestamp === 'string' ? m.timestamp : undefined;
  let name: unknown;
  let properties: unknown;
  switch (type) {
    case 'track':
      name = m.event;
      properties = m.properties;
      break;
    case 'identify':
      name = '$identify';
      properties = m.traits ?? (isObject(m.context) ? m.context.traits : undefined);
      break;
    case 'page':
    case 'screen':
      name = `$${type}`;
      properties = { ...(isObject(m.properties) ? m.properties : {}), ...pick(m, ['name', 'category']) };
      break;
    case 'group':
      name = '$group';
      properties = { ...(isObject(m.traits) ? m.traits : {}), ...pick(m, ['groupId']) };
      break;
    case 'alias':
      name = '$alias';
      properties = pick(m, ['previousId']);
      break;
  }
  return {
    id: messageIdToUuid(m.messageId, tenantId, given, now),
    name,
    userId: stringId(m.userId),
    anonymousId: stringId(m.anonymousId),
    properties,
    context: shared || isObject(m.context) ? { ...shared, ...(isObject(m.context) ? m.context : {}) } : undefined,
    timestamp: given ?? isoTime(now),
  };
}

/** `batch: true` for `/batch` (a list); false for `/capture` (one event). */
export function parsePosthog(body: unknown, batch: boolean, now: number): ParseResult {
  if (!isObject(body)) return { error: 'expected a JSON object' };
  const key = typeof body.api_key === 'string' ? body.api_key : typeof body.token === 'string' ? body.token : undefined;
  const list = batch ? body.batch : [body];
  if (!Array.isArray(list)) return { error: 'expected {"api_key": "...", "batch": [...]}' };
  return { items: list.map((m: unknown) => posthogMessage(m, now)), sentAt: body.sent_at, key };
}

function posthogMessage(m: unknown, now: number): unknown {
  if (!isObject(m)) return m;
  // PostHog's own `$`-prefixed properties ($lib, $is_server, $geoip_disable…) describe the sender, not
  // the event: they go to the context, so the event's properties can be checked against the catalog.
  const properties: Json = {};
  const meta: Json = {};
  const source: Json = isObject(m.properties) ? m.properties : {};
  for (const [k, v] of Object.entries(source)) {
    if (k === 'distinct_id' || k === 'token') continue;
    if (k.startsWith('$')) meta[k.slice(1)] = v;
    else properties[k] = v;
  }
  const distinct = m.distinct_id ?? source.distinct_id;
  const lib = m.library ?? meta.lib;
  const version = m.library_version ?? meta.lib_version;
  delete meta.lib;
  delete meta.lib_version;
  const context: Json = { posthog: meta };
  if (typeof lib === 'string') context.library = { name: lib, version: String(version ?? '') };
  return {
    // posthog-node sets a UUIDv7 `uuid` on every event; without one there is nothing to dedupe by.
    id: isUuid(m.uuid) ? m.uuid : uuidv7(now),
    name: m.event,
    userId: stringId(distinct),
    properties,
    context,
    timestamp: typeof m.timestamp === 'string' ? m.timestamp : isoTime(now),
  };
}

function pick(m: Json, keys: readonly string[]): Json {
  const out: Json = {};
  for (const k of keys) if (m[k] !== undefined) out[k] = m[k];
  return out;
}

function stringId(v: unknown): unknown {
  return typeof v === 'number' && Number.isFinite(v) ? String(v) : (v ?? undefined);
}

/**
 * Segment's `messageId` is the dedupe key, but it is any string. A UUID is used as it is; anything else
 * becomes a deterministic UUID: the event's own timestamp in the first 48 bits (ids stay time-ordered,
 * which keeps the primary key cheap) and a hash of tenant + messageId in the rest, so a retry maps to
 * the same id and two tenants' "abc" never collide. No messageId: a fresh UUIDv7 (no dedupe possible).
 */
export function messageIdToUuid(
  messageId: unknown,
  tenantId: string,
  timestamp: string | undefined,
  now: number,
): string {
  if (isUuid(messageId)) return messageId;
  if (typeof messageId !== 'string' || messageId === '') return uuidv7(now);
  // Only the message's own timestamp: one filled in at arrival would differ on a retry.
  const ms = timestamp === undefined ? NaN : Date.parse(timestamp);
  const h = createHash('sha256').update(tenantId).update('\u0000').update(messageId).digest();
  const time = Number.isFinite(ms) && ms >= 0 && ms < 2 ** 48 ? ms : h.readUIntBE(0, 6);
  const b = Buffer.alloc(16);
  b.writeUIntBE(time, 0, 6);
  h.copy(b, 6, 6, 16);
  b[6] = ((b[6] as number) & 0x0f) | 0x80; // version 8: custom, derived
  b[8] = ((b[8] as number) & 0x3f) | 0x80; // RFC 9562 variant
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
