/**
 * Redacts JSON text without parsing it into objects: one forward scan that knows, at every character,
 * whether it is in a key, a string value or between tokens, and copies the text through, replacing the
 * values of deny-listed keys (whole: a string, a number, or a nested object or array) by "[REDACTED]".
 * What is not redacted keeps its bytes, spacing and key order.
 *
 * The scan also reads a text cut short (`partial`): the head of a truncated body. It starts at the first
 * byte, so it knows where the cut falls; a deny-listed value cut in the middle is redacted up to the cut,
 * and nothing after the cut is needed. That is what makes truncation safe without buffering whole bodies.
 */
import { REDACTED } from './pii.js';

export interface JsonRules {
  /** Whether the value of `key` (inside objects keyed `path`, arrays transparent) is redacted. */
  redactsKey(key: string, path: readonly string[], candidate: boolean): boolean;
  /** Whether key paths are needed at all (body paths configured): keeps the common scan free of them. */
  readonly tracksPaths: boolean;
  /** Scrubs `key=value` pairs out of a string value (raw JSON string content, escapes kept). */
  scrub(raw: string): string;
}

/** What the scan expects next. */
const Expect = { Value: 0, ValueOrClose: 1, Key: 2, KeyOrClose: 3, Colon: 4, Next: 5 } as const;

const OBJECT = 1;
const ARRAY = 2;
const REDACTED_JSON = `"${REDACTED}"`;

/**
 * `text` with redacted values, or undefined when it is not JSON (then the caller decides what to keep).
 * `hits` are the finder's candidates in `text`, ascending: a key or string value without one holds no
 * deny-listed name, so it is passed over without a lookup.
 */
export function redactJson(
  text: string,
  partial: boolean,
  hits: readonly number[],
  rules: JsonRules,
): string | undefined {
  const n = text.length;
  let out = '';
  let copied = 0;
  const kinds: number[] = [];
  const path: string[] = [];
  let state: number = Expect.Value;
  let redactNext = false;
  let h = 0;
  const hitIn = (from: number, to: number): boolean => {
    while (h < hits.length && (hits[h] as number) < from) h++;
    return h < hits.length && (hits[h] as number) < to;
  };
  const rest = () => out + text.slice(copied);
  let i = 0;
  for (;;) {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 32 || c === 10 || c === 13 || c === 9) i++;
      else break;
    }
    if (i >= n) return partial || (state === Expect.Next && kinds.length === 0) ? rest() : undefined;
    const c = text.charCodeAt(i);
    switch (state) {
      case Expect.KeyOrClose:
      case Expect.Key: {
        if (c === 125 && state === Expect.KeyOrClose) {
          kinds.pop();
          if (rules.tracksPaths) path.pop();
          i++;
          state = Expect.Next;
          continue;
        }
        if (c !== 34) return undefined;
        const end = stringEnd(text, i);
        if (end < 0) return partial ? rest() : undefined;
        let key = text.slice(i + 1, end);
        const escaped = key.includes('\\');
        if (escaped) key = decodeKey(text.slice(i, end + 1)) ?? key;
        const candidate = escaped || hitIn(i + 1, end);
        if (rules.tracksPaths) path[path.length - 1] = key;
        redactNext = (candidate || rules.tracksPaths) && rules.redactsKey(key, path, candidate);
        i = end + 1;
        state = Expect.Colon;
        continue;
      }
      case Expect.Colon:
        if (c !== 58) return undefined;
        i++;
        state = Expect.Value;
        continue;
      case Expect.ValueOrClose:
      case Expect.Value: {
        if (c === 93 && state === Expect.ValueOrClose) {
          kinds.pop();
          i++;
          state = Expect.Next;
          continue;
        }
        if (redactNext) {
          redactNext = false;
          const end = valueEnd(text, i);
          out += text.slice(copied, i) + REDACTED_JSON;
          // Cut inside the redacted value: nothing of it is kept.
          if (end < 0) return partial ? out : undefined;
          copied = i = end;
          state = Expect.Next;
          continue;
        }
        if (c === 34) {
          const end = stringEnd(text, i);
          const stop = end < 0 ? n : end;
          if (hitIn(i + 1, stop)) {
            const raw = text.slice(i + 1, stop);
            const clean = rules.scrub(raw);
            if (clean !== raw) {
              out += text.slice(copied, i + 1) + clean;
              copied = stop;
            }
          }
          if (end < 0) return partial ? rest() : undefined;
          i = end + 1;
          state = Expect.Next;
          continue;
        }
        if (c === 123) {
          kinds.push(OBJECT);
          if (rules.tracksPaths) path.push('');
          i++;
          state = Expect.KeyOrClose;
          continue;
        }
        if (c === 91) {
          kinds.push(ARRAY);
          i++;
          state = Expect.ValueOrClose;
          continue;
        }
        const end = scalarEnd(text, i);
        if (end === i) return undefined;
        i = end;
        state = Expect.Next;
        continue;
      }
      case Expect.Next: {
        const top = kinds[kinds.length - 1];
        if (top === undefined) return undefined; // more after the document
        if (c === 44) {
          i++;
          state = top === OBJECT ? Expect.Key : Expect.Value;
          continue;
        }
        if ((c === 125 && top === OBJECT) || (c === 93 && top === ARRAY)) {
          kinds.pop();
          if (top === OBJECT && rules.tracksPaths) path.pop();
          i++;
          continue;
        }
        return undefined;
      }
    }
  }
}

/** Index of the quote closing the string opened at `start`, or -1 when the text ends first. */
function stringEnd(text: string, start: number): number {
  let from = start + 1;
  for (;;) {
    const quote = text.indexOf('"', from);
    if (quote < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 92) backslashes++;
    if (backslashes % 2 === 0) return quote;
    from = quote + 1;
  }
}

/** Index after the value starting at `start` (any nesting), or -1 when the text ends inside it. */
function valueEnd(text: string, start: number): number {
  const c = text.charCodeAt(start);
  if (c === 34) {
    const end = stringEnd(text, start);
    return end < 0 ? -1 : end + 1;
  }
  if (c !== 123 && c !== 91) return scalarEnd(text, start);
  let depth = 0;
  for (let j = start; j < text.length; j++) {
    const d = text.charCodeAt(j);
    if (d === 34) {
      j = stringEnd(text, j);
      if (j < 0) return -1;
    } else if (d === 123 || d === 91) depth++;
    else if (d === 125 || d === 93) {
      if (--depth === 0) return j + 1;
    }
  }
  return -1;
}

/** End of a number or literal (`true`, `null`, `-1.5e3`); not validated beyond its characters. */
function scalarEnd(text: string, start: number): number {
  let j = start;
  for (; j < text.length; j++) {
    const c = text.charCodeAt(j);
    const word =
      (c >= 48 && c <= 57) || (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 45 || c === 43 || c === 46;
    if (!word) break;
  }
  return j;
}

function decodeKey(quoted: string): string | undefined {
  try {
    return JSON.parse(quoted) as string;
  } catch {
    return undefined;
  }
}
