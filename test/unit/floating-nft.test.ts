// Floating IPs in the nftables tables: which connections are translated to which back end
// (fip_dnat, the fip_<k> chains, fip_marks), whose source becomes a floating IP (snat_*),
// the gateway's sets, the floating IP network's policy for translated connections
// (fip_in), and the conntrack zones joining a floating IP's network to its back ends'.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIP_CHAIN_PREFIX, fipRules } from '../../src/agent/dataplane/nat.js';
import { desiredNft, zonesOf } from '../../src/agent/dataplane/nft.js';
import type { FloatingState, HostState, NetworkState, PortState } from '../../src/agent/host-state.js';
import type { AclRule } from '../../src/control/protocol.js';

const SELF = '10.254.0.1';
const H2 = '10.254.0.2';

const net = (uuid: string, id: number, subnet: string, extra: Partial<NetworkState> = {}): NetworkState => ({ uuid, name: uuid, id, table: 1_000_000 + id, serviceAddresses: [], subnets: [subnet], vni: 8_388_608 + id, ...extra });
const RED = net('red', 1, '10.1.0.0/24');
const BLUE = net('blue', 2, '10.2.0.0/24');
const SVC = net('svc', 3, '10.96.0.0/24');
const PUB = net('pub', 4, '203.0.113.0/24', { external: true });
const OUT = net('out', 5, '10.5.0.0/24', { snat: true });
const mark = (n: NetworkState) => String(n.table);

const PASS_ALL: AclRule[] = [{ uuid: 'r-pass', action: 'pass', src: null, dst: null }];

const port = (uuid: string, network: string, address: string): PortState => ({
  vmiUuid: uuid,
  network,
  hostIf: `cv-${uuid}`,
  mac: '02:00:00:00:00:01',
  address,
  prefixLen: 24,
  registration: { vmiUuid: uuid, mode: 'create', netns: `ns-${uuid}`, ifname: 'eth0', enabled: true, createdAt: '' },
});
const R1 = port('r1', 'red', '10.1.0.11');
const R4 = port('r4', 'red', '10.1.0.14');

const PUB1 = 'aaaaaaaa-bbbb-4ccc-8ddd-000000000001';
const VIP = 'aaaaaaaa-cccc-4ccc-8ddd-000000000002';
const chainOf = (uuid: string) => `${FIP_CHAIN_PREFIX}${uuid.replace(/-/g, '').slice(0, 12)}`;

const fip = (uuid: string, network: string, address: string, local: PortState[], remote: [string, number][] = []): FloatingState => ({
  uuid,
  network,
  address,
  local: local.map((p) => ({ port: p, address: p.address })),
  remote: new Map(remote),
  backends: local.length + remote.reduce((s, [, n]) => s + n, 0),
});

const host = (o: Partial<HostState> = {}): HostState => ({ networks: [RED, BLUE, SVC, PUB, OUT], ports: [R1, R4], underlayIp: SELF, remotes: [], leaks: [], pending: [], ...o });
const maps = (h: HostState) => desiredNft(h).ip.maps;
const entries = (h: HostState, name: string) => [...maps(h).get(name)!].sort(([a], [b]) => (a < b ? -1 : 1));

/**
 * r1 is the one back end of PUB1 (a NAT address in pub) and one of VIP's (an ECMP address
 * in svc, with r4 and a back end on h2); svc is leaked into blue, blue into red.
 */
const MIXED = host({
  leaks: [{ network: 'blue', peer: 'svc' }, { network: 'red', peer: 'blue' }],
  floatingIps: [fip(PUB1, 'pub', '203.0.113.11', [R1]), fip(VIP, 'svc', '10.96.0.10', [R1, R4], [[H2, 1]])],
});

test('translation: a floating IP with back ends here jumps to its chain in its network and the networks it is leaked into; the back end\'s network routes it', () => {
  assert.deepEqual(entries(MIXED, 'fip_dnat'), [
    [`${mark(BLUE)} . 10.96.0.10`, `jump ${chainOf(VIP)}`],
    [`${mark(SVC)} . 10.96.0.10`, `jump ${chainOf(VIP)}`],
    [`${mark(PUB)} . 203.0.113.11`, `jump ${chainOf(PUB1)}`],
  ]);
  assert.deepEqual(entries(MIXED, 'fip_marks'), [
    ['10.96.0.10 . 10.1.0.11', mark(RED)],
    ['10.96.0.10 . 10.1.0.14', mark(RED)],
    ['203.0.113.11 . 10.1.0.11', mark(RED)],
  ]);
  const chains = desiredNft(MIXED).ip.chains;
  assert.deepEqual(chains.get(chainOf(VIP)), fipRules(['10.1.0.11', '10.1.0.14'], 1, true));
  assert.deepEqual(chains.get(chainOf(PUB1)), fipRules(['10.1.0.11'], 0, true));
  // Back ends only elsewhere: routing takes the connection there, nothing to translate here.
  const remoteOnly = host({ floatingIps: [fip(VIP, 'svc', '10.96.0.10', [], [[H2, 3]])] });
  for (const name of ['fip_dnat', 'fip_marks', 'snat_ports']) assert.deepEqual(entries(remoteOnly, name), [], name);
  assert.equal([...desiredNft(remoteOnly).ip.chains.keys()].some((c) => c.startsWith(FIP_CHAIN_PREFIX)), false);
});

test('source NAT: only the single back end of a floating IP leaves as it, towards anything but its own network and those leaked into it', () => {
  assert.deepEqual(entries(MIXED, 'snat_ports'), [['"cv-r1"', '']], 'r4 is only an ECMP back end: it keeps its address');
  assert.deepEqual(entries(MIXED, 'snat_local'), [['"cv-r1" . 10.1.0.0/24', ''], ['"cv-r1" . 10.2.0.0/24', '']], 'red, and blue which is leaked into red (not svc: leaked into blue only)');
  assert.deepEqual(entries(MIXED, 'snat_marks'), [['"cv-r1"', mark(PUB)]]);
  assert.deepEqual(entries(MIXED, 'snat_addrs'), [[`"cv-r1" . ${mark(PUB)}`, '203.0.113.11']]);
  const remoteSingle = host({ floatingIps: [fip(PUB1, 'pub', '203.0.113.11', [], [[H2, 1]])] });
  for (const name of ['snat_ports', 'snat_local', 'snat_marks', 'snat_addrs']) assert.deepEqual(entries(remoteSingle, name), [], `${name}: its back end is elsewhere`);
});

test('the gateway sets: only on a gateway, with the external networks\' subnets and the SNAT networks\' marks', () => {
  const gateway = host({ gateway: { interface: 'out0', nexthop: '192.0.2.1' }, ports: [] });
  assert.deepEqual(entries(gateway, 'outside'), [['"out0"', '']]);
  assert.deepEqual(entries(gateway, 'outside_route'), [['"out0"', '']]);
  assert.deepEqual(entries(gateway, 'public_marks'), [['203.0.113.0/24', mark(PUB)]]);
  assert.deepEqual(entries(gateway, 'masq_marks'), [[mark(OUT), '']]);
  for (const name of ['outside', 'outside_route', 'public_marks', 'masq_marks']) assert.deepEqual(entries(host(), name), [], `${name} on a host that is no gateway`);
});

test('fipRules: a hash of the 5-tuple over the local back ends, leaving the remote share to routing; from the overlay local ones only', () => {
  const hash = 'jhash ip saddr . ip daddr . meta l4proto . th sport . th dport';
  const cases: [string, string[], number, boolean, string[]][] = [
    ['all back ends here', ['10.1.0.11', '10.1.0.14'], 0, true, [`dnat ip to ${hash} mod 2 map { 0 : 10.1.0.11, 1 : 10.1.0.14 }`]],
    ['one here, one elsewhere', ['10.1.0.11'], 1, true, [`iifname "cvx" dnat ip to ${hash} mod 1 map { 0 : 10.1.0.11 }`, `dnat ip to ${hash} mod 2 map { 0 : 10.1.0.11 }`]],
    ['two here, three elsewhere', ['10.1.0.11', '10.1.0.14'], 3, true, [`iifname "cvx" dnat ip to ${hash} mod 2 map { 0 : 10.1.0.11, 1 : 10.1.0.14 }`, `dnat ip to ${hash} mod 5 map { 0 : 10.1.0.11, 1 : 10.1.0.14 }`]],
    ['no overlay', ['10.1.0.11'], 2, false, [`dnat ip to ${hash} mod 3 map { 0 : 10.1.0.11 }`]],
  ];
  for (const [what, local, remote, overlay, want] of cases) assert.deepEqual(fipRules(local, remote, overlay), want, what);
});

test('fip_in: a connection through a floating IP answers to the policy of the floating IP\'s network, when it has one', () => {
  assert.deepEqual(entries(MIXED, 'fip_in'), [], 'no policy on svc or pub: nothing to judge');
  const withAcl = host({ networks: [RED, BLUE, { ...SVC, acl: PASS_ALL }, PUB, OUT], floatingIps: MIXED.floatingIps! });
  assert.deepEqual(entries(withAcl, 'fip_in'), [
    ['10.96.0.10 . 10.1.0.11', `jump pol_in_${SVC.id}`],
    ['10.96.0.10 . 10.1.0.14', `jump pol_in_${SVC.id}`],
  ]);
  const chains = desiredNft(withAcl).ip.chains;
  assert.ok(chains.has(`pol_in_${SVC.id}`) && chains.has(`pol_out_${SVC.id}`), 'svc\'s chains exist though no interface here is in svc');
  const remoteOnly = host({ networks: [RED, { ...SVC, acl: PASS_ALL }], floatingIps: [fip(VIP, 'svc', '10.96.0.10', [], [[H2, 2]])] });
  assert.deepEqual(entries(remoteOnly, 'fip_in'), [], 'nothing is translated here');
});

test('zones: a floating IP joins its network to its local back ends\' networks; back ends elsewhere join nothing', () => {
  const zones = (h: HostState) => Object.fromEntries(zonesOf(h));
  assert.deepEqual(zones(host({ floatingIps: [fip(VIP, 'svc', '10.96.0.10', [R1], [[H2, 1]])] })), { red: 2, blue: 3, svc: 2, pub: 5, out: 6 });
  assert.deepEqual(zones(host({ floatingIps: [fip(VIP, 'svc', '10.96.0.10', [], [[H2, 1]])] })), { red: 2, blue: 3, svc: 4, pub: 5, out: 6 });
  const both = host({ floatingIps: [fip(PUB1, 'pub', '203.0.113.11', [R1]), fip(VIP, 'svc', '10.96.0.10', [R4])] });
  assert.deepEqual(zones(both), { red: 2, blue: 3, svc: 2, pub: 2, out: 6 }, 'two floating IPs of one network\'s back ends: one zone for the three');
  assert.deepEqual([...maps(both).get('mark_zones')!].find(([m]) => m === mark(PUB)), [mark(PUB), '2']);
});

test(
  'a floating IP leaked into a network that has the same address itself is not translated there: its own address wins, as in routing',
  () => {
    // alt overlaps svc (the same subnet) and has a workload on the floating IP's address.
    const ALT = net('alt', 6, '10.96.0.0/24');
    const h = host({ networks: [RED, SVC, ALT], ports: [R1, port('a1', 'alt', '10.96.0.10')], leaks: [{ network: 'alt', peer: 'svc' }], floatingIps: [fip(VIP, 'svc', '10.96.0.10', [R1])] });
    assert.deepEqual(entries(h, 'fip_dnat'), [[`${mark(SVC)} . 10.96.0.10`, `jump ${chainOf(VIP)}`]]);
  },
);
