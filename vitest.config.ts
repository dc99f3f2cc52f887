import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests run the TypeScript sources of the workspace packages, not their build output.
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    globalSetup: ['./vitest.global-setup.ts'],
    exclude: ['**/node_modules/**', '**/*.chaos.test.ts'],
    // Test files run in parallel, each in its own schema or temp dir; 2 workers suit these 2-core machines.
    maxWorkers: 2,
    // Generous: PGlite opens take seconds on a busy 2-core machine; a hang still fails, just later.
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
