/**
 * The browser tests serve the built dashboard (dist/), as users get it. A build older than the sources
 * (a page edited since `npm run build`) is rebuilt first, once: test files running at the same time wait
 * on a lock directory and find it fresh.
 */
import { mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type BuildManifest, build, paths, sourceDigest } from '../../build.mjs';

// In dist/, which git ignores.
const LOCK = join(paths.dist, '.build-lock');
const STALE_LOCK_MS = 120_000;

function readManifest(): BuildManifest | undefined {
  try {
    return JSON.parse(readFileSync(paths.manifest, 'utf8')) as BuildManifest;
  } catch {
    return undefined;
  }
}

/** The manifest of a build of the current sources, building when needed. */
export async function ensureBuilt(): Promise<BuildManifest> {
  const fresh = () => {
    const m = readManifest();
    return m?.source === sourceDigest() ? m : undefined;
  };
  let m = fresh();
  if (m) return m;
  mkdirSync(paths.dist, { recursive: true });
  for (;;) {
    try {
      mkdirSync(LOCK);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock left by a killed process is taken over.
      try {
        if (Date.now() - statSync(LOCK).mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // Released meanwhile.
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    m = fresh() ?? (await build({ log: () => undefined }));
    return m;
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
