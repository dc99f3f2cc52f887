/**
 * How the CLI finds the `tally serve` of its data directory. The server writes two files there:
 *
 * - `server.json`: who holds the embedded database. `tally serve` takes it before it opens the store
 *   (pid, start time), adds the loopback URL of its port once it listens, and removes it after a clean
 *   stop, once the store is closed. A command that opens the embedded database itself (no server) takes
 *   it too, for as long as it works, so a server cannot start under it. Written atomically: a reader
 *   sees a whole file or none;
 * - `admin-token`: a random secret (mode 0600, created once and reused) that the admin API accepts from
 *   loopback callers. Only the user who owns the data directory can read it, and that user could open
 *   the database anyway: the token grants nothing new to anyone.
 *
 * Embedded PGlite belongs to one process: while a server holds it, the CLI must ask the server.
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TallyConfigError } from '@tally/core';
import { isProcessAlive } from '@tally/spool';

export const STATE_FILE = 'server.json';
export const TOKEN_FILE = 'admin-token';

export interface ServerState {
  pid: number;
  /** `serve`, or the command that has the embedded database open directly (`archive run`). */
  command: string;
  /** Loopback URL of the server's port (`http://127.0.0.1:8787`); absent while it starts. */
  url?: string;
  startedAt: string;
  version: string;
}

/** The admin token of this data directory, created (mode 0600) on first use. */
export async function ensureAdminToken(dataDir: string): Promise<string> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, TOKEN_FILE);
  const token = randomBytes(32).toString('base64url');
  try {
    // 'wx': two servers starting at once cannot both create it; the loser reads the winner's.
    const fh = await open(path, 'wx', 0o600);
    try {
      await fh.writeFile(`${token}\n`);
    } finally {
      await fh.close();
    }
    return token;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  // A copied or restored data directory may have lost the mode; the token must stay private.
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  return readToken(path);
}

/** The token, or undefined when there is none (no server ever ran on this data directory). */
export async function readAdminToken(dataDir: string): Promise<string | undefined> {
  try {
    return await readToken(join(dataDir, TOKEN_FILE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function readToken(path: string): Promise<string> {
  const token = (await readFile(path, 'utf8')).trim();
  if (token.length < 16)
    throw new TallyConfigError(`${path} holds no usable admin token; delete it and restart tally serve`);
  return token;
}

/**
 * Takes the state file for this process, failing when a live process holds it: a running server, or a
 * command working on the embedded database directly. A file left by a dead process is replaced (two
 * processes replacing the same stale file at the same instant could both win; nothing else can).
 */
export async function claimServerState(
  dataDir: string,
  state: ServerState,
): Promise<{ ok: true } | { ok: false; holder: ServerState }> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, STATE_FILE);
  for (let attempt = 0; ; attempt++) {
    if (await createExclusive(path, `${JSON.stringify(state, null, 2)}\n`)) return { ok: true };
    const holder = await readServerState(dataDir);
    if (holder && isOtherProcessAlive(holder.pid)) return { ok: false, holder };
    if (attempt >= 2) throw new Error(`cannot take ${path}: it keeps changing`);
    await rm(path, { force: true });
  }
}

/** Creates the file with its whole content at once, or returns false if it exists. */
async function createExclusive(path: string, content: string): Promise<boolean> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  try {
    // link() fails if the name exists, and readers never see a half-written file.
    await link(tmp, path);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    // A file system without hard links: exclusive create, then the content.
    try {
      await writeFile(path, content, { flag: 'wx', mode: 0o644 });
      return true;
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e2;
    }
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Replaces the state file (this process holds it, or no one guards it: Postgres). */
export async function writeServerState(dataDir: string, state: ServerState): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, STATE_FILE);
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o644 });
  await rename(tmp, path);
}

/** Removes the state file if it is still this process's (a later server may have replaced it). */
export async function removeServerState(dataDir: string, pid = process.pid): Promise<void> {
  const state = await readServerState(dataDir).catch(() => undefined);
  if (state?.pid === pid) await rm(join(dataDir, STATE_FILE), { force: true });
}

export async function readServerState(dataDir: string): Promise<ServerState | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, STATE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  let parsed: Partial<ServerState>;
  try {
    parsed = JSON.parse(text) as Partial<ServerState>;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(parsed.pid) || typeof parsed.command !== 'string') return undefined;
  return parsed as ServerState;
}

/** The URL the CLI should call for a server bound to `host:port`: wildcard addresses are reached on loopback. */
export function loopbackUrl(host: string, port: number): string {
  if (host === '0.0.0.0' || host === '' || host === 'localhost') return `http://127.0.0.1:${port}`;
  if (host === '::' || host === '[::]') return `http://[::1]:${port}`;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped IPv6 forms. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4) || address === '::1';
}

/**
 * Whether another process with this pid runs. This process is not "another": a state file naming it is
 * an earlier life's, left by a process that reused the pid.
 */
export function isOtherProcessAlive(pid: number): boolean {
  return pid !== process.pid && isProcessAlive(pid);
}
