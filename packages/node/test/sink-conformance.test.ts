/**
 * The Sink conformance suite (test/support/sink-suite.ts) on the SDK's own sinks. The NATS sink runs it
 * in packages/nats.
 */
import { PassThrough } from 'node:stream';
import type { TallyEvent } from '@tally/core';
import { createConsoleSink, createHttpSink, createMemorySink } from '../src/index.js';
import { startReceiver } from './support/receiver.js';
import { type Harness, sinkConformance } from './support/sink-suite.js';

const harnesses: Harness[] = [
  {
    name: 'memory',
    async make() {
      const sink = createMemorySink();
      return { sink, received: async () => [...sink.events], dispose: async () => {} };
    },
  },
  {
    name: 'console',
    async make() {
      const stream = new PassThrough();
      let text = '';
      stream.on('data', (d) => (text += d));
      const sink = createConsoleSink({ stream });
      const received = async () =>
        text
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as TallyEvent);
      return { sink, received, dispose: async () => {} };
    },
  },
  {
    name: 'http',
    async make() {
      const receiver = await startReceiver();
      const sink = createHttpSink({ url: `${receiver.url}/v1/events` });
      return {
        sink,
        received: async () => receiver.events as unknown as TallyEvent[],
        dispose: () => receiver.close(),
      };
    },
  },
];

for (const h of harnesses) sinkConformance(h);
