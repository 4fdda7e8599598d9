// Floating IPs on one host: the document's f/ entries split into back ends here and other
// hosts (host-state.ts), the routes and next-hop objects they become (model.ts), the order
// in which plan() changes next hops, and the kernel's own `ip -j nexthop` output read back.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIpRoutes, parseNexthops } from '../../src/agent/dataplane/kernel.js';
import { HOST_SYSCTLS, type KernelState, type Nexthop, type Route, desiredState, nexthopId, plan, routeKey } from '../../src/agent/dataplane/model.js';
import { type FloatingState, type HostState, type NetworkState, type PortState, computeHostState } from '../../src/agent/host-state.js';
import type { PortRegistration } from '../../src/agent/ports/registry.js';
import type { EntryValue, FloatingBackend } from '../../src/control/protocol.js';
import { converged } from '../support/dataplane.js';

const SELF = '10.254.0.1';
const H2 = '10.254.0.2';
const H3 = '10.254.0.3';
const FIP = '10.96.0.10';

const net = (uuid: string, id: number, subnet: string, extra: Partial<NetworkState> = {}): NetworkState => ({ uuid, name: uuid, id, table: 1_000_000 + id, serviceAddresses: [], subnets: [subnet], vni: 8_388_608 + id, ...extra });
const RED = net('red', 1, '10.1.0.0/24');
const BLUE = net('blue', 2, '10.2.0.0/24');
const SVC = net('svc', 3, '10.96.0.0/24');

const reg = (uuid: string, enabled = true): PortRegistration => ({ vmiUuid: uuid, mode: 'create', netns: `ns-${uuid}`, ifname: 'eth0', enabled, createdAt: '' });
const port = (uuid: string, network: string, address: string): PortState => ({
  vmiUuid: uuid,
  network,
  hostIf: `cv-${uuid}`,
  mac: `02:00:00:00:00:${address.split('.')[3]!.padStart(2, '0')}`,
  address,
  prefixLen: 24,
  registration: reg(uuid),
});
const R1 = port('r1', 'red', '10.1.0.11');

const floating = (local: PortState[], remote: [string, number][], backends = local.length + remote.reduce((s, [, n]) => s + n, 0)): FloatingState => ({
  uuid: 'vip',
  network: 'svc',
  address: FIP,
  local: local.map((p) => ({ port: p, address: p.address })),
  remote: new Map(remote),
  backends,
});

/** A host with red, blue and svc (svc leaked into blue), underlay SELF. */
const host = (o: Partial<HostState> = {}): HostState => ({ networks: [RED, BLUE, SVC], ports: [R1], underlayIp: SELF, remotes: [], leaks: [{ network: 'blue', peer: 'svc' }], pending: [], ...o });

// ---- host-state: back ends here and elsewhere ---------------------------------------------

test('host state: back ends registered here are local; those on other hosts count per host; the rest is left out', () => {
  const entry = (uuid: string, id: number, subnet: string): [string, EntryValue] => [`n/${uuid}`, { uuid, name: uuid, id, vni: 8_388_608 + id, subnets: [subnet], serviceAddresses: [] }];
  const portEntry = (vmi: string, network: string, address: string): [string, EntryValue] => [`p/${vmi}`, { vmiUuid: vmi, network, mac: '02:00:00:00:00:01', address, prefixLen: 24 }];
  const b = (vmiUuid: string, address: string, vtep?: string, network = 'red'): FloatingBackend => ({ vmiUuid, address, network, ...(vtep ? { vtep } : {}) });
  const backends = [
    b('a', '10.1.0.11', SELF), // registered here: local
    b('x', '10.1.0.12', SELF), // bound here but not registered: neither here nor elsewhere
    b('d', '10.1.0.13', SELF), // registered but disabled: neither
    b('m', '10.2.0.14', SELF, 'blue'), // its port here is in red, not in blue: not this one
    b('b', '10.1.0.21', H2),
    b('c', '10.1.0.22', H2),
    b('e', '10.1.0.31', H3),
    b('g', '10.1.0.41'), // its host has no underlay address
  ];
  const doc = new Map<string, EntryValue>([
    entry('red', 1, '10.1.0.0/24'),
    entry('svc', 3, '10.96.0.0/24'),
    entry('pub', 4, '203.0.113.0/24'),
    portEntry('a', 'red', '10.1.0.11'),
    portEntry('x', 'red', '10.1.0.12'),
    portEntry('d', 'red', '10.1.0.13'),
    portEntry('m', 'red', '10.1.0.14'),
    ['f/vip', { uuid: 'vip', network: 'svc', address: FIP, backends }],
    ['f/orphan', { uuid: 'orphan', network: 'gone', address: '10.97.0.1', backends: [b('b', '10.1.0.21', H2)] }],
    ['f/bad', { uuid: 'bad', network: 'svc', address: '10.96.0.300', backends: [] }],
  ]);
  const regs = [reg('a'), reg('d', false), reg('m')];
  const gateway = { interface: 'out0', nexthop: '192.0.2.1' };
  const h = computeHostState(doc, regs, { host: 'h1', underlayIp: SELF, gateway });
  assert.deepEqual(h.floatingIps?.map((f) => f.uuid), ['vip'], 'floating IPs of networks not here, or with a bad address, are dropped');
  const f = h.floatingIps![0]!;
  assert.deepEqual(f.local.map((l) => [l.port.vmiUuid, l.address]), [['a', '10.1.0.11']]);
  assert.deepEqual([...f.remote], [[H2, 2], [H3, 1]], 'weights: back ends per host; its own address is never a remote host');
  assert.equal(f.backends, 8, 'all back ends count: one is NAT, several ECMP');
  assert.ok(h.networks.some((n) => n.uuid === 'pub' && n.table === 1_000_004), 'a network without an interface here (a gateway\'s) is a network all the same');
  assert.deepEqual(h.gateway, gateway);
  const noUnderlay = computeHostState(doc, regs, { host: 'h1' }).floatingIps![0]!;
  assert.deepEqual([noUnderlay.local.length, noUnderlay.remote.size], [1, 0], 'without an underlay no other host is reachable');
});

// ---- desired routes and next hops -------------------------------------------------------

const tunnel = (vtep: string, vni = SVC.vni): Nexthop => ({ id: nexthopId(`${vni}|${vtep}`), encap: { vni, dst: vtep } });
const GROUP = nexthopId('group|vip');
const fipRoutes = (kernel: KernelState | ReturnType<typeof desiredState>['kernel']): Route[] => [...kernel.routes.values()].filter((r) => r.dst === FIP).sort((a, b) => a.table - b.table);
const inTables = (r: Omit<Route, 'table'>): Route[] => [BLUE.table, SVC.table].map((table) => ({ table, ...r }));

test('desired: a floating IP in its network\'s table and the tables it is leaked into, by where its back ends are', () => {
  const cases: { what: string; h: HostState; routes: Route[]; nexthops: Nexthop[] }[] = [
    {
      what: 'one back end on another host: a tunnel route, no next-hop object',
      h: host({ floatingIps: [floating([], [[H2, 1]])] }),
      routes: inTables({ type: 'unicast', dst: FIP, dev: 'cvx', encap: { vni: SVC.vni, dst: H2 } }),
      nexthops: [],
    },
    {
      what: 'back ends on two hosts: a group of tunnels weighted by back ends there',
      h: host({ floatingIps: [floating([], [[H3, 2], [H2, 1]])] }),
      routes: inTables({ type: 'unicast', dst: FIP, nhid: GROUP }),
      nexthops: [tunnel(H2), tunnel(H3), { id: GROUP, group: [{ id: tunnel(H2).id, weight: 1 }, { id: tunnel(H3).id, weight: 2 }] }],
    },
    {
      what: 'two back ends on one other host: still a group (ECMP between them happens there)',
      h: host({ floatingIps: [floating([], [[H2, 2]])] }),
      routes: inTables({ type: 'unicast', dst: FIP, nhid: GROUP }),
      nexthops: [tunnel(H2), { id: GROUP, group: [{ id: tunnel(H2).id, weight: 2 }] }],
    },
    {
      what: 'back ends here and elsewhere: the group holds the other hosts (nft picks the local ones first)',
      h: host({ floatingIps: [floating([R1], [[H2, 1]])] }),
      routes: inTables({ type: 'unicast', dst: FIP, nhid: GROUP }),
      nexthops: [tunnel(H2), { id: GROUP, group: [{ id: tunnel(H2).id, weight: 1 }] }],
    },
    {
      what: 'back ends here only: a route to the service device, for proxy ARP',
      h: host({ floatingIps: [floating([R1, port('r4', 'red', '10.1.0.14')], [])] }),
      routes: inTables({ type: 'unicast', dst: FIP, dev: 'cvsvc' }),
      nexthops: [],
    },
    {
      what: 'no underlay: other hosts are unreachable, the local back end still answers',
      h: host({ underlayIp: undefined, floatingIps: [floating([R1], [[H2, 1]])] }),
      routes: inTables({ type: 'unicast', dst: FIP, dev: 'cvsvc' }),
      nexthops: [],
    },
    { what: 'no back end reachable from here: no route', h: host({ floatingIps: [floating([], [], 2)] }), routes: [], nexthops: [] },
  ];
  for (const c of cases) {
    const d = desiredState(c.h).kernel;
    assert.deepEqual(fipRoutes(d), c.routes, c.what);
    const order = (a: Nexthop, b: Nexthop) => Number(!!a.group) - Number(!!b.group) || a.id - b.id;
    assert.deepEqual([...d.nexthops.values()].sort(order), c.nexthops.sort(order), c.what);
    if (c.routes[0]?.dev === 'cvsvc') assert.deepEqual(d.links.get('cvsvc'), { up: true }, `${c.what}: the service device exists without service addresses`);
    for (const vtep of [H2, H3]) if (c.nexthops.some((n) => n.encap?.dst === vtep)) assert.ok(d.neighs.has(`cvx|${vtep}`), `${c.what}: a neighbour for ${vtep}`);
  }
});

test('desired: where a leaked network has the floating IP\'s address itself, its own address wins there', () => {
  // alt overlaps svc (the same subnet) and has a workload on the floating IP's address.
  const ALT = net('alt', 6, '10.96.0.0/24');
  const d = desiredState(host({ networks: [RED, SVC, ALT], ports: [R1, port('a1', 'alt', FIP)], leaks: [{ network: 'alt', peer: 'svc' }], floatingIps: [floating([], [[H2, 1]])] })).kernel;
  assert.deepEqual(fipRoutes(d), [
    { table: SVC.table, type: 'unicast', dst: FIP, dev: 'cvx', encap: { vni: SVC.vni, dst: H2 } },
    { table: ALT.table, type: 'unicast', dst: FIP, dev: 'cv-a1' },
  ]);
});

test('desired: external and SNAT networks lead outside on a gateway, to a gateway elsewhere; others stay unreachable by default', () => {
  const PUB = net('pub', 4, '203.0.113.0/24', { external: true, gateways: [SELF, '10.254.0.9'] });
  const OUT = net('out', 5, '10.5.0.0/24', { snat: true, gateways: [SELF, '10.254.0.9'] });
  const defaults = (h: HostState) => Object.fromEntries([...desiredState({ ...h, ports: [], leaks: [] }).kernel.routes.values()].filter((r) => r.dst === 'default').map((r) => [r.table, r]));
  const gw = defaults(host({ networks: [RED, PUB, OUT], gateway: { interface: 'out0', nexthop: '192.0.2.1' } }));
  for (const n of [PUB, OUT]) assert.deepEqual(gw[n.table], { table: n.table, type: 'unicast', dst: 'default', via: '192.0.2.1', dev: 'out0' }, `${n.uuid} on the gateway`);
  assert.equal(gw[RED.table]!.type, 'unreachable', 'a plain network never leads outside');
  const other = defaults(host({ networks: [RED, PUB, OUT] }));
  for (const n of [PUB, OUT]) assert.deepEqual(other[n.table], { table: n.table, type: 'unicast', dst: 'default', dev: 'cvx', encap: { vni: n.vni, dst: '10.254.0.9' } }, `${n.uuid}: tunnelled to a gateway other than this host`);
  const cases: [string, HostState][] = [
    ['no gateway known', host({ networks: [{ ...PUB, gateways: [] }] })],
    ['only this host is named, and it is no gateway', host({ networks: [{ ...PUB, gateways: [SELF] }] })],
    ['no underlay', host({ networks: [PUB], underlayIp: undefined })],
  ];
  for (const [what, h] of cases) assert.equal(defaults(h)[PUB.table]!.type, 'unreachable', what);
});

test('next-hop ids: stable, in the upper half of the id space, distinct per key; the hash policy spreads by 5-tuple', () => {
  const keys = ['group|vip', 'group|vip2', `${SVC.vni}|${H2}`, `${SVC.vni}|${H3}`, `${RED.vni}|${H2}`];
  const ids = keys.map(nexthopId);
  assert.deepEqual(keys.map(nexthopId), ids);
  assert.equal(new Set(ids).size, keys.length);
  for (const id of ids) assert.ok(id >= 0x40000000 && id <= 0x7fffffff, String(id));
  assert.deepEqual(HOST_SYSCTLS.find((s) => s.path === 'net/ipv4/fib_multipath_hash_policy'), { path: 'net/ipv4/fib_multipath_hash_policy', value: '1' });
});

// ---- plan ---------------------------------------------------------------------------------

const empty = (links: KernelState['links'] = new Map()): KernelState => ({ links, routes: new Map(), nexthops: new Map(), rules: new Map(), neighs: new Map(), addresses: new Set(), nft: { ip: 'missing', arp: 'missing' } });
const lines = (h: HostState, actual: KernelState) => plan(desiredState(h), actual).commands.map((c) => c.line);
const ECMP = host({ floatingIps: [floating([], [[H2, 1], [H3, 2]])] });

test('plan: the VXLAN device, then the tunnels, then their group, then the routes using it', () => {
  const l = lines(ECMP, empty());
  const at = (s: string) => {
    const i = l.indexOf(s);
    assert.ok(i >= 0, `missing: ${s}\n${l.join('\n')}`);
    return i;
  };
  const t2 = at(`nexthop replace id ${tunnel(H2).id} encap ip id ${SVC.vni} dst ${H2} via ${H2} dev cvx onlink proto 77`);
  const t3 = at(`nexthop replace id ${tunnel(H3).id} encap ip id ${SVC.vni} dst ${H3} via ${H3} dev cvx onlink proto 77`);
  const g = at(`nexthop replace id ${GROUP} group ${tunnel(H2).id}/${tunnel(H3).id},2 type resilient buckets 128 idle_timer 180 proto 77`);
  const r = at(`route replace ${FIP}/32 nhid ${GROUP} table ${SVC.table} proto 77`);
  const link = at('link add cvx mtu 1450 type vxlan external dstport 4789 nolearning');
  assert.ok(link < t2 && t2 < g && t3 < g && g < r, l.join('\n'));
  assert.ok(l.includes(`route replace ${FIP}/32 nhid ${GROUP} table ${BLUE.table} proto 77`), 'and in the leaked table');
});

test('plan: a converged host with floating IPs needs no change', () => {
  for (const h of [ECMP, host({ floatingIps: [floating([], [[H2, 1]])] }), host({ floatingIps: [floating([R1], [])] }), host({ floatingIps: [floating([R1], [[H3, 3]])] })]) {
    assert.deepEqual(plan(desiredState(h), converged(h)).commands, []);
  }
});

test('plan: a floating IP that goes: its routes first, then its group, then the tunnels', () => {
  const l = lines(host(), converged(ECMP));
  const routes = l.filter((x) => x.startsWith(`route del ${FIP}/32`));
  assert.equal(routes.length, 2);
  const last = Math.max(...routes.map((x) => l.indexOf(x)));
  const g = l.indexOf(`nexthop del id ${GROUP}`);
  assert.ok(last < g && g < l.indexOf(`nexthop del id ${tunnel(H2).id}`) && g < l.indexOf(`nexthop del id ${tunnel(H3).id}`), l.join('\n'));
});

test(
  'plan: a next hop that leaves a group is deleted only after the group and the routes no longer use it',
  () => {
    const cases: [string, HostState, HostState, string][] = [
      // The kernel deletes a group whose last member is deleted, and every route using it (without a route notification).
      ['all back ends move from h2 to h3', host({ floatingIps: [floating([], [[H2, 2]])] }), host({ floatingIps: [floating([], [[H3, 2]])] }), `nexthop replace id ${GROUP} `],
      ['the last other host goes, the local back ends stay', host({ floatingIps: [floating([R1], [[H2, 1]])] }), host({ floatingIps: [floating([R1], [])] }), `route replace ${FIP}/32 dev cvsvc scope link table ${SVC.table}`],
    ];
    for (const [what, before, after, first] of cases) {
      const l = lines(after, converged(before));
      const replaced = l.findIndex((x) => x.startsWith(first));
      assert.ok(replaced >= 0, `${what}: ${first}…\n${l.join('\n')}`);
      for (const id of [tunnel(H2).id, GROUP]) {
        const del = l.indexOf(`nexthop del id ${id}`);
        if (del >= 0) assert.ok(del > replaced, `${what}: nexthop ${id} deleted before "${l[replaced]}":\n${l.join('\n')}`);
      }
    }
  },
);

test(
  "plan: a gateway's default route through its outside interface is installed, though the interface is not Cirrus's",
  () => {
    const PUB = net('pub', 4, '203.0.113.0/24', { external: true, gateways: [SELF] });
    const h = host({ networks: [PUB], ports: [], leaks: [], gateway: { interface: 'out0', nexthop: '192.0.2.1' } });
    // As read: the outside interface is not among Cirrus's links, and the route is missing.
    const actual = converged(h);
    actual.routes.delete(routeKey({ table: PUB.table, dst: 'default' }));
    assert.ok(!actual.links.has('out0'));
    const l = lines(h, actual);
    assert.ok(l.includes(`route replace default via 192.0.2.1 dev out0 table ${PUB.table} proto 77`), l.join('\n'));
  },
);

// ---- the kernel's output ------------------------------------------------------------------

/**
 * `ip -j nexthop show proto 77` (iproute2 6.1) after the agent's commands for ECMP's tunnels
 * and group, plus a plain group (id 7) made by hand: a tunnel prints "id" twice.
 */
const IP_NEXTHOPS = (t2: number, t3: number, g: number) =>
  `[{"id":7,"group":[{"id":${t2}},{"id":${t3}}],"protocol":"77","flags":[]},` +
  `{"id":${t2},"encap":"ip","id":8388611,"src":"0.0.0.0","dst":"10.254.0.2","ttl":0,"tos":0,"gateway":"10.254.0.2","dev":"cvx","scope":"link","protocol":"77","flags":["onlink"]},` +
  `{"id":${t3},"encap":"ip","id":8388611,"src":"0.0.0.0","dst":"10.254.0.3","ttl":0,"tos":0,"gateway":"10.254.0.3","dev":"cvx","scope":"link","protocol":"77","flags":["onlink"]},` +
  `{"id":${g},"group":[{"id":${t2}},{"id":${t3},"weight":2}],"type":"resilient","resilient_args":{"buckets":128,"idle_timer":180,"unbalanced_timer":0,"unbalanced_time":0},"protocol":"77","flags":[]}]\n`;

test('parseNexthops: the kernel\'s tunnels and groups read back as the agent wrote them', () => {
  const [t2, t3] = [tunnel(H2).id, tunnel(H3).id];
  const read = parseNexthops(IP_NEXTHOPS(t2, t3, GROUP));
  assert.deepEqual(read[0], { id: 7, group: [{ id: t2, weight: 1 }, { id: t3, weight: 1 }] }, 'a missing weight is 1');
  const desired = desiredState(ECMP).kernel.nexthops;
  assert.deepEqual(new Map(read.slice(1).map((n) => [n.id, n])), desired, 'what the agent wanted is what it reads: no change next pass');
  assert.deepEqual(parseNexthops('[]\n'), []);
  assert.deepEqual(parseNexthops(''), []);
});

test('parseIpRoutes: a route through a group is its prefix and next-hop id, the group\'s tunnels not mistaken for its destination', () => {
  const json = `[{"dst":"${FIP}","nhid":${GROUP},"table":"1000003","protocol":"77","flags":[],"nexthops":[{"encap":"ip","id":8388611,"src":"0.0.0.0","dst":"10.254.0.2","ttl":0,"tos":0,"gateway":"10.254.0.2","dev":"cvx","weight":1,"flags":["onlink"]},{"encap":"ip","id":8388611,"src":"0.0.0.0","dst":"10.254.0.3","ttl":0,"tos":0,"gateway":"10.254.0.3","dev":"cvx","weight":2,"flags":["onlink"]}]}]`;
  const [r] = parseIpRoutes(json);
  assert.equal(r!.dst, FIP);
  assert.equal(r!.nhid, GROUP);
  assert.equal(r!.dev, undefined, 'no device: the route must compare equal to the desired one');
  assert.equal(routeKey({ table: Number(r!.table), dst: r!.dst }), routeKey(fipRoutes(desiredState(ECMP).kernel)[1]!));
});
