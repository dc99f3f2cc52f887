export type { AbortSignalLike, PlatformAbortSignal } from './abort.js';
export * from './backoff.js';
export * from './catalog.js';
export * from './csv.js';
export { productCatalog } from './catalogs/product.js';
export { supportBotCatalog } from './catalogs/support-bot.js';
export * from './envelope.js';
export * from './history.js';
export * from './errors.js';
export * from './http-log.js';
export { type BodyParts, type RedactedBody, Redactor, type RedactorOptions, withheld } from './redact.js';
export * from './batcher.js';
export * from './delivery.js';
export * from './drop-report.js';
export * from './finish.js';
export * from './pii.js';
export { type Sanitized, type SanitizeOptions, sanitizeProperties, utf8Length } from './sanitize.js';
export * from './schema.js';
export {
  type BatchEndpointOptions,
  batchEndpoint,
  batchHeaders,
  type SendOptions,
  type SendResult,
  type Sink,
} from './sink.js';
export { canonicalTime, isoTime, parseTime } from './time.js';
export * from './uuidv7.js';
export * from './request-log.js';
export * from './analytics-store.js';
export * from './detail-store.js';
export * from './transport.js';
export * from './query/index.js';
