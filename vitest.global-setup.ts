/**
 * One temporary directory per test run, removed when the run ends. Vitest ends its workers without
 * running their 'exit' handlers, so a data directory a worker makes for the whole process (chDB's, ~30
 * MB a test file) would otherwise stay behind in the system's temp directory after every run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'tally-run-'));
  // Workers are started after this, with this environment.
  process.env.TALLY_TEST_RUN_DIR = dir;
  return () => rmSync(dir, { recursive: true, force: true });
}
