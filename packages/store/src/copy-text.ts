/**
 * One value in COPY's text format (https://www.postgresql.org/docs/current/sql-copy.html, "Text
 * Format"): tab separates columns and newline rows, `\N` is NULL, and a backslash starts an escape, so
 * backslash, tab, newline and carriage return inside a value go as escapes; everything else as is.
 * A NUL character is left in: Postgres refuses it (SQLSTATE 22021) as it does in a query parameter.
 */
export function copyValue(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '\\N';
  const s = typeof value === 'string' ? value : String(value);
  // Most values need no escape: test first, so they are not copied.
  return SPECIAL.test(s) ? s.replace(SPECIALS, (c) => ESCAPES[c] as string) : s;
}

const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * The data of one COPY, written line by line into a Buffer as it is built. A string grown by `+=` is a
 * rope of thousands of pieces, and turning it into bytes for the socket (flatten, then encode) cost
 * ~2 µs a row in the collector's profile; writing each line's bytes at once costs about half of that
 * (bench: 1.85 against 3.0 ms for 1000 event rows). A fresh Buffer per COPY: the driver may still hold
 * the previous one while it goes out on the socket.
 */
export class CopyBuffer {
  private buf: Buffer;
  private length = 0;

  /** @param estimate expected bytes (a guess: the buffer doubles when a line does not fit). */
  constructor(estimate: number) {
    this.buf = Buffer.allocUnsafe(Math.max(estimate, 1024));
  }

  /** Appends one line (COPY text format, ending in `\n`). */
  line(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit.
    if (this.buf.length - this.length < text.length * 3) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + text.length * 3));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    this.length += this.buf.write(text, this.length);
  }

  /** The bytes written (a view of the buffer, not a copy). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}
