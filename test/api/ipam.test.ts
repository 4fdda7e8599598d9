// Address management through the API: allocation, exhaustion and freeing, overlapping
// address spaces, concurrency, MACs, network ids and TF's network actions.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instanceIpBody, interfaceBody, networkBody } from '../support/fixtures.js';
import { useServer } from '../support/server.js';

const srv = useServer();
const api = srv.api;


const uuidOf = (r: { body: Record<string, { uuid: string }> }, type: string) => r.body[type]!.uuid;

test('a /29 is exhausted after its 5 host addresses and an address is reusable once freed', async () => {
  const net = uuidOf(await api('POST', '/virtual-networks', networkBody('small', '10.60.0.0/29')), 'virtual-network');
  const ips: { uuid: string; address: string }[] = [];
  for (let i = 0; i < 4; i++) {
    const r = await api('POST', '/instance-ips', instanceIpBody(net));
    assert.equal(r.status, 200, r.text);
    const read = await api('GET', `/instance-ip/${uuidOf(r, 'instance-ip')}`);
    ips.push({ uuid: uuidOf(r, 'instance-ip'), address: read.body['instance-ip'].instance_ip_address });
  }
  // .0 network, .1 gateway, .2 DNS, .7 broadcast: .3-.6 are the 4 usable addresses.
  assert.deepEqual(ips.map((i) => i.address), ['10.60.0.3', '10.60.0.4', '10.60.0.5', '10.60.0.6']);
  const full = await api('POST', '/instance-ips', instanceIpBody(net));
  assert.equal(full.status, 409);
  assert.match(full.body.error.message, /no free address left in network default-domain:admin:small \(10\.60\.0\.0\/29\)/);
  assert.equal((await api('DELETE', `/instance-ip/${ips[1]!.uuid}`)).status, 200);
  const again = await api('POST', '/instance-ips', instanceIpBody(net));
  assert.equal(again.status, 200);
  assert.equal((await api('GET', `/instance-ip/${uuidOf(again, 'instance-ip')}`)).body['instance-ip'].instance_ip_address, '10.60.0.4');
});

test('the same subnet in two networks: overlapping address spaces', async () => {
  const a = uuidOf(await api('POST', '/virtual-networks', networkBody('ovl-a', '172.16.0.0/24')), 'virtual-network');
  const b = uuidOf(await api('POST', '/virtual-networks', networkBody('ovl-b', '172.16.0.0/24')), 'virtual-network');
  for (const net of [a, b]) {
    const r = await api('POST', '/instance-ips', instanceIpBody(net, undefined, { instance_ip_address: '172.16.0.10' }));
    assert.equal(r.status, 200, r.text);
  }
  const ids = await Promise.all([a, b].map(async (u) => (await api('GET', `/virtual-network/${u}`)).body['virtual-network'].virtual_network_network_id));
  assert.notEqual(ids[0], ids[1], 'each network gets its own network id');
});

test('no address is handed out twice under 200 concurrent creates', async () => {
  const net = uuidOf(await api('POST', '/virtual-networks', networkBody('busy', '10.70.0.0/24')), 'virtual-network');
  const results = await Promise.all(Array.from({ length: 200 }, () => api('POST', '/instance-ips', instanceIpBody(net))));
  const ok = results.filter((r) => r.status === 200);
  assert.equal(ok.length, 200, results.find((r) => r.status !== 200)?.text);
  const list = await api('GET', `/instance-ips?detail=True&back_ref_id=${net}`);
  const addresses = list.body['instance-ips'].map((e: { 'instance-ip': { instance_ip_address: string } }) => e['instance-ip'].instance_ip_address);
  assert.equal(addresses.length, 200);
  assert.equal(new Set(addresses).size, 200);
  // .3 to .254 are the 252 usable addresses (gateway .1, DNS .2): 52 are left.
  const rest = await Promise.all(Array.from({ length: 60 }, () => api('POST', '/instance-ips', instanceIpBody(net))));
  assert.equal(rest.filter((r) => r.status === 200).length, 52);
  assert.ok(rest.filter((r) => r.status !== 200).every((r) => r.status === 409));
});

test('explicit addresses, subnet_uuid, MAC allocation', async () => {
  const net = uuidOf(await api('POST', '/virtual-networks', networkBody('multi', '10.80.0.0/24', '10.81.0.0/24')), 'virtual-network');
  const vn = (await api('GET', `/virtual-network/${net}`)).body['virtual-network'];
  const second = vn.network_ipam_refs[0].attr.ipam_subnets[1].subnet_uuid;
  const r = await api('POST', '/instance-ips', instanceIpBody(net, undefined, { subnet_uuid: second }));
  const ip = (await api('GET', `/instance-ip/${uuidOf(r, 'instance-ip')}`)).body['instance-ip'];
  assert.equal(ip.instance_ip_address, '10.81.0.3');
  assert.equal(ip.subnet_uuid, second);
  const vmi = await api('POST', '/virtual-machine-interfaces', interfaceBody('mac-test', net, { uuid: 'abcdef01-2345-4678-9abc-def012345678' }));
  const read = (await api('GET', `/virtual-machine-interface/${uuidOf(vmi, 'virtual-machine-interface')}`)).body['virtual-machine-interface'];
  assert.deepEqual(read.virtual_machine_interface_mac_addresses, { mac_address: ['02:ab:cd:ef:01:23'] });
  // An instance-ip naming only the interface lands in the interface's network.
  const byVmi = await api('POST', '/instance-ips', { 'instance-ip': { virtual_machine_interface_refs: [{ uuid: read.uuid }] } });
  assert.equal(byVmi.status, 200, byVmi.text);
  const iip = (await api('GET', `/instance-ip/${uuidOf(byVmi, 'instance-ip')}`)).body['instance-ip'];
  assert.equal(iip.virtual_network_refs[0].uuid, net);
});

test('a subnet change may not strand addresses in use', async () => {
  const net = uuidOf(await api('POST', '/virtual-networks', networkBody('shrink', '10.90.0.0/24')), 'virtual-network');
  await api('POST', '/instance-ips', instanceIpBody(net, undefined, { instance_ip_address: '10.90.0.200' }));
  const ipam = (await api('GET', `/virtual-network/${net}`)).body['virtual-network'].network_ipam_refs[0].to;
  const r = await api('PUT', `/virtual-network/${net}`, { 'virtual-network': networkBody('shrink', '10.90.0.0/25')['virtual-network'] });
  assert.equal(r.status, 409, r.text);
  assert.match(r.body.error.message, /10\.90\.0\.200/);
  assert.ok(ipam);
});

test("TF's ip-alloc, ip-free and subnet-ip-count", async () => {
  const net = uuidOf(await api('POST', '/virtual-networks', networkBody('actions', '10.95.0.0/24')), 'virtual-network');
  const alloc = await api('POST', `/virtual-network/${net}/ip-alloc`, { count: 3 });
  assert.deepEqual(alloc.body, { ip_addr: ['10.95.0.3', '10.95.0.4', '10.95.0.5'] });
  const used = await api('POST', '/instance-ips', instanceIpBody(net, undefined, { instance_ip_address: '10.95.0.4' }));
  assert.equal(used.status, 409, 'an ip-alloc reservation is taken');
  const count = await api('POST', `/virtual-network/${net}/subnet-ip-count`, { subnet_list: ['10.95.0.0/24'] });
  assert.deepEqual(count.body, { ip_count_list: [3] });
  assert.equal((await api('POST', `/virtual-network/${net}/ip-free/`, { ip_addr: ['10.95.0.4'] })).status, 200);
  assert.deepEqual((await api('POST', `/virtual-network/${net}/subnet-ip-count`, { subnet_list: ['10.95.0.0/24'] })).body, { ip_count_list: [2] });
  assert.equal((await api('DELETE', `/virtual-network/${net}`)).status, 200, 'reservations go with the network');
});
