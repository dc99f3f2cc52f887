/**
 * Publishing batches to JetStream, shared by the transport (collector side) and the SDK's NATS sink.
 * A batch becomes one message per kind (`<prefix>.analytics.events`, `<prefix>.analytics.requests`),
 * split further when it would pass the server's max payload. Each message carries a `Nats-Msg-Id`
 * derived from its event ids, so a producer that publishes the same batch again (a timeout, a retry)
 * is deduplicated by the stream itself within its duplicate window, and by the writer after that.
 *
 * A batch the collector accepted as it came (a BatchSource) is published as its request body, with the
 * tenant and arrival time in headers (see message.ts), instead of being serialized again.
 */
import { createHash } from 'node:crypto';
import { type BatchSource, encodeBatch, isoTime, REQUEST_LOG_EVENT, type TallyEvent } from '@tally/core';
import type { JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { HEADER_RECEIVED_AT, HEADER_TENANT } from './message.js';

export type MessageKind = 'events' | 'requests';

export function subjectFor(prefix: string, kind: MessageKind): string {
  return `${prefix}.analytics.${kind}`;
}

export interface PublishOutcome {
  messages: number;
  /** Messages the stream had already seen (same Nats-Msg-Id within its duplicate window). */
  duplicateMessages: number;
}

/** One message of a batch: its subject, bytes, Nats-Msg-Id, extra headers and the events it holds. */
export interface OutgoingMessage {
  subject: string;
  data: Uint8Array;
  id: string;
  headers: [string, string][];
  events: readonly TallyEvent[];
}

/** Room for the headers under the server's max payload. */
const HEADROOM = 1024;

/** The messages a batch is published as. */
export function batchMessages(
  prefix: string,
  events: readonly TallyEvent[],
  maxPayload: number,
  source?: BatchSource,
): OutgoingMessage[] {
  const plain: TallyEvent[] = [];
  const requests: TallyEvent[] = [];
  for (const e of events) (e.name === REQUEST_LOG_EVENT ? requests : plain).push(e);
  const messages: OutgoingMessage[] = [];
  if (source && requests.length === 0 && source.body.length <= maxPayload - HEADROOM) {
    messages.push({
      subject: subjectFor(prefix, 'events'),
      data: source.body,
      id: messageId(plain),
      headers: [
        [HEADER_TENANT, source.tenantId],
        [HEADER_RECEIVED_AT, source.receivedAt],
      ],
      events: plain,
    });
    return messages;
  }
  const sentAt = isoTime(Date.now());
  for (const [kind, list] of [
    ['events', plain],
    ['requests', requests],
  ] as const) {
    if (list.length > 0) encode(subjectFor(prefix, kind), list, sentAt, maxPayload, messages);
  }
  return messages;
}

export async function publishBatch(
  js: JetStreamClient,
  prefix: string,
  events: readonly TallyEvent[],
  maxPayload: number,
  timeoutMs: number,
): Promise<PublishOutcome> {
  const messages = batchMessages(prefix, events, maxPayload);
  const acks = await Promise.all(
    messages.map((m) => js.publish(m.subject, m.data, { msgID: m.id, timeout: timeoutMs, headers: headersOf(m) })),
  );
  return { messages: messages.length, duplicateMessages: acks.filter((a) => a.duplicate).length };
}

/** A message's own headers (the Nats-Msg-Id is set by the client from `msgID`), with more if given. */
export function headersOf(m: OutgoingMessage, more: [string, string][] = []) {
  if (m.headers.length === 0 && more.length === 0) return undefined;
  const h = natsHeaders();
  for (const [k, v] of m.headers) h.set(k, v);
  for (const [k, v] of more) h.set(k, v);
  return h;
}

function encode(
  subject: string,
  list: readonly TallyEvent[],
  sentAt: string,
  maxPayload: number,
  out: OutgoingMessage[],
): void {
  // Buffer.from, not TextEncoder: on Node 20 it encodes a batch in ~70 % of the time.
  const data = Buffer.from(encodeBatch(list, sentAt), 'utf8');
  // A single event always fits (properties ≤ 2 KB, request logs ≤ 64 KB).
  if (data.length > maxPayload - HEADROOM && list.length > 1) {
    const half = list.length >> 1;
    encode(subject, list.slice(0, half), sentAt, maxPayload, out);
    encode(subject, list.slice(half), sentAt, maxPayload, out);
    return;
  }
  out.push({ subject, data, id: messageId(list), headers: [], events: list });
}

/** The same events always give the same id: a digest of their ids, in order. */
export function messageId(list: readonly TallyEvent[]): string {
  const h = createHash('sha256');
  for (const e of list) h.update(e.id).update('\n');
  return h.digest('base64url').slice(0, 32);
}
