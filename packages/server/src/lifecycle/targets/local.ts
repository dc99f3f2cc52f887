/** Archive files in a local directory; each put is a write to a temp file and a rename (atomic). */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { type ArchiveTarget, checkKey } from './target.js';

export function createLocalTarget(dir: string): ArchiveTarget {
  const path = (key: string) => {
    checkKey(key);
    return join(dir, ...key.split('/'));
  };
  return {
    kind: 'local',
    location: dir,
    async put(key, data) {
      const file = path(key);
      await mkdir(dirname(file), { recursive: true });
      const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, data, { flush: true });
      await rename(tmp, file);
    },
    async get(key) {
      try {
        return new Uint8Array(await readFile(path(key)));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw e;
      }
    },
    async list(prefix) {
      let entries: string[];
      try {
        entries = (await readdir(dir, { recursive: true, withFileTypes: true }))
          .filter((d) => d.isFile() && !d.name.endsWith('.tmp'))
          .map((d) => relative(dir, join(d.parentPath, d.name)).split(sep).join('/'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw e;
      }
      return entries.filter((k) => k.startsWith(prefix)).sort();
    },
    async delete(key) {
      await rm(path(key), { force: true });
    },
  };
}
