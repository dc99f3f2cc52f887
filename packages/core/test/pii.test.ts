import { describe, expect, it } from 'vitest';
import { createPiiMatcher, DEFAULT_PII_KEYS, isoTime, utf8Length } from '../src/index.js';

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
});
