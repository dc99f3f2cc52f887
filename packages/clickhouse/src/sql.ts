/**
 * Values in ClickHouse SQL text. Debian's server (18.16) has no query parameters, so every value a user
 * or a producer gave reaches a statement through these functions and no other way: one escaping rule,
 * tested with hostile strings on both engines (test/sql.integration.test.ts). Identifiers are never
 * user input; `ident` refuses anything but a plain name.
 */

/**
 * A string literal. Inside quotes ClickHouse reads backslash escapes, so the backslash and the quote are
 * escaped, and NUL and the line breaks too (a literal with a raw NUL or newline parses, but logs badly).
 * A lone UTF-16 surrogate has no UTF-8 form: it becomes U+FFFD, as TextEncoder would send it anyway.
 */
export function str(value: string): string {
  const text = value.replace(LONE_SURROGATE, '\uFFFD');
  return `'${text.replace(/[\\'\0\n\r\t]/g, (c) => ESCAPES[c] as string)}'`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

const ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  "'": "\\'",
  '\0': '\\0',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

/** A finite number literal (Float64 or Int64 by its form); anything else is a bug upstream. */
export function num(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`not a finite number: ${value}`);
  // Negative literals in parentheses: `x - -1` reads as intended, and `-` after an operator always does.
  return value < 0 ? `(${value})` : String(value);
}

/** An integer literal (epoch ms, limits, offsets). */
export function int(value: number): string {
  if (!Number.isSafeInteger(value)) throw new RangeError(`not a safe integer: ${value}`);
  return value < 0 ? `(${value})` : String(value);
}

/** An array of string literals; `[]` for none (ClickHouse types it Array(Nothing), which compares with any array). */
export const strs = (values: readonly string[]): string => `[${values.map(str).join(', ')}]`;

/** A database or table name: letters, digits and underscores, not starting with a digit. */
export function ident(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)) throw new RangeError(`not a plain identifier: ${name}`);
  return name;
}
