// The OpenAPI document (and so docs/api-reference.md) tells the truth: real answers of the
// real server, successes and failures, match the schemas the document gives for that path,
// method and status, and every status met is one the document lists for the operation.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ajv, type ValidateFunction } from 'ajv';
import { openApiDocument } from '../../src/api/openapi.js';
import { ADMIN, instanceIpBody, interfaceBody, networkBody } from '../support/fixtures.js';
import { useServer } from '../support/server.js';

const srv = useServer();
const doc = openApiDocument();
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(doc, 'openapi.json');

const pointer = (...parts: string[]) => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
const validators = new Map<string, ValidateFunction>();

/** Validator of the answer the document gives for `method template` with `status`. */
function answerSchema(method: string, template: string, status: number): ValidateFunction {
  const key = `${method} ${template} ${status}`;
  let v = validators.get(key);
  if (v) return v;
  const op = doc.paths[template]?.[method.toLowerCase() as 'get'];
  assert.ok(op, `${method} ${template} is not in the document`);
  const response = op.responses[String(status)];
  assert.ok(response, `${method} ${template} answered ${status}, which the document does not list (${Object.keys(op.responses).join(', ')})`);
  const target = '$ref' in response ? `#/components/responses/${response.$ref.split('/').pop()}` : `#/${pointer('paths', template, method.toLowerCase(), 'responses', String(status))}`;
  v = ajv.compile({ $ref: `openapi.json${target}/content/application~1json/schema` });
  validators.set(key, v);
  return v;
}

/** Calls the server and checks the answer against the document. */
async function call(method: string, template: string, params: { path?: string; body?: unknown; status?: number } = {}) {
  const status = params.status ?? 200;
  const r = await srv.api(method, params.path ?? template, params.body);
  assert.equal(r.status, status, `${method} ${params.path ?? template}: ${r.text}`);
  const answer = r.body;
  const valid = answerSchema(method, template, status);
  assert.ok(valid(answer), `${method} ${params.path ?? template} ${status} does not match the document: ${ajv.errorsText(valid.errors)}\n${r.text.slice(0, 2000)}`);
  return r.body;
}

test('discovery paths answer as documented', async () => {
  await call('GET', '/');
  await call('GET', '/openapi.json');
  await call('GET', '/healthz');
});

test('resource operations answer as documented, objects with refs, back-refs and children included', async () => {
  const vn = (await call('POST', '/virtual-networks', { body: networkBody('doc-net', '10.77.0.0/24') }))['virtual-network'].uuid;
  const pol = (await call('POST', '/network-policys', { body: { 'network-policy': { fq_name: [...ADMIN, 'doc-pol'], parent_type: 'project', network_policy_entries: { policy_rule: [] } } } }))['network-policy'].uuid;
  await call('POST', '/ref-update', { body: { type: 'virtual-network', uuid: vn, 'ref-type': 'network-policy', 'ref-uuid': pol, operation: 'ADD', attr: { sequence: { major: 0, minor: 0 } } } });
  const vmi = (await call('POST', '/virtual-machine-interfaces', { body: interfaceBody('doc-vmi', vn) }))['virtual-machine-interface'].uuid;
  await call('POST', '/instance-ips', { body: instanceIpBody(vn, vmi) });
  await call('POST', '/floating-ip-pools', { body: { 'floating-ip-pool': { fq_name: [...ADMIN, 'doc-net', 'doc-pool'], parent_type: 'virtual-network' } } });

  const read = await call('GET', '/virtual-network/{uuid}', { path: `/virtual-network/${vn}` });
  const net = read['virtual-network'];
  assert.ok(net.network_policy_refs && net.virtual_machine_interface_back_refs && net.instance_ip_back_refs && net.floating_ip_pools, 'the read shows refs, back-refs and children');
  await call('GET', '/virtual-machine-interface/{uuid}', { path: `/virtual-machine-interface/${vmi}` });
  await call('GET', '/project/{uuid}', { path: `/project/${net.parent_uuid}` });
  await call('PUT', '/virtual-network/{uuid}', { path: `/virtual-network/${vn}`, body: { 'virtual-network': { ...net, is_shared: true } } });

  await call('GET', '/virtual-networks');
  await call('GET', '/virtual-networks', { path: '/virtual-networks?detail&fields=is_shared' });
  await call('GET', '/virtual-networks', { path: '/virtual-networks?count' });
  const page = await call('GET', '/virtual-networks', { path: '/virtual-networks?page_limit=1&fields=is_shared' });
  assert.ok('marker' in page);
  await call('POST', '/list-bulk-collection', { body: { type: 'virtual-network', obj_uuids: [vn], detail: true } });

  const blocked = await call('DELETE', '/virtual-network/{uuid}', { path: `/virtual-network/${vn}`, status: 409 });
  assert.ok(blocked.error.blockers.length > 0);
  await call('POST', '/ref-relax-for-delete', { body: { uuid: vn, 'ref-uuid': pol } });
  await call('DELETE', '/network-policy/{uuid}', { path: `/network-policy/${pol}` });
});

test('actions answer as documented', async () => {
  const vn = (await call('POST', '/virtual-networks', { body: networkBody('doc-actions', '10.78.0.0/24') }))['virtual-network'].uuid;
  await call('POST', '/fqname-to-id', { body: { type: 'virtual-network', fq_name: [...ADMIN, 'doc-actions'] } });
  await call('POST', '/id-to-fqname', { body: { uuid: vn } });
  await call('POST', '/prop-collection-update', { body: { uuid: vn, updates: [{ field: 'annotations', operation: 'set', value: { key: 'owner', value: 'docs' } }] } });
  await call('GET', '/prop-collection-get', { path: `/prop-collection-get?uuid=${vn}&fields=annotations` });
  await call('POST', '/useragent-kv', { body: { operation: 'STORE', key: 'doc', value: 'v' } });
  await call('POST', '/useragent-kv', { body: { operation: 'RETRIEVE', key: 'doc' } });
  await call('POST', '/useragent-kv', { body: { operation: 'RETRIEVE' } });
  await call('POST', '/useragent-kv', { body: { operation: 'DELETE', key: 'doc' } });
  const alloc = await call('POST', '/virtual-network/{uuid}/ip-alloc', { path: `/virtual-network/${vn}/ip-alloc`, body: { count: 2 } });
  await call('POST', '/virtual-network/{uuid}/subnet-ip-count', { path: `/virtual-network/${vn}/subnet-ip-count`, body: { subnet_list: ['10.78.0.0/24'] } });
  await call('POST', '/virtual-network/{uuid}/ip-free', { path: `/virtual-network/${vn}/ip-free`, body: { ip_addr: alloc.ip_addr } });
});

test('the change feed answers as documented', async () => {
  const snap = await call('GET', '/_cirrus/snapshot');
  assert.ok(snap.kvs.length > 0);
  await call('GET', '/_cirrus/watch', { path: `/_cirrus/watch?since=${snap.rev - 1}&timeout=0` });
  await call('GET', '/_cirrus/watch', { path: `/_cirrus/watch?since=${snap.rev + 1000}&timeout=0`, status: 410 });
  await call('GET', '/_cirrus/watch', { path: '/_cirrus/watch?since=soon', status: 400 });
});

test('failures have TF\'s error shape and a status the document lists', async () => {
  await call('POST', '/virtual-networks', { body: { 'virtual-network': { fq_name: [...ADMIN, 'x'], bogus: 1 } }, status: 400 });
  await call('POST', '/virtual-networks', { body: networkBody('doc-dup', '10.79.0.0/24') });
  await call('POST', '/virtual-networks', { body: networkBody('doc-dup', '10.80.0.0/24'), status: 409 });
  await call('GET', '/virtual-network/{uuid}', { path: '/virtual-network/00000000-0000-4000-8000-000000000000', status: 404 });
  await call('GET', '/virtual-networks', { path: '/virtual-networks?detail=maybe', status: 400 });
  await call('POST', '/fqname-to-id', { body: { type: 'virtual-network', fq_name: [...ADMIN, 'nowhere'] }, status: 404 });
  await call('POST', '/virtual-networks', { body: 'x'.repeat(2 * 1024 * 1024), status: 413 });
});
