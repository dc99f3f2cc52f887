/**
 * What every request logger keeps and withholds, whatever server it runs in: the Fastify plugin and the
 * edge SDK's middleware for Workers both build their `$request` logs with these, so a log looks the same
 * (and is redacted the same) wherever the request was served. Bodies are redacted by redact.ts.
 */
import type { Redactor } from './redact.js';
import { REDACTED } from './pii.js';

/**
 * Headers whose values are never logged, in any form (lowercase). Any header named by the PII deny-list
 * (`x-auth-token`, `x-goog-api-key`, `x-session`…) is redacted as well.
 */
export const DEFAULT_REDACTED_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
];

/** Routes not logged unless asked for: health checks and scrapes would drown the history. */
export const DEFAULT_EXCLUDED_ROUTES: readonly string[] = ['/health', '/healthz', '/readyz', '/livez', '/metrics'];

/** Headers holding a URL, whose query string is redacted as the request's own. */
const URL_HEADERS = new Set(['referer', 'location', 'content-location']);

/** Longest error message kept, in characters (after redaction, so the cut cannot expose a secret). */
const MAX_ERROR_CHARS = 1024;

export type IpPolicy = 'truncate' | 'hash' | 'full' | 'none';

/** What a request logger keeps, the same options wherever it runs (Fastify, Workers). */
export interface RequestLogPolicy {
  /** Tenant of the logs when the logger's `identify` gives none. Default `default`. */
  tenantId?: string;
  /** Bytes kept of each body (head and tail halves). Default 4096. */
  bodyLimit?: number;
  captureRequestBody?: boolean;
  captureResponseBody?: boolean;
  /** Extra header names to redact (case-insensitive), on top of DEFAULT_REDACTED_HEADERS and the deny-list. */
  redactHeaders?: readonly string[];
  /**
   * Body paths to redact besides the deny-list's names (which are redacted at any depth): dot-separated
   * from the root (`card.number`), arrays passed through (`items.card.number` covers every item); form
   * fields by the same names (`card[number]`).
   */
  redactBodyPaths?: readonly string[];
  /** Route templates to skip. Default DEFAULT_EXCLUDED_ROUTES. */
  exclude?: readonly string[];
  /** Only these route templates, if given. */
  include?: readonly string[];
  /** Fraction of requests logged, in (0, 1]. Default 1. */
  sampleRate?: number;
  /** What is kept of the client IP. Default `truncate` (IPv4 /24, IPv6 /48). */
  ip?: IpPolicy;
}

/** The logged value of a header (`name` lowercase): withheld, its URL redacted, or as it is. */
export function headerRedaction(
  redactor: Redactor,
  extraNames: readonly string[] = [],
): (name: string, value: string) => string {
  const redacted = new Set([...DEFAULT_REDACTED_HEADERS, ...extraNames.map((h) => h.toLowerCase())]);
  return (name, value) => {
    if (redacted.has(name) || redactor.isSecretName(name)) return REDACTED;
    return URL_HEADERS.has(name) ? redactor.url(value) : value;
  };
}

/** What a request log keeps of an error: its code and message, redacted and clipped. */
export function errorText(error: unknown, redactor: Redactor): string | undefined {
  if (error === undefined || error === null) return undefined;
  let text: string;
  if (typeof error !== 'object') text = String(error);
  else {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const said = typeof message === 'string' ? message : String(error);
    text = typeof code === 'string' && code !== '' ? `${code}: ${said}` : said;
  }
  return clipError(redactor.text(text));
}

export function clipError(text: string): string {
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}

/**
 * What is kept of a client IP: IPv4 its /24, IPv6 its /48. `hash` needs a synchronous SHA-256, which
 * only some runtimes have, so the caller passes it (Node's `createHash`); without one it keeps nothing.
 */
export function maskIp(
  ip: string | undefined,
  policy: IpPolicy,
  sha256Hex?: (text: string) => string,
): string | undefined {
  if (!ip || policy === 'none') return undefined;
  if (policy === 'full') return ip;
  if (policy === 'hash') return sha256Hex?.(ip).slice(0, 16);
  const v4 = /^(?:::ffff:)?(\d+)\.(\d+)\.(\d+)\.\d+$/.exec(ip);
  if (v4) return `${v4[1]}.${v4[2]}.${v4[3]}.0`;
  const groups = ip.split(':');
  return `${groups.slice(0, 3).join(':')}::`;
}
