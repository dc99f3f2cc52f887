/**
 * The disk spool: what Tally keeps on disk until it can be sent or stored. One format for every writer
 * of such files: the Node SDK's undelivered events (queue overflow, retries exhausted, shutdown deadline,
 * process exit) and the store writer's and store worker's pending rows (closed or cut off before they
 * were stored).
 *
 * A file is JSONL, one record a line: `{"kind": K, "row": R}`, where K says what R is: `envelope` (an
 * event as an SDK sends it to a collector), `event` or `request_log` (a store row). Dead-letter files
 * carry the same two fields beside their reason, so `tally replay` reads either.
 *
 * Files are named `<owner>-<pid>-<startMs>-<seq>.jsonl`. The owner keeps an SDK and a writer sharing a
 * directory (or a process) off each other's files; pid and start let a starting process tell files of
 * live writers from those a dead process left. A file is claimed by renaming it (atomic) to
 * `….claimed-<pid>`, then sent or stored, then deleted. A crash between sending and deleting sends it
 * again later: ids make that harmless (collectors and the store dedupe by id), and a claim whose process
 * died is taken over.
 *
 * Files written before this format are still read: the SDK's `<pid>-<start>-<seq>.jsonl` of bare
 * envelopes, and the writer's `pending-<pid>-<ms>.jsonl` (already `{kind, row}` lines) with its
 * `.recovering-<pid>` claims.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { appendFile, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, TallyConfigError, TallyError } from '@tally/core';
import { isProcessAlive } from './process-alive.js';

/** Who writes a spool's files: the SDK (`sdk`) or the store writer and worker (`pending`). */
export type SpoolOwner = 'sdk' | 'pending';

export interface SpoolRecord<R = unknown> {
  kind: string;
  row: R;
}

export interface SpoolOptions {
  dir: string;
  owner: SpoolOwner;
  /** Start a new file past this size. Default 8 MiB. */
  maxFileBytes?: number;
  /**
   * Refuse to write past this many bytes written by this spool (a stuck receiver must not fill the
   * disk). Default 1 GiB.
   */
  maxBytes?: number;
}

export interface SpoolRead {
  records: SpoolRecord[];
  /** Lines that were not records (e.g. cut short by a crash). */
  corrupt: number;
}

/** A spool file's name: group 1 the owner, then pid, start and sequence number. */
export const SPOOL_FILE = /^(sdk|pending)-(\d+)-(\d+)-(\d+)\.jsonl$/;
const LEGACY_SDK_FILE = /^(\d+)-(\d+)-(\d+)\.jsonl$/;
const LEGACY_PENDING_FILE = /^pending-(\d+)-(\d+)\.jsonl$/;
const CLAIM = /\.(?:claimed|recovering)-(\d+)$/;

interface FileName {
  owner: SpoolOwner;
  pid: number;
  start: number;
  seq: number;
  /** The pid of the process that claimed it, if claimed. */
  claimedBy?: number;
}

function parseName(name: string): FileName | undefined {
  const claim = CLAIM.exec(name);
  const base = claim ? name.slice(0, claim.index) : name;
  const claimedBy = claim ? Number(claim[1]) : undefined;
  let m = SPOOL_FILE.exec(base);
  if (m) return { owner: m[1] as SpoolOwner, pid: Number(m[2]), start: Number(m[3]), seq: Number(m[4]), claimedBy };
  m = LEGACY_SDK_FILE.exec(base);
  if (m) return { owner: 'sdk', pid: Number(m[1]), start: Number(m[2]), seq: Number(m[3]), claimedBy };
  m = LEGACY_PENDING_FILE.exec(base);
  if (m) return { owner: 'pending', pid: Number(m[1]), start: Number(m[2]), seq: 0, claimedBy };
  return undefined;
}

/** Whose spool file this is (claimed or not, either format), or undefined for any other file. */
export function spoolFileOwner(name: string): SpoolOwner | undefined {
  return parseName(name)?.owner;
}

// Two spools opened in one process within a millisecond must still name different files.
let lastStart = 0;

export class Spool {
  readonly dir: string;
  readonly owner: SpoolOwner;
  private readonly maxFileBytes: number;
  private readonly maxBytes: number;
  private readonly startMs = (lastStart = Math.max(Date.now(), lastStart + 1));
  private seq = 0;
  private fileBytes = 0;
  private written = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private dirReady = false;

  constructor(options: SpoolOptions) {
    if (options.owner !== 'sdk' && options.owner !== 'pending') {
      throw new TallyConfigError(`spool owner must be "sdk" or "pending"; got ${String(options.owner)}`);
    }
    this.dir = options.dir;
    this.owner = options.owner;
    this.maxFileBytes = options.maxFileBytes ?? 8 * 1024 * 1024;
    this.maxBytes = options.maxBytes ?? 1024 * 1024 * 1024;
  }

  /** The file this spool appends to now. */
  get current(): string {
    return join(this.dir, `${this.owner}-${process.pid}-${this.startMs}-${this.seq}.jsonl`);
  }

  /**
   * Appends records of one kind; resolves with how many were written. Appends run one at a time, in call
   * order. Rejects with TALLY_SPOOL_FAILED past the size limit, or with the file system's error.
   */
  append(kind: string, rows: readonly unknown[]): Promise<number> {
    const run = this.tail.then(async () => {
      const text = this.serialize(kind, rows);
      try {
        await appendFile(this.target(text.length), text);
      } catch (e) {
        // The directory may have been removed meanwhile: the next append makes it again.
        this.dirReady = false;
        throw e;
      }
      return rows.length;
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** For `process.on('exit')`, where only synchronous work runs. */
  appendSync(kind: string, rows: readonly unknown[]): number {
    const text = this.serialize(kind, rows);
    appendFileSync(this.target(text.length), text);
    return rows.length;
  }

  /**
   * Closes the current file so it can be claimed. Queued behind pending appends: a file is never
   * claimed while a write to it is still under way.
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

  private serialize(kind: string, rows: readonly unknown[]): string {
    // The kind is spliced as JSON text once; each row is serialized on its own (no wrapper object a row).
    const head = `{"kind":${JSON.stringify(kind)},"row":`;
    let text = '';
    for (const row of rows) text += `${head}${JSON.stringify(row)}}\n`;
    if (this.written + text.length > this.maxBytes) {
      throw new TallyError(ErrorCodes.SPOOL_FAILED, `spool ${this.dir} reached its ${this.maxBytes}-byte limit`, {
        events: rows.length,
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
   * Claims every file of this spool's owner that no live writer holds: those of dead processes, those of
   * other spools of this process (closed or not: an append after the claim's rename starts a new file),
   * and this spool's own closed files. Returns the claimed paths, oldest first.
   */
  async claim(): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    const files: { name: string; file: FileName }[] = [];
    for (const name of names) {
      const file = parseName(name);
      if (file?.owner === this.owner && this.claimable(file)) files.push({ name, file });
    }
    files.sort((a, b) => a.file.start - b.file.start || a.file.seq - b.file.seq);
    const claimed: string[] = [];
    for (const { name } of files) {
      const to = join(this.dir, `${name.replace(CLAIM, '')}.claimed-${process.pid}`);
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

  private claimable(f: FileName): boolean {
    // Claimed by a process that died before finishing it: take it over.
    if (f.claimedBy !== undefined) return f.claimedBy !== process.pid && !isProcessAlive(f.claimedBy);
    if (f.pid !== process.pid) return !isProcessAlive(f.pid);
    if (f.start !== this.startMs) return true;
    return f.seq < this.seq || this.fileBytes === 0;
  }

  /** The records of a (claimed) file, and how many of its lines were not records. */
  read(path: string): Promise<SpoolRead> {
    return readSpoolFile(path);
  }

  async remove(path: string): Promise<void> {
    await unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
  }
}

/**
 * The records of any file of `{kind, row}` lines (a spool file, a dead-letter file), and how many of its
 * lines were not records.
 */
export async function readSpoolFile(path: string): Promise<SpoolRead> {
  const text = await readFile(path, 'utf8');
  const records: SpoolRecord[] = [];
  let corrupt = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const record = parseLine(line);
    if (record) records.push(record);
    else corrupt++;
  }
  return { records, corrupt };
}

function parseLine(line: string): SpoolRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.kind === 'string' && v.row !== null && typeof v.row === 'object') {
    return { kind: v.kind, row: v.row };
  }
  // The SDK's files before this format held bare envelopes, one a line.
  if (v.kind === undefined && typeof v.id === 'string' && typeof v.name === 'string') {
    return { kind: 'envelope', row: v };
  }
  return undefined;
}
