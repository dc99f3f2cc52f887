/**
 * Every failure the collector answers becomes a TallyError, so every answer is `{error:{code,message}}`
 * with the status ErrorTable gives its code: Tally's own refusals as thrown, Fastify's body errors by
 * their code, and what Node's HTTP parser refuses before Fastify sees a request (malformed HTTP, slow
 * headers or body) written straight to the socket. Anything else is a bug: undefined here, a logged 500.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { ErrorCodes, isTallyError, TallyError } from '@tally/core';

/** Header values quoted in messages are cut to this many characters. */
const QUOTE = 60;

const quote = (value: string | undefined) => JSON.stringify((value ?? '').slice(0, QUOTE));

/** What a 415 tells the client to send instead. */
const MEDIA_TYPES =
  'send JSON with Content-Type: application/json (or text/plain); POST /v1/events also takes a protobuf batch with Content-Type: application/x-protobuf';

/**
 * The TallyError a request failure answers with; undefined when it is not the client's doing (a fault
 * to log and answer 500).
 */
export function requestError(
  error: unknown,
  request: { headers: Record<string, string | string[] | undefined> },
  maxBodyBytes: number,
): TallyError | undefined {
  if (isTallyError(error)) return error;
  const e = error as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 0;
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const contentType = request.headers['content-type'];
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) {
    return new TallyError(
      ErrorCodes.PAYLOAD_TOO_LARGE,
      `request body over ${maxBodyBytes} bytes (after decompression); send smaller batches`,
    );
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || status === 415) {
    return new TallyError(
      ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
      `${contentType === undefined ? 'no Content-Type' : `unsupported Content-Type ${quote(String(contentType))}`}: ${MEDIA_TYPES}`,
    );
  }
  if (code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') {
    return new TallyError(ErrorCodes.MALFORMED_BODY, 'the body is not as long as its Content-Length says');
  }
  if (code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return new TallyError(ErrorCodes.MALFORMED_BODY, 'empty body: send a JSON object');
  }
  if (status === 404) return new TallyError(ErrorCodes.NOT_FOUND, message);
  if (status === 408) return new TallyError(ErrorCodes.TIMEOUT, 'the request did not arrive in time');
  // JSON syntax errors, a body cut short by its sender, a bad Content-Type header, a bad URL.
  if (status >= 400 && status < 500) return new TallyError(ErrorCodes.MALFORMED_BODY, `unreadable request: ${message}`);
  return undefined;
}

/** What a request-level answer carries besides its body: status and maybe Retry-After (seconds). */
export function answerOf(error: TallyError): { status: number; retryAfterS?: number } {
  const status = error.status;
  const given = error.details.retryAfterS;
  if (typeof given === 'number' && Number.isFinite(given) && given >= 0)
    return { status, retryAfterS: Math.ceil(given) };
  // A client told "unavailable" must be told when to come back.
  if (status === 503) return { status, retryAfterS: 1 };
  return { status };
}

/**
 * What Node's HTTP server reports on a connection before (or instead of) a request: a parse error, a
 * request whose headers or body did not arrive within the timeouts, headers too large. Answered on the
 * socket in the collector's JSON form when nothing has been answered on it yet, then the connection is
 * closed (Node's contract for a 'clientError' listener). Returns the code answered, if any.
 */
export function answerClientError(error: Error & { code?: string }, socket: Duplex): string | undefined {
  // A reset connection: no one to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return undefined;
  let refusal: TallyError;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    refusal = new TallyError(ErrorCodes.TIMEOUT, 'the request headers and body did not arrive in time');
  } else if (error.code === 'HPE_HEADER_OVERFLOW') {
    refusal = new TallyError(ErrorCodes.PAYLOAD_TOO_LARGE, 'request headers too large');
  } else {
    refusal = new TallyError(ErrorCodes.MALFORMED_BODY, `malformed HTTP request (${error.code ?? error.message})`);
  }
  // A response already under way on this connection (its request timed out while the answer was being
  // written): a second status line would corrupt it, so only close.
  const current = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !current?.headersSent) {
    const status = refusal.status;
    const body = JSON.stringify({ error: { code: refusal.code, message: refusal.message } });
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
  return refusal.code;
}
