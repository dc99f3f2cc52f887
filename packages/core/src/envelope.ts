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
  batch: TallyEvent[];
  sentAt: string;
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
