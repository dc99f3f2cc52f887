/**
 * Where `tally serve` keeps what it could not store, beside the writer's own files (its dead letters and
 * pending spools, named by @tally/store): the NATS consumer's dead letters.
 */
import { join } from 'node:path';

export function natsDeadLetterPath(spoolDir: string): string {
  return join(spoolDir, 'nats-dead-letters.jsonl');
}
