/**
 * The tracker's queue of events as `track()` left them, stored column by column.
 *
 * Why not a ring of small objects: a burst queues events far faster than any sink sends them, so
 * every queued event survives the young-generation collections that happen meanwhile, and each one
 * costs the collector in proportion to the objects it holds. An object per event held up to seven
 * (the object, a box for each of its four non-Smi numbers, the properties, the caller's options).
 * Here the numbers live unboxed in a Float64Array and the options' fields are read out at the call,
 * so an event holds one young object: its copy of the properties. The queue grows by doubling up to
 * its bound, so a large bound costs memory only when it is used.
 */
import type { BatchQueue, IdSeed, RequestLogRecord, TrackContext, TrackedCall } from '@tally/core';

/** A queued event, materialized when it leaves the queue (short-lived: finished into a batch). */
export interface Pending extends TrackedCall {
  /** Estimated size, for the queue's byte bound. */
  bytes: number;
}

// Slots per event in each column.
const REFS = 8;
const NUMS = 6;
/** Events per block: 64 KiB of references, small enough for V8's regular (not large-object) heap. */
const BLOCK = 1024;

/** A fixed-size run of slots. Blocks are chained as the queue grows and recycled as it drains. */
interface Block {
  refs: unknown[];
  nums: Float64Array;
}

function newBlock(): Block {
  return { refs: new Array<unknown>(BLOCK * REFS).fill(undefined), nums: new Float64Array(BLOCK * NUMS) };
}

export class PendingQueue implements BatchQueue<Pending> {
  /** Blocks in queue order: events go in at `tail` of the last one and out at `head` of the first. */
  private readonly blocks: Block[] = [newBlock()];
  /** One drained block kept back, so a queue that hovers around a block boundary does not allocate. */
  private spare: Block | undefined;
  private head = 0;
  private tail = 0;
  private count = 0;
  /** The queued events' estimated bytes. */
  bytes = 0;

  /** @param capacity the most events it holds (the tracker's `maxQueueEvents`). */
  constructor(readonly capacity: number) {}

  get size(): number {
    return this.count;
  }

  /** Adds at the tail; false when full (the caller applies its overflow policy first). */
  push(
    name: string,
    props: Record<string, unknown> | undefined,
    build: (() => RequestLogRecord) | undefined,
    seed: IdSeed,
    ts: number,
    frame: Readonly<TrackContext> | undefined,
    tenantId: string | undefined,
    userId: string | undefined,
    anonymousId: string | undefined,
    extra: TrackContext | undefined,
    rate: number,
    bytes: number,
  ): boolean {
    if (this.count === this.capacity) return false;
    if (this.tail === BLOCK) {
      this.blocks.push(this.spare ?? newBlock());
      this.spare = undefined;
      this.tail = 0;
    }
    const block = this.blocks[this.blocks.length - 1] as Block;
    const r = this.tail * REFS;
    const refs = block.refs;
    refs[r] = name;
    refs[r + 1] = props;
    refs[r + 2] = build;
    refs[r + 3] = frame;
    refs[r + 4] = tenantId;
    refs[r + 5] = userId;
    refs[r + 6] = anonymousId;
    refs[r + 7] = extra;
    const n = this.tail * NUMS;
    const nums = block.nums;
    nums[n] = seed.ms;
    nums[n + 1] = seed.a;
    nums[n + 2] = seed.b;
    nums[n + 3] = ts;
    nums[n + 4] = rate;
    nums[n + 5] = bytes;
    this.tail++;
    this.count++;
    this.bytes += bytes;
    return true;
  }

  /** The estimated size of the oldest event, or 0 when empty. */
  peekBytes(): number {
    return this.count === 0 ? 0 : ((this.blocks[0] as Block).nums[this.head * NUMS + 5] as number);
  }

  /** The next batch for the batcher: at least one event, then up to `maxItems` within `maxBytes`. */
  take(maxItems: number, maxBytes: number): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    while (batch.length < maxItems && this.count > 0) {
      const next = this.peekBytes();
      if (batch.length > 0 && bytes + next > maxBytes) break;
      bytes += next;
      batch.push(this.shift() as Pending);
    }
    return batch;
  }

  shift(): Pending | undefined {
    if (this.count === 0) return undefined;
    const block = this.blocks[0] as Block;
    const r = this.head * REFS;
    const n = this.head * NUMS;
    const refs = block.refs;
    const nums = block.nums;
    const p: Pending = {
      name: refs[r] as string,
      props: refs[r + 1] as Pending['props'],
      build: refs[r + 2] as Pending['build'],
      frame: refs[r + 3] as Pending['frame'],
      tenantId: refs[r + 4] as string | undefined,
      userId: refs[r + 5] as string | undefined,
      anonymousId: refs[r + 6] as string | undefined,
      extra: refs[r + 7] as Pending['extra'],
      ms: nums[n] as number,
      a: nums[n + 1] as number,
      b: nums[n + 2] as number,
      ts: nums[n + 3] as number,
      rate: nums[n + 4] as number,
      bytes: nums[n + 5] as number,
    };
    // Let go of what the slot referenced: a drained queue must not keep a burst's objects alive.
    for (let i = r; i < r + REFS; i++) refs[i] = undefined;
    this.head++;
    this.count--;
    this.bytes -= p.bytes;
    if (this.count === 0) {
      // Empty: start over at the top of the one block left.
      this.head = 0;
      this.tail = 0;
    } else if (this.head === BLOCK) {
      this.spare = this.blocks.shift();
      this.head = 0;
    }
    return p;
  }
}
