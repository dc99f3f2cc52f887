/**
 * Builds the dashboard's browser files into dist/: hashed, minified ES modules in dist/assets (one entry,
 * one chunk per page loaded by dynamic import(), shared chunks as esbuild splits them), one CSS file, each
 * file also gzip- and brotli-compressed beside it, then dist/index.html naming the hashed entry and
 * dist/manifest.json saying, per page, which chunks it loads and their gzip bytes.
 *
 * Files are written under a temporary name and renamed into place, so a server reading dist/ while a
 * build runs (two test processes, say) sees each file whole; files of earlier builds are removed last.
 *
 * `node build.mjs` builds; other modules import `build()` (the browser tests rebuild stale output).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const ROOT = dirname(fileURLToPath(import.meta.url));
const PAGES_DIR = 'src/app/pages/';

/** Where the build goes and what it reads. */
export const paths = {
  root: ROOT,
  src: join(ROOT, 'src/app'),
  dist: join(ROOT, 'dist'),
  assets: join(ROOT, 'dist/assets'),
  manifest: join(ROOT, 'dist/manifest.json'),
};

function atomicWrite(file, data) {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

const gzip = (data) => gzipSync(data, { level: 9 });
const brotli = (data) =>
  brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length },
  });

/** Writes a file with its .gz and .br siblings; returns its sizes. */
function writeCompressed(file, data) {
  const gz = gzip(data);
  const br = brotli(data);
  atomicWrite(`${file}.gz`, gz);
  atomicWrite(`${file}.br`, br);
  atomicWrite(file, data);
  return { bytes: data.length, gzipBytes: gz.length, brotliBytes: br.length };
}

export async function build({ log = console.log } = {}) {
  mkdirSync(paths.assets, { recursive: true });
  const result = await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ['src/app/main.tsx'],
    bundle: true,
    format: 'esm',
    splitting: true,
    minify: true,
    // What the browsers of the last few years run natively: no down-levelling of modern syntax.
    target: ['es2022', 'chrome111', 'firefox115', 'safari16.4'],
    platform: 'browser',
    // Workspace packages are bundled from their TypeScript sources, like the tests run them.
    conditions: ['source'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    outdir: paths.assets,
    entryNames: '[name]-[hash]',
    chunkNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    legalComments: 'none',
    metafile: true,
    write: false,
    logLevel: 'warning',
  });

  const files = {};
  const written = new Set();
  for (const out of result.outputFiles) {
    const name = relative(paths.assets, out.path);
    files[`assets/${name}`] = writeCompressed(out.path, Buffer.from(out.contents));
    written.add(name);
  }

  const outputs = result.metafile.outputs;
  const key = (abs) => `assets/${relative(paths.assets, join(ROOT, abs))}`;
  /** An output and every chunk it imports statically, transitively (what loading it fetches). */
  const closure = (output) => {
    const seen = new Set();
    const visit = (o) => {
      if (seen.has(o)) return;
      seen.add(o);
      for (const imp of outputs[o]?.imports ?? []) if (imp.kind === 'import-statement') visit(imp.path);
    };
    visit(output);
    return seen;
  };
  const gzipOf = (set) => [...set].reduce((sum, o) => sum + (files[key(o)]?.gzipBytes ?? 0), 0);

  const entry = Object.keys(outputs).find((o) => outputs[o].entryPoint === 'src/app/main.tsx' && o.endsWith('.js'));
  if (!entry) throw new Error('build.mjs: esbuild wrote no entry chunk for src/app/main.tsx');
  const css = outputs[entry].cssBundle;
  const shell = closure(entry);
  const pages = {};
  for (const [o, meta] of Object.entries(outputs)) {
    const source = meta.entryPoint;
    if (!source?.startsWith(PAGES_DIR) || !o.endsWith('.js')) continue;
    const page = source.slice(PAGES_DIR.length).replace(/\.tsx?$/, '');
    const own = [...closure(o)].filter((c) => !shell.has(c));
    pages[page] = {
      chunks: own.map(key),
      gzipBytes: gzipOf(new Set(own)),
      // What opening the dashboard on this page fetches: the shell, the page and what it imports.
      firstLoadGzipBytes: gzipOf(shell) + gzipOf(new Set(own)),
    };
  }
  // The icon is copied under a name with its digest, like esbuild names its files.
  const icon = readFileSync(join(paths.src, 'favicon.svg'));
  const iconName = `favicon-${createHash('sha256').update(icon).digest('hex').slice(0, 8).toUpperCase()}.svg`;
  files[`assets/${iconName}`] = writeCompressed(join(paths.assets, iconName), icon);
  written.add(iconName);

  const preload = [...shell].filter((o) => o !== entry).map((o) => `/${key(o)}`);
  const html = [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    '<title>Tally</title>',
    `<link rel="icon" type="image/svg+xml" href="/assets/${iconName}">`,
    ...(css ? [`<link rel="stylesheet" href="/${key(css)}">`] : []),
    ...preload.map((href) => `<link rel="modulepreload" href="${href}">`),
    `<script type="module" src="/${key(entry)}"></script>`,
    '</head>',
    '<body>',
    '<div id="app"></div>',
    '<noscript>The Tally dashboard needs JavaScript.</noscript>',
    '</body>',
    '</html>',
    '',
  ].join('\n');

  const manifest = {
    source: sourceDigest(),
    entry: key(entry),
    css: css ? key(css) : null,
    shell: { chunks: [...shell].map(key), gzipBytes: gzipOf(shell) },
    pages: Object.fromEntries(Object.entries(pages).sort(([a], [b]) => a.localeCompare(b))),
    files: Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b))),
  };
  writeCompressed(join(paths.dist, 'index.html'), Buffer.from(html));
  atomicWrite(paths.manifest, `${JSON.stringify(manifest, null, 2)}\n`);

  // Files of earlier builds (other hashes) and temporaries a killed build left behind.
  for (const name of readdirSync(paths.assets)) {
    const base = name.replace(/\.(gz|br)$/, '');
    if (!written.has(base)) rmSync(join(paths.assets, name), { force: true });
  }

  const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
  log(
    `dashboard: shell ${kb(manifest.shell.gzipBytes)} gzip; ` +
      Object.entries(pages)
        .map(([p, v]) => `${p} +${kb(v.gzipBytes)}`)
        .join(', '),
  );
  return manifest;
}

/**
 * A digest of what the build reads (the app's sources, core's, which the app bundles, and this file),
 * kept in the manifest to tell a stale build.
 */
export function sourceDigest() {
  const hash = createHash('sha256');
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else hash.update(relative(ROOT, p)).update('\0').update(readFileSync(p)).update('\0');
    }
  };
  walk(paths.src);
  walk(join(ROOT, '../core/src'));
  hash.update(readFileSync(fileURLToPath(import.meta.url)));
  return hash.digest('hex');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await build();
}
