// One tracker per server instance (per isolate on the edge runtime), made on first use: the collector's
// address comes from the environment at run time, not at build time. `track` hands its flush to `after`.
import { productCatalog } from '@tally/core';
import { createEdgeTracker, trackAfter } from '@tally/edge';
import { after } from 'next/server';

let tracked;

export function track(...args) {
  tracked ??= trackAfter(
    createEdgeTracker({
      catalog: productCatalog,
      url: `${process.env.TALLY_URL}/v1/events`,
      writeKey: process.env.TALLY_WRITE_KEY,
      context: { service: 'next-fixture' },
    }),
    after,
  );
  tracked(...args);
}
