/**
 * UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, a 12-bit counter (method 1 of §6.2, so ids
 * born in one process in the same millisecond still sort in birth order), variant 10, 62 random bits.
 *
 * The id is born with the event but formatted later: `reserveId()` costs two reads from a pooled
 * random buffer, while formatting 36 hex characters costs ~1 µs (see FACTS.md). The SDK reserves at
 * `track()` and formats at batch time; the id is the same either way.
 */

/** The parts of a reserved id: enough to format it later, small enough to keep on every queued event. */
export interface IdSeed {
  /** Unix milliseconds in the id (the event's birth, or one more if the counter overflowed). */
  ms: number;
  /** 12-bit counter followed by 30 random bits: `counter * 2^30 + rand30`. */
  a: number;
  /** 32 random bits. */
  b: number;
}

// 64 KiB, the most one getRandomValues() call may fill: each refill has a fixed cost of ~3 µs (WebIDL
// checks, the call into the CSPRNG) against ~4 ns per id for the bytes, so a 4 KiB pool spent ~10 ns an
// id on refills alone and this one ~1 ns.
const POOL_SIZE = 16384;
const pool = new Uint32Array(POOL_SIZE);
let poolIndex = POOL_SIZE;

// `crypto` is global in Node ≥ 19, browsers, Deno, Bun and Workers; typed locally so core needs no DOM or Node types.
const cryptoApi = (globalThis as unknown as { crypto: { getRandomValues<T extends Uint32Array>(a: T): T } }).crypto;

function random32(): number {
  if (poolIndex === POOL_SIZE) {
    cryptoApi.getRandomValues(pool);
    poolIndex = 0;
  }
  return pool[poolIndex++] as number;
}

const TWO_30 = 0x40000000;
let lastMs = -1;
let counter = 0;

/** Reserves the time and random bits of a new id without formatting it. */
export function reserveId(now: number = Date.now()): IdSeed {
  return reserveIdInto({ ms: 0, a: 0, b: 0 }, now);
}

/**
 * Like {@link reserveId}, but writes into an object the caller already allocates (the SDK's queued
 * event), saving an allocation on the hot path.
 */
export function reserveIdInto<T extends IdSeed>(target: T, now: number): T {
  let ms = now;
  if (ms <= lastMs) {
    // Same millisecond (or the clock stepped back): count up so ids keep birth order.
    ms = lastMs;
    counter++;
    if (counter > 0xfff) {
      // 4096 ids in one millisecond: borrow the next millisecond rather than lose ordering.
      ms = ++lastMs;
      counter = random32() & 0x7ff;
    }
  } else {
    lastMs = ms;
    // Start low in the range so the counter has room to grow within the millisecond.
    counter = random32() & 0x7ff;
  }
  target.ms = ms;
  target.a = counter * TWO_30 + (random32() & 0x3fffffff);
  target.b = random32();
  return target;
}

const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push(i.toString(16).padStart(2, '0'));

function hex16(v: number): string {
  return (HEX[(v >>> 8) & 0xff] as string) + (HEX[v & 0xff] as string);
}

function hex32(v: number): string {
  return hex16(v >>> 16) + hex16(v & 0xffff);
}

// Ids born in the same millisecond share their first 15 characters (time, version): formatted once.
let prefixMs = Number.NaN;
let prefix = '';

/** Formats a reserved id as the canonical lowercase 8-4-4-4-12 string. */
export function formatId(seed: IdSeed): string {
  if (seed.ms !== prefixMs) {
    prefixMs = seed.ms;
    prefix = hex32(Math.floor(seed.ms / 0x10000)) + '-' + hex16(seed.ms % 0x10000) + '-7';
  }
  const count = Math.floor(seed.a / TWO_30);
  const rand30 = seed.a % TWO_30;
  // Pieces under 13 characters are flat strings (V8 copies short concatenations), so the id is a rope of
  // four leaves instead of about twenty: cheaper to build and to flatten when serialized.
  const mid =
    (HEX[count >>> 8] as string).charAt(1) +
    (HEX[count & 0xff] as string) +
    '-' +
    hex16(0x8000 | (rand30 >>> 16)) +
    '-';
  return prefix + mid + hex16(rand30 & 0xffff) + hex32(seed.b);
}

/** A new UUIDv7 string, born now. */
export function uuidv7(now?: number): string {
  return formatId(reserveId(now));
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUIDV7_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}

export function isUuidv7(value: unknown): value is string {
  return typeof value === 'string' && UUIDV7_RE.test(value);
}

/** The Unix milliseconds embedded in a UUIDv7 (what storage partitions by: it never changes on retry). */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}
