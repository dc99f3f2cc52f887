/**
 * The `tally` command. Each subcommand is a function returning an exit code; `main` only dispatches,
 * so commands are testable in-process.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { isTallyError } from '@tally/core';
import { VERSION } from '@tally/node';
import {
  createApiKey,
  createStore,
  createWriter,
  listApiKeys,
  listTenants,
  revokeApiKey,
  type Store,
  updateTenant,
} from '@tally/store';
import { checkFlags, type Config, type Flags, loadConfig, parseArgs, SETTINGS } from './config.js';
import { archiveCommand, cleanupCommand, jobsCommand, statsCommand } from './cli-lifecycle.js';
import { demo } from './demo.js';
import { doctor } from './doctor.js';
import { startServer } from './serve.js';
import { table } from './table.js';

const HELP = `tally ${VERSION}: self-hosted event tracking and request logging

Usage: tally <command> [options]

Commands:
  serve                     run the collector (HTTP API, transport, writer) until SIGTERM/SIGINT
  keys create --tenant T [--name N]   create a write key (shown once; stored hashed)
  keys list [--tenant T]    list keys (prefix, tenant, created, revoked)
  keys revoke <id|prefix>   revoke a key (a running server notices within 30 s)
  tenants list              list tenants and their settings
  tenants set <id> [--unlisted accept|reject|default] [--rate-limit N|default]
  doctor                    check config, database, NATS and a round trip; non-zero exit on failure
  archive run [--older-than-days N]   archive old detail to gzip JSONL files (local dir or S3)
  archive list [--tenant T] list archive files with rows, size, cleaned/restored
  archive restore --tenant T --day YYYY-MM-DD   re-import an archived day (idempotent)
  cleanup [--dry-run] [--include-restored]      delete archived rows whose files verify
  stats [--json]            table and index sizes, row counts, oldest/newest, archive totals
  jobs [--job NAME]         recent lifecycle job runs
  migrate                   create or upgrade the database schema
  replay <file>             re-ingest a dead-letter or pending spool file (idempotent)
  demo                      track a sample task pipeline and print every event and the final counts
  version                   print the version
  help                      show this help

Options (flag, environment variable, default):
${SETTINGS.map((s) => `  ${s.flag.padEnd(17)} ${s.env.padEnd(21)} ${s.default}`).join('\n')}
`;

export async function main(
  argv: string[],
  out: Writable = process.stdout,
  err: Writable = process.stderr,
): Promise<number> {
  const { flags, positional } = parseArgs(argv);
  const [command, ...args] = positional;
  try {
    switch (command) {
      case 'demo':
        await demo(out, join(tmpdir(), `tally-demo-spool-${process.pid}`));
        return 0;
      case 'serve':
        checkFlags(flags);
        return await serveCommand(loadConfig(flags), out, err);
      case 'keys':
        checkFlags(flags, ['tenant', 'name']);
        return await withStore(loadConfig(flags), (store) => keysCommand(store, args, flags, out, err));
      case 'tenants':
        checkFlags(flags, ['unlisted', 'rate-limit']);
        {
          // --unlisted and --rate-limit here set one tenant's values, not the server's defaults.
          const { unlisted: _u, 'rate-limit': _r, ...settings } = flags;
          return await withStore(loadConfig(settings), (store) => tenantsCommand(store, args, flags, out, err));
        }
      case 'archive':
      case 'cleanup':
      case 'stats':
      case 'jobs': {
        checkFlags(flags, ['older-than-days', 'tenant', 'day', 'dry-run', 'include-restored', 'json', 'job']);
        const config = loadConfig(flags);
        return await withStore(config, (store) => {
          const io = { store, config, flags, out, err };
          if (command === 'archive') return archiveCommand(io, args);
          if (command === 'cleanup') return cleanupCommand(io);
          if (command === 'stats') return statsCommand(io);
          return jobsCommand(io);
        });
      }
      case 'doctor':
        checkFlags(flags);
        return await doctor(loadConfig(flags), out);
      case 'migrate':
        return await migrateCommand(loadConfig(flags), out);
      case 'replay':
        if (!args[0]) {
          err.write('tally replay: which file? e.g. tally replay .tally/spool/dead-letters.jsonl\n');
          return 2;
        }
        return await replayCommand(loadConfig(flags), args[0], out);
      case 'version':
        out.write(`${VERSION}\n`);
        return 0;
      case undefined:
      case 'help':
        if (flags.version) {
          out.write(`${VERSION}\n`);
          return 0;
        }
        out.write(HELP);
        return 0;
      default:
        err.write(`tally: unknown command "${command}"\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    err.write(`tally ${command}: ${isTallyError(e) ? `${e.code}: ${e.message}` : (e as Error).message}\n`);
    return 1;
  }
}

function describeStore(config: Config): string {
  return config.store.kind === 'pglite'
    ? `PGlite at ${config.store.dataDir}`
    : `Postgres ${new URL(config.store.url).host}, schema ${config.store.schema}`;
}

async function migrateCommand(config: Config, out: Writable): Promise<number> {
  const store = await createStore(config.store);
  try {
    const { applied } = await store.migrate();
    out.write(
      applied.length === 0
        ? `${describeStore(config)}: schema up to date\n`
        : `${describeStore(config)}: applied ${applied.join(', ')}\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}

async function replayCommand(config: Config, file: string, out: Writable): Promise<number> {
  const store = await createStore(config.store);
  const writer = createWriter({ store, spoolDir: config.spoolDir });
  try {
    await store.migrate();
    out.write(`replaying ${file} into ${describeStore(config)}…\n`);
    const r = await writer.replay(file);
    out.write(
      `stored ${r.stored}, skipped ${r.duplicates} duplicates, ${r.stillFailing} still failing` +
        `${r.stillFailing > 0 ? ` (back in ${writer.deadLetterFile})` : ''}, ${r.unreadable} unreadable lines\n`,
    );
    return r.stillFailing > 0 || r.unreadable > 0 ? 1 : 0;
  } finally {
    await writer.close();
    await store.close();
  }
}

async function serveCommand(config: Config, out: Writable, err: Writable): Promise<number> {
  out.write(
    `tally ${VERSION}: starting on ${describeStore(config)}, transport ${config.nats ? `NATS ${config.nats.servers.join(',')} (stream ${config.nats.stream})` : 'in-process'}\n`,
  );
  const server = await startServer(config, { out, logLevel: 'info', guardProcess: true });
  if (server.firstKey) {
    out.write(
      `\nFirst start: created tenant "default" and its write key (shown once, stored hashed):\n\n    ${server.firstKey}\n\n` +
        `Send events:  curl -X POST ${server.url}/v1/events -H 'authorization: Bearer ${server.firstKey}' \\\n` +
        `                -H 'content-type: application/json' -d '{"batch":[...]}'\n` +
        `More keys:    npx tally keys create --tenant <name>\n\n`,
    );
  }
  out.write(`listening on ${server.url} (POST /v1/events, /v1/batch, /batch; GET /metrics, /healthz, /readyz)\n`);
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

async function withStore(config: Config, fn: (store: Store) => Promise<number>): Promise<number> {
  const store = await createStore(config.store);
  try {
    await store.migrate();
    return await fn(store);
  } finally {
    await store.close();
  }
}

async function keysCommand(store: Store, args: string[], flags: Flags, out: Writable, err: Writable): Promise<number> {
  const [sub, target] = args;
  switch (sub) {
    case 'create': {
      if (!flags.tenant || flags.tenant === 'true') {
        err.write('tally keys create: which tenant? e.g. tally keys create --tenant acme\n');
        return 2;
      }
      const { key, info } = await createApiKey(store.sql, flags.tenant, flags.name);
      out.write(`created ${info.id} for tenant "${info.tenantId}". The key (shown only now):\n\n    ${key}\n\n`);
      return 0;
    }
    case 'list': {
      const keys = await listApiKeys(store.sql, flags.tenant);
      out.write(
        table(
          ['id', 'tenant', 'prefix', 'name', 'created', 'revoked'],
          keys.map((k) => [k.id, k.tenantId, `${k.prefix}…`, k.name ?? '', k.createdAt, k.revokedAt ?? '']),
        ),
      );
      return 0;
    }
    case 'revoke': {
      if (!target) {
        err.write('tally keys revoke: which key? give its id (key_…) or prefix (tk_…)\n');
        return 2;
      }
      const n = await revokeApiKey(store.sql, target);
      if (n === 0) {
        err.write(`no live key with id or prefix "${target}"\n`);
        return 1;
      }
      out.write(`revoked ${target}\n`);
      return 0;
    }
    default:
      err.write('tally keys: create, list or revoke (see tally help)\n');
      return 2;
  }
}

async function tenantsCommand(
  store: Store,
  args: string[],
  flags: Flags,
  out: Writable,
  err: Writable,
): Promise<number> {
  const [sub, id] = args;
  const show = (v: unknown) => (v === null ? 'default' : String(v));
  if (sub === 'list') {
    const tenants = await listTenants(store.sql);
    out.write(
      table(
        ['id', 'name', 'unlisted', 'rate limit (events/s)'],
        tenants.map((t) => [t.id, t.name, unlisted(t.acceptUnlisted), show(t.rateLimit)]),
      ),
    );
    return 0;
  }
  if (sub === 'set' && id) {
    const settings: { acceptUnlisted?: boolean | null; rateLimit?: number | null } = {};
    if (flags.unlisted !== undefined) {
      if (!['accept', 'reject', 'default'].includes(flags.unlisted)) {
        err.write('--unlisted must be accept, reject or default\n');
        return 2;
      }
      settings.acceptUnlisted = flags.unlisted === 'default' ? null : flags.unlisted === 'accept';
    }
    if (flags['rate-limit'] !== undefined) {
      const v = flags['rate-limit'];
      const n = Number(v);
      if (v !== 'default' && !(Number.isInteger(n) && n >= 0)) {
        err.write('--rate-limit must be a whole number of events per second (0: unlimited) or default\n');
        return 2;
      }
      settings.rateLimit = v === 'default' ? null : n;
    }
    const t = await updateTenant(store.sql, id, settings);
    out.write(`tenant ${t.id}: unlisted ${unlisted(t.acceptUnlisted)}, rate limit ${show(t.rateLimit)}\n`);
    return 0;
  }
  err.write('tally tenants: list, or set <id> [--unlisted …] [--rate-limit …]\n');
  return 2;
}

function unlisted(accept: boolean | null): string {
  return accept === null ? 'default' : accept ? 'accept' : 'reject';
}
