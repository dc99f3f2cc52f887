/**
 * What an `explore` answer is on every engine (docs/query.md "Explore"): its columns, and the sample the
 * `properties` answer is taken from.
 */
import type { Column } from './result.js';

/** Events the `properties` answer looks at: the most recent this many of the range. */
export const EXPLORE_PROPERTY_SAMPLE = 10_000;
/** Values listed per (event, property, type). */
export const EXPLORE_TOP_VALUES = 5;

export const EXPLORE_EVENT_COLUMNS: readonly Column[] = [
  { name: 'event', type: 'string' },
  { name: 'count', type: 'number' },
  { name: 'last_seen', type: 'time' },
];

/** Added to the event columns when the caller gave the catalog's names (QueryOptions.listedEvents). */
export const EXPLORE_LISTED_COLUMN: Column = { name: 'listed', type: 'boolean' };

export const EXPLORE_PROPERTY_COLUMNS: readonly Column[] = [
  { name: 'event', type: 'string' },
  { name: 'property', type: 'string' },
  { name: 'type', type: 'string' },
  { name: 'count', type: 'number' },
  { name: 'top_values', type: 'json' },
];
