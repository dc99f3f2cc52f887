import { defineConfig } from 'vitest/config';

// Chaos tests restart Postgres and kill processes: they run after the main suite, one file at a time,
// so they never pull a service out from under another test.
export default defineConfig({
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.chaos.test.ts'],
    globalSetup: ['./vitest.global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
