/**
 * `tally demo`: a tour of the SDK in a few seconds, with no server. It tracks a small task pipeline
 * with request context, a sampled high-frequency event, a mistake and a PII slip, prints every event
 * as the console sink writes it, then the counts: every event is accounted for.
 */
import type { Writable } from 'node:stream';
import { defineCatalog, mergeCatalogs, productCatalog, supportBotCatalog, t } from '@tally/core';
import { createConsoleSink, createTracker } from '@tally/node';

export async function demo(out: Writable, spoolDir: string): Promise<void> {
  // The shipped catalogs, plus one open event (extra keys allowed) to show PII redaction.
  const feedback = defineCatalog({
    feedback_submitted: {
      properties: { rating: t.integer({ minimum: 1, maximum: 5 }) },
      required: ['rating'],
      allowExtra: true,
    },
  });
  const catalog = mergeCatalogs(mergeCatalogs(productCatalog, supportBotCatalog), feedback);
  const tracker = createTracker({
    catalog,
    sink: createConsoleSink({ stream: out, pretty: true }),
    context: { service: 'demo-api', tenantId: 'acme' },
    sampling: { message_sent: 0.1 },
    spool: spoolDir,
    onError: (e) => out.write(`  ! ${e.code}: ${e.message}\n`),
  });

  out.write('Tracking a request that creates, routes and completes a task…\n');
  await tracker.withContext({ requestId: 'req-7f3a', userId: 'user-42' }, async () => {
    tracker.track('task_created', { taskId: 'task-1', taskType: 'summarize', priority: 2 });
    tracker.track('task_routed', { taskId: 'task-1', provider: 'openai', model: 'gpt-4o-mini' });
    await new Promise((r) => setTimeout(r, 25));
    tracker.track('task_completed', { taskId: 'task-1', durationMs: 25.4, attempts: 1, provider: 'openai' });
  });

  out.write('A chatty conversation: 100 message_sent events sampled at 10%…\n');
  tracker.track('conversation_started', { conversationId: 'c-1', channel: 'widget' });
  for (let i = 0; i < 100; i++) {
    tracker.track('message_sent', { conversationId: 'c-1', messageId: `m-${i}`, role: i % 2 ? 'assistant' : 'user' });
  }

  out.write('Mistakes are counted and reported, never thrown:\n');
  // A caller without types (plain JavaScript, or data from elsewhere) can still get it wrong.
  const untyped = tracker.track as (name: string, props?: unknown) => void;
  untyped('task_failed', { taskId: 'task-2' });
  untyped('task_exploded', {});
  untyped('checkout_completed', { orderId: 'o-1', plan: 'pro', amountCents: '4900', currency: 'EUR' });

  out.write('PII never leaves the process: deny-listed keys are redacted by default.\n');
  tracker.track('feedback_submitted', { rating: 5, comment: 'fast!', email: 'ana@example.com' });

  const report = await tracker.shutdown();
  const stats = tracker.stats();
  out.write(
    `\nDone: ${stats.tracked} tracked → ${report.delivered} delivered, ${stats.sampledOut} sampled out, ` +
      `${Object.values(report.dropped).reduce((a, b) => a + (b ?? 0), 0)} dropped ${JSON.stringify(report.dropped)}, ` +
      `${report.spooled} spooled, ${report.pending} pending.\n`,
  );
}
