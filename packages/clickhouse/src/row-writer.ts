/**
 * Rows as the bytes of one ClickHouse input format, written straight into a growing Buffer: one writer
 * per format, all with the same methods, so rows.ts walks a row once whatever the format.
 *
 * - RowBinary (the server's format): no text to parse on the server, ~30% less of its CPU than
 *   JSONEachRow for Tally's rows. Strings are a varint byte length and the UTF-8 bytes, integers and
 *   floats little-endian, a UUID its two 64-bit halves each little-endian (18.16 and 26.x alike),
 *   Nullable a flag byte (1 = NULL) before the value, an array a varint count and its items.
 * - TabSeparated (chDB's: its raw insert takes text formats only): values escaped with backslashes,
 *   `\N` for NULL, arrays in their quoted text form (`['a','b\'c']`).
 * - JSONEachRow: what `clickhouse-client … FORMAT JSONEachRow` takes, the benchmark's peer.
 *
 * Every writer sends a lone UTF-16 surrogate as U+FFFD, as Buffer's UTF-8 encoding does (and sql.ts's
 * literals): the same stored text whatever the format. Values of the wrong JavaScript type are refused
 * with a data error (the writer dead-letters the row), as the server would refuse them in JSON.
 */
import { ClickHouseQueryError } from './client.js';

export type InsertFormat = 'RowBinary' | 'TabSeparated' | 'JSONEachRow';

export interface RowWriter {
  readonly format: InsertFormat;
  uuid(id: string): void;
  string(s: string): void;
  nullableString(s: string | undefined | null): void;
  int64(n: number): void;
  nullableInt64(n: number | undefined | null): void;
  float64(n: number): void;
  uint8(n: number): void;
  uint16(n: number): void;
  /** Array(String) of `values[0..n)`. */
  strings(values: readonly string[], n: number): void;
  /** Array(UInt8) of `values[0..n)`. */
  uint8s(values: readonly number[], n: number): void;
  /** Closes the row; returns the body's length so far (the row's end). */
  endRow(): number;
  /** The bytes written (a view of the writer's buffer; the writer is not used again). */
  finish(): Buffer;
}

/** TYPE_MISMATCH (53), CANNOT_PARSE_UUID (376): data errors, as the server would report them. */
const notA = (what: string, value: unknown, code = 53) =>
  new ClickHouseQueryError(`not ${what}: ${JSON.stringify(value) ?? String(value)}`, code);

/** Hex digit values by char code; 255 for anything else. */
const HEX = new Uint8Array(128).fill(255);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;

const TWO_32 = 4294967296;
/** Where the text formats check a UUID. */
const SCRATCH = Buffer.alloc(16);

/** The byte buffer every writer grows; strings go in as UTF-8 without a second pass for their length. */
class Bytes {
  buf: Buffer;
  pos = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, 4096));
  }

  room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    if (this.pos >= this.buf.length) this.room(1);
    this.buf[this.pos++] = b;
  }

  /** ASCII text known to need no escaping in any format (names of columns, digits). */
  ascii(s: string): void {
    const n = s.length;
    this.room(n);
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.pos = p;
  }

  varint(v: number): void {
    this.room(10);
    const buf = this.buf;
    let p = this.pos;
    while (v >= 0x80) {
      buf[p++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    buf[p++] = v;
    this.pos = p;
  }

  /** Two's complement little-endian of a safe integer. */
  int64(v: number): void {
    this.room(8);
    const hi = Math.floor(v / TWO_32);
    const lo = v - hi * TWO_32;
    const buf = this.buf;
    const p = this.pos;
    buf[p] = lo;
    buf[p + 1] = lo >>> 8;
    buf[p + 2] = lo >>> 16;
    buf[p + 3] = lo >>> 24;
    buf[p + 4] = hi;
    buf[p + 5] = hi >> 8;
    buf[p + 6] = hi >> 16;
    buf[p + 7] = hi >> 24;
    this.pos = p + 8;
  }
}

function checkInt64(n: number): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw notA('an integer', n);
  return n;
}

/** Finite only: JSON has no NaN or infinities, so no format stores them (the same row in every format). */
function checkFloat(n: number): number {
  if (typeof n !== 'number' || !Number.isFinite(n)) throw notA('a finite number', n);
  return n;
}

function checkString(s: string): string {
  if (typeof s !== 'string') throw notA('a string', s);
  return s;
}

/** The 16 bytes of a UUID's text, in the order ClickHouse's binary formats hold them. */
function uuidBytes(id: string, buf: Buffer, at: number): void {
  if (typeof id !== 'string' || id.length !== 36) throw notA('a UUID', id, 376);
  // Hex digit i of the 32 goes to byte order[i >> 1]: each 8-byte half reversed (little-endian UInt64s).
  let d = 0;
  for (let i = 0; i < 36; i++) {
    const c = id.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) throw notA('a UUID', id, 376);
      continue;
    }
    const h = c < 128 ? (HEX[c] as number) : 255;
    if (h === 255) throw notA('a UUID', id, 376);
    const byte = d >> 1;
    const pos = at + (byte < 8 ? 7 - byte : 23 - byte);
    buf[pos] = d & 1 ? (buf[pos] as number) | h : h << 4;
    d++;
  }
}

// ---------------------------------------------------------------- RowBinary

class RowBinaryWriter implements RowWriter {
  readonly format = 'RowBinary' as const;
  private readonly b: Bytes;
  private readonly f64 = new Float64Array(1);
  private readonly f64Bytes = new Uint8Array(this.f64.buffer);

  constructor(capacity: number) {
    this.b = new Bytes(capacity);
  }

  uuid(id: string): void {
    const b = this.b;
    b.room(16);
    uuidBytes(id, b.buf, b.pos);
    b.pos += 16;
  }

  string(s: string): void {
    checkString(s);
    const b = this.b;
    const n = s.length;
    // At most 3 UTF-8 bytes a UTF-16 unit: room for the text and the longest length varint it can need.
    const max = 3 * n;
    const reserved = n < 43 ? 1 : varintSize(max);
    b.room(reserved + max);
    const buf = b.buf;
    if (n < 128) {
      // ASCII up to 127 characters (most of Tally's values, JSON text included): its length is one byte.
      const p = b.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[p + i] = c;
      }
      if (i === n) {
        buf[b.pos] = n;
        b.pos = p + n;
        return;
      }
    }
    const len = buf.write(s, b.pos + reserved, 'utf8');
    const used = varintSize(len);
    // The length's varint came out shorter than reserved: the text moves back to follow it.
    if (used < reserved) buf.copyWithin(b.pos + used, b.pos + reserved, b.pos + reserved + len);
    b.varint(len);
    b.pos += len;
  }

  nullableString(s: string | undefined | null): void {
    if (s === undefined || s === null) return this.b.byte(1);
    this.b.byte(0);
    this.string(s);
  }

  int64(n: number): void {
    this.b.int64(checkInt64(n));
  }

  nullableInt64(n: number | undefined | null): void {
    if (n === undefined || n === null) return this.b.byte(1);
    this.b.byte(0);
    this.int64(n);
  }

  float64(n: number): void {
    this.f64[0] = checkFloat(n);
    const b = this.b;
    b.room(8);
    b.buf.set(this.f64Bytes, b.pos);
    b.pos += 8;
  }

  uint8(n: number): void {
    this.b.byte(n & 0xff);
  }

  uint16(n: number): void {
    const b = this.b;
    b.room(2);
    b.buf[b.pos] = n;
    b.buf[b.pos + 1] = n >>> 8;
    b.pos += 2;
  }

  strings(values: readonly string[], n: number): void {
    this.b.varint(n);
    for (let i = 0; i < n; i++) this.string(values[i] as string);
  }

  uint8s(values: readonly number[], n: number): void {
    const b = this.b;
    b.varint(n);
    b.room(n);
    for (let i = 0; i < n; i++) b.buf[b.pos++] = values[i] as number;
  }

  endRow(): number {
    return this.b.pos;
  }

  finish(): Buffer {
    return this.b.buf.subarray(0, this.b.pos);
  }
}

function varintSize(v: number): number {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

// ---------------------------------------------------------------- text formats

/**
 * Characters a TabSeparated value escapes: the separators (tab, line feed), the backslash, and the
 * other control characters and the quote, so a value reads back the same inside an array's quoted form.
 */
const TSV_SPECIAL = /[\0-\x1f\\']/;
const TSV_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};
const tsvEscape = (c: string) => TSV_ESCAPES[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
const TSV_SPECIALS = /[\0-\x1f\\']/g;

class TabSeparatedWriter implements RowWriter {
  readonly format = 'TabSeparated' as const;
  private readonly b: Bytes;

  constructor(capacity: number) {
    this.b = new Bytes(capacity);
  }

  /** `s` escaped, without a separator. */
  private text(s: string): void {
    checkString(s);
    const b = this.b;
    const n = s.length;
    if (n < 32) {
      // Short ASCII without specials is copied by hand; anything else takes the general path.
      b.room(n);
      const buf = b.buf;
      const p = b.pos;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x20 || c >= 0x80 || c === 92 || c === 39) break;
        buf[p + i] = c;
      }
      if (i === n) {
        b.pos = p + n;
        return;
      }
    }
    const t = TSV_SPECIAL.test(s) ? s.replace(TSV_SPECIALS, tsvEscape) : s;
    b.room(3 * t.length);
    b.pos += b.buf.write(t, b.pos, 'utf8');
  }

  uuid(id: string): void {
    // Checked as the binary writer checks it: a bad id is a data error here too, not a server's parse error.
    uuidBytes(id, SCRATCH, 0);
    this.b.ascii(id);
    this.b.byte(9);
  }

  string(s: string): void {
    this.text(s);
    this.b.byte(9);
  }

  nullableString(s: string | undefined | null): void {
    if (s === undefined || s === null) this.b.ascii('\\N\t');
    else this.string(s);
  }

  int64(n: number): void {
    this.b.ascii(String(checkInt64(n)));
    this.b.byte(9);
  }

  nullableInt64(n: number | undefined | null): void {
    if (n === undefined || n === null) this.b.ascii('\\N\t');
    else this.int64(n);
  }

  float64(n: number): void {
    this.b.ascii(String(checkFloat(n)));
    this.b.byte(9);
  }

  uint8(n: number): void {
    this.b.ascii(String(n & 0xff));
    this.b.byte(9);
  }

  uint16(n: number): void {
    this.b.ascii(String(n & 0xffff));
    this.b.byte(9);
  }

  strings(values: readonly string[], n: number): void {
    const b = this.b;
    b.byte(91);
    for (let i = 0; i < n; i++) {
      if (i > 0) b.byte(44);
      b.byte(39);
      this.text(values[i] as string);
      b.byte(39);
    }
    b.ascii(']\t');
  }

  uint8s(values: readonly number[], n: number): void {
    const b = this.b;
    b.byte(91);
    for (let i = 0; i < n; i++) {
      if (i > 0) b.byte(44);
      b.ascii(String((values[i] as number) & 0xff));
    }
    b.ascii(']\t');
  }

  endRow(): number {
    // The last value's tab becomes the row's line feed.
    this.b.buf[this.b.pos - 1] = 10;
    return this.b.pos;
  }

  finish(): Buffer {
    return this.b.buf.subarray(0, this.b.pos);
  }
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Characters a JSON string escapes (or that take the general path: non-ASCII). */
const JSON_PLAIN_MAX = 0x7f;

class JsonEachRowWriter implements RowWriter {
  readonly format = 'JSONEachRow' as const;
  private readonly b: Bytes;
  /** `{"name":` for the first column, `,"name":` for the others. */
  private readonly keys: string[];
  private column = 0;

  constructor(capacity: number, columns: readonly string[]) {
    this.b = new Bytes(capacity);
    this.keys = columns.map((c, i) => `${i === 0 ? '{' : ','}${JSON.stringify(c)}:`);
  }

  private key(): void {
    this.b.ascii(this.keys[this.column++] as string);
  }

  private quoted(s: string): void {
    checkString(s);
    const b = this.b;
    const n = s.length;
    if (n < 32) {
      b.room(n + 2);
      const buf = b.buf;
      const p = b.pos;
      buf[p] = 34;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x20 || c > JSON_PLAIN_MAX || c === 34 || c === 92) break;
        buf[p + 1 + i] = c;
      }
      if (i === n) {
        buf[p + 1 + n] = 34;
        b.pos = p + n + 2;
        return;
      }
    }
    // JSON.stringify writes a lone surrogate as an escape (`\ud800`): replaced first, as Buffer would.
    const t = JSON.stringify(s.replace(LONE_SURROGATE, '\uFFFD'));
    b.room(3 * t.length);
    b.pos += b.buf.write(t, b.pos, 'utf8');
  }

  uuid(id: string): void {
    uuidBytes(id, SCRATCH, 0);
    const b = this.b;
    this.key();
    b.byte(34);
    b.ascii(id);
    b.byte(34);
  }

  string(s: string): void {
    this.key();
    this.quoted(s);
  }

  nullableString(s: string | undefined | null): void {
    if (s === undefined || s === null) {
      this.key();
      this.b.ascii('null');
    } else this.string(s);
  }

  private number(text: string): void {
    this.key();
    this.b.ascii(text);
  }

  int64(n: number): void {
    this.number(String(checkInt64(n)));
  }

  nullableInt64(n: number | undefined | null): void {
    if (n === undefined || n === null) this.number('null');
    else this.int64(n);
  }

  float64(n: number): void {
    this.number(String(checkFloat(n)));
  }

  uint8(n: number): void {
    this.number(String(n & 0xff));
  }

  uint16(n: number): void {
    this.number(String(n & 0xffff));
  }

  strings(values: readonly string[], n: number): void {
    this.key();
    const b = this.b;
    b.byte(91);
    for (let i = 0; i < n; i++) {
      if (i > 0) b.byte(44);
      this.quoted(values[i] as string);
    }
    b.byte(93);
  }

  uint8s(values: readonly number[], n: number): void {
    this.key();
    const b = this.b;
    b.byte(91);
    for (let i = 0; i < n; i++) {
      if (i > 0) b.byte(44);
      b.ascii(String((values[i] as number) & 0xff));
    }
    b.byte(93);
  }

  endRow(): number {
    this.b.ascii('}\n');
    this.column = 0;
    return this.b.pos;
  }

  finish(): Buffer {
    return this.b.buf.subarray(0, this.b.pos);
  }
}

/** A writer of `format` for rows of `columns` (in that order), its buffer sized for `capacity` bytes. */
export function rowWriter(format: InsertFormat, columns: readonly string[], capacity: number): RowWriter {
  if (format === 'RowBinary') return new RowBinaryWriter(capacity);
  if (format === 'TabSeparated') return new TabSeparatedWriter(capacity);
  return new JsonEachRowWriter(capacity, columns);
}
