/**
 * Runs `work` over `items` with at most `width` calls in flight, answers in the items' order. A page that
 * asks one query per row (a sparkline per route) keeps the server's queue short this way: embedded PGlite
 * answers one statement at a time, and ingestion takes its turn between them.
 */
export async function mapLimited<T, R>(
  items: readonly T[],
  width: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}
