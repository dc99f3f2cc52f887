import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineCatalog, isoTime, type TallyEvent, t, uuidv7 } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createTracker, Spool, VERSION } from '../src/index.js';
import { tempDir } from './support/helpers.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function ev(i: number): TallyEvent {
  return { id: uuidv7(), name: 'hit', tenantId: 't', properties: { i }, context: {}, timestamp: isoTime(Date.now()) };
}

async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0']);
  await once(p, 'exit');
  return p.pid as number;
}

describe('Spool', () => {
  it('appends in order, rotates, and claims only files no live writer owns', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const spool = new Spool({ dir: tmp.dir });
    await spool.append([ev(1), ev(2)]);
    await spool.append([ev(3)]);
    // Our current file is still open for writing: not claimable.
    expect(await spool.claim()).toEqual([]);
    await spool.rotate();
    const mine = await spool.claim();
    expect(mine).toHaveLength(1);
    expect((await spool.read(mine[0] as string)).events.map((e) => e.properties.i)).toEqual([1, 2, 3]);

    // A file of a live process (the test runner's parent) is left alone; a dead one's is taken.
    writeFileSync(join(tmp.dir, `${process.ppid}-1-0.jsonl`), `${JSON.stringify(ev(9))}\n`);
    const dead = await deadPid();
    writeFileSync(join(tmp.dir, `${dead}-1-0.jsonl`), `${JSON.stringify(ev(10))}\n{"id": "cut sho`);
    const claimed = await spool.claim();
    expect(claimed).toHaveLength(1);
    expect(claimed[0]).toContain(`${dead}-1-0.jsonl.claimed-${process.pid}`);
    const read = await spool.read(claimed[0] as string);
    expect(read.events.map((e) => e.properties.i)).toEqual([10]);
    expect(read.corrupt).toBe(1);
    await spool.remove(claimed[0] as string);
    expect(existsSync(claimed[0] as string)).toBe(false);
    expect(readdirSync(tmp.dir)).toContain(`${process.ppid}-1-0.jsonl`);
  });

  it('takes over a file claimed by a process that died while sending it', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const dead = await deadPid();
    writeFileSync(join(tmp.dir, `123-1-0.jsonl.claimed-${dead}`), `${JSON.stringify(ev(1))}\n`);
    const claimed = await new Spool({ dir: tmp.dir }).claim();
    expect(claimed).toEqual([join(tmp.dir, `123-1-0.jsonl.claimed-${process.pid}`)]);
  });

  it('refuses to grow past its size limit', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const spool = new Spool({ dir: tmp.dir, maxBytes: 500 });
    await spool.append([ev(1)]);
    await expect(spool.append(Array.from({ length: 10 }, (_, i) => ev(i)))).rejects.toThrow(/limit/);
  });

  it('a tracker resends spooled files at start and counts unreadable lines', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const dead = await deadPid();
    const lines = [1, 2, 3].map((i) => JSON.stringify(ev(i))).join('\n');
    writeFileSync(join(tmp.dir, `${dead}-5-0.jsonl`), `${lines}\nnot json\n`);
    const sink = createMemorySink();
    const catalog = defineCatalog({ hit: { properties: { i: t.integer() }, required: ['i'] } });
    const tracker = createTracker({ catalog, sink, spool: tmp.dir, onError: () => {} });
    await new Promise((r) => setTimeout(r, 50));
    await tracker.replaySpool();
    const report = await tracker.shutdown();
    expect(sink.events.map((e) => e.properties.i)).toEqual([1, 2, 3]);
    expect(tracker.stats()).toMatchObject({ replayed: 3, dropped: { TALLY_SPOOL_CORRUPT: 1 } });
    expect(report.pending).toBe(0);
    expect(readdirSync(tmp.dir)).toEqual([]);
  });
});

describe('package', () => {
  it('VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(VERSION).toBe(pkg.version);
  });
});
