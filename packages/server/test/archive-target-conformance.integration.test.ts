/**
 * One suite for every ArchiveTarget: a local directory (temp dir) and S3-compatible storage (s3rver, a
 * real HTTP server speaking the S3 API, started here on a free port with its files in a temp dir; a
 * fresh bucket per test). Plus what only one of them has: atomic rename for local, prefixes, paging and
 * errors for S3, and targetFromUrl's parsing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, tempDir, waitFor } from '../../node/test/support/helpers.js';
import {
  type ArchiveTarget,
  createLocalTarget,
  createS3Target,
  type S3Target,
  targetFromUrl,
} from '../src/lifecycle/targets/index.js';

/**
 * s3rver runs in its own process: its ListObjectsV2 continuation tokens are DES-encrypted, which
 * OpenSSL 3 only allows with the legacy provider (without it, any listing past 1000 keys is a 500).
 * It exits when its stdin closes, so a crashed test run leaves nothing behind.
 *
 * One fix makes it behave as S3 does: S3 replaces an object atomically (a GET returns one whole PUT),
 * while s3rver writes into the object's file in place, so two PUTs of one key can interleave their
 * bytes, and it answers before the file is flushed. Its putObject is replaced by one that writes a
 * temp file (a name its listing ignores) and renames it over the object.
 */
const S3RVER_MAIN = `
const { createHash } = require('crypto');
const { mkdir, rename, writeFile } = require('fs/promises');
const { dirname, join } = require('path');
const S3rver = require(process.argv[1]);
const FilesystemStore = require(join(dirname(process.argv[1]), 'stores', 'filesystem.js'));
let temps = 0;
FilesystemStore.prototype.putObject = async function (object) {
  const chunks = [];
  if (Buffer.isBuffer(object.content)) chunks.push(object.content);
  else for await (const chunk of object.content) chunks.push(chunk);
  const content = Buffer.concat(chunks);
  const md5 = createHash('md5').update(content).digest('hex');
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(dirname(objectPath), { recursive: true });
  const temp = objectPath + '.' + process.pid + '.' + ++temps + '.tmp';
  await writeFile(temp, content);
  await rename(temp, objectPath);
  await this.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: content.length, md5 };
};
const server = new S3rver({ address: '127.0.0.1', port: Number(process.argv[2]), silent: true, directory: process.argv[3] });
server.run().then(() => process.stdout.write('ready\\n'), (e) => { console.error(e); process.exit(1); });
process.stdin.on('end', () => process.exit(0)).resume();
`;

/** s3rver knows one account; V4 signatures are not checked, but the access key id must exist. */
const CREDS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

let s3: { endpoint: string; child: ChildProcess; admin: S3Client; cleanup: () => void } | undefined;
let bucketSeq = 0;

beforeAll(async () => {
  const files = tempDir('tally-s3rver-');
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      '--openssl-legacy-provider',
      '-e',
      S3RVER_MAIN,
      createRequire(import.meta.url).resolve('s3rver'),
      String(port),
      files.dir,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(() => out.includes('ready') || child.exitCode !== null, 15_000, 's3rver to start');
  if (child.exitCode !== null) throw new Error(`s3rver exited with code ${child.exitCode}`);
  const endpoint = `http://127.0.0.1:${port}`;
  const admin = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDS });
  s3 = { endpoint, child, admin, cleanup: files.cleanup };
}, 30_000);

afterAll(async () => {
  if (!s3) return;
  s3.admin.destroy();
  const exited = new Promise((r) => s3!.child.once('exit', r));
  s3.child.stdin!.end();
  await exited;
  s3.cleanup();
});

async function freshBucket(): Promise<string> {
  const bucket = `tally-${process.pid}-${++bucketSeq}`;
  await s3!.admin.send(new CreateBucketCommand({ Bucket: bucket }));
  return bucket;
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Kind {
  name: string;
  open(): Promise<ArchiveTarget>;
}

const kinds: Kind[] = [
  {
    name: 'local',
    async open() {
      const t = tempDir('tally-archive-');
      cleanups.push(t.cleanup);
      // A directory that does not exist yet: the target creates it on the first put.
      return createLocalTarget(join(t.dir, 'archive'));
    },
  },
  {
    name: 's3',
    async open() {
      const target = createS3Target({
        bucket: await freshBucket(),
        prefix: 'tally/archive',
        endpoint: s3!.endpoint,
        ...CREDS,
      });
      cleanups.push(() => target.close());
      return target;
    },
  },
];

const bytes = (...xs: number[]) => new Uint8Array(xs);
const text = (s: string) => new TextEncoder().encode(s);

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: limit }, worker));
}

const BAD_KEYS = ['', '/etc/passwd', '../escape', 'a/../../escape', 'a/..', 'a//b', './a', 'a/./b', 'a/'];

describe.each(kinds)('ArchiveTarget conformance: $name', (kind) => {
  it('round-trips binary data byte for byte, including a 5 MB object', async () => {
    const target = await kind.open();
    const every = new Uint8Array(256).map((_, i) => i);
    const big = new Uint8Array(randomBytes(5 * 1024 * 1024));
    await target.put('events/acme/2026-11-20.part1.jsonl.gz', every);
    await target.put('events/acme/big.bin', big);
    await target.put('empty.bin', new Uint8Array(0));

    const a = await target.get('events/acme/2026-11-20.part1.jsonl.gz');
    expect(a).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(a!).equals(Buffer.from(every))).toBe(true);
    const b = await target.get('events/acme/big.bin');
    expect(b!.byteLength).toBe(big.byteLength);
    expect(Buffer.from(b!).equals(Buffer.from(big))).toBe(true);
    expect((await target.get('empty.bin'))?.byteLength).toBe(0);
  }, 60_000);

  it('put replaces a previous object whole (shorter content leaves no tail)', async () => {
    const target = await kind.open();
    await target.put('k/v.txt', text('a much longer first version'));
    await target.put('k/v.txt', text('short'));
    expect(new TextDecoder().decode(await target.get('k/v.txt'))).toBe('short');
    expect(await target.list('k/')).toEqual(['k/v.txt']);
  });

  it('concurrent puts of one key leave one of them intact, never a mix', async () => {
    const target = await kind.open();
    const versions = Array.from({ length: 6 }, (_, i) => new Uint8Array(256 * 1024).fill(i + 1));
    await Promise.all(versions.map((v) => target.put('same/key.bin', v)));
    const got = await target.get('same/key.bin');
    expect(got!.byteLength).toBe(256 * 1024);
    expect(new Set(got).size).toBe(1);
    expect(await target.list('')).toEqual(['same/key.bin']);
  });

  it('get of a missing key is undefined, whether or not its folder exists', async () => {
    const target = await kind.open();
    expect(await target.get('nothing/here.jsonl.gz')).toBeUndefined();
    await target.put('events/acme/a.gz', bytes(1));
    expect(await target.get('events/acme/b.gz')).toBeUndefined();
    expect(await target.get('events/other/a.gz')).toBeUndefined();
  });

  it('list returns the keys starting with the prefix, sorted', async () => {
    const target = await kind.open();
    expect(await target.list('')).toEqual([]);
    const keys = [
      'requests/acme/2026-11-20.part1.jsonl.gz',
      'events/acme2/2026-11-20.part1.jsonl.gz',
      'events/acme/2026-11-21.part1.jsonl.gz',
      'events/acme/2026-11-20.part2.jsonl.gz',
      'events/acme/2026-11-20.part1.jsonl.gz',
      'manifest.json',
    ];
    for (const k of keys) await target.put(k, text(k));
    expect(await target.list('')).toEqual([...keys].sort());
    expect(await target.list('events/acme/')).toEqual([
      'events/acme/2026-11-20.part1.jsonl.gz',
      'events/acme/2026-11-20.part2.jsonl.gz',
      'events/acme/2026-11-21.part1.jsonl.gz',
    ]);
    // A string prefix, not a folder: `events/acme` also matches `events/acme2/…`.
    expect(await target.list('events/acme')).toHaveLength(4);
    expect(await target.list('events/acme/2026-11-20.')).toHaveLength(2);
    expect(await target.list('nothing/')).toEqual([]);
  });

  it('list returns all of more than 1000 keys (S3 pages at 1000)', async () => {
    const target = await kind.open();
    const keys = Array.from({ length: 1100 }, (_, i) => `events/t/${String(i).padStart(5, '0')}.gz`);
    // Shuffled, so sorting is the target's doing.
    const order = [...keys].sort(() => Math.random() - 0.5);
    await pool(order, 16, (k) => target.put(k, bytes(keys.indexOf(k) & 255)));
    await target.put('other/x.gz', bytes(0));
    const listed = await target.list('events/');
    expect(listed).toHaveLength(1100);
    expect(listed).toEqual(keys);
    expect(await target.list('')).toHaveLength(1101);
  }, 120_000);

  it('delete removes the object; deleting a missing one is fine', async () => {
    const target = await kind.open();
    await target.put('events/acme/a.gz', bytes(1));
    await target.put('events/acme/b.gz', bytes(2));
    await target.delete('events/acme/a.gz');
    expect(await target.get('events/acme/a.gz')).toBeUndefined();
    expect(await target.list('events/')).toEqual(['events/acme/b.gz']);
    await target.delete('events/acme/a.gz');
    await target.delete('never/existed.gz');
    expect(await target.list('')).toEqual(['events/acme/b.gz']);
  });

  it('rejects keys that are absolute, climb out with "..", or have empty or "." segments', async () => {
    const target = await kind.open();
    for (const key of BAD_KEYS) {
      await expect(target.put(key, bytes(1)), `put ${JSON.stringify(key)}`).rejects.toMatchObject({
        code: 'TALLY_CONFIG',
        message: expect.stringMatching(/archive key/),
      });
      await expect(target.get(key), `get ${JSON.stringify(key)}`).rejects.toThrow(/archive key/);
      await expect(target.delete(key), `delete ${JSON.stringify(key)}`).rejects.toThrow(/archive key/);
    }
    expect(await target.list('')).toEqual([]);
  });
});

describe('local target', () => {
  it('put is atomic: list never shows temp files or half-written objects while puts run', async () => {
    const t = tempDir('tally-archive-');
    cleanups.push(t.cleanup);
    const target = createLocalTarget(t.dir);
    const data = new Uint8Array(512 * 1024).fill(7);
    let writing = true;
    const seen = new Set<string>();
    const reads: number[] = [];
    const watcher = (async () => {
      while (writing) {
        for (const k of await target.list('')) seen.add(k);
        const got = await target.get('events/acme/0.gz');
        if (got) reads.push(got.byteLength);
      }
    })();
    for (let round = 0; round < 3; round++) {
      await pool([0, 1, 2, 3, 4, 5, 6, 7], 4, (i) => target.put(`events/acme/${i}.gz`, data));
    }
    writing = false;
    await watcher;
    const expected = Array.from({ length: 8 }, (_, i) => `events/acme/${i}.gz`);
    expect([...seen].every((k) => expected.includes(k))).toBe(true);
    expect(reads.every((n) => n === data.byteLength)).toBe(true);
    expect(await target.list('')).toEqual(expected);
  });

  it('list skips a temp file left by a crash mid-put', async () => {
    const t = tempDir('tally-archive-');
    cleanups.push(t.cleanup);
    const target = createLocalTarget(t.dir);
    await target.put('events/acme/a.gz', bytes(1));
    writeFileSync(join(t.dir, 'events', 'acme', 'b.gz.deadbeef.tmp'), 'half');
    expect(await target.list('')).toEqual(['events/acme/a.gz']);
  });

  it('a rejected key writes nothing outside the directory', async () => {
    const t = tempDir('tally-archive-');
    cleanups.push(t.cleanup);
    const target = createLocalTarget(join(t.dir, 'inner'));
    await expect(target.put('../escape', bytes(1))).rejects.toThrow(/archive key/);
    expect(existsSync(join(t.dir, 'escape'))).toBe(false);
  });
});

describe('s3 target', () => {
  const open = async (o: { prefix?: string; bucket?: string } = {}) => {
    const target = createS3Target({
      bucket: o.bucket ?? (await freshBucket()),
      endpoint: s3!.endpoint,
      ...CREDS,
      ...o,
    });
    cleanups.push(() => target.close());
    return target;
  };

  it('keeps keys under its prefix: other objects in the bucket are not listed, keys come back without it', async () => {
    const bucket = await freshBucket();
    const whole = await open({ bucket });
    const inner = await open({ bucket, prefix: '/tally/archive/' });
    expect(inner.location).toBe(`s3://${bucket}/tally/archive`);
    await whole.put('events/acme/outside.gz', bytes(1));
    await whole.put('tally/archive-old/x.gz', bytes(1));
    await inner.put('events/acme/inside.gz', bytes(2));
    expect(await inner.list('')).toEqual(['events/acme/inside.gz']);
    expect(await inner.list('events/')).toEqual(['events/acme/inside.gz']);
    expect(await whole.list('')).toEqual([
      'events/acme/outside.gz',
      'tally/archive-old/x.gz',
      'tally/archive/events/acme/inside.gz',
    ]);
    expect(await whole.get('tally/archive/events/acme/inside.gz')).toEqual(bytes(2));
    expect(await inner.get('events/acme/outside.gz')).toBeUndefined();
    await inner.delete('events/acme/inside.gz');
    expect(await whole.list('tally/')).toEqual(['tally/archive-old/x.gz']);
  });

  it('a missing bucket is an error naming bucket and key, not an absent object', async () => {
    const target = await open({ bucket: 'no-such-bucket' });
    await expect(target.get('events/a.gz')).rejects.toThrow(
      /S3 get of "events\/a.gz" in bucket "no-such-bucket" failed: NoSuchBucket \(HTTP 404\)/,
    );
    await expect(target.put('events/a.gz', bytes(1))).rejects.toThrow(/bucket "no-such-bucket"/);
    await expect(target.list('events/')).rejects.toThrow(/S3 list .* in bucket "no-such-bucket" failed: NoSuchBucket/);
  });

  it('an unknown access key is an error naming bucket and key', async () => {
    const target = createS3Target({
      bucket: await freshBucket(),
      endpoint: s3!.endpoint,
      accessKeyId: 'NOPE',
      secretAccessKey: 'x',
    });
    cleanups.push(() => target.close());
    await expect(target.put('a/b.gz', bytes(1))).rejects.toThrow(
      /S3 put of "a\/b.gz" in bucket "tally-\d+-\d+" failed: InvalidAccessKeyId \(HTTP 403\)/,
    );
  });

  it('an unreachable endpoint is an error, not a hang', async () => {
    const target = createS3Target({ bucket: 'b-1', endpoint: `http://127.0.0.1:${await freePort()}`, ...CREDS });
    cleanups.push(() => target.close());
    await expect(target.get('a/b.gz')).rejects.toThrow(/S3 get of "a\/b.gz" in bucket "b-1" failed: .*ECONNREFUSED/);
  });

  it('checks the options', () => {
    expect(() => createS3Target({ bucket: '' })).toThrow(/needs a bucket/);
    expect(() => createS3Target({ bucket: 'b', accessKeyId: 'k' })).toThrow(/both accessKeyId and secretAccessKey/);
    expect(() => createS3Target({ bucket: 'b', prefix: 'a/../b' })).toThrow(/archive key/);
    const t = createS3Target({ bucket: 'b', endpoint: 'http://x:9000' });
    expect(t.settings).toEqual({
      bucket: 'b',
      prefix: '',
      endpoint: 'http://x:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      accessKeyId: undefined,
    });
    expect(createS3Target({ bucket: 'b', region: 'eu-west-1' }).settings).toMatchObject({
      endpoint: undefined,
      region: 'eu-west-1',
      forcePathStyle: false,
    });
  });
});

describe('targetFromUrl', () => {
  const dataDir = '/var/lib/tally';

  it('a path or file:// URL is a local directory; relative paths are under dataDir', async () => {
    const abs = await targetFromUrl('/srv/archive', { dataDir });
    expect([abs.kind, abs.location]).toEqual(['local', '/srv/archive']);
    expect((await targetFromUrl('archive', { dataDir })).location).toBe('/var/lib/tally/archive');
    expect((await targetFromUrl('./a/b/', { dataDir })).location).toBe('/var/lib/tally/a/b');
    const file = await targetFromUrl('file:///srv/tally%20archive', { dataDir });
    expect([file.kind, file.location]).toEqual(['local', '/srv/tally archive']);
    expect((await targetFromUrl('file://localhost/srv/x', { dataDir })).location).toBe('/srv/x');
  });

  it('a file:// URL works end to end', async () => {
    const t = tempDir('tally-archive-');
    cleanups.push(t.cleanup);
    const target = await targetFromUrl(pathToFileURL(join(t.dir, 'arch')).href, { dataDir });
    await target.put('a/b.gz', bytes(9));
    expect(existsSync(join(t.dir, 'arch', 'a', 'b.gz'))).toBe(true);
  });

  it('s3:// carries bucket, prefix, endpoint, region and path style', async () => {
    const t = (await targetFromUrl(
      's3://tally-archive/prod/events/?endpoint=http://127.0.0.1:9000&region=eu-central-1&forcePathStyle=true',
      { dataDir },
    )) as S3Target;
    expect(t.kind).toBe('s3');
    expect(t.location).toBe('s3://tally-archive/prod/events');
    expect(t.settings).toEqual({
      bucket: 'tally-archive',
      prefix: 'prod/events',
      endpoint: 'http://127.0.0.1:9000',
      region: 'eu-central-1',
      forcePathStyle: true,
      accessKeyId: undefined,
    });
    const aws = (await targetFromUrl('s3://my.bucket', { dataDir })) as S3Target;
    expect(aws.location).toBe('s3://my.bucket');
    expect(aws.settings).toMatchObject({ prefix: '', endpoint: undefined, region: 'us-east-1', forcePathStyle: false });
    const virtualHost = (await targetFromUrl('s3://b12?endpoint=https://s3.example.com&forcePathStyle=false', {
      dataDir,
    })) as S3Target;
    expect(virtualHost.settings.forcePathStyle).toBe(false);
  });

  it('credentials come from the URL (percent-encoded) or else from the options', async () => {
    const fromUrl = (await targetFromUrl('s3://AKIA1:s%2Fe%2Bcret@bkt', {
      dataDir,
      accessKeyId: 'OPT',
      secretAccessKey: 'opt',
    })) as S3Target;
    expect(fromUrl.settings.accessKeyId).toBe('AKIA1');
    const fromOpts = (await targetFromUrl('s3://bkt', {
      dataDir,
      accessKeyId: 'OPT',
      secretAccessKey: 'o',
    })) as S3Target;
    expect(fromOpts.settings.accessKeyId).toBe('OPT');
  });

  it('an s3:// URL works end to end against the server, credentials from the URL', async () => {
    const bucket = await freshBucket();
    const target = (await targetFromUrl(
      `s3://S3RVER:S3RVER@${bucket}/arch?endpoint=${encodeURIComponent(s3!.endpoint)}&forcePathStyle=true`,
      { dataDir },
    )) as S3Target;
    cleanups.push(() => target.close());
    await target.put('events/a.gz', bytes(1, 2, 3));
    expect(await target.get('events/a.gz')).toEqual(bytes(1, 2, 3));
    expect(await target.list('')).toEqual(['events/a.gz']);
    const wrong = (await targetFromUrl(`s3://${bucket}/arch?endpoint=${s3!.endpoint}`, {
      dataDir,
      accessKeyId: 'WRONG',
      secretAccessKey: 'x',
    })) as S3Target;
    cleanups.push(() => wrong.close());
    await expect(wrong.list('')).rejects.toThrow(/InvalidAccessKeyId/);
  });

  it.each([
    ['', /is empty/],
    ['ftp://host/dir', /unsupported scheme "ftp:"/],
    ['http://127.0.0.1:9000/bucket', /unsupported scheme "http:"/],
    ['file://otherhost/srv/x', /not a usable file URL/],
    ['s3://', /has no bucket/],
    ['s3:///prefix', /has no bucket/],
    ['s3://My_Bucket/x', /not a valid bucket name/],
    ['s3://ab', /not a valid bucket name/],
    ['s3://bucket:9000/x', /a port belongs in \?endpoint=/],
    ['s3://bucket/a/../b', /must not have empty, "\." or "\.\." segments/],
    ['s3://bucket/a//b', /must not have empty/],
    ['s3://bucket/a/%2e%2e/b', /must not have empty, "\." or "\.\." segments/],
    ['s3:bucket', /expected s3:\/\/bucket\/prefix/],
    ['s3://bucket?endpont=http://x', /unknown parameter "endpont"/],
    ['s3://bucket?endpoint=localhost:9000', /endpoint "localhost:9000" must be http\(s\)/],
    ['s3://bucket?endpoint=not a url', /endpoint "not a url" is not a URL/],
    ['s3://bucket?forcePathStyle=yes', /forcePathStyle must be true or false/],
    ['s3://bucket?region=eu%20west', /region "eu west" is not a region name/],
    ['s3://keyonly@bucket', /need both the access key id and the secret/],
  ])('rejects %j with a clear error', async (url, message) => {
    const err = await targetFromUrl(url, { dataDir }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/^archive URL "/);
    expect(err?.message).toMatch(message);
  });

  it('keys without their secret: half the credentials in options is an error; errors never show the password', async () => {
    await expect(targetFromUrl('s3://bucket', { dataDir, accessKeyId: 'K' })).rejects.toThrow(
      /needs both an access key id and a secret access key/,
    );
    const err = await targetFromUrl('s3://KEY:hunter2@bucket?nope=1', { dataDir }).catch((e: Error) => e);
    expect(String(err)).toMatch(/archive URL "s3:\/\/KEY:\*\*\*@bucket\?nope=1": unknown parameter "nope"/);
    expect(String(err)).not.toContain('hunter2');
  });
});
