/**
 * What a message on `<prefix>.analytics.<type>` holds, read back into events. The body is a JSON batch
 * (docs/wire-format.md), or the same batch as protobuf when the message says `Content-Type:
 * application/x-protobuf` (publishers in other languages). A message with a `Tally-Tenant` header is a
 * request body the collector accepted as it came: its events are the items with the tenant and the
 * `Tally-Received-At` time stamped on them, and the batch's `sentAt` when it is a time, made the way the
 * collector's acceptor makes them (packages/server/src/ingest/accept.ts; a test holds the two to the same
 * events). Without that header the items are the events as they are (the SDK's NATS sink, other publishers).
 */
import {
  applyBatchContext,
  type EventBatch,
  type EventContext,
  type JsonValue,
  type TallyEvent,
  UnreadableItem,
} from '@tally/core';
import { decodeBatch, isProtobufContentType } from '@tally/core/protobuf';

export const HEADER_TENANT = 'Tally-Tenant';
export const HEADER_RECEIVED_AT = 'Tally-Received-At';
/** `application/x-protobuf`: the body is a `tally.v1.Batch` (proto/tally/v1/batch.proto); else JSON. */
export const HEADER_CONTENT_TYPE = 'Content-Type';
/**
 * Which transport instance published the message, and its number there: the publisher's own consumer
 * takes the events it still holds for that message instead of reading the body back (transport.ts).
 */
export const HEADER_ORIGIN = 'Tally-Origin';

const decoder = new TextDecoder();

/** A message's headers, as the NATS client gives them (a missing header reads as ''). */
export interface MessageHeaders {
  get(name: string): string;
}

/** The events of a message; throws (with why) when it cannot be read as a batch. */
export function readMessage(data: Uint8Array, headers: MessageHeaders | undefined): TallyEvent[] {
  const body = isProtobufContentType(headers?.get(HEADER_CONTENT_TYPE)) ? protobufBatch(data) : jsonBatch(data);
  applyBatchContext(body.batch, body.context);
  const tenantId = headers?.get(HEADER_TENANT);
  if (!tenantId) return body.batch as TallyEvent[];
  const receivedAt = headers?.get(HEADER_RECEIVED_AT);
  if (!receivedAt) throw new Error(`${HEADER_TENANT} without ${HEADER_RECEIVED_AT}`);
  const sentAt = typeof body.sentAt === 'string' && Number.isFinite(Date.parse(body.sentAt)) ? body.sentAt : undefined;
  return body.batch.map((item) => stamped(item as Item, tenantId, receivedAt, sentAt));
}

function jsonBatch(data: Uint8Array): EventBatch {
  const body = JSON.parse(decoder.decode(data)) as EventBatch;
  if (!Array.isArray(body?.batch)) throw new Error('no "batch" array');
  return body;
}

/**
 * A protobuf batch as the JSON one. An event that does not decode makes the whole message unreadable
 * (dead-lettered with the reason, as an unreadable JSON message is): publishers on NATS are services,
 * whose broken message is a bug to fix, not a user's event to keep apart.
 */
function protobufBatch(data: Uint8Array): EventBatch {
  const decoded = decodeBatch(data);
  const bad = decoded.batch.findIndex((item) => item instanceof UnreadableItem);
  if (bad >= 0) throw new Error(`protobuf event ${bad}: ${(decoded.batch[bad] as UnreadableItem).reason}`);
  return decoded as EventBatch;
}

type Item = Record<string, unknown> & { properties?: unknown; context?: unknown };

function stamped(item: Item, tenantId: string, receivedAt: string, sentAt: string | undefined): TallyEvent {
  // The acceptor's own order of keys, so the two are the same object to any reader.
  const event: TallyEvent = {
    id: item.id as string,
    name: item.name as string,
    tenantId,
    properties: (item.properties ?? {}) as Record<string, JsonValue>,
    context: (item.context ?? {}) as EventContext,
    timestamp: item.timestamp as string,
    receivedAt,
  };
  if (typeof item.userId === 'string') event.userId = item.userId;
  if (typeof item.anonymousId === 'string') event.anonymousId = item.anonymousId;
  if (sentAt !== undefined) event.sentAt = sentAt;
  return event;
}
