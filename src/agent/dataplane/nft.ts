// Cirrus's nftables tables: their layout, the desired contents computed from the host
// state, and the script that brings the kernel's tables there. Pure (kernel.ts reads and
// applies).
//
// `table ip cirrus`:
//   pre   (prerouting, raw): drops what a workload sends from an address or MAC not its own
//         (anti-spoofing; allowed_address_pairs count as its own; 0.0.0.0 only for DHCP);
//         marks a workload's packets with its network's table (by ingress interface); marks a
//         VXLAN packet for this host with the network of its VNI (the decapsulated packet
//         keeps the mark) and leaves it untracked (tunnel packets from the gateway's outside
//         interface are dropped); sets the conntrack zone from the mark.
//   local_out (output, raw): tunnel packets untracked; the zone of the host's own marked
//         packets (replies from service addresses).
//   stateful (forward, filter): established and related pass, overlay to overlay passes
//         (a host forwarding to other hosts' back ends), invalid drop; a new
//         connection from a workload goes through its network's `pol_out_<id>` chain and
//         its security groups' `sg_out_<k>`, one to a workload through `pol_in_<id>` and
//         `sg_in_<k>` (policies: acl.ts's rules, first match; groups: sg.ts's, any allows).
//         Each check returns when it passes and drops when it does not.
//   clamp (forward, mangle): TCP MSS of forwarded SYNs to the route's MTU.
//   host_in (input, filter): a workload reaches the host only for its services on the
//         service addresses (ping, DNS, DHCP, metadata); nothing else of the host. DHCP and
//         DNS over UDP end here: the agent's packet tap has answered them already.
//   nat_pre (prerouting, dstnat): a new connection to a floating IP with back ends here
//         jumps to its `fip_<k>` chain, which picks one by a hash of the 5-tuple (conntrack
//         pins the choice); from the overlay only local back ends, from local workloads
//         local ones in proportion (the rest are routed to the other hosts' back ends).
//   nat_route (prerouting, after dstnat): a connection remembers the mark (network) it
//         started in (ct mark) and its replies are routed there; a translated packet is
//         routed in its back end's network; a workload with a floating IP sends what is
//         outside its own network (and those leaked into it) through the floating IP's.
//   nat_post (postrouting, srcnat): such packets leave with the floating IP as source; on a
//         gateway, SNAT networks' packets to the outside are masqueraded.
// `table arp cirrus`: drops ARP from a workload claiming an address or MAC not its own;
// marks ARP requests by ingress interface (proxy ARP looks up the network's table).
// A `layout_N` chain names the layout: a table of another one is replaced whole.

import { createHash } from 'node:crypto';
import type { AclRule, SgEntry } from '../../control/protocol.js';
import type { HostState, NetworkState } from '../host-state.js';
import { denyLog } from './deny-log.js';
import { NFT_FAMILIES, NFT_TABLE, type NftFamily, VXLAN_DEV, VXLAN_PORT, ifKey, markOf } from './names.js';
import { FIP_DNAT, FIP_IN, FIP_MARKS, MASQ_MARKS, OUTSIDE, OUTSIDE_ROUTE, PUBLIC_MARKS, SNAT_ADDRS, SNAT_LOCAL, SNAT_MARKS, SNAT_PORTS, natElements } from './nat.js';

/** One family's table: maps and sets (element → value as nft writes them; '' for a set's) and policy chains (rule lines). */
export interface NftTable {
  maps: Map<string, Map<string, string>>;
  /** Regular chains; as read, the rules are not (an empty list). */
  chains: Map<string, string[]>;
  /** Maps made for policy rules (name → declaration), beside the fixed ones. */
  ruleMaps?: Map<string, string>;
  /** As read: whether the rule maps were read too (they are large; between full checks their contents are what was last written). */
  ruleMapsRead?: boolean;
}

/** A table as read: missing, of an older layout (replaced whole), or current. */
export type NftActual = NftTable | 'missing' | 'stale';

export const PORT_MARKS = 'port_marks';
const PORT_OUT = 'port_out';
const PORT_IN = 'port_in';
const PORT_SG_OUT = 'port_sg_out';
const PORT_SG_IN = 'port_sg_in';
const MARK_ZONES = 'mark_zones';
const VNI_MARKS = 'vni_marks';
/** Every workload interface; those with port security; their own (interface, address, MAC); the service addresses. */
const PORTS = 'ports';
const GUARDED = 'guarded';
const PORT_ADDRS = 'port_addrs';
const SERVICE_ADDRS = 'service_addrs';

/** Sets and maps by family: their declaration (a map's elements have values, a set's have none). */
const DECLARATIONS: Record<NftFamily, Record<string, string>> = {
  ip: {
    [PORT_MARKS]: 'map $ { type ifname : mark; }',
    [PORT_OUT]: 'map $ { type ifname : verdict; }',
    [PORT_IN]: 'map $ { type ifname : verdict; }',
    [PORT_SG_OUT]: 'map $ { type ifname : verdict; }',
    [PORT_SG_IN]: 'map $ { type ifname : verdict; }',
    [MARK_ZONES]: 'map $ { typeof meta mark : ct zone; }',
    [VNI_MARKS]: 'map $ { typeof @th,96,24 : meta mark; }',
    [PORTS]: 'set $ { type ifname; }',
    [GUARDED]: 'set $ { type ifname; }',
    [PORT_ADDRS]: 'set $ { typeof iifname . ip saddr . ether saddr; flags interval; }',
    [SERVICE_ADDRS]: 'set $ { type ipv4_addr; }',
    [FIP_DNAT]: 'map $ { typeof meta mark . ip daddr : verdict; }',
    [FIP_MARKS]: 'map $ { typeof ct original ip daddr . ip daddr : meta mark; }',
    [FIP_IN]: 'map $ { typeof ct original ip daddr . ip daddr : verdict; }',
    [SNAT_PORTS]: 'set $ { type ifname; }',
    [SNAT_LOCAL]: 'set $ { typeof iifname . ip daddr; flags interval; }',
    [SNAT_MARKS]: 'map $ { type ifname : mark; }',
    [SNAT_ADDRS]: 'map $ { typeof iifname . meta mark : ip saddr; }',
    [OUTSIDE]: 'set $ { type ifname; }',
    [OUTSIDE_ROUTE]: 'set $ { typeof fib daddr . mark oifname; }',
    [PUBLIC_MARKS]: 'map $ { typeof ip daddr : meta mark; flags interval; }',
    [MASQ_MARKS]: 'set $ { typeof meta mark; }',
  },
  arp: {
    [PORT_MARKS]: 'map $ { type ifname : mark; }',
    [GUARDED]: 'set $ { type ifname; }',
    [PORT_ADDRS]: 'set $ { typeof iifname . arp saddr ip . arp saddr ether; flags interval; }',
  },
};

const LAYOUT = 'layout_7';
const SPOOFED = 'counter drop comment "spoofed source"';

/** Base chains (and fixed regular ones) by family: their presence tells the current layout from another. */
const BASE_CHAINS: Record<NftFamily, Record<string, string>> = {
  ip: {
    [LAYOUT]: '',
    pre: [
      'type filter hook prerouting priority raw; policy accept;',
      `iifname @${GUARDED} ip saddr != 0.0.0.0 iifname . ip saddr . ether saddr != @${PORT_ADDRS} ${SPOOFED};`,
      `iifname @${GUARDED} ip saddr 0.0.0.0 meta l4proto != udp ${SPOOFED};`,
      `iifname @${GUARDED} ip saddr 0.0.0.0 udp dport != 67 ${SPOOFED};`,
      `meta mark set iifname map @${PORT_MARKS};`,
      `fib daddr type local udp dport ${VXLAN_PORT} meta mark set @th,96,24 map @${VNI_MARKS};`,
      // The overlay is never entered from outside; tunnel packets need no connection state
      // (the decapsulated packet is tracked): without this, every inner flow would cost a
      // second conntrack entry (its own outer source port) on both hosts.
      `iifname @${OUTSIDE} fib daddr type local udp dport ${VXLAN_PORT} counter drop comment "tunnel from outside";`,
      `fib daddr type local udp dport ${VXLAN_PORT} notrack accept;`,
      `iifname @${OUTSIDE} meta mark set ip daddr map @${PUBLIC_MARKS};`,
      // Masqueraded to the outside: the reply comes back unmarked, so the zone is the original direction's only.
      `meta mark @${MASQ_MARKS} fib daddr . mark oifname @${OUTSIDE_ROUTE} ct original zone set meta mark map @${MARK_ZONES};`,
      `ct zone set meta mark map @${MARK_ZONES};`,
    ].join(' '),
    local_out: `type filter hook output priority raw; policy accept; udp dport ${VXLAN_PORT} notrack accept; ct zone set meta mark map @${MARK_ZONES};`,
    stateful: [
      'type filter hook forward priority filter; policy accept;',
      'ct state established,related accept;',
      // Overlay to overlay: a host forwarding a floating IP's connections to the hosts of its
      // remaining back ends (its own left: make before break) sees only their client's side;
      // their ACKs are "invalid" to its conntrack. Policy was judged where they entered and
      // is judged where they leave the overlay.
      `iifname "${VXLAN_DEV}" oifname "${VXLAN_DEV}" accept;`,
      'ct state invalid drop;',
      `iifname @${OUTSIDE} meta mark 0 counter drop comment "from outside";`,
      `iifname vmap @${PORT_OUT}; iifname vmap @${PORT_SG_OUT};`,
      'ct status dnat jump to_floating;',
      `oifname vmap @${PORT_IN}; oifname vmap @${PORT_SG_IN};`,
    ].join(' '),
    // Through a floating IP: the floating IP's network's policy (not the back end's) and the back end's groups.
    to_floating: [`ct original ip daddr . ip daddr vmap @${FIP_IN};`, `oifname vmap @${PORT_SG_IN};`, 'accept;'].join(' '),
    clamp: 'type filter hook forward priority mangle; policy accept; tcp flags syn / syn,rst tcp option maxseg size set rt mtu;',
    from_workload: [
      'ct state established,related accept;',
      `ip daddr @${SERVICE_ADDRS} icmp type echo-request accept;`,
      // The agent's packet tap answers DHCP and DNS over UDP before the IP stack sees them
      // (services/): here they end, silently (no listener: the stack would say "port unreachable").
      `ip daddr @${SERVICE_ADDRS} udp dport 53 drop;`,
      'udp sport 68 udp dport 67 drop;',
      `ip daddr @${SERVICE_ADDRS} tcp dport 53 accept;`,
      'ip daddr 169.254.169.254 tcp dport 80 accept;',
      'counter drop comment "host protection";',
    ].join(' '),
    host_in: `type filter hook input priority filter; policy accept; iifname @${PORTS} jump from_workload;`,
    nat_pre: `type nat hook prerouting priority dstnat; policy accept; meta mark . ip daddr vmap @${FIP_DNAT};`,
    nat_route: [
      'type filter hook prerouting priority dstnat + 10; policy accept;',
      'ct direction reply ct status snat,dnat ct mark != 0 meta mark set ct mark;',
      'ct state new ct mark set meta mark;',
      `ct direction original ct status dnat meta mark set ct original ip daddr . ip daddr map @${FIP_MARKS};`,
      `ct direction original iifname @${SNAT_PORTS} iifname . ip daddr != @${SNAT_LOCAL} meta mark set iifname map @${SNAT_MARKS};`,
    ].join(' '),
    nat_post: [
      'type nat hook postrouting priority srcnat; policy accept;',
      `snat ip to iifname . meta mark map @${SNAT_ADDRS};`,
      `oifname @${OUTSIDE} meta mark @${MASQ_MARKS} masquerade;`,
    ].join(' '),
  },
  arp: {
    [LAYOUT]: '',
    classify: [
      'type filter hook input priority 0; policy accept;',
      `iifname @${GUARDED} arp saddr ip != 0.0.0.0 iifname . arp saddr ip . arp saddr ether != @${PORT_ADDRS} ${SPOOFED};`,
      `meta mark set iifname map @${PORT_MARKS};`,
    ].join(' '),
  },
};

/** The fixed sets and maps of a family's table, with their kind (what the reader lists one by one). */
export const fixedSets = (family: NftFamily): [string, 'map' | 'set'][] =>
  Object.entries(DECLARATIONS[family]).map(([name, d]) => [name, d.startsWith('map') ? 'map' : 'set']);

export const isBaseChain = (family: NftFamily, name: string): boolean => name in BASE_CHAINS[family];
export const baseChains = (family: NftFamily): string[] => Object.keys(BASE_CHAINS[family]);
export const POLICY_CHAIN_PREFIX = 'pol_';
const chainOut = (n: NetworkState) => `${POLICY_CHAIN_PREFIX}out_${n.id}`;
const chainIn = (n: NetworkState) => `${POLICY_CHAIN_PREFIX}in_${n.id}`;


/**
 * Conntrack zones: networks that can talk (leaked into each other, directly or not) share
 * one, so that a connection's reply finds its entry; isolated networks have their own, so
 * overlapping addresses never share state; a floating IP joins its network to its local back
 * ends'. The zone is the component's smallest network id (16 bits).
 */
export function zonesOf(host: HostState): Map<string, number> {
  const parent = new Map(host.networks.map((n) => [n.uuid, n.uuid]));
  const find = (x: string): string => {
    while (parent.get(x) !== x) x = parent.get(x)!;
    return x;
  };
  const join = (a: string, b: string) => {
    if (parent.has(a) && parent.has(b)) parent.set(find(a), find(b));
  };
  for (const { network, peer } of host.leaks) join(network, peer);
  // A floating IP's connections start in its network and end in its back end's.
  for (const f of host.floatingIps ?? []) for (const b of f.local) join(f.network, b.port.network);
  const ids = new Map(host.networks.map((n) => [n.uuid, n.id]));
  const least = new Map<string, number>();
  for (const n of host.networks) {
    const root = find(n.uuid);
    least.set(root, Math.min(least.get(root) ?? Infinity, ids.get(n.uuid)!));
  }
  return new Map(host.networks.map((n) => [n.uuid, (least.get(find(n.uuid))! % 65535) + 1]));
}

/** What the tables should hold for this host. */
export function desiredNft(host: HostState): Record<NftFamily, NftTable> {
  const portMarks = new Map<string, string>();
  const portOut = new Map<string, string>();
  const portIn = new Map<string, string>();
  const portSgOut = new Map<string, string>();
  const portSgIn = new Map<string, string>();
  const markZones = new Map<string, string>();
  const vniMarks = new Map<string, string>();
  const chains = new Map<string, string[]>();
  const ruleMaps = new Map<string, string>();
  const ruleMapElements = new Map<string, Map<string, string>>();
  const ports = new Map<string, string>();
  const guarded = new Map<string, string>();
  const portAddrs = new Map<string, string>();
  const serviceAddrs = new Map<string, string>();
  const byUuid = new Map(host.networks.map((n) => [n.uuid, n]));
  const zones = zonesOf(host);
  /** A network's two policy chains and their rule maps, once. */
  const policyChains = (n: NetworkState) => {
    if (chains.has(chainOut(n))) return;
    for (const [side, name] of [['out', chainOut(n)], ['in', chainIn(n)]] as const) {
      const c = aclChain(n, side);
      chains.set(name, c.rules);
      for (const m of c.maps) {
        ruleMaps.set(m.name, m.declaration);
        ruleMapElements.set(m.name, m.elements);
      }
    }
  };
  for (const n of host.networks) {
    markZones.set(String(markOf(n.table)), String(zones.get(n.uuid)));
    vniMarks.set(String(n.vni), String(markOf(n.table)));
    for (const a of n.serviceAddresses) serviceAddrs.set(a, '');
  }
  for (const p of host.ports) {
    if (!p.registration.enabled) continue;
    const n = byUuid.get(p.network)!;
    const ifname = ifKey(p.hostIf);
    ports.set(ifname, '');
    if (p.portSecurity !== false) {
      guarded.set(ifname, '');
      portAddrs.set(`${ifname} . ${p.address} . ${p.mac}`, '');
      for (const pair of p.allowedAddressPairs ?? []) portAddrs.set(`${ifname} . ${pair.cidr.endsWith('/32') ? pair.cidr.slice(0, -3) : pair.cidr} . ${pair.mac}`, '');
    }
    portMarks.set(ifname, String(markOf(n.table)));
    const groups = p.portSecurity === false ? [] : (p.securityGroups ?? []);
    if (groups.length) {
      const k = sgChainKey(groups);
      if (!chains.has(`sg_out_${k}`)) {
        chains.set(`sg_out_${k}`, groupChain(groups, host.groups ?? new Map(), 'egress'));
        chains.set(`sg_in_${k}`, groupChain(groups, host.groups ?? new Map(), 'ingress'));
      }
      portSgOut.set(ifname, `jump sg_out_${k}`);
      portSgIn.set(ifname, `jump sg_in_${k}`);
    }
    if (!n.acl) continue;
    policyChains(n);
    portOut.set(ifKey(p.hostIf), `jump ${chainOut(n)}`);
    portIn.set(ifKey(p.hostIf), `jump ${chainIn(n)}`);
  }
  const nat = natElements(host, chains);
  // Connections through a floating IP answer to its network's policy.
  const fipIn = new Map<string, string>();
  for (const f of host.floatingIps ?? []) {
    const n = byUuid.get(f.network)!;
    if (!n.acl) continue;
    policyChains(n);
    for (const b of f.local) fipIn.set(`${f.address} . ${b.address}`, `jump ${chainIn(n)}`);
  }
  return {
    ip: {
      maps: new Map([
        ...nat,
        [FIP_IN, fipIn],
        [PORT_MARKS, portMarks],
        [PORT_OUT, portOut],
        [PORT_IN, portIn],
        [PORT_SG_OUT, portSgOut],
        [PORT_SG_IN, portSgIn],
        [MARK_ZONES, markZones],
        [VNI_MARKS, vniMarks],
        [PORTS, ports],
        [GUARDED, guarded],
        [PORT_ADDRS, portAddrs],
        [SERVICE_ADDRS, serviceAddrs],
        ...ruleMapElements,
      ]),
      chains,
      ruleMaps,
    },
    arp: {
      maps: new Map([
        [PORT_MARKS, new Map(portMarks)],
        [GUARDED, new Map(guarded)],
        [PORT_ADDRS, new Map(portAddrs)],
      ]),
      chains: new Map(),
    },
  };
}

/** A verdict map standing for a block of rules (see aclChain). */
export interface RuleMap {
  name: string;
  declaration: string;
  elements: Map<string, string>;
}

/** Blocks shorter than this stay rules: a map pays off for long lists. */
const MAP_BLOCK_MIN = 8;
type Field = 'protocol' | 'src' | 'dst' | 'dport';
/**
 * Rules judge the destination a connection was addressed to: through a floating IP that is
 * the floating IP (in its network), not the back end it was translated to.
 */
const DADDR = 'ct original ip daddr';
const KEY_EXPR: Record<Field, string> = { protocol: 'meta l4proto', src: 'ip saddr', dst: DADDR, dport: 'th dport' };

/** The fields of a rule that are one value (a protocol, one address, one port), as nft writes them. */
function exactFields(r: AclRule): Partial<Record<Field, string>> {
  const one = (cidrs: string[] | null) => (cidrs?.length === 1 && cidrs[0]!.endsWith('/32') ? cidrs[0]!.slice(0, -3) : undefined);
  const out: Partial<Record<Field, string>> = {};
  if (r.protocol !== undefined) out.protocol = String(r.protocol);
  const src = one(r.src);
  if (src) out.src = src;
  const dst = one(r.dst);
  if (dst) out.dst = dst;
  if (r.dports?.length === 1 && r.dports[0]![0] === r.dports[0]![1]) out.dport = String(r.dports[0]![0]);
  return out;
}

/** The rule's match without the given fields. */
function restMatch(r: AclRule, without: Field[]): string | undefined {
  const copy: AclRule = { ...r };
  for (const f of without) {
    if (f === 'protocol') delete copy.protocol;
    else if (f === 'dport') delete copy.dports;
    else copy[f] = null;
  }
  return aclMatch(copy);
}

/**
 * A network's policy chain for one side. `out`: new connections from its workloads. `in`:
 * new connections to its workloads. A pass returns to the forward chain (the next check);
 * unmatched: pass within the network, drop from or to any other (OpenContrail's default).
 * The rules are its policies' blocks in order, each rendered once (see aclBlockChain).
 */
export function aclChain(n: NetworkState, side: 'out' | 'in'): { rules: string[]; maps: RuleMap[] } {
  const own = `{ ${n.subnets.join(', ')} }`;
  const rules: string[] = [];
  const maps: RuleMap[] = [];
  for (const b of n.aclBlocks ?? [{ policy: '', rules: n.acl ?? [] }]) {
    // The same for both sides (the rules say which way they go): one rendering, shared maps.
    const r = aclBlockChain(b.rules, `${RULE_MAP_PREFIX}${n.id}_${blockTag(b.policy)}`);
    rules.push(...r.rules);
    maps.push(...r.maps);
  }
  if (n.subnets.length) rules.push(side === 'out' ? `${DADDR} ${own} return` : `ip saddr ${own} return`);
  rules.push(`counter ${denyLog('policy', 'default')}drop comment "default"`);
  return { rules, maps };
}

/**
 * A block's rule maps are named `acl_<network id>_<tag>_<k>` (tag: from its policy's uuid):
 * stable while the policy stays, whatever comes and goes around it. Both of the network's
 * chains look them up.
 */
const RULE_MAP_PREFIX = 'acl_';
export const blockTag = (policy: string): string => createHash('sha256').update(policy).digest('hex').slice(0, 12);

/** The policy chains a rule map belongs to: its network's two. */
export const ruleMapChains = (map: string): string[] => {
  const id = map.slice(RULE_MAP_PREFIX.length).split('_', 1)[0]!;
  return [`${POLICY_CHAIN_PREFIX}out_${id}`, `${POLICY_CHAIN_PREFIX}in_${id}`];
};

/** Renderings by block (the document's rules array: the same object while its policy is unchanged) and map prefix. */
const rendered = new WeakMap<readonly AclRule[], Map<string, { rules: string[]; maps: RuleMap[] }>>();

/**
 * One block's rules as chain rules, its rule maps named `<prefix>_<k>`; memoised (the
 * result is shared: never to be changed). Each rule counts what it decides, under its uuid.
 * A run of at least MAP_BLOCK_MIN consecutive rules that differ only in single values (a
 * protocol, an address, a port) and are alike otherwise becomes one verdict-map lookup:
 * distinct single values never overlap, so first match is kept (a repeated key keeps its
 * first verdict), and a new connection pays one lookup instead of one test per rule.
 * Rules merged into a map are counted by the map's rule together.
 */
function aclBlockChain(block: readonly AclRule[], prefix: string): { rules: string[]; maps: RuleMap[] } {
  let byPrefix = rendered.get(block);
  if (!byPrefix) rendered.set(block, (byPrefix = new Map()));
  const known = byPrefix.get(prefix);
  if (known) return known;
  const rules: string[] = [];
  const maps: RuleMap[] = [];
  const acl = block.filter((r) => !matchesNothing(r));
  const exact = acl.map(exactFields);
  const verdict = (r: AclRule) => (r.action === 'deny' ? 'drop' : 'return');
  for (let i = 0; i < acl.length; ) {
    const first = exact[i]!;
    const key = (['protocol', 'src', 'dst', 'dport'] as Field[]).filter((f) => first[f] !== undefined);
    const rest = restMatch(acl[i]!, key);
    let j = i + 1;
    if (key.some((f) => f !== 'protocol')) {
      while (j < acl.length) {
        const e = exact[j]!;
        if (!key.every((f) => e[f] !== undefined) || restMatch(acl[j]!, key) !== rest) break;
        j++;
      }
    }
    if (j - i < MAP_BLOCK_MIN) {
      const r = acl[i]!;
      rules.push(`${aclMatch(r)}counter ${r.action === 'deny' ? denyLog('policy', r.uuid) : ''}${verdict(r)} comment "${r.uuid}"`);
      i++;
      continue;
    }
    const name = `${prefix}_${maps.length}`;
    const elements = new Map<string, string>();
    for (let k = i; k < j; k++) {
      const element = key.map((f) => exact[k]![f]!).join(' . ');
      if (!elements.has(element)) elements.set(element, verdict(acl[k]!));
    }
    maps.push({ name, declaration: `typeof ${key.map((f) => KEY_EXPR[f]).join(' . ')} : verdict`, elements });
    rules.push(`${rest}${key.map((f) => KEY_EXPR[f]).join(' . ')} vmap @${name} comment "${j - i} rules"`);
    i = j;
  }
  const out = { rules, maps };
  byPrefix.set(prefix, out);
  return out;
}

/** The chains of a set of groups are shared by the ports in exactly those groups. */
export function sgChainKey(groups: string[]): string {
  return createHash('sha256').update([...groups].sort().join(',')).digest('hex').slice(0, 12);
}

/** What a set of groups lets a port send (egress) or receive (ingress): any rule of any group; else drop. */
export function groupChain(groups: string[], entries: ReadonlyMap<string, SgEntry>, direction: 'ingress' | 'egress'): string[] {
  const lines: string[] = [];
  for (const g of groups) {
    for (const r of entries.get(g)?.[direction] ?? []) {
      const match = aclMatch(r);
      if (match !== undefined) lines.push(`${match}counter return comment "${r.uuid}"`);
    }
  }
  lines.push(`counter ${denyLog('sg', 'security groups')}drop comment "security groups"`);
  return lines;
}

/** A side with no address at all (a network without subnets): the rule can match nothing. */
const matchesNothing = (r: AclRule): boolean => (r.src !== null && !r.src.length) || (r.dst !== null && !r.dst.length);

/** The match part of a rule ("" matches everything); undefined when it can match nothing. */
function aclMatch(r: AclRule): string | undefined {
  if (matchesNothing(r)) return undefined;
  const set = (xs: (string | number)[]) => (xs.length === 1 ? String(xs[0]) : `{ ${xs.join(', ')} }`);
  const range = ([lo, hi]: [number, number]) => (lo === hi ? String(lo) : `${lo}-${hi}`);
  let m = '';
  if (r.src) m += `ip saddr ${set(r.src)} `;
  if (r.dst) m += `${DADDR} ${set(r.dst)} `;
  if (r.protocol !== undefined) m += `meta l4proto ${r.protocol} `;
  if (r.sports) m += `th sport ${set(r.sports.map(range))} `;
  if (r.dports) m += `th dport ${set(r.dports.map(range))} `;
  return m;
}

/** The script bringing the tables from `actual` to `desired`; `applied`: the chains' contents as last written. */
export function nftScript(
  desired: Record<NftFamily, NftTable>,
  actual: Record<NftFamily, NftActual>,
  applied: ReadonlyMap<string, string>,
  appliedMaps: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map(),
): { lines: string[]; written: Map<string, string>; changedMaps: Set<string> } {
  const lines: string[] = [];
  const written = new Map<string, string>();
  const changedMaps = new Set<string>();
  for (const family of NFT_FAMILIES) {
    const want = desired[family];
    const have = actual[family];
    const t = `${family} ${NFT_TABLE}`;
    const addElements = (map: string, elems: [string, string][]) => {
      if (elems.length) lines.push(`add element ${t} ${map} { ${elems.map(([k, v]) => (v ? `${k} : ${v}` : k)).join(', ')} }`);
    };
    if (have === 'missing' || have === 'stale') {
      if (have === 'stale') lines.push(`delete table ${t}`);
      lines.push(`table ${t} {`);
      for (const [name, declaration] of Object.entries(DECLARATIONS[family])) lines.push(`  ${declaration.replace('$', name)}`);
      for (const [name, declaration] of want.ruleMaps ?? []) lines.push(`  map ${name} { ${declaration}; }`);
      for (const [name, rules] of want.chains) {
        lines.push(`  chain ${name} {`, ...rules.map((r) => `    ${r}`), '  }');
        written.set(`${family}/${name}`, rules.join('\n'));
      }
      // Regular chains first (a base chain may jump to one).
      const fixed = Object.entries(BASE_CHAINS[family]).sort(([, a], [, b]) => Number(a.startsWith('type ')) - Number(b.startsWith('type ')));
      for (const [name, body] of fixed) lines.push(`  chain ${name} { ${body} }`);
      lines.push('}');
      for (const [map, elems] of want.maps) addElements(map, [...elems]);
      continue;
    }
    // Rule maps not read this pass hold what was last written into them (the very same
    // elements object when its block is unchanged: nothing to compare).
    const haveMaps = new Map<string, ReadonlyMap<string, string>>(have.maps);
    if (!have.ruleMapsRead) for (const [key, elems] of appliedMaps) if (key.startsWith(`${family}/`)) haveMaps.set(key.slice(family.length + 1), elems);
    // Rule maps: made before the chains that look them up, removed after.
    for (const [name, declaration] of want.ruleMaps ?? []) if (!haveMaps.has(name)) lines.push(`add map ${t} ${name} { ${declaration}; }`);
    for (const [name, rules] of want.chains) {
      const content = rules.join('\n');
      const key = `${family}/${name}`;
      if (have.chains.has(name) && applied.get(key) === content) continue;
      lines.push(have.chains.has(name) ? `flush chain ${t} ${name}` : `add chain ${t} ${name}`);
      for (const r of rules) lines.push(`add rule ${t} ${name} ${r}`);
      written.set(key, content);
    }
    for (const [map, elems] of want.maps) {
      const current = haveMaps.get(map) ?? new Map<string, string>();
      if (current === elems) continue;
      const stale = [...current].filter(([k, v]) => elems.get(k) !== v).map(([k]) => k);
      const missing = [...elems].filter(([k, v]) => current.get(k) !== v);
      if (stale.length) lines.push(`delete element ${t} ${map} { ${stale.join(', ')} }`);
      addElements(map, missing);
      if ((stale.length || missing.length) && want.ruleMaps?.has(map) && haveMaps.has(map)) changedMaps.add(map);
    }
    for (const name of have.chains.keys()) if (!want.chains.has(name)) lines.push(`delete chain ${t} ${name}`);
    for (const name of haveMaps.keys()) if (!(name in DECLARATIONS[family]) && !want.maps.has(name)) lines.push(`delete map ${t} ${name}`);
  }
  return { lines, written, changedMaps };
}
