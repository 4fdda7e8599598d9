// The pure data-plane layer: desired kernel state from a host state, and the minimal plan.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HostState, PortState } from '../../src/agent/host-state.js';
import { desiredState, plan, routeKey, ruleKey, neighKey } from '../../src/agent/dataplane/model.js';
import type { PortRegistration } from '../../src/agent/ports/registry.js';
import type { NftActual, NftTable } from '../../src/agent/dataplane/nft.js';
import { converged } from '../support/dataplane.js';

const reg = (uuid: string, extra: Partial<PortRegistration> = {}): PortRegistration => ({
  vmiUuid: uuid,
  mode: 'create',
  netns: `ns-${uuid}`,
  ifname: 'eth0',
  enabled: true,
  createdAt: '2026-01-01T00:00:00Z',
  ...extra,
});

const port = (uuid: string, hostIf: string, address: string, network = 'red', extra: Partial<PortRegistration> = {}): PortState => ({
  vmiUuid: uuid,
  network,
  hostIf,
  mac: `02:00:00:00:00:${address.split('.')[3]!.padStart(2, '0')}`,
  address,
  prefixLen: 24,
  gateway: '10.0.0.1',
  registration: reg(uuid, extra),
});

const host = (...ports: PortState[]): HostState => ({
  networks: [
    { uuid: 'red', name: 'd:p:red', id: 1, table: 1_000_001, serviceAddresses: ['10.0.0.1', '10.0.0.2'], subnets: ['10.0.0.0/24'], vni: 1 },
    { uuid: 'blue', name: 'd:p:blue', id: 2, table: 1_000_002, serviceAddresses: ['10.0.0.1'], subnets: ['10.0.0.0/24'], vni: 5000 },
  ],
  ports,
  remotes: [],
  leaks: [],
  pending: [],
});

const MISSING = { ip: 'missing', arp: 'missing' } as const;
const marksOf = (t: NftActual) => (typeof t === 'string' ? undefined : [...t.maps.get('port_marks')!]);

test('desired state: per network a table (unreachable default, local service addresses) and a mark rule; per port a route, a neighbour, a mark', () => {
  const d = desiredState(host(port('a', 'cv-a', '10.0.0.3'), port('b', 'cv-b', '10.0.0.3', 'blue')));
  const routes = [...d.kernel.routes.values()].map((r) => `${r.table} ${r.type} ${r.dst} ${r.dev ?? ''}`.trim()).sort();
  assert.deepEqual(routes, [
    '1000001 local 10.0.0.1 lo',
    '1000001 local 10.0.0.2 lo',
    '1000001 unicast 10.0.0.3 cv-a',
    '1000001 unreachable default',
    '1000002 local 10.0.0.1 lo',
    '1000002 unicast 10.0.0.3 cv-b',
    '1000002 unreachable default',
  ]);
  assert.deepEqual([...d.kernel.rules.values()].map((r) => `${r.pref} ${r.fwmark} ${r.table}`).sort(), ['10000 1000001 1000001', '10000 1000002 1000002']);
  assert.deepEqual(marksOf(d.nft.ip), [['"cv-a"', '1000001'], ['"cv-b"', '1000002']]);
  assert.deepEqual(marksOf(d.nft.arp), [['"cv-a"', '1000001'], ['"cv-b"', '1000002']]);
  assert.deepEqual([...d.kernel.neighs.keys()].sort(), ['cv-a|10.0.0.3', 'cv-b|10.0.0.3']);
  assert.ok(d.sysctls.get('cv-a')!.some((s) => s.path === 'net/ipv4/conf/cv-a/proxy_arp' && s.value === '1'));
  assert.ok(d.sysctls.get('cv-b')!.some((s) => s.path === 'net/ipv4/neigh/cv-b/proxy_delay' && s.value === '0'));
});

test('a converged kernel needs no change', () => {
  const h = host(port('a', 'cv-a', '10.0.0.3'), port('b', 'cv-b', '10.0.0.4'));
  assert.deepEqual(plan(desiredState(h), converged(h)), { create: [], commands: [], nft: [], nftWritten: new Map(), nftChangedMaps: new Set() });
});

test('missing pieces are added; extra owned pieces are removed, rules before the routes and links', () => {
  const h = host(port('a', 'cv-a', '10.0.0.3'));
  const actual = converged(h);
  const r = [...actual.routes.values()].find((x) => x.dev === 'cv-a')!;
  actual.routes.delete(routeKey(r));
  actual.neighs.set(neighKey({ dev: 'cv-a', ip: '10.0.0.3', mac: '' }), { dev: 'cv-a', ip: '10.0.0.3', mac: '02:ff:ff:ff:ff:ff' });
  actual.links.set('cv-gone', { up: true });
  for (const t of [actual.nft.ip, actual.nft.arp]) (t as NftTable).maps.get('port_marks')!.set('"cv-gone"', '1000001');
  // A per-port rule left by an older agent goes too.
  actual.rules.set(ruleKey({ pref: 10000, iif: 'cv-gone', table: 1_000_001 }), { pref: 10000, iif: 'cv-gone', table: 1_000_001 });
  actual.routes.set('1000001|10.0.0.9', { table: 1_000_001, type: 'unicast', dst: '10.0.0.9', dev: 'cv-gone' });
  const p = plan(desiredState(h), actual);
  assert.deepEqual(p.create, []);
  assert.deepEqual(
    p.commands.map((c) => c.line),
    [
      'rule del pref 10000 iif cv-gone lookup 1000001',
      'route del 10.0.0.9/32 dev cv-gone scope link table 1000001 proto 77',
      'link del dev cv-gone',
      'route replace 10.0.0.3/32 dev cv-a scope link table 1000001 proto 77',
      'neigh replace 10.0.0.3 lladdr 02:00:00:00:00:03 dev cv-a nud permanent proto 77',
    ],
  );
  assert.deepEqual(p.nft, ['delete element ip cirrus port_marks { "cv-gone" }', 'delete element arp cirrus port_marks { "cv-gone" }']);
});

test('a missing veth of a create-mode port is created; an adopted interface that is missing waits', () => {
  const created = port('a', 'cv-a', '10.0.0.3');
  const adopted = port('b', 'veth1', '10.0.0.4', 'red', { mode: 'adopt', hostIf: 'veth1' });
  const p = plan(desiredState(host(created, adopted)), { links: new Map(), routes: new Map(), nexthops: new Map(), rules: new Map(), neighs: new Map(), addresses: new Set(), nft: MISSING });
  assert.deepEqual(p.create.map((x) => x.hostIf), ['cv-a']);
  const lines = p.commands.map((c) => c.line);
  assert.ok(lines.includes('route replace 10.0.0.3/32 dev cv-a scope link table 1000001 proto 77'), 'the new port is routed in the same pass');
  assert.ok(lines.includes('rule add pref 10000 fwmark 0xf4241 lookup 1000001'));
  assert.equal(p.nft[0], 'table ip cirrus {', 'a missing nftables table is created');
  assert.ok(p.nft.some((l) => l.includes('chain clamp') && l.includes('tcp option maxseg size set rt mtu')), 'TCP MSS is clamped to the path');
  assert.ok(p.nft.includes('add element ip cirrus port_marks { "cv-a" : 1000001, "veth1" : 1000001 }'));
  assert.ok(p.nft.includes('table arp cirrus {'));
  assert.ok(!lines.some((l) => l.includes('veth1')), 'nothing is attempted on an interface that does not exist');
  assert.ok(lines.includes('route replace unreachable default table 1000001 proto 77'));
});

test('a disabled port keeps its interface, down and unrouted; a down link of an enabled port is set up', () => {
  const h = host(port('a', 'cv-a', '10.0.0.3', 'red', { enabled: false }), port('b', 'cv-b', '10.0.0.4'));
  const actual = converged(host(port('a', 'cv-a', '10.0.0.3'), port('b', 'cv-b', '10.0.0.4')));
  actual.links.set('cv-b', { up: false });
  const p = plan(desiredState(h), actual);
  assert.deepEqual(p.create, []);
  const own = '"cv-a" . 10.0.0.3 . 02:00:00:00:00:03';
  assert.deepEqual(p.nft, [
    'delete element ip cirrus port_marks { "cv-a" }',
    'delete element ip cirrus ports { "cv-a" }',
    'delete element ip cirrus guarded { "cv-a" }',
    `delete element ip cirrus port_addrs { ${own} }`,
    'delete element arp cirrus port_marks { "cv-a" }',
    'delete element arp cirrus guarded { "cv-a" }',
    `delete element arp cirrus port_addrs { ${own} }`,
  ], 'a disabled port leaves every set');
  assert.deepEqual(
    p.commands.map((c) => c.line),
    [
      'route del 10.0.0.3/32 dev cv-a scope link table 1000001 proto 77',
      'neigh del 10.0.0.3 dev cv-a',
      'link set dev cv-a down',
      'link set dev cv-b up',
    ],
  );
});

test('overlay: the VXLAN device, tun_id rules, the underlay rule, an encapsulated route per remote address, a neighbour per remote host', () => {
  const h = { ...host(port('a', 'cv-a', '10.0.0.3')), underlayIp: '10.254.0.1', remotes: [{ network: 'red', address: '10.0.0.9', vtep: '10.254.0.2' }, { network: 'blue', address: '10.0.0.9', vtep: '10.254.0.3' }] };
  const d = desiredState(h);
  assert.deepEqual(d.kernel.links.get('cvx'), { up: true, identity: '02:cc:0a:fe:00:01' }, 'the MAC comes from the underlay address');
  assert.deepEqual([...d.kernel.rules.values()].filter((r) => r.tunId !== undefined).map((r) => `${r.pref} ${r.tunId} ${r.table}`).sort(), ['10001 1 1000001', '10001 5000 1000002']);
  const p = plan(d, { links: new Map(), routes: new Map(), nexthops: new Map(), rules: new Map(), neighs: new Map(), addresses: new Set(), nft: MISSING });
  const lines = p.commands.map((c) => c.line);
  const route = 'route replace 10.0.0.9/32 encap ip id 1 dst 10.254.0.2 via 10.254.0.2 dev cvx onlink table 1000001 proto 77';
  assert.ok(lines.indexOf('link add cvx mtu 1450 type vxlan external dstport 4789 nolearning') < lines.indexOf(route));
  assert.ok(lines.includes('link set dev cvx address 02:cc:0a:fe:00:01 up'));
  assert.ok(lines.includes('route replace 10.0.0.9/32 encap ip id 5000 dst 10.254.0.3 via 10.254.0.3 dev cvx onlink table 1000002 proto 77'), 'the same address in another network goes to its own host');
  assert.deepEqual(lines.filter((l) => l.startsWith('neigh replace')).sort(), [
    'neigh replace 10.0.0.3 lladdr 02:00:00:00:00:03 dev cv-a nud permanent proto 77',
    'neigh replace 10.254.0.2 lladdr 02:cc:0a:fe:00:02 dev cvx nud permanent proto 77',
    'neigh replace 10.254.0.3 lladdr 02:cc:0a:fe:00:03 dev cvx nud permanent proto 77',
  ]);
  assert.ok(lines.includes('rule add pref 10001 tun_id 5000 lookup 1000002'));
  assert.ok(lines.includes('route replace 10.0.0.0/24 dev cvx scope link table 1000001 proto 77'), 'every subnet address answers ARP');
  assert.ok(lines.includes('rule add pref 9000 iif lo ipproto udp dport 4789 lookup 254'), "the tunnel's own lookup goes to the underlay's table");
});

test('service addresses live on the service device (the host can answer from them), once even when networks share one', () => {
  const a = port('a', 'cv-a', '10.0.0.3');
  const h = host(a);
  const twin = { ...h.networks[0]!, uuid: 'blue', id: 2, table: 1_000_002 };
  const d = desiredState({ ...h, networks: [...h.networks, twin] });
  assert.deepEqual([...d.kernel.addresses].sort(), [...new Set(h.networks[0]!.serviceAddresses)].sort());
  const lines = plan(d, { links: new Map(), routes: new Map(), nexthops: new Map(), rules: new Map(), neighs: new Map(), addresses: new Set(['10.99.0.1']), nft: MISSING }).commands.map((c) => c.line);
  assert.ok(lines.includes('link add cvsvc type bridge'));
  for (const addr of d.kernel.addresses) assert.equal(lines.filter((l) => l === `addr add ${addr}/32 dev cvsvc`).length, 1);
  assert.ok(lines.includes('addr del 10.99.0.1/32 dev cvsvc'), 'an address no network has any more goes');
  assert.equal(desiredState({ ...h, networks: [], ports: [] }).kernel.links.has('cvsvc'), false, 'no networks, no device');
});
