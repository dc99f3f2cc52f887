/**
 * The build's manifest: each built page is its own chunk with its gzip bytes, the sizes are those of the
 * files served, and opening the dashboard on any page fetches less than 300 KB of gzipped JavaScript.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { paths } from '../build.mjs';
import { ensureBuilt } from './support/build.js';

const BUDGET = 300 * 1024;

it('lists each built page with its chunks and gzip bytes, within the first-page budget', async () => {
  const manifest = await ensureBuilt();
  // The pages with a module (registry.ts gives them a loader), by their file names.
  const registry = readFileSync(join(paths.src, 'pages/registry.ts'), 'utf8');
  const built = [...registry.matchAll(/import\('\.\/([a-z-]+)\.js'\)/g)].map((m) => m[1] as string);
  expect(built).toContain('overview');
  expect(Object.keys(manifest.pages).sort()).toEqual([...built].sort());

  const size = (file: string) => statSync(join(paths.dist, file)).size;
  expect(manifest.shell.chunks[0]).toBe(manifest.entry);
  for (const [file, sizes] of Object.entries(manifest.files)) {
    expect(size(file)).toBe(sizes.bytes);
    expect(size(`${file}.gz`)).toBe(sizes.gzipBytes);
    expect(size(`${file}.br`)).toBe(sizes.brotliBytes);
  }
  const gz = (chunks: string[]) => chunks.reduce((s, c) => s + (manifest.files[c]?.gzipBytes ?? NaN), 0);
  expect(manifest.shell.gzipBytes).toBe(gz(manifest.shell.chunks));

  const lines = [`shell (entry and what it imports): ${(manifest.shell.gzipBytes / 1024).toFixed(1)} KB`];
  for (const [name, page] of Object.entries(manifest.pages)) {
    expect(page.chunks.length).toBeGreaterThan(0);
    expect(page.gzipBytes).toBe(gz(page.chunks));
    expect(page.gzipBytes).toBeGreaterThan(0);
    expect(page.firstLoadGzipBytes).toBe(manifest.shell.gzipBytes + page.gzipBytes);
    expect(page.firstLoadGzipBytes).toBeLessThan(BUDGET);
    lines.push(
      `${name}: +${(page.gzipBytes / 1024).toFixed(1)} KB, first load ${(page.firstLoadGzipBytes / 1024).toFixed(1)} KB`,
    );
  }
  const css = manifest.css ? manifest.files[manifest.css]?.gzipBytes : undefined;
  console.log(`dashboard JavaScript, gzip: ${lines.join('; ')}; CSS ${((css ?? 0) / 1024).toFixed(1)} KB`);
});
