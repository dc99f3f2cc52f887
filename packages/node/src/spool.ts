/**
 * The disk spool: JSONL files of finished events that could not be delivered (queue overflow, retries
 * exhausted, shutdown deadline, process exit). They are resent at the next start, or by `replay()`.
 *
 * Files are named `<pid>-<startMs>-<seq>.jsonl`, so a starting process can tell its own live files from
 * those of a process that died; it claims a dead one by renaming it (atomic), sends it, then deletes it.
 * A crash between send and delete resends it later: ids make that harmless (receivers dedupe by id).
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { appendFile, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, TallyError, type TallyEvent } from '@tally/core';

export interface SpoolOptions {
  dir: string;
  /** Start a new file past this size. Default 8 MiB. */
  maxFileBytes?: number;
  /** Refuse to write past this many bytes written by this process (a stuck receiver must not fill the disk). Default 1 GiB. */
  maxBytes?: number;
}

export interface SpoolRead {
  events: TallyEvent[];
  /** Lines that were not valid JSON events (e.g. cut short by a crash). */
  corrupt: number;
}

const NAME = /^(\d+)-(\d+)-(\d+)\.jsonl$/;
const CLAIMED = /^(\d+)-(\d+)-(\d+)\.jsonl\.claimed-(\d+)$/;

export class Spool {
  readonly dir: string;
  private readonly maxFileBytes: number;
  private readonly maxBytes: number;
  private readonly startMs = Date.now();
  private seq = 0;
  private fileBytes = 0;
  private written = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private dirReady = false;

  constructor(options: SpoolOptions) {
    this.dir = options.dir;
    this.maxFileBytes = options.maxFileBytes ?? 8 * 1024 * 1024;
    this.maxBytes = options.maxBytes ?? 1024 * 1024 * 1024;
  }

  private get current(): string {
    return join(this.dir, `${process.pid}-${this.startMs}-${this.seq}.jsonl`);
  }

  /** Appends events; resolves with how many were written. Appends run one at a time, in call order. */
  append(events: readonly TallyEvent[]): Promise<number> {
    const run = this.tail.then(async () => {
      const text = this.serialize(events);
      await appendFile(this.target(text.length), text);
      return events.length;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** For `process.on('exit')`, where only synchronous work runs. */
  appendSync(events: readonly TallyEvent[]): number {
    const text = this.serialize(events);
    appendFileSync(this.target(text.length), text);
    return events.length;
  }

  /**
   * Closes the current file so it can be claimed and resent. Queued behind pending appends: a file is
   * never claimed while a write to it is still under way.
   */
  rotate(): Promise<void> {
    const run = this.tail.then(() => this.nextFile());
    this.tail = run;
    return run;
  }

  private nextFile(): void {
    if (this.fileBytes > 0) {
      this.seq++;
      this.fileBytes = 0;
    }
  }

  private serialize(events: readonly TallyEvent[]): string {
    let text = '';
    for (const e of events) text += `${JSON.stringify(e)}\n`;
    if (this.written + text.length > this.maxBytes) {
      throw new TallyError(ErrorCodes.SPOOL_FAILED, `spool ${this.dir} reached its ${this.maxBytes}-byte limit`, {
        events: events.length,
      });
    }
    return text;
  }

  private target(bytes: number): string {
    if (!this.dirReady) {
      mkdirSync(this.dir, { recursive: true });
      this.dirReady = true;
    }
    if (this.fileBytes > 0 && this.fileBytes + bytes > this.maxFileBytes) this.nextFile();
    this.fileBytes += bytes;
    this.written += bytes;
    return this.current;
  }

  /**
   * Claims every file that no live writer owns: those of dead processes, and this process's own closed
   * files. Returns the claimed paths, oldest first.
   */
  async claim(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const claimed: string[] = [];
    for (const name of names.sort(byAge)) {
      const m = NAME.exec(name);
      const c = CLAIMED.exec(name);
      let claimable = false;
      if (m) {
        const [pid, start, seq] = [Number(m[1]), Number(m[2]), Number(m[3])];
        const mine = pid === process.pid && start === this.startMs;
        claimable = mine
          ? seq < this.seq || (seq === this.seq && this.fileBytes === 0)
          : !(isProcessAlive(pid) && pid !== process.pid);
        // A live process with our pid but another start time cannot exist; the file is an earlier life's.
      } else if (c) {
        // Claimed by a process that died before finishing: take it over.
        claimable = Number(c[4]) !== process.pid && !isProcessAlive(Number(c[4]));
      }
      if (!claimable) continue;
      const base = name.replace(/\.claimed-\d+$/, '');
      const to = join(this.dir, `${base}.claimed-${process.pid}`);
      try {
        await rename(join(this.dir, name), to);
        claimed.push(to);
      } catch (e) {
        // Another process claimed it first: fine, it will send it.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    return claimed;
  }

  async read(path: string): Promise<SpoolRead> {
    const text = await readFile(path, 'utf8');
    const events: TallyEvent[] = [];
    let corrupt = 0;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      try {
        const e = JSON.parse(line) as TallyEvent;
        if (typeof e?.id === 'string' && typeof e.name === 'string') events.push(e);
        else corrupt++;
      } catch {
        corrupt++;
      }
    }
    return { events, corrupt };
  }

  async remove(path: string): Promise<void> {
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}

function byAge(a: string, b: string): number {
  const [, , sa = '0', qa = '0'] = /^(\d+)-(\d+)-(\d+)/.exec(a) ?? [];
  const [, , sb = '0', qb = '0'] = /^(\d+)-(\d+)-(\d+)/.exec(b) ?? [];
  return Number(sa) - Number(sb) || Number(qa) - Number(qb);
}

/** Whether a process with this pid is running (EPERM: it is, as another user). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
