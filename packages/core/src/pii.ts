/**
 * PII policy: keys on a deny-list are redacted (the default) or make the event fail. Matching is by key
 * name, not by value: values are never scanned, which keeps the check cheap and predictable. The same
 * list and matcher serve the SDK's events and the request logger's headers, bodies and query strings.
 *
 * A key matches when, split into words (camelCase, snake_case, kebab-case, dots, spaces), its last word,
 * its last two words joined or all its words joined are on the list: `email`, `userEmail`, `user_email`,
 * `clientIp`, `ipAddress`, `authToken`, `x-goog-api-key`, `billing_card_number` match; `zip`,
 * `tokenCount`, `emailVerified` do not (the last word is what the value is).
 */

export type PiiMode = 'redact' | 'reject' | 'off';

export interface PiiPolicy {
  mode: PiiMode;
  /** Deny-listed words; compared lowercase with separators removed. */
  keys: readonly string[];
}

export const DEFAULT_PII_KEYS: readonly string[] = [
  'email',
  'phone',
  'phonenumber',
  'mobile',
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'clientsecret',
  'secretkey',
  'privatekey',
  'token',
  'accesstoken',
  'refreshtoken',
  'idtoken',
  'jwt',
  'otp',
  'apikey',
  'xapikey',
  'auth',
  'authorization',
  'credential',
  'credentials',
  'session',
  'cookie',
  'setcookie',
  'ip',
  'ipaddress',
  'ssn',
  'creditcard',
  'cardnumber',
  'cvv',
  'cvc',
  'iban',
];

export const DEFAULT_PII_POLICY: PiiPolicy = { mode: 'redact', keys: DEFAULT_PII_KEYS };

/** What a redacted value is replaced with. A constant, so nothing about the value leaks (not even its length). */
export const REDACTED = '[REDACTED]';

const WORD_SPLIT = /[_\-\s.]+|(?<=[a-z0-9])(?=[A-Z])/;
const SEPARATORS = /[_\-\s.]/g;
const CACHE_LIMIT = 4096;

export type PiiMatcher = (key: string) => boolean;

/** A deny-list entry as the matcher compares it: lowercase, separators removed. */
function normalize(key: string): string {
  return key.toLowerCase().replace(SEPARATORS, '');
}

export function createPiiMatcher(keys: readonly string[]): PiiMatcher {
  const deny = new Set(keys.map(normalize));
  // Payload keys repeat endlessly (the same few dozen names), so the split runs once per distinct key.
  const cache = new Map<string, boolean>();
  return (key) => {
    let hit = cache.get(key);
    if (hit !== undefined) return hit;
    const words = key.split(WORD_SPLIT).filter(Boolean);
    const n = words.length;
    const last = words[n - 1]?.toLowerCase() ?? '';
    hit =
      deny.has(last) ||
      (n > 1 && deny.has(`${(words[n - 2] as string).toLowerCase()}${last}`)) ||
      deny.has(words.join('').toLowerCase());
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, hit);
    return hit;
  };
}

/** Finds where a deny-listed key may be in a text: the index of the first candidate at or after `from`, or -1. */
export type PiiFinder = (text: string, from?: number, to?: number) => number;

// ASCII character classes for the finder: 0 other, 1 separator, 2 lowercase letter or digit, 3 uppercase.
const CHAR_CLASS = new Uint8Array(128);
// Trie slot of a letter (either case) or digit: a–z 0–25, 0–9 26–35; -1 for anything else.
const CHAR_SLOT = new Int8Array(128).fill(-1);
for (let c = 0; c < 128; c++) {
  const ch = String.fromCharCode(c);
  if (/[a-z0-9]/.test(ch)) CHAR_CLASS[c] = 2;
  else if (/[A-Z]/.test(ch)) CHAR_CLASS[c] = 3;
  else if (/[_\-\s.]/.test(ch)) CHAR_CLASS[c] = 1;
  if (c >= 48 && c <= 57) CHAR_SLOT[c] = 26 + c - 48;
  else if (/[a-z]/i.test(ch)) CHAR_SLOT[c] = (c | 32) - 97;
}
const SLOTS = 36;

function charClass(c: number): number {
  if (c < 128) return CHAR_CLASS[c] as number;
  // Non-ASCII: a Unicode space (what \s matches) separates words, as in the matcher; anything else ends a word.
  return c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
    ? 1
    : 0;
}

/**
 * The cheap check before a text is parsed or scanned for keys of `createPiiMatcher(keys)`: wherever a
 * key that matcher matches stands in the text (JSON `"key"`, `key=` of a query or form, `key:`), the
 * finder reports a candidate inside it. So a text without a candidate holds no deny-listed key and needs
 * no redaction. It reports more than keys (the word `token` in a sentence, `email` in `email_verified`):
 * a candidate only means "look closer".
 *
 * A candidate is an entry's letters, in either case, with any separators between them (`api_key`,
 * `apiKey`, `API-KEY`), starting where a word starts (after a character that is not a letter or digit,
 * or at a camelCase step) and followed by a character that is not a letter or digit. One pass over the
 * text, a trie walk at word starts only: no regex (an alternation of this many entries costs V8 several
 * times more per character), no allocation.
 */
export function createPiiFinder(keys: readonly string[]): PiiFinder {
  const entries = [...new Set(keys.map(normalize))].filter(Boolean);
  // An entry of other characters than letters and digits cannot be walked: every text is a candidate.
  if (entries.some((e) => !/^[a-z0-9]+$/.test(e))) return (text, from = 0, to = text.length) => (from < to ? from : -1);
  const next: number[] = new Array<number>(SLOTS).fill(0); // node 0 is the root; 0 as a target means none
  const ends: number[] = [0];
  for (const entry of entries) {
    let node = 0;
    for (let i = 0; i < entry.length; i++) {
      const slot = CHAR_SLOT[entry.charCodeAt(i)] as number;
      let child = next[node * SLOTS + slot] as number;
      if (child === 0) {
        child = ends.length;
        ends.push(0);
        for (let k = 0; k < SLOTS; k++) next.push(0);
        next[node * SLOTS + slot] = child;
      }
      node = child;
    }
    ends[node] = 1;
  }
  const trie = Int32Array.from(next);
  const isEnd = Uint8Array.from(ends);
  return (text, from = 0, to = text.length) => {
    let prev = from > 0 ? charClass(text.charCodeAt(from - 1)) : 0;
    for (let i = from; i < to; i++) {
      const c = text.charCodeAt(i);
      const cls = c < 128 ? (CHAR_CLASS[c] as number) : charClass(c);
      const before = prev;
      prev = cls;
      // A word starts at a letter or digit after a non-letter-digit, or at an uppercase letter after a lowercase one.
      if (cls < 2 || (before >= 2 && !(before === 2 && cls === 3))) continue;
      let node = trie[CHAR_SLOT[c] as number] as number;
      for (let j = i + 1; node !== 0; j++) {
        const d = j < to ? text.charCodeAt(j) : 32;
        const dc = d < 128 ? (CHAR_CLASS[d] as number) : charClass(d);
        if (dc < 2) {
          if (isEnd[node] === 1) return i;
          if (dc === 0 || j >= to) break;
          continue; // a separator inside the key: `api_key`
        }
        node = trie[node * SLOTS + (CHAR_SLOT[d] as number)] as number;
      }
    }
    return -1;
  };
}
