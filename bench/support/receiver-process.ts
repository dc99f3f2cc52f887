/**
 * The test receiver (packages/node/test/support/receiver.ts) in its own process, so parsing the
 * batches does not take CPU from the SDK being measured. It counts only; the parent asks for the count
 * over IPC. Its default answer (200 with `{accepted, rejected: []}`) suits all three SDKs: Tally reads
 * the body, PostHog and Segment only look at the status.
 */
import { startReceiver } from '../../packages/node/test/support/receiver.js';
import { type CountReply, type CountRequest, type ReceiverReady, sendToParent } from './protocol.js';

const receiver = await startReceiver();
receiver.countOnly = true;

process.on('message', (message: CountRequest) => {
  if (message.type === 'count') {
    const reply: CountReply = { type: 'count', id: message.id, count: receiver.count };
    void sendToParent(reply).catch(() => undefined);
  }
});
// The parent closing the channel (or dying) is the signal to stop.
process.on('disconnect', () => {
  void receiver.close().finally(() => process.exit(0));
  // Keep-alive sockets from workers killed mid-request can hold close() open: do not wait for them.
  setTimeout(() => process.exit(0), 500).unref();
});

const ready: ReceiverReady = { type: 'ready', url: receiver.url };
await sendToParent(ready);
