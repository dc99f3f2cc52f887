export { createNatsSink, type NatsSinkOptions } from './sink.js';
export {
  HEADER_CONTENT_TYPE,
  HEADER_ORIGIN,
  HEADER_RECEIVED_AT,
  HEADER_TENANT,
  type MessageHeaders,
  readMessage,
} from './message.js';
export { batchMessages, messageId, publishBatch, subjectFor } from './publisher.js';
export { checkStream, ensureStream } from './stream.js';
export { createNatsTransport, type NatsTransport, type NatsTransportOptions } from './transport.js';
// Re-exported so the server (doctor) needs no NATS packages of its own.
export { jetstream, jetstreamManager } from '@nats-io/jetstream';
export { connect, headers } from '@nats-io/transport-node';
