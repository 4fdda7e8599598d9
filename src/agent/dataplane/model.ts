// The host's kernel state as Cirrus wants it (computed from the HostState), the kernel
// state as read, and the plan that turns one into the other. All pure: the kernel I/O
// lives in kernel.ts.

import type { HostState, PortState } from '../host-state.js';
import {
  CIRRUS_PROTO,
  NETWORK_RULE_PREF,
  type NftFamily,
  MAIN_TABLE,
  SERVICE_DEV,
  TUNNEL_RULE_PREF,
  UNDERLAY_RULE_PREF,
  VXLAN_DEV,
  VXLAN_PORT,
  WORKLOAD_MTU,
  markOf,
  vxlanMac,
} from './names.js';
import { type NftActual, type NftTable, desiredNft, nftScript } from './nft.js';
import type { WorkloadConfig } from './nsconfig.js';

export interface Route {
  table: number;
  type: 'unicast' | 'local' | 'unreachable';
  /** "default", an address (a /32), or a CIDR. */
  dst: string;
  dev?: string;
  /** Tunnel to another host (through the VXLAN device), with that host's address as next hop. */
  encap?: { vni: number; dst: string };
  /** A next-hop object (a floating IP's group of hosts). */
  nhid?: number;
  /** A gateway's next hop towards the outside. */
  via?: string;
}

/** A next-hop object: a tunnel to a host, or a resilient group of them (weights: back ends there). */
export interface Nexthop {
  id: number;
  encap?: { vni: number; dst: string };
  group?: { id: number; weight: number }[];
}

export interface Rule {
  pref: number;
  table: number;
  fwmark?: number;
  /** Traffic arriving from the overlay with this VNI. */
  tunId?: number;
  /** The host's own VXLAN packets (UDP to the VXLAN port, locally sent). */
  underlay?: true;
  /** Only in rules read back from older agents (one rule per port); never desired. */
  iif?: string;
}

export interface Neigh {
  dev: string;
  ip: string;
  mac: string;
}

export interface Link {
  up: boolean;
  /** What tells a re-created interface from the old one (its MAC: a new veth gets a new one). */
  identity?: string;
}

export interface KernelState {
  links: Map<string, Link>;
  routes: Map<string, Route>;
  /** Next-hop objects by id. */
  nexthops: Map<number, Nexthop>;
  rules: Map<string, Rule>;
  neighs: Map<string, Neigh>;
  /** Addresses (/32) on the service device. */
  addresses: Set<string>;
  /** Each family's Cirrus table. */
  nft: Record<NftFamily, NftActual>;
}

export const routeKey = <R extends Pick<Route, 'table' | 'dst'>>(r: R): string => `${r.table}|${r.dst}`;
export const ruleKey = (r: Rule) => `${r.pref}|${r.fwmark ?? ''}|${r.tunId ?? ''}|${r.iif ?? ''}|${r.underlay ? 'u' : ''}|${r.table}`;
export const neighKey = (n: Neigh) => `${n.dev}|${n.ip}`;

export interface Desired {
  kernel: Omit<KernelState, 'nft'>;
  nft: Record<NftFamily, NftTable>;
  /** Host-side interfaces of ports, by name. */
  ports: Map<string, PortState>;
  /** Per-interface sysctls by interface: proxy ARP answers for the gateway and the network's peers. */
  sysctls: Map<string, { path: string; value: string }[]>;
}

export function desiredState(host: HostState): Desired {
  const kernel: Desired['kernel'] = { links: new Map(), routes: new Map(), nexthops: new Map(), rules: new Map(), neighs: new Map(), addresses: new Set() };
  const ports = new Map<string, PortState>();
  const sysctls: Desired['sysctls'] = new Map();
  const add = <T>(m: Map<string, T>, key: (v: T) => string, v: T) => m.set(key(v), v);
  const byUuid = new Map(host.networks.map((n) => [n.uuid, n]));
  for (const n of host.networks) {
    // Lookups that find nothing in the network's table must end there, not in main.
    add(kernel.routes, routeKey, { table: n.table, type: 'unreachable', dst: 'default' });
    add(kernel.rules, ruleKey, { pref: NETWORK_RULE_PREF, fwmark: markOf(n.table), table: n.table });
    if (host.underlayIp) add(kernel.rules, ruleKey, { pref: TUNNEL_RULE_PREF, tunId: n.vni, table: n.table });
    for (const a of n.serviceAddresses) {
      add(kernel.routes, routeKey, { table: n.table, type: 'local', dst: a, dev: 'lo' });
      kernel.addresses.add(a);
    }
  }
  if (kernel.addresses.size) kernel.links.set(SERVICE_DEV, { up: true });
  if (host.underlayIp) {
    kernel.links.set(VXLAN_DEV, { up: true, identity: vxlanMac(host.underlayIp) });
    sysctls.set(VXLAN_DEV, [{ path: `net/ipv6/conf/${VXLAN_DEV}/disable_ipv6`, value: '1' }]);
    add(kernel.rules, ruleKey, { pref: UNDERLAY_RULE_PREF, underlay: true, table: MAIN_TABLE });
    // Every address of a subnet gets a route (the unknown ones into the VXLAN device without
    // a tunnel: dropped), so proxy ARP answers for all of them, as TF's vrouter does: a
    // workload that asked for an address before it existed does not wait for its ARP retry
    // (a second) once it appears on another host.
    for (const n of host.networks) for (const cidr of n.subnets) add(kernel.routes, routeKey, { table: n.table, type: 'unicast', dst: cidr, dev: VXLAN_DEV });
    for (const r of host.remotes) {
      const n = byUuid.get(r.network)!;
      add(kernel.routes, routeKey, { table: n.table, type: 'unicast', dst: r.address, dev: VXLAN_DEV, encap: { vni: n.vni, dst: r.vtep } });
      // One neighbour per remote host (the next hop is its address), not per remote
      // workload: the same address in two networks on two hosts never collides.
      add(kernel.neighs, neighKey, { dev: VXLAN_DEV, ip: r.vtep, mac: vxlanMac(r.vtep) });
    }
  }
  for (const p of host.ports) {
    ports.set(p.hostIf, p);
    // A disabled port (TF's disable-port) keeps its interface, down and without routing.
    kernel.links.set(p.hostIf, { up: p.registration.enabled });
    if (!p.registration.enabled) continue;
    const table = byUuid.get(p.network)!.table;
    add(kernel.routes, routeKey, { table, type: 'unicast', dst: p.address, dev: p.hostIf });
    add(kernel.neighs, neighKey, { dev: p.hostIf, ip: p.address, mac: p.mac });
    sysctls.set(p.hostIf, [
      { path: `net/ipv4/conf/${p.hostIf}/proxy_arp`, value: '1' },
      { path: `net/ipv4/conf/${p.hostIf}/rp_filter`, value: '0' },
      { path: `net/ipv4/neigh/${p.hostIf}/proxy_delay`, value: '0' },
      // IPv4 only for now: no link-local IPv6 path between workloads and the host.
      { path: `net/ipv6/conf/${p.hostIf}/disable_ipv6`, value: '1' },
    ]);
  }
  // A peer network's addresses in the table of a network it may talk to; the network's own
  // addresses win where the two overlap.
  for (const { network, peer } of host.leaks) {
    const table = byUuid.get(network)!.table;
    const leak = (r: Route) => {
      if (!kernel.routes.has(routeKey(r))) add(kernel.routes, routeKey, r);
    };
    for (const p of host.ports) if (p.network === peer && p.registration.enabled) leak({ table, type: 'unicast', dst: p.address, dev: p.hostIf });
    if (host.underlayIp) for (const r of host.remotes) if (r.network === peer) leak({ table, type: 'unicast', dst: r.address, dev: VXLAN_DEV, encap: { vni: byUuid.get(peer)!.vni, dst: r.vtep } });
  }
  outsideRoutes(host, kernel);
  floatingRoutes(host, kernel);
  return { kernel, nft: desiredNft(host), ports, sysctls };
}

/** One neighbour per remote host: the next hop of its tunnels. */
function tunnelNeigh(kernel: Desired['kernel'], vtep: string): void {
  kernel.neighs.set(neighKey({ dev: VXLAN_DEV, ip: vtep, mac: '' }), { dev: VXLAN_DEV, ip: vtep, mac: vxlanMac(vtep) });
}

/**
 * External and SNAT networks: on a gateway their default route leads outside; elsewhere
 * to a gateway host through the tunnel (replies to the outside, and SNAT's way out).
 */
function outsideRoutes(host: HostState, kernel: Desired['kernel']): void {
  for (const n of host.networks) {
    if (!n.external && !n.snat) continue;
    if (host.gateway) {
      kernel.routes.set(routeKey({ table: n.table, dst: 'default' }), { table: n.table, type: 'unicast', dst: 'default', via: host.gateway.nexthop, dev: host.gateway.interface });
      continue;
    }
    const gw = n.gateways?.find((g) => g !== host.underlayIp);
    if (!host.underlayIp || !gw) continue;
    kernel.routes.set(routeKey({ table: n.table, dst: 'default' }), { table: n.table, type: 'unicast', dst: 'default', dev: VXLAN_DEV, encap: { vni: n.vni, dst: gw } });
    tunnelNeigh(kernel, gw);
  }
}

/**
 * Floating IPs in the tables of their network and of the networks it is leaked into: to the
 * one host of a single back end, or to a resilient next-hop group over the back ends' hosts
 * (weighted by back ends there): a host added to the group takes over only idle buckets, a
 * host removed gives up only its own, so other connections stay where they are. Back ends
 * here are chosen before routing (nft.ts); with only those, the route just lets proxy ARP
 * answer for the address.
 */
function floatingRoutes(host: HostState, kernel: Desired['kernel']): void {
  const byUuid = new Map(host.networks.map((n) => [n.uuid, n]));
  for (const f of host.floatingIps ?? []) {
    const net = byUuid.get(f.network)!;
    const tables = [net.table, ...host.leaks.filter((l) => l.peer === f.network).map((l) => byUuid.get(l.network)!.table)];
    let route: Omit<Route, 'table'>;
    if (host.underlayIp && f.remote.size) {
      const hosts = [...f.remote].sort(([a], [b]) => (a < b ? -1 : 1));
      for (const [vtep] of hosts) tunnelNeigh(kernel, vtep);
      if (f.backends === 1) {
        route = { type: 'unicast', dst: f.address, dev: VXLAN_DEV, encap: { vni: net.vni, dst: hosts[0]![0] } };
      } else {
        const members = hosts.map(([vtep, weight]) => {
          const id = nexthopId(`${net.vni}|${vtep}`);
          kernel.nexthops.set(id, { id, encap: { vni: net.vni, dst: vtep } });
          return { id, weight: Math.min(weight, 255) };
        });
        const id = nexthopId(`group|${f.uuid}`);
        kernel.nexthops.set(id, { id, group: members });
        route = { type: 'unicast', dst: f.address, nhid: id };
      }
    } else if (f.local.length) {
      kernel.links.set(SERVICE_DEV, { up: true });
      route = { type: 'unicast', dst: f.address, dev: SERVICE_DEV };
    } else continue;
    // The network's own addresses win where a leaked-in floating IP overlaps them.
    for (const table of tables) if (!kernel.routes.has(routeKey({ table, dst: f.address }))) kernel.routes.set(routeKey({ table, dst: f.address }), { ...route, table });
  }
}

/** A stable next-hop id for a key, in the upper half of the id space (ids are the host's own: no coordination needed). */
export function nexthopId(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return 0x40000000 + (h % 0x3fffffff);
}

/** Host-wide sysctls the data plane needs (forwarding; no reverse-path filter across tables). */
export const HOST_SYSCTLS = [
  { path: 'net/ipv4/ip_forward', value: '1' },
  { path: 'net/ipv4/fwmark_reflect', value: '1' },
  // Connections accepted by the host's services (on a service address) answer through the network's table.
  { path: 'net/ipv4/tcp_fwmark_accept', value: '1' },
  { path: 'net/ipv4/conf/all/rp_filter', value: '0' },
  // Next-hop groups (floating IPs over several hosts) hash connections by their 5-tuple.
  { path: 'net/ipv4/fib_multipath_hash_policy', value: '1' },
  // Every local workload holds a permanent neighbour entry: the default table (1024
  // entries at most) would overflow past a thousand ports.
  { path: 'net/ipv4/neigh/default/gc_thresh1', value: '4096' },
  { path: 'net/ipv4/neigh/default/gc_thresh2', value: '65536' },
  { path: 'net/ipv4/neigh/default/gc_thresh3', value: '131072' },
];

export interface Command {
  /** An `ip -batch` line. */
  line: string;
  /** The device it needs, if any. */
  dev?: string;
}

export interface Plan {
  /** Ports whose veth pair must be created (and the workload side configured). */
  create: PortState[];
  /** Commands for the host namespace, in a safe order. */
  commands: Command[];
  /** An `nft -f` script updating Cirrus's tables (empty: nothing to do). */
  nft: string[];
  /** Policy chains the script writes (family/name → content). */
  nftWritten: Map<string, string>;
  /** Policy rule maps whose elements the script changes. */
  nftChangedMaps: Set<string>;
}

/**
 * The minimal change from `actual` to `desired`. Only objects Cirrus owns appear in
 * `actual` (the reader filters), so everything extra there is removed.
 */
export function plan(
  desired: Desired,
  actual: KernelState,
  appliedChains: ReadonlyMap<string, string> = new Map(),
  appliedMaps: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map(),
): Plan {
  const create: PortState[] = [];
  const adds: Command[] = [];
  const dels: Command[] = [];
  const on = (dev: string | undefined, line: string): Command => (dev && dev !== 'lo' ? { line, dev } : { line });
  const links: Command[] = [];
  for (const [name, want] of desired.kernel.links) {
    const link = actual.links.get(name);
    const port = desired.ports.get(name);
    if (!link) {
      if (port?.registration.mode === 'create') create.push(port);
      // The VXLAN device: external (VNI and remote per route), no learning, and the workloads'
      // MTU, so that a larger packet gets ICMP frag-needed back instead of vanishing.
      if (name === SERVICE_DEV) links.push({ line: `link add ${SERVICE_DEV} type bridge` }, { line: `link set dev ${SERVICE_DEV} up` });
      if (name === VXLAN_DEV) links.push({ line: `link add ${VXLAN_DEV} mtu ${WORKLOAD_MTU} type vxlan external dstport ${VXLAN_PORT} nolearning` }, { line: `link set dev ${VXLAN_DEV} address ${want.identity} up` });
      continue; // an adopted interface that does not exist yet: plumbed when it appears
    }
    if (want.identity && !port && link.identity !== want.identity) links.push({ line: `link set dev ${name} address ${want.identity}` });
    if (link.up !== want.up) links.push(on(name, `link set dev ${name} ${want.up ? 'up' : 'down'}`));
  }
  // Routes, neighbours and rules need their device: skip those of missing devices.
  const present = (dev?: string) => dev === undefined || dev === 'lo' || actual.links.has(dev) || create.some((p) => p.hostIf === dev) || ((dev === VXLAN_DEV || dev === SERVICE_DEV) && desired.kernel.links.has(dev));
  for (const [key, r] of desired.kernel.routes) {
    const have = actual.routes.get(key);
    // A gateway's route leaves through an interface that is not Cirrus's (the kernel refuses it, visibly, if it is missing).
    if ((r.via !== undefined || present(r.dev)) && (!have || have.type !== r.type || have.dev !== r.dev || have.nhid !== r.nhid || have.via !== r.via || JSON.stringify(have.encap) !== JSON.stringify(r.encap))) adds.push(on(r.dev, routeCommand('replace', r)));
  }
  // Next hops before the routes using them (tunnels before their groups); removed after.
  const nexthops = [...desired.kernel.nexthops.values()].sort((a, b) => Number(!!a.group) - Number(!!b.group));
  const nexthopAdds = nexthops.filter((n) => JSON.stringify(actual.nexthops.get(n.id)) !== JSON.stringify(n)).map((n) => on(n.encap ? VXLAN_DEV : undefined, nexthopCommand(n)));
  const nexthopDels = [...actual.nexthops.values()].filter((n) => !desired.kernel.nexthops.has(n.id)).sort((a, b) => Number(!!b.group) - Number(!!a.group)).map((n) => ({ line: `nexthop del id ${n.id}` }));
  for (const [key, r] of actual.routes) if (!desired.kernel.routes.has(key)) dels.push(on(r.dev, routeCommand('del', r)));
  for (const [key, n] of desired.kernel.neighs) {
    const have = actual.neighs.get(key);
    if (present(n.dev) && (!have || have.mac !== n.mac)) adds.push(on(n.dev, `neigh replace ${n.ip} lladdr ${n.mac} dev ${n.dev} nud permanent proto ${CIRRUS_PROTO}`));
  }
  for (const [key, n] of actual.neighs) if (!desired.kernel.neighs.has(key)) dels.push(on(n.dev, `neigh del ${n.ip} dev ${n.dev}`));
  for (const a of desired.kernel.addresses) if (!actual.addresses.has(a)) adds.push({ line: `addr add ${a}/32 dev ${SERVICE_DEV}`, dev: SERVICE_DEV });
  for (const a of actual.addresses) if (!desired.kernel.addresses.has(a)) dels.push({ line: `addr del ${a}/32 dev ${SERVICE_DEV}`, dev: SERVICE_DEV });
  for (const [key, r] of desired.kernel.rules) if (!actual.rules.has(key)) adds.push({ line: ruleCommand('add', r) });
  for (const [key, r] of actual.rules) if (!desired.kernel.rules.has(key)) dels.unshift({ line: ruleCommand('del', r) });
  for (const name of actual.links.keys()) if (!desired.kernel.links.has(name)) dels.push({ line: `link del dev ${name}` });
  // Removals first (rules before the routes and links they lead to), then links, then the rest.
  const nft = nftScript(desired.nft, actual.nft, appliedChains, appliedMaps);
  // A next hop goes only once no group or route uses it any more (deleting a group's last member deletes the group and its routes).
  return { create, commands: [...dels, ...links, ...nexthopAdds, ...adds, ...nexthopDels], nft: nft.lines, nftWritten: nft.written, nftChangedMaps: nft.changedMaps };
}

function routeCommand(op: 'replace' | 'del', r: Route): string {
  const head = `route ${op} ${r.type === 'unicast' ? '' : `${r.type} `}${r.dst === 'default' || r.dst.includes('/') ? r.dst : `${r.dst}/32`}`;
  const encap = r.encap ? ` encap ip id ${r.encap.vni} dst ${r.encap.dst} via ${r.encap.dst}` : r.via ? ` via ${r.via}` : '';
  const dev = r.dev ? `${encap} dev ${r.dev}${r.encap ? ' onlink' : r.type === 'unicast' && !r.via ? ' scope link' : ''}` : '';
  const nh = r.nhid !== undefined ? ` nhid ${r.nhid}` : '';
  return `${head}${dev}${nh} table ${r.table} proto ${CIRRUS_PROTO}`;
}

/** Groups are resilient: a change of members moves only the buckets it must (idle ones, for a new member). */
function nexthopCommand(n: Nexthop): string {
  const body = n.group
    ? `group ${n.group.map((m) => (m.weight > 1 ? `${m.id},${m.weight}` : String(m.id))).join('/')} type resilient buckets ${NEXTHOP_BUCKETS} idle_timer ${NEXTHOP_IDLE_S}`
    : `encap ip id ${n.encap!.vni} dst ${n.encap!.dst} via ${n.encap!.dst} dev ${VXLAN_DEV} onlink`;
  return `nexthop replace id ${n.id} ${body} proto ${CIRRUS_PROTO}`;
}

/** Buckets of a floating IP's group, and how long a bucket must be idle before a new host takes it (TF ages flows out after 180 s). */
export const NEXTHOP_BUCKETS = 128;
export const NEXTHOP_IDLE_S = 180;

function ruleCommand(op: 'add' | 'del', r: Rule): string {
  const selector = r.fwmark !== undefined
    ? `fwmark 0x${r.fwmark.toString(16)}`
    : r.tunId !== undefined
      ? `tun_id ${r.tunId}`
      : r.underlay
        ? `iif lo ipproto udp dport ${VXLAN_PORT}`
        : `iif ${r.iif}`;
  return `rule ${op} pref ${r.pref} ${selector} lookup ${r.table}`;
}

/** Commands creating a port's veth pair, the workload end inside its namespace. */
export function createVethCommands(p: PortState): string[] {
  const reg = p.registration;
  return [
    `link add ${p.hostIf} mtu 1500 type veth peer name ${reg.ifname} netns ${reg.netns} address ${p.mac} mtu ${WORKLOAD_MTU}`,
    `link set dev ${p.hostIf} up`,
  ];
}

/** What the workload's side of a new port needs (set inside its namespace). */
export function workloadConfig(p: PortState): WorkloadConfig {
  const reg = p.registration;
  return {
    id: p.vmiUuid,
    netns: reg.netns!,
    ifname: reg.ifname!,
    mac: p.mac,
    mtu: WORKLOAD_MTU,
    address: p.address,
    prefix: p.prefixLen,
    ...(p.gateway ? { gateway: p.gateway } : {}),
    ...(reg.dhcp ? { dhcp: true } : {}),
  };
}
