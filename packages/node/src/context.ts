/**
 * Ambient context: who and what an event belongs to, carried across awaits by AsyncLocalStorage so
 * that `track()` deep inside a request handler or a task knows its tenant, user and request id.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { TrackContext } from '@tally/core';

export type { TrackContext };

// One storage for the process, not one per tracker: a Fastify plugin's request context must reach a
// tracker created elsewhere in the app.
const storage = new AsyncLocalStorage<Readonly<TrackContext>>();

/** Runs `fn` with `context` merged over the current one; nested calls refine, never replace. */
export function withContext<T>(context: TrackContext, fn: () => T): T {
  const parent = storage.getStore();
  return storage.run(Object.freeze(parent ? { ...parent, ...context } : { ...context }), fn);
}

/** The context in force here (already merged), or undefined outside any `withContext`. */
export function currentContext(): Readonly<TrackContext> | undefined {
  return storage.getStore();
}
