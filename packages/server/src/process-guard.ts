/**
 * The last line of defence of `tally serve`: what no code path handled (a promise rejected with nobody
 * waiting, an exception thrown from a callback) is logged with its stack and counted in
 * `tally_internal_errors_total{kind}`. It does not hide the bug, and it treats the two kinds apart:
 *
 * - An unhandled rejection means a promise failed and nobody looked. Its own work is lost, but the
 *   rejection did not unwind anyone's stack half-way, so the process goes on serving (what Node did
 *   before v15 made it fatal by default; here it is counted and logged loudly instead).
 * - An uncaught exception unwound a stack at an unknown point: state may be half-updated (a counter,
 *   a queue, a lock). Node's advice is that the process must not resume normal operation, so the server
 *   drains (stops accepting, lets the writer store or spool what it holds) within a deadline and exits
 *   with status 70 (EX_SOFTWARE) for the supervisor (systemd, Kubernetes) to restart it.
 *
 * Installed by the CLI only (`startServer(config, { guardProcess: true })`): code that embeds the server
 * in its own process keeps its own policy, and tests keep vitest's, which fails a run on either.
 */
import type { Logger } from 'pino';

/** Exit status after an uncaught exception: EX_SOFTWARE, "internal software error" (sysexits.h). */
export const EXIT_INTERNAL_ERROR = 70;

export interface ProcessGuardOptions {
  log: Logger;
  /** Counts one caught error by kind (`tally_internal_errors_total`). */
  count: (kind: 'unhandledRejection' | 'uncaughtException') => void;
  /** Stops the server cleanly: stop accepting, drain, close the store. */
  drain: () => Promise<void>;
  /** How long the drain may take before the process exits anyway. Default 20 s. */
  drainTimeoutMs?: number;
  /** Default `process.exit`. */
  exit?: (code: number) => void;
}

export interface ProcessGuard {
  /** Removes the handlers (after a clean shutdown); a no-op once an uncaught exception began the exit. */
  uninstall(): void;
}

export function installProcessGuard(options: ProcessGuardOptions): ProcessGuard {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let exiting = false;

  const onRejection = (reason: unknown) => {
    options.count('unhandledRejection');
    options.log.error(
      { err: reason, kind: 'unhandledRejection' },
      'unhandled rejection (a bug: please report it with this stack); the server goes on serving',
    );
  };

  const onException = (error: Error, origin: string) => {
    options.count('uncaughtException');
    if (exiting) {
      options.log.fatal({ err: error, kind: 'uncaughtException', origin }, 'uncaught exception while draining');
      return;
    }
    exiting = true;
    // Also on stderr, plainly: the log may be what failed (stdout closed under `tally serve | …`).
    try {
      process.stderr.write(
        `tally: uncaught exception (${error?.message}): draining, then exiting ${EXIT_INTERNAL_ERROR}\n`,
      );
    } catch {
      // Nowhere left to say it.
    }
    options.log.fatal(
      { err: error, kind: 'uncaughtException', origin },
      'uncaught exception (a bug: please report it with this stack); the process state is unknown: draining, then exiting',
    );
    const deadline = setTimeout(() => {
      options.log.fatal(`drain did not finish within ${options.drainTimeoutMs ?? 20_000} ms; exiting`);
      exit(EXIT_INTERNAL_ERROR);
    }, options.drainTimeoutMs ?? 20_000);
    options.drain().then(
      () => {
        clearTimeout(deadline);
        exit(EXIT_INTERNAL_ERROR);
      },
      (e: unknown) => {
        clearTimeout(deadline);
        options.log.fatal({ err: e }, 'drain failed; exiting');
        exit(EXIT_INTERNAL_ERROR);
      },
    );
  };

  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return {
    uninstall() {
      if (exiting) return;
      process.off('unhandledRejection', onRejection);
      process.off('uncaughtException', onException);
    },
  };
}
