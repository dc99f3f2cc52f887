/**
 * Every failure Tally reports carries a stable code. Codes never change meaning once released;
 * they are what dashboards, alerts and HTTP clients match on, so messages may change but codes may not.
 * The table in docs/errors.md documents each one (a test keeps the two in step).
 */
export const ErrorCodes = {
  /** The event name is not in the catalog. */
  UNKNOWN_EVENT: 'TALLY_UNKNOWN_EVENT',
  /** A key the catalog marks as required is absent (or undefined). */
  MISSING_PROPERTY: 'TALLY_MISSING_PROPERTY',
  /** A property is present but its value does not match the declared type. */
  INVALID_TYPE: 'TALLY_INVALID_TYPE',
  /** A property is not declared in the catalog and the event does not allow extra keys. */
  UNKNOWN_PROPERTY: 'TALLY_UNKNOWN_PROPERTY',
  /** The serialized properties exceed the payload limit (2 KB by default). */
  PAYLOAD_TOO_LARGE: 'TALLY_PAYLOAD_TOO_LARGE',
  /** A value cannot be represented in JSON: a cycle, a function, a symbol, NaN or Infinity, an invalid Date. */
  NOT_JSON_SAFE: 'TALLY_NOT_JSON_SAFE',
  /** A key on the PII deny-list was present and the policy is `reject`. */
  PII_REJECTED: 'TALLY_PII_REJECTED',
  /** The event envelope itself is malformed (bad id, timestamp, tenant). */
  INVALID_ENVELOPE: 'TALLY_INVALID_ENVELOPE',
  /** A configuration value is invalid; the message says which and how to fix it. */
  CONFIG: 'TALLY_CONFIG',
  /** The SDK queue was full and the overflow policy dropped the event. */
  QUEUE_OVERFLOW: 'TALLY_QUEUE_OVERFLOW',
  /** `track()` was called after `shutdown()` began. */
  SHUTDOWN: 'TALLY_SHUTDOWN',
  /** A sink could not deliver a batch and will retry. */
  SINK_RETRYABLE: 'TALLY_SINK_RETRYABLE',
  /** A sink's receiver refused a batch for good (a 4xx other than 408/429). */
  SINK_REJECTED: 'TALLY_SINK_REJECTED',
  /** A sink gave up after its retry budget; the events went to the spool (or were dropped without one). */
  RETRIES_EXHAUSTED: 'TALLY_RETRIES_EXHAUSTED',
  /** Writing to or reading from the disk spool failed. */
  SPOOL_FAILED: 'TALLY_SPOOL_FAILED',
  /** A spool file line could not be parsed (e.g. a line cut short by a crash). */
  SPOOL_CORRUPT: 'TALLY_SPOOL_CORRUPT',
  /** An operation did not finish within its deadline. */
  TIMEOUT: 'TALLY_TIMEOUT',
  /** The writer's queue is full: the caller should retry later (HTTP 503 with Retry-After). */
  OVERLOADED: 'TALLY_OVERLOADED',
  /** The database refused a row for good (a data error such as an invalid UUID or a NUL in JSON); it went to the dead-letter spool. */
  INVALID_ROW: 'TALLY_INVALID_ROW',
  /** A request was refused because a tenant's or user's quota is used up (HTTP 429). */
  QUOTA_EXCEEDED: 'TALLY_QUOTA_EXCEEDED',
  /** The request carries no valid credentials (history API: the app's authenticate hook said no). */
  UNAUTHORIZED: 'TALLY_UNAUTHORIZED',
  /** A query parameter is malformed or out of range; the message names it. */
  BAD_QUERY: 'TALLY_BAD_QUERY',
  /** No such record for this caller (including records that exist but belong to someone else). */
  NOT_FOUND: 'TALLY_NOT_FOUND',
  /** The request body is not JSON, or not the shape the endpoint expects (no `batch` array, not an object). */
  MALFORMED_BODY: 'TALLY_MALFORMED_BODY',
  /** The tenant sent more events than its rate limit allows (HTTP 429 with Retry-After). */
  RATE_LIMITED: 'TALLY_RATE_LIMITED',
  /** The transport or database cannot take the batch now (HTTP 503 with Retry-After); nothing was accepted. */
  UNAVAILABLE: 'TALLY_UNAVAILABLE',
  /** An unexpected server fault (a bug); the server logged it. Retrying may help. */
  INTERNAL: 'TALLY_INTERNAL',
  /** The store's worker thread stopped (crashed or was terminated): queries fail, writes in flight were spooled. */
  STORE_UNAVAILABLE: 'TALLY_STORE_UNAVAILABLE',
  /** A bug in a user callback (onError, dedupe key, context getter) threw; Tally caught it. */
  CALLBACK_FAILED: 'TALLY_CALLBACK_FAILED',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface TallyErrorDetails {
  /** The event name the error concerns, if any. */
  event?: string;
  /** A JSON path into the properties, e.g. `properties.items[2].price`. */
  path?: string;
  [key: string]: unknown;
}

export class TallyError extends Error {
  override readonly name: string = 'TallyError';
  readonly code: ErrorCode;
  readonly details: TallyErrorDetails;

  constructor(code: ErrorCode, message: string, details: TallyErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }

  toJSON(): { code: ErrorCode; message: string; details: TallyErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** Validation failures (catalog, JSON safety, PII, size): the event is wrong, retrying will not help. */
export class TallyValidationError extends TallyError {
  override readonly name = 'TallyValidationError';
}

export class TallyConfigError extends TallyError {
  override readonly name = 'TallyConfigError';
  constructor(message: string, details: TallyErrorDetails = {}) {
    super(ErrorCodes.CONFIG, message, details);
  }
}

export function isTallyError(value: unknown): value is TallyError {
  return value instanceof TallyError;
}
