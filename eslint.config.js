import { readdirSync } from 'node:fs';
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The package graph of DESIGN.md, one way only: core ← node ← fastify; core ← edge; core ← store ← server;
 * core ← spool ← node, store (the disk spool both the SDK and the writer keep);
 * core ← nats ← server; core ← clickhouse ← server; core ← dashboard ← server (the server mounts the dashboard's files; the dashboard
 * asks the server over HTTP only). Each package's src may import these workspace packages and no other.
 *
 * Enforced with ESLint's own `no-restricted-imports`, per package folder, rather than TypeScript project
 * references: those need a composite tsconfig per package and `tsc -b` in every script, still let an
 * import of an unreferenced workspace package through (it resolves via node_modules), and say nothing
 * about `node:` imports in core. Here the graph is one table, `npm run lint` fails on a wrong edge, and the
 * message names the edges the package has. Dynamic `import()` is not checked by this rule (only the
 * server uses it, for optional SDKs).
 */
const GRAPH = {
  core: [],
  spool: ['core'],
  node: ['core', 'spool'],
  edge: ['core'],
  store: ['core', 'spool'],
  nats: ['core'],
  clickhouse: ['core'],
  fastify: ['core', 'node'],
  dashboard: ['core'],
  server: ['core', 'spool', 'node', 'store', 'nats', 'clickhouse', 'dashboard'],
};

// Every workspace folder, so a package added later is covered by the relative-path check at once.
const PACKAGES = readdirSync(new URL('./packages/', import.meta.url), { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name);
const unplaced = PACKAGES.filter((p) => !(p in GRAPH));
if (unplaced.length > 0)
  throw new Error(`eslint.config.js: give packages/${unplaced.join(', packages/')} a place in GRAPH`);

function graphRules(pkg, deps) {
  const others = Object.keys(GRAPH).filter((p) => p !== pkg && !deps.includes(p));
  const patterns = [
    {
      regex: `^(\\.\\./)+(${PACKAGES.join('|')})/`,
      message: 'Import another workspace package by its name (@tally/…), never by a relative path into its folder.',
    },
  ];
  if (others.length > 0)
    patterns.push({
      regex: `^@tally/(${others.join('|')})(/|$)`,
      message: `@tally/${pkg} ${deps.length ? `may import ${deps.map((d) => `@tally/${d}`).join(', ')} only` : 'imports no workspace package'}: the package graph of DESIGN.md (eslint.config.js).`,
    });
  const rules = {};
  if (pkg === 'core' || pkg === 'edge') {
    // Core and the edge SDK run on Workers, in browsers and on Node alike: no Node modules, no Node globals.
    const nodeOnly = `@tally/${pkg} must stay free of Node-only APIs (it runs on Workers and in browsers too).`;
    patterns.push({ group: ['node:*'], message: nodeOnly });
    rules['no-restricted-globals'] = [
      'error',
      ...['process', 'Buffer', 'global', '__dirname', '__filename', 'require', 'setImmediate', 'clearImmediate'].map(
        (name) => ({ name, message: nodeOnly }),
      ),
    ];
    rules['no-restricted-imports'] = [
      'error',
      { paths: builtinModules.map((name) => ({ name, message: nodeOnly })), patterns },
    ];
  } else {
    rules['no-restricted-imports'] = ['error', { patterns }];
  }
  return { files: [`packages/${pkg}/src/**/*.{ts,tsx}`], rules };
}

export default tseslint.config(
  // packages/core/src/proto: generated from proto/ by protoc-gen-es (npm run proto).
  {
    ignores: [
      '**/dist/**',
      '**/node_modules/**',
      '**/.tally/**',
      '**/.next/**',
      'coverage/**',
      'packages/core/src/proto/**',
    ],
  },
  js.configs.recommended,
  { languageOptions: { globals: globals.node } },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-empty-object-type': 'off',
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.test.ts'],
    rules: { '@typescript-eslint/no-unused-expressions': 'off' },
  },
  ...Object.entries(GRAPH).map(([pkg, deps]) => graphRules(pkg, deps)),
  {
    // The dashboard's browser code: browser globals, not Node's.
    files: ['packages/dashboard/src/app/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser, process: 'off', Buffer: 'off', require: 'off' } },
  },
  {
    // One module reads the environment (DESIGN.md, Config), and tests read it through one helper. The
    // child-process helpers only hand PATH and HOME on to a `tally serve` they start with an otherwise empty env.
    files: ['packages/*/src/**/*.{ts,tsx}', 'packages/*/test/**/*.ts'],
    ignores: [
      'packages/server/src/config.ts',
      'packages/node/test/support/service-gate.ts',
      'packages/server/test/support/child-process*.ts',
      'packages/edge/test/support/next-app.ts',
    ],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message:
            'Read the environment in packages/server/src/config.ts (tests: packages/node/test/support/service-gate.ts).',
        },
      ],
    },
  },
);
