/**
 * What the collector robustness and fuzz tests send: one good body per ingest path (each event tagged so
 * a test can count its stored rows), bodies that only look compressed, a gzip bomb, and a bounded pool
 * to run many requests at once.
 */
import { randomUUID } from 'node:crypto';
import { createGzip, gzipSync } from 'node:zlib';
import { ErrorCodes, isoTime, uuidv7 } from '@tally/core';
import type { RawRequest } from './raw-http.js';

/**
 * The request that once crashed `tally serve`: curl's `--data-binary` of a file that is not gzip, sent
 * with `Content-Encoding: gzip`, curl's default form content type and no key.
 */
export function curlNotGzip(port: number, body: Uint8Array): RawRequest {
  return {
    method: 'POST',
    path: '/v1/batch',
    headers: [
      ['Host', `127.0.0.1:${port}`],
      ['User-Agent', 'curl/8.5.0'],
      ['Accept', '*/*'],
      ['content-encoding', 'gzip'],
      ['Content-Length', String(body.length)],
      ['Content-Type', 'application/x-www-form-urlencoded'],
    ],
    body,
  };
}

/** A good `/v1/events` batch of one event tagged `tag`, over a raw connection, with `key`. */
export function goodEventsRequest(key: string, tag: string): RawRequest {
  const body = Buffer.from(JSON.stringify(goodBody('/v1/events', tag)));
  return {
    method: 'POST',
    path: '/v1/events',
    headers: [
      ['host', 'x'],
      ['content-type', 'application/json'],
      ['authorization', `Bearer ${key}`],
      ['content-length', String(body.length)],
    ],
    body,
  };
}

/** Every route the collector ingests on, one per format and kind. */
export const INGEST_PATHS = ['/v1/events', '/v1/batch', '/v1/track', '/batch', '/capture', '/i/v0/e'] as const;
export type IngestPath = (typeof INGEST_PATHS)[number];

/** One catalog event (stored when the key is good) in the format `path` speaks, tagged `source: tag`. */
export function goodBody(path: string, tag: string): Record<string, unknown> {
  const properties = { source: tag };
  switch (path) {
    case '/v1/events':
      return { batch: [{ id: uuidv7(), name: 'waitlist_joined', properties, timestamp: isoTime(Date.now()) }] };
    case '/v1/batch':
      return {
        batch: [{ type: 'track', event: 'waitlist_joined', userId: 'u-1', properties, messageId: randomUUID() }],
      };
    case '/v1/track':
      return { event: 'waitlist_joined', userId: 'u-1', properties, messageId: randomUUID() };
    case '/batch':
      return { batch: [{ event: 'waitlist_joined', distinct_id: 'u-1', properties, uuid: uuidv7() }] };
    default:
      return { event: 'waitlist_joined', distinct_id: 'u-1', properties, uuid: uuidv7() };
  }
}

/**
 * About 1 MB of gzip that inflates to `gigabytes` GB of zeros: one member of 64 MB of zeros repeated
 * (gunzip reads concatenated members as one stream), so it is made in a fraction of a second and
 * never held inflated in memory.
 */
export async function gzipBomb(gigabytes = 1): Promise<Buffer> {
  const member = await new Promise<Buffer>((resolve, reject) => {
    const gz = createGzip({ level: 9 });
    const out: Buffer[] = [];
    gz.on('data', (d: Buffer) => out.push(d));
    gz.on('end', () => resolve(Buffer.concat(out)));
    gz.on('error', reject);
    const zeros = Buffer.alloc(1 << 20);
    for (let i = 0; i < 64; i++) gz.write(zeros);
    gz.end();
  });
  return Buffer.concat(Array.from({ length: 16 * gigabytes }, () => member));
}

/** Gzip whose stream ends early (the last bytes, with the checksum, cut off). */
export function truncatedGzip(data: Uint8Array): Buffer {
  const full = gzipSync(data);
  return full.subarray(0, Math.max(10, full.length - 12));
}

/** Bytes that start like gzip (magic number, deflate method) and go on as garbage. */
export function fakeGzip(size = 200): Buffer {
  const b = Buffer.alloc(size, 0x5a);
  b[0] = 0x1f;
  b[1] = 0x8b;
  b[2] = 8;
  return b;
}

/** Runs `fn` over `items` with at most `concurrency` at once; rejects with the first failure. */
export async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, worker: number) => Promise<void>,
) {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async (_, worker) => {
      while (next < items.length) {
        const item = items[next++] as T;
        await fn(item, worker);
      }
    }),
  );
}

const CODES = new Set<string>(Object.values(ErrorCodes));

/** Is `body` the collector's error shape with a known code? */
export function isTypedError(body: unknown): body is { error: { code: string; message: string } } {
  const e = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  return typeof e?.code === 'string' && CODES.has(e.code) && typeof e.message === 'string';
}
