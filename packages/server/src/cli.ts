/**
 * The `tally` command. Every command is declared once (name, usage, options, what it does) in COMMANDS;
 * `main` finds it, parses its arguments, and either prints its help (touching nothing) or runs it. Each
 * command returns its exit code: 0 done, 1 failed, 2 called wrongly. Commands are testable in-process.
 *
 * Commands that need the database get an AdminOps: the running `tally serve`'s admin API when one holds
 * the embedded database, the store itself otherwise (see admin/connect.ts); they format its results the
 * same way either way.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { isTallyError, parseRangeTime, UNPLANNED_POLICIES, type UnplannedPolicy } from '@tally/core';
import { VERSION } from '@tally/node';
import { KEY_SCOPES, type KeyScope } from '@tally/store';
import { describeStore, openAdminOps, type OpenOptions, reserveDatabase } from './admin/connect.js';
import type { AdminOps, RejectedFilter, TenantSettings } from './admin/ops.js';
import {
  closest,
  type CommandSpec,
  commandHelp,
  type OptionSpec,
  type Parsed,
  parseCommand,
  UsageError,
} from './cli-args.js';
import * as lifecycle from './cli-lifecycle.js';
import {
  buildQuery,
  checkQuery,
  explainError,
  outputFormat,
  QUERY_COMMANDS,
  type QueryCommandSpec,
  render,
} from './cli-query.js';
import { type Config, loadConfig, SETTINGS } from './config.js';
import { demo } from './demo.js';
import { doctor } from './doctor.js';
import { startServer } from './serve.js';
import { table } from './table.js';

interface Io {
  out: Writable;
  err: Writable;
}

interface Ctx extends Io {
  parsed: Parsed;
  /** The Config of the settings given (flags, environment, config file). */
  config(): Config;
  /** The operations, opened on first use and closed when the command ends. */
  ops(options?: OpenOptions): Promise<AdminOps>;
}

interface Command extends CommandSpec {
  run(ctx: Ctx): Promise<number>;
}

const SETTING_NAMES = SETTINGS.map((s) => s.flag.slice(2));

/** Settings that say where the database is; the others configure a server, not the CLI's connection to one. */
const LOCATING = new Set(['data-dir', 'database-url', 'schema', 'config', 'log-format']);

const str = (v: string | boolean | string[] | undefined) => (typeof v === 'string' ? v : undefined);

/** The filter options of `rejected list` and `rejected replay`. */
const REJECTED_FILTER: Record<string, OptionSpec> = {
  tenant: { type: 'string', arg: 'T', help: "only this tenant's events" },
  code: { type: 'string', arg: 'C', help: 'only this error code, e.g. TALLY_UNKNOWN_PROPERTY' },
  name: { type: 'string', arg: 'E', help: 'only this event name' },
  since: { type: 'string', arg: 'TIME', help: 'only events received since this time (e.g. 2026-12-01)' },
};

function rejectedFilter(ctx: Ctx): RejectedFilter {
  const o = ctx.parsed.options;
  return { tenant: str(o.tenant), code: str(o.code), name: str(o.name), since: str(o.since) };
}

const COMMANDS: Command[] = [
  {
    name: 'serve',
    summary: 'run the collector (HTTP API, transport, writer, jobs) until SIGTERM/SIGINT',
    usage: ['serve [settings]'],
    about:
      'Runs the collector until SIGTERM or SIGINT, then drains: nothing acknowledged is lost. It writes\n' +
      '<data-dir>/server.json (pid, URL) and <data-dir>/admin-token (mode 0600) so that the other tally\n' +
      'commands reach it through its loopback admin API (/v1/admin) while it holds the database.',
    settings: true,
    run: (ctx) => serveCommand(ctx.config(), ctx),
  },
  {
    name: 'migrate',
    summary: 'create or upgrade the database schema',
    usage: ['migrate [settings]'],
    settings: true,
    async run(ctx) {
      const ops = await ctx.ops({ migrate: false });
      const { applied } = await ops.migrate();
      ctx.out.write(
        applied.length === 0
          ? `${ops.target.store}: schema up to date\n`
          : `${ops.target.store}: applied ${applied.join(', ')}\n`,
      );
      return 0;
    },
  },
  {
    name: 'doctor',
    summary: 'check config, database, NATS and a round trip; exit 1 on a failure',
    usage: ['doctor [settings]'],
    settings: true,
    run: doctorCommand,
  },
  {
    name: 'keys create',
    summary: 'create an API key (shown once; stored hashed)',
    usage: ['keys create --tenant T [--scope write|read|admin] [--name N]', 'keys create --scope admin [--name N]'],
    about:
      'Creates an API key and prints it once; the database keeps only its hash. Scopes:\n' +
      '  write  (default) sends events: the key apps and browsers carry\n' +
      "  read   reads the tenant's analytics\n" +
      "  admin  uses the admin API: with --tenant, manages that tenant's keys; without --tenant, the\n" +
      '         whole server (keys, tenants, jobs, archive). Only an admin key may have no tenant.\n' +
      'A running tally serve accepts the new key at once.',
    options: {
      tenant: { type: 'string', arg: 'T', help: 'the tenant the key belongs to (created if new)' },
      scope: { type: 'string', arg: 'S', help: 'write (default), read or admin' },
      name: { type: 'string', arg: 'N', help: 'a label, to tell keys apart' },
    },
    settings: true,
    async run(ctx) {
      const { tenant, scope = 'write', name } = ctx.parsed.options as Record<string, string | undefined>;
      if (!KEY_SCOPES.includes(scope as KeyScope)) {
        throw new UsageError(`--scope must be ${KEY_SCOPES.join(', ')}, not "${scope}"`);
      }
      if (tenant === undefined && scope !== 'admin') {
        throw new UsageError(
          'which tenant? e.g. tally keys create --tenant acme (only an admin key may be server-wide: --scope admin)',
        );
      }
      const ops = await ctx.ops();
      const { key, info } = await ops.createKey({ tenant: tenant ?? null, scope: scope as KeyScope, name });
      const owner = info.tenantId === null ? 'the whole server' : `tenant "${info.tenantId}"`;
      ctx.out.write(`created ${info.id} (${info.scope}) for ${owner}. The key (shown only now):\n\n    ${key}\n\n`);
      return 0;
    },
  },
  {
    name: 'keys list',
    summary: 'list keys (id, tenant, scope, prefix, name, created, revoked)',
    usage: ['keys list [--tenant T]'],
    options: { tenant: { type: 'string', arg: 'T', help: "only this tenant's keys" } },
    settings: true,
    async run(ctx) {
      const keys = await (await ctx.ops()).listKeys({ tenant: str(ctx.parsed.options.tenant) });
      ctx.out.write(
        table(
          ['id', 'tenant', 'scope', 'prefix', 'name', 'created', 'revoked'],
          keys.map((k) => [
            k.id,
            k.tenantId ?? '(server)',
            k.scope,
            `${k.prefix}…`,
            k.name ?? '',
            k.createdAt,
            k.revokedAt ?? '',
          ]),
        ),
      );
      return 0;
    },
  },
  {
    name: 'keys revoke',
    summary: 'revoke a key by id (key_…) or prefix (tk_…)',
    usage: ['keys revoke <id|prefix>'],
    about: 'Revokes a key. Through a running tally serve it stops working at once; otherwise within 30 s.',
    args: [{ name: 'id|prefix', required: true, hint: 'the key id key_… or its prefix tk_…, see tally keys list' }],
    settings: true,
    async run(ctx) {
      const { revoked } = await (await ctx.ops()).revokeKey({ key: ctx.parsed.positionals[0] as string });
      ctx.out.write(`revoked ${revoked}\n`);
      return 0;
    },
  },
  {
    name: 'tenants list',
    summary: 'list tenants and their settings',
    usage: ['tenants list'],
    settings: true,
    async run(ctx) {
      const tenants = await (await ctx.ops()).listTenants();
      ctx.out.write(
        table(
          ['id', 'name', 'unlisted', 'rate limit (events/s)', 'unplanned'],
          tenants.map((t) => [t.id, t.name, unlisted(t.acceptUnlisted), show(t.rateLimit), show(t.unplanned)]),
        ),
      );
      return 0;
    },
  },
  {
    name: 'tenants set',
    summary: "change a tenant's settings (default: back to the server's)",
    usage: ['tenants set <id> [--unlisted accept|reject|default] [--rate-limit N|default] [--unplanned P|default]'],
    about:
      "Overrides the server's settings for one tenant; `default` goes back to the server's. A running\n" +
      'tally serve applies the change at once.',
    options: {
      unlisted: {
        type: 'string',
        arg: 'V',
        help: 'event names the catalog does not declare: accept, reject or default',
      },
      'rate-limit': { type: 'string', arg: 'N', help: 'events per second (0: unlimited) or default' },
      unplanned: { type: 'string', arg: 'P', help: 'undeclared properties: allow, strip, reject or default' },
    },
    args: [{ name: 'id', required: true, hint: 'the tenant id, see tally tenants list' }],
    settings: true,
    async run(ctx) {
      const o = ctx.parsed.options as Record<string, string | undefined>;
      const settings: TenantSettings = {};
      if (o.unlisted !== undefined) {
        if (!['accept', 'reject', 'default'].includes(o.unlisted)) {
          throw new UsageError('--unlisted must be accept, reject or default');
        }
        settings.acceptUnlisted = o.unlisted === 'default' ? null : o.unlisted === 'accept';
      }
      if (o['rate-limit'] !== undefined) {
        const v = o['rate-limit'];
        const n = Number(v);
        if (v !== 'default' && !(v !== '' && Number.isInteger(n) && n >= 0)) {
          throw new UsageError('--rate-limit must be a whole number of events per second (0: unlimited) or default');
        }
        settings.rateLimit = v === 'default' ? null : n;
      }
      if (o.unplanned !== undefined) {
        if (o.unplanned !== 'default' && !UNPLANNED_POLICIES.includes(o.unplanned as UnplannedPolicy)) {
          throw new UsageError(`--unplanned must be ${UNPLANNED_POLICIES.join(', ')} or default`);
        }
        settings.unplanned = o.unplanned === 'default' ? null : (o.unplanned as UnplannedPolicy);
      }
      if (Object.keys(settings).length === 0) {
        throw new UsageError('nothing to set: give --unlisted, --rate-limit or --unplanned');
      }
      const t = await (await ctx.ops()).setTenant({ id: ctx.parsed.positionals[0] as string, settings });
      ctx.out.write(
        `tenant ${t.id}: unlisted ${unlisted(t.acceptUnlisted)}, rate limit ${show(t.rateLimit)}, unplanned ${show(t.unplanned)}\n`,
      );
      return 0;
    },
  },
  {
    name: 'archive run',
    summary: 'archive old detail to gzip JSONL files (local dir or S3)',
    usage: ['archive run [--older-than-days N]'],
    about: 'Archives events and request logs older than N whole UTC days, with progress as it goes.',
    options: {
      'older-than-days': { type: 'string', arg: 'N', help: 'default: --archive-after-days (3)' },
    },
    settings: true,
    async run(ctx) {
      const v = str(ctx.parsed.options['older-than-days']);
      const days = v === undefined ? undefined : Number(v);
      if (days !== undefined && !(Number.isInteger(days) && days >= 1)) {
        throw new UsageError('--older-than-days must be a whole number ≥ 1');
      }
      return lifecycle.archiveRun({ ops: await ctx.ops(), ...io(ctx) }, days);
    },
  },
  {
    name: 'archive list',
    summary: 'list archive files with rows, size, cleaned/restored',
    usage: ['archive list [--tenant T]'],
    options: { tenant: { type: 'string', arg: 'T', help: "only this tenant's files" } },
    settings: true,
    async run(ctx) {
      return lifecycle.archiveList({ ops: await ctx.ops(), ...io(ctx) }, str(ctx.parsed.options.tenant));
    },
  },
  {
    name: 'archive restore',
    summary: 're-import an archived day (idempotent)',
    usage: ['archive restore --tenant T --day YYYY-MM-DD'],
    options: {
      tenant: { type: 'string', arg: 'T', help: 'the tenant' },
      day: { type: 'string', arg: 'D', help: 'the UTC day, YYYY-MM-DD' },
    },
    settings: true,
    async run(ctx) {
      const tenant = str(ctx.parsed.options.tenant);
      const day = str(ctx.parsed.options.day);
      if (!tenant || !day || !/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new UsageError('give --tenant T --day YYYY-MM-DD');
      return lifecycle.archiveRestore({ ops: await ctx.ops(), ...io(ctx) }, tenant, day);
    },
  },
  {
    name: 'cleanup',
    summary: 'delete archived rows whose files verify',
    usage: ['cleanup [--dry-run] [--include-restored]'],
    about: 'Deletes detail rows whose archive file is present and verifies (checksum, row count).',
    options: {
      'dry-run': { type: 'boolean', help: 'count what would be deleted, delete nothing' },
      'include-restored': { type: 'boolean', help: 'also delete rows brought back by archive restore' },
    },
    settings: true,
    async run(ctx) {
      return lifecycle.cleanup(
        { ops: await ctx.ops(), ...io(ctx) },
        {
          dryRun: ctx.parsed.options['dry-run'] === true,
          includeRestored: ctx.parsed.options['include-restored'] === true,
        },
      );
    },
  },
  {
    name: 'stats',
    summary: 'table and index sizes, row counts, oldest/newest, archive totals',
    usage: ['stats [--json]'],
    options: { json: { type: 'boolean', help: 'print the figures as JSON' } },
    settings: true,
    async run(ctx) {
      return lifecycle.stats({ ops: await ctx.ops(), ...io(ctx) }, ctx.parsed.options.json === true);
    },
  },
  {
    name: 'jobs',
    summary: 'recent lifecycle job runs',
    usage: ['jobs [--job NAME]'],
    options: { job: { type: 'string', arg: 'NAME', help: 'archive, cleanup, stats, snapshot-prune or rollups' } },
    settings: true,
    async run(ctx) {
      return lifecycle.jobs({ ops: await ctx.ops(), ...io(ctx) }, str(ctx.parsed.options.job));
    },
  },
  {
    name: 'replay',
    summary: 're-ingest a dead-letter or pending spool file (idempotent)',
    usage: ['replay <file>'],
    about:
      'Re-ingests a dead-letter file (after fixing it) or a pending spool file. The file is renamed\n' +
      '<file>.replayed-<ms> first; rows that fail again go back to the dead-letter file.',
    args: [{ name: 'file', required: true, hint: 'e.g. tally replay .tally/spool/dead-letters.jsonl' }],
    settings: true,
    async run(ctx) {
      const file = ctx.parsed.positionals[0] as string;
      const ops = await ctx.ops();
      ctx.out.write(`replaying ${file} into ${ops.target.store}…\n`);
      const r = await ops.replay({ file }, (line) => ctx.out.write(`${line}\n`));
      ctx.out.write(
        `stored ${r.stored}, skipped ${r.duplicates} duplicates, ${r.stillFailing} still failing` +
          `${r.stillFailing > 0 ? ` (back in ${r.deadLetterFile})` : ''}, ${r.unreadable} unreadable lines\n`,
      );
      return r.stillFailing > 0 || r.unreadable > 0 ? 1 : 0;
    },
  },
  {
    name: 'rejected list',
    summary: 'events the collector refused, kept with their reasons (newest first)',
    usage: ['rejected list [--tenant T] [--code C] [--name E] [--since TIME] [--limit N] [--json]'],
    about:
      'Lists events the collector refused one by one (unknown name, catalog violation, too big, PII\n' +
      'under reject, malformed envelope), kept in the quarantine, with the count of every match by code.\n' +
      'Fix the catalog or the tenant settings, then store them with tally rejected replay.',
    options: {
      ...REJECTED_FILTER,
      limit: { type: 'string', arg: 'N', help: 'events to show (default 50)' },
      json: { type: 'boolean', help: 'print {events, counts} as JSON' },
    },
    settings: true,
    async run(ctx) {
      const o = ctx.parsed.options;
      const v = str(o.limit);
      const limit = v === undefined ? undefined : Number(v);
      if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) {
        throw new UsageError('--limit must be a whole number ≥ 1');
      }
      const list = await (await ctx.ops()).listRejected({ ...rejectedFilter(ctx), limit });
      if (o.json === true) {
        ctx.out.write(`${JSON.stringify(list, null, 2)}\n`);
        return 0;
      }
      const total = Object.values(list.counts).reduce((a, b) => a + b, 0);
      ctx.out.write(
        total === 0
          ? 'no refused events match\n'
          : `${total} refused: ${Object.entries(list.counts)
              .map(([code, n]) => `${n} ${code}`)
              .join(', ')}\n\n` +
              table(
                ['received', 'tenant', 'event', 'code', 'why', 'source'],
                list.events.map((e) => [
                  e.receivedAt,
                  e.tenantId,
                  e.name ?? '',
                  e.code,
                  e.truncated ? `${e.message} (cut at 16 KB: not replayable)` : e.message,
                  e.source,
                ]),
              ),
      );
      return 0;
    },
  },
  {
    name: 'rejected replay',
    summary: 're-check refused events against the current catalog and store what passes (once)',
    usage: ['rejected replay [--tenant T] [--code C] [--name E] [--since TIME] [--dry-run]'],
    about:
      'Re-checks each refused event against the current catalog and tenant settings. What passes is\n' +
      'stored exactly once (by its id: a second replay stores nothing) and leaves the quarantine; what\n' +
      'still fails stays, with its new reason. Exit 1 when some still fail.',
    options: {
      ...REJECTED_FILTER,
      'dry-run': { type: 'boolean', help: 'count what would be stored, store nothing' },
    },
    settings: true,
    async run(ctx) {
      const dryRun = ctx.parsed.options['dry-run'] === true;
      const ops = await ctx.ops();
      const r = await ops.replayRejected({ ...rejectedFilter(ctx), dryRun }, (line) => ctx.out.write(`${line}\n`));
      const failing = Object.entries(r.failing).map(([code, n]) => `${n} ${code}`);
      ctx.out.write(
        `${dryRun ? 'dry run: ' : ''}${r.examined} examined, ${r.stored} ${dryRun ? 'would be stored' : 'stored'}` +
          `${r.duplicates > 0 ? `, ${r.duplicates} already stored` : ''}, ${r.stillFailing} still failing` +
          `${failing.length > 0 ? ` (${failing.join(', ')})` : ''}\n`,
      );
      return r.stillFailing > 0 ? 1 : 0;
    },
  },
  {
    name: 'rollups rebuild',
    summary: 'recompute the hourly rollups from the detail rows, a UTC day at a time',
    usage: ['rollups rebuild [--from DAY] [--to DAY]'],
    about:
      "Recomputes event counts, route statistics and the property rollups (the catalog's enum and boolean\n" +
      'properties) from the stored detail, one UTC day per transaction, with a line per day. Safe beside a\n' +
      'running server: each row is counted once. Days whose detail was archived and cleaned up keep their\n' +
      'rollups. Without --from/--to: every day that has detail.\n' +
      'With ClickHouse: builds the hourly counts of every day that is over and not built for the current\n' +
      'catalog (what the hourly rollups job does); --from/--to do not apply.',
    options: {
      from: { type: 'string', arg: 'DAY', help: 'first UTC day (or time) to rebuild, e.g. 2026-03-01' },
      to: { type: 'string', arg: 'DAY', help: 'end, exclusive, e.g. 2026-04-01' },
    },
    settings: true,
    async run(ctx) {
      const o = ctx.parsed.options;
      for (const flag of ['from', 'to'] as const) {
        const v = str(o[flag]);
        if (v !== undefined && parseRangeTime(v, 'UTC') === undefined) {
          throw new UsageError(`--${flag} must be an ISO date or time, e.g. 2026-03-01, not "${v}"`);
        }
      }
      const ops = await ctx.ops();
      const r = await ops.rebuildRollups({ from: str(o.from), to: str(o.to) }, (line) => ctx.out.write(`${line}\n`));
      ctx.out.write(
        `rebuilt ${r.days} day${r.days === 1 ? '' : 's'}: ${r.events} events, ${r.requestLogs} request logs` +
          `${r.archived > 0 ? ` (${r.archived} archived tenant-days left as they were)` : ''}\n`,
      );
      return 0;
    },
  },
  ...QUERY_COMMANDS.map((spec): Command => ({ ...spec, run: (ctx) => queryCommand(spec, ctx) })),
  {
    name: 'demo',
    summary: 'track a sample task pipeline and print every event and the final counts',
    usage: ['demo'],
    settings: false,
    async run(ctx) {
      await demo(ctx.out, join(tmpdir(), `tally-demo-spool-${process.pid}`));
      return 0;
    },
  },
  {
    name: 'version',
    summary: 'print the version',
    usage: ['version'],
    settings: false,
    async run(ctx) {
      ctx.out.write(`${VERSION}\n`);
      return 0;
    },
  },
];

/** Command families: `tally keys` alone shows its commands. */
const GROUPS: Record<string, string> = {
  rejected: 'Events the collector refused: list them, replay them once the catalog lets them through.',
  keys: 'API keys (write, read, admin): create them, list them, revoke them.',
  tenants: 'Tenants and their own settings.',
  archive: 'Archive files: archive old detail, list the files, restore a day.',
  rollups: 'The hourly rollups queries are answered from: rebuild them from the detail rows.',
  query:
    'Ask questions of the stored events and request logs: trends, funnels, retention, routes, logs, explore.\n' +
    'Works beside a running tally serve (through its admin API) and without one (on the database directly).',
};

const TOP = [...new Set(COMMANDS.map((c) => c.name.split(' ')[0] as string)), 'help'];

function overview(): string {
  const rows = COMMANDS.map((c) => [c.name, c.summary] as const);
  rows.push(['help [command]', "show this help, or a command's"]);
  const width = Math.max(...rows.map(([u]) => u.length)) + 3;
  return `tally ${VERSION}: self-hosted event tracking and request logging

Usage: tally <command> [options]

Commands:
${rows.map(([u, s]) => `  ${u.padEnd(width)}${s}`).join('\n')}

tally <command> --help (or tally help <command>) shows a command's usage and options;
tally serve --help lists the settings (flags, environment variables) of every command
that opens the database. While tally serve runs on embedded PGlite, the commands go
through its loopback admin API (found by <data-dir>/server.json).
`;
}

function settingsTable(): string {
  return SETTINGS.map((s) => `  ${s.flag.padEnd(26)} ${s.env.padEnd(30)} ${s.default}`).join('\n');
}

function helpOf(spec: CommandSpec): string {
  if (spec.name === 'serve') {
    return commandHelp(spec, `Settings (flag, environment variable, default):\n${settingsTable()}`);
  }
  return commandHelp(
    spec,
    'Settings: --data-dir, --database-url, --schema, --config and the rest of tally serve --help\n' +
      '(flags or environment variables) say which database.',
  );
}

function groupHelp(group: string): string {
  const members = COMMANDS.filter((c) => c.name.startsWith(`${group} `));
  const width = Math.max(...members.map((c) => c.name.length)) + 3;
  return (
    `Usage: tally ${group} <${members.map((c) => c.name.split(' ')[1]).join('|')}> [options]\n\n${GROUPS[group]}\n\nCommands:\n` +
    members.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n') +
    `\n\ntally ${group} <command> --help shows its usage and options.\n`
  );
}

/** Which command the words name: `{ command }`, a bare group, or what to suggest. */
function find(words: string[]): { command?: Command; group?: string; unknown?: string; hint?: string } {
  const [first, second] = words;
  if (first === undefined) return {};
  if (Object.hasOwn(GROUPS, first)) {
    if (second === undefined) return { group: first };
    const command = COMMANDS.find((c) => c.name === `${first} ${second}`);
    if (command) return { command };
    const subs = COMMANDS.filter((c) => c.name.startsWith(`${first} `)).map((c) => c.name.split(' ')[1] as string);
    const hint = closest(second, subs);
    return { unknown: `${first} ${second}`, hint: hint && `${first} ${hint}` };
  }
  const command = COMMANDS.find((c) => c.name === first);
  if (command) return { command };
  return { unknown: first, hint: closest(first, TOP) };
}

/** Splits argv into the command's words (`keys`, `create`) and the rest, without knowing its options yet. */
function split(argv: string[]): { words: string[]; rest: string[] } {
  const takesValue = new Set<string>(SETTING_NAMES);
  for (const c of COMMANDS)
    for (const [n, o] of Object.entries(c.options ?? {})) if (o.type === 'string') takesValue.add(n);
  for (const c of COMMANDS)
    for (const [n, o] of Object.entries(c.options ?? {})) if (o.type === 'boolean') takesValue.delete(n);
  const words: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      rest.push(...argv.slice(i));
      break;
    }
    if (a.startsWith('-')) {
      rest.push(a);
      if (a.startsWith('--') && !a.includes('=') && takesValue.has(a.slice(2)) && i + 1 < argv.length) {
        rest.push(argv[++i] as string);
      }
      continue;
    }
    const depth = words[0] === 'help' ? 3 : words[0] !== undefined && Object.hasOwn(GROUPS, words[0]) ? 2 : 1;
    if (words.length < depth) words.push(a);
    else rest.push(a);
  }
  return { words, rest };
}

export async function main(
  argv: string[],
  out: Writable = process.stdout,
  err: Writable = process.stderr,
): Promise<number> {
  const { words, rest } = split(argv);
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  if (words.length === 0) {
    if (rest.includes('--version') || rest.includes('-v')) {
      out.write(`${VERSION}\n`);
      return 0;
    }
    if (rest.length > 0 && !wantsHelp) {
      err.write(`tally: unknown option ${rest[0]} (see tally help)\n`);
      return 2;
    }
    out.write(overview());
    return 0;
  }
  if (words[0] === 'help') return help(words.slice(1), out, err);

  const found = find(words);
  if (found.group !== undefined) {
    if (wantsHelp) {
      out.write(groupHelp(found.group));
      return 0;
    }
    err.write(`tally ${found.group}: which command?\n\n${groupHelp(found.group)}`);
    return 2;
  }
  if (!found.command) {
    err.write(
      `tally: unknown command "${found.unknown}"${found.hint ? `; did you mean tally ${found.hint}?` : ''} (see tally help)\n`,
    );
    return 2;
  }
  const command = found.command;
  const prefix = `tally ${command.name}`;
  let parsed: Parsed;
  try {
    parsed = parseCommand(command, rest, SETTING_NAMES);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err.write(`${prefix}: ${e.message}\nUsage: ${command.usage.map((u) => `tally ${u}`).join('\n       ')}\n`);
    return 2;
  }
  if (parsed.help) {
    out.write(helpOf(command));
    return 0;
  }

  let config: Config | undefined;
  let ops: AdminOps | undefined;
  const ctx: Ctx = {
    out,
    err,
    parsed,
    config: () => (config ??= loadConfig(parsed.settings)),
    async ops(options = {}) {
      if (ops) return ops;
      ops = await openAdminOps(ctx.config(), {
        command: command.name,
        ...options,
        notice: (line) => err.write(`${prefix}: ${line}\n`),
      });
      const ignored = Object.keys(parsed.settings).filter((k) => !LOCATING.has(k));
      if (ops.target.server && ignored.length > 0) {
        err.write(
          `${prefix}: ${ignored.map((k) => `--${k}`).join(', ')} ignored: the running tally serve (pid ${ops.target.server.pid}) uses its own settings\n`,
        );
      }
      return ops;
    },
  };
  try {
    return await command.run(ctx);
  } catch (e) {
    if (e instanceof UsageError) {
      err.write(`${prefix}: ${e.message}\nUsage: ${command.usage.map((u) => `tally ${u}`).join('\n       ')}\n`);
      return 2;
    }
    err.write(`${prefix}: ${isTallyError(e) ? `${e.code}: ${e.message}` : (e as Error).message}\n`);
    return 1;
  } finally {
    await ops?.close();
  }
}

function help(topic: string[], out: Writable, err: Writable): number {
  if (topic.length === 0) {
    out.write(overview());
    return 0;
  }
  const found = find(topic);
  if (found.group !== undefined) {
    out.write(groupHelp(found.group));
    return 0;
  }
  if (found.command) {
    out.write(helpOf(found.command));
    return 0;
  }
  err.write(`tally help: no command "${found.unknown}"${found.hint ? `; did you mean ${found.hint}?` : ''}\n`);
  return 2;
}

/** `tally query <kind>`: the flags checked before anything is opened, then the answer in the format asked for. */
async function queryCommand(spec: QueryCommandSpec, ctx: Ctx): Promise<number> {
  const o = ctx.parsed.options;
  const format = outputFormat(o);
  const fromJson = o.query !== undefined || o['query-file'] !== undefined;
  const query = checkQuery(spec, buildQuery(spec, o), fromJson);
  const ops = await ctx.ops();
  let tenant = str(o.tenant);
  if (tenant === undefined) {
    const tenants = await ops.listTenants();
    if (tenants.length !== 1) {
      throw new UsageError(
        tenants.length === 0
          ? 'no tenants yet: send events first (tally serve creates tenant "default")'
          : `which tenant? --tenant T (one of: ${tenants.map((t) => t.id).join(', ')})`,
      );
    }
    tenant = (tenants[0] as { id: string }).id;
  }
  try {
    ctx.out.write(render(await ops.query({ tenant, query }), format, query));
    return 0;
  } catch (e) {
    const said = explainError(spec.kind, e, fromJson);
    if (said === undefined) throw e;
    ctx.err.write(`tally ${spec.name}: ${said}\n`);
    return 1;
  }
}

function io(ctx: Ctx): Io {
  return { out: ctx.out, err: ctx.err };
}

function show(v: unknown): string {
  return v === null || v === undefined ? 'default' : String(v);
}

function unlisted(accept: boolean | null): string {
  return accept === null ? 'default' : accept ? 'accept' : 'reject';
}

/**
 * Doctor asks a running server (its /readyz) rather than open the embedded database it holds: point it at
 * that server's port. Without one, doctor opens the database itself, holding the data directory meanwhile.
 */
async function doctorCommand(ctx: Ctx): Promise<number> {
  const config = ctx.config();
  const where = await reserveDatabase(config, {
    command: 'doctor',
    notice: (line) => ctx.err.write(`tally doctor: ${line}\n`),
  });
  if ('url' in where) {
    const url = new URL(where.url);
    return doctor({ ...config, host: url.hostname, port: Number(url.port) }, ctx.out);
  }
  try {
    return await doctor(config, ctx.out);
  } finally {
    await where.release();
  }
}

async function serveCommand(config: Config, { out, err }: Io): Promise<number> {
  out.write(
    `tally ${VERSION}: starting on ${describeStore(config)}, transport ${config.nats ? `NATS ${config.nats.servers.join(',')} (stream ${config.nats.stream})` : 'in-process'}\n`,
  );
  const logFormat = config.logFormat === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : config.logFormat;
  const server = await startServer(config, { out, logLevel: 'info', logFormat, guardProcess: true });
  if (server.firstKey) {
    out.write(
      `\nFirst start: created tenant "default" and its write key (shown once, stored hashed):\n\n    ${server.firstKey}\n\n` +
        `Send events:  curl -X POST ${server.url}/v1/events -H 'authorization: Bearer ${server.firstKey}' \\\n` +
        `                -H 'content-type: application/json' -d '{"batch":[...]}'\n` +
        `More keys:    npx tally keys create --tenant <name>   (works while this server runs)\n` +
        (config.dashboard
          ? `Dashboard:    ${server.url}/   (sign in with a read key: npx tally keys create --tenant default --scope read)\n`
          : '') +
        '\n',
    );
  }
  out.write(
    `listening on ${server.url} (POST /v1/events, /v1/batch, /batch, /v1/query; GET ${config.dashboard ? '/ (dashboard), ' : ''}/v1/live, /v1/export, /metrics, /healthz, /readyz)\n`,
  );
  // Stop on the first signal and drain; a second one means "now".
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  const force = () => {
    err.write('second signal: exiting without draining\n');
    process.exit(1);
  };
  process.once('SIGTERM', force);
  process.once('SIGINT', force);
  out.write(`${signal}: draining…\n`);
  await server.close();
  const s = server.writer.stats();
  out.write(
    `stopped: ${s.stored} rows stored, ${s.duplicates} duplicates, ${s.deadLettered} dead-lettered, ${s.spooled} spooled\n`,
  );
  return 0;
}
