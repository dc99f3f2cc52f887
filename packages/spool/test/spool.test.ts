import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoTime, type TallyEvent, uuidv7 } from '@tally/core';
import { afterEach, describe, expect, it } from 'vitest';
import { readSpoolFile, Spool, SPOOL_FILE, spoolFileOwner } from '../src/index.js';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function temp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tally-spool-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function ev(i: number): TallyEvent {
  return { id: uuidv7(), name: 'hit', tenantId: 't', properties: { i }, context: {}, timestamp: isoTime(Date.now()) };
}

const numbers = (records: { row: unknown }[]) => records.map((r) => (r.row as TallyEvent).properties.i);

async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', '0']);
  await once(p, 'exit');
  return p.pid as number;
}

describe('Spool', () => {
  it('appends {kind, row} lines in order, rotates, and claims only files no live writer holds', async () => {
    const dir = temp();
    const spool = new Spool({ dir, owner: 'sdk' });
    await spool.append('envelope', [ev(1), ev(2)]);
    await spool.append('envelope', [ev(3)]);
    const [name] = readdirSync(dir);
    expect(SPOOL_FILE.exec(name as string)?.slice(1, 3)).toEqual(['sdk', String(process.pid)]);
    const first = JSON.parse(readFileSync(join(dir, name as string), 'utf8').split('\n')[0] as string);
    expect(Object.keys(first)).toEqual(['kind', 'row']);
    expect(first.kind).toBe('envelope');
    // Our current file is still open for writing: not claimable.
    expect(await spool.claim()).toEqual([]);
    await spool.rotate();
    const mine = await spool.claim();
    expect(mine).toHaveLength(1);
    expect(numbers((await spool.read(mine[0] as string)).records)).toEqual([1, 2, 3]);

    // A file of a live process (the test runner's parent) is left alone; a dead one's is taken.
    const line = (i: number) => JSON.stringify({ kind: 'envelope', row: ev(i) });
    writeFileSync(join(dir, `sdk-${process.ppid}-1-0.jsonl`), `${line(9)}\n`);
    const dead = await deadPid();
    writeFileSync(join(dir, `sdk-${dead}-1-0.jsonl`), `${line(10)}\n{"kind": "envelope", "row": {"cut sho`);
    const claimed = await spool.claim();
    expect(claimed).toEqual([join(dir, `sdk-${dead}-1-0.jsonl.claimed-${process.pid}`)]);
    const read = await spool.read(claimed[0] as string);
    expect(numbers(read.records)).toEqual([10]);
    expect(read.corrupt).toBe(1);
    await spool.remove(claimed[0] as string);
    expect(existsSync(claimed[0] as string)).toBe(false);
    expect(readdirSync(dir)).toContain(`sdk-${process.ppid}-1-0.jsonl`);
  });

  it('keeps owners apart: an SDK and a writer sharing a directory and a process claim only their own files', async () => {
    const dir = temp();
    const sdk = new Spool({ dir, owner: 'sdk' });
    const writer = new Spool({ dir, owner: 'pending' });
    const other = new Spool({ dir, owner: 'pending' });
    await sdk.append('envelope', [ev(1)]);
    await writer.append('event', [{ id: 'a' }]);
    await other.append('request_log', [{ id: 'b' }]);
    expect(new Set(readdirSync(dir).map(spoolFileOwner))).toEqual(new Set(['sdk', 'pending']));
    // Two spools of one process opened in the same millisecond still write two files.
    expect(readdirSync(dir)).toHaveLength(3);
    await writer.rotate();
    // The writer takes its own closed file and the other pending spool's (same process, another spool),
    // never the SDK's.
    const claimed = await writer.claim();
    expect(claimed).toHaveLength(2);
    const kinds = (await Promise.all(claimed.map((f) => writer.read(f)))).flatMap((r) => r.records.map((x) => x.kind));
    expect(kinds.sort()).toEqual(['event', 'request_log']);
    await sdk.rotate();
    expect(await sdk.claim()).toHaveLength(1);
  });

  it('takes over a file claimed by a process that died while sending it', async () => {
    const dir = temp();
    const dead = await deadPid();
    writeFileSync(
      join(dir, `sdk-123-1-0.jsonl.claimed-${dead}`),
      `${JSON.stringify({ kind: 'envelope', row: ev(1) })}\n`,
    );
    const claimed = await new Spool({ dir, owner: 'sdk' }).claim();
    expect(claimed).toEqual([join(dir, `sdk-123-1-0.jsonl.claimed-${process.pid}`)]);
  });

  it("reads the files written before this format: bare SDK envelopes, and the writer's pending and recovering files", async () => {
    const dir = temp();
    const dead = await deadPid();
    // The SDK's `<pid>-<start>-<seq>.jsonl` of bare envelopes, and one it had claimed.
    writeFileSync(join(dir, `${dead}-5-0.jsonl`), `${JSON.stringify(ev(1))}\n${JSON.stringify(ev(2))}\nnot json\n`);
    writeFileSync(join(dir, `${dead}-4-0.jsonl.claimed-${dead}`), `${JSON.stringify(ev(0))}\n`);
    // The writer's `pending-<pid>-<ms>.jsonl`, and one whose recovery died (`.recovering-<pid>`).
    const row = (id: string) => JSON.stringify({ kind: 'event', row: { id } });
    writeFileSync(join(dir, `pending-${dead}-7.jsonl`), `${row('p1')}\n`);
    writeFileSync(join(dir, `pending-${dead}-6.jsonl.recovering-${dead}`), `${row('p0')}\n`);
    expect(readdirSync(dir).map(spoolFileOwner).sort()).toEqual(['pending', 'pending', 'sdk', 'sdk']);

    const sdk = new Spool({ dir, owner: 'sdk' });
    const sdkFiles = await sdk.claim();
    // Oldest first, by the start time in the name.
    expect(sdkFiles).toEqual([
      join(dir, `${dead}-4-0.jsonl.claimed-${process.pid}`),
      join(dir, `${dead}-5-0.jsonl.claimed-${process.pid}`),
    ]);
    const read = await sdk.read(sdkFiles[1] as string);
    expect(read.records.map((r) => r.kind)).toEqual(['envelope', 'envelope']);
    expect(numbers(read.records)).toEqual([1, 2]);
    expect(read.corrupt).toBe(1);

    const writer = new Spool({ dir, owner: 'pending' });
    const pending = await writer.claim();
    expect(pending).toEqual([
      join(dir, `pending-${dead}-6.jsonl.claimed-${process.pid}`),
      join(dir, `pending-${dead}-7.jsonl.claimed-${process.pid}`),
    ]);
    const rows = await Promise.all(pending.map(readSpoolFile));
    expect(rows.map((r) => r.records)).toEqual([
      [{ kind: 'event', row: { id: 'p0' } }],
      [{ kind: 'event', row: { id: 'p1' } }],
    ]);
  });

  it('counts lines that are not records as corrupt, whatever they hold', async () => {
    const dir = temp();
    const file = join(dir, 'x.jsonl');
    const lines = [
      '[]',
      'null',
      '7',
      '{"kind":"event"}',
      '{"kind":3,"row":{}}',
      '{"row":{}}',
      '{"kind":"event","row":null}',
    ];
    writeFileSync(file, `${lines.join('\n')}\n\n${JSON.stringify({ kind: 'event', row: { id: 'ok' } })}\n`);
    expect(await readSpoolFile(file)).toEqual({
      records: [{ kind: 'event', row: { id: 'ok' } }],
      corrupt: lines.length,
    });
  });

  it('refuses to grow past its size limit, and names no owner it does not know', async () => {
    const dir = temp();
    const spool = new Spool({ dir, owner: 'sdk', maxBytes: 500 });
    await spool.append('envelope', [ev(1)]);
    await expect(
      spool.append(
        'envelope',
        Array.from({ length: 10 }, (_, i) => ev(i)),
      ),
    ).rejects.toThrow(/limit/);
    expect(() => new Spool({ dir, owner: 'other' as 'sdk' })).toThrow(/owner/);
  });

  it('starts a new file past maxFileBytes; appendSync writes the same lines', async () => {
    const dir = temp();
    const spool = new Spool({ dir, owner: 'sdk', maxFileBytes: 300 });
    for (let i = 0; i < 4; i++) spool.appendSync('envelope', [ev(i)]);
    const files = readdirSync(dir).sort();
    expect(files.length).toBeGreaterThan(1);
    await spool.rotate();
    const claimed = await spool.claim();
    const all = (await Promise.all(claimed.map(readSpoolFile))).flatMap((r) => r.records);
    expect(numbers(all)).toEqual([0, 1, 2, 3]);
  });
});
