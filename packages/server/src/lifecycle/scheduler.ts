/**
 * Runs the lifecycle jobs on cron schedules (UTC) inside `tally serve`. A run missed while no server
 * was up (the last success is older than the schedule's previous slot) is caught up at start. Runs of
 * one job never overlap here, and the job lock keeps other processes out.
 */
import { TallyConfigError } from '@tally/core';
import { Cron } from 'croner';
import { lastSuccess } from '@tally/store';
import { type JobContext, type JobName, type JobOutcome, runJob } from './jobs.js';

export const DEFAULT_SCHEDULES: Record<JobName, string> = {
  archive: '0 2 * * *',
  cleanup: '0 3 * * *',
  stats: '0 4 * * *',
  'snapshot-prune': '0 5 * * 0',
  rollups: '10 * * * *',
};

export interface Scheduler {
  /** Resolves when the catch-up runs started at boot are done. */
  readonly caughtUp: Promise<void>;
  stop(): Promise<void>;
}

export function checkSchedule(name: string, expr: string): void {
  try {
    new Cron(expr, { paused: true, timezone: 'UTC' }).stop();
  } catch (e) {
    throw new TallyConfigError(`schedule for ${name} "${expr}" is not a cron expression: ${(e as Error).message}`);
  }
}

export function startScheduler(
  ctx: JobContext,
  schedules: Record<JobName, string>,
  onRun?: (name: JobName, outcome: JobOutcome) => void,
): Scheduler {
  const running = new Set<Promise<void>>();
  let stopped = false;
  // Nothing a run does may reject or throw out of here: a cron callback's rejection would be unhandled
  // (croner does not wait for it), and a failure is an outcome to report, not a crash.
  const report = (name: JobName, outcome: JobOutcome) => {
    try {
      onRun?.(name, outcome);
    } catch {
      // The reporting callback failing must not stop the schedule.
    }
  };
  const failed = (e: unknown): JobOutcome => ({ outcome: 'failed', error: (e as Error)?.message ?? String(e) });
  const run = (name: JobName): Promise<void> => {
    const p = runJob(name, ctx).then(
      (o) => report(name, o),
      (e: unknown) => report(name, failed(e)),
    );
    running.add(p);
    void p.finally(() => running.delete(p));
    return p;
  };
  const crons = (Object.keys(schedules) as JobName[]).map(
    (name) =>
      [
        name,
        new Cron(
          schedules[name],
          { timezone: 'UTC', protect: true, catch: (e: unknown) => report(name, failed(e)) },
          () => run(name),
        ),
      ] as const,
  );
  const caughtUp = (async () => {
    for (const [name, cron] of crons) {
      if (stopped) return;
      try {
        const previous = cron.previousRuns(1)[0];
        const last = await lastSuccess(ctx.store.sql, name);
        if (previous && (last === undefined || last < previous.getTime())) {
          ctx.onProgress?.(
            last === undefined
              ? `${name}: first run on this database, running now`
              : `${name}: missed the run of ${previous.toISOString()}, running now`,
          );
          await run(name);
        }
      } catch (e) {
        // The database is away at start: the job's regular schedule tries again.
        report(name, failed(e));
      }
    }
  })();
  return {
    caughtUp,
    async stop() {
      stopped = true;
      for (const [, cron] of crons) cron.stop();
      await caughtUp.catch(() => undefined);
      await Promise.allSettled([...running]);
    },
  };
}
