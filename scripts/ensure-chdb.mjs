#!/usr/bin/env node
/**
 * Installs chDB (the current ClickHouse engine in-process, npm `chdb`) for the tests and benchmarks when
 * it is missing. It is not in package.json: its package lists a native library per platform as optional
 * dependencies, the registry these machines reach serves only Linux x64's, and a lockfile without the
 * others fails `npm ci`. So it is installed beside the lockfile, unsaved, before `npm test` (pretest).
 * Without it the chDB half of the ClickHouse tests is skipped with a warning (CI=true fails them).
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';

const VERSION = '3.4.0';
const require = createRequire(import.meta.url);
try {
  require.resolve('chdb');
} catch {
  console.error(`installing chdb@${VERSION} (the ClickHouse engine for the tests; ~550 MB, not saved)`);
  try {
    execFileSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', `chdb@${VERSION}`], { stdio: 'inherit' });
  } catch (error) {
    console.error(`could not install chdb: ${error.message}; its tests will be skipped (CI=true fails them)`);
  }
}
