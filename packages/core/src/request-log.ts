/**
 * A request log travels the same pipeline as events (queue, batches, retries, spool, the writer), as an
 * envelope named `$request` whose properties are the log. Reserved `$` names are how PostHog carries
 * its own records too; here it means one delivery path, one spool format and one dedupe key (the id).
 */
import { ErrorCodes, TallyValidationError } from './errors.js';

export const REQUEST_LOG_EVENT = '$request';

/** Largest serialized request log (bodies are truncated well below this by the plugin). */
export const MAX_REQUEST_LOG_BYTES = 64 * 1024;

/** One HTTP request, redacted and truncated: a row of `request_logs` without the server's `receivedAt`. */
export interface RequestLogRecord {
  id: string;
  tenantId: string;
  requestId?: string;
  method: string;
  /** The route template (`/users/:id`), not the raw URL: keeps rollup cardinality low. */
  route?: string;
  url: string;
  status: number;
  durationMs: number;
  requestBytes?: number;
  responseBytes?: number;
  userId?: string;
  apiKeyId?: string;
  ip?: string;
  userAgent?: string;
  headers?: Record<string, string>;
  requestBody?: string;
  responseBody?: string;
  bodyTruncated?: boolean;
  streamBody?: string;
  aborted?: boolean;
  error?: string;
  timestamp: string;
}

const STRINGS = ['id', 'tenantId', 'method', 'url', 'timestamp'] as const;

/** Checks the shape a request log must have before it is queued for storage. */
export function checkRequestLog(log: unknown): TallyValidationError | undefined {
  const fail = (what: string) =>
    new TallyValidationError(ErrorCodes.INVALID_ENVELOPE, `request log: ${what}`, { event: REQUEST_LOG_EVENT });
  if (!log || typeof log !== 'object') return fail('not an object');
  const r = log as Record<string, unknown>;
  for (const key of STRINGS) if (typeof r[key] !== 'string' || r[key] === '') return fail(`${key} must be a string`);
  if (!Number.isInteger(r.status)) return fail('status must be an integer');
  if (typeof r.durationMs !== 'number' || !Number.isFinite(r.durationMs)) return fail('durationMs must be a number');
  return undefined;
}
