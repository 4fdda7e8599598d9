// Body validation: compiled JSON schemas per type (structure and types), so that every
// rejection names the offending field. Semantic checks (addresses, CIDRs, references)
// happen in the config service, which also names fields.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { type TObject, type TSchema, Type } from '@sinclair/typebox';
import { BadRequest } from '../config/errors.js';
import { FqName, Uuid, UuidPattern } from './schemas.js';
import {
  COMMON_PROPERTIES,
  type TypeDef,
  type TypeName,
  TYPES,
  backRefField,
  childTypes,
  childrenField,
} from './types.js';

/** Fields a client may echo back from a GET; the server ignores them. */
export function echoedFields(def: TypeDef): string[] {
  const fields = ['href', 'parent_href', 'name'];
  for (const other of TYPES.values()) {
    if (other.refs.some((r) => r.target === def.name)) fields.push(backRefField(other.name));
  }
  for (const child of childTypes(def.name)) fields.push(childrenField(child));
  return fields;
}

export function refItemSchema(attr: TSchema | undefined): TObject {
  return Type.Object(
    {
      to: Type.Optional(FqName),
      uuid: Type.Optional(Uuid),
      attr: Type.Optional(attr ?? Type.Any()),
      href: Type.Optional(Type.String()),
    },
    { additionalProperties: true },
  );
}

/** Schema of `{"<type>": {...}}`'s inner object, as accepted by create and update. */
export function bodySchema(def: TypeDef): TObject {
  const props: Record<string, TSchema> = {
    uuid: Type.Optional(Uuid),
    fq_name: Type.Optional(FqName),
    parent_type: Type.Optional(Type.String({ description: 'type of the parent, where the type has several; fixed at creation' })),
    parent_uuid: Type.Optional(Type.String({ pattern: UuidPattern, description: 'uuid of the parent (instead of giving its fq_name); fixed at creation' })),
  };
  for (const [k, s] of Object.entries({ ...COMMON_PROPERTIES, ...def.properties })) props[k] = Type.Optional(s);
  for (const r of def.refs) props[r.field] = Type.Optional(Type.Array(refItemSchema(r.attr)));
  for (const f of echoedFields(def)) props[f] = Type.Optional(Type.Any());
  return Type.Object(props, { additionalProperties: false, description: def.description });
}

const ajv = new Ajv({ allErrors: false, strict: false, verbose: true });
const validators = new Map<TypeName, ValidateFunction>();
for (const def of TYPES.values()) validators.set(def.name, ajv.compile(bodySchema(def)));

/** Throws BadRequest naming the first offending field. */
export function validateBody(type: TypeName, body: unknown): asserts body is Record<string, unknown> {
  const validate = validators.get(type)!;
  if (validate(body)) return;
  // A failed union reports each branch first; the union's own error reads better.
  const errors = validate.errors!;
  const e = errors.find((x) => x.keyword === 'anyOf') ?? errors[0]!;
  throw new BadRequest(describeError(type, e), fieldPath(type, e));
}

function fieldPath(type: string, e: ErrorObject): string {
  const path = e.instancePath
    .split('/')
    .slice(1)
    .map((p) => (/^\d+$/.test(p) ? `[${p}]` : `.${p.replace(/~1/g, '/').replace(/~0/g, '~')}`))
    .join('');
  const extra = e.keyword === 'additionalProperties' ? `.${(e.params as { additionalProperty: string }).additionalProperty}` : '';
  return `${type}${path}${extra}`;
}

function describeError(type: string, e: ErrorObject): string {
  const field = fieldPath(type, e);
  switch (e.keyword) {
    case 'additionalProperties':
      return `${field}: unknown field for ${type}`;
    case 'required':
      return `${field}.${(e.params as { missingProperty: string }).missingProperty}: required field is missing`;
    case 'pattern':
      return `${field}: '${String(e.data)}' does not match the expected format`;
    case 'anyOf': {
      const allowed = (e.schema as { const?: unknown }[]).map((b) => JSON.stringify(b.const));
      return `${field}: ${JSON.stringify(e.data)} is not one of ${allowed.join(', ')}`;
    }
    default:
      return `${field}: ${e.message ?? 'invalid'}`;
  }
}

/** Recursively drops null members: TF's clients send null for "absent". */
export function stripNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.filter((v) => v !== null).map(stripNulls);
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties: a "__proto__" key stays data (and is then
    // rejected as an unknown field) instead of replacing the prototype.
    return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null).map(([k, v]) => [k, stripNulls(v)]));
  }
  return value;
}
