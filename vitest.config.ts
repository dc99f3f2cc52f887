import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests run the TypeScript sources of the workspace packages, not their build output.
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/*.chaos.test.ts'],
    // Test files run in parallel, each in its own schema or temp dir; 2 workers suit these 2-core machines.
    maxWorkers: 2,
    testTimeout: 20_000,
    // Opening PGlite (in a beforeAll) has taken over 20 s when other jobs share the 2 cores.
    hookTimeout: 60_000,
  },
});
