/**
 * The ANALYTICS stream and the writer's durable consumer: created when missing, checked when present.
 * A stream that exists with other subjects or memory storage is a configuration mistake worth stopping
 * for (someone else's stream, or events that would not survive a restart); a different max age is
 * updated in place, and so is direct get (`allow_direct`), which the consumer reads other publishers'
 * bodies with.
 */
import { nanos } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, type JetStreamManager, type StreamInfo, StorageType } from '@nats-io/jetstream';
import { TallyConfigError } from '@tally/core';

export interface StreamSettings {
  stream: string;
  prefix: string;
  maxAgeMs: number;
  /** Window within which the stream drops a message whose Nats-Msg-Id it has seen. */
  duplicateWindowMs: number;
}

export const DAY_MS = 86_400_000;

export async function ensureStream(jsm: JetStreamManager, s: StreamSettings): Promise<StreamInfo> {
  const subjects = [`${s.prefix}.analytics.>`];
  let info: StreamInfo | undefined;
  try {
    info = await jsm.streams.info(s.stream);
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
  if (!info) {
    return jsm.streams.add({
      name: s.stream,
      subjects,
      storage: StorageType.File,
      max_age: nanos(s.maxAgeMs),
      duplicate_window: nanos(s.duplicateWindowMs),
      allow_direct: true,
    });
  }
  const problems = checkStream(info, s);
  if (problems.length > 0) {
    throw new TallyConfigError(`NATS stream ${s.stream} exists but ${problems.join('; ')}`, { stream: s.stream });
  }
  if (info.config.max_age !== nanos(s.maxAgeMs) || !info.config.allow_direct) {
    return jsm.streams.update(s.stream, { ...info.config, max_age: nanos(s.maxAgeMs), allow_direct: true });
  }
  return info;
}

/** What is wrong with an existing stream, in words (empty: fine). `tally doctor` prints the same. */
export function checkStream(info: StreamInfo, s: Pick<StreamSettings, 'prefix'>): string[] {
  const problems: string[] = [];
  const want = `${s.prefix}.analytics.>`;
  if (!info.config.subjects?.includes(want)) {
    problems.push(`its subjects are ${JSON.stringify(info.config.subjects)}, not ["${want}"] (another app's stream?)`);
  }
  if (info.config.storage !== StorageType.File)
    problems.push('it uses memory storage (events would not survive a restart)');
  return problems;
}

export async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  durable: string,
  prefix: string,
  ackWaitMs: number,
  maxAckPending: number,
): Promise<void> {
  const config = {
    durable_name: durable,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: `${prefix}.analytics.>`,
    ack_wait: nanos(ackWaitMs),
    max_ack_pending: maxAckPending,
    // Deliveries carry the headers only: the transport stores its own messages from the events it kept
    // and reads any other body by its sequence (transport.ts), so the bulk of the bytes is sent once.
    headers_only: true,
  };
  try {
    await jsm.consumers.info(stream, durable);
    await jsm.consumers.update(stream, durable, {
      ack_wait: config.ack_wait,
      max_ack_pending: config.max_ack_pending,
      headers_only: config.headers_only,
    });
  } catch (e) {
    if (!isNotFound(e)) throw e;
    await jsm.consumers.add(stream, config);
  }
}

export function isNotFound(e: unknown): boolean {
  const err = e as { code?: unknown; api_error?: { err_code?: number }; message?: string };
  return (
    err?.api_error?.err_code === 10059 || // stream not found
    err?.api_error?.err_code === 10014 || // consumer not found
    /not found/i.test(String(err?.message))
  );
}
