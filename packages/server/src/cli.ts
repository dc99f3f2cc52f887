/**
 * The `tally` command. Each subcommand is a function returning an exit code; `main` only dispatches,
 * so commands are testable in-process.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { isTallyError } from '@tally/core';
import { VERSION } from '@tally/node';
import { createStore, createWriter } from '@tally/store';
import { type Config, loadConfig, parseArgs } from './config.js';
import { demo } from './demo.js';

const HELP = `tally ${VERSION}: self-hosted event tracking and request logging

Usage: tally <command> [options]

Commands:
  demo              track a sample task pipeline and print every event and the final counts
  migrate           create or upgrade the database schema
  replay <file>     re-ingest a dead-letter or pending spool file (idempotent)
  version           print the version
  help              show this help

Options (or environment variables):
  --database-url URL   DATABASE_URL     Postgres server; unset: embedded PGlite in the data directory
  --data-dir DIR       TALLY_DATA_DIR   data directory (default ./.tally)
  --schema NAME        TALLY_DB_SCHEMA  database schema (default tally)
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
