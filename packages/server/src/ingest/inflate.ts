/**
 * Request bodies sent with `Content-Encoding: gzip` or `deflate`, inflated as they are read. The
 * stream is lazy: no zlib stream exists until someone reads the body, so a request refused before its
 * body is read (wrong Content-Type, no route) never creates one. Once reading starts, every stream here
 * has an error listener, the inflated size is counted while inflating (a small gzip can be a bomb: the
 * zlib stream is destroyed the moment the output passes `maxBytes`, not after it has all been
 * produced), and destroying the body (the collector does when the response closes) tears the zlib
 * stream down with it.
 */
import { Readable } from 'node:stream';
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib';
import { ErrorCodes, TallyError } from '@tally/core';

export type BodyEncoding = 'gzip' | 'deflate';

/**
 * The encoding named by a Content-Encoding header: undefined for none or `identity`, a TallyError
 * (TALLY_UNSUPPORTED_MEDIA_TYPE) for anything else, a list of several encodings included.
 */
export function bodyEncoding(header: string | undefined): BodyEncoding | undefined {
  const value = header?.trim().toLowerCase();
  if (value === undefined || value === '' || value === 'identity') return undefined;
  if (value === 'gzip' || value === 'x-gzip') return 'gzip';
  if (value === 'deflate') return 'deflate';
  throw new TallyError(
    ErrorCodes.UNSUPPORTED_MEDIA_TYPE,
    `unsupported Content-Encoding "${value.slice(0, 40)}": send gzip, deflate or no Content-Encoding`,
  );
}

/** The compressed body `source` inflated, at most `maxBytes` of output (then TALLY_PAYLOAD_TOO_LARGE). */
export function inflatingBody(source: Readable, encoding: BodyEncoding, maxBytes: number): InflatingBody {
  return new InflatingBody(source, encoding, maxBytes);
}

export class InflatingBody extends Readable {
  /** Compressed bytes read so far; Fastify compares it with Content-Length and the body limit. */
  receivedEncodedLength = 0;
  private zlib: Gunzip | Inflate | undefined;
  private inflated = 0;
  private readonly onSourceError = (e: Error) => this.destroy(e);
  private readonly onSourceData = (chunk: Buffer) => {
    this.receivedEncodedLength += chunk.length;
  };

  constructor(
    private readonly source: Readable,
    private readonly encoding: BodyEncoding,
    private readonly maxBytes: number,
  ) {
    super();
    // Errors reach whoever reads the body through its own listener; a body nobody reads any more (the
    // request was answered already) must not turn its late error into an unhandled 'error' event.
    this.on('error', () => undefined);
  }

  override _read(): void {
    if (this.zlib) {
      this.zlib.resume();
      return;
    }
    const zlib = this.encoding === 'gzip' ? createGunzip() : createInflate();
    this.zlib = zlib;
    zlib.on('error', (e: Error & { code?: string }) => {
      this.destroy(
        new TallyError(ErrorCodes.MALFORMED_BODY, `unreadable ${this.encoding} body: ${e.message}`, {}, { cause: e }),
      );
    });
    zlib.on('data', (chunk: Buffer) => {
      this.inflated += chunk.length;
      if (this.inflated > this.maxBytes) {
        this.destroy(
          new TallyError(
            ErrorCodes.PAYLOAD_TOO_LARGE,
            `request body over ${this.maxBytes} bytes after ${this.encoding} decompression; send smaller batches`,
          ),
        );
        return;
      }
      if (!this.push(chunk)) zlib.pause();
    });
    zlib.on('end', () => this.push(null));
    this.source.on('error', this.onSourceError);
    this.source.on('data', this.onSourceData);
    this.source.pipe(zlib);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.source.off('error', this.onSourceError);
    this.source.off('data', this.onSourceData);
    if (this.zlib) {
      this.source.unpipe(this.zlib);
      // Its own error listener stays: a zlib stream destroyed mid-inflate can still report one.
      this.zlib.destroy();
      // What is left of the request body is read and dropped (within the request timeout), so the
      // answer reaches the client and a keep-alive connection can go on to its next request.
      this.source.resume();
    }
    callback(error);
  }
}
