/**
 * What the request logger withholds, decided in one place: the names on the SDK's PII deny-list
 * (`DEFAULT_PII_KEYS`: token, password, secret, api key, authorization, cookie, session, email…, matched
 * by `createPiiMatcher` as events are) plus the body paths the app adds. Their values are replaced by
 * "[REDACTED]" in headers, in the URL's query string and fragment, in JSON and form bodies at any depth,
 * in SSE/NDJSON lines, and in `key=value` or `"key":"value"` text anywhere else (an error message that
 * echoes the URL, a JSON string holding a query string).
 *
 * Bodies arrive as a head and a tail with the middle cut out (`BodyParts`). What is stored of them:
 * - nothing changes when the finder sees no deny-listed name (or body path) in the text: the common
 *   case costs one scan of at most `bodyLimit` characters, no parse;
 * - JSON: redacted by `redactJson`, the head as the start of a document it knows the cut of, so a value
 *   cut at the end of the head is redacted whole. The tail is dropped: a tail starts at an unknown depth,
 *   possibly inside a redacted object or in the middle of a secret whose key was cut away, and no scan
 *   can tell which. JSON that is not JSON after all (and names a deny-listed word) is withheld whole
 *   with a marker: a regex pass would miss the nested values of a deny-listed key;
 * - form bodies: each `name=value` pair; the tail is kept from its first `&` on (the part before may be
 *   the end of a secret);
 * - multipart bodies that name a deny-listed word are withheld (a field's name and its value are on
 *   different lines), others keep their head;
 * - any other text, SSE included: line by line, a line that is JSON (or `data: <JSON>`) through
 *   `redactJson`, any other through the `key=value` pass; the tail is kept from its first line break on.
 */
import { createPiiFinder, createPiiMatcher, type PiiFinder, type PiiMatcher, REDACTED } from './pii.js';
import { utf8Length } from './sanitize.js';
import { type JsonRules, redactJson } from './redact-json.js';

/** What a body capture kept: `head`, then `omittedBytes` left out, then `tail`. */
export interface BodyParts {
  head: string;
  /** The last bytes; when nothing was left out, simply the rest of the body after `head`. */
  tail: string;
  omittedBytes: number;
  /** Total bytes of the body. */
  bytes: number;
}

export interface RedactorOptions {
  /** Deny-listed names (the SDK's `DEFAULT_PII_KEYS`), matched in any case and word style. */
  keys: readonly string[];
  /** Body paths from the root, dot-separated (`card.number`); arrays on the way are passed through. */
  paths?: readonly string[];
}

export interface RedactedBody {
  text: string;
  truncated: boolean;
}

/**
 * The name and separator of a pair: `name=`, `name:`, `"name":` (also with escaped quotes, as inside a
 * JSON string), `'name':`. The value is read by `valueEnd`.
 */
const PAIR = /(?<![\w$.[\]-])(\\*["']?)([A-Za-z0-9_$][\w$.[\]-]*)\1[ \t]*[:=][ \t]*/g;
/** An HTTP credential: the scheme and the credential after it are one value. */
const CREDENTIAL = /(?:bearer|basic|digest|token)[ \t]+[^\s"'&,;]+/iy;
/**
 * A bare value: up to a delimiter of the usual formats (query, cookie, JSON, prose). A backslash takes
 * the next character with it: inside a JSON string an escaped quote is part of the value, not its end.
 */
const BARE = /(?:[^\s"'&,;<>(){}[\]\\]|\\.)+/y;
const JSON_START = /^[ \t\r\n]*[{[]/;
const STREAMED_JSON = /ndjson|jsonl|json-seq|stream\+json/;

export class Redactor {
  private readonly isPii: PiiMatcher;
  private readonly find: PiiFinder;
  private readonly paths: ReadonlySet<string>;
  private readonly pathNames: ReadonlySet<string>;
  private readonly json: JsonRules;

  constructor(options: RedactorOptions) {
    const paths = (options.paths ?? []).filter(Boolean);
    this.isPii = createPiiMatcher(options.keys);
    this.paths = new Set(paths);
    this.pathNames = new Set(paths.map((p) => p.slice(p.lastIndexOf('.') + 1)));
    // The finder also looks for the last name of each path: a body without one has nothing to redact.
    this.find = createPiiFinder([...options.keys, ...this.pathNames]);
    const tracksPaths = this.paths.size > 0;
    this.json = {
      tracksPaths,
      redactsKey: (key, path, candidate) =>
        (candidate && this.isPii(key)) || (tracksPaths && this.pathNames.has(key) && this.paths.has(path.join('.'))),
      scrub: (raw) => this.text(raw),
    };
  }

  /** Whether a header, query parameter or form field of this name is withheld (`user[password]` is). */
  isSecretName(name: string): boolean {
    return this.isPii(name.includes('[') ? name.replace(/[[\]]/g, '.') : name);
  }

  /**
   * Free text (an error message, a header value, a JSON string): the values of deny-listed pairs. A
   * quoted value runs to its closing quote or the end of the text, so a value cut short is taken whole.
   * The values of other pairs are read on, for the pairs inside them (`redirect=/cb?token=…`).
   */
  text(text: string): string {
    if (this.find(text) < 0) return text;
    let out = '';
    let copied = 0;
    PAIR.lastIndex = 0;
    for (let m = PAIR.exec(text); m !== null; m = PAIR.exec(text)) {
      if (!this.isSecretName(m[2] as string)) continue;
      const start = PAIR.lastIndex;
      const [end, quote, closed] = valueEnd(text, start);
      if (end === start) continue;
      out += `${text.slice(copied, start)}${quote}${REDACTED}${closed ? quote : ''}`;
      copied = PAIR.lastIndex = end;
    }
    return copied === 0 ? text : out + text.slice(copied);
  }

  /** A URL with deny-listed query (and fragment) parameters redacted; the rest of it unchanged. */
  url(url: string): string {
    const query = url.indexOf('?');
    const hash = url.indexOf('#');
    if (query < 0 && hash < 0) return url;
    const start = query >= 0 && (hash < 0 || query < hash) ? query : hash;
    if (this.find(url, start + 1) < 0 && url.indexOf('%', start) < 0) return url;
    if (start === hash) return `${url.slice(0, hash)}#${this.pairs(url.slice(hash + 1), false)}`;
    const queryEnd = hash > query ? hash : url.length;
    const fragment = hash > query ? `#${this.pairs(url.slice(hash + 1), false)}` : '';
    return `${url.slice(0, query)}?${this.pairs(url.slice(query + 1, queryEnd), false)}${fragment}`;
  }

  /** A captured body, redacted as its content type says (sniffed when there is none). */
  body(parts: Omit<BodyParts, 'bytes'>, contentType: string | undefined): RedactedBody {
    const type = contentType?.toLowerCase() ?? '';
    const cut = parts.omittedBytes > 0;
    // Uncut, head and tail are one text (the capture may still hold it in two pieces).
    const head = cut ? parts.head : parts.head + parts.tail;
    if (type.includes('x-www-form-urlencoded')) {
      const kept = this.pairsText(head, false).text;
      return cut ? this.joined(kept, parts, this.pairsText(parts.tail, true)) : { text: kept, truncated: false };
    }
    if (type.startsWith('multipart/')) {
      // A field's name and its value are on different lines: no line or pair pass can pair them up, so a
      // body naming a deny-listed word is withheld, and a tail (whose fields' names may be cut away) dropped.
      if (this.find(head) >= 0) return { text: withheld(parts, 'multipart data'), truncated: cut };
      return cut ? this.joined(head, parts, { text: '', dropped: parts.tail }) : { text: head, truncated: false };
    }
    const declaredJson = type.includes('json') && !STREAMED_JSON.test(type);
    if (declaredJson || (type === '' && JSON_START.test(head))) {
      const kept = this.jsonText(head, cut);
      if (kept !== undefined) {
        return cut ? this.joined(kept, parts, { text: '', dropped: parts.tail }) : { text: kept, truncated: false };
      }
      if (declaredJson) return { text: withheld(parts, 'JSON'), truncated: cut };
    }
    const kept = this.lines(head, false, cut).text;
    return cut ? this.joined(kept, parts, this.lines(parts.tail, true, false)) : { text: kept, truncated: false };
  }

  /** Head, marker, what is kept of the tail; the marker counts every byte left out, the tail's dropped start too. */
  private joined(head: string, parts: Omit<BodyParts, 'bytes'>, tail: { text: string; dropped: string }): RedactedBody {
    const omitted = parts.omittedBytes + utf8Length(tail.dropped);
    return { text: `${head}…[${omitted} bytes omitted]…${tail.text}`, truncated: true };
  }

  /** JSON text redacted, or undefined when it is not JSON and holds a candidate. */
  private jsonText(text: string, partial: boolean): string | undefined {
    const hits = this.hits(text, 0, text.length);
    // An escaped key (`"\u0074oken"`) hides its name from the finder: the scan decodes every escaped key.
    if (hits.length === 0 && !text.includes('\\u')) return text;
    return redactJson(text, partial, hits, this.json);
  }

  /**
   * Text line by line. `cutStart`: the text is a tail, whose first line may be the end of a secret
   * whose name was cut away: it is dropped. `cutEnd`: the text is a head; its last line is cut.
   */
  private lines(text: string, cutStart: boolean, cutEnd: boolean): { text: string; dropped: string } {
    let start = 0;
    if (cutStart) {
      const nl = text.indexOf('\n');
      if (nl < 0) return { text: '', dropped: text };
      start = nl + 1;
    }
    const dropped = text.slice(0, start);
    if (this.find(text, start) < 0) return { text: text.slice(start), dropped };
    let out = '';
    for (let from = start; from < text.length;) {
      const nl = text.indexOf('\n', from);
      const end = nl < 0 ? text.length : nl + 1;
      const line = text.slice(from, end);
      out += this.find(line) < 0 ? line : this.line(line, cutEnd && nl < 0);
      from = end;
    }
    return { text: out, dropped };
  }

  /** One line holding a candidate: JSON (bare or as an SSE `data:` field) is scanned, the rest scrubbed. */
  private line(line: string, partial: boolean): string {
    let p = line.startsWith('data:') ? 5 : 0;
    while (line.charCodeAt(p) === 32 || line.charCodeAt(p) === 9) p++;
    const c = line.charCodeAt(p);
    if (c === 123 || c === 91) {
      const payload = line.slice(p);
      const redacted = this.jsonText(payload, partial);
      if (redacted !== undefined) return line.slice(0, p) + redacted;
    }
    return this.text(line);
  }

  /** A form body or part of one; `cutStart`: a tail, kept from its first `&` on. */
  private pairsText(text: string, cutStart: boolean): { text: string; dropped: string } {
    let start = 0;
    if (cutStart) {
      start = text.indexOf('&');
      if (start < 0) return { text: '', dropped: text };
    }
    const dropped = text.slice(0, start);
    const rest = text.slice(start);
    if (this.find(rest) < 0 && !rest.includes('%')) return { text: rest, dropped };
    return { text: this.pairs(rest, true), dropped };
  }

  /** `a=1&b=2`: values of deny-listed names (or body paths, `withPaths`) redacted, other values scrubbed. */
  private pairs(text: string, withPaths: boolean): string {
    let out = '';
    for (let i = 0; ;) {
      const amp = text.indexOf('&', i);
      const end = amp < 0 ? text.length : amp;
      let pair = text.slice(i, end);
      const eq = pair.indexOf('=');
      if (eq >= 0) {
        const name = decodeName(pair.slice(0, eq));
        if (this.isSecretName(name) || (withPaths && this.paths.has(name.replace(/\[([^\]]*)\]/g, '.$1')))) {
          pair = pair.slice(0, eq + 1) + REDACTED;
        } else {
          pair = pair.slice(0, eq + 1) + this.pairValue(pair.slice(eq + 1));
        }
      }
      out += pair;
      if (amp < 0) return out;
      out += '&';
      i = amp + 1;
    }
  }

  /**
   * The value of a pair that is not itself withheld. It may carry pairs of its own, plain
   * (`redirect=/cb?token=…`) or percent-encoded (`state=%7B%22token%22…`): those are redacted, and an
   * encoded value that had one is stored re-encoded.
   */
  private pairValue(raw: string): string {
    const plain = this.text(raw);
    if (plain !== raw || !raw.includes('%')) return plain;
    const decoded = decodeName(raw);
    const clean = decoded === raw ? decoded : this.text(decoded);
    return clean === decoded ? raw : encodeURIComponent(clean);
  }

  /** Start indexes of the finder's candidates in `text[from, to)`, ascending. */
  private hits(text: string, from: number, to: number): number[] {
    const hits: number[] = [];
    for (let at = this.find(text, from, to); at >= 0; at = this.find(text, at + 1, to)) hits.push(at);
    return hits;
  }
}

/**
 * Where the value starting at `start` ends, its opening quote ('' when bare) and whether it was closed.
 * A quote opened after k backslashes (k > 0: a string inside a JSON string) closes at a quote after
 * exactly k backslashes; unescaped, at one after an even number. An escaped quote inside the value has
 * more backslashes than that, so it never ends the value early (a rare odd run only makes it longer).
 */
function valueEnd(text: string, start: number): [end: number, quote: string, closed: boolean] {
  let k = 0;
  while (text.charCodeAt(start + k) === 92) k++;
  const q = text.charAt(start + k);
  if (q === '"' || q === "'") {
    const quote = text.slice(start, start + k + 1);
    for (let from = start + k + 1; ;) {
      const at = text.indexOf(q, from);
      if (at < 0) return [text.length, quote, false];
      let b = 0;
      while (text.charCodeAt(at - 1 - b) === 92) b++;
      if (k === 0 ? b % 2 === 0 : b === k) return [at + 1, quote, true];
      from = at + 1;
    }
  }
  for (const re of [CREDENTIAL, BARE]) {
    re.lastIndex = start;
    if (re.test(text)) return [re.lastIndex, '', false];
  }
  return [start, '', false];
}

/** What is stored instead of a body that cannot be checked: its size and kind, nothing of its content. */
export function withheld(parts: Omit<BodyParts, 'bytes'>, kind: string): string {
  const bytes = utf8Length(parts.head) + parts.omittedBytes + utf8Length(parts.tail);
  return `[withheld: ${bytes} bytes of ${kind} that could not be checked for secrets]`;
}

function decodeName(raw: string): string {
  const plus = raw.includes('+') ? raw.replace(/\+/g, ' ') : raw;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return plus;
  }
}
