import { productCatalog } from '@tally/core';
import { createTracker, createMemorySink } from '@tally/node';
const N = 100_000;
const props = { taskId: 'abc', taskType: 'render', priority: 3 };
for (let round = 0; round < 6; round++) {
  const tr2 = createTracker({ catalog: productCatalog, sink: createMemorySink(), spool: false, overflow: 'drop-oldest', maxQueueEvents: N, flushIntervalMs: 1e9, maxBatchEvents: N+1 });
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) tr2.track('task_created', props);
  let t1 = process.hrtime.bigint();
  console.log('track us', Number(t1 - t0) / 1e3 / N, tr2.stats().queued);
  await tr2.shutdown();
}
