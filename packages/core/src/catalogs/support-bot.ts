/** The support-bot taxonomy: conversations, escalations, billing, knowledge ingestion, integrations, quotas. */
import { defineCatalog } from '../catalog.js';
import { t } from '../schema.js';

const conversationId = t.string({ maxLength: 128 });
const errorCode = t.string({ maxLength: 64 });
const errorMessage = t.string({ maxLength: 500 });

export const supportBotCatalog = defineCatalog({
  conversation_started: {
    properties: {
      conversationId,
      channel: t.enum(['web', 'widget', 'email', 'slack', 'api']),
      botId: t.string(),
    },
    required: ['conversationId', 'channel'],
  },
  message_sent: {
    description: 'One message in a conversation; high frequency, a good candidate for sampling.',
    properties: {
      conversationId,
      messageId: t.string(),
      role: t.enum(['user', 'assistant', 'agent', 'system']),
      chars: t.integer({ minimum: 0 }),
      latencyMs: t.number({ minimum: 0 }),
      model: t.string(),
    },
    required: ['conversationId', 'messageId', 'role'],
  },
  escalation_triggered: {
    description: 'A conversation was handed to a human.',
    properties: { conversationId, reason: t.string(), automatic: t.boolean() },
    required: ['conversationId', 'reason'],
  },
  plan_updated: {
    properties: {
      fromPlan: t.string(),
      toPlan: t.string(),
      seats: t.integer({ minimum: 1 }),
      interval: t.enum(['month', 'year']),
    },
    required: ['fromPlan', 'toPlan'],
  },
  checkout_completed: {
    properties: {
      orderId: t.string(),
      plan: t.string(),
      amountCents: t.integer({ minimum: 0 }),
      currency: t.string({ maxLength: 3 }),
      interval: t.enum(['month', 'year']),
    },
    required: ['orderId', 'plan', 'amountCents', 'currency'],
  },
  ingest_started: {
    properties: { ingestId: t.string(), source: t.string(), documents: t.integer({ minimum: 0 }) },
    required: ['ingestId', 'source'],
  },
  ingest_completed: {
    properties: {
      ingestId: t.string(),
      source: t.string(),
      documents: t.integer({ minimum: 0 }),
      chunks: t.integer({ minimum: 0 }),
      durationMs: t.number({ minimum: 0 }),
    },
    required: ['ingestId', 'documents', 'durationMs'],
  },
  ingest_failed: {
    properties: { ingestId: t.string(), source: t.string(), errorCode, errorMessage },
    required: ['ingestId', 'errorCode'],
  },
  integration_connected: {
    properties: { integration: t.string(), integrationId: t.string() },
    required: ['integration'],
  },
  integration_failed: {
    properties: { integration: t.string(), errorCode, errorMessage },
    required: ['integration', 'errorCode'],
  },
  quota_exceeded: {
    description: 'A request or task was refused because a quota was used up.',
    properties: {
      quota: t.string(),
      limit: t.number({ minimum: 0 }),
      usage: t.number({ minimum: 0 }),
      period: t.string(),
      route: t.string(),
    },
    required: ['quota', 'limit', 'usage'],
  },
});
