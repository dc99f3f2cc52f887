/**
 * What the pickers offer, from the explore kind of the query API over the view's range: the event names
 * (by volume) and, per event, the top-level properties with their JSON types and most frequent values
 * (explore samples the range's 10,000 most recent events). A name or path the range does not have can
 * still be picked: the pickers keep the current value as an option and take any path typed by hand.
 */
import { type Loaded, records, useQuery } from '../../api.js';

export interface PropertyInfo {
  /** `properties.<key>` */
  path: string;
  /** JSON types seen under this key (two types is bad data, but both are offered). */
  types: string[];
  /** The most frequent scalar values, as text. */
  values: string[];
}

export type PropertyCatalog = Map<string, PropertyInfo[]>;

const EVENT_LIMIT = 1000;
const PROPERTY_LIMIT = 1000;

export function useEventNames(): Loaded<string[]> {
  const answer = useQuery({ kind: 'explore', what: 'events', limit: EVENT_LIMIT });
  return { ...answer, data: answer.data ? records(answer.data).map((r) => String(r.event)) : undefined };
}

export function usePropertyCatalog(): Loaded<PropertyCatalog> {
  const answer = useQuery({ kind: 'explore', what: 'properties', limit: PROPERTY_LIMIT });
  let data: PropertyCatalog | undefined;
  if (answer.data) {
    data = new Map();
    for (const r of records(answer.data)) {
      const event = String(r.event);
      const path = String(r.property);
      let list = data.get(event);
      if (!list) data.set(event, (list = []));
      let info = list.find((p) => p.path === path);
      if (!info) list.push((info = { path, types: [], values: [] }));
      info.types.push(String(r.type));
      for (const v of topValues(r.top_values)) if (!info.values.includes(v)) info.values.push(v);
    }
  }
  return { ...answer, data };
}

/** explore's `top_values`: JSON of `[{value, count}]` (or already parsed). */
function topValues(cell: unknown): string[] {
  let v = cell;
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      return [];
    }
  }
  if (!Array.isArray(v)) return [];
  return v
    .map((x) => (x && typeof x === 'object' && 'value' in x ? (x as { value: unknown }).value : x))
    .filter((x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean')
    .map(String);
}

/** The properties of some events, merged (a breakdown over several series offers the union). */
export function propertiesOf(catalog: PropertyCatalog | undefined, events: readonly string[]): PropertyInfo[] {
  const out = new Map<string, PropertyInfo>();
  for (const e of events) {
    for (const p of catalog?.get(e) ?? []) {
      const have = out.get(p.path);
      if (!have) out.set(p.path, { path: p.path, types: [...p.types], values: [...p.values] });
      else {
        for (const t of p.types) if (!have.types.includes(t)) have.types.push(t);
        for (const v of p.values) if (!have.values.includes(v)) have.values.push(v);
      }
    }
  }
  return [...out.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/** Fields every event has beside its properties: the context the SDKs set, and who did it. */
export const CONTEXT_PATHS = ['context.service', 'context.library.name', 'context.library.version'] as const;
export const USER_PATHS = ['userId', 'anonymousId'] as const;
