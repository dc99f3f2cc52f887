/**
 * The request logger's redaction, text in and text out: JSON at any depth, forms, SSE and other lines,
 * URLs, free text, and bodies cut by truncation.
 */
import { DEFAULT_PII_KEYS } from '@tally/core';
import { describe, expect, it } from 'vitest';
import { BodyCapture } from '../src/body-capture.js';
import { Redactor } from '@tally/core';

const redactor = new Redactor({ keys: DEFAULT_PII_KEYS, paths: ['items.card.number', 'pin'] });
const whole = (text: string, type?: string) => redactor.body({ head: text, tail: '', omittedBytes: 0 }, type).text;
/** Cuts `text` as the capture would with `limit` bytes, then redacts. */
const cut = (text: string, limit: number, type?: string) => {
  const capture = new BodyCapture(limit);
  capture.add(text);
  return redactor.body(capture.parts(), type);
};

describe('JSON bodies', () => {
  it('redacts deny-listed keys at any depth, in arrays, and body paths; keeps the rest byte for byte', () => {
    const body = JSON.stringify({
      user: { name: 'Ana', password: 'S1', profile: { userEmail: 'a@b.c' } },
      items: [{ token: 'S2', qty: 1 }, { card: { number: '4111', exp: '12/30' } }, [{ client_secret: 'S3' }]],
      accessToken: 'S4',
      tokenCount: 3,
      pin: 1234,
      credentials: { user: 'u', pass: 'S5' },
      'x-api-key': ['S6', 'S7'],
    });
    const out = whole(body, 'application/json; charset=utf-8');
    expect(JSON.parse(out)).toEqual({
      user: { name: 'Ana', password: '[REDACTED]', profile: { userEmail: '[REDACTED]' } },
      items: [
        { token: '[REDACTED]', qty: 1 },
        { card: { number: '[REDACTED]', exp: '12/30' } },
        [{ client_secret: '[REDACTED]' }],
      ],
      accessToken: '[REDACTED]',
      tokenCount: 3,
      pin: '[REDACTED]',
      credentials: '[REDACTED]',
      'x-api-key': '[REDACTED]',
    });
    const pretty = JSON.stringify({ a: [1, 2], nested: { refresh_token: 'S8' } }, null, 2);
    expect(whole(pretty, 'application/json')).toBe(pretty.replace('"S8"', '"[REDACTED]"'));
  });

  it('body paths start at the root: the same name elsewhere is kept', () => {
    expect(JSON.parse(whole('{"pin":1,"other":{"pin":2}}', 'application/json'))).toEqual({
      pin: '[REDACTED]',
      other: { pin: 2 },
    });
  });

  it('returns a body without any deny-listed name unchanged, without scanning it as JSON', () => {
    const body = '{"hello":"world","zip":"12345","description":"shipping"}';
    expect(whole(body, 'application/json')).toBe(body);
    // Not JSON at all, but nothing in it could be a secret's name: kept as sent.
    expect(whole('{not json', 'application/json')).toBe('{not json');
  });

  it('decodes escaped keys, and scrubs query strings and JSON held in string values', () => {
    expect(JSON.parse(whole('{"\\u0074oken":"S1"}', 'application/json'))).toEqual({ token: '[REDACTED]' });
    const message = { message: 'GET /x?q=1&token=S2&page=2 failed', body: JSON.stringify({ password: 'S3', a: 1 }) };
    const out = whole(JSON.stringify(message), 'application/json');
    expect(out).not.toMatch(/S2|S3/);
    expect(JSON.parse(out).message).toBe('GET /x?q=1&token=[REDACTED]&page=2 failed');
    expect(JSON.parse(JSON.parse(out).body)).toMatchObject({ password: '[REDACTED]' });
  });

  it('withholds declared JSON that is not JSON and names a deny-listed key', () => {
    expect(whole('{"token": "S1"', 'application/json')).toBe(
      '[withheld: 14 bytes of JSON that could not be checked for secrets]',
    );
    expect(whole('{"token":"S1"} trailing', 'application/json')).toMatch(/^\[withheld/);
  });

  it('a cut head is redacted as the start of the document: a secret cut in half is redacted whole', () => {
    const inValue = cut(`{"a":1,"token":"${'s'.repeat(300)}","b":2}`, 40, 'application/json');
    expect(inValue).toEqual({ text: '{"a":1,"token":"[REDACTED]"…[304 bytes omitted]…', truncated: true });
    const inObject = cut(`{"auth":{"user":"u","pass":"${'p'.repeat(300)}"},"b":2}`, 40, 'application/json');
    expect(inObject.text).toBe('{"auth":"[REDACTED]"…[317 bytes omitted]…');
    // The tail is dropped even without a deny-listed name in sight: its secret's key may be in the cut.
    const tailOnly = cut(`{"pad":"${'x'.repeat(300)}","token":"${'s'.repeat(30)}"}`, 40, 'application/json');
    expect(tailOnly.text).toBe(`{"pad":"${'x'.repeat(12)}…[331 bytes omitted]…`);
    const sniffed = cut(`[{"password":"${'s'.repeat(300)}"}]`, 40);
    expect(sniffed.text).toBe('[{"password":"[REDACTED]"…[297 bytes omitted]…');
  });
});

describe('form bodies and URLs', () => {
  it('redacts form fields by name, bracketed or encoded, and body paths', () => {
    const form = 'name=Ana&password=S1&user%5Bapi_key%5D=S2&items[card][number]=4111&Access-Token=S3&pin=7&note=a+b';
    expect(whole(form, 'application/x-www-form-urlencoded')).toBe(
      'name=Ana&password=[REDACTED]&user%5Bapi_key%5D=[REDACTED]&items[card][number]=[REDACTED]&Access-Token=[REDACTED]&pin=[REDACTED]&note=a+b',
    );
  });

  it('keeps a cut form tail from its first & on', () => {
    const form = `password=${'s'.repeat(100)}&note=${'n'.repeat(100)}&b=2`;
    const out = cut(form, 20, 'application/x-www-form-urlencoded');
    expect(out.text).toBe(`password=[REDACTED]…[${form.length - 10 - 4}bytes omitted]…&b=2`.replace('bytes', ' bytes'));
  });

  it('redacts query and fragment parameters and keeps the rest of the URL', () => {
    expect(redactor.url('/search?q=shoes&token=S1&api_key=S2&page=2')).toBe(
      '/search?q=shoes&token=[REDACTED]&api_key=[REDACTED]&page=2',
    );
    expect(redactor.url('https://app.example/cb?state=x#access_token=S3&expires_in=3600')).toBe(
      'https://app.example/cb?state=x#access_token=[REDACTED]&expires_in=3600',
    );
    expect(redactor.url('/a?acc%65ss_token=S4&redirect=/b?refresh_token=S5')).toBe(
      '/a?acc%65ss_token=[REDACTED]&redirect=/b?refresh_token=[REDACTED]',
    );
    // Encoded pairs inside a value (an OAuth state, a return URL) are redacted and re-encoded.
    const state = encodeURIComponent(JSON.stringify({ token: 'S6', to: '/home' }));
    expect(redactor.url(`/cb?state=${state}&next=%2Fa%3Fpassword%3DS7`)).toBe(
      `/cb?state=${encodeURIComponent('{"token":"[REDACTED]","to":"/home"}')}&next=${encodeURIComponent('/a?password=[REDACTED]')}`,
    );
    const plain = '/items/42?tab=1&sort=desc';
    expect(redactor.url(plain)).toBe(plain);
    expect(redactor.url('/token/42')).toBe('/token/42');
  });
});

describe('multipart bodies', () => {
  const multipart = (name: string, value: string) =>
    `--b\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n--b--\r\n`;
  it('withholds one that names a deny-listed word, keeps the head of one that does not', () => {
    expect(whole(multipart('password', 'S1'), 'multipart/form-data; boundary=b')).toBe(
      '[withheld: 67 bytes of multipart data that could not be checked for secrets]',
    );
    const plain = multipart('note', 'hello');
    expect(whole(plain, 'multipart/form-data; boundary=b')).toBe(plain);
    const long = multipart('note', 'n'.repeat(500));
    expect(cut(long, 40, 'multipart/form-data; boundary=b').text).toBe(
      `${long.slice(0, 20)}…[${long.length - 20} bytes omitted]…`,
    );
  });
});

describe('text, SSE and error messages', () => {
  it('redacts JSON SSE frames and key=value text line by line', () => {
    const sse = 'event: login\ndata: {"ok":true,"token":"S1"}\n\ndata: {"delta":"hi"}\n\ndata: session=S2; path=/\n\n';
    expect(whole(sse, 'text/event-stream')).toBe(
      'event: login\ndata: {"ok":true,"token":"[REDACTED]"}\n\ndata: {"delta":"hi"}\n\ndata: session=[REDACTED]; path=/\n\n',
    );
    const ndjson = '{"a":1}\n{"secret":{"x":"S3"}}\n';
    expect(whole(ndjson, 'application/x-ndjson')).toBe('{"a":1}\n{"secret":"[REDACTED]"}\n');
  });

  it('a cut SSE stream: the last head line redacted up to the cut, the tail from its first whole line', () => {
    const frames = [
      'data: {"n":-1}\n\n',
      `data: {"token":"${'s'.repeat(200)}"}\n\n`,
      ...Array.from({ length: 20 }, (_, i) => `data: {"n":${i}}\n\n`),
      // The tail (100 bytes) starts inside this secret, whose name is cut away: that line is dropped.
      `data: {"token":"${'t'.repeat(100)}"}\n\n`,
      'data: {"n":1}\n\n',
      'data: {"token":"T2SECRET"}\n\n',
    ];
    const out = cut(frames.join(''), 200, 'text/event-stream');
    expect(out.text).toMatch(
      /^data: \{"n":-1\}\n\ndata: \{"token":"\[REDACTED\]"…\[\d+ bytes omitted\]…\ndata: \{"n":1\}\n\ndata: \{"token":"\[REDACTED\]"\}\n\n$/,
    );
    expect(out.text).not.toMatch(/sss|ttt|T2SECRET/);
  });

  it('scrubs free text: query strings, key: value, quoted pairs, bearer credentials', () => {
    expect(redactor.text('lookup failed for /search?q=x&token=S1')).toBe(
      'lookup failed for /search?q=x&token=[REDACTED]',
    );
    expect(redactor.text('bad header Authorization: Bearer S2, retry')).toBe(
      'bad header Authorization: [REDACTED], retry',
    );
    expect(redactor.text(`{'password': 'S3', 'user': 'ana'}`)).toBe(`{'password': '[REDACTED]', 'user': 'ana'}`);
    expect(redactor.text('invalid "api_key":"S4"')).toBe('invalid "api_key":"[REDACTED]"');
    expect(redactor.text('x-api-key=S5 rejected')).toBe('x-api-key=[REDACTED] rejected');
    const prose = 'please reset your password from the settings page';
    expect(redactor.text(prose)).toBe(prose);
  });

  it('names headers by the deny-list', () => {
    for (const name of ['x-auth-token', 'x-goog-api-key', 'x-session', 'x-refresh-token', 'authorization']) {
      expect(redactor.isSecretName(name), name).toBe(true);
    }
    for (const name of ['content-type', 'accept', 'x-request-id', 'user-agent']) {
      expect(redactor.isSecretName(name), name).toBe(false);
    }
  });
});

describe('no piece of a secret survives, wherever the cut falls (generated bodies)', () => {
  let seed = 3;
  const rand = (n: number) => (seed = (seed * 48271) % 2147483647) % n;
  const pick = <T>(list: readonly T[]) => list[rand(list.length)] as T;
  const ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const secrets: string[] = [];
  const secret = () => {
    let text = 'Q';
    // Some with a quote inside: a value must not end at an escaped quote.
    for (let i = 0; i < 23; i++) text += i === 11 && rand(3) === 0 ? '"' : ALPHABET.charAt(rand(ALPHABET.length));
    secrets.push(text);
    return text;
  };
  const secretKeys = [
    'token',
    'password',
    'api_key',
    'accessToken',
    'client-secret',
    'Authorization',
    'session',
    'x-api-key',
  ];
  const plainKeys = ['id', 'name', 'items', 'note', 'message', 'data', 'meta', 'tokenCount', 'list'];
  const words = ['hello', 'zip', 'description', 'shipping', 'ok', 'a b c', 'with "quotes"', 'line\nbreak', 'é€😀'];

  /** A random JSON value; secrets under deny-listed keys, and inside query strings of string values. */
  function value(depth: number): unknown {
    const r = rand(depth > 3 ? 3 : 6);
    if (r === 0) return pick(words);
    if (r === 1) return rand(1000);
    if (r === 2) {
      // A query string, or a JSON document held in a string (its quotes escaped once, or twice).
      if (rand(2) === 0) return `see /cb?q=1&${pick(secretKeys)}=${secret()}&page=2`;
      const doc = JSON.stringify({ [pick(secretKeys)]: secret(), note: pick(words) });
      return rand(2) === 0 ? doc : JSON.stringify({ wrapped: doc });
    }
    if (r === 3) return Array.from({ length: rand(4) }, () => value(depth + 1));
    const obj: Record<string, unknown> = {};
    for (let i = rand(5); i >= 0; i--) {
      if (rand(3) === 0) obj[pick(secretKeys)] = rand(2) === 0 ? secret() : { inner: secret(), list: [secret()] };
      else obj[pick(plainKeys)] = value(depth + 1);
    }
    return obj;
  }

  function body(): { text: string; type: string | undefined } {
    switch (rand(4)) {
      case 0:
        return { text: JSON.stringify(value(0)), type: pick(['application/json', undefined]) };
      case 1:
        return { text: JSON.stringify(value(0), null, rand(2) === 0 ? 2 : '\t'), type: 'application/json' };
      case 2: {
        const frames = Array.from({ length: 1 + rand(6) }, () => `data: ${JSON.stringify(value(1))}\n\n`);
        return { text: frames.join(''), type: pick(['text/event-stream', undefined]) };
      }
      default: {
        const pairs = Array.from({ length: 1 + rand(6) }, () =>
          rand(2) === 0
            ? `${pick(secretKeys)}=${secret()}`
            : `${pick(plainKeys)}=${encodeURIComponent(String(pick(words)))}`,
        );
        return { text: pairs.join('&'), type: 'application/x-www-form-urlencoded' };
      }
    }
  }

  it('3000 bodies, each whole and cut at several limits', () => {
    for (let n = 0; n < 3000; n++) {
      secrets.length = 0;
      const { text, type } = body();
      for (const limit of [0, 16, 50, 120, 400]) {
        const out = limit === 0 ? whole(text, type) : cut(text, limit, type).text;
        for (const s of secrets) {
          for (let i = 0; i + 6 <= s.length; i++) {
            if (out.includes(s.slice(i, i + 6))) {
              throw new Error(
                `a piece of ${s} (${s.slice(i, i + 6)}) survived, limit ${limit}, type ${type}:\n${text}\n→\n${out}`,
              );
            }
          }
        }
      }
    }
  });
});
