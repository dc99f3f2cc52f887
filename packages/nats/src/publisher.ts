/**
 * Publishing batches to JetStream, shared by the transport (collector side) and the SDK's NATS sink.
 * A batch becomes one message per kind (`<prefix>.analytics.events`, `<prefix>.analytics.requests`),
 * split further when it would pass the server's max payload. Each message carries a `Nats-Msg-Id`
 * derived from its event ids, so a producer that publishes the same batch again (a timeout, a retry)
 * is deduplicated by the stream itself within its duplicate window, and by the writer after that.
 */
import { createHash } from 'node:crypto';
import { encodeBatch, isoTime, REQUEST_LOG_EVENT, type TallyEvent } from '@tally/core';
import type { JetStreamClient } from '@nats-io/jetstream';

export type MessageKind = 'events' | 'requests';

export function subjectFor(prefix: string, kind: MessageKind): string {
  return `${prefix}.analytics.${kind}`;
}

export interface PublishOutcome {
  messages: number;
  /** Messages the stream had already seen (same Nats-Msg-Id within its duplicate window). */
  duplicateMessages: number;
}

const encoder = new TextEncoder();

export async function publishBatch(
  js: JetStreamClient,
  prefix: string,
  events: readonly TallyEvent[],
  maxPayload: number,
  timeoutMs: number,
): Promise<PublishOutcome> {
  const plain: TallyEvent[] = [];
  const requests: TallyEvent[] = [];
  for (const e of events) (e.name === REQUEST_LOG_EVENT ? requests : plain).push(e);
  const sentAt = isoTime(Date.now());
  const messages: { subject: string; data: Uint8Array; id: string }[] = [];
  for (const [kind, list] of [
    ['events', plain],
    ['requests', requests],
  ] as const) {
    if (list.length > 0) encode(subjectFor(prefix, kind), list, sentAt, maxPayload, messages);
  }
  const acks = await Promise.all(
    messages.map((m) => js.publish(m.subject, m.data, { msgID: m.id, timeout: timeoutMs })),
  );
  return { messages: messages.length, duplicateMessages: acks.filter((a) => a.duplicate).length };
}

function encode(
  subject: string,
  list: readonly TallyEvent[],
  sentAt: string,
  maxPayload: number,
  out: { subject: string; data: Uint8Array; id: string }[],
): void {
  const data = encoder.encode(encodeBatch(list, sentAt));
  // Headroom for the headers; a single event always fits (properties ≤ 2 KB, request logs ≤ 64 KB).
  if (data.length > maxPayload - 1024 && list.length > 1) {
    const half = list.length >> 1;
    encode(subject, list.slice(0, half), sentAt, maxPayload, out);
    encode(subject, list.slice(half), sentAt, maxPayload, out);
    return;
  }
  out.push({ subject, data, id: messageId(list) });
}

/** The same events always give the same id: a digest of their ids, in order. */
export function messageId(list: readonly TallyEvent[]): string {
  const h = createHash('sha256');
  for (const e of list) h.update(e.id).update('\n');
  return h.digest('base64url').slice(0, 32);
}
