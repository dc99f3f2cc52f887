/**
 * Turns whatever a caller passed as properties into plain JSON, in one walk that also applies the PII
 * policy and bounds the size. What JSON.stringify would silently change is made explicit instead:
 *
 * | input                      | becomes                                  |
 * |----------------------------|------------------------------------------|
 * | `undefined` in an object   | key removed                              |
 * | `undefined` in an array    | `null` (keeps indexes stable)            |
 * | BigInt                     | number when safe, else decimal string    |
 * | Date                       | ISO 8601 string (invalid Date: rejected) |
 * | Error                      | `{ name, message }` (no stack)           |
 * | object with `toJSON()`     | its result, sanitized                    |
 * | NaN, ±Infinity             | rejected (a metric bug, not a null)      |
 * | function, symbol, Map, Set | rejected                                 |
 * | cycle, depth > 16          | rejected                                 |
 */
import { ErrorCodes, TallyValidationError } from './errors.js';
import type { PiiMatcher, PiiMode } from './pii.js';
import { REDACTED } from './pii.js';
import type { JsonValue } from './schema.js';

export interface SanitizeOptions {
  /** Largest serialized size of the properties object, in UTF-8 bytes. */
  maxBytes: number;
  pii: PiiMode;
  isPii: PiiMatcher;
  /**
   * The caller owns the input (as JSON.parse made it, or its own copy): when it is already plain JSON
   * that sanitizing would only copy (plain objects and arrays of strings, finite numbers, booleans and
   * nulls; no undefined, no PII key, within the depth limit and clearly within the size limit), it is
   * returned as it is. Default false: the result never shares an object with the input.
   */
  reuseInput?: boolean;
}

export type Sanitized =
  { ok: true; value: Record<string, JsonValue>; redacted: number } | { ok: false; error: TallyValidationError };

const MAX_DEPTH = 16;

/** Thrown inside the walk only, turned into a result at its boundary. */
class Reject {
  constructor(readonly error: TallyValidationError) {}
}

export function sanitizeProperties(input: unknown, opts: SanitizeOptions, event?: string): Sanitized {
  if (input === undefined || input === null) return { ok: true, value: {}, redacted: 0 };
  if (typeof input !== 'object' || Array.isArray(input)) {
    return fail(ErrorCodes.INVALID_TYPE, 'properties must be a plain object', event, 'properties');
  }
  if (opts.reuseInput && Object.getPrototypeOf(input) === Object.prototype) {
    const bound = asIsBound(input, opts.pii === 'off' ? undefined : opts.isPii, 0);
    if (bound >= 0 && bound <= opts.maxBytes)
      return { ok: true, value: input as Record<string, JsonValue>, redacted: 0 };
  }
  const walker = new Walker(opts, event);
  try {
    const value = walker.object(input as Record<string, unknown>, 'properties', 0) as Record<string, JsonValue>;
    // `bound` over-estimates the serialized size, so the exact (costlier) measure runs only near the limit.
    if (walker.bound > opts.maxBytes) {
      const bytes = utf8Length(JSON.stringify(value));
      if (bytes > opts.maxBytes) {
        return fail(
          ErrorCodes.PAYLOAD_TOO_LARGE,
          `properties are ${bytes} bytes, over the ${opts.maxBytes}-byte limit`,
          event,
          'properties',
          { bytes, limit: opts.maxBytes },
        );
      }
    }
    return { ok: true, value, redacted: walker.redacted };
  } catch (e) {
    if (e instanceof Reject) return { ok: false, error: e.error };
    throw e;
  }
}

/**
 * An upper bound of the UTF-8 JSON size of `v` when sanitizing would return an equal copy of it, else -1
 * (the walk then decides, and finds the error if there is one). No allocation: the common payload (a
 * few strings, numbers and a small nested object) costs a few type checks instead of a copy and a path
 * string per value. Bounds as the walk's: 6 bytes a char (`\u0000`), 24 a number.
 */
function asIsBound(v: unknown, isPii: PiiMatcher | undefined, depth: number): number {
  switch (typeof v) {
    case 'string':
      return v.length * 6 + 2;
    case 'number':
      return Number.isFinite(v) ? 24 : -1;
    case 'boolean':
      return 5;
    case 'object':
      break;
    default:
      return -1;
  }
  if (v === null) return 4;
  if (depth > MAX_DEPTH) return -1;
  let bound = 2;
  const proto = Object.getPrototypeOf(v);
  if (proto === Array.prototype) {
    const list = v as unknown[];
    for (let i = 0; i < list.length; i++) {
      const b = list[i] === undefined ? -1 : asIsBound(list[i], isPii, depth + 1);
      if (b < 0) return -1;
      bound += b + 1;
    }
    return bound;
  }
  if (proto !== Object.prototype) return -1;
  const obj = v as Record<string, unknown>;
  for (const key in obj) {
    // An own "__proto__" key would become the copy's prototype: the walk decides.
    if (!Object.hasOwn(obj, key) || key === '__proto__' || (isPii !== undefined && isPii(key))) return -1;
    const x = obj[key];
    const b = x === undefined ? -1 : asIsBound(x, isPii, depth + 1);
    if (b < 0) return -1;
    bound += key.length * 6 + 4 + b;
  }
  return bound;
}

class Walker {
  /** Upper bound of the UTF-8 JSON size so far: each char may take 6 bytes (`\u0000`), a number 24. */
  bound = 2;
  redacted = 0;
  private readonly ancestors: object[] = [];

  constructor(
    private readonly opts: SanitizeOptions,
    private readonly event: string | undefined,
  ) {}

  object(obj: Record<string, unknown>, path: string, depth: number): Record<string, JsonValue> {
    this.enter(obj, path, depth);
    const out: Record<string, JsonValue> = {};
    for (const key in obj) {
      if (!Object.hasOwn(obj, key)) continue;
      const raw = obj[key];
      if (raw === undefined) continue;
      this.bound += key.length * 6 + 4;
      if (this.opts.pii !== 'off' && this.opts.isPii(key)) {
        if (this.opts.pii === 'reject') {
          this.reject(ErrorCodes.PII_REJECTED, `key "${key}" is on the PII deny-list`, `${path}.${key}`);
        }
        this.redacted++;
        this.bound += REDACTED.length + 2;
        out[key] = REDACTED;
        continue;
      }
      out[key] = this.value(raw, `${path}.${key}`, depth + 1);
    }
    this.ancestors.pop();
    return out;
  }

  private value(v: unknown, path: string, depth: number): JsonValue {
    switch (typeof v) {
      case 'string':
        this.bound += v.length * 6 + 2;
        return v;
      case 'number':
        if (!Number.isFinite(v)) this.reject(ErrorCodes.NOT_JSON_SAFE, `${v} is not JSON-safe`, path);
        this.bound += 24;
        return v;
      case 'boolean':
        this.bound += 5;
        return v;
      case 'bigint':
        this.bound += 24;
        return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
      case 'undefined':
        this.bound += 4;
        return null;
      case 'object':
        return this.composite(v, path, depth);
      default:
        return this.reject(ErrorCodes.NOT_JSON_SAFE, `a ${typeof v} is not JSON-safe`, path);
    }
  }

  private composite(v: object | null, path: string, depth: number): JsonValue {
    if (v === null) {
      this.bound += 4;
      return null;
    }
    if (Array.isArray(v)) {
      this.enter(v, path, depth);
      const out: JsonValue[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) {
        this.bound += 1;
        out[i] = this.value(v[i], `${path}[${i}]`, depth + 1);
      }
      this.ancestors.pop();
      return out;
    }
    if (v instanceof Date) {
      const ms = v.getTime();
      if (Number.isNaN(ms)) return this.reject(ErrorCodes.NOT_JSON_SAFE, 'an invalid Date is not JSON-safe', path);
      this.bound += 26;
      return v.toISOString();
    }
    if (v instanceof Error) {
      return this.object({ name: v.name, message: v.message }, path, depth);
    }
    if (v instanceof Map || v instanceof Set || v instanceof WeakMap || v instanceof WeakSet || v instanceof Promise) {
      return this.reject(ErrorCodes.NOT_JSON_SAFE, `a ${v.constructor.name} is not JSON-safe`, path);
    }
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') {
      let replaced: unknown;
      try {
        replaced = toJSON.call(v);
      } catch (e) {
        return this.reject(ErrorCodes.NOT_JSON_SAFE, `toJSON() threw: ${(e as Error)?.message ?? e}`, path);
      }
      if (replaced === v) return this.reject(ErrorCodes.NOT_JSON_SAFE, 'toJSON() returned itself', path);
      this.enter(v, path, depth);
      const out = this.value(replaced, path, depth + 1);
      this.ancestors.pop();
      return out;
    }
    if (ArrayBuffer.isView(v)) return this.reject(ErrorCodes.NOT_JSON_SAFE, 'binary data is not JSON-safe', path);
    return this.object(v as Record<string, unknown>, path, depth);
  }

  private enter(v: object, path: string, depth: number): void {
    if (depth > MAX_DEPTH) this.reject(ErrorCodes.NOT_JSON_SAFE, `nested deeper than ${MAX_DEPTH} levels`, path);
    if (this.ancestors.includes(v)) this.reject(ErrorCodes.NOT_JSON_SAFE, 'circular reference', path);
    this.ancestors.push(v);
  }

  private reject(code: TallyValidationError['code'], message: string, path: string): never {
    throw new Reject(
      new TallyValidationError(code, `${this.event ?? 'event'}: ${message} (at ${path})`, { event: this.event, path }),
    );
  }
}

function fail(
  code: TallyValidationError['code'],
  message: string,
  event: string | undefined,
  path: string,
  extra: Record<string, unknown> = {},
): Sanitized {
  return {
    ok: false,
    error: new TallyValidationError(code, `${event ?? 'event'}: ${message}`, { event, path, ...extra }),
  };
}

/** UTF-8 byte length of a string, without allocating (TextEncoder would copy it). */
export function utf8Length(s: string): number {
  let bytes = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) bytes += 1;
    else if (c >= 0xd800 && c <= 0xdbff) {
      // A surrogate pair: 2 UTF-16 units, 4 UTF-8 bytes.
      bytes += 2;
      i++;
    } else bytes += 2;
  }
  return bytes;
}
