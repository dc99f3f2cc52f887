/**
 * How an SDK accounts for what it could not deliver: every dropped event counted under its error code,
 * and every problem handed to the app's `onError`, or, without one, warned about once per code (further
 * ones are in the counts only, so a flood of one problem cannot flood the log). Shared by the Node and
 * edge trackers; each says how it warns (process.emitWarning, console.warn) and what else it tells.
 */
import type { ErrorCode, TallyError } from './errors.js';

/** The event an error concerns, as `onError` receives it. */
export interface ErrorEvent {
  name: string;
  id?: string;
}

export type OnTrackerError = (error: TallyError, event?: ErrorEvent) => void;

export interface DropReporterOptions {
  onError: OnTrackerError | undefined;
  /** Without onError: the first error of each code (the message says further ones are counted only). */
  warn(error: TallyError, message: string): void;
  /** Told of every error before onError (the Node SDK's diagnostics channel). */
  observe?: (error: TallyError, event: ErrorEvent | undefined) => void;
}

export class DropReporter {
  /** Dropped events by the code of their error. */
  readonly dropped: Partial<Record<ErrorCode, number>> = {};
  private readonly warned = new Set<string>();

  constructor(private readonly options: DropReporterOptions) {}

  /** An event is gone for good: counted under the error's code, and reported. */
  drop(error: TallyError, name?: string, id?: string): void {
    this.dropped[error.code] = (this.dropped[error.code] ?? 0) + 1;
    this.report(error, name === undefined ? undefined : { name, id });
  }

  /** A problem to tell the app about (a drop, a spool write, a resend that found corrupt lines). */
  report(error: TallyError, event?: ErrorEvent): void {
    this.options.observe?.(error, event);
    const onError = this.options.onError;
    if (onError) {
      try {
        onError(error, event);
      } catch {
        // A failing error hook must not turn into a failing track(); the counters still tell.
      }
    } else if (!this.warned.has(error.code)) {
      this.warned.add(error.code);
      this.options.warn(error, `${error.message} (further ${error.code} are counted in stats() only)`);
    }
  }
}
