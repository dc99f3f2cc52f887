/**
 * The server's logger: pino, JSON lines for machines (stdout not a terminal, or `--log-format json`), or
 * one readable line per record for people at a terminal. The readable form is a few lines of formatting
 * here rather than pino-pretty: pino-pretty would be a dependency with its own, and as a pino transport
 * it runs in a worker thread whose buffered lines a signal can cut off.
 *
 * Both forms write synchronously to the file descriptor (sonic-boom, sync): the server logs little (no
 * access logs), and a line written is a line kept when SIGTERM or a second signal ends the process.
 */
import { type DestinationStream, type Logger, pino } from 'pino';

export type LogFormat = 'pretty' | 'json';

export interface LoggerOptions {
  level: string;
  format: LogFormat;
  /** Where lines go; default stdout (fd 1), written synchronously. */
  destination?: { write(line: string): unknown };
}

export function createLogger(options: LoggerOptions): Logger {
  const out: { write(line: string): unknown } = options.destination ?? pino.destination({ dest: 1, sync: true });
  const stream: DestinationStream =
    options.format === 'json' ? (out as DestinationStream) : { write: (line: string) => out.write(prettyLine(line)) };
  return pino({ level: options.level, base: { service: 'tally' } }, stream);
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every record has, or that the line shows in its own place. */
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'service', 'err']);

/** `12:04:05.123 WARN  message key=value …` and, for an error, its stack indented below. */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof rec.time === 'number' ? clock(new Date(rec.time)) : '';
  const level = (LEVELS[rec.level as number] ?? String(rec.level)).padEnd(5);
  const fields = Object.entries(rec)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${value(v)}`);
  let line = [time, level, typeof rec.msg === 'string' ? rec.msg : '', ...fields].filter((s) => s !== '').join(' ');
  const err = rec.err as { type?: string; message?: string; stack?: string } | undefined;
  if (err && typeof err === 'object') {
    const stack = err.stack ?? `${err.type ?? 'Error'}: ${err.message ?? ''}`;
    line += `\n${stack
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n')}`;
  }
  return `${line}\n`;
}

function clock(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

function value(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v);
}
