/**
 * The turn-taking of writesFirst, on its own: which call runs next when writes and queries wait. (What it
 * does for ingestion on a real PGlite is measured by bench/query-ingest.bench.ts.)
 */
import { describe, expect, it } from 'vitest';
import type { Store } from '../src/types.js';
import { writesFirst } from '../src/write-first.js';

/** A Store whose writes and queries each wait for `release()`: the test decides when each ends. */
function recordingStore() {
  const started: string[] = [];
  const pending: (() => void)[] = [];
  const hold = (label: string) =>
    new Promise<never>((resolve) => {
      started.push(label);
      pending.push(() => resolve(undefined as never));
    });
  const store = {
    insertEvents: (rows: readonly { id: string }[]) => hold(`write ${rows[0]?.id}`),
    insertRequestLogs: (rows: readonly { id: string }[]) => hold(`logs ${rows[0]?.id}`),
    query: (tenantId: string) => hold(`query ${tenantId}`),
  } as unknown as Store;
  const release = async () => {
    pending.shift()?.();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { store, started, release };
}

const row = (id: string) => [{ id }] as never;

describe('writesFirst', () => {
  it('runs one call at a time, a waiting write before a waiting query', async () => {
    const { store, started, release } = recordingStore();
    const gated = writesFirst(store);
    void gated.query('q1', {} as never);
    void gated.query('q2', {} as never);
    void gated.insertEvents(row('w1'));
    void gated.insertRequestLogs(row('l1'));
    await new Promise((r) => setTimeout(r, 0));
    expect(started).toEqual(['query q1']);
    await release();
    expect(started).toEqual(['query q1', 'write w1']);
    await release();
    expect(started).toEqual(['query q1', 'write w1', 'logs l1']);
    await release();
    expect(started).toEqual(['query q1', 'write w1', 'logs l1', 'query q2']);
    await release();
  });

  it('lets a query that waited past maxQueryWaitMs go before further writes', async () => {
    const { store, started, release } = recordingStore();
    const gated = writesFirst(store, { maxQueryWaitMs: 20 });
    void gated.insertEvents(row('w1'));
    void gated.query('q1', {} as never);
    void gated.insertEvents(row('w2'));
    await new Promise((r) => setTimeout(r, 30));
    await release();
    expect(started).toEqual(['write w1', 'query q1']);
    await release();
    expect(started).toEqual(['write w1', 'query q1', 'write w2']);
    await release();
  });

  it('passes results and errors through, and frees the turn after an error', async () => {
    const calls: string[] = [];
    const store = {
      insertEvents: async () => {
        calls.push('write');
        throw new Error('disk full');
      },
      query: async () => {
        calls.push('query');
        return { rows: [] };
      },
    } as unknown as Store;
    const gated = writesFirst(store);
    await expect(gated.insertEvents(row('w'))).rejects.toThrow('disk full');
    await expect(gated.query('t', {} as never)).resolves.toEqual({ rows: [] });
    expect(calls).toEqual(['write', 'query']);
  });
});
