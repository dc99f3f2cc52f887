/**
 * One SDK, one measurement, one fresh process (so RSS and JIT state are not shared between libraries).
 * The parent sends a RunRequest and gets a PhaseResult back; receiver counts come through the parent.
 *
 * Every library gets the same work: `task_created` with the same three properties for the same user,
 * batches of 100, no compression (Segment cannot compress, so nobody does), a 1 s flush interval and
 * queue limits far above anything this benchmark queues, so a missing event is a real loss.
 */
import { Analytics } from '@segment/analytics-node';
import { productCatalog } from '@tally/core';
import { createHttpSink, createTracker } from '@tally/node';
import { PostHog } from 'posthog-node';
import { type CountReply, type PhaseResult, type RunRequest, sendToParent } from './protocol.js';

const BATCH = 100;
const FLUSH_INTERVAL_MS = 1000;
const QUEUE_LIMIT = 1_000_000;
/** Calls per chunk; the event loop gets one turn between chunks, as it would between requests in an app. */
const CHUNK = 1000;
/** No new event at the receiver for this long means the rest is not coming (longer than any retry delay used). */
const STALL_MS = 8000;
const MB = 1024 * 1024;

// Same caller-side cost for every library: pre-made id strings, one small object literal per call.
const TASK_IDS = Array.from({ length: 1024 }, (_, i) => `task_${i.toString(36).padStart(6, '0')}`);
const USER_ID = 'user_42';

interface Client {
  track(i: number): void;
  /** The library's own graceful stop: sends what is left and releases sockets and timers. */
  close(): Promise<void>;
  errors(): number;
  note?(): string | undefined;
}

function createClient(req: RunRequest): Client {
  let errors = 0;
  switch (req.lib) {
    case 'tally': {
      const tracker = createTracker({
        catalog: productCatalog,
        sink: createHttpSink({ url: `${req.url}/v1/events`, writeKey: 'bench', gzipMinBytes: false }),
        spool: req.spoolDir,
        maxQueueEvents: QUEUE_LIMIT,
        // The byte bound is Tally's own estimate; keep it from being the limit that bites first.
        maxQueueBytes: 2048 * MB,
        maxBatchEvents: BATCH,
        flushIntervalMs: FLUSH_INTERVAL_MS,
        onError: () => void errors++,
      });
      return {
        track: (i) =>
          tracker.track(
            'task_created',
            { taskId: TASK_IDS[i & 1023] as string, taskType: 'render', priority: i & 7 },
            { userId: USER_ID },
          ),
        close: async () => void (await tracker.shutdown({ timeoutMs: 30_000 })),
        errors: () => errors,
        note: () => {
          const s = tracker.stats();
          const dropped = Object.values(s.dropped).reduce((a, b) => a + (b ?? 0), 0);
          return s.spooled || dropped || s.retries
            ? `tally stats: spooled ${s.spooled}, dropped ${dropped} ${JSON.stringify(s.dropped)}, retries ${s.retries}`
            : undefined;
        },
      };
    }
    case 'posthog': {
      const posthog = new PostHog('phc_bench', {
        host: req.url,
        flushAt: BATCH,
        maxBatchSize: BATCH,
        flushInterval: FLUSH_INTERVAL_MS,
        // Its default (10 000) drops the oldest events silently once the queue is full.
        maxQueueSize: QUEUE_LIMIT,
        disableCompression: true,
      });
      posthog.on('error', () => void errors++);
      return {
        track: (i) =>
          posthog.capture({
            distinctId: USER_ID,
            event: 'task_created',
            properties: { taskId: TASK_IDS[i & 1023], taskType: 'render', priority: i & 7 },
          }),
        close: () => posthog.shutdown(30_000),
        errors: () => errors,
      };
    }
    case 'segment': {
      // Segment has no queue bound: a full batch is sent at once, however many requests are open.
      const analytics = new Analytics({
        writeKey: 'bench',
        host: req.url,
        path: '/v1/batch',
        flushAt: BATCH,
        flushInterval: FLUSH_INTERVAL_MS,
      });
      analytics.on('error', () => void errors++);
      return {
        track: (i) =>
          analytics.track({
            userId: USER_ID,
            event: 'task_created',
            properties: { taskId: TASK_IDS[i & 1023], taskType: 'render', priority: i & 7 },
          }),
        close: () => analytics.closeAndFlush({ timeout: 30_000 }),
        errors: () => errors,
      };
    }
  }
}

// ---------------------------------------------------------------- receiver count, through the parent

let nextId = 0;
const waiting = new Map<number, (count: number) => void>();
process.on('message', (message: RunRequest | CountReply) => {
  if (message.type === 'count') {
    waiting.get(message.id)?.(message.count);
    waiting.delete(message.id);
  } else if (message.type === 'run') {
    run(message).then(
      async (result) => {
        await sendToParent(result);
        // The rss run abandons its queued events on purpose: a normal exit would have Tally write them to
        // the spool and the others try to send them, for nothing.
        if (message.phase === 'rss') process.kill(process.pid, 'SIGKILL');
        else process.exit(0);
      },
      (error: unknown) => {
        console.error(`[${message.lib}/${message.phase}]`, error);
        process.exit(1);
      },
    );
  }
});
process.on('disconnect', () => process.exit(1));

function receiverCount(): Promise<number> {
  const id = nextId++;
  return new Promise((resolve) => {
    waiting.set(id, resolve);
    void sendToParent({ type: 'count', id });
  });
}

/** Polls until the receiver has `target` events, or nothing arrived for STALL_MS; returns the last count. */
async function waitForCount(target: number, pollMs: number): Promise<number> {
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const count = await receiverCount();
    if (count >= target) return count;
    if (count !== last) {
      last = count;
      lastChange = performance.now();
    } else if (performance.now() - lastChange > STALL_MS) {
      return count;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/** Makes `n` calls in chunks with a loop turn between them; returns the ms spent inside the calls. */
async function trackChunked(client: Client, n: number): Promise<number> {
  let inside = 0;
  for (let done = 0; done < n;) {
    const end = Math.min(done + CHUNK, n);
    const t0 = performance.now();
    for (let i = done; i < end; i++) client.track(i);
    inside += performance.now() - t0;
    done = end;
    await turn();
  }
  return inside;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function collectGarbage(): void {
  if (!globalThis.gc) throw new Error('run with --expose-gc');
  // Twice: the first pass can leave objects that only die once their finalizers or weak refs ran.
  globalThis.gc();
  globalThis.gc();
}

// ---------------------------------------------------------------- the three measurements

async function run(req: RunRequest): Promise<PhaseResult> {
  const client = createClient(req);
  const base = await receiverCount();
  const result: PhaseResult = { type: 'result', lib: req.lib, phase: req.phase, n: req.n, value: null, sdkErrors: 0 };

  // Warm-up for every phase: JIT, sockets and lazily built state exist before anything is measured.
  await trackChunked(client, req.warmup);
  await waitForCount(base + req.warmup, 20);

  if (req.phase === 'rss') {
    collectGarbage();
    const before = process.memoryUsage();
    for (let i = 0; i < req.n; i++) client.track(i);
    // PostHog and Segment enqueue in promise callbacks: let those run (they are microtasks, not a loop
    // turn, so no socket sees a byte) so that what is measured is what each SDK holds for the events.
    for (let i = 0; i < 1000; i++) await null;
    collectGarbage();
    const after = process.memoryUsage();
    result.value = (after.rss - before.rss) / MB;
    result.heapMb = (after.heapUsed - before.heapUsed) / MB;
    result.sdkErrors = client.errors();
    return result;
  }

  // Measured rounds, each one over when the receiver has all its events (so a slow sender's backlog
  // never spills into the next round); the figure is the median round.
  const rounds: number[] = [];
  let sent = req.warmup;
  let lost = false;
  for (let round = 0; round < req.rounds && !lost; round++) {
    if (req.phase === 'track') {
      const insideMs = await trackChunked(client, req.n);
      rounds.push((insideMs * 1000) / req.n);
      sent += req.n;
      lost = (await waitForCount(base + sent, 20)) < base + sent;
    } else {
      const t0 = performance.now();
      await trackChunked(client, req.n);
      sent += req.n;
      const count = await waitForCount(base + sent, 2);
      // A library that lost events never reaches the target, and the wait ended on a stall: no rate.
      lost = count < base + sent;
      rounds.push(req.n / ((performance.now() - t0) / 1000));
    }
  }
  result.rounds = rounds;
  result.value = lost ? null : median(rounds);
  await client.close();
  result.delivered = (await receiverCount()) - base;
  result.expected = sent;
  result.sdkErrors = client.errors();
  const note = client.note?.();
  if (note) result.note = note;
  return result;
}
