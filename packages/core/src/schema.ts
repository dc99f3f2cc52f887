/**
 * A deliberately small schema language for event properties. It covers what analytics payloads need
 * (scalars, enums, arrays, nested objects, free JSON), infers TypeScript types, serializes to JSON
 * Schema for other languages, and validates with closures rather than generated code, so it runs
 * where `eval` is forbidden (Cloudflare Workers).
 */

export type Field<T = unknown> =
  StringField<T> | NumberField<T> | BooleanField<T> | EnumField<T> | ArrayField<T> | ObjectField<T> | JsonField<T>;

interface FieldBase<T> {
  /** Phantom: carries the inferred TypeScript type, never set at run time. */
  readonly __type?: T;
  readonly description?: string;
  /** Allow `null` as well as the declared type. */
  readonly nullable?: boolean;
}

export interface StringField<T = string> extends FieldBase<T> {
  readonly kind: 'string';
  readonly maxLength?: number;
  /** `date-time`: an ISO 8601 string; a `Date` passed here is converted. */
  readonly format?: 'date-time';
}
export interface NumberField<T = number> extends FieldBase<T> {
  readonly kind: 'number';
  readonly integer?: boolean;
  readonly minimum?: number;
  readonly maximum?: number;
}
export interface BooleanField<T = boolean> extends FieldBase<T> {
  readonly kind: 'boolean';
}
export interface EnumField<T = string> extends FieldBase<T> {
  readonly kind: 'enum';
  readonly values: readonly string[];
}
export interface ArrayField<T = unknown[]> extends FieldBase<T> {
  readonly kind: 'array';
  readonly items: Field;
  readonly maxItems?: number;
}
export interface ObjectField<T = Record<string, unknown>> extends FieldBase<T> {
  readonly kind: 'object';
  readonly properties: Readonly<Record<string, Field>>;
  readonly required: readonly string[];
}
export interface JsonField<T = JsonValue> extends FieldBase<T> {
  readonly kind: 'json';
}

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export type Infer<F> = F extends FieldBase<infer T> ? (F extends { readonly nullable: true } ? T | null : T) : never;

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The object type described by a property map and its required keys. */
export type PropsOf<P extends Record<string, Field>, R extends PropertyKey> = Simplify<
  { [K in keyof P & R]: Infer<P[K]> } & { [K in Exclude<keyof P, R>]?: Infer<P[K]> }
>;

type Opts<F> = Omit<F, 'kind' | '__type' | 'values' | 'items' | 'properties' | 'required'>;

/** Field builders: `t.string()`, `t.integer({ minimum: 0 })`, `t.enum(['a', 'b'])`… */
export const t = {
  string: (opts: Opts<StringField> = {}): StringField<string> => ({ kind: 'string', ...opts }),
  datetime: (opts: Omit<Opts<StringField>, 'format'> = {}): StringField<string> => ({
    kind: 'string',
    format: 'date-time',
    ...opts,
  }),
  number: (opts: Opts<NumberField> = {}): NumberField<number> => ({ kind: 'number', ...opts }),
  integer: (opts: Omit<Opts<NumberField>, 'integer'> = {}): NumberField<number> => ({
    kind: 'number',
    integer: true,
    ...opts,
  }),
  boolean: (opts: Opts<BooleanField> = {}): BooleanField<boolean> => ({ kind: 'boolean', ...opts }),
  enum: <const V extends readonly string[]>(values: V, opts: Opts<EnumField> = {}): EnumField<V[number]> => ({
    kind: 'enum',
    values,
    ...opts,
  }),
  array: <I extends Field>(items: I, opts: Opts<ArrayField> = {}): ArrayField<Infer<I>[]> => ({
    kind: 'array',
    items,
    ...opts,
  }),
  object: <P extends Record<string, Field>, const R extends readonly (keyof P & string)[] = []>(
    properties: P,
    required?: R,
    opts: Opts<ObjectField> = {},
  ): ObjectField<PropsOf<P, R[number]>> => ({ kind: 'object', properties, required: required ?? [], ...opts }),
  json: (opts: Opts<JsonField> = {}): JsonField<JsonValue> => ({ kind: 'json', ...opts }),
  nullable: <F extends Field>(field: F): F & { readonly nullable: true } => ({ ...field, nullable: true }),
};

/** What a type check found wrong: where, and what was expected. */
export interface SchemaIssue {
  kind: 'missing' | 'type' | 'unknown';
  path: string;
  expected: string;
}

/** Checks a sanitized value (plain JSON) against a field. Returns the first issue, or undefined. */
export function checkField(field: Field, value: unknown, path: string): SchemaIssue | undefined {
  if (value === null) return field.nullable || field.kind === 'json' ? undefined : typeIssue(field, path);
  switch (field.kind) {
    case 'string':
      if (typeof value !== 'string') return typeIssue(field, path);
      if (field.maxLength !== undefined && value.length > field.maxLength)
        return { kind: 'type', path, expected: `string of at most ${field.maxLength} characters` };
      if (field.format === 'date-time' && Number.isNaN(Date.parse(value)))
        return { kind: 'type', path, expected: 'ISO 8601 date-time string' };
      return undefined;
    case 'number':
      if (typeof value !== 'number') return typeIssue(field, path);
      if (field.integer && !Number.isInteger(value)) return { kind: 'type', path, expected: 'integer' };
      if (field.minimum !== undefined && value < field.minimum)
        return { kind: 'type', path, expected: `number ≥ ${field.minimum}` };
      if (field.maximum !== undefined && value > field.maximum)
        return { kind: 'type', path, expected: `number ≤ ${field.maximum}` };
      return undefined;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : typeIssue(field, path);
    case 'enum':
      return typeof value === 'string' && field.values.includes(value) ? undefined : typeIssue(field, path);
    case 'array': {
      if (!Array.isArray(value)) return typeIssue(field, path);
      if (field.maxItems !== undefined && value.length > field.maxItems)
        return { kind: 'type', path, expected: `array of at most ${field.maxItems} items` };
      for (let i = 0; i < value.length; i++) {
        const issue = checkField(field.items, value[i], `${path}[${i}]`);
        if (issue) return issue;
      }
      return undefined;
    }
    case 'object':
      if (typeof value !== 'object' || Array.isArray(value)) return typeIssue(field, path);
      return checkObject(field.properties, field.required, false, value as Record<string, unknown>, path);
    case 'json':
      return undefined;
  }
}

/** Checks the keys of an object: required present, declared ones well typed, no undeclared ones unless allowed. */
export function checkObject(
  properties: Readonly<Record<string, Field>>,
  required: readonly string[],
  allowExtra: boolean,
  value: Record<string, unknown>,
  path: string,
): SchemaIssue | undefined {
  for (const key of required) {
    if (value[key] === undefined)
      return { kind: 'missing', path: join(path, key), expected: describe(properties[key]) };
  }
  for (const key in value) {
    const field = properties[key];
    if (field === undefined) {
      if (allowExtra) continue;
      return { kind: 'unknown', path: join(path, key), expected: 'no such property' };
    }
    const issue = checkField(field, value[key], join(path, key));
    if (issue) return issue;
  }
  return undefined;
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

function typeIssue(field: Field, path: string): SchemaIssue {
  return { kind: 'type', path, expected: describe(field) };
}

export function describe(field: Field | undefined): string {
  if (field === undefined) return 'a value';
  const base =
    field.kind === 'enum'
      ? `one of ${field.values.map((v) => JSON.stringify(v)).join(', ')}`
      : field.kind === 'array'
        ? `array of ${describe(field.items)}`
        : field.kind === 'number' && field.integer
          ? 'integer'
          : field.kind;
  return field.nullable ? `${base} or null` : base;
}

/** JSON Schema (draft 2020-12) for a field: the documented wire contract for SDKs in other languages. */
export function toJsonSchema(field: Field): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  switch (field.kind) {
    case 'string':
      out.type = 'string';
      if (field.maxLength !== undefined) out.maxLength = field.maxLength;
      if (field.format) out.format = field.format;
      break;
    case 'number':
      out.type = field.integer ? 'integer' : 'number';
      if (field.minimum !== undefined) out.minimum = field.minimum;
      if (field.maximum !== undefined) out.maximum = field.maximum;
      break;
    case 'boolean':
      out.type = 'boolean';
      break;
    case 'enum':
      out.enum = [...field.values];
      break;
    case 'array':
      out.type = 'array';
      out.items = toJsonSchema(field.items);
      if (field.maxItems !== undefined) out.maxItems = field.maxItems;
      break;
    case 'object':
      out.type = 'object';
      out.properties = Object.fromEntries(Object.entries(field.properties).map(([k, f]) => [k, toJsonSchema(f)]));
      out.required = [...field.required];
      out.additionalProperties = false;
      break;
    case 'json':
      break;
  }
  if (field.description) out.description = field.description;
  if (field.nullable && typeof out.type === 'string') out.type = [out.type, 'null'];
  return out;
}
