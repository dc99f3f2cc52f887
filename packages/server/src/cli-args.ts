/**
 * Argument handling for `tally`: each command declares its options, `node:util` parseArgs reads them
 * (strict: an unknown option is an error naming the closest known one), and the same declarations
 * print the command's help. The server settings (SETTINGS in config.ts) are options of every command
 * that opens the database, so a setting is declared once, there.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** Placeholder shown in help (`--tenant T`). */
  arg?: string;
  help: string;
  /** May be given more than once (string options): the values come as an array, in order. */
  multiple?: boolean;
}

export interface CommandSpec {
  /** `keys create` */
  name: string;
  /** One line for `tally help`. */
  summary: string;
  /** Usage lines, without the leading `tally `. */
  usage: string[];
  /** What the command does, in a few lines. */
  about?: string;
  options?: Record<string, OptionSpec>;
  /** Whether the server settings (--data-dir, --database-url, …) apply. */
  settings: boolean;
  /** Positional arguments, in order; `hint` says what to give when one is missing. */
  args?: { name: string; required: boolean; hint?: string }[];
}

/** A mistake in how the command was called: exit 2, with the message and a pointer to the help. */
export class UsageError extends Error {}

export interface Parsed {
  /** The command's own options (an array for `multiple` ones). */
  options: Record<string, string | boolean | string[] | undefined>;
  /** Server settings given as flags, by name without dashes. */
  settings: Record<string, string | undefined>;
  positionals: string[];
  help: boolean;
}

/**
 * Parses `argv` (the words after the command's name) for `spec`. `settingNames` are the server settings'
 * names; a command option of the same name (e.g. `tenants set --rate-limit`) takes its place.
 */
export function parseCommand(spec: CommandSpec, argv: string[], settingNames: readonly string[]): Parsed {
  const own = spec.options ?? {};
  const settingOptions = spec.settings ? settingNames.filter((n) => !Object.hasOwn(own, n)) : [];
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const n of settingOptions) options[n] = { type: 'string' };
  for (const [n, o] of Object.entries(own)) options[n] = { type: o.type, ...(o.multiple ? { multiple: true } : {}) };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    // `--help` anywhere wins over mistakes elsewhere on the line.
    if (argv.includes('--help') || argv.includes('-h'))
      return { options: {}, settings: {}, positionals: [], help: true };
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const name = /Unknown option '([^']+)'/.exec(err.message)?.[1] ?? '';
      const bare = name.replace(/^-+/, '');
      const hint = closest(bare, Object.keys(options));
      throw new UsageError(`unknown option ${name}${hint ? `; did you mean --${hint}?` : ''}`);
    }
    if (err.code?.startsWith('ERR_PARSE_ARGS_')) throw new UsageError(firstSentence(err.message));
    throw e;
  }
  const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const result: Parsed = { options: {}, settings: {}, positionals: parsed.positionals, help: values.help === true };
  for (const [k, v] of Object.entries(values)) {
    if (k === 'help') continue;
    if (Object.hasOwn(own, k)) result.options[k] = v;
    else result.settings[k] = v as string;
  }
  if (result.help) return result;
  const declared = spec.args ?? [];
  const missing = declared.find((a, i) => a.required && result.positionals[i] === undefined);
  if (missing) throw new UsageError(`missing <${missing.name}>${missing.hint ? ` (${missing.hint})` : ''}`);
  if (result.positionals.length > declared.length) {
    const extra = result.positionals[declared.length] as string;
    throw new UsageError(`unexpected argument "${extra}"`);
  }
  return result;
}

function firstSentence(message: string): string {
  const cut = message.indexOf('. ');
  return cut > 0 ? message.slice(0, cut) : message;
}

/** The candidate nearest to `word` by edit distance (or the one it begins), if near enough to be a typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = c.startsWith(word) && word.length >= 3 ? 1 : distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/** Levenshtein distance, with a swap of two neighbours counting as one edit (`--tenat`, `--tneant`). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => (d[i] as number[])[j] as number;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

/** The help text of one command. `settingsHelp` describes the server settings it takes, if any. */
export function commandHelp(spec: CommandSpec, settingsHelp: string): string {
  const usage = spec.usage.map((u, i) => `${i === 0 ? 'Usage: ' : '       '}tally ${u}`).join('\n');
  const rows: [string, string][] = Object.entries(spec.options ?? {}).map(([n, o]) => [
    `--${n}${o.arg ? ` ${o.arg}` : ''}`,
    o.help,
  ]);
  rows.push(['-h, --help', 'show this help']);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  const options = rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`).join('\n');
  return [
    usage,
    spec.about ? `\n${spec.about}` : `\n${spec.summary}`,
    `\nOptions:\n${options}`,
    spec.settings ? `\n${settingsHelp}` : '',
  ]
    .filter((s) => s !== '')
    .join('\n')
    .concat('\n');
}
