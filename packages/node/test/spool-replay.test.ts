import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineCatalog, ErrorCodes, isoTime, type Sink, type TallyEvent, TallyError, t, uuidv7 } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemorySink, createTracker, VERSION } from '../src/index.js';
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

const catalog = defineCatalog({ hit: { properties: { i: t.integer() }, required: ['i'] } });

describe('the tracker and its spool', () => {
  it('resends spooled files at start, older-format files too, and counts unreadable lines', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const dead = await deadPid();
    const lines = [1, 2].map((i) => JSON.stringify({ kind: 'envelope', row: ev(i) })).join('\n');
    writeFileSync(join(tmp.dir, `sdk-${dead}-6-0.jsonl`), `${lines}\nnot json\n`);
    // A store row in an SDK file is not an event the SDK can send: counted, not sent.
    writeFileSync(join(tmp.dir, `sdk-${dead}-7-0.jsonl`), `${JSON.stringify({ kind: 'event', row: { id: 'x' } })}\n`);
    // The format before {kind, row}: bare envelopes in `<pid>-<start>-<seq>.jsonl`.
    writeFileSync(join(tmp.dir, `${dead}-5-0.jsonl`), `${JSON.stringify(ev(0))}\n`);
    // A writer's pending file in the same directory is not the SDK's to send.
    writeFileSync(
      join(tmp.dir, `pending-${dead}-5-0.jsonl`),
      `${JSON.stringify({ kind: 'event', row: { id: 'y' } })}\n`,
    );
    const sink = createMemorySink();
    const tracker = createTracker({ catalog, sink, spool: tmp.dir, onError: () => {} });
    await new Promise((r) => setTimeout(r, 50));
    await tracker.replaySpool();
    const report = await tracker.shutdown();
    expect(sink.events.map((e) => e.properties.i)).toEqual([0, 1, 2]);
    expect(tracker.stats()).toMatchObject({ replayed: 3, dropped: { TALLY_SPOOL_CORRUPT: 2 } });
    expect(report.pending).toBe(0);
    expect(readdirSync(tmp.dir)).toEqual([`pending-${dead}-5-0.jsonl`]);
  });

  it('spools what it cannot deliver as {kind: envelope, row} lines, and resends them', async () => {
    const tmp = tempDir();
    cleanups.push(tmp.cleanup);
    const down: Sink = {
      name: 'down',
      send: async () => ({ ok: false, disposition: 'retry', error: new TallyError(ErrorCodes.SINK_RETRYABLE, 'down') }),
      close: async () => {},
    };
    const tracker = createTracker({
      catalog,
      sink: down,
      spool: tmp.dir,
      retry: { maxAttempts: 1 },
      onError: () => {},
    });
    for (let i = 0; i < 3; i++) tracker.track('hit', { i });
    await tracker.shutdown();
    const [file] = readdirSync(tmp.dir);
    expect(file).toMatch(new RegExp(`^sdk-${process.pid}-\\d+-\\d+\\.jsonl$`));
    const records = readFileSync(join(tmp.dir, file as string), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.map((r) => [r.kind, r.row.properties.i])).toEqual([
      ['envelope', 0],
      ['envelope', 1],
      ['envelope', 2],
    ]);
    const up = createMemorySink();
    const again = createTracker({ catalog, sink: up, spool: tmp.dir, resendSpoolOnStart: false, onError: () => {} });
    await again.replaySpool();
    await again.shutdown();
    expect(up.events.map((e) => e.properties.i)).toEqual([0, 1, 2]);
    expect(readdirSync(tmp.dir)).toEqual([]);
  });
});

describe('package', () => {
  it('VERSION matches package.json', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    expect(VERSION).toBe(pkg.version);
  });
});
