/**
 * The collector never falls over on what it is sent: every ingest path × Content-Type × Content-Encoding
 * (including bodies that are not what their encoding says and a gzip bomb) × credentials gets a typed
 * JSON answer with the status ErrorTable gives its code, or the ingest answer; no zlib stream outlives
 * its request; the server stays up and keeps storing. One server (PGlite, in-process) for the file.
 */
import { createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { deflateSync, gzipSync } from 'node:zlib';
import { ErrorCodes, httpStatusOf } from '@tally/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inflatingBody } from '../src/ingest/inflate.js';
import {
  curlNotGzip,
  fakeGzip,
  goodBody,
  gzipBomb,
  INGEST_PATHS,
  isTypedError,
  pool,
  truncatedGzip,
} from './support/collector-requests.js';
import { type Outcome, RawConnection, type RawResponse } from './support/raw-http.js';
import { serveFor, type TestServer } from './support/services.js';

const CONTENT_TYPES = {
  json: 'application/json',
  text: 'text/plain;charset=UTF-8',
  form: 'application/x-www-form-urlencoded',
  none: undefined,
  garbage: 'x/y;;;',
} as const;
type ContentType = keyof typeof CONTENT_TYPES;

const ENCODINGS = ['none', 'gzip', 'deflate', 'not-gzip', 'truncated-gzip', 'bomb', 'br', 'zstd'] as const;
type Encoding = (typeof ENCODINGS)[number];

const AUTHS = ['none', 'bad', 'good'] as const;
type Auth = (typeof AUTHS)[number];

interface Case {
  path: string;
  type: ContentType;
  encoding: Encoding;
  auth: Auth;
}

/** What each combination must be answered with: the first check that refuses it, in request order. */
function expected(c: Case): { status: number; code?: string } {
  const refuse = (code: string) => ({ status: httpStatusOf(code), code });
  if (c.encoding === 'br' || c.encoding === 'zstd') return refuse(ErrorCodes.UNSUPPORTED_MEDIA_TYPE);
  if (c.type !== 'json' && c.type !== 'text') return refuse(ErrorCodes.UNSUPPORTED_MEDIA_TYPE);
  if (c.encoding === 'not-gzip' || c.encoding === 'truncated-gzip') return refuse(ErrorCodes.MALFORMED_BODY);
  if (c.encoding === 'bomb') return refuse(ErrorCodes.PAYLOAD_TOO_LARGE);
  if (c.auth !== 'good') return refuse(ErrorCodes.UNAUTHORIZED);
  return { status: 200 };
}

const answer = (o: Outcome): RawResponse => {
  if (o.kind !== 'response') throw new Error(`no answer: ${o.error}`);
  return o.response;
};

let s: TestServer;
let port: number;
let bomb: Buffer;
const TAG = `robust-${randomBytes(4).toString('hex')}`;

// Zlib handles the server creates while a test runs (the server runs in this process).
let zlibCreated = 0;
const zlibHook = createHook({
  init(_id, type) {
    if (type === 'ZLIB') zlibCreated++;
  },
});

beforeAll(async () => {
  s = await serveFor('pglite');
  port = Number(new URL(s.server.url).port);
  bomb = await gzipBomb(1);
}, 60_000);
afterAll(() => s?.dispose());

async function storedWithTag(tag: string): Promise<number> {
  const rows = await s.server.store.sql.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM events WHERE properties->>'source' = $1`,
    [tag],
  );
  return Number(rows[0]?.n);
}

async function healthy(): Promise<void> {
  const res = await fetch(`${s.server.url}/healthz`);
  expect(res.status).toBe(200);
}

describe('the crash of a refused gzip request (regression)', () => {
  it('curl --data-binary @random.bin with content-encoding gzip, form content type, no key: 415, and the server lives', async () => {
    const body = randomBytes(4096);
    const c = new RawConnection(port);
    try {
      // What curl sends for: curl -X POST http://127.0.0.1:8787/v1/batch -H 'content-encoding: gzip' --data-binary @random.bin
      const res = answer(await c.send(curlNotGzip(port, body)));
      expect(res.status).toBe(415);
      expect(JSON.parse(res.body.toString())).toMatchObject({ error: { code: ErrorCodes.UNSUPPORTED_MEDIA_TYPE } });
    } finally {
      c.close();
    }
    // The unhandled 'error' of the old Gunzip came a moment after the answer: give it that moment. Vitest
    // fails the run on an unhandled error in this process, which is where the server runs.
    await new Promise((r) => setTimeout(r, 300));
    await healthy();
    const good = await fetch(`${s.server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
      body: JSON.stringify(goodBody('/v1/batch', `${TAG}-after-crash`)),
    });
    expect(good.status).toBe(200);
    expect(await storedWithTag(`${TAG}-after-crash`)).toBe(1);
  });
});

describe('every path × content type × encoding × credentials', () => {
  it('answers each with a typed JSON error of its table status or the ingest answer; stores exactly the good ones', async () => {
    const cases: Case[] = [];
    for (const path of INGEST_PATHS)
      for (const type of Object.keys(CONTENT_TYPES) as ContentType[])
        for (const encoding of ENCODINGS) for (const auth of AUTHS) cases.push({ path, type, encoding, auth });
    expect(cases.length).toBe(6 * 5 * 8 * 3);

    // Bodies are made before counting zlib handles (making them takes some too).
    const requests = cases.map((c) => {
      const json = Buffer.from(JSON.stringify(goodBody(c.path, TAG)));
      const body = {
        none: json,
        gzip: gzipSync(json),
        deflate: deflateSync(json),
        'not-gzip': fakeGzip(),
        'truncated-gzip': truncatedGzip(json),
        bomb,
        br: gzipSync(json),
        zstd: gzipSync(json),
      }[c.encoding];
      const headers: [string, string][] = [
        ['host', 'localhost'],
        ['content-length', String(body.length)],
      ];
      const type = CONTENT_TYPES[c.type];
      if (type !== undefined) headers.push(['content-type', type]);
      const named = { none: '', deflate: 'deflate', br: 'br', zstd: 'zstd' } as Partial<Record<Encoding, string>>;
      const encoding = named[c.encoding] ?? 'gzip';
      if (encoding !== '') headers.push(['content-encoding', encoding]);
      if (c.auth !== 'none') headers.push(['authorization', `Bearer ${c.auth === 'good' ? s.key : 'tk_not_a_key'}`]);
      return { c, headers, body };
    });

    const connections = Array.from({ length: 8 }, () => new RawConnection(port));
    const failures: string[] = [];
    let ok = 0;
    zlibCreated = 0;
    zlibHook.enable();
    try {
      await pool(requests, connections.length, async ({ c, headers, body }, worker) => {
        const outcome = await (connections[worker] as RawConnection).send({
          method: 'POST',
          path: c.path,
          headers,
          body,
        });
        const want = expected(c);
        const label = `${c.path} ${c.type} ${c.encoding} auth=${c.auth}`;
        if (outcome.kind !== 'response') return void failures.push(`${label}: no answer (${outcome.error})`);
        const res = outcome.response;
        let parsed: unknown;
        try {
          parsed = JSON.parse(res.body.toString('utf8'));
        } catch {
          return void failures.push(
            `${label}: ${res.status} with a body that is not JSON: ${res.body.toString().slice(0, 80)}`,
          );
        }
        if (res.status !== want.status)
          return void failures.push(`${label}: ${res.status} ${res.body}, want ${want.status}`);
        if (want.code !== undefined) {
          if (!isTypedError(parsed) || parsed.error.code !== want.code)
            failures.push(`${label}: ${res.body}, want code ${want.code}`);
        } else if ((parsed as { accepted?: number }).accepted !== 1) {
          failures.push(`${label}: ${res.body}, want 1 accepted`);
        } else ok++;
      });
    } finally {
      zlibHook.disable();
      for (const c of connections) c.close();
    }
    expect(failures).toEqual([]);
    // The good ones: 6 paths × 2 readable types × 3 readable encodings, with the good key.
    expect(ok).toBe(6 * 2 * 3);
    // A zlib stream only for bodies that were read: supported type, gzip or deflate (good or not), any key.
    // The 415s (wrong type, or br/zstd) created none.
    expect(zlibCreated).toBe(6 * 2 * 5 * 3);

    await healthy();
    expect(await storedWithTag(TAG)).toBe(ok);
    const after = await fetch(`${s.server.url}/v1/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${s.key}` },
      body: JSON.stringify(goodBody('/v1/events', `${TAG}-after`)),
    });
    expect(await after.json()).toMatchObject({ accepted: 1 });
    expect(await storedWithTag(`${TAG}-after`)).toBe(1);
    // Nothing answered 500 or was counted as a bug.
    const metrics = await (await fetch(`${s.server.url}/metrics`)).text();
    expect(metrics).not.toMatch(/^tally_internal_errors_total\{[^}]*\} [1-9]/m);
  }, 120_000);
});

describe('the inflating body', () => {
  it('creates no zlib stream until read, inflates while read, stops at the limit, and dies with its request', async () => {
    const data = Buffer.from(JSON.stringify({ batch: Array.from({ length: 200 }, (_, i) => ({ i })) }));

    // Never read, then destroyed (the request was answered without its body): nothing was created.
    const unread = inflatingBody(new PassThrough().end(gzipSync(data)), 'gzip', 1 << 20);
    unread.destroy();
    expect((unread as unknown as { zlib?: unknown }).zlib).toBeUndefined();

    // Read whole: the same bytes.
    const read: Buffer[] = [];
    for await (const chunk of inflatingBody(new PassThrough().end(gzipSync(data)), 'gzip', 1 << 20))
      read.push(chunk as Buffer);
    expect(Buffer.concat(read).equals(data)).toBe(true);

    // A bomb: refused once past the limit, having inflated little more than the limit.
    const source = new PassThrough();
    const bombed = inflatingBody(source, 'gzip', 1 << 20);
    let seen = 0;
    const failure = await new Promise<Error>((resolve) => {
      bombed.on('data', (c: Buffer) => (seen += c.length));
      bombed.on('error', resolve);
      source.end(bomb);
    });
    expect(failure).toMatchObject({ code: ErrorCodes.PAYLOAD_TOO_LARGE });
    expect(seen).toBeLessThanOrEqual(1 << 20);
    const zlib = (bombed as unknown as { zlib: { destroyed: boolean } }).zlib;
    expect(zlib.destroyed).toBe(true);

    // Not gzip: a typed error, the zlib stream destroyed.
    const garbage = new PassThrough();
    const bad = inflatingBody(garbage, 'gzip', 1 << 20);
    const error = await new Promise<Error>((resolve) => {
      bad.on('error', resolve);
      bad.resume();
      garbage.write(fakeGzip());
    });
    expect(error).toMatchObject({ code: ErrorCodes.MALFORMED_BODY });
    expect((bad as unknown as { zlib: { destroyed: boolean } }).zlib.destroyed).toBe(true);

    // Destroyed mid-read (the response closed first): the zlib stream goes with it.
    const slow = new PassThrough();
    const cut = inflatingBody(slow, 'deflate', 1 << 20);
    cut.resume();
    slow.write(deflateSync(data).subarray(0, 20));
    await new Promise((r) => setImmediate(r));
    cut.destroy();
    expect((cut as unknown as { zlib: { destroyed: boolean } }).zlib.destroyed).toBe(true);
  });
});
