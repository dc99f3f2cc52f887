/**
 * Core names AbortSignal in its types but compiles with lib ES2022 alone, without the DOM's or Node's
 * globals (it must run on Workers and in browsers as well as on Node). Every runtime it targets has an
 * AbortSignal with these members.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * The runtime's own AbortSignal wherever its types are loaded (Node, DOM, Workers), so a sink can hand
 * the signal it is given to fetch or http.request; AbortSignalLike where they are not (core's own build).
 */
export type PlatformAbortSignal = typeof globalThis extends { AbortSignal: { prototype: infer S } }
  ? S
  : AbortSignalLike;
