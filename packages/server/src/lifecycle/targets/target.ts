/**
 * Where archive files go. Two implementations share this contract and one conformance suite
 * (test/archive-target-conformance.integration.test.ts): a local directory and S3-compatible storage.
 * Keys are relative paths with `/` separators (`events/acme/2026-11-20.part1.jsonl.gz`).
 */
import { TallyConfigError } from '@tally/core';

export interface ArchiveTarget {
  readonly kind: 'local' | 's3';
  /** Where it writes, for people: a directory or `s3://bucket/prefix`. */
  readonly location: string;
  /** Writes the object whole, replacing any previous one; readers never see half of it. */
  put(key: string, data: Uint8Array): Promise<void>;
  /** The object's bytes, or undefined when there is none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** Keys that start with `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Removes the object; absent is fine. */
  delete(key: string): Promise<void>;
}

/** Keys must stay inside the target: no absolute paths, no `..`, no empty segments. */
export function checkKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new TallyConfigError(`archive key "${key}" must be a relative path without "." or ".." segments`);
  }
}
