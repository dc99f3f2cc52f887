/**
 * The event catalog: every event name with its property schema and required keys. One definition
 * gives compile-time types for `track(name, props)` and a run-time validator for everything that
 * bypasses the compiler (JavaScript callers, HTTP clients, replayed spool files).
 */
import { type ErrorCode, ErrorCodes, TallyConfigError, TallyValidationError } from './errors.js';
import { createPiiMatcher, DEFAULT_PII_POLICY, type PiiPolicy } from './pii.js';
import { sanitizeProperties } from './sanitize.js';
import {
  checkField,
  checkObject,
  type Field,
  type JsonValue,
  type PropsOf,
  type SchemaIssue,
  toJsonSchema,
} from './schema.js';

export interface EventDefinition<P extends Record<string, Field> = Record<string, Field>, R extends string = string> {
  readonly description?: string;
  readonly properties: P;
  /** Keys that must be present (and not undefined). */
  readonly required?: readonly R[];
  /** Accept keys the schema does not declare (untyped at compile time as well). Default false. */
  readonly allowExtra?: boolean;
  /**
   * What a run-time check does with top-level properties the schema does not declare, overriding the
   * tenant's and the server's setting for this event. `allowExtra: true` means `allow`.
   */
  readonly unplanned?: UnplannedPolicy;
  /** Default sampling rate in (0, 1] for this event; the tracker's `sampling` option overrides it. */
  readonly sampleRate?: number;
}

export type EventDefinitions = Record<string, EventDefinition>;

/**
 * Properties an event carries that its catalog entry does not declare (Segment Protocols calls them
 * unplanned): `reject` the event (TALLY_UNKNOWN_PROPERTY), `allow` them through unchecked, or `strip`
 * them and keep the rest. Only top-level keys: a declared object property keeps its exact shape.
 */
export type UnplannedPolicy = 'reject' | 'allow' | 'strip';

export const UNPLANNED_POLICIES: readonly UnplannedPolicy[] = ['reject', 'allow', 'strip'];

export interface Catalog<E extends EventDefinitions = EventDefinitions> {
  readonly events: E;
  readonly names: readonly string[];
  has(name: string): boolean;
  /** Sanitizes, applies the PII policy, checks the schema and the size, with the default limits. */
  validate(name: string, properties: unknown): ValidationResult;
  /** A JSON Schema document per event: the wire contract for SDKs in other languages. */
  toJsonSchema(): Record<string, unknown>;
}

export type EventName<C extends Catalog> = C extends Catalog<infer E> ? keyof E & string : never;

/** The properties type of one event: required keys required, the rest optional. */
export type EventProps<C extends Catalog, N extends EventName<C>> =
  C extends Catalog<infer E>
    ? E[N] extends EventDefinition<infer P, infer R>
      ? E[N] extends { readonly allowExtra: true }
        ? PropsOf<P, R> & Record<string, unknown>
        : PropsOf<P, R>
      : never
    : never;

export type ValidationResult =
  | {
      ok: true;
      properties: Record<string, JsonValue>;
      redacted: number;
      /** Undeclared top-level keys let through (`allow`) or removed (`strip`); absent when there were none. */
      unplanned?: { policy: 'allow' | 'strip'; keys: string[] };
    }
  | { ok: false; error: TallyValidationError };

export interface ValidatorOptions {
  /** Largest serialized properties object in UTF-8 bytes. Default 2048. */
  maxPropertiesBytes?: number;
  /** PII handling. Default: redact the default deny-list. */
  pii?: PiiPolicy;
  /**
   * The caller owns the properties objects it passes (the SDK passes its own copy): when one is already
   * clean (a plain object of declared keys with string, finite number or boolean values, no PII key,
   * well under the size limit), it is returned as it is instead of being walked and copied.
   * Default false: the result never shares an object with the input.
   */
  reuseInput?: boolean;
  /** Undeclared top-level properties of events that set no policy of their own. Default `reject`. */
  unplanned?: UnplannedPolicy;
}

export const DEFAULT_MAX_PROPERTIES_BYTES = 2048;

/** `unplanned`: this call's policy (a tenant's), in place of the validator's default. */
export type Validator = (name: string, properties: unknown, unplanned?: UnplannedPolicy) => ValidationResult;

const NAME_MAX = 200;

export function defineCatalog<const E extends EventDefinitions>(events: E): Catalog<E> {
  for (const [name, def] of Object.entries(events)) {
    if (name.length === 0 || name.length > NAME_MAX) {
      throw new TallyConfigError(`event name must be 1–${NAME_MAX} characters: ${JSON.stringify(name)}`);
    }
    for (const key of def.required ?? []) {
      if (!(key in def.properties)) {
        throw new TallyConfigError(`event "${name}" requires "${key}", which its properties do not declare`, {
          event: name,
        });
      }
    }
    if (def.sampleRate !== undefined && !(def.sampleRate > 0 && def.sampleRate <= 1)) {
      throw new TallyConfigError(`event "${name}" has sampleRate ${def.sampleRate}; use a number in (0, 1]`, {
        event: name,
      });
    }
  }
  const names = Object.keys(events);
  let defaultValidator: Validator | undefined;
  const catalog: Catalog<E> = {
    events,
    names,
    has: (name) => Object.hasOwn(events, name),
    validate: (name, properties) => {
      defaultValidator ??= createValidator(catalog);
      return defaultValidator(name, properties);
    },
    toJsonSchema: () => ({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      events: Object.fromEntries(
        names.map((n) => {
          const def = events[n] as EventDefinition;
          const schema = toJsonSchema({
            kind: 'object',
            properties: def.properties,
            required: def.required ?? [],
            description: def.description,
          });
          if (def.allowExtra) schema.additionalProperties = true;
          return [n, schema];
        }),
      ),
    }),
  };
  return catalog;
}

/** Merges catalogs into one; a name defined twice is a configuration error, not a silent override. */
export function mergeCatalogs<A extends EventDefinitions, B extends EventDefinitions>(
  a: Catalog<A>,
  b: Catalog<B>,
): Catalog<A & B> {
  for (const name of b.names) {
    if (a.has(name)) throw new TallyConfigError(`event "${name}" is defined in both catalogs`, { event: name });
  }
  return defineCatalog({ ...a.events, ...b.events } as A & B);
}

/**
 * The rollup dimensions a catalog implies: per event, its top-level properties of kind `enum` or
 * `boolean`. Their values are few by construction, so rolling them up per hour and value stays small,
 * and a breakdown or an equality filter on one is answered from the rollup instead of the detail rows.
 * Every process that opens the store (the server, the CLI working alone, the benchmark) passes the same
 * dimensions, so rows stored by any of them are rolled up alike.
 */
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

const ISSUE_CODES: Record<SchemaIssue['kind'], ErrorCode> = {
  missing: ErrorCodes.MISSING_PROPERTY,
  type: ErrorCodes.INVALID_TYPE,
  unknown: ErrorCodes.UNKNOWN_PROPERTY,
};

const ISSUE_MESSAGES: Record<SchemaIssue['kind'], string> = {
  missing: 'missing required',
  type: 'wrong type for',
  unknown: 'undeclared property',
};

/** Compiles a validator for a catalog with fixed limits and PII policy (the deny-list matcher is built once). */
export function createValidator(
  catalog: { readonly events: EventDefinitions },
  options: ValidatorOptions = {},
): Validator {
  const maxBytes = options.maxPropertiesBytes ?? DEFAULT_MAX_PROPERTIES_BYTES;
  const pii = options.pii ?? DEFAULT_PII_POLICY;
  const isPii = createPiiMatcher(pii.keys);
  const sanitizeOptions = { maxBytes, pii: pii.mode, isPii };
  const events = catalog.events;
  const shapes = options.reuseInput ? new Map<string, Shape>() : undefined;
  const defaultPolicy = options.unplanned ?? 'reject';
  return (name, properties, unplanned) => {
    if (shapes !== undefined && typeof name === 'string') {
      let shape = shapes.get(name);
      if (shape === undefined && Object.hasOwn(events, name)) {
        shape = shapeOf(events[name] as EventDefinition);
        shapes.set(name, shape);
      }
      if (shape !== undefined) {
        const clean = cleanAsIs(shape, properties, maxBytes, pii.mode === 'off' ? undefined : isPii);
        if (clean !== undefined) return { ok: true, properties: clean, redacted: 0 };
      }
    }
    if (typeof name !== 'string' || !Object.hasOwn(events, name)) {
      const shown = String(name);
      return {
        ok: false,
        error: new TallyValidationError(ErrorCodes.UNKNOWN_EVENT, `unknown event "${shown}"`, { event: shown }),
      };
    }
    const def = events[name] as EventDefinition;
    const clean = sanitizeProperties(properties, sanitizeOptions, name);
    if (!clean.ok) return clean;
    const policy = def.unplanned ?? (def.allowExtra === true ? 'allow' : (unplanned ?? defaultPolicy));
    let value = clean.value;
    let extra: string[] | undefined;
    if (policy !== 'reject') {
      for (const key in value) if (!Object.hasOwn(def.properties, key)) (extra ??= []).push(key);
      if (extra !== undefined && policy === 'strip') {
        // A new object: with reuseInput the sanitized value may be the caller's own.
        const kept: Record<string, JsonValue> = {};
        for (const key in value) if (Object.hasOwn(def.properties, key)) kept[key] = value[key] as JsonValue;
        value = kept;
      }
    }
    const issue = checkObject(def.properties, def.required ?? [], policy === 'allow', value, '');
    if (issue) {
      return {
        ok: false,
        error: new TallyValidationError(
          ISSUE_CODES[issue.kind],
          `${name}: ${ISSUE_MESSAGES[issue.kind]} "${issue.path}" (expected ${issue.expected})`,
          { event: name, path: `properties.${issue.path}`, expected: issue.expected },
        ),
      };
    }
    return extra === undefined || policy === 'reject'
      ? { ok: true, properties: value, redacted: clean.redacted }
      : { ok: true, properties: value, redacted: clean.redacted, unplanned: { policy, keys: extra } };
  };
}

/** An event's declared keys, for the check of properties that need no copy. */
interface Shape {
  fields: Map<string, { field: Field; required: boolean }>;
  required: number;
}

function shapeOf(def: EventDefinition): Shape {
  const required = new Set(def.required ?? []);
  const fields = new Map<string, { field: Field; required: boolean }>();
  for (const [key, field] of Object.entries(def.properties)) fields.set(key, { field, required: required.has(key) });
  return { fields, required: required.size };
}

/**
 * The properties themselves when they are already what sanitizing and checking would make of them,
 * else undefined and the caller takes the full path (which also finds the error, if there is one).
 * One pass, no allocation: the common analytics payload (a few strings and numbers) costs a few map
 * lookups instead of a walk that copies the object and builds a path string per value.
 */
function cleanAsIs(
  shape: Shape,
  properties: unknown,
  maxBytes: number,
  isPii: ((key: string) => boolean) | undefined,
): Record<string, JsonValue> | undefined {
  if (properties === null || typeof properties !== 'object') return undefined;
  if (Object.getPrototypeOf(properties) !== Object.prototype) return undefined;
  const props = properties as Record<string, unknown>;
  // The same over-estimate of the UTF-8 JSON size the sanitizer keeps: 6 bytes a char, 24 a number.
  let bound = 2;
  let required = 0;
  for (const key in props) {
    if (!Object.hasOwn(props, key)) return undefined;
    const declared = shape.fields.get(key);
    if (declared === undefined || (isPii !== undefined && isPii(key))) return undefined;
    const v = props[key];
    const type = typeof v;
    if (type === 'string') bound += (v as string).length * 6 + 2;
    else if (type === 'number') {
      if (!Number.isFinite(v)) return undefined;
      bound += 24;
    } else if (type === 'boolean') bound += 5;
    else return undefined;
    if (checkField(declared.field, v, key) !== undefined) return undefined;
    bound += key.length * 6 + 4;
    if (declared.required) required++;
  }
  if (required !== shape.required || bound > maxBytes) return undefined;
  return props as Record<string, JsonValue>;
}
