// The OpenAPI 3 document, generated from the same schemas that validate requests.

import { ACTION_SCHEMAS } from './routes/actions.js';
import { bodySchema } from '../model/validate.js';
import { TYPES, plural } from '../model/types.js';

type Json = Record<string, unknown>;

const ERROR = { $ref: '#/components/schemas/Error' };
const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((c) => [String(c), { description: ERROR_TEXT[c], content: { 'application/json': { schema: ERROR } } }]));
const ERROR_TEXT: Record<number, string> = {
  400: 'invalid body or query; error.field names the offending field',
  404: 'no such object or name',
  409: 'conflict: duplicate name, address in use, overlapping subnet, or delete blocked by references/children',
  413: 'body too large',
};

const json = (schema: unknown, description = 'OK') => ({ description, content: { 'application/json': { schema } } });

/** JSON-clean copy (TypeBox adds symbol keys that JSON drops). */
const plain = (s: unknown): unknown => JSON.parse(JSON.stringify(s));

export function openApiDocument(): Json {
  const schemas: Json = {
    Error: {
      type: 'object',
      properties: {
        error: {
          type: 'object',
          properties: { code: { type: 'integer' }, message: { type: 'string' }, field: { type: 'string' } },
          required: ['code', 'message'],
        },
      },
    },
  };
  const paths: Json = {};
  const listParams = ['detail', 'count', 'fields', 'parent_id', 'parent_fq_name_str', 'parent_type', 'back_ref_id', 'obj_uuids', 'fq_names', 'filters', 'shared', 'page_limit', 'page_marker'].map((name) => ({
    name,
    in: 'query',
    required: false,
    schema: { type: 'string' },
  }));
  const readParams = ['fields', 'exclude_back_refs', 'exclude_children'].map((name) => ({ name, in: 'query', required: false, schema: { type: 'string' } }));
  const uuidParam = { name: 'uuid', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };

  for (const def of TYPES.values()) {
    const name = def.name;
    schemas[name] = plain(bodySchema(def));
    const wrapped = { type: 'object', properties: { [name]: { $ref: `#/components/schemas/${name}` } }, required: [name] };
    paths[`/${plural(name)}`] = {
      get: { tags: [name], summary: `List ${name} objects`, parameters: listParams, responses: { 200: json({ type: 'object' }), ...errors(400) } },
      post: { tags: [name], summary: `Create a ${name}`, description: def.description, requestBody: { required: true, content: { 'application/json': { schema: wrapped } } }, responses: { 200: json({ type: 'object' }), ...errors(400, 409, 413) } },
    };
    paths[`/${name}/{uuid}`] = {
      get: { tags: [name], summary: `Read a ${name}`, parameters: [uuidParam, ...readParams], responses: { 200: json(wrapped), ...errors(404) } },
      put: { tags: [name], summary: `Update a ${name} (given properties and ref lists replace the stored ones)`, parameters: [uuidParam], requestBody: { required: true, content: { 'application/json': { schema: wrapped } } }, responses: { 200: json({ type: 'object' }), ...errors(400, 404, 409, 413) } },
      delete: { tags: [name], summary: `Delete a ${name}`, parameters: [uuidParam], responses: { 200: json({ type: 'object' }), ...errors(404, 409) } },
    };
  }
  const action = (summary: string, schema: unknown, params: unknown[] = []) => ({
    post: { tags: ['actions'], summary, parameters: params, requestBody: { required: true, content: { 'application/json': { schema: plain(schema) } } }, responses: { 200: json({ type: 'object' }), ...errors(400, 404, 409) } },
  });
  paths['/fqname-to-id'] = action('uuid of a fully qualified name', ACTION_SCHEMAS.fqnameToId);
  paths['/id-to-fqname'] = action('fq_name and type of a uuid', ACTION_SCHEMAS.idToFqname);
  paths['/ref-update'] = action('add or delete one reference', ACTION_SCHEMAS.refUpdate);
  paths['/ref-relax-for-delete'] = action('let the target of a reference be deleted (the link goes with it)', ACTION_SCHEMAS.refRelax);
  paths['/prop-collection-update'] = action('set or delete elements of map properties (annotations, bindings)', ACTION_SCHEMAS.propCollectionUpdate);
  paths['/prop-collection-get'] = {
    get: {
      tags: ['actions'],
      summary: 'elements of map properties as [element, key] pairs',
      parameters: ['uuid', 'fields', 'position'].map((name) => ({ name, in: 'query', required: name !== 'position', schema: { type: 'string' } })),
      responses: { 200: json({ type: 'object' }), ...errors(400, 404) },
    },
  };
  paths['/list-bulk-collection'] = action('list with filters in the body (many uuids)', ACTION_SCHEMAS.listBulk);
  paths['/useragent-kv'] = action('TF user-agent key-value store', ACTION_SCHEMAS.useragentKv);
  paths['/virtual-network/{uuid}/ip-alloc'] = action('reserve addresses in a network', ACTION_SCHEMAS.ipAlloc, [uuidParam]);
  paths['/virtual-network/{uuid}/ip-free'] = action('release addresses reserved with ip-alloc', ACTION_SCHEMAS.ipFree, [uuidParam]);
  paths['/virtual-network/{uuid}/subnet-ip-count'] = action('addresses in use per subnet', ACTION_SCHEMAS.subnetIpCount, [uuidParam]);
  return {
    openapi: '3.0.3',
    info: { title: 'Cirrus configuration API', version: '0.1.0', description: 'OpenContrail-shaped configuration API of Cirrus. Success is 200 for every operation (as TF).' },
    paths,
    components: { schemas },
  };
}
