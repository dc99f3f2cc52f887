/**
 * The logs kind's paging cursor, the same on every engine: base64url of `{"ts":…,"id":…}`, the last row
 * shown's time (UTC, microseconds: `2026-03-01T12:00:00.123000Z`, as Postgres keeps it) and id. A page
 * starts strictly after that position in (ts DESC, id DESC) order. Opaque to clients; a cursor one engine
 * gave is a position any engine reads. No Buffer, btoa or TextEncoder: core runs where none is promised.
 */
import { ErrorCodes, TallyError } from '../errors.js';

/** A cursor's content: the last row's time and id. */
export interface LogPosition {
  /** `YYYY-MM-DDTHH:MM:SS.ffffffZ` (six fraction digits). */
  ts: string;
  /** A lowercase UUID. */
  id: string;
}

const CURSOR_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const VALUE = new Map([...ALPHABET].map((c, i) => [c, i]));

/** UTF-8 bytes of a string (encodeURIComponent writes each byte as %XX, ASCII letters as themselves). */
function utf8(text: string): number[] {
  const bytes: number[] = [];
  const encoded = encodeURIComponent(text);
  for (let i = 0; i < encoded.length; i++) {
    if (encoded[i] === '%') {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(encoded.charCodeAt(i));
  }
  return bytes;
}

/** Unpadded base64url of bytes. */
function base64url(bytes: readonly number[]): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let c = 0; c < chars; c++) out += ALPHABET[(n >> (18 - 6 * c)) & 63];
  }
  return out;
}

/**
 * The text of base64url (unpadded, as base64url() writes it; bits past the last whole byte ignored);
 * undefined when it is not UTF-8.
 */
function fromBase64url(text: string): string | undefined {
  let bits = 0;
  let width = 0;
  let escaped = '';
  for (const c of text) {
    bits = ((bits << 6) | (VALUE.get(c) as number)) & 0xffff;
    width += 6;
    if (width >= 8) {
      width -= 8;
      escaped += `%${((bits >> width) & 0xff).toString(16).padStart(2, '0')}`;
    }
  }
  try {
    return decodeURIComponent(escaped);
  } catch {
    return undefined;
  }
}

export function encodeLogCursor(position: LogPosition): string {
  return base64url(utf8(JSON.stringify({ ts: position.ts, id: position.id })));
}

function badCursor(): never {
  throw new TallyError(ErrorCodes.BAD_QUERY, 'cursor: not a cursor of a logs answer; pass meta.next unchanged', {
    path: 'cursor',
  });
}

/** The position a cursor holds; anything but what encodeLogCursor made is refused (TALLY_BAD_QUERY). */
export function decodeLogCursor(cursor: string): LogPosition {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) badCursor();
  const text = fromBase64url(cursor);
  if (text === undefined) badCursor();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    badCursor();
  }
  if (typeof value !== 'object' || value === null) badCursor();
  const { ts, id } = value as Record<string, unknown>;
  if (typeof ts !== 'string' || typeof id !== 'string' || !CURSOR_TS.test(ts) || !UUID.test(id)) badCursor();
  // The shape alone lets 2026-02-30 through, which a database would refuse with an error of its own.
  const ms = Date.parse(ts);
  if (Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 19) !== ts.slice(0, 19)) badCursor();
  return { ts, id };
}

/** A position's time as epoch microseconds (what ms-precision engines compare with `ts_ms * 1000`). */
export function logPositionMicros(position: LogPosition): number {
  return Date.parse(`${position.ts.slice(0, 19)}Z`) * 1000 + Number(position.ts.slice(20, 26));
}

/** A cursor time of an epoch ms: the ms written with six fraction digits. */
export const logPositionTs = (ms: number): string => new Date(ms).toISOString().replace('Z', '000Z');
