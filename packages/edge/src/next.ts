/**
 * Next.js: route handlers and server actions must answer at once, and Next keeps the function alive after
 * the response for what is handed to `after()` (from `next/server`). `trackAfter` tracks and hands the
 * tracker's flush to `after`, so an event costs the response nothing. `after` is passed in rather than
 * imported, so this package does not depend on Next.
 */
import type { Catalog } from '@tally/core';
import type { EdgeTracker } from './tracker.js';

/** Next.js's `after` (`import { after } from 'next/server'`). */
export type After = (task: () => unknown) => void;

/** A `track` for route handlers and server actions: records the event now, delivers it after the response. */
export function trackAfter<C extends Catalog>(tracker: EdgeTracker<C>, after: After): EdgeTracker<C>['track'] {
  return ((...args: Parameters<EdgeTracker<C>['track']>) => {
    tracker.track(...args);
    try {
      // Every call schedules a flush; the first takes everything queued, the others find little or nothing.
      after(() => tracker.flush());
    } catch {
      // Outside a request (at build time, in a script), after() throws: the event stays queued for the
      // next flush, and track() keeps its promise of never throwing.
    }
  }) as EdgeTracker<C>['track'];
}
