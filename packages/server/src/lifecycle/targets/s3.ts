/**
 * Archive files in S3 or S3-compatible storage (MinIO, R2, Ceph, s3rver…). A PUT replaces the whole
 * object at once, so readers never see half of one. The AWS SDK is imported on first use, so a server
 * that archives to a local directory never loads it.
 */
import { TallyConfigError } from '@tally/core';
import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { type ArchiveTarget, checkKey } from './target.js';

export interface S3TargetOptions {
  bucket: string;
  /** Folder inside the bucket that every key goes under (`tally/archive`); no leading or trailing `/` needed. */
  prefix?: string;
  /** For S3-compatible servers: `http://127.0.0.1:9000`. Absent: AWS S3. */
  endpoint?: string;
  /** Default `us-east-1` (what most S3-compatible servers expect). */
  region?: string;
  /** Both or neither; neither: the AWS SDK's default credential chain. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`. Default: true when `endpoint` is set. */
  forcePathStyle?: boolean;
}

export interface S3Target extends ArchiveTarget {
  readonly kind: 's3';
  /** What the client is configured with, secrets left out (for doctor output, logs and tests). */
  readonly settings: {
    bucket: string;
    prefix: string;
    endpoint: string | undefined;
    region: string;
    forcePathStyle: boolean;
    /** The configured access key id, or undefined for the AWS SDK's default credential chain. */
    accessKeyId: string | undefined;
  };
  /** Releases the HTTP connections (tests, shutdown). The target loads the client again if used after. */
  close(): void;
}

type Sdk = typeof import('@aws-sdk/client-s3');

export function createS3Target(options: S3TargetOptions): S3Target {
  const { bucket } = options;
  if (!bucket) throw new TallyConfigError('S3 archive target needs a bucket: s3://bucket/prefix');
  if ((options.accessKeyId === undefined) !== (options.secretAccessKey === undefined)) {
    throw new TallyConfigError(
      'S3 archive target needs both accessKeyId and secretAccessKey (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), or neither',
    );
  }
  const base = (options.prefix ?? '').split('/').filter(Boolean).join('/');
  if (base) checkKey(base);
  const root = base ? `${base}/` : '';
  const location = `s3://${bucket}${base ? `/${base}` : ''}`;
  const settings: S3Target['settings'] = {
    bucket,
    prefix: base,
    endpoint: options.endpoint,
    region: options.region ?? 'us-east-1',
    forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
    accessKeyId: options.accessKeyId,
  };

  let loaded: Promise<{ sdk: Sdk; client: S3Client }> | undefined;
  const load = () => {
    loaded ??= import('@aws-sdk/client-s3').then((sdk) => {
      const config: S3ClientConfig = {
        region: settings.region,
        forcePathStyle: settings.forcePathStyle,
        // A hung connection must not stall the archiver forever; the SDK retries (3 attempts).
        requestHandler: { connectionTimeout: 10_000, requestTimeout: 120_000 },
      };
      if (options.endpoint !== undefined) {
        config.endpoint = options.endpoint;
        // SDK ≥ 3.729 adds CRC32 checksums to every request and checks them on responses; many
        // S3-compatible servers reject or mangle those, so only send them where the API requires.
        config.requestChecksumCalculation = 'WHEN_REQUIRED';
        config.responseChecksumValidation = 'WHEN_REQUIRED';
      }
      if (options.accessKeyId !== undefined && options.secretAccessKey !== undefined) {
        config.credentials = { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey };
      }
      return { sdk, client: new sdk.S3Client(config) };
    });
    return loaded;
  };

  const fail = (op: string, key: string, e: unknown): Error => {
    const err = e as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
    const status = err.$metadata?.httpStatusCode;
    const detail = `${err.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${err.message ?? String(e)}`;
    return new Error(`S3 ${op} of "${key}" in bucket "${bucket}" failed: ${detail}`, { cause: e });
  };

  return {
    kind: 's3',
    location,
    settings,
    async put(key, data) {
      checkKey(key);
      const { sdk, client } = await load();
      try {
        await client.send(
          new sdk.PutObjectCommand({ Bucket: bucket, Key: root + key, Body: data, ContentLength: data.byteLength }),
        );
      } catch (e) {
        throw fail('put', root + key, e);
      }
    },
    async get(key) {
      checkKey(key);
      const { sdk, client } = await load();
      try {
        const out = await client.send(new sdk.GetObjectCommand({ Bucket: bucket, Key: root + key }));
        if (!out.Body) return new Uint8Array(0);
        return await out.Body.transformToByteArray();
      } catch (e) {
        const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
        // A missing bucket is a 404 too, but that is a misconfiguration, not an absent object.
        if (err.name === 'NoSuchKey') return undefined;
        if (err.$metadata?.httpStatusCode === 404 && err.name !== 'NoSuchBucket') return undefined;
        throw fail('get', root + key, e);
      }
    },
    async list(prefix) {
      const { sdk, client } = await load();
      const keys: string[] = [];
      let token: string | undefined;
      try {
        do {
          const page = await client.send(
            new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: root + prefix, ContinuationToken: token }),
          );
          for (const o of page.Contents ?? []) {
            if (o.Key?.startsWith(root)) keys.push(o.Key.slice(root.length));
          }
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
      } catch (e) {
        throw fail('list', `${root}${prefix}*`, e);
      }
      return keys.sort();
    },
    async delete(key) {
      checkKey(key);
      const { sdk, client } = await load();
      try {
        await client.send(new sdk.DeleteObjectCommand({ Bucket: bucket, Key: root + key }));
      } catch (e) {
        const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
        if (err.name === 'NoSuchKey' || (err.$metadata?.httpStatusCode === 404 && err.name !== 'NoSuchBucket')) return;
        throw fail('delete', root + key, e);
      }
    },
    close() {
      const current = loaded;
      loaded = undefined;
      void current?.then(({ client }) => client.destroy()).catch(() => {});
    },
  };
}
