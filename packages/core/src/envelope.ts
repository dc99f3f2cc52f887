/**
 * The event envelope and the batch wire format (JSON). This is the contract every producer speaks:
 * the Node SDK, the HTTP collector, NATS publishers in other languages. See docs/wire-format.md.
 */
import type { ErrorCode } from './errors.js';
import type { JsonValue } from './schema.js';

/** Ambient facts about where an event was born. Open for extra keys, which must be JSON. */
export interface EventContext {
  service?: string;
  requestId?: string;
  taskId?: string;
  sessionId?: string;
  library?: { name: string; version: string };
  /** Set when the event was sampled: the rate it survived, so a count can be scaled by 1 / sampleRate. */
  sampleRate?: number;
  [key: string]: JsonValue | undefined;
}

export interface TallyEvent {
  /** UUIDv7 generated where the event was born; never rewritten, so every retry dedupes. */
  id: string;
  name: string;
  tenantId: string;
  userId?: string;
  anonymousId?: string;
  properties: Record<string, JsonValue>;
  context: EventContext;
  /** When the event happened (ISO 8601, producer clock). */
  timestamp: string;
  /** When the producer sent the batch that carried it (lets the server estimate clock skew). */
  sentAt?: string;
  /** When the server received it; set by the server, ignored from clients. */
  receivedAt?: string;
}

/** Body of `POST /v1/events`, and of each message on the NATS subjects. */
export interface EventBatch {
  /** Events; one without a `context` of its own has the batch's. */
  batch: (Omit<TallyEvent, 'context'> & { context?: EventContext })[];
  /**
   * The context of every event in `batch` that carries none. Events of one scope share one context, so
   * it is sent once instead of once an event: a quarter of the bytes, and of a receiver's parse time.
   */
  context?: EventContext;
  sentAt: string;
}

/**
 * The JSON of a batch. The first event's context goes on the batch and every event sharing that object
 * (by identity: the SDK hands one frozen context to all events of a scope) is written without its own.
 */
export function encodeBatch(events: readonly TallyEvent[], sentAt: string): string {
  const shared = events[0]?.context;
  let sharing = 0;
  for (const e of events) if (e.context === shared) sharing++;
  if (sharing < 2) return JSON.stringify({ batch: events, sentAt });
  // A spread with `context: undefined` (omitted by JSON.stringify) is cheaper than serializing the
  // context, and leaves the caller's event untouched: a retry may send it again.
  const batch = events.map((e) => (e.context === shared ? { ...e, context: undefined } : e));
  return JSON.stringify({ batch, context: shared, sentAt });
}

/**
 * Gives each event of a parsed batch body that has no `context` the batch's (the same object for all
 * of them: whoever changes an event's context must copy it first). Items are left as they are
 * otherwise; validating them is the receiver's job.
 */
export function applyBatchContext(items: readonly unknown[], context: unknown): void {
  if (typeof context !== 'object' || context === null || Array.isArray(context)) return;
  for (const item of items) {
    if (typeof item === 'object' && item !== null && (item as { context?: unknown }).context === undefined) {
      (item as { context?: unknown }).context = context;
    }
  }
}

/**
 * An item of a batch that could not be read as an event at all (a Segment message of an unknown type,
 * a protobuf event that does not decode). Receivers refuse it with `reason`, alone; the quarantine keeps
 * `raw`, what could be read of it.
 */
export class UnreadableItem {
  constructor(
    readonly reason: string,
    readonly raw: unknown,
  ) {}
}

/** What a receiver answers for a batch: per-event rejections let the rest be stored. */
export interface BatchResponse {
  accepted: number;
  /** Events whose id was already stored (a retry): accepted, not stored again. */
  duplicates?: number;
  rejected: BatchRejection[];
}

export interface BatchRejection {
  index: number;
  id?: string;
  code: ErrorCode | (string & {});
  message: string;
}

export const LIBRARY_NAME = '@tally/node';
