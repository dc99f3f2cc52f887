import type { Writable } from 'node:stream';
import type { Sink, TallyEvent } from '@tally/core';

export interface ConsoleSinkOptions {
  /** Where to write. Default: process.stdout. */
  stream?: Writable;
  /** One readable line per event instead of one JSON object per line. Default false. */
  pretty?: boolean;
}

/** Writes each event as a JSON line (or a readable line): for development and piping into other tools. */
export function createConsoleSink(options: ConsoleSinkOptions = {}): Sink {
  const stream = options.stream ?? process.stdout;
  const format = options.pretty ? prettyLine : (e: TallyEvent) => JSON.stringify(e);
  return {
    name: 'console',
    send(batch) {
      let text = '';
      for (const e of batch) text += `${format(e)}\n`;
      // Honour backpressure: resolve when the stream has taken the chunk.
      return new Promise((resolve) => {
        stream.write(text, () => resolve({ ok: true }));
      });
    },
    async close() {},
  };
}

function prettyLine(e: TallyEvent): string {
  const who = [e.tenantId, e.userId ?? e.anonymousId].filter(Boolean).join('/');
  return `${e.timestamp} ${e.name} ${who} ${JSON.stringify(e.properties)} id=${e.id}`;
}
