/**
 * The dashboard plugin on its own, over real HTTP: the encoding it picks from Accept-Encoding (q=0 refuses
 * one), revalidation with ETags, and a server without a build, which says how to make one instead of
 * serving a blank page.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Fastify from 'fastify';
import { afterEach, expect, it } from 'vitest';
import { tempDir } from '../../node/test/support/helpers.js';
import { chooseEncoding, dashboardRoutes } from '../src/index.js';

const both = { bodies: { identity: Buffer.from('x'), gzip: Buffer.from('g'), br: Buffer.from('b') } };
const gzipOnly = { bodies: { identity: Buffer.from('x'), gzip: Buffer.from('g') } };

it('picks brotli, then gzip, else the plain bytes; q=0 refuses an encoding', () => {
  expect(chooseEncoding(undefined, both)).toBe('identity');
  expect(chooseEncoding('', both)).toBe('identity');
  expect(chooseEncoding('gzip, deflate, br, zstd', both)).toBe('br');
  expect(chooseEncoding('gzip, deflate', both)).toBe('gzip');
  expect(chooseEncoding('br', gzipOnly)).toBe('identity');
  expect(chooseEncoding('br;q=0, gzip;q=0.5', both)).toBe('gzip');
  expect(chooseEncoding('BR; q=0.0, GZIP', both)).toBe('gzip');
  expect(chooseEncoding('*', both)).toBe('br');
  expect(chooseEncoding('identity', both)).toBe('identity');
});

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function serve(dir: string, warnings: string[] = []) {
  const app = Fastify();
  await app.register(dashboardRoutes, { dir, warn: (m) => warnings.push(m) });
  await app.listen({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => app.close());
  const address = app.server.address() as { port: number };
  return `http://127.0.0.1:${address.port}`;
}

it('answers If-None-Match with 304 per encoding, and serves what the build wrote', async () => {
  const tmp = tempDir('tally-dashboard-serve-');
  cleanups.push(tmp.cleanup);
  mkdirSync(join(tmp.dir, 'assets'));
  writeFileSync(join(tmp.dir, 'index.html'), '<!doctype html><title>t</title>');
  const js = Buffer.from('export const x = 1;\n'.repeat(50));
  writeFileSync(join(tmp.dir, 'assets/app-ABC.js'), js);
  writeFileSync(join(tmp.dir, 'assets/app-ABC.js.gz'), gzipSync(js));
  const base = await serve(tmp.dir);

  const plain = await fetch(`${base}/assets/app-ABC.js`, { headers: { 'accept-encoding': 'identity' } });
  const zipped = await fetch(`${base}/assets/app-ABC.js`, { headers: { 'accept-encoding': 'gzip' } });
  expect(plain.headers.get('content-encoding')).toBeNull();
  expect(zipped.headers.get('content-encoding')).toBe('gzip');
  expect(Buffer.from(await zipped.arrayBuffer()).equals(js)).toBe(true);
  const [plainTag, zippedTag] = [plain.headers.get('etag') as string, zipped.headers.get('etag') as string];
  expect(plainTag).not.toBe(zippedTag);
  const again = (tag: string, encoding: string) =>
    fetch(`${base}/assets/app-ABC.js`, { headers: { 'if-none-match': tag, 'accept-encoding': encoding } });
  expect((await again(zippedTag, 'gzip')).status).toBe(304);
  expect((await again(plainTag, 'identity')).status).toBe(304);
  // A validator of the other encoding does not match: the client gets the bytes it can read.
  expect((await again(plainTag, 'gzip')).status).toBe(200);
  // No brotli file was written: a client asking only for br gets the plain bytes.
  expect(
    (await fetch(`${base}/assets/app-ABC.js`, { headers: { 'accept-encoding': 'br' } })).headers.get(
      'content-encoding',
    ),
  ).toBeNull();
});

it('without a build: warns once at start, and / says how to build (503, security headers on)', async () => {
  const tmp = tempDir('tally-dashboard-unbuilt-');
  cleanups.push(tmp.cleanup);
  const warnings: string[] = [];
  const base = await serve(tmp.dir, warnings);
  expect(warnings).toEqual([expect.stringMatching(/the dashboard is not built .*npm run build/)]);
  const res = await fetch(`${base}/`);
  expect(res.status).toBe(503);
  expect(await res.text()).toMatch(/TALLY_UNAVAILABLE.*npm run build/);
  expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
  expect((await fetch(`${base}/assets/main.js`)).status).toBe(404);
});
