import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests run the TypeScript sources of the workspace packages, not their build output.
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
