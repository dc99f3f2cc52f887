/**
 * PII policy: keys on a deny-list are redacted (the default) or make the event fail. Matching is by key
 * name, not by value: values are never scanned, which keeps the check cheap and predictable.
 *
 * A key matches when, split into words (camelCase, snake_case, kebab-case), either all its words joined
 * or its last word is on the list: `email`, `userEmail`, `user_email`, `clientIp`, `ipAddress`,
 * `authToken` match; `zip`, `tokenCount`, `emailVerified` do not (the last word is what the value is).
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
  'secret',
  'token',
  'accesstoken',
  'refreshtoken',
  'apikey',
  'authorization',
  'cookie',
  'setcookie',
  'ip',
  'ipaddress',
  'ssn',
  'creditcard',
  'cardnumber',
  'cvv',
  'iban',
];

export const DEFAULT_PII_POLICY: PiiPolicy = { mode: 'redact', keys: DEFAULT_PII_KEYS };

/** What a redacted value is replaced with. A constant, so nothing about the value leaks (not even its length). */
export const REDACTED = '[REDACTED]';

const WORD_SPLIT = /[_\-\s.]+|(?<=[a-z0-9])(?=[A-Z])/;
const CACHE_LIMIT = 4096;

export type PiiMatcher = (key: string) => boolean;

export function createPiiMatcher(keys: readonly string[]): PiiMatcher {
  const deny = new Set(keys.map((k) => k.toLowerCase().replace(/[_\-\s.]/g, '')));
  // Payload keys repeat endlessly (the same few dozen names), so the split runs once per distinct key.
  const cache = new Map<string, boolean>();
  return (key) => {
    let hit = cache.get(key);
    if (hit !== undefined) return hit;
    const words = key.split(WORD_SPLIT).filter(Boolean);
    const last = words[words.length - 1]?.toLowerCase() ?? '';
    hit = deny.has(last) || deny.has(words.join('').toLowerCase());
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, hit);
    return hit;
  };
}
