// TF's action URLs: fqname-to-id, id-to-fqname, ref-update, list-bulk-collection,
// useragent-kv and the network actions ip-alloc, ip-free, subnet-ip-count.

import type { FastifyInstance } from 'fastify';
import { type Static, type TSchema, Type } from '@sinclair/typebox';
import { Ajv } from 'ajv';
import { BadRequest } from '../../config/errors.js';
import type { ConfigService, ListQuery } from '../../config/service.js';
import { isTypeName, TYPE_NAMES } from '../../model/types.js';
import { FqName, Uuid } from '../../model/schemas.js';
import { stripNulls } from '../../model/validate.js';
import { type Query, csv, parseFilters } from '../query.js';
import { listAnswer, parentLookup } from './resources.js';
import { baseUrl } from '../http.js';

const TypeNameSchema = Type.String({ description: `one of ${TYPE_NAMES.join(', ')}` });
const StringList = Type.Union([Type.Array(Type.String()), Type.String()]);

export const ACTION_SCHEMAS = {
  fqnameToId: Type.Object({ type: TypeNameSchema, fq_name: FqName }),
  idToFqname: Type.Object({ uuid: Type.String() }),
  refUpdate: Type.Object({
    type: TypeNameSchema,
    uuid: Uuid,
    'ref-type': TypeNameSchema,
    'ref-uuid': Type.Optional(Uuid),
    'ref-fq-name': Type.Optional(FqName),
    operation: Type.Union([Type.Literal('ADD'), Type.Literal('DELETE')]),
    attr: Type.Optional(Type.Any()),
  }),
  listBulk: Type.Object(
    {
      type: TypeNameSchema,
      detail: Type.Optional(Type.Boolean()),
      count: Type.Optional(Type.Boolean()),
      fields: Type.Optional(StringList),
      obj_uuids: Type.Optional(StringList),
      parent_id: Type.Optional(StringList),
      back_ref_id: Type.Optional(StringList),
      fq_names: Type.Optional(Type.Array(Type.Union([FqName, Type.String()]))),
      filters: Type.Optional(Type.Union([Type.String(), Type.Record(Type.String(), Type.Any())])),
      parent_fq_name_str: Type.Optional(Type.String()),
      parent_type: Type.Optional(Type.String()),
      shared: Type.Optional(Type.Boolean()),
      page_limit: Type.Optional(Type.Integer({ minimum: 1 })),
      page_marker: Type.Optional(Type.String()),
    },
    { additionalProperties: true },
  ),
  refRelax: Type.Object({ uuid: Uuid, 'ref-uuid': Uuid }),
  propCollectionUpdate: Type.Object({
    uuid: Uuid,
    updates: Type.Array(
      Type.Object({
        field: Type.String(),
        operation: Type.Union([Type.Literal('set'), Type.Literal('delete'), Type.Literal('add'), Type.Literal('modify')]),
        value: Type.Optional(Type.Any()),
        position: Type.Optional(Type.String()),
      }),
    ),
  }),
  useragentKv: Type.Object({
    operation: Type.Union([Type.Literal('STORE'), Type.Literal('RETRIEVE'), Type.Literal('DELETE')]),
    key: Type.Optional(Type.String()),
    value: Type.Optional(Type.String()),
  }),
  ipAlloc: Type.Object({
    count: Type.Optional(Type.Integer({ minimum: 1, maximum: 4096 })),
    subnet: Type.Optional(Type.String()),
    family: Type.Optional(Type.Literal('v4')),
  }),
  ipFree: Type.Object({ ip_addr: Type.Array(Type.String()), subnet: Type.Optional(Type.String()) }),
  subnetIpCount: Type.Object({ subnet_list: Type.Array(Type.String()) }),
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
