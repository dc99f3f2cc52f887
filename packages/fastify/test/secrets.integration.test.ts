/**
 * Secrets never reach storage: a corpus of distinct random markers sent through every place a request
 * can carry one (headers, query string, JSON and form request bodies, JSON responses, SSE frames written
 * to reply.raw, redirects, cookies, error messages that echo the URL, bodies cut by truncation, gzip and
 * multipart bodies), then looked for in everything Tally writes: the stored rows (PGlite through the
 * direct sink and the exactly-once writer), the tracker's spool files and the writer's dead letters.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { defineCatalog, ErrorCodes, TallyError } from '@tally/core';
import { createTracker, type Sink, type Tracker } from '@tally/node';
import { createDirectSink, createWriter } from '@tally/store';
import Fastify, { type FastifyInstance } from 'fastify';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { openStore } from '../../store/test/support/stores.js';
import { tallyRequestLog } from '../src/index.js';

const markers: string[] = [];
/** A distinct random marker; the label says where it was sent, for the failure message. */
function marker(label: string): string {
  const m = `MK${label}${randomBytes(8).toString('hex')}`;
  markers.push(m);
  return m;
}

/** One marker per place; each request below sends its own. */
const M = {
  bearer: marker('bearer'),
  cookie: marker('cookie'),
  xApiKey: marker('xapikey'),
  xAuthToken: marker('xauthtoken'),
  googKey: marker('googkey'),
  proxyAuth: marker('proxyauth'),
  refererToken: marker('referer'),
  queryToken: marker('querytoken'),
  queryKey: marker('querykey'),
  queryEncoded: marker('queryencoded'),
  loginPassword: marker('loginpassword'),
  nestedSecret: marker('nestedsecret'),
  arrayRefresh: marker('arrayrefresh'),
  cardNumber: marker('cardnumber'),
  loginToken: marker('logintoken'),
  loginSession: marker('loginsession'),
  setCookie: marker('setcookie'),
  formPassword: marker('formpassword'),
  formKey: marker('formkey'),
  formParsedSecret: marker('formparsed'),
  textPassword: marker('textpassword'),
  sseToken: marker('ssetoken'),
  sseNested: marker('ssenested'),
  sseCut: marker('ssecut'),
  sseLast: marker('sselast'),
  errorToken: marker('errortoken'),
  errorJson: marker('errorjson'),
  cutPassword: marker('cutpassword'),
  cutTail: marker('cuttail'),
  redirectToken: marker('redirect'),
  nulToken: marker('nul'),
  gzipToken: marker('gzip'),
  multipartPassword: marker('multipart'),
};

function buildApp(tracker: Tracker<never>): FastifyInstance {
  const app = Fastify();
  void app.register(tallyRequestLog, { tracker, tenantId: 'shop', bodyLimit: 1024, redactBodyPaths: ['card.number'] });
  app.register(async (forms) => {
    // Raw form text: the log parses it as a form.
    forms.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
      done(null, body),
    );
    forms.post('/form', async () => ({ ok: true }));
  });
  app.register(async (forms) => {
    // A form a parser turned into an object: logged as JSON.
    forms.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) =>
      done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    forms.post('/form-parsed', async () => ({ ok: true }));
  });
  app.register(async (uploads) => {
    uploads.addContentTypeParser('multipart/form-data', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    uploads.post('/upload', async () => ({ ok: true }));
  });
  app.get('/zipped', async (_request, reply) =>
    reply
      .type('application/json')
      .header('content-encoding', 'gzip')
      .send(gzipSync(JSON.stringify({ token: M.gzipToken }))),
  );
  app.get('/items/:id', async (request) => ({ id: (request.params as { id: string }).id }));
  app.post('/login', async (_request, reply) => {
    reply.header('set-cookie', `session=${M.setCookie}; HttpOnly`);
    return { ok: true, token: M.loginToken, user: { name: 'ana', session: { id: M.loginSession } } };
  });
  app.post('/notes', async () => 'noted');
  app.post('/echo', async (request) => request.body);
  app.get('/redirect', async (_request, reply) => reply.redirect(`/next?code=1&access_token=${M.redirectToken}`));
  app.get('/boom', async (request) => {
    throw new Error(`lookup failed for ${request.url} with {"api_key":"${M.errorJson}"}`);
  });
  app.get('/sse', (_request, reply) => {
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' });
    reply.raw.write('data: {"delta":"hello"}\n\n');
    reply.raw.write(`data: {"token":"${M.sseToken}"}\n\n`);
    reply.raw.write(`data: {"usage":{"prompt_tokens":3},"auth":{"api_key":"${M.sseNested}"}}\n\n`);
    // A frame long enough that the head's cut falls inside its secret.
    reply.raw.write(`data: {"secret":"${M.sseCut}${'s'.repeat(600)}"}\n\n`);
    for (let i = 0; i < 50; i++) reply.raw.write(`data: {"n":${i}}\n\n`);
    reply.raw.end(`data: {"access_token":"${M.sseLast}"}\n\ndata: [DONE]\n\n`);
  });
  app.get('/nul', async (_request, reply) => {
    // A NUL character: the database refuses the row, which goes to the dead-letter file.
    return reply.type('text/plain').send(`token=${M.nulToken} note=a\u0000b`);
  });
  return app;
}

/** Sends the whole corpus to a listening app over real HTTP; returns how many requests it made. */
async function sendCorpus(app: FastifyInstance): Promise<number> {
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const requests: [string, RequestInit][] = [
    [
      `/items/1?token=${M.queryToken}&q=shoes&api_key=${M.queryKey}&acc%65ss_token=${M.queryEncoded}`,
      {
        headers: {
          authorization: `Bearer ${M.bearer}`,
          cookie: `sid=${M.cookie}`,
          'x-api-key': M.xApiKey,
          'x-auth-token': M.xAuthToken,
          'x-goog-api-key': M.googKey,
          'proxy-authorization': `Basic ${M.proxyAuth}`,
          referer: `https://app.example/back?access_token=${M.refererToken}&x=1`,
        },
      },
    ],
    [
      '/login',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          user: 'ana',
          password: M.loginPassword,
          profile: { nested: { client_secret: M.nestedSecret } },
          devices: [{ name: 'phone', refresh_token: M.arrayRefresh }, { name: 'laptop' }],
          card: { number: M.cardNumber, exp: '12/30' },
        }),
      },
    ],
    [
      '/form',
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `user=ana&password=${M.formPassword}&user%5Bapi_key%5D=${M.formKey}`,
      },
    ],
    [
      '/form-parsed',
      {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `user=ana&client_secret=${M.formParsedSecret}`,
      },
    ],
    [
      '/notes',
      {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: `retry with password=${M.textPassword} later`,
      },
    ],
    [
      '/echo',
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // Cut at 512 bytes of head: inside the password; the tail holds the end of another secret.
        body: JSON.stringify({
          pad: 'p'.repeat(480),
          password: `${M.cutPassword}${'x'.repeat(400)}`,
          more: 'm'.repeat(2000),
          token: `${'t'.repeat(300)}${M.cutTail}`,
        }),
      },
    ],
    ['/redirect', { redirect: 'manual' }],
    ['/zipped', {}],
    [
      '/upload',
      {
        method: 'POST',
        headers: { 'content-type': 'multipart/form-data; boundary=b' },
        body: `--b\r\nContent-Disposition: form-data; name="password"\r\n\r\n${M.multipartPassword}\r\n--b--\r\n`,
      },
    ],
    [`/boom?token=${M.errorToken}&q=1`, {}],
    ['/sse', {}],
    ['/nul', {}],
  ];
  for (const [path, init] of requests) {
    const res = await fetch(base + path, init);
    await res.arrayBuffer();
  }
  return requests.length;
}

/** Every file under `dir`, read whole. */
function filesUnder(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...filesUnder(path));
    else out.push({ path, text: readFileSync(path, 'utf8') });
  }
  return out;
}

function expectNoMarker(where: string, text: string): void {
  const found = markers.filter((m) => text.includes(m));
  expect(found, `${where} holds secrets`).toEqual([]);
}

describe('secrets never reach storage', { timeout: 120_000 }, () => {
  it('none of the markers is in the stored rows, the spool or the dead letters', async () => {
    const { store, dispose } = await openStore('pglite');
    const dirs = tempDir('tally-secrets-');
    const writerDir = join(dirs.dir, 'writer');
    const spoolDir = join(dirs.dir, 'tracker-spool');
    const writer = createWriter({ store, spoolDir: writerDir });
    const catalog = defineCatalog({});
    const stored = createTracker({ catalog, sink: createDirectSink(writer), spool: writerDir });
    // A sink that is always down: after one attempt its logs go to the tracker's spool files.
    const down: Sink = {
      name: 'down',
      async send() {
        return { ok: false, disposition: 'retry', error: new TallyError(ErrorCodes.SINK_RETRYABLE, 'down') };
      },
      async close() {},
    };
    const spooled = createTracker({
      catalog,
      sink: down,
      spool: spoolDir,
      retry: { maxAttempts: 1, initialMs: 1 },
      resendSpoolOnStart: false,
    });
    const apps = [buildApp(stored as Tracker<never>), buildApp(spooled as Tracker<never>)];
    try {
      let sent = 0;
      for (const app of apps) {
        await app.listen({ port: 0, host: '127.0.0.1' });
        sent = await sendCorpus(app);
      }
      await stored.flush();
      await writer.flush();
      const report = await spooled.flush();

      // Stored: every request but the NUL one, and that one dead-lettered.
      const rows = await store.sql.query<Record<string, unknown>>(
        `SELECT * FROM request_logs WHERE tenant_id = 'shop' ORDER BY ts, id`,
      );
      expect(rows).toHaveLength(sent - 1);
      expectNoMarker('request_logs', JSON.stringify(rows));
      const byRoute = new Map(rows.map((r) => [r.route as string, r]));
      // The data went through, redacted in place (not dropped): the checks above are not vacuous.
      expect(byRoute.get('/items/:id')?.url).toBe(
        '/items/1?token=[REDACTED]&q=shoes&api_key=[REDACTED]&acc%65ss_token=[REDACTED]',
      );
      expect(byRoute.get('/items/:id')?.headers).toMatchObject({
        authorization: '[REDACTED]',
        'x-auth-token': '[REDACTED]',
        'x-goog-api-key': '[REDACTED]',
        referer: 'https://app.example/back?access_token=[REDACTED]&x=1',
      });
      expect(JSON.parse(byRoute.get('/login')?.response_body as string)).toEqual({
        ok: true,
        token: '[REDACTED]',
        user: { name: 'ana', session: '[REDACTED]' },
      });
      expect(JSON.parse(byRoute.get('/login')?.request_body as string)).toMatchObject({
        user: 'ana',
        password: '[REDACTED]',
        devices: [{ name: 'phone', refresh_token: '[REDACTED]' }, { name: 'laptop' }],
        card: { number: '[REDACTED]', exp: '12/30' },
      });
      expect(byRoute.get('/form')?.request_body).toBe('user=ana&password=[REDACTED]&user%5Bapi_key%5D=[REDACTED]');
      expect(byRoute.get('/form-parsed')?.request_body).toBe('{"user":"ana","client_secret":"[REDACTED]"}');
      expect(byRoute.get('/notes')?.request_body).toBe('retry with password=[REDACTED] later');
      expect(byRoute.get('/echo')).toMatchObject({ body_truncated: true });
      expect(byRoute.get('/zipped')?.response_body).toMatch(/^\[withheld: \d+ bytes of gzip-encoded data/);
      expect(byRoute.get('/upload')?.request_body).toMatch(/^\[withheld: \d+ bytes of multipart data/);
      expect(byRoute.get('/redirect')?.headers).toMatchObject({
        'response.location': '/next?code=1&access_token=[REDACTED]',
      });
      expect(byRoute.get('/login')?.headers).toMatchObject({ 'response.set-cookie': '[REDACTED]' });
      expect(byRoute.get('/boom')?.error).toContain('token=[REDACTED]&q=1');
      expect(byRoute.get('/boom')?.response_body).toContain('token=[REDACTED]');
      expect(byRoute.get('/sse')?.response_body).toContain('data: {"token":"[REDACTED]"}');
      expect(byRoute.get('/sse')?.response_body).toContain('data: [DONE]');

      // Dead letters: the refused row is there, redacted like the others.
      const deadLetters = readFileSync(writer.deadLetterFile, 'utf8');
      expect(deadLetters).toContain('/nul');
      expect(deadLetters).toContain('token=[REDACTED]');
      // Spool: the other tracker's logs, all of them, in its files.
      expect(report.spooled).toBe(sent);
      const spoolFiles = filesUnder(spoolDir);
      expect(spoolFiles.map((f) => f.text).join('')).toContain('"token\\":\\"[REDACTED]\\"');
      for (const file of [...filesUnder(writerDir), ...spoolFiles]) expectNoMarker(file.path, file.text);
    } finally {
      for (const app of apps) await app.close();
      await stored.shutdown();
      await spooled.shutdown();
      await writer.close();
      await dispose();
      dirs.cleanup();
    }
  });
});
