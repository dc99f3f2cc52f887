/** Types of build.mjs, for the tests that import it. */
export interface BuildManifest {
  source: string;
  entry: string;
  css: string | null;
  shell: { chunks: string[]; gzipBytes: number };
  pages: Record<string, { chunks: string[]; gzipBytes: number; firstLoadGzipBytes: number }>;
  files: Record<string, { bytes: number; gzipBytes: number; brotliBytes: number }>;
}
export const paths: { root: string; src: string; dist: string; assets: string; manifest: string };
export function build(options?: { log?: (line: string) => void }): Promise<BuildManifest>;
export function sourceDigest(): string;
