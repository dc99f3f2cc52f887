import { isAbsolute, resolve } from 'node:path';
import { TallyConfigError } from '@tally/core';
import { fileURLToPath } from 'node:url';
import { createLocalTarget } from './local.js';
import { createS3Target, type S3TargetOptions } from './s3.js';
import type { ArchiveTarget } from './target.js';

export { type ArchiveTarget, checkKey } from './target.js';
export { createLocalTarget } from './local.js';
export { createS3Target, type S3Target, type S3TargetOptions } from './s3.js';

export interface TargetFromUrlOptions {
  /** Relative paths are resolved against it. */
  dataDir: string;
  /** Credentials for `s3://` when the URL has none (user:password in the URL win). */
  accessKeyId?: string;
  secretAccessKey?: string;
}

const S3_PARAMS = new Set(['endpoint', 'region', 'forcePathStyle']);

/**
 * An archive target from a URL:
 * - `/var/lib/tally/archive`, `archive` (relative to dataDir) or `file:///var/lib/tally/archive` → local directory;
 * - `s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1&forcePathStyle=true` → S3
 *   (`s3://KEY:SECRET@bucket/prefix` carries credentials, URL-encoded).
 */
export async function targetFromUrl(url: string, options: TargetFromUrlOptions): Promise<ArchiveTarget> {
  const shown = redact(url);
  const bad = (why: string) => new TallyConfigError(`archive URL "${shown}": ${why}`);
  if (url.trim() === '') throw bad('is empty');

  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) return createLocalTarget(resolve(options.dataDir, url));

  if (scheme === 'file') {
    let path: string;
    try {
      path = fileURLToPath(url);
    } catch (e) {
      throw bad(`not a usable file URL (${(e as Error).message}); use file:///absolute/path`);
    }
    if (!isAbsolute(path)) throw bad('a file URL needs an absolute path');
    return createLocalTarget(path);
  }

  if (scheme !== 's3') throw bad(`unsupported scheme "${scheme}:"; use a path, file:///path or s3://bucket/prefix`);

  if (!/^s3:\/\//i.test(url)) throw bad('expected s3://bucket/prefix');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw bad('not a valid URL; expected s3://bucket/prefix?endpoint=…&region=…');
  }
  const bucket = parsed.hostname;
  if (!bucket) throw bad('has no bucket; expected s3://bucket/prefix');
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw bad(`"${bucket}" is not a valid bucket name (3-63 lowercase letters, digits, "." and "-")`);
  }
  if (parsed.port) throw bad('a port belongs in ?endpoint=, not after the bucket');
  if (parsed.hash) throw bad('has a #fragment');

  const s3: S3TargetOptions = { bucket };
  // The path as written: new URL() quietly resolves `a/../b` to `b`, which would hide a mistake.
  const afterScheme = url.slice('s3://'.length).split(/[?#]/, 1)[0] ?? '';
  const slash = afterScheme.indexOf('/');
  let prefix: string;
  try {
    prefix = decodeURIComponent(slash < 0 ? '' : afterScheme.slice(slash));
  } catch {
    throw bad('the prefix is not valid percent-encoding');
  }
  prefix = prefix.replace(/^\/+|\/+$/g, '');
  if (prefix) {
    if (prefix.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw bad(`prefix "${prefix}" must not have empty, "." or ".." segments`);
    }
    s3.prefix = prefix;
  }

  for (const name of parsed.searchParams.keys()) {
    if (!S3_PARAMS.has(name)) throw bad(`unknown parameter "${name}" (known: ${[...S3_PARAMS].join(', ')})`);
  }
  const endpoint = parsed.searchParams.get('endpoint');
  if (endpoint !== null) {
    let e: URL;
    try {
      e = new URL(endpoint);
    } catch {
      throw bad(`endpoint "${endpoint}" is not a URL; expected e.g. http://127.0.0.1:9000`);
    }
    if (e.protocol !== 'http:' && e.protocol !== 'https:') throw bad(`endpoint "${endpoint}" must be http(s)`);
    s3.endpoint = endpoint;
  }
  const region = parsed.searchParams.get('region');
  if (region !== null) {
    if (!/^[a-z0-9-]+$/i.test(region)) throw bad(`region "${region}" is not a region name`);
    s3.region = region;
  }
  const pathStyle = parsed.searchParams.get('forcePathStyle');
  if (pathStyle !== null) {
    if (!['true', 'false', '1', '0'].includes(pathStyle)) throw bad('forcePathStyle must be true or false');
    s3.forcePathStyle = pathStyle === 'true' || pathStyle === '1';
  }

  const user = parsed.username ? decodeURIComponent(parsed.username) : undefined;
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  if ((user === undefined) !== (password === undefined)) {
    throw bad('credentials in the URL need both the access key id and the secret (s3://KEY:SECRET@bucket)');
  }
  const accessKeyId = user ?? options.accessKeyId;
  const secretAccessKey = password ?? options.secretAccessKey;
  if ((accessKeyId === undefined) !== (secretAccessKey === undefined)) {
    throw bad('needs both an access key id and a secret access key, or neither');
  }
  if (accessKeyId !== undefined) s3.accessKeyId = accessKeyId;
  if (secretAccessKey !== undefined) s3.secretAccessKey = secretAccessKey;
  return createS3Target(s3);
}

/** The URL without its password, for messages and logs. */
function redact(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}
