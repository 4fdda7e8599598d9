// CRUD of every resource type: POST/GET /<type>s, GET/PUT/DELETE /<type>/<uuid>.

import type { FastifyInstance } from 'fastify';
import { NotFound, BadRequest } from '../../config/errors.js';
import type { ConfigService, ListQuery } from '../../config/service.js';
import { type TypeName, TYPE_NAMES, isTypeName, plural, typeDef } from '../../model/types.js';
import { stripNulls } from '../../model/validate.js';
import { type Query, fieldsOf, flag, listQuery } from '../query.js';
import { hrefOf, renderListEntry, renderObject } from '../render.js';
import { baseUrl } from '../http.js';

const COLLECTIONS = new Map<string, TypeName>(TYPE_NAMES.map((t) => [plural(t), t]));

function collectionType(segment: string): TypeName {
  const type = COLLECTIONS.get(segment);
  if (!type) throw new NotFound(`unknown collection '/${segment}' (GET / lists the collections Cirrus serves)`);
  return type;
}

function resourceType(segment: string): TypeName {
  if (!isTypeName(segment)) throw new NotFound(`unknown resource type '${segment}' (GET / lists the types Cirrus serves)`);
  return segment;
}

/** `{"<type>": {...}}` → the inner object, nulls removed. */
export function unwrap(type: TypeName, body: unknown): Record<string, unknown> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BadRequest(`body must be a JSON object {"${type}": {...}}`);
  }
  const inner = (body as Record<string, unknown>)[type];
  if (inner === undefined || inner === null || typeof inner !== 'object' || Array.isArray(inner)) {
    const keys = Object.keys(body);
    throw new BadRequest(`body must be {"${type}": {...}}${keys.length ? ` (got key '${keys[0]}')` : ''}`, type);
  }
  return stripNulls(inner) as Record<string, unknown>;
}

export function parentLookup(svc: ConfigService, type: TypeName, parentType?: string) {
  return (fq: string[]): string | undefined => {
    const candidates = parentType && isTypeName(parentType) ? [parentType] : typeDef(type).parents.filter(isTypeName);
    for (const t of candidates) {
      const u = svc.view.uuidByName(t, fq);
      if (u) return u;
    }
    return undefined;
  };
}

/** Renders a list answer: plain, detail or count. */
export function listAnswer(
  svc: ConfigService,
  type: TypeName,
  query: ListQuery,
  shape: { detail: boolean; count: boolean; fields: Set<string> | undefined },
  base: string,
) {
  const { items, marker } = svc.list(type, query);
  const key = plural(type);
  if (shape.count) return { [key]: { count: items.length } };
  const list = shape.detail
    ? items.map((c) => ({ [type]: renderObject(svc.view, c.obj, base, { ...(shape.fields ? { fields: shape.fields } : {}), backRefs: false, children: false }) }))
    : items.map((c) => renderListEntry(svc.view, c, base, shape.fields));
  return query.pageLimit !== undefined ? { [key]: list, marker: marker ?? null } : { [key]: list };
}

export async function resourceRoutes(app: FastifyInstance, { svc }: { svc: ConfigService }): Promise<void> {
  app.post<{ Params: { collection: string } }>('/:collection', async (req) => {
    const type = collectionType(req.params.collection);
    const obj = await svc.create(type, unwrap(type, req.body));
    const base = baseUrl(req);
    const out: Record<string, unknown> = {
      uuid: obj.uuid,
      fq_name: obj.fq_name,
      name: obj.fq_name[obj.fq_name.length - 1],
      href: hrefOf(base, type, obj.uuid),
    };
    if (obj.parent_uuid) {
      out['parent_type'] = obj.parent_type;
      out['parent_uuid'] = obj.parent_uuid;
      out['parent_href'] = hrefOf(base, obj.parent_type!, obj.parent_uuid);
    }
    return { [type]: out };
  });

  app.get<{ Params: { collection: string }; Querystring: Query }>('/:collection', async (req) => {
    const type = collectionType(req.params.collection);
    const q = req.query;
    const query = listQuery(q, parentLookup(svc, type, q['parent_type'] as string | undefined));
    return listAnswer(svc, type, query, { detail: flag(q, 'detail'), count: flag(q, 'count'), fields: fieldsOf(q) }, baseUrl(req));
  });

  app.get<{ Params: { type: string; uuid: string }; Querystring: Query }>('/:type/:uuid', async (req) => {
    const type = resourceType(req.params.type);
    const c = svc.get(type, req.params.uuid);
    const q = req.query;
    const fields = fieldsOf(q);
    const obj = renderObject(svc.view, c.obj, baseUrl(req), {
      ...(fields ? { fields } : {}),
      backRefs: !flag(q, 'exclude_back_refs'),
      children: !flag(q, 'exclude_children'),
    });
    return { [type]: obj };
  });

  app.put<{ Params: { type: string; uuid: string } }>('/:type/:uuid', async (req) => {
    const type = resourceType(req.params.type);
    const obj = await svc.update(type, req.params.uuid, unwrap(type, req.body));
    return { [type]: { uuid: obj.uuid, href: hrefOf(baseUrl(req), type, obj.uuid) } };
  });

  app.delete<{ Params: { type: string; uuid: string } }>('/:type/:uuid', async (req) => {
    const type = resourceType(req.params.type);
    await svc.delete(type, req.params.uuid);
    return {};
  });
}
