/**
 * The dashboard's HTTP side, a Fastify plugin `tally serve` mounts on its own port: `GET /` answers the
 * built index.html, `GET /assets/*` the hashed files build.mjs wrote (precompressed gzip and brotli,
 * chosen by Accept-Encoding). Everything is read into memory once, when the plugin registers: the whole
 * build is a few hundred KB, and a request then costs no file system call.
 *
 * Hashed names change with their content, so assets are cached for a year as immutable; index.html, which
 * names the current hashes, is revalidated on every load (`no-cache` with an ETag). Every answer carries a
 * strict Content-Security-Policy: the page runs only its own scripts and styles and talks only to this
 * origin, so a value that reaches the page from stored events can never run as code.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ErrorCode, ErrorCodes, httpStatusOf } from '@tally/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';

export interface DashboardOptions {
  /** The build output (index.html, manifest.json, assets/). Default: this package's dist/. */
  dir?: string;
  /** Told once, at registration, when there is no build to serve. */
  warn?: (message: string) => void;
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

type Encoding = 'br' | 'gzip' | 'identity';

interface StaticFile {
  type: string;
  /** Strong validator: a digest of the uncompressed bytes (per encoding, suffixed). */
  etag: string;
  bodies: Partial<Record<Encoding, Buffer>> & { identity: Buffer };
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json; charset=utf-8',
};

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** The build output of this package (src/serve.ts and dist/serve.js both sit one level below it). */
export function defaultBuildDir(): string {
  return fileURLToPath(new URL('../dist/', import.meta.url));
}

export const dashboardRoutes: FastifyPluginAsync<DashboardOptions> = async (app, options) => {
  const dir = options.dir ?? defaultBuildDir();
  const build = loadBuild(dir);
  if (build === undefined) {
    options.warn?.(`the dashboard is not built (no ${join(dir, 'index.html')}): run \`npm run build\``);
  }

  app.addHook('onSend', async (_request, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) void reply.header(name, value);
    return payload;
  });

  app.get('/', async (request, reply) => {
    if (build === undefined) {
      return refuse(
        reply,
        ErrorCodes.UNAVAILABLE,
        'the dashboard is not built on this server: run `npm run build` in the Tally checkout',
      );
    }
    return send(request, reply, build.index, 'no-cache');
  });

  app.get<{ Params: { '*': string } }>('/assets/*', async (request, reply) => {
    const file = build?.assets.get(request.params['*']);
    if (file === undefined) return refuse(reply, ErrorCodes.NOT_FOUND, `no dashboard asset ${request.url}`);
    return send(request, reply, file, IMMUTABLE);
  });
};

/** The JSON error every Tally route answers with (answered here, so the plugin needs no host's handler). */
function refuse(reply: FastifyReply, code: ErrorCode, message: string) {
  return reply.code(httpStatusOf(code)).type('application/json; charset=utf-8').send({ error: { code, message } });
}

function send(request: FastifyRequest, reply: FastifyReply, file: StaticFile, cacheControl: string) {
  const encoding = chooseEncoding(request.headers['accept-encoding'], file);
  const etag = encoding === 'identity' ? `"${file.etag}"` : `"${file.etag}-${encoding}"`;
  void reply
    .header('cache-control', cacheControl)
    .header('vary', 'accept-encoding')
    .header('etag', etag)
    .type(file.type);
  if (ifNoneMatch(request.headers['if-none-match'], etag)) return reply.code(304).send();
  if (encoding !== 'identity') void reply.header('content-encoding', encoding);
  return reply.send(file.bodies[encoding]);
}

function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  return header.split(',').some((t) => t.trim() === etag || t.trim() === `W/${etag}` || t.trim() === '*');
}

/**
 * The best encoding the client accepts that the build has: brotli, then gzip, else the plain bytes.
 * `q=0` refuses an encoding (RFC 9110 §12.5.3); other weights are not ranked, since every client that
 * sends them accepts both.
 */
export function chooseEncoding(header: string | undefined, file: Pick<StaticFile, 'bodies'>): Encoding {
  if (!header) return 'identity';
  const accepted = new Set<string>();
  for (const part of header.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    accepted.add(name.trim());
  }
  for (const e of ['br', 'gzip'] as const) {
    if ((accepted.has(e) || accepted.has('*')) && file.bodies[e] !== undefined) return e;
  }
  return 'identity';
}

interface Build {
  index: StaticFile;
  /** By path below /assets/. */
  assets: Map<string, StaticFile>;
}

/** Reads index.html and every asset with its `.gz` / `.br` siblings; undefined when there is no build. */
function loadBuild(dir: string): Build | undefined {
  let index: StaticFile;
  try {
    index = readFile(dir, 'index.html');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const assets = new Map<string, StaticFile>();
  const assetDir = join(dir, 'assets');
  let names: string[];
  try {
    names = readdirSync(assetDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    names = [];
  }
  for (const name of names) {
    if (name.endsWith('.gz') || name.endsWith('.br') || name.endsWith('.tmp')) continue;
    try {
      assets.set(name, readFile(assetDir, name));
    } catch (e) {
      // A file of an earlier build that a build running now removed: index.html names none of them.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return { index, assets };
}

function readFile(dir: string, name: string): StaticFile {
  const identity = readFileSync(join(dir, name));
  const bodies: StaticFile['bodies'] = { identity };
  for (const [encoding, ext] of [
    ['gzip', '.gz'],
    ['br', '.br'],
  ] as const) {
    try {
      bodies[encoding] = readFileSync(join(dir, `${name}${ext}`));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  const ext = name.slice(name.lastIndexOf('.'));
  return {
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: createHash('sha256').update(identity).digest('base64url').slice(0, 22),
    bodies,
  };
}
