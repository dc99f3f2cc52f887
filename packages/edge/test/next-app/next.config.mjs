// The Next.js app of the edge SDK's test (../next.test.ts builds and starts it). The repository's root is
// the workspace root, where `next`, `react` and the @tally packages are installed.
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../..', import.meta.url));

export default {
  turbopack: { root },
  outputFileTracingRoot: root,
};
