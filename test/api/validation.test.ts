// Every class of bad input gets a clear error naming the field, and nothing is stored.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ADMIN, instanceIpBody, interfaceBody, networkBody } from '../support/fixtures.js';
import { useServer } from '../support/server.js';

let net: string;
const srv = useServer(async (api) => {
  net = (await api('POST', '/virtual-networks', networkBody('v-net', '10.40.0.0/24'))).body['virtual-network'].uuid;
});
const api = srv.api;

/** Total number of objects, to prove a rejected request stored nothing. */
async function objectCount(): Promise<number> {
  let n = 0;
  for (const t of ['virtual-network', 'virtual-machine', 'virtual-machine-interface', 'instance-ip', 'network-policy', 'security-group', 'project']) {
    n += (await api('GET', `/${t}s?count=True`)).body[`${t}s`].count;
  }
  return n;
}

test('bad bodies → 400 naming the field; nothing is stored', async () => {
  const cases: [string, string, unknown, RegExp, string?][] = [
    ['wrong type', '/virtual-networks', { 'virtual-network': { fq_name: [...ADMIN, 'x'], router_external: 'yes' } }, /router_external: must be boolean/, 'virtual-network.router_external'],
    ['unknown field', '/virtual-networks', { 'virtual-network': { fq_name: [...ADMIN, 'x'], colour: 'red' } }, /colour: unknown field/, 'virtual-network.colour'],
    ['wrong wrapper', '/virtual-networks', { 'virtual-machine': { fq_name: ['x'] } }, /body must be \{"virtual-network"/],
    ['not JSON', '/virtual-networks', '{"virtual-network": ', /not valid JSON/],
    ['bad CIDR', '/virtual-networks', networkBody('x', '10.1.2.3/24'), /host bits set/],
    ['bad prefix', '/virtual-networks', networkBody('x', '10.1.2.300/24'), /not an IPv4 address/],
    ['bad enum', '/virtual-networks', { 'virtual-network': { fq_name: [...ADMIN, 'x'], virtual_network_properties: { forwarding_mode: 'l4' } } }, /forwarding_mode: "l4" is not one of "l2_l3", "l3", "l2"/],
    ['VNI out of range', '/virtual-networks', { 'virtual-network': { fq_name: [...ADMIN, 'x'], virtual_network_properties: { vxlan_network_identifier: 8388608 } } }, /vxlan_network_identifier: must be <= 8388607/],
    ['bad MAC', '/virtual-machine-interfaces', interfaceBody('x', 'NET', { virtual_machine_interface_mac_addresses: { mac_address: ['01:00:5e:00:00:01'] } }), /mac_address\[0\]: '01:00:5e:00:00:01' is not a unicast MAC/],
    ['bad IP', '/instance-ips', instanceIpBody('NET', undefined, { instance_ip_address: '10.40.0.999' }), /instance_ip_address: '10\.40\.0\.999' is not an IPv4 address/],
    ['IP outside', '/instance-ips', instanceIpBody('NET', undefined, { instance_ip_address: '10.99.0.5' }), /is not in a subnet of default-domain:admin:v-net/],
    ['gateway IP', '/instance-ips', instanceIpBody('NET', undefined, { instance_ip_address: '10.40.0.1' }), /is reserved/],
    ['dangling ref by uuid', '/virtual-machine-interfaces', interfaceBody('x', '00000000-0000-4000-8000-000000000000'), /virtual_network_refs\[0\]: virtual-network 00000000-0000-4000-8000-000000000000 does not exist/],
    ['dangling ref by name', '/virtual-machine-interfaces', { 'virtual-machine-interface': { fq_name: [...ADMIN, 'x'], virtual_network_refs: [{ to: [...ADMIN, 'nope'] }] } }, /virtual-network default-domain:admin:nope does not exist/],
    ['missing parent', '/virtual-networks', { 'virtual-network': { fq_name: ['default-domain', 'nope', 'x'] } }, /parent project default-domain:nope does not exist/],
    ['VMI without network', '/virtual-machine-interfaces', { 'virtual-machine-interface': { fq_name: [...ADMIN, 'x'] } }, /exactly one virtual-network is required/],
    ['bad protocol', '/network-policys', { 'network-policy': { fq_name: [...ADMIN, 'p'], network_policy_entries: { policy_rule: [{ direction: '>', protocol: 'gre', src_addresses: [{ virtual_network: 'any' }], dst_addresses: [{ virtual_network: 'any' }] }] } } }, /policy_rule\[0\]\.protocol: 'gre'/],
    ['bad direction', '/network-policys', { 'network-policy': { fq_name: [...ADMIN, 'p'], network_policy_entries: { policy_rule: [{ direction: '->', protocol: 'any', src_addresses: [], dst_addresses: [] }] } } }, /direction: "->" is not one of/],
    ['bad route target', '/virtual-networks', { 'virtual-network': { fq_name: [...ADMIN, 'x'], route_target_list: { route_target: ['64512:1'] } } }, /route_target\/0|route_target\[0\]/],
    ['bad uuid', '/virtual-machines', { 'virtual-machine': { uuid: 'not-a-uuid', fq_name: ['x'] } }, /virtual-machine\.uuid/],
    ['name with colon', '/virtual-machines', { 'virtual-machine': { fq_name: ['a:b'] } }, /must not contain ':'/],
  ];
  const before = await objectCount();
  for (const [what, path, body, why, field] of cases) {
    const b = typeof body === 'string' ? body : JSON.parse(JSON.stringify(body).replaceAll('"NET"', JSON.stringify(net)));
    const r = await api('POST', path, b);
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.equal(r.body.error.code, 400);
    assert.match(r.body.error.message, why, what);
    if (field) assert.equal(r.body.error.field, field, what);
  }
  assert.equal(await objectCount(), before, 'no rejected request stored anything');
});

test('unknown types, paths and uuids → 404', async () => {
  assert.equal((await api('POST', '/widgets', { widget: {} })).status, 404);
  assert.match((await api('GET', '/widgets')).body.error.message, /unknown collection/);
  assert.equal((await api('GET', '/widget/00000000-0000-4000-8000-000000000000')).status, 404);
  const missing = await api('GET', '/virtual-network/00000000-0000-4000-8000-000000000000');
  assert.equal(missing.status, 404);
  assert.match(missing.body.error.message, /No virtual-network object found/);
  assert.equal((await api('GET', `/virtual-machine/${net}`)).status, 404, 'a uuid of another type');
  assert.equal((await api('PUT', '/virtual-network/00000000-0000-4000-8000-000000000000', { 'virtual-network': {} })).status, 404);
  assert.equal((await api('DELETE', '/virtual-network/00000000-0000-4000-8000-000000000000')).status, 404);
  const fq = await api('POST', '/fqname-to-id', { type: 'virtual-network', fq_name: [...ADMIN, 'nope'] });
  assert.equal(fq.status, 404);
  assert.equal(fq.body.error.message, "Name ['default-domain', 'admin', 'nope'] not found");
});

test('conflicts → 409: duplicate name, address in use, overlapping subnets, VNI taken', async () => {
  const dup = await api('POST', '/virtual-networks', networkBody('v-net', '10.41.0.0/24'));
  assert.equal(dup.status, 409);
  assert.match(dup.body.error.message, /default-domain:admin:v-net already exists/);
  const a = await api('POST', '/instance-ips', instanceIpBody(net, undefined, { instance_ip_address: '10.40.0.10' }));
  assert.equal(a.status, 200);
  const b = await api('POST', '/instance-ips', instanceIpBody(net, undefined, { instance_ip_address: '10.40.0.10' }));
  assert.equal(b.status, 409);
  assert.match(b.body.error.message, /10\.40\.0\.10 is already in use in network default-domain:admin:v-net/);
  const overlap = await api('POST', '/virtual-networks', networkBody('v-overlap', '10.50.0.0/16', '10.50.3.0/24'));
  assert.equal(overlap.status, 409);
  assert.match(overlap.body.error.message, /overlaps 10\.50\.0\.0\/16/);
  const vni = (n: string) => ({ 'virtual-network': { fq_name: [...ADMIN, n], virtual_network_properties: { vxlan_network_identifier: 7777 } } });
  const v1 = await api('POST', '/virtual-networks', vni('vni-a'));
  assert.equal(v1.status, 200);
  const v2 = await api('POST', '/virtual-networks', vni('vni-b'));
  assert.equal(v2.status, 409);
  assert.match(v2.body.error.message, /VNI 7777 is already used/);
  await api('DELETE', `/instance-ip/${a.body['instance-ip'].uuid}`);
  await api('DELETE', `/virtual-network/${v1.body['virtual-network'].uuid}`);
});

test('delete of a referenced object or a parent → 409 naming the blockers (TF wording)', async () => {
  const vmi = (await api('POST', '/virtual-machine-interfaces', interfaceBody('blocker', net))).body['virtual-machine-interface'].uuid;
  const r = await api('DELETE', `/virtual-network/${net}`);
  assert.equal(r.status, 409);
  assert.equal(r.body.error.message, `Delete when resource still referred: ['${srv.url}/virtual-machine-interface/${vmi}']`);
  const proj = (await api('POST', '/projects', { project: { fq_name: ['default-domain', 'p-with-kids'], parent_type: 'domain' } })).body.project.uuid;
  const kid = (await api('POST', '/network-policys', { 'network-policy': { fq_name: ['default-domain', 'p-with-kids', 'pol'], parent_type: 'project' } })).body['network-policy'].uuid;
  const c = await api('DELETE', `/project/${proj}`);
  assert.equal(c.status, 409);
  assert.equal(c.body.error.message, `Delete when children still present: ['${srv.url}/network-policy/${kid}']`);
  await api('DELETE', `/network-policy/${kid}`);
  assert.equal((await api('DELETE', `/project/${proj}`)).status, 200, 'the default security group goes with its project');
  await api('DELETE', `/virtual-machine-interface/${vmi}`);
});

test('bodies over the limit → 413; nulls mean absent', async () => {
  const big = { 'virtual-machine': { fq_name: ['big'], display_name: 'x'.repeat(2 * 1024 * 1024) } };
  const r = await api('POST', '/virtual-machines', big);
  assert.equal(r.status, 413);
  assert.match(r.body.error.message, /larger than/);
  const nulls = await api('POST', '/virtual-machines', { 'virtual-machine': { uuid: null, fq_name: ['nulls'], display_name: null, server_type: null } });
  assert.equal(nulls.status, 200, nulls.text);
  const read = await api('GET', `/virtual-machine/${nulls.body['virtual-machine'].uuid}`);
  assert.equal(read.body['virtual-machine'].display_name, 'nulls');
  await api('DELETE', `/virtual-machine/${nulls.body['virtual-machine'].uuid}`);
});

test('server-owned and immutable fields', async () => {
  const ip = (await api('POST', '/instance-ips', instanceIpBody(net))).body['instance-ip'].uuid;
  const change = await api('PUT', `/instance-ip/${ip}`, { 'instance-ip': { instance_ip_address: '10.40.0.77' } });
  assert.equal(change.status, 400);
  assert.match(change.body.error.message, /instance_ip_address: cannot be changed/);
  const vn = (await api('GET', `/virtual-network/${net}`)).body['virtual-network'];
  const echo = await api('PUT', `/virtual-network/${net}`, { 'virtual-network': vn });
  assert.equal(echo.status, 200, `a read object can be written back as is: ${echo.text}`);
  const steal = await api('PUT', `/virtual-network/${net}`, { 'virtual-network': { virtual_network_network_id: 999 } });
  assert.equal(steal.status, 400);
  assert.match(steal.body.error.message, /assigned by the server/);
  await api('DELETE', `/instance-ip/${ip}`);
});
