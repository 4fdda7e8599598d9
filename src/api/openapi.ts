// The OpenAPI 3 document, generated from the same schemas that validate requests. It also
// carries what a reader of the reference needs beyond OpenAPI (x-cirrus-* extensions):
// the parents of each type, the target of each reference, and which read-only fields are
// back-references or children. docs/api-reference.md is rendered from it (reference.ts).

import { type TSchema, Type } from '@sinclair/typebox';
import { ACTION_SCHEMAS } from './routes/actions.js';
import { bodySchema } from '../model/validate.js';
import { FqName, Uuid } from '../model/schemas.js';
import { TYPES, type TypeDef, type TypeName, backRefField, childTypes, childrenField, plural } from '../model/types.js';

/** A JSON Schema as OpenAPI 3.0 shows it (plus Cirrus's x-cirrus-* annotations). */
export interface SchemaObject {
  $ref?: string;
  type?: string;
  description?: string;
  properties?: Record<string, SchemaObject>;
  required?: string[];
  additionalProperties?: boolean | SchemaObject;
  patternProperties?: Record<string, SchemaObject>;
  items?: SchemaObject;
  anyOf?: SchemaObject[];
  oneOf?: SchemaObject[];
  const?: unknown;
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  nullable?: boolean;
  readOnly?: boolean;
  /** Parent types of a resource type (`config-root`: none). */
  'x-cirrus-parents'?: string[];
  /** Target type of a reference list. */
  'x-cirrus-ref'?: string;
  /** Read-only list of the objects of this type referring to the object. */
  'x-cirrus-back-ref'?: string;
  /** Read-only list of the object's children of this type. */
  'x-cirrus-children'?: string;
  /** A property the server assigns (readOnly too). */
  'x-cirrus-server-owned'?: boolean;
}

export interface ParameterObject {
  name: string;
  in: 'query' | 'path';
  required: boolean;
  description: string;
  schema: SchemaObject;
  /** A flag: present without a value means true. */
  allowEmptyValue?: boolean;
}

export interface ResponseObject {
  description: string;
  content?: { 'application/json': { schema: SchemaObject } };
}

export type Reference = { $ref: string };

export interface OperationObject {
  tags: string[];
  summary: string;
  description?: string;
  parameters?: (ParameterObject | Reference)[];
  requestBody?: { required: boolean; content: { 'application/json': { schema: SchemaObject } } };
  responses: Record<string, ResponseObject | Reference>;
}

export type Method = 'get' | 'post' | 'put' | 'delete';
export type PathItem = Partial<Record<Method, OperationObject>>;

export interface OpenApiDocument {
  openapi: '3.0.3';
  info: { title: string; version: string; description: string };
  tags: { name: string; description: string }[];
  paths: Record<string, PathItem>;
  components: {
    schemas: Record<string, SchemaObject>;
    parameters: Record<string, ParameterObject>;
    responses: Record<string, ResponseObject>;
  };
}

/** JSON-clean copy (TypeBox adds symbol keys that JSON drops). */
const plain = (s: unknown): SchemaObject => JSON.parse(JSON.stringify(s)) as SchemaObject;

const schemaRef = (name: string): SchemaObject => ({ $ref: `#/components/schemas/${name}` });
const paramRef = (name: string): Reference => ({ $ref: `#/components/parameters/${name}` });
const json = (schema: TSchema | SchemaObject, description = 'OK'): ResponseObject => ({ description, content: { 'application/json': { schema: plain(schema) } } });
const body = (schema: TSchema | SchemaObject) => ({ required: true, content: { 'application/json': { schema: plain(schema) } } });
const errors = (...codes: number[]): Record<string, Reference> =>
  Object.fromEntries(codes.map((c) => [String(c), { $ref: `#/components/responses/${c}` }]));

const INFO = `OpenContrail-shaped (Tungsten Fabric) configuration API of Cirrus, on port 8082 by default.

- Success is **200** for every operation, as in TF (its clients treat 201 and 204 as errors). Failures answer TF's error shape (\`Error\`) with the statuses listed per operation; any request may also answer 500 when the store cannot commit (nothing of it is kept).
- Bodies are JSON whatever their content type says; \`null\` members mean "absent". A rejected request stores nothing: every write is one transaction.
- A resource is sent and read wrapped in its type name: \`{"virtual-network": {...}}\`. Unknown top-level fields are rejected (400, \`error.field\` names them); the nested TF structures accept fields Cirrus does not model and store them.
- References are written \`{"to": fq_name}\` or \`{"uuid": ...}\`, with an \`attr\` where the reference has one, and read back as \`{to, uuid, href, attr}\` (\`attr\` null when the reference has none). Children read back as \`{to, uuid, href}\`.
- Read-only fields are filled by the server, so that an object read can be sent back (read-modify-write): server-owned properties must then be unchanged (400 otherwise); links, back-references and children are ignored.
- Query flags count by presence, and Python-style values are accepted: \`?detail\`, \`detail=True\`, \`detail=false\`. Lists are comma-separated.`;

const TAGS: { name: string; description: string }[] = [
  ...[...TYPES.values()].map((d) => ({ name: d.name, description: d.description })),
  { name: 'actions', description: "TF's action URLs: name and uuid look-ups, reference and map-property updates, bulk lists, the user-agent key-value store, and address actions on a network." },
  { name: 'change feed', description: "Cirrus's own paths (not in TF): the store's change feed (a snapshot, then long-polled changes) that control nodes follow to keep their copy of the configuration; `cirrus trace` reads the snapshot." },
  { name: 'discovery', description: "TF's homepage (the links clients discover types and actions from), this document, and the health check." },
];

const ERROR = Type.Object(
  {
    error: Type.Object({
      code: Type.Integer({ description: 'the HTTP status' }),
      message: Type.String({ description: "what went wrong, in TF's wording where TF's clients parse it" }),
      field: Type.Optional(Type.String({ description: 'the offending field or query parameter, as a path (virtual-network.network_ipam_refs[0].attr)' })),
      blockers: Type.Optional(
        Type.Array(Type.Object({ type: Type.String(), uuid: Type.String() }), { description: 'a delete blocked by references or children (409): the objects in the way' }),
      ),
    }),
  },
  { description: "TF's error shape, for every failure" },
);

const ERROR_RESPONSES: Record<number, string> = {
  400: 'Invalid JSON, body or query: wrong wrapper key, unknown field, wrong type or value, bad address/CIDR/MAC, a reference to something that does not exist, a change to an immutable or server-owned field. `error.field` names the offending field.',
  404: 'No such object (or a uuid of another type), unknown name, key or path.',
  409: "Conflict: duplicate fq_name or uuid, address in use, no free address, overlapping subnets, VNI in use, a subnet change that would strand addresses; or a delete blocked by references or children (TF's wording `Delete when resource still referred: [...]` / `Delete when children still present: [...]`; `error.blockers` lists them).",
  410: 'The revision asked for is gone (compacted) or ahead of this store: take a new snapshot.',
  413: 'Body larger than the limit (1 MiB by default).',
  503: 'A write lost the optimistic-concurrency race 8 times in a row: retry.',
};

const flag = (name: string, description: string): ParameterObject => ({
  name,
  in: 'query',
  required: false,
  allowEmptyValue: true,
  description,
  schema: { type: 'boolean' },
});
const query = (name: string, description: string, schema: SchemaObject = { type: 'string' }, required = false): ParameterObject => ({
  name,
  in: 'query',
  required,
  description,
  schema,
});

const PARAMETERS: Record<string, ParameterObject> = {
  uuid: { name: 'uuid', in: 'path', required: true, description: 'uuid of the object', schema: plain(Uuid) },
  detail: flag('detail', 'full objects (`[{"<type>": {...}}]`) instead of `{href, fq_name, uuid}` entries'),
  count: flag('count', 'only the number of matching objects: `{"<type>s": {"count": N}}`'),
  listFields: query('fields', 'comma-separated fields to add to each plain entry'),
  parent_id: query('parent_id', 'comma-separated uuids: objects whose parent is one of these'),
  parent_fq_name_str: query('parent_fq_name_str', 'objects under the parent with this fq_name, colon-separated (`default-domain:admin`)'),
  parent_type: query('parent_type', 'the type of the parent named by `parent_fq_name_str`, where the type has several'),
  back_ref_id: query('back_ref_id', 'comma-separated uuids: objects referring to one of these'),
  obj_uuids: query('obj_uuids', 'comma-separated uuids: only these objects'),
  fq_names: query('fq_names', 'comma-separated colon-separated fq_names: only these objects'),
  filters: query('filters', 'comma-separated `property=="json value"`: objects whose property equals the value (bare words are taken as strings)'),
  shared: flag('shared', 'with a parent filter, also the `is_shared` objects of other parents'),
  page_limit: query('page_limit', 'at most this many objects, in creation order; the answer then carries `marker`', { type: 'integer', minimum: 1 }),
  page_marker: query('page_marker', 'the `marker` of the previous page: continue after it'),
  readFields: query('fields', 'comma-separated back-reference and children fields to include (properties and references are always included); the others are left out'),
  exclude_back_refs: flag('exclude_back_refs', 'leave out the `*_back_refs` fields'),
  exclude_children: flag('exclude_children', 'leave out the children fields'),
};

const LIST_PARAMS = ['detail', 'count', 'listFields', 'parent_id', 'parent_fq_name_str', 'parent_type', 'back_ref_id', 'obj_uuids', 'fq_names', 'filters', 'shared', 'page_limit', 'page_marker'];

/** `{"<type>": {...}}`. */
const wrapped = (name: string, inner: TSchema | SchemaObject): SchemaObject => ({ type: 'object', properties: { [name]: plain(inner) }, required: [name] });

/** The resource schema: bodySchema, annotated with what the server owns and how it links. */
function resourceSchema(def: TypeDef): SchemaObject {
  const s = plain(bodySchema(def));
  const props = s.properties!;
  s['x-cirrus-parents'] = [...def.parents];
  for (const p of def.serverOwned) Object.assign(props[p]!, { readOnly: true, 'x-cirrus-server-owned': true });
  for (const r of def.refs) Object.assign(props[r.field]!, { description: r.description, 'x-cirrus-ref': r.target });
  for (const other of TYPES.values()) {
    if (!other.refs.some((r) => r.target === def.name)) continue;
    Object.assign(props[backRefField(other.name)]!, readOnlyLinks(`the ${other.name} objects referring to this one`), { 'x-cirrus-back-ref': other.name });
  }
  for (const child of childTypes(def.name)) {
    Object.assign(props[childrenField(child)]!, readOnlyLinks(`the ${child} children of this object`), { 'x-cirrus-children': child });
  }
  // Reads show an unset id_perms.description as null, as TF does (requests drop nulls).
  props['id_perms']!.properties!['description']!.nullable = true;
  Object.assign(props['href']!, { type: 'string', readOnly: true, description: 'URL of this object' });
  Object.assign(props['name']!, { type: 'string', description: 'last element of fq_name; on create without fq_name, the name under the default parent' });
  Object.assign(props['parent_href']!, { type: 'string', readOnly: true, description: 'URL of the parent' });
  return s;
}

const readOnlyLinks = (description: string): SchemaObject => ({
  type: 'array',
  readOnly: true,
  description,
  items: plain(Type.Object({ to: FqName, uuid: Uuid, href: Type.String(), attr: Type.Optional(Type.Any()) })),
});

function createAnswer(name: string): SchemaObject {
  return wrapped(
    name,
    Type.Object({
      uuid: Uuid,
      fq_name: FqName,
      name: Type.String(),
      href: Type.String(),
      parent_type: Type.Optional(Type.String()),
      parent_uuid: Type.Optional(Uuid),
      parent_href: Type.Optional(Type.String()),
    }),
  );
}

const ListEntry = Type.Object(
  { href: Type.String(), fq_name: FqName, uuid: Uuid },
  { additionalProperties: true, description: 'plain entry, with the fields asked for by `fields`' },
);

/** GET /<type>s and list-bulk-collection: plain entries, full objects (detail) or a count. */
function listAnswer(name: TypeName): SchemaObject {
  return {
    type: 'object',
    properties: {
      [plural(name)]: {
        anyOf: [
          { type: 'array', items: { anyOf: [plain(ListEntry), wrapped(name, schemaRef(name))] } },
          plain(Type.Object({ count: Type.Integer({ minimum: 0 }) }, { description: 'with `count`' })),
        ],
      },
      marker: { type: 'string', nullable: true, description: 'with `page_limit`: pass as `page_marker` for the next page; null after the last' },
    },
    required: [plural(name)],
  };
}

const Empty: SchemaObject = { type: 'object', properties: {}, additionalProperties: false };
const UuidAnswer = Type.Object({ uuid: Uuid });

function resourcePaths(def: TypeDef, paths: Record<string, PathItem>): void {
  const name = def.name;
  const tags = [name];
  const writeErrors = [400, 409, 413, 503];
  paths[`/${plural(name)}`] = {
    get: { tags, summary: `List ${name} objects`, parameters: LIST_PARAMS.map(paramRef), responses: { 200: json(listAnswer(name)), ...errors(400) } },
    post: { tags, summary: `Create a ${name}`, requestBody: body(wrapped(name, schemaRef(name))), responses: { 200: json(createAnswer(name)), ...errors(...writeErrors) } },
  };
  paths[`/${name}/{uuid}`] = {
    get: {
      tags,
      summary: `Read a ${name}: properties, references, back-references and children`,
      parameters: [paramRef('uuid'), paramRef('readFields'), paramRef('exclude_back_refs'), paramRef('exclude_children')],
      responses: { 200: json(wrapped(name, schemaRef(name))), ...errors(400, 404) },
    },
    put: {
      tags,
      summary: `Update a ${name}: each given property replaces the stored one, each given reference list replaces that list`,
      parameters: [paramRef('uuid')],
      requestBody: body(wrapped(name, schemaRef(name))),
      responses: { 200: json(wrapped(name, Type.Object({ uuid: Uuid, href: Type.String() }))), ...errors(404, ...writeErrors) },
    },
    delete: {
      tags,
      summary: `Delete a ${name} (refused while it is referred to or has children)`,
      parameters: [paramRef('uuid')],
      responses: { 200: json(Empty), ...errors(404, 409, 503) },
    },
  };
}

const action = (summary: string, request: TSchema, answer: TSchema | SchemaObject, codes: number[], params: (ParameterObject | Reference)[] = []): PathItem => ({
  post: {
    tags: ['actions'],
    summary,
    ...(params.length ? { parameters: params } : {}),
    requestBody: body(request),
    responses: { 200: json(answer), ...errors(...codes) },
  },
});

function actionPaths(paths: Record<string, PathItem>): void {
  const vn = [paramRef('uuid')];
  paths['/fqname-to-id'] = action('look up the uuid of a fully qualified name', ACTION_SCHEMAS.fqnameToId, UuidAnswer, [400, 404]);
  paths['/id-to-fqname'] = action('look up the fq_name and type of a uuid', ACTION_SCHEMAS.idToFqname, Type.Object({ fq_name: FqName, type: Type.String() }), [400, 404]);
  paths['/ref-update'] = action('add or delete one reference of an object', ACTION_SCHEMAS.refUpdate, UuidAnswer, [400, 404, 409, 503]);
  paths['/ref-relax-for-delete'] = action(
    'let the target of a reference be deleted (the link goes with it)',
    ACTION_SCHEMAS.refRelax,
    UuidAnswer,
    [400, 404, 503],
  );
  paths['/prop-collection-get'] = {
    get: {
      tags: ['actions'],
      summary: 'elements of map properties (annotations, bindings) as [element, key] pairs',
      parameters: [
        query('uuid', 'uuid of the object', plain(Uuid), true),
        query('fields', 'comma-separated map properties: annotations, virtual_machine_interface_bindings', { type: 'string' }, true),
        query('position', 'only the element with this key'),
      ],
      responses: {
        200: json({
          type: 'object',
          description: 'one member per field asked for: its elements as [element, key] pairs',
          additionalProperties: { type: 'array', items: { type: 'array', description: '[element, key]', items: {} } },
        }),
        ...errors(400, 404),
      },
    },
  };
  paths['/prop-collection-update'] = action('set or delete elements of map properties (annotations, bindings)', ACTION_SCHEMAS.propCollectionUpdate, Empty, [400, 404, 503]);
  paths['/list-bulk-collection'] = action(
    'list with the list parameters in the body (for many uuids); answers as `GET /<type>s`',
    ACTION_SCHEMAS.listBulk,
    { type: 'object', description: '`{"<type>s": ...}` as `GET /<type>s` answers', additionalProperties: true },
    [400],
  );
  paths['/useragent-kv'] = action(
    "TF's user-agent key-value store: STORE, RETRIEVE (one key, or every pair without key), DELETE",
    ACTION_SCHEMAS.useragentKv,
    Type.Object({
      value: Type.Optional(
        Type.Union([Type.String(), Type.Array(Type.Object({ key: Type.String(), value: Type.String() }))], { description: 'RETRIEVE only: the value, or every pair' }),
      ),
    }),
    [400, 404, 503],
  );
  paths['/virtual-network/{uuid}/ip-alloc'] = action(
    'reserve addresses in a network (until ip-free or the network is deleted)',
    ACTION_SCHEMAS.ipAlloc,
    Type.Object({ ip_addr: Type.Array(Type.String()) }),
    [400, 404, 409, 503],
    vn,
  );
  paths['/virtual-network/{uuid}/ip-free'] = action('release addresses reserved with ip-alloc', ACTION_SCHEMAS.ipFree, Empty, [400, 404, 409, 503], vn);
  paths['/virtual-network/{uuid}/subnet-ip-count'] = action(
    'addresses in use per subnet',
    ACTION_SCHEMAS.subnetIpCount,
    Type.Object({ ip_count_list: Type.Array(Type.Integer({ minimum: 0 }), { description: 'one count per subnet_list entry' }) }),
    [400, 404],
    vn,
  );
}

const KeyValue = Type.Object({
  key: Type.String({ description: 'store key, e.g. `o/<type>/<uuid>` for an object' }),
  value: Type.String({ description: 'JSON text' }),
  createRev: Type.Integer({ description: 'revision that created the key' }),
  modRev: Type.Integer({ description: 'revision that last changed it' }),
});
const Change = Type.Object({
  rev: Type.Integer({ description: 'revision of the change' }),
  key: Type.String(),
  value: Type.Optional(Type.String({ description: 'new value; absent for a deletion' })),
  createRev: Type.Optional(Type.Integer({ description: 'given when a key is restored after a failed group commit' })),
});

function cirrusPaths(paths: Record<string, PathItem>): void {
  paths['/_cirrus/snapshot'] = {
    get: {
      tags: ['change feed'],
      summary: 'every key of the store with the revision it was read at; follow it with `GET /_cirrus/watch?since=<rev>`',
      responses: { 200: json(Type.Object({ rev: Type.Integer({ description: 'the revision the keys were read at' }), kvs: Type.Array(KeyValue, { description: 'in key order' }) })) },
    },
  };
  paths['/_cirrus/watch'] = {
    get: {
      tags: ['change feed'],
      summary: 'the changes after a revision, in commit order; waits for one up to timeout seconds',
      parameters: [
        query('since', 'revision already seen (from the snapshot or the previous answer)', { type: 'integer', minimum: 0 }, true),
        query('timeout', 'seconds to wait when nothing has changed yet (0 to 60, default 25)', { type: 'integer', minimum: 0, maximum: 60 }),
      ],
      responses: {
        200: json(
          Type.Object({
            rev: Type.Integer({ description: 'pass as since next time' }),
            changes: Type.Array(Change, { description: 'empty when the wait timed out' }),
          }),
        ),
        ...errors(400, 410),
      },
    },
  };
}

function discoveryPaths(paths: Record<string, PathItem>): void {
  const Link = Type.Object({
    link: Type.Object({
      rel: Type.Union([Type.Literal('documentation'), Type.Literal('collection'), Type.Literal('resource-base'), Type.Literal('action')]),
      href: Type.String(),
      name: Type.String(),
      method: Type.Unsafe<string | null>({ type: 'string', nullable: true }),
    }),
  });
  paths['/'] = {
    get: {
      tags: ['discovery'],
      summary: "TF's homepage: links to the collections, resource bases and actions",
      responses: { 200: json(Type.Object({ href: Type.String(), links: Type.Array(Link) })) },
    },
  };
  paths['/openapi.json'] = { get: { tags: ['discovery'], summary: 'the OpenAPI document (the one this reference is rendered from)', responses: { 200: json({ type: 'object' }) } } };
  paths['/healthz'] = {
    get: {
      tags: ['discovery'],
      summary: 'health check',
      responses: { 200: json(Type.Object({ status: Type.Literal('ok'), revision: Type.Integer({ description: 'revision of the configuration this server has applied' }) })) },
    },
  };
}

export function openApiDocument(): OpenApiDocument {
  const schemas: Record<string, SchemaObject> = { Error: plain(ERROR) };
  const paths: Record<string, PathItem> = {};
  for (const def of TYPES.values()) {
    schemas[def.name] = resourceSchema(def);
    resourcePaths(def, paths);
  }
  actionPaths(paths);
  cirrusPaths(paths);
  discoveryPaths(paths);
  const responses = Object.fromEntries(
    Object.entries(ERROR_RESPONSES).map(([code, description]) => [code, { description, content: { 'application/json': { schema: schemaRef('Error') } } }]),
  );
  return {
    openapi: '3.0.3',
    info: { title: 'Cirrus configuration API', version: '0.1.0', description: INFO },
    tags: TAGS,
    paths,
    components: { schemas, parameters: PARAMETERS, responses },
  };
}
