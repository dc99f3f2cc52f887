/**
 * The SDK's NATS sink: a service publishes its batches straight to JetStream instead of HTTP. A batch
 * is delivered once the stream has stored it; the collector's consumer stores it from there.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { ErrorCodes, type SendResult, type Sink, TallyError } from '@tally/core';
import { publishBatch } from './publisher.js';

export interface NatsSinkOptions {
  servers: string[] | string;
  /** Subjects `<prefix>.analytics.<type>`; must match the server's `TALLY_NATS_PREFIX`. Default `tally`. */
  prefix?: string;
  /** Publish ack timeout in ms. Default 10 000. */
  timeoutMs?: number;
  /** Use an existing connection instead of opening one (it is not closed by the sink). */
  connection?: NatsConnection;
}

export function createNatsSink(options: NatsSinkOptions): Sink {
  const prefix = options.prefix ?? 'tally';
  const timeoutMs = options.timeoutMs ?? 10_000;
  // Connected lazily, so creating a tracker never waits on the network (and never throws for it).
  let nc: Promise<NatsConnection> | undefined;
  const connection = () =>
    (nc ??= options.connection
      ? Promise.resolve(options.connection)
      : connect({ servers: options.servers, maxReconnectAttempts: -1, name: 'tally-sdk' }).catch((e: unknown) => {
          nc = undefined;
          throw e;
        }));
  return {
    name: 'nats',
    async send(events): Promise<SendResult> {
      try {
        const c = await connection();
        await publishBatch(jetstream(c), prefix, events, c.info?.max_payload ?? 1024 * 1024, timeoutMs);
        return { ok: true };
      } catch (e) {
        return {
          ok: false,
          disposition: 'retry',
          error: new TallyError(
            ErrorCodes.SINK_RETRYABLE,
            `NATS publish failed: ${(e as Error).message}`,
            {},
            { cause: e },
          ),
        };
      }
    },
    async close() {
      if (nc && !options.connection) {
        const c = await nc.catch(() => undefined);
        await c?.drain().catch(() => undefined);
      }
      nc = undefined;
    },
  };
}
