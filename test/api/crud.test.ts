// CRUD of every type, references, back-references, children and list queries against
// the real server on real SQLite.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN, instanceIpBody, interfaceBody, networkBody } from '../support/fixtures.js';
import { useServer } from '../support/server.js';

const srv = useServer();
const api = srv.api;


async function create(type: string, body: unknown): Promise<string> {
  const r = await api('POST', `/${type}s`, body);
  assert.equal(r.status, 200, `create ${type}: ${r.text}`);
  return r.body[type].uuid;
}

test('defaults exist after first start', async () => {
  for (const [type, fq] of [
    ['domain', ['default-domain']],
    ['project', ['default-domain', 'default-project']],
    ['project', ADMIN],
    ['network-ipam', [...ADMIN, 'default-network-ipam']],
    ['network-ipam', ['default-domain', 'default-project', 'default-network-ipam']],
    ['security-group', [...ADMIN, 'default']],
    ['global-system-config', ['default-global-system-config']],
  ] as const) {
    const r = await api('POST', '/fqname-to-id', { type, fq_name: fq });
    assert.equal(r.status, 200, `${type} ${fq.join(':')}`);
  }
});

test('every type: create, read, list, update, delete', async () => {
  const vn = await create('virtual-network', networkBody('crud-net', '10.10.0.0/24'));
  const pool = await create('floating-ip-pool', { 'floating-ip-pool': { fq_name: [...ADMIN, 'crud-net', 'pool'], parent_type: 'virtual-network' } });
  const bodies: [string, Record<string, unknown>][] = [
    ['domain', { fq_name: ['crud-domain'] }],
    ['project', { fq_name: ['default-domain', 'crud-project'], parent_type: 'domain' }],
    ['network-ipam', { fq_name: [...ADMIN, 'crud-ipam'], parent_type: 'project', network_ipam_mgmt: { ipam_method: 'dhcp' } }],
    ['virtual-machine', { fq_name: ['crud-vm'] }],
    ['virtual-machine-interface', interfaceBody('crud-vmi', vn)['virtual-machine-interface']],
    ['network-policy', { fq_name: [...ADMIN, 'crud-pol'], parent_type: 'project', network_policy_entries: { policy_rule: [] } }],
    ['security-group', { fq_name: [...ADMIN, 'crud-sg'], parent_type: 'project' }],
    ['floating-ip', { fq_name: [...ADMIN, 'crud-net', 'pool', 'fip1'], parent_type: 'floating-ip-pool' }],
    ['virtual-router', { fq_name: ['default-global-system-config', 'host1'], parent_type: 'global-system-config', virtual_router_ip_address: '10.99.0.1' }],
    ['route-target', { fq_name: ['target:64512:100'] }],
  ];
  for (const [type, body] of bodies) {
    const uuid = await create(type, { [type]: body });
    const read = await api('GET', `/${type}/${uuid}`);
    assert.equal(read.status, 200);
    const obj = read.body[type];
    assert.deepEqual(obj.fq_name, body['fq_name']);
    assert.equal(obj.uuid, uuid);
    assert.equal(obj.name, (body['fq_name'] as string[]).at(-1));
    assert.equal(obj.href, `${srv.url}/${type}/${uuid}`);
    assert.equal(obj.display_name, obj.name);
    assert.ok(obj.id_perms.created && obj.id_perms.enable === true, `${type} id_perms`);
    const list = await api('GET', `/${type}s?obj_uuids=${uuid}`);
    assert.deepEqual(list.body[`${type}s`], [{ href: obj.href, fq_name: obj.fq_name, uuid }]);
    const put = await api('PUT', `/${type}/${uuid}`, { [type]: { display_name: `renamed ${type}` } });
    assert.equal(put.status, 200, put.text);
    assert.equal((await api('GET', `/${type}/${uuid}`)).body[type].display_name, `renamed ${type}`);
    const del = await api('DELETE', `/${type}/${uuid}`);
    assert.equal(del.status, 200, `${type}: ${del.text}`);
    assert.equal((await api('GET', `/${type}/${uuid}`)).status, 404);
  }
  assert.equal((await api('DELETE', `/floating-ip-pool/${pool}`)).status, 200);
  assert.equal((await api('DELETE', `/virtual-network/${vn}`)).status, 200);
});

test('refs, back-refs, children, ref-update and PUT replacing a ref list', async () => {
  const vn = await create('virtual-network', networkBody('links-net', '10.20.0.0/24'));
  const vm = await create('virtual-machine', { 'virtual-machine': { fq_name: ['links-vm'] } });
  const vmi = await create('virtual-machine-interface', {
    'virtual-machine-interface': { fq_name: ['links-vm', 'eth0'], parent_type: 'virtual-machine', virtual_network_refs: [{ to: [...ADMIN, 'links-net'] }] },
  });
  const iip = await create('instance-ip', instanceIpBody(vn, vmi));
  const vmRead = (await api('GET', `/virtual-machine/${vm}`)).body['virtual-machine'];
  assert.deepEqual(vmRead.virtual_machine_interfaces, [{ to: ['links-vm', 'eth0'], uuid: vmi, href: `${srv.url}/virtual-machine-interface/${vmi}` }]);
  const vmiRead = (await api('GET', `/virtual-machine-interface/${vmi}`)).body['virtual-machine-interface'];
  assert.equal(vmiRead.parent_type, 'virtual-machine');
  assert.equal(vmiRead.parent_uuid, vm);
  assert.deepEqual(vmiRead.virtual_network_refs, [{ to: [...ADMIN, 'links-net'], uuid: vn, href: `${srv.url}/virtual-network/${vn}`, attr: null }]);
  assert.deepEqual(vmiRead.instance_ip_back_refs.map((r: { uuid: string }) => r.uuid), [iip]);
  const excluded = (await api('GET', `/virtual-machine-interface/${vmi}?exclude_back_refs=True&exclude_children=True`)).body['virtual-machine-interface'];
  assert.equal(excluded.instance_ip_back_refs, undefined);
  assert.ok(excluded.virtual_network_refs, 'refs stay');
  const lazy = (await api('GET', `/virtual-machine-interface/${vmi}?fields=instance_ip_back_refs`)).body['virtual-machine-interface'];
  assert.equal(lazy.instance_ip_back_refs.length, 1);

  const pol = await create('network-policy', { 'network-policy': { fq_name: [...ADMIN, 'links-pol'], parent_type: 'project' } });
  const add = await api('POST', '/ref-update', { type: 'virtual-network', uuid: vn, 'ref-type': 'network-policy', 'ref-fq-name': [...ADMIN, 'links-pol'], operation: 'ADD', attr: { sequence: { major: 2, minor: 0 } } });
  assert.deepEqual(add.body, { uuid: vn });
  let vnRead = (await api('GET', `/virtual-network/${vn}`)).body['virtual-network'];
  assert.deepEqual(vnRead.network_policy_refs[0].attr, { sequence: { major: 2, minor: 0 } });
  const polRead = (await api('GET', `/network-policy/${pol}`)).body['network-policy'];
  assert.deepEqual(polRead.virtual_network_back_refs[0].attr, { sequence: { major: 2, minor: 0 } });
  const delRef = await api('POST', '/ref-update', { type: 'virtual-network', uuid: vn, 'ref-type': 'network-policy', 'ref-uuid': pol, operation: 'DELETE', attr: null });
  assert.equal(delRef.status, 200);
  vnRead = (await api('GET', `/virtual-network/${vn}`)).body['virtual-network'];
  assert.equal(vnRead.network_policy_refs, undefined);
  // PUT with a ref list replaces it; an empty list clears it.
  await api('PUT', `/virtual-network/${vn}`, { 'virtual-network': { network_policy_refs: [{ uuid: pol, attr: null }] } });
  assert.equal((await api('GET', `/virtual-network/${vn}`)).body['virtual-network'].network_policy_refs.length, 1);
  await api('PUT', `/virtual-network/${vn}`, { 'virtual-network': { network_policy_refs: [] } });
  assert.equal((await api('GET', `/virtual-network/${vn}`)).body['virtual-network'].network_policy_refs, undefined);
  // The subnets survive an unrelated PUT, with their server-filled fields.
  const subnet = vnRead.network_ipam_refs[0].attr.ipam_subnets[0];
  assert.equal(subnet.default_gateway, '10.20.0.1');
  assert.equal(subnet.dns_server_address, '10.20.0.2');

  const idToFq = await api('POST', '/id-to-fqname', { uuid: vmi });
  assert.deepEqual(idToFq.body, { fq_name: ['links-vm', 'eth0'], type: 'virtual-machine-interface' });
  for (const [t, u] of [['instance-ip', iip], ['virtual-machine-interface', vmi], ['virtual-machine', vm], ['network-policy', pol], ['virtual-network', vn]]) {
    assert.equal((await api('DELETE', `/${t}/${u}`)).status, 200, `${t}`);
  }
});

test('list queries: parent, back-ref, detail, count, fields, filters, pagination, bulk', async () => {
  const nets = [];
  for (let i = 0; i < 5; i++) nets.push(await create('virtual-network', networkBody(`list-${i}`, `10.30.${i}.0/24`)));
  const admin = (await api('POST', '/fqname-to-id', { type: 'project', fq_name: ADMIN })).body.uuid;
  const byParent = await api('GET', `/virtual-networks?parent_id=${admin}&detail=False&count=False&shared=False`);
  assert.deepEqual(byParent.body['virtual-networks'].map((n: { uuid: string }) => n.uuid), nets);
  const byFqStr = await api('GET', `/virtual-networks?parent_fq_name_str=default-domain:admin`);
  assert.equal(byFqStr.body['virtual-networks'].length, 5);
  const count = await api('GET', '/virtual-networks?count=True');
  assert.deepEqual(count.body, { 'virtual-networks': { count: 5 } });
  const detail = await api('GET', `/virtual-networks?detail=True&obj_uuids=${nets[0]}`);
  assert.equal(detail.body['virtual-networks'][0]['virtual-network'].network_ipam_refs[0].attr.ipam_subnets[0].subnet.ip_prefix, '10.30.0.0');
  const fields = await api('GET', `/virtual-networks?obj_uuids=${nets[1]}&fields=virtual_network_network_id`);
  assert.equal(typeof fields.body['virtual-networks'][0].virtual_network_network_id, 'number');
  const filtered = await api('GET', `/virtual-networks?filters=display_name=="list-3"`);
  assert.deepEqual(filtered.body['virtual-networks'].map((n: { uuid: string }) => n.uuid), [nets[3]]);
  const page1 = await api('GET', '/virtual-networks?page_limit=2');
  assert.equal(page1.body['virtual-networks'].length, 2);
  const page2 = await api('GET', `/virtual-networks?page_limit=2&page_marker=${page1.body.marker}`);
  const page3 = await api('GET', `/virtual-networks?page_limit=2&page_marker=${page2.body.marker}`);
  const paged = [...page1.body['virtual-networks'], ...page2.body['virtual-networks'], ...page3.body['virtual-networks']].map((n: { uuid: string }) => n.uuid);
  assert.deepEqual(paged, nets);
  const bulk = await api('POST', '/list-bulk-collection', { type: 'virtual-network', obj_uuids: nets.slice(0, 3), detail: false, count: false, shared: false });
  assert.deepEqual(bulk.body['virtual-networks'].map((n: { uuid: string }) => n.uuid), nets.slice(0, 3));
  for (const n of nets) assert.equal((await api('DELETE', `/virtual-network/${n}`)).status, 200);
});

test('useragent key-value store', async () => {
  assert.equal((await api('POST', '/useragent-kv', { operation: 'STORE', key: 'k1', value: 'v1' })).status, 200);
  assert.deepEqual((await api('POST', '/useragent-kv', { operation: 'RETRIEVE', key: 'k1' })).body, { value: 'v1' });
  assert.equal((await api('POST', '/useragent-kv', { operation: 'DELETE', key: 'k1' })).status, 200);
  assert.equal((await api('POST', '/useragent-kv', { operation: 'RETRIEVE', key: 'k1' })).status, 404);
});

test('homepage and OpenAPI document', async () => {
  const home = await api('GET', '/');
  assert.equal(home.body.href, srv.url);
  const links = home.body.links.map((l: { link: { rel: string; name: string } }) => `${l.link.rel}:${l.link.name}`);
  for (const want of ['collection:virtual-network', 'resource-base:virtual-network', 'action:name-to-id', 'action:virtual-network-ip-alloc', 'action:ref-relax-for-delete', 'action:prop-collection-get', 'action:prop-collection-update']) assert.ok(links.includes(want), want);
  const doc = await api('GET', '/openapi.json');
  assert.equal(doc.body.openapi, '3.0.3');
  assert.ok(doc.body.paths['/virtual-networks'].post);
  assert.ok(doc.body.components.schemas['virtual-network'].properties.network_ipam_refs);
});

test('ref-relax-for-delete lets the target go, and its link with it', async () => {
  const vn = await create('virtual-network', networkBody('relax-net', '10.21.0.0/24'));
  const pol = await create('network-policy', { 'network-policy': { fq_name: [...ADMIN, 'relax-pol'], parent_type: 'project' } });
  await api('POST', '/ref-update', { type: 'virtual-network', uuid: vn, 'ref-type': 'network-policy', 'ref-uuid': pol, operation: 'ADD', attr: null });
  assert.equal((await api('DELETE', `/network-policy/${pol}`)).status, 409);
  const relax = await api('POST', '/ref-relax-for-delete', { uuid: vn, 'ref-uuid': pol });
  assert.deepEqual(relax.body, { uuid: vn });
  assert.equal((await api('POST', '/ref-relax-for-delete', { uuid: vn, 'ref-uuid': vn })).status, 404, 'no such link');
  assert.equal((await api('DELETE', `/network-policy/${pol}`)).status, 200);
  assert.equal((await api('GET', `/virtual-network/${vn}`)).body['virtual-network'].network_policy_refs, undefined);
  assert.equal((await api('DELETE', `/virtual-network/${vn}`)).status, 200);
});

test('prop-collection-get and prop-collection-update on map properties', async () => {
  const vn = await create('virtual-network', networkBody('props-net', '10.22.0.0/24'));
  const vmi = await create('virtual-machine-interface', interfaceBody('props-vmi', vn));
  const set = await api('POST', '/prop-collection-update', {
    uuid: vmi,
    updates: [
      { field: 'virtual_machine_interface_bindings', operation: 'set', value: { key: 'host_id', value: 'h1' } },
      { field: 'virtual_machine_interface_bindings', operation: 'set', value: { key: 'vnic_type', value: 'normal' } },
      { field: 'virtual_machine_interface_bindings', operation: 'set', value: { key: 'host_id', value: 'h2' } },
    ],
  });
  assert.equal(set.status, 200, set.text);
  const got = await api('GET', `/prop-collection-get?uuid=${vmi}&fields=virtual_machine_interface_bindings`);
  assert.deepEqual(got.body, {
    virtual_machine_interface_bindings: [
      [{ key: 'vnic_type', value: 'normal' }, 'vnic_type'],
      [{ key: 'host_id', value: 'h2' }, 'host_id'],
    ],
  });
  await api('POST', '/prop-collection-update', { uuid: vmi, updates: [{ field: 'virtual_machine_interface_bindings', operation: 'delete', position: 'vnic_type' }] });
  const read = (await api('GET', `/virtual-machine-interface/${vmi}`)).body['virtual-machine-interface'];
  assert.deepEqual(read.virtual_machine_interface_bindings, { key_value_pair: [{ key: 'host_id', value: 'h2' }] });
  const bad = await api('GET', `/prop-collection-get?uuid=${vmi}&fields=display_name`);
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /not a collection property/);
  await api('DELETE', `/virtual-machine-interface/${vmi}`);
  await api('DELETE', `/virtual-network/${vn}`);
});
