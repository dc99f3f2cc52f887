/** The product events of a task-running AI app (uploads, a task queue with providers, RAG queries). */
import { defineCatalog } from '../catalog.js';
import { t } from '../schema.js';

const taskId = t.string({ maxLength: 128, description: 'The task this event concerns' });
const errorCode = t.string({ maxLength: 64 });
const errorMessage = t.string({ maxLength: 500 });

export const productCatalog = defineCatalog({
  user_signed_up: {
    description: 'A user created an account.',
    properties: {
      method: t.enum(['email', 'google', 'github', 'sso', 'magic_link']),
      plan: t.string(),
      referrer: t.string(),
    },
    required: ['method'],
  },
  asset_uploaded: {
    description: 'A file was uploaded and stored.',
    properties: {
      assetId: t.string(),
      kind: t.enum(['image', 'video', 'audio', 'document', 'other']),
      bytes: t.integer({ minimum: 0 }),
      mimeType: t.string(),
    },
    required: ['assetId', 'kind', 'bytes'],
  },
  task_created: {
    properties: { taskId, taskType: t.string(), priority: t.integer(), source: t.string() },
    required: ['taskId', 'taskType'],
  },
  task_enqueued: {
    properties: { taskId, queue: t.string(), delayMs: t.integer({ minimum: 0 }) },
    required: ['taskId', 'queue'],
  },
  task_completed: {
    properties: {
      taskId,
      taskType: t.string(),
      durationMs: t.number({ minimum: 0 }),
      attempts: t.integer({ minimum: 1 }),
      provider: t.string(),
    },
    required: ['taskId', 'durationMs'],
  },
  task_failed: {
    properties: {
      taskId,
      taskType: t.string(),
      errorCode,
      errorMessage,
      attempts: t.integer({ minimum: 1 }),
      retryable: t.boolean(),
    },
    required: ['taskId', 'errorCode'],
  },
  task_routed: {
    description: 'The router picked a provider for a task.',
    properties: { taskId, provider: t.string(), model: t.string(), reason: t.string() },
    required: ['taskId', 'provider'],
  },
  task_rate_limited: {
    properties: { taskId, provider: t.string(), retryAfterMs: t.integer({ minimum: 0 }), limit: t.string() },
    required: ['taskId', 'provider'],
  },
  task_replayed: {
    properties: { taskId, originalTaskId: t.string(), reason: t.string() },
    required: ['taskId', 'originalTaskId'],
  },
  worker_guards_blocked: {
    description: 'A worker guard (budget, policy, safety) refused to run a task.',
    properties: { taskId, guard: t.string(), reason: t.string() },
    required: ['guard', 'reason'],
  },
  worker_provider_not_configured: {
    properties: { provider: t.string(), taskType: t.string(), taskId },
    required: ['provider'],
  },
  rag_query_completed: {
    properties: {
      queryId: t.string(),
      durationMs: t.number({ minimum: 0 }),
      documents: t.integer({ minimum: 0 }),
      tokensIn: t.integer({ minimum: 0 }),
      tokensOut: t.integer({ minimum: 0 }),
      model: t.string(),
      cacheHit: t.boolean(),
    },
    required: ['durationMs', 'documents'],
  },
  waitlist_joined: {
    properties: { source: t.string(), referralCode: t.string() },
    required: ['source'],
  },
});
