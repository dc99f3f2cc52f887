/**
 * Every failure Tally reports carries a stable code. Codes never change meaning once released;
 * they are what dashboards, alerts and HTTP clients match on, so messages may change but codes may not.
 *
 * One table says, for each code, what it means, the HTTP status it answers with when it refuses a whole
 * request (`null`: it never does; per-event codes answer 400/413 on a single-event endpoint and appear in
 * a batch's `rejected[]` otherwise) and whether sending the same thing again can succeed. docs/errors.md
 * documents each one; a test keeps the two in step, status and retryability included.
 */
interface ErrorSpec {
  readonly code: `TALLY_${string}`;
  readonly status: number | null;
  readonly retryable: boolean;
}

function spec<const C extends `TALLY_${string}`>(code: C, status: number | null, retryable: boolean) {
  return { code, status, retryable };
}

export const ErrorTable = {
  /** The event name is not in the catalog. */
  UNKNOWN_EVENT: spec('TALLY_UNKNOWN_EVENT', 400, false),
  /** A key the catalog marks as required is absent (or undefined). */
  MISSING_PROPERTY: spec('TALLY_MISSING_PROPERTY', 400, false),
  /** A property is present but its value does not match the declared type. */
  INVALID_TYPE: spec('TALLY_INVALID_TYPE', 400, false),
  /** A property is not declared in the catalog and the unplanned-property policy is `reject`. */
  UNKNOWN_PROPERTY: spec('TALLY_UNKNOWN_PROPERTY', 400, false),
  /** The serialized properties (or a request body) exceed the limit. */
  PAYLOAD_TOO_LARGE: spec('TALLY_PAYLOAD_TOO_LARGE', 413, false),
  /** A value cannot be represented in JSON: a cycle, a function, a symbol, NaN or Infinity, an invalid Date. */
  NOT_JSON_SAFE: spec('TALLY_NOT_JSON_SAFE', 400, false),
  /** A key on the PII deny-list was present and the policy is `reject`. */
  PII_REJECTED: spec('TALLY_PII_REJECTED', 400, false),
  /** The event envelope itself is malformed (bad id, timestamp, tenant). */
  INVALID_ENVELOPE: spec('TALLY_INVALID_ENVELOPE', 400, false),
  /** A configuration value (setting, flag, option) is invalid; the message says which and how to fix it. */
  CONFIG: spec('TALLY_CONFIG', 400, false),
  /** The SDK queue was full and the overflow policy dropped the event. */
  QUEUE_OVERFLOW: spec('TALLY_QUEUE_OVERFLOW', null, false),
  /** `track()` was called after `shutdown()` began, or the server is shutting down. */
  SHUTDOWN: spec('TALLY_SHUTDOWN', 503, true),
  /** A sink could not deliver a batch and will retry. */
  SINK_RETRYABLE: spec('TALLY_SINK_RETRYABLE', null, true),
  /** A sink's receiver refused a batch for good (a 4xx other than 408/429). */
  SINK_REJECTED: spec('TALLY_SINK_REJECTED', null, false),
  /** A sink gave up after its retry budget; the events went to the spool (or were dropped without one). */
  RETRIES_EXHAUSTED: spec('TALLY_RETRIES_EXHAUSTED', null, true),
  /** Writing to or reading from the disk spool failed. */
  SPOOL_FAILED: spec('TALLY_SPOOL_FAILED', null, true),
  /** A spool file line could not be parsed (e.g. a line cut short by a crash). */
  SPOOL_CORRUPT: spec('TALLY_SPOOL_CORRUPT', null, false),
  /** An operation did not finish within its deadline. */
  TIMEOUT: spec('TALLY_TIMEOUT', 408, true),
  /** The writer's queue is full: the caller should retry later (HTTP 503 with Retry-After). */
  OVERLOADED: spec('TALLY_OVERLOADED', 503, true),
  /** The database refused a row for good (a data error such as an invalid UUID or a NUL in JSON); it went to the dead-letter spool. */
  INVALID_ROW: spec('TALLY_INVALID_ROW', 400, false),
  /** A request was refused because a tenant's or user's quota is used up (HTTP 429). */
  QUOTA_EXCEEDED: spec('TALLY_QUOTA_EXCEEDED', 429, true),
  /** The request carries no valid credentials. */
  UNAUTHORIZED: spec('TALLY_UNAUTHORIZED', 401, false),
  /** The credentials are valid but their scope does not allow this (a write key reading, a read key writing). */
  FORBIDDEN: spec('TALLY_FORBIDDEN', 403, false),
  /** A query parameter is malformed or out of range; the message names it. */
  BAD_QUERY: spec('TALLY_BAD_QUERY', 400, false),
  /** A query ran past its statement timeout and was cancelled; narrow the range or the breakdown. */
  QUERY_TIMEOUT: spec('TALLY_QUERY_TIMEOUT', 503, false),
  /** No such record for this caller (including records that exist but belong to someone else). */
  NOT_FOUND: spec('TALLY_NOT_FOUND', 404, false),
  /** The request body is not JSON, or not the shape the endpoint expects (no `batch` array, not an object). */
  MALFORMED_BODY: spec('TALLY_MALFORMED_BODY', 400, false),
  /** The request's Content-Type or Content-Encoding is not one the endpoint reads. */
  UNSUPPORTED_MEDIA_TYPE: spec('TALLY_UNSUPPORTED_MEDIA_TYPE', 415, false),
  /** The tenant sent more events than its rate limit allows (HTTP 429 with Retry-After). */
  RATE_LIMITED: spec('TALLY_RATE_LIMITED', 429, true),
  /** The transport or database cannot take the batch now (HTTP 503 with Retry-After); nothing was accepted. */
  UNAVAILABLE: spec('TALLY_UNAVAILABLE', 503, true),
  /** An unexpected server fault (a bug); the server logged it. Retrying may help. */
  INTERNAL: spec('TALLY_INTERNAL', 500, true),
  /** The store's worker thread stopped (crashed or was terminated): queries fail, writes in flight were spooled. */
  STORE_UNAVAILABLE: spec('TALLY_STORE_UNAVAILABLE', 503, true),
  /** A bug in a user callback (onError, dedupe key, context getter) threw; Tally caught it. */
  CALLBACK_FAILED: spec('TALLY_CALLBACK_FAILED', null, false),
} as const satisfies Record<string, ErrorSpec>;

type Table = typeof ErrorTable;

/** The codes by name: `ErrorCodes.UNKNOWN_EVENT === 'TALLY_UNKNOWN_EVENT'`. */
export const ErrorCodes = Object.fromEntries(Object.entries(ErrorTable).map(([k, v]) => [k, v.code])) as {
  readonly [K in keyof Table]: Table[K]['code'];
};

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

const BY_CODE = new Map<string, ErrorSpec>(Object.values(ErrorTable).map((s) => [s.code, s]));

/** The HTTP status a refusal with this code answers with (500 for a code that never answers a request). */
export function httpStatusOf(code: string): number {
  return BY_CODE.get(code)?.status ?? 500;
}

/** Whether sending the same thing again can succeed (after a wait, a restart or a fix elsewhere). */
export function isRetryable(code: string): boolean {
  return BY_CODE.get(code)?.retryable ?? false;
}

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

  /** The HTTP status this error answers a request with (see ErrorTable). */
  get status(): number {
    return httpStatusOf(this.code);
  }

  get retryable(): boolean {
    return isRetryable(this.code);
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
