/**
 * `tally serve` for the HTTP ingest benchmark, in its own process (forked by bench/ingest-http.bench.ts
 * under tsx): the built server's `startServer(loadConfig(flags))`, which is all `tally serve` does besides
 * printing (same log level as the CLI). One argument, a JSON {@link ServerSpec}. Reports its URL and
 * the write key it created at first start, answers `mark` with the writer's counters and its CPU, and on
 * `stop` closes (drains transport and writer) and exits. `profile-start` starts V8's CPU profiler; the
 * profile goes to `profileFile` at `stop`.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadConfig } from '../../packages/server/dist/config.js';
import { startServer } from '../../packages/server/dist/serve.js';
import { type ServerCommand, type ServerMark, type ServerSpec, sendToParent } from './ingest-http-protocol.js';

const spec = JSON.parse(process.argv[2] ?? '{}') as ServerSpec;
const server = await startServer(loadConfig(spec.flags, {}), { logLevel: 'info', writer: spec.writer });
let session: Session | undefined;

function mark(type: ServerMark['type'], error?: string): ServerMark {
  const s = server.writer.stats();
  const cpu = process.cpuUsage();
  return {
    type,
    stored: s.stored,
    duplicates: s.duplicates,
    deadLettered: s.deadLettered,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    ...(error ? { error } : {}),
  };
}

process.on('message', (command: ServerCommand) => {
  void (async () => {
    if (command.type === 'mark') {
      await sendToParent(mark('mark'));
    } else if (command.type === 'profile-start') {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 500 });
      await session.post('Profiler.start');
    } else if (command.type === 'stop') {
      let error: string | undefined;
      try {
        if (session && spec.profileFile) {
          const { profile } = await session.post('Profiler.stop');
          writeFileSync(spec.profileFile, JSON.stringify(profile));
          session.disconnect();
        }
        await server.close();
      } catch (e) {
        error = (e as Error).message;
      }
      await sendToParent(mark('done', error));
      process.exit(0);
    }
  })();
});

if (!server.firstKey) throw new Error('no write key created: the schema was not fresh');
await sendToParent({ type: 'ready', url: server.url, key: server.firstKey });
