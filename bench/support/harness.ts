/** What every benchmark's run does alike: checks, CPU accounting, the table, and the run's last lines. */
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';

/** A failed check fails the benchmark: a fast wrong answer is no figure. */
export function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(message);
}

/** Busy CPU seconds of the whole machine (all cores). */
export function machineBusy(): number {
  let ms = 0;
  for (const c of cpus()) ms += c.times.user + c.times.nice + c.times.sys + c.times.irq;
  return ms / 1000;
}

export interface CpuTimed<T> {
  result: T;
  seconds: number;
  /** This process (and whatever runs in it, such as PGlite or Tally's jobs). */
  nodeCpu: number;
  /** The rest of the machine: Postgres, mostly. */
  otherCpu: number;
}

/** Wall time of `fn`, and the CPU this process and the rest of the machine spent meanwhile. */
export async function cpuTimed<T>(fn: () => Promise<T>): Promise<CpuTimed<T>> {
  const cpu0 = process.cpuUsage();
  const busy0 = machineBusy();
  const t0 = performance.now();
  const result = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const nodeCpu = (cpu.user + cpu.system) / 1e6;
  return { result, seconds, nodeCpu, otherCpu: Math.max(0, machineBusy() - busy0 - nodeCpu) };
}

/**
 * Prints `header` and `rows` as aligned columns, the `leftAligned` ones padded on the right, the rest
 * (figures) on the left. A row of one cell is a section title, printed as it is: it does not widen the
 * first column.
 */
export function printTable(header: string[], rows: string[][], leftAligned: readonly number[] = [0]): void {
  const widths = header.map((h, i) =>
    Math.max(h.length, ...rows.filter((r) => r.length > 1).map((r) => r[i]?.length ?? 0)),
  );
  const line = (cells: string[]) =>
    cells.map((c, i) => (leftAligned.includes(i) ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(row.length === 1 ? row[0] : line(row));
}

/**
 * Runs `main`, records what it threw as a failure, cleans up, then reports whatever was measured (a
 * failed run still prints its JSON line, with nulls) and sets the exit code from `failures`.
 */
export async function runBench(parts: {
  main: () => Promise<void>;
  cleanup: () => void | Promise<void>;
  report: () => void;
  failures: string[];
}): Promise<void> {
  try {
    await parts.main();
  } catch (error) {
    parts.failures.push(error instanceof Error ? error.message : String(error));
  } finally {
    await parts.cleanup();
  }
  parts.report();
  process.exitCode = parts.failures.length > 0 ? 1 : 0;
}

/** A variant's runs so far; the best of them (by throughput) is the one reported. */
export interface Outcome<V, M extends { eps: number }> {
  variant: V;
  runs: M[];
  best?: M;
  error?: string;
}

/**
 * Runs a variant once more and keeps its best run; a failure is recorded (in the outcome and in
 * `failures`) and ends that variant, so its next repetitions are skipped rather than failing again.
 * `describe` is the progress line's figures for a run.
 */
export async function measureOnce<V extends { key: string }, M extends { eps: number }>(
  outcome: Outcome<V, M>,
  failures: string[],
  run: () => Promise<M>,
  describe: (m: M) => string,
): Promise<void> {
  if (outcome.error) return;
  const { key } = outcome.variant;
  try {
    const m = await run();
    outcome.runs.push(m);
    if (!outcome.best || m.eps > outcome.best.eps) outcome.best = m;
    console.error(`  ${key}: ${describe(m)}`);
  } catch (error) {
    outcome.error = error instanceof Error ? error.message : String(error);
    failures.push(`${key}: ${outcome.error}`);
    console.error(`  ${key}: FAILED ${outcome.error}`);
  }
}
