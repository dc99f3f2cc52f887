import { describe, expect, it } from 'vitest';
import {
  canonicalTime,
  createPiiFinder,
  createPiiMatcher,
  DEFAULT_PII_KEYS,
  isoTime,
  parseTime,
  utf8Length,
} from '../src/index.js';

describe('PII deny-list matching', () => {
  const isPii = createPiiMatcher(DEFAULT_PII_KEYS);
  it.each([
    'email',
    'Email',
    'userEmail',
    'user_email',
    'user-email',
    'phone',
    'phoneNumber',
    'password',
    'apiKey',
    'api_key',
    'accessToken',
    'authToken',
    'client_secret',
    'Authorization',
    'cookie',
    'Set-Cookie',
    'ip',
    'clientIp',
    'ipAddress',
    'ssn',
    'creditCard',
    'credit card',
    'access_token',
    'refresh_token',
    'id_token',
    'apikey',
    'x-api-key',
    'X-Goog-Api-Key',
    'stripe_secret_key',
    'privateKey',
    'session',
    'billing_card_number',
    'userIPAddress',
    'credentials',
    'passphrase',
  ])('%s is PII', (key) => expect(isPii(key)).toBe(true));

  it.each([
    'zip',
    'tokenCount',
    'prompt_tokens',
    'emailVerified',
    'sessionId',
    'description',
    'shipping',
    'type',
    'recipe',
    'phoneticName',
    'keyboard',
  ])('%s is not PII', (key) => expect(isPii(key)).toBe(false));

  it('uses a custom list', () => {
    const custom = createPiiMatcher(['nationalId']);
    expect(custom('national_id')).toBe(true);
    expect(custom('email')).toBe(false);
  });
});

describe('PII finder (the cheap check before a text is scanned)', () => {
  const isPii = createPiiMatcher(DEFAULT_PII_KEYS);
  const find = createPiiFinder(DEFAULT_PII_KEYS);

  it('finds nothing in text without a deny-listed word, and a candidate in each deny-listed key', () => {
    for (const text of ['{"hello":"world"}', 'zip=12345&description=shipping', '{"tokenCount":3,"recipe":"x"}', '']) {
      expect(find(text), text).toBe(-1);
    }
    expect(find('{"a":1,"api_key":"x"}')).toBe(8);
    expect(find('?q=1&accessToken=x')).toBe(5);
    expect(find('{"userIPAddress":1}')).toBe(6);
    expect(find('a token here', 0, 3)).toBe(-1);
    expect(find('a token here', 2)).toBe(2);
  });

  it('is a necessary condition: every key the matcher matches is found, in JSON, form and prose', () => {
    let seed = 11;
    const rand = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
    const pick = <T>(list: readonly T[]) => list[rand(list.length)] as T;
    const prefixes = ['', 'user', 'x', 'client', 'my', 'billing', 'new', 'old2', 'X'];
    const separators = ['', '_', '-', '.', ' ', '__', '\u00a0'];
    const style = (word: string): string => {
      switch (rand(4)) {
        case 0:
          return word;
        case 1:
          return word.toUpperCase();
        case 2:
          return word.charAt(0).toUpperCase() + word.slice(1);
        default:
          return [...word].map((c) => (rand(2) ? c.toUpperCase() : c)).join('');
      }
    };
    let matched = 0;
    for (let i = 0; i < 20_000; i++) {
      const entry = pick(DEFAULT_PII_KEYS);
      // The entry cut into 1–3 words at random places, styled, joined by random separators.
      const cuts = new Set([rand(entry.length + 1), rand(entry.length + 1)]);
      const words: string[] = [];
      let last = 0;
      for (const cut of [...cuts].sort((a, b) => a - b)) {
        if (cut > last) words.push(entry.slice(last, cut));
        last = Math.max(last, cut);
      }
      words.push(entry.slice(last));
      const prefix = pick(prefixes);
      const body = words.filter(Boolean).map(style);
      const key = (prefix ? [prefix, ...body] : body).map((w, j) => (j === 0 ? w : pick(separators) + w)).join('');
      const trailer = rand(5) === 0 ? pick(separators) : '';
      const full = key + trailer;
      if (!isPii(full)) continue;
      matched++;
      for (const text of [`{"${full}":1}`, `a=1&${full}=x`, `said ${full}: x`, `${full}`]) {
        expect(find(text), `${JSON.stringify(full)} in ${JSON.stringify(text)}`).toBeGreaterThanOrEqual(0);
      }
    }
    expect(matched).toBeGreaterThan(5000);
  });

  it('treats every text as a candidate for a list it cannot walk', () => {
    expect(createPiiFinder(['national$id'])('{"a":1}')).toBe(0);
  });
});

describe('helpers', () => {
  it('utf8Length counts bytes like Buffer.byteLength', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a€😀b\u0000']) expect(utf8Length(s)).toBe(Buffer.byteLength(s));
  });

  it('isoTime equals toISOString', () => {
    for (const ms of [0, 1, 999, 1000, Date.now(), Date.UTC(2026, 11, 31, 23, 59, 59, 999), 1_795_000_000_007]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('isoTime stays right when the same millisecond repeats and when it moves back (per-ms cache)', () => {
    const t = Date.UTC(2026, 10, 23, 12, 0, 0, 5);
    for (const ms of [t, t, t + 1, t + 1, t, t + 999, t + 1000, t - 1000, t - 1000, 1.5, 1.5]) {
      expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    }
  });

  it('canonicalTime reads what isoTime prints, and nothing else; parseTime equals Date.parse', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const times = [0, -1, 951_782_400_000, 4_107_542_400_000, Date.UTC(2024, 1, 29, 23, 59, 59, 999)];
    for (let i = 0; i < 2000; i++) times.push(Math.floor((rand() * 2 - 1) * 62_000_000_000_000));
    for (const ms of times) {
      expect(canonicalTime(isoTime(ms)), isoTime(ms)).toBe(ms);
      expect(parseTime(isoTime(ms))).toBe(ms);
    }
    const others = [
      '2026-02-29T00:00:00.000Z', // no such day: Date.parse rolls it to Mar 1
      '2024-04-31T10:00:00.000Z',
      '2024-02-30T00:00:00.000Z',
      '2024-01-01T24:00:00.000Z',
      '2024-01-01T23:60:00.000Z',
      '2024-01-01T23:59:60.000Z',
      '2024-13-01T00:00:00.000Z',
      '2024-00-01T00:00:00.000Z',
      '2024-01-00T00:00:00.000Z',
      '2024-01-01T00:00:00.000z',
      '2024-01-01T00:00:00Z',
      '2024-01-01T00:00:00.0000Z',
      '2024-01-01T00:00:00.000+00:00',
      '2024-01-01 00:00:00.000Z',
      '2024-01-01T00:00:00.00xZ',
      '+02024-01-01T00:00:0.000Z',
      '2024-01-01',
      'yesterday',
      '',
    ];
    for (const text of others) {
      expect(canonicalTime(text), text).toBeNaN();
      expect(parseTime(text), text).toEqual(Date.parse(text));
    }
  });
});
