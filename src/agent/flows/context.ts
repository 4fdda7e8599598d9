// Who a conntrack entry is about, from the host state the agent programmed: the conntrack
// zone names the group of networks (zonesOf), an address within it a local port, a remote
// workload (and its host) or a network's subnet; the deciding policy and security-group
// rules are found the way the data plane checks them (first match, source side then
// destination side). Pure.

import type { AclRule } from '../../control/protocol.js';
import { ruleMatches } from '../../control/trace.js';
import { type Cidr, cidrContains, parseCidr, parseIpv4 } from '../../util/ipv4.js';
import { markOf } from '../dataplane/names.js';
import { zonesOf } from '../dataplane/nft.js';
import type { HostState, NetworkState, PortState } from '../host-state.js';

/** TF's name for a network nobody knows. */
export const UNKNOWN_VN = '__UNKNOWN__';

/** Shared between lookups: never changed. */
export interface Endpoint {
  readonly network?: NetworkState;
  /** The local port with this address. */
  readonly port?: PortState;
  /** The host (underlay address) of a remote workload. */
  readonly vtep?: number;
}

export interface FlowContext {
  host: string;
  underlayIp: number | null;
  /** Networks by conntrack zone, and by packet mark (what NFLOG reports). */
  zones: Map<number, NetworkState[]>;
  marks: Map<number, NetworkState>;
  endpoint(zone: number, ip: number): Endpoint;
  /** The rules deciding a new connection: the policy rule and the security-group rule (uuids), where one matched. */
  decidingRules(src: Endpoint, dst: Endpoint, srcIp: number, dstIp: number, protocol: number, dport: number): { nwAce: string | null; sgRule: string | null };
}

export function flowContext(host: HostState, self: { host: string; underlayIp?: string }): FlowContext {
  const zoneOf = zonesOf(host);
  const zones = new Map<number, NetworkState[]>();
  for (const n of host.networks) {
    const z = zoneOf.get(n.uuid)!;
    zones.set(z, [...(zones.get(z) ?? []), n]);
  }
  const byUuid = new Map(host.networks.map((n) => [n.uuid, n]));
  // Endpoints are looked up per flow: numeric keys (no string per lookup) and shared, prebuilt answers.
  const key = (zone: number, ip: number) => zone * 0x100000000 + ip;
  const known = new Map<number, Endpoint>();
  for (const r of host.remotes) {
    const n = byUuid.get(r.network);
    const ip = parseIpv4(r.address);
    const vtep = parseIpv4(r.vtep);
    if (n && ip !== undefined && vtep !== undefined) known.set(key(zoneOf.get(n.uuid)!, ip), { network: n, vtep });
  }
  // A local port wins over a remote route to the same address.
  for (const p of host.ports) {
    const ip = parseIpv4(p.address);
    if (ip !== undefined) known.set(key(zoneOf.get(p.network)!, ip), { network: byUuid.get(p.network)!, port: p });
  }
  const subnets = new Map<number, { network: Endpoint; cidr: Cidr }[]>();
  for (const [z, ns] of zones) {
    subnets.set(z, ns.flatMap((n) => n.subnets.flatMap((s) => {
      const cidr = parseCidr(s);
      return typeof cidr === 'string' ? [] : [{ network: { network: n }, cidr }];
    })));
  }
  const nowhere: Endpoint = {};

  const endpoint = (zone: number, ip: number): Endpoint => known.get(key(zone, ip)) ?? subnets.get(zone)?.find((x) => cidrContains(x.cidr, ip))?.network ?? nowhere;

  const firstMatch = (rules: AclRule[], src: number, dst: number, protocol: number, dport: number) => rules.find((r) => ruleMatches(r, src, dst, { protocol, ...(protocol === 6 || protocol === 17 ? { port: dport } : {}) }));
  // Each port's security-group rules, gathered once (not per flow).
  const none: AclRule[] = [];
  const groupRules = new Map<PortState, Record<'ingress' | 'egress', AclRule[]>>();
  for (const p of host.ports) {
    const groups = p.portSecurity !== false ? (p.securityGroups ?? []).map((g) => host.groups?.get(g)) : [];
    groupRules.set(p, { ingress: groups.flatMap((g) => g?.ingress ?? []), egress: groups.flatMap((g) => g?.egress ?? []) });
  }

  return {
    host: self.host,
    underlayIp: self.underlayIp ? (parseIpv4(self.underlayIp) ?? null) : null,
    zones,
    marks: new Map(host.networks.map((n) => [markOf(n.table), n])),
    endpoint,
    decidingRules(src, dst, srcIp, dstIp, protocol, dport) {
      const srcAcl = src.network?.acl ?? none;
      const dstAcl = dst.network?.acl ?? none;
      const egress = (src.port && groupRules.get(src.port)?.egress) || none;
      const ingress = (dst.port && groupRules.get(dst.port)?.ingress) || none;
      if (!srcAcl.length && !dstAcl.length && !egress.length && !ingress.length) return { nwAce: null, sgRule: null };
      const nwAce = firstMatch(srcAcl, srcIp, dstIp, protocol, dport) ?? firstMatch(dstAcl, srcIp, dstIp, protocol, dport);
      const sgRule = firstMatch(egress, srcIp, dstIp, protocol, dport) ?? firstMatch(ingress, srcIp, dstIp, protocol, dport);
      return { nwAce: nwAce?.uuid ?? null, sgRule: sgRule?.uuid ?? null };
    },
  };
}

/** A network's name for records (its fq_name), or TF's unknown. */
export const vnName = (e: Endpoint): string => e.network?.name ?? UNKNOWN_VN;
