/**
 * A long admin operation (`POST /v1/admin/rejected/replay`): the server answers NDJSON, `{"progress"}`
 * lines as it goes, then one `{"result"}` or `{"error"}` line, the status having been sent before the
 * outcome was known. request() takes one JSON answer, so the lines are read here, progress passed on as
 * it comes.
 */
import { ApiError } from '../../api.js';

export async function runAdmin<T>(
  path: string,
  body: unknown,
  key: string,
  onProgress: (line: string) => void,
): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/x-ndjson' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError('TALLY_NETWORK', `the server did not answer: ${(e as Error).message}`, 0);
  }
  if (!res.ok) {
    let error: { code?: string; message?: string; details?: Record<string, unknown> } | undefined;
    try {
      error = ((await res.json()) as { error?: typeof error }).error;
    } catch {
      error = undefined;
    }
    throw new ApiError(
      error?.code ?? `HTTP_${res.status}`,
      error?.message ?? `${res.status} ${res.statusText}`,
      res.status,
      error?.details,
    );
  }
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line === '') continue;
      const msg = JSON.parse(line) as {
        progress?: string;
        result?: T;
        error?: { code: string; message: string };
      };
      if (typeof msg.progress === 'string') onProgress(msg.progress);
      if (msg.error) throw new ApiError(msg.error.code, msg.error.message, res.status);
      if ('result' in msg) return msg.result as T;
    }
    if (done) break;
  }
  throw new ApiError(
    'TALLY_NETWORK',
    'the answer ended before its result: the operation may have finished, reload to see',
    0,
  );
}
