#!/usr/bin/env node
/**
 * Runs benchmarks: `node bench/run.mjs [name...]` runs bench/<name>.bench.ts for each name given, or
 * every bench/*.bench.ts when none is, one after the other under tsx, with this process's environment
 * (BENCH_QUICK=1 for a smoke run) and output streamed as it comes. Exits non-zero if any benchmark did.
 * The runner's own lines go to stderr, so each benchmark's JSON stays the last line of its stdout.
 *
 *   npm run bench                        all of them
 *   npm run bench -- sdk                 one
 *   BENCH_QUICK=1 npm run bench          all, as CI runs them
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const benchDir = dirname(fileURLToPath(import.meta.url));
const root = dirname(benchDir);
const SUFFIX = '.bench.ts';

const available = readdirSync(benchDir)
  .filter((f) => f.endsWith(SUFFIX))
  .map((f) => f.slice(0, -SUFFIX.length))
  .sort();

// Accept `sdk`, `sdk.bench.ts` and `bench/sdk.bench.ts` alike.
const names = process.argv.slice(2).map((arg) => basename(arg).replace(/\.bench\.ts$/, ''));
const unknown = names.filter((n) => !existsSync(join(benchDir, `${n}${SUFFIX}`)));
if (unknown.length > 0) {
  console.error(`unknown benchmark: ${unknown.join(', ')}; available: ${available.join(', ') || '(none)'}`);
  process.exit(2);
}
const selected = names.length > 0 ? names : available;
if (selected.length === 0) {
  console.error(`no bench/*${SUFFIX} files`);
  process.exit(2);
}

/** The benchmark being run, so an interrupt reaches it (and it can kill its own children) first. */
let current;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (current && current.exitCode === null) current.kill(signal);
    else process.exit(130);
  });
}

const failed = [];
for (const name of selected) {
  console.error(`\n=== bench ${name}${process.env.BENCH_QUICK === '1' ? ' (quick)' : ''}`);
  const started = Date.now();
  current = spawn(process.execPath, ['--import', 'tsx', join(benchDir, `${name}${SUFFIX}`)], {
    cwd: root,
    env: process.env,
    stdio: 'inherit',
  });
  const { code, signal } = await new Promise((resolve) => {
    current.once('error', (error) => {
      console.error(`cannot start ${name}: ${error.message}`);
      resolve({ code: 1, signal: null });
    });
    current.once('exit', (code, signal) => resolve({ code, signal }));
  });
  current = undefined;
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (code === 0) {
    console.error(`=== bench ${name}: ok in ${seconds} s`);
  } else {
    console.error(`=== bench ${name}: FAILED (${signal ?? `exit ${code}`}) after ${seconds} s`);
    failed.push(name);
    if (signal === 'SIGINT' || signal === 'SIGTERM') break;
  }
}

if (failed.length > 0) {
  console.error(`\nfailed: ${failed.join(', ')}`);
  process.exit(1);
}
