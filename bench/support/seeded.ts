/** Seeded randomness for the benchmarks' generated rows: the same seed gives the same rows, run after run. */

export type Rand = () => number;

/** mulberry32: a small seeded PRNG, so runs are comparable. */
export function seeded(seed: number): Rand {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(rand: Rand, list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
export const int = (rand: Rand, max: number): number => Math.floor(rand() * max);
export const hex = (rand: Rand): string => int(rand, 0xffffffff).toString(16).padStart(8, '0');

export function weighted<T>(rand: Rand, list: readonly T[], weights: readonly number[]): T {
  let r = rand();
  for (let i = 0; i < list.length; i++) {
    r -= weights[i] ?? 0;
    if (r < 0) return list[i] as T;
  }
  return list[list.length - 1] as T;
}
