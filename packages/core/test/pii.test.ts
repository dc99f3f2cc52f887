import { describe, expect, it } from 'vitest';
import { canonicalTime, createPiiMatcher, DEFAULT_PII_KEYS, isoTime, parseTime, utf8Length } from '../src/index.js';

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
  ])('%s is PII', (key) => expect(isPii(key)).toBe(true));

  it.each(['zip', 'tokenCount', 'emailVerified', 'description', 'shipping', 'type', 'recipe', 'phoneticName'])(
    '%s is not PII',
    (key) => expect(isPii(key)).toBe(false),
  );

  it('uses a custom list', () => {
    const custom = createPiiMatcher(['nationalId']);
    expect(custom('national_id')).toBe(true);
    expect(custom('email')).toBe(false);
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
