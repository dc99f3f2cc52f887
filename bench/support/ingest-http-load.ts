/**
 * The load generator of the HTTP ingest benchmark, in its own process (forked by
 * bench/ingest-http.bench.ts under tsx), so it never shares `tally serve`'s event loop.
 *
 * On `plan` it makes the benchmark's event rows (bench/support/ingest-rows.ts, same seed and span as the
 * COPY peer's) and encodes them, untimed, as `POST /v1/events` bodies of `batch` events in Tally's wire
 * format (`{"batch":[{id, name, properties, context, timestamp, userId|anonymousId}], "sentAt"}`). On `go`
 * it sends them over `connections` keep-alive connections, each sending its next body as soon as the
 * previous one is answered, and checks every answer: 200 with every event accepted. 429/503 are sent
 * again after their Retry-After (counted); anything else fails the run.
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { isoTime } from '@tally/core';
import { makeEventRows } from './ingest-rows.js';
import { type LoadGo, type LoadPlan, type LoadReport, percentile, sendToParent } from './ingest-http-protocol.js';

let plan: LoadPlan | undefined;
let bodies: Buffer[] = [];
let counts: number[] = [];

function encode(p: LoadPlan): void {
  const rows = makeEventRows(p.rows, { seed: p.seed, endMs: p.endMs });
  bodies = [];
  counts = [];
  for (let i = 0; i < rows.length; i += p.batch) {
    const batch = rows.slice(i, i + p.batch).map((r) => {
      const e: Record<string, unknown> = {
        id: r.id,
        name: r.name,
        properties: r.properties,
        context: r.context,
        timestamp: r.timestamp,
      };
      if (r.userId !== undefined) e.userId = r.userId;
      if (r.anonymousId !== undefined) e.anonymousId = r.anonymousId;
      return e;
    });
    bodies.push(Buffer.from(JSON.stringify({ batch, sentAt: isoTime(Date.now()) })));
    counts.push(batch.length);
  }
}

interface Answer {
  status: number;
  body: string;
  retryAfter?: string;
}

function post(agent: Agent, url: URL, key: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          authorization: `Bearer ${key}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            retryAfter: res.headers['retry-after'],
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function run(p: LoadPlan): Promise<LoadReport> {
  const cpu0 = process.cpuUsage();
  const url = new URL('/v1/events', p.url);
  const agent = new Agent({ keepAlive: true, maxSockets: p.connections });
  const latencies: number[] = [];
  let next = 0;
  let accepted = 0;
  let retries = 0;
  let error: string | undefined;
  const t0 = performance.now();
  const lane = async () => {
    while (next < bodies.length && error === undefined) {
      const i = next++;
      for (;;) {
        const sent = performance.now();
        const answer = await post(agent, url, p.key, bodies[i] as Buffer);
        if (answer.status === 429 || answer.status === 503) {
          retries++;
          await new Promise((r) => setTimeout(r, 1000 * Number(answer.retryAfter ?? 1)));
          continue;
        }
        latencies.push(performance.now() - sent);
        const parsed = answer.status === 200 ? (JSON.parse(answer.body) as { accepted?: number }) : undefined;
        const n = parsed?.accepted;
        if (n === undefined || n !== counts[i]) error = `request ${i}: ${answer.status} ${answer.body.slice(0, 300)}`;
        else accepted += n;
        break;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: p.connections }, lane));
  } catch (e) {
    error = (e as Error).message;
  }
  const ms = performance.now() - t0;
  agent.destroy();
  const cpu = process.cpuUsage(cpu0);
  return {
    type: 'done',
    requests: bodies.length,
    accepted,
    retries,
    ms,
    p50Ms: percentile(latencies, 50) ?? 0,
    p95Ms: percentile(latencies, 95) ?? 0,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    ...(error ? { error } : {}),
  };
}

// One process per server: a plan, its `go`, then the next plan; it ends when the parent disconnects.
process.on('disconnect', () => process.exit(0));
process.on('message', (message: LoadPlan | LoadGo) => {
  void (async () => {
    if (message.type === 'plan') {
      plan = message;
      encode(message);
      await sendToParent({
        type: 'encoded',
        requests: bodies.length,
        bytes: bodies.reduce((n, b) => n + b.length, 0),
      } satisfies LoadReport);
    } else if (message.type === 'go' && plan) {
      await sendToParent(await run(plan));
    }
  })();
});
