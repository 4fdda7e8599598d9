// TF's action URLs: fqname-to-id, id-to-fqname, ref-update, list-bulk-collection,
// useragent-kv and the network actions ip-alloc, ip-free, subnet-ip-count.

import type { FastifyInstance } from 'fastify';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { BadRequest } from '../../config/errors.js';
import type { ConfigService, ListQuery } from '../../config/service.js';
import { isTypeName, TYPE_NAMES } from '../../model/types.js';
import { FqName, Uuid, UuidPattern } from '../../model/schemas.js';
import { stripNulls } from '../../model/validate.js';
import { type Query, csv, parseFilters } from '../query.js';
import { listAnswer, parentLookup } from './resources.js';
import { baseUrl } from '../http.js';

const TypeNameSchema = Type.String({ description: `one of ${TYPE_NAMES.join(', ')}` });
const StringList = (description: string) => Type.Union([Type.Array(Type.String()), Type.String()], { description: `${description}: a list or a comma-separated string` });
const Flag = (description: string) => Type.Boolean({ description });

// Descriptions are the API reference's text (docs/api-reference.md, from the OpenAPI document).
export const ACTION_SCHEMAS = {
  fqnameToId: Type.Object({ type: TypeNameSchema, fq_name: FqName }),
  idToFqname: Type.Object({ uuid: Type.String({ description: 'uuid of any object' }) }),
  refUpdate: Type.Object({
    type: Type.String({ description: 'type of the referring object' }),
    uuid: Type.String({ pattern: UuidPattern, description: 'uuid of the referring object' }),
    'ref-type': Type.String({ description: 'type of the referred object' }),
    'ref-uuid': Type.Optional(Type.String({ pattern: UuidPattern, description: 'uuid of the referred object (or ref-fq-name)' })),
    'ref-fq-name': Type.Optional(Type.Array(FqName.items, { minItems: 1, maxItems: 10, description: 'fq_name of the referred object (or ref-uuid)' })),
    operation: Type.Union([Type.Literal('ADD'), Type.Literal('DELETE')], { description: 'ADD sets the link (and its attr), DELETE removes it' }),
    attr: Type.Optional(Type.Any({ description: "the link's attr, as the type's reference describes it; null for none" })),
  }),
  listBulk: Type.Object(
    {
      type: TypeNameSchema,
      detail: Type.Optional(Flag('full objects instead of {href, fq_name, uuid} entries')),
      count: Type.Optional(Flag('only the number of matching objects')),
      fields: Type.Optional(StringList('fields to add to each plain entry')),
      obj_uuids: Type.Optional(StringList('only these objects')),
      parent_id: Type.Optional(StringList('objects whose parent is one of these uuids')),
      back_ref_id: Type.Optional(StringList('objects referring to one of these uuids')),
      fq_names: Type.Optional(Type.Array(Type.Union([FqName, Type.String()]), { description: 'only these objects: fq_name lists or colon-separated strings' })),
      filters: Type.Optional(
        Type.Union([Type.String(), Type.Record(Type.String(), Type.Any())], { description: 'property values to match: {property: value} or `property=="json value",...`' }),
      ),
      parent_fq_name_str: Type.Optional(Type.String({ description: 'objects under the parent with this colon-separated fq_name' })),
      parent_type: Type.Optional(Type.String({ description: 'the type of the parent named by parent_fq_name_str' })),
      shared: Type.Optional(Flag('with a parent filter, also the is_shared objects of other parents')),
      page_limit: Type.Optional(Type.Integer({ minimum: 1, description: 'at most this many objects; the answer carries marker' })),
      page_marker: Type.Optional(Type.String({ description: 'the marker of the previous page' })),
    },
    { additionalProperties: true },
  ),
  refRelax: Type.Object({
    uuid: Type.String({ pattern: UuidPattern, description: 'uuid of the referring object' }),
    'ref-uuid': Type.String({ pattern: UuidPattern, description: 'uuid of the referred object, which may then be deleted' }),
  }),
  propCollectionUpdate: Type.Object({
    uuid: Uuid,
    updates: Type.Array(
      Type.Object({
        field: Type.String({ description: 'the map property: annotations or virtual_machine_interface_bindings' }),
        operation: Type.Union([Type.Literal('set'), Type.Literal('delete'), Type.Literal('add'), Type.Literal('modify')], {
          description: 'set adds or replaces the element with the key of value; delete removes the element at position (add and modify are refused: TF uses them for list properties)',
        }),
        value: Type.Optional(Type.Any({ description: 'set: the element, e.g. {key, value}' })),
        position: Type.Optional(Type.String({ description: 'delete: the key of the element' })),
      }),
      { description: 'applied in order, all or nothing' },
    ),
  }),
  useragentKv: Type.Object({
    operation: Type.Union([Type.Literal('STORE'), Type.Literal('RETRIEVE'), Type.Literal('DELETE')]),
    key: Type.Optional(Type.String({ description: 'required for STORE and DELETE; RETRIEVE without it returns every pair' })),
    value: Type.Optional(Type.String({ description: 'STORE: the value' })),
  }),
  ipAlloc: Type.Object({
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096, description: 'how many addresses (default 1)' })),
    subnet: Type.Optional(Type.String({ description: 'CIDR of the subnet to allocate from (default: any subnet of the network)' })),
    family: Type.Optional(Type.Literal('v4')),
  }),
  ipFree: Type.Object({
    ip_addr: Type.Array(Type.String(), { description: 'addresses reserved with ip-alloc' }),
    subnet: Type.Optional(Type.String({ description: 'accepted for TF compatibility' })),
  }),
  subnetIpCount: Type.Object({ subnet_list: Type.Array(Type.String(), { description: 'subnets as CIDRs' }) }),
};

const ajv = new Ajv({ strict: false });
const compiled = new Map<TSchema, ReturnType<typeof ajv.compile>>();

/** Validates an action body; 400 naming the field otherwise. */
function body<T extends TSchema>(schema: T, raw: unknown): Static<T> {
  const value = stripNulls(raw ?? {});
  let check = compiled.get(schema);
  if (!check) compiled.set(schema, (check = ajv.compile(schema)));
  if (!check(value)) {
    const e = check.errors![0]!;
    const field = e.instancePath.slice(1).replace(/\//g, '.') || (e.params as { missingProperty?: string }).missingProperty || '';
    throw new BadRequest(`${field}: ${e.message ?? 'invalid'}`, field);
  }
  return value as Static<T>;
}

const asList = (v: string | string[] | undefined): string[] | undefined => (v === undefined ? undefined : Array.isArray(v) ? v : v.split(','));

export async function actionRoutes(app: FastifyInstance, { svc }: { svc: ConfigService }): Promise<void> {
  app.post('/fqname-to-id', async (req) => {
    const b = body(ACTION_SCHEMAS.fqnameToId, req.body);
    return { uuid: svc.fqNameToId(b.type, b.fq_name) };
  });

  app.post('/id-to-fqname', async (req) => {
    const b = body(ACTION_SCHEMAS.idToFqname, req.body);
    return svc.idToFqName(b.uuid.toLowerCase());
  });

  app.post('/ref-update', async (req) => {
    const b = body(ACTION_SCHEMAS.refUpdate, req.body);
    const uuid = await svc.refUpdate({
      type: b.type,
      uuid: b.uuid.toLowerCase(),
      refType: b['ref-type'],
      ...(b['ref-uuid'] ? { refUuid: b['ref-uuid'] } : {}),
      ...(b['ref-fq-name'] ? { refFqName: b['ref-fq-name'] } : {}),
      operation: b.operation,
      attr: b.attr,
    });
    return { uuid };
  });

  app.post('/ref-relax-for-delete', async (req) => {
    const b = body(ACTION_SCHEMAS.refRelax, req.body);
    return { uuid: await svc.refRelaxForDelete(b.uuid.toLowerCase(), b['ref-uuid'].toLowerCase()) };
  });

  app.get<{ Querystring: Query }>('/prop-collection-get', async (req) => {
    const uuid = req.query['uuid'];
    if (typeof uuid !== 'string') throw new BadRequest('uuid: required', 'uuid');
    const fields = csv(req.query, 'fields');
    if (!fields) throw new BadRequest('fields: required (comma-separated property names)', 'fields');
    const position = req.query['position'];
    return svc.propCollectionGet(uuid.toLowerCase(), fields, typeof position === 'string' ? position : undefined);
  });

  app.post('/prop-collection-update', async (req) => {
    const b = body(ACTION_SCHEMAS.propCollectionUpdate, req.body);
    await svc.propCollectionUpdate(b.uuid.toLowerCase(), b.updates);
    return {};
  });

  app.post('/list-bulk-collection', async (req) => {
    const b = body(ACTION_SCHEMAS.listBulk, req.body);
    if (!isTypeName(b.type)) throw new BadRequest(`type: '${b.type}' is not a type Cirrus serves`, 'type');
    const query: ListQuery = {};
    const lookup = parentLookup(svc, b.type, b.parent_type);
    const parents = [...(asList(b.parent_id) ?? []), ...(b.parent_fq_name_str ? [lookup(b.parent_fq_name_str.split(':')) ?? 'none'] : [])];
    if (parents.length) query.parentUuids = parents;
    const uuids = asList(b.obj_uuids);
    if (uuids) query.uuids = uuids;
    const backRefs = asList(b.back_ref_id);
    if (backRefs) query.backRefUuids = backRefs;
    if (b.fq_names) query.fqNames = b.fq_names.map((f) => (typeof f === 'string' ? f.split(':') : f));
    if (typeof b.filters === 'string') query.filters = parseFilters(b.filters);
    else if (b.filters) query.filters = Object.entries(b.filters);
    if (b.shared) query.shared = true;
    if (b.page_limit !== undefined) query.pageLimit = b.page_limit;
    if (b.page_marker !== undefined) query.pageMarker = b.page_marker;
    const fields = asList(b.fields);
    return listAnswer(svc, b.type, query, { detail: b.detail ?? false, count: b.count ?? false, fields: fields ? new Set(fields) : undefined }, baseUrl(req));
  });

  app.post('/useragent-kv', async (req) => {
    const b = body(ACTION_SCHEMAS.useragentKv, req.body);
    if (b.operation === 'RETRIEVE') return { value: svc.kvRetrieve(b.key) };
    if (b.key === undefined) throw new BadRequest('key: required', 'key');
    if (b.operation === 'STORE') {
      if (b.value === undefined) throw new BadRequest('value: required', 'value');
      await svc.kvStore(b.key, b.value);
    } else await svc.kvDelete(b.key);
    return {};
  });

  app.post<{ Params: { uuid: string } }>('/virtual-network/:uuid/ip-alloc', async (req) => {
    const b = body(ACTION_SCHEMAS.ipAlloc, req.body);
    return { ip_addr: await svc.ipAlloc(req.params.uuid, b.count ?? 1, b.subnet) };
  });

  app.post<{ Params: { uuid: string } }>('/virtual-network/:uuid/ip-free', async (req) => {
    const b = body(ACTION_SCHEMAS.ipFree, req.body);
    await svc.ipFree(req.params.uuid, b.ip_addr);
    return {};
  });

  app.post<{ Params: { uuid: string } }>('/virtual-network/:uuid/subnet-ip-count', async (req) => {
    const b = body(ACTION_SCHEMAS.subnetIpCount, req.body);
    return { ip_count_list: svc.subnetIpCount(req.params.uuid, b.subnet_list) };
  });
}
