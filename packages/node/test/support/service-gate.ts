/**
 * Decides whether the tests that need a service (Postgres, NATS JetStream) or a capability (restarting
 * Postgres) run. Met: they run. Unmet on a workstation: they are skipped, with a warning saying how to
 * meet it. Unmet where the run requires them (CI=true, or TALLY_REQUIRE_SERVICES=1): they fail, each with
 * that message, so a CI run can never pass by quietly testing less.
 *
 * Every package's service-dependent tests go through this file, and it is the one place a test reads the
 * environment.
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { describe, it } from 'vitest';

const requiredBy =
  process.env.CI === 'true'
    ? 'CI'
    : process.env.TALLY_REQUIRE_SERVICES === '1'
      ? 'TALLY_REQUIRE_SERVICES=1'
      : undefined;

/** True when an unmet requirement fails its tests instead of skipping them. */
export const servicesRequired = requiredBy !== undefined;

/** UPDATE_SCREENSHOTS=1: the dashboard's tests write their screenshots to docs/screenshots/. */
export const updateScreenshots = process.env.UPDATE_SCREENSHOTS === '1';

/** The run's temporary directory (vitest.global-setup.ts), removed when the run ends; else the system's. */
export const runTempDir = (): string => process.env.TALLY_TEST_RUN_DIR ?? tmpdir();

export class Requirement {
  constructor(
    /** What the tests need, as test titles say it: `Postgres`, `NATS`. */
    readonly name: string,
    readonly met: boolean,
    /** Why it is unmet, e.g. `Postgres is not reachable at 127.0.0.1:5432`. */
    private readonly problem: string,
    /** How to meet it, e.g. `start it with …`. */
    private readonly remedy: string,
  ) {
    if (!met && !servicesRequired)
      console.warn(
        `${problem}: the tests that need it are skipped. To run them, ${remedy}; CI=true makes them fail instead.`,
      );
  }

  /** The message a test that needs this fails with when the run requires it. */
  get failure(): string {
    return `${this.problem} and ${requiredBy ?? 'this run'} requires it: ${this.remedy}.`;
  }

  /**
   * Throws `failure` when unmet. For tests chosen from a list (engines, backends) that keeps its entries
   * when the run requires them: called where those tests first reach the service.
   */
  assertMet(): void {
    if (!this.met) throw new Error(this.failure);
  }
}

/** The tests that need every one of `requirements`, registered so that they run, skip or fail as above. */
export function needs(...requirements: Requirement[]) {
  const unmet = requirements.filter((r) => !r.met);
  const fail = () => {
    throw new Error(unmet.map((r) => r.failure).join('\n'));
  };
  return {
    /** Whether such tests are registered to run (they fail at `assertMet` when unmet). */
    runs: unmet.length === 0 || servicesRequired,
    describe(name: string, fn: () => void): void {
      if (unmet.length === 0) describe(name, fn);
      // The suite's own hooks would reach the service first and fail less clearly: one test stands in.
      else if (servicesRequired) describe(name, () => it(`needs ${unmet.map((r) => r.name).join(' and ')}`, fail));
      else describe.skip(name, fn);
    },
    it(name: string, fn: () => unknown, timeout?: number): void {
      if (unmet.length === 0) it(name, fn, timeout);
      else if (servicesRequired) it(name, fail);
      else it.skip(name, fn, timeout);
    },
  };
}

/** Whether something listens on this TCP port. */
export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function probePostgres(): Promise<Requirement> {
  return new Requirement(
    'Postgres',
    await portOpen(5432),
    'Postgres is not reachable at 127.0.0.1:5432',
    'start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` (as root; .ci/run does it)',
  );
}

export async function probeNats(): Promise<Requirement> {
  return new Requirement(
    'NATS',
    await portOpen(4222),
    'NATS is not reachable at 127.0.0.1:4222',
    'start it with `nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server` (.ci/run does it)',
  );
}

export async function probeClickHouse(): Promise<Requirement> {
  return new Requirement(
    'ClickHouse',
    await portOpen(8123),
    'ClickHouse is not reachable at 127.0.0.1:8123',
    'install and start it with `apt-get install -y clickhouse-server` and `start-stop-daemon --start --background --chuid clickhouse --exec /usr/sbin/clickhouse-server -- --config-file=/etc/clickhouse-server/config.xml` (.ci/run does it)',
  );
}

/** chDB, the current ClickHouse engine in-process: the npm package `chdb` (installed unsaved by scripts/ensure-chdb.mjs). */
export async function probeChdb(): Promise<Requirement> {
  const name = 'chdb';
  const met = await import(name).then(
    () => true,
    () => false,
  );
  return new Requirement(
    'chDB',
    met,
    'the npm package chdb is not installed',
    'run `node scripts/ensure-chdb.mjs` (npm test does it first)',
  );
}

/** Debian's protoc: the protobuf tests encode with it (an encoder that is not Tally's), and regenerate the code. */
export function probeProtoc(): Requirement {
  const met = spawnSync('protoc', ['--version'], { stdio: 'ignore' }).status === 0;
  return new Requirement(
    'protoc',
    met,
    'protoc is not installed',
    'install it with `apt-get install -y protobuf-compiler` (as root; .ci/run does it)',
  );
}
