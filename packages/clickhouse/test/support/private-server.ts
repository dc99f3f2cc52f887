/**
 * A ClickHouse server of a test's own: Debian's clickhouse-server with a config written into a temp
 * directory, on free loopback ports, so a test can kill and restart it without touching the shared one
 * at 127.0.0.1:8123. Its data survives a restart (same directory), as a real server's does.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const CLICKHOUSE_SERVER = '/usr/sbin/clickhouse-server';
export const hasClickHouseServer = (): boolean => existsSync(CLICKHOUSE_SERVER);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface PrivateClickHouse {
  readonly url: string;
  /** Starts the server (again) and waits until it answers. */
  start(): Promise<void>;
  /** SIGKILL: the server dies mid-whatever, as a crash or an OOM kill would leave it. */
  kill(): Promise<void>;
  /** Stops it for good (SIGKILL, whatever state it is in). */
  dispose(): Promise<void>;
}

export async function privateClickHouse(dir: string): Promise<PrivateClickHouse> {
  const http = await freePort();
  const tcp = await freePort();
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'config.xml'),
    `<yandex>
  <logger><level>warning</level><log>${dir}/server.log</log><errorlog>${dir}/server.err.log</errorlog><console>0</console></logger>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
</yandex>
`,
  );
  writeFileSync(
    join(dir, 'users.xml'),
    `<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
  );
  const url = `http://127.0.0.1:${http}`;
  let proc: ChildProcess | undefined;

  const answers = async () => {
    try {
      const res = await fetch(`${url}/?query=SELECT%201`, { signal: AbortSignal.timeout(1000) });
      return res.ok;
    } catch {
      return false;
    }
  };

  const kill = async () => {
    const p = proc;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    kill,
    dispose: kill,
    async start() {
      proc = spawn(CLICKHOUSE_SERVER, [`--config-file=${join(dir, 'config.xml')}`], { stdio: 'ignore' });
      const deadline = Date.now() + 30_000;
      while (!(await answers())) {
        if (Date.now() > deadline)
          throw new Error(`clickhouse-server did not answer at ${url} within 30 s (see ${dir}/server.err.log)`);
        if (proc.exitCode !== null)
          throw new Error(`clickhouse-server exited with ${proc.exitCode} (see ${dir}/server.err.log)`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
