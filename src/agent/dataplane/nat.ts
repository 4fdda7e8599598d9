// Floating IPs, source NAT and the gateway in Cirrus's nftables table (its chains are
// nft.ts's `nat_pre`, `nat_route`, `nat_post`, `to_floating`): the sets and maps they look
// up, and one `fip_<k>` chain per floating IP with back ends here. Pure.

import type { HostState } from '../host-state.js';
import { VXLAN_DEV, ifKey, markOf } from './names.js';

/** Floating IPs: (mark . address) → its chain; (floating . back end address) → the back end's mark. */
export const FIP_DNAT = 'fip_dnat';
export const FIP_MARKS = 'fip_marks';
/** (floating IP . back end address) → its network's inward policy chain. */
export const FIP_IN = 'fip_in';
/** Interfaces whose floating IP is also their source towards its network; what their own network reaches; that network's mark; the address. */
export const SNAT_PORTS = 'snat_ports';
export const SNAT_LOCAL = 'snat_local';
export const SNAT_MARKS = 'snat_marks';
export const SNAT_ADDRS = 'snat_addrs';
/** Gateway: the interface towards the outside; external networks' subnets → mark; SNAT networks' marks. */
export const OUTSIDE = 'outside';
/** The same interface as a route lookup's result (nft types them apart). */
export const OUTSIDE_ROUTE = 'outside_route';
export const PUBLIC_MARKS = 'public_marks';
export const MASQ_MARKS = 'masq_marks';

/** The floating-IP and gateway sets and maps; adds the floating IPs' `fip_<k>` chains to `chains`. */
export function natElements(host: HostState, chains: Map<string, string[]>): [string, Map<string, string>][] {
  const byUuid = new Map(host.networks.map((n) => [n.uuid, n]));
  const mark = (network: string) => String(markOf(byUuid.get(network)!.table));
  const ownAddresses = (network: string) => new Set([...host.ports.filter((p) => p.network === network).map((p) => p.address), ...host.remotes.filter((r) => r.network === network).map((r) => r.address)]);
  const fipDnat = new Map<string, string>();
  const fipMarks = new Map<string, string>();
  const snatPorts = new Map<string, string>();
  const snatLocal = new Map<string, string>();
  const snatMarks = new Map<string, string>();
  const snatAddrs = new Map<string, string>();
  for (const f of host.floatingIps ?? []) {
    if (!f.local.length) continue;
    const name = fipChain(f.uuid);
    chains.set(name, fipRules(f.local.map((b) => b.address), [...f.remote.values()].reduce((a, b) => a + b, 0), host.underlayIp !== undefined));
    // Where the floating IP is routed: its network's table and those it is leaked into, unless that network has the address itself (as routing decides).
    const holders = [f.network, ...host.leaks.filter((l) => l.peer === f.network && !ownAddresses(l.network).has(f.address)).map((l) => l.network)];
    for (const n of holders) fipDnat.set(`${mark(n)} . ${f.address}`, `jump ${name}`);
    for (const b of f.local) fipMarks.set(`${f.address} . ${b.address}`, mark(b.port.network));
    if (f.backends === 1) {
      const port = f.local[0]!.port;
      const ifname = ifKey(port.hostIf);
      snatPorts.set(ifname, '');
      // Its own network and those leaked into it take precedence (a network's SNAT does not).
      const own = [port.network, ...host.leaks.filter((l) => l.network === port.network).map((l) => l.peer)];
      for (const n of own) for (const cidr of byUuid.get(n)?.subnets ?? []) snatLocal.set(`${ifname} . ${cidr}`, '');
      snatMarks.set(ifname, mark(f.network));
      snatAddrs.set(`${ifname} . ${mark(f.network)}`, f.address);
    }
  }
  const outside = new Map<string, string>();
  const publicMarks = new Map<string, string>();
  const masqMarks = new Map<string, string>();
  if (host.gateway) {
    outside.set(ifKey(host.gateway.interface), '');
    for (const n of host.networks) {
      if (n.external) for (const cidr of n.subnets) publicMarks.set(cidr, String(markOf(n.table)));
      if (n.snat) masqMarks.set(String(markOf(n.table)), '');
    }
  }
  return [
    [FIP_DNAT, fipDnat],
    [FIP_MARKS, fipMarks],
    [SNAT_PORTS, snatPorts],
    [SNAT_LOCAL, snatLocal],
    [SNAT_MARKS, snatMarks],
    [SNAT_ADDRS, snatAddrs],
    [OUTSIDE, outside],
    [OUTSIDE_ROUTE, new Map(outside)],
    [PUBLIC_MARKS, publicMarks],
    [MASQ_MARKS, masqMarks],
  ];
}

export const FIP_CHAIN_PREFIX = 'fip_';
const fipChain = (uuid: string) => `${FIP_CHAIN_PREFIX}${uuid.replace(/-/g, '').slice(0, 12)}`;

/**
 * A floating IP's choice among its back ends here (addresses), `remote` more being on other
 * hosts: a hash of the connection's 5-tuple, pinned by conntrack. What arrives from the
 * overlay was already sent to this host by the sender's choice: local back ends only.
 */
export function fipRules(local: string[], remote: number, overlay: boolean): string[] {
  const hash = 'jhash ip saddr . ip daddr . meta l4proto . th sport . th dport';
  const choose = (n: number) => `dnat ip to ${hash} mod ${n} map { ${local.map((a, i) => `${i} : ${a}`).join(', ')} }`;
  if (remote <= 0) return [choose(local.length)];
  // Hash values past the local back ends find no element: the rule ends and routing takes the packet elsewhere.
  return [...(overlay ? [`iifname "${VXLAN_DEV}" ${choose(local.length)}`] : []), choose(local.length + remote)];
}

