/**
 * The rollup dimensions a catalog implies: per event, its top-level properties of kind `enum` or
 * `boolean`. Their values are few by construction, so rolling them up per hour and value stays small,
 * and a breakdown or an equality filter on one is answered from the rollup instead of the detail rows.
 * Every process that opens the store (the server, the CLI working alone) passes the same dimensions, so
 * rows stored by any of them are rolled up alike.
 */
import type { Catalog } from '@tally/core';

export function catalogDimensions(catalog: Catalog): Record<string, string[]> {
  const dimensions: Record<string, string[]> = {};
  for (const [name, def] of Object.entries(catalog.events)) {
    const keys = Object.entries(def.properties)
      .filter(([, field]) => field.kind === 'enum' || field.kind === 'boolean')
      .map(([key]) => key)
      .sort();
    if (keys.length > 0) dimensions[name] = keys;
  }
  return dimensions;
}
