/**
 * Ingestion first on a one-connection engine (PGlite): its statements run one at a time, first come
 * first served, so a dashboard refreshing a few queries would otherwise take turns with the writer batch
 * for batch, and a 300 ms query would cap ingestion at one batch per 300 ms. Here writes and queries
 * share one turn: a waiting write always goes before a waiting query, queries run one at a time, and a
 * query that has waited `maxQueryWaitMs` goes next so that a store under constant writes still answers.
 * A query already running is not interrupted (PGlite cannot cancel a statement); what the writer cannot
 * store meanwhile waits in its queue, bounded and spooled as always.
 */
import type { Store } from './types.js';

interface Waiter {
  write: boolean;
  since: number;
  go: () => void;
}

export function writesFirst(store: Store, options: { maxQueryWaitMs?: number } = {}): Store {
  const maxQueryWaitMs = options.maxQueryWaitMs ?? 2000;
  const waiting: Waiter[] = [];
  let busy = false;

  const next = () => {
    if (busy || waiting.length === 0) return;
    const overdue = waiting.find((w) => !w.write && performance.now() - w.since >= maxQueryWaitMs);
    const chosen = overdue ?? waiting.find((w) => w.write) ?? (waiting[0] as Waiter);
    waiting.splice(waiting.indexOf(chosen), 1);
    busy = true;
    chosen.go();
  };

  async function turn<T>(write: boolean, fn: () => Promise<T>): Promise<T> {
    await new Promise<void>((go) => {
      waiting.push({ write, since: performance.now(), go });
      next();
    });
    try {
      return await fn();
    } finally {
      busy = false;
      next();
    }
  }

  return {
    ...store,
    insertEvents: (rows) => turn(true, () => store.insertEvents(rows)),
    insertRequestLogs: (rows) => turn(true, () => store.insertRequestLogs(rows)),
    query: (tenantId, query, options) => turn(false, () => store.query(tenantId, query, options)),
  };
}
