/**
 * The Live page's rows: one per frame of `GET /v1/live` that shows something (an event, a request log, a
 * count of frames the server dropped for this client, the server shutting down), made from the frame's
 * JSON as docs/query.md describes it.
 */
import { formatNumber } from '../../format.js';
import type { SseMessage } from './sse.js';

export interface LiveRow {
  seq: number;
  kind: 'event' | 'log' | 'dropped' | 'gap';
  /** When this tab got it. */
  receivedAt: number;
  /** The event's or request's own time (ISO). */
  timestamp: string | null;
  id: string | null;
  name: string;
  userId: string | null;
  anonymousId: string | null;
  status: number | null;
  durationMs: number | null;
  /** Properties (events), the error (logs), the count (dropped), why (gap). */
  details: string;
  route: string | null;
  url: string | null;
  count: number | null;
}

export type LiveRowData = Omit<LiveRow, 'seq' | 'receivedAt'>;

export function parse(data: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(data) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' ? v : null);

const EMPTY = {
  timestamp: null,
  id: null,
  userId: null,
  anonymousId: null,
  status: null,
  durationMs: null,
  route: null,
  url: null,
  count: null,
} as const;

/** A row for an `event`, `log`, `dropped` or `shutdown` frame; undefined for others (and unreadable ones). */
export function rowOf(m: SseMessage): LiveRowData | undefined {
  if (m.event === 'shutdown') return gapRow('the server is shutting down; reconnecting when it is back');
  if (m.event !== 'event' && m.event !== 'log' && m.event !== 'dropped') return undefined;
  const d = parse(m.data);
  if (!d) return undefined;
  if (m.event === 'dropped') {
    const count = num(d.count) ?? 0;
    return {
      ...EMPTY,
      kind: 'dropped',
      name: 'dropped',
      count,
      details: `${formatNumber(count)} not sent: this tab fell behind the stream`,
    };
  }
  if (m.event === 'event') {
    return {
      ...EMPTY,
      kind: 'event',
      timestamp: str(d.timestamp),
      id: str(d.id),
      name: str(d.name) ?? '',
      userId: str(d.userId),
      anonymousId: str(d.anonymousId),
      details: JSON.stringify(d.properties ?? {}),
    };
  }
  return {
    ...EMPTY,
    kind: 'log',
    timestamp: str(d.timestamp),
    id: str(d.id),
    name: `${str(d.method) ?? ''} ${str(d.route) ?? str(d.url) ?? ''}`.trim(),
    userId: str(d.userId),
    status: num(d.status),
    durationMs: num(d.durationMs),
    route: str(d.route),
    url: str(d.url),
    details: str(d.error) ?? (d.aborted === true ? 'aborted by the client' : ''),
  };
}

export function gapRow(why: string): LiveRowData {
  return { ...EMPTY, kind: 'gap', name: 'gap', details: why };
}
