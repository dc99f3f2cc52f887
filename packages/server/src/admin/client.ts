/**
 * AdminOps over HTTP: the running server's admin API. Refusals come back as TallyErrors with the
 * server's code and message; streamed answers pass their progress lines on as they arrive.
 */
import { createReadStream, existsSync } from 'node:fs';
import { rename, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { type ErrorCode, ErrorCodes, TallyError } from '@tally/core';
import type { ApiKeyInfo, JobRun, ManifestRow, StorageStats, Tenant } from '@tally/store';
import type { AdminOps, OpsTarget, Progress } from './ops.js';
import type { AdminStatus } from './routes.js';

export interface AdminClientOptions {
  /** `http://127.0.0.1:8787` */
  url: string;
  /** The admin token or an admin key. */
  token: string;
}

type Call = (method: string, path: string, body?: unknown) => Promise<Response>;

function caller(options: AdminClientOptions): Call {
  const base = `${options.url.replace(/\/$/, '')}/v1/admin`;
  return async (method, path, body) => {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${options.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw unreachable(options.url, e);
    }
    if (!res.ok) throw await refusal(res);
    return res;
  };
}

/** The server's status, or a TallyError (UNAVAILABLE when it does not answer in time). */
export async function fetchStatus(options: AdminClientOptions, timeoutMs = 3000): Promise<AdminStatus> {
  let res: Response;
  try {
    res = await fetch(`${options.url.replace(/\/$/, '')}/v1/admin/status`, {
      headers: { authorization: `Bearer ${options.token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    throw unreachable(options.url, e);
  }
  if (!res.ok) throw await refusal(res);
  return (await res.json()) as AdminStatus;
}

export function createRemoteOps(options: AdminClientOptions, target: OpsTarget): AdminOps {
  const call = caller(options);
  const json = async <T>(method: string, path: string, body?: unknown) =>
    (await (await call(method, path, body)).json()) as T;
  const streamed = async <T>(path: string, body: unknown, onProgress: Progress) =>
    readStream<T>(await call('POST', path, body), onProgress, options.url);
  const query = (params: Record<string, string | number | undefined>) => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
    const s = q.toString();
    return s === '' ? '' : `?${s}`;
  };

  return {
    target,
    migrate: () => json('POST', '/migrate', {}),
    createKey: (input) => json('POST', '/keys', input),
    listKeys: async ({ tenant }) => (await json<{ keys: ApiKeyInfo[] }>('GET', `/keys${query({ tenant })}`)).keys,
    revokeKey: ({ key }) => json('DELETE', `/keys/${encodeURIComponent(key)}`),
    listTenants: async () => (await json<{ tenants: Tenant[] }>('GET', '/tenants')).tenants,
    setTenant: async ({ id, settings }) =>
      (await json<{ tenant: Tenant }>('PATCH', `/tenants/${encodeURIComponent(id)}`, settings)).tenant,
    stats: () => json<StorageStats>('GET', '/stats'),
    jobs: async ({ job, limit }) => (await json<{ runs: JobRun[] }>('GET', `/jobs${query({ job, limit })}`)).runs,
    listArchive: async ({ tenant }) =>
      (await json<{ parts: ManifestRow[] }>('GET', `/archive${query({ tenant })}`)).parts,
    runArchive: (input, onProgress) => streamed('/archive/run', input, onProgress),
    restoreArchive: (input, onProgress) => streamed('/archive/restore', input, onProgress),
    cleanup: (input, onProgress) => streamed('/cleanup', input, onProgress),

    async replay({ file }, onProgress) {
      await stat(file).catch((e: NodeJS.ErrnoException) => {
        throw new TallyError(ErrorCodes.NOT_FOUND, e.message);
      });
      // As the writer does: the file is renamed before its rows go anywhere, so rows that fail again
      // (appended to a fresh dead-letter file, perhaps of the same name) are not mixed with it.
      const taken = `${file}.replayed-${Date.now()}`;
      await rename(file, taken);
      let res: Response;
      try {
        res = await fetch(`${options.url.replace(/\/$/, '')}/v1/admin/replay`, {
          method: 'POST',
          headers: { authorization: `Bearer ${options.token}`, 'content-type': 'application/x-ndjson' },
          body: Readable.toWeb(createReadStream(taken)) as ReadableStream,
          duplex: 'half',
        } as RequestInit);
        if (!res.ok) throw await refusal(res);
      } catch (e) {
        // The server never took the file: put it back where it was.
        if (!existsSync(file)) await rename(taken, file).catch(() => undefined);
        throw e instanceof TallyError ? e : unreachable(options.url, e);
      }
      return readStream(res, onProgress, options.url);
    },

    listRejected: (input) => json('GET', `/rejected${query({ ...input })}`),
    replayRejected: (input, onProgress) => streamed('/rejected/replay', input, onProgress),

    query: (input) => json('POST', '/query', input),
    rebuildRollups: (input, onProgress) => streamed('/rollups/rebuild', input, onProgress),

    close: async () => undefined,
  };
}

/** Reads `{"progress"}` lines until the `{"result"}` or `{"error"}` line. */
async function readStream<T>(res: Response, onProgress: Progress, url: string): Promise<T> {
  if (!res.body) throw new TallyError(ErrorCodes.INTERNAL, 'the admin API sent no body');
  const decoder = new TextDecoder();
  let buffered = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (text.trim() === '') continue;
        const msg = JSON.parse(text) as { progress?: string; result?: T; error?: { code: string; message: string } };
        if (typeof msg.progress === 'string') onProgress(msg.progress);
        else if (msg.error) throw new TallyError(msg.error.code as ErrorCode, msg.error.message);
        else if ('result' in msg) return msg.result as T;
      }
    }
  } catch (e) {
    if (e instanceof TallyError) throw e;
    throw unreachable(url, e);
  }
  throw new TallyError(
    ErrorCodes.UNAVAILABLE,
    `tally serve at ${url} stopped answering before the operation finished (see its log and tally jobs)`,
  );
}

async function refusal(res: Response): Promise<TallyError> {
  const text = await res.text().catch(() => '');
  try {
    const body = JSON.parse(text) as {
      error?: { code?: string; message?: string; details?: Record<string, unknown> };
    };
    if (body.error?.code) {
      return new TallyError(
        body.error.code as ErrorCode,
        body.error.message ?? res.statusText,
        body.error.details ?? {},
      );
    }
  } catch {
    // not JSON: fall through
  }
  return new TallyError(
    ErrorCodes.INTERNAL,
    `admin API answered ${res.status} ${res.statusText}: ${text.slice(0, 200)}`,
  );
}

function unreachable(url: string, e: unknown): TallyError {
  const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
  return new TallyError(ErrorCodes.UNAVAILABLE, `tally serve at ${url} does not answer: ${cause}`, {}, { cause: e });
}
