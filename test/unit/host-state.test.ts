// computeHostState: from the control node's document (computed here by the routing engine
// from configuration objects) and the registrations to what the host forwards.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeHostState } from '../../src/agent/host-state.js';
import type { PortRegistration } from '../../src/agent/ports/registry.js';
import type { StoredObject } from '../../src/config/object.js';
import { RoutingEngine } from '../../src/control/routing.js';
import { viewOf } from '../support/config-objects.js';

const NET = '11111111-1111-4111-8111-111111111111';
const VMI = '22222222-2222-4222-8222-222222222222';
const IIP = '33333333-3333-4333-8333-333333333333';
const SUBNET = '44444444-4444-4444-8444-444444444444';


/** Host h1's document for these objects. */
const docOf = (objs: StoredObject[]) => new Map(new RoutingEngine(viewOf(objs)).entries('h1'));

const network: StoredObject = {
  type: 'virtual-network',
  uuid: NET,
  fq_name: ['d', 'p', 'red'],
  props: { virtual_network_network_id: 7 },
  refs: {
    network_ipam_refs: [
      {
        uuid: 'ipam',
        attr: { ipam_subnets: [{ subnet: { ip_prefix: '10.1.0.0', ip_prefix_len: 24 }, subnet_uuid: SUBNET, default_gateway: '10.1.0.1', dns_server_address: '10.1.0.2', allocation_pools: [] }] },
      },
    ],
  },
};
const vmi = (mac: string): StoredObject => ({
  type: 'virtual-machine-interface',
  uuid: VMI,
  fq_name: ['d', 'p', 'port'],
  props: { virtual_machine_interface_mac_addresses: { mac_address: [mac] }, virtual_machine_interface_bindings: { key_value_pair: [{ key: 'host_id', value: 'h1' }] } },
  refs: { virtual_network_refs: [{ uuid: NET, attr: null }] },
});
const iip: StoredObject = {
  type: 'instance-ip',
  uuid: IIP,
  fq_name: [IIP],
  props: { instance_ip_address: '10.1.0.3', subnet_uuid: SUBNET },
  refs: { virtual_network_refs: [{ uuid: NET, attr: null }], virtual_machine_interface_refs: [{ uuid: VMI, attr: null }] },
};
const reg: PortRegistration = { vmiUuid: VMI, mode: 'create', netns: 'w1', ifname: 'eth0', enabled: true, createdAt: '' };

test('a registered interface with an address becomes a port of its network', () => {
  const h = computeHostState(docOf([network, vmi('02:22:22:22:22:22'), iip]), [reg], { host: 'h1' });
  assert.deepEqual(h.pending, []);
  assert.deepEqual(h.networks, [{ uuid: NET, name: 'd:p:red', id: 7, table: 1_000_007, serviceAddresses: ['10.1.0.1', '10.1.0.2'], subnets: ['10.1.0.0/24'], vni: 8_388_615 }], 'no configured VNI: 2^23 + the network id');
  assert.equal(h.ports.length, 1);
  const p = h.ports[0]!;
  assert.deepEqual(
    { hostIf: p.hostIf, mac: p.mac, address: p.address, prefixLen: p.prefixLen, gateway: p.gateway, network: p.network },
    { hostIf: 'cv-22222222222', mac: '02:22:22:22:22:22', address: '10.1.0.3', prefixLen: 24, gateway: '10.1.0.1', network: NET },
  );
});

test('incomplete or invalid configuration leaves the port pending, with the reason', () => {
  const cases: [StoredObject[], RegExp][] = [
    [[network], /not bound to this host/],
    [[network, vmi('02:22:22:22:22:22')], /no instance-ip/],
    [[network, vmi('02:22:22:22:22:22 ; reboot'), iip], /invalid MAC/],
  ];
  for (const [objs, why] of cases) {
    const h = computeHostState(docOf(objs), [reg], { host: 'h1' });
    assert.equal(h.ports.length, 0);
    assert.match(h.pending[0]!.reason, why);
  }
});

test('before any document arrives, every registration waits for a control node', () => {
  const h = computeHostState(undefined, [reg], { host: 'h1' });
  assert.match(h.pending[0]!.reason, /no configuration from a control node yet/);
});

test("a network's rules are its policies' blocks in order; a block the document lacks denies everything", () => {
  const withPolicies = { ...network, refs: { ...network.refs, network_policy_refs: [{ uuid: 'pa', attr: { sequence: { major: 1, minor: 0 } } }, { uuid: 'pb', attr: { sequence: { major: 2, minor: 0 } } }] } };
  const policy = (uuid: string, action: string): StoredObject => ({
    type: 'network-policy',
    uuid,
    fq_name: ['d', 'p', uuid],
    props: { network_policy_entries: { policy_rule: [{ rule_uuid: `${uuid}-1`, direction: '>', protocol: 'tcp', src_addresses: [{ virtual_network: 'local' }], dst_addresses: [{ virtual_network: 'any' }], action_list: { simple_action: action } }] } },
    refs: {},
  });
  const doc = docOf([withPolicies, policy('pa', 'deny'), policy('pb', 'pass'), vmi('02:22:22:22:22:22'), iip]);
  const n = computeHostState(doc, [reg], { host: 'h1' }).networks[0]!;
  assert.deepEqual(n.aclBlocks?.map((b) => b.policy), ['pa', 'pb']);
  assert.equal(n.aclBlocks?.[0], doc.get(`a/${NET}/pa`), "the document's own block objects (what the agent's rendering is memoised by)");
  assert.deepEqual(n.acl?.map((r) => [r.uuid, r.action]), [['pa-1', 'deny'], ['pb-1', 'pass']], 'acl: the blocks concatenated');
  doc.delete(`a/${NET}/pa`);
  const broken = computeHostState(doc, [reg], { host: 'h1' }).networks[0]!;
  assert.deepEqual(broken.acl?.[0], { uuid: 'policy rules missing', action: 'deny', src: null, dst: null }, 'fails closed where the rules are unknown');
  assert.equal(broken.acl?.[1]?.uuid, 'pb-1');
});
