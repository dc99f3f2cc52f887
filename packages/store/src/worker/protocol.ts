/**
 * The messages between a worker-backed store (host.ts, on the app's thread) and the worker thread that
 * owns the engine and its writers (entry.ts). Rows travel by structured clone, one message per write
 * call (a tracker batch), never one per row.
 */
import type { Worker } from 'node:worker_threads';
import { type ErrorCode, ErrorCodes, TallyConfigError, TallyError, TallyValidationError } from '@tally/core';
import type { StoreConfig } from '../open-store.js';
import type { Store, StoreCapabilities, StoreKind } from '../types.js';
import type { OPEN_WRITER, RowKind, Writer, WriterOptions, WriterStats } from '../writer.js';

export interface WorkerBackedStore extends Store {
  /** The thread that owns the engine (for health checks, resource limits and tests). */
  readonly worker: Worker;
  [OPEN_WRITER](options: WriterOptions): Writer;
}

/** Writer options that can cross a thread: everything but the store and the callback. */
export type WorkerWriterOptions = Omit<WriterOptions, 'store' | 'onError'> & { reportErrors: boolean };

export type StoreMethod =
  'migrate' | 'insertEvents' | 'insertRequestLogs' | 'requestHistory' | 'requestLog' | 'query' | 'totals';

export type Call =
  | { op: 'store'; id: number; method: StoreMethod; args: unknown[] }
  | { op: 'query'; id: number; tx?: number; text: string; params?: readonly unknown[] }
  | { op: 'exec'; id: number; tx?: number; text: string }
  /** Opens a transaction (as the tenant role when `tenantId` is set) that stays open until `end`. */
  | { op: 'begin'; id: number; tx: number; tenantId?: string }
  | { op: 'end'; id: number; tx: number; commit: boolean }
  | { op: 'writer-open'; id: number; writer: number; options: WorkerWriterOptions }
  | { op: 'write'; id: number; writer: number; kind: RowKind; rows: readonly unknown[] }
  | { op: 'writer-flush'; id: number; writer: number }
  | { op: 'writer-close'; id: number; writer: number; timeoutMs: number }
  | { op: 'writer-recover'; id: number; writer: number }
  | { op: 'writer-replay'; id: number; writer: number; path: string }
  | { op: 'close'; id: number };

export type Reply =
  | { type: 'reply'; id: number; ok: true; value: unknown; stats?: WriterStats }
  | { type: 'reply'; id: number; ok: false; error: WireError; stats?: WriterStats };

export type WorkerMessage =
  | Reply
  | { type: 'ready'; kind: StoreKind; schema: string; capabilities: StoreCapabilities }
  | { type: 'failed'; error: WireError }
  | { type: 'writer-error'; writer: number; error: { code: string; message: string; sqlstate?: string; rows: number } };

export interface WorkerInit {
  config: StoreConfig;
  /** The worker thread's nice value (`createStore({ worker: { nice } })`). */
  nice?: number;
}

/**
 * An error as it crosses the thread: structured clone keeps an Error's message and stack but drops its
 * own properties, and callers match on `code` (a Tally code or a SQLSTATE), so those travel explicitly.
 */
export interface WireError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  props: Record<string, string | number | boolean | null>;
  details?: Record<string, unknown>;
}

export function toWire(error: unknown): WireError {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error), props: {} };
  const props: WireError['props'] = {};
  for (const [key, value] of Object.entries(error)) {
    if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) props[key] = value;
  }
  const wire: WireError = { name: error.name, message: error.message, stack: error.stack, props };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') wire.code = code;
  if (error instanceof TallyError) wire.details = structuredCloneable(error.details);
  return wire;
}

const TALLY_CODES = new Set<string>(Object.values(ErrorCodes));

/** The error again on this side: a Tally code comes back as its TallyError class, anything else as an Error with its properties. */
export function fromWire(wire: WireError): Error {
  let error: Error;
  if (wire.code !== undefined && TALLY_CODES.has(wire.code) && wire.name.startsWith('Tally')) {
    const code = wire.code as ErrorCode;
    error =
      wire.name === 'TallyConfigError'
        ? new TallyConfigError(wire.message, wire.details)
        : wire.name === 'TallyValidationError'
          ? new TallyValidationError(code, wire.message, wire.details)
          : new TallyError(code, wire.message, wire.details);
  } else {
    error = Object.assign(new Error(wire.message), wire.props);
    if (wire.name !== 'Error') Object.defineProperty(error, 'name', { value: wire.name, configurable: true });
  }
  // The worker's stack says where it failed; the caller's own frames are of little use across a thread.
  if (wire.stack) error.stack = wire.stack;
  return error;
}

function structuredCloneable(details: Record<string, unknown>): Record<string, unknown> | undefined {
  try {
    return structuredClone(details);
  } catch {
    return undefined;
  }
}
