// What one host must forward, computed by a pure function (no I/O) from the document the
// control node sent (networks, interfaces bound here, routes elsewhere, leaks) and the
// host's port registrations (which interfaces are plugged here, and how): the agent
// reconciles the kernel to it.

import { type AclBlockEntry, type AclRule, type FloatingEntry, type LeakEntry, type NetworkEntry, type PortEntry, type RouteEntry, type SgEntry, aclKey } from '../control/protocol.js';
import { isIpv4, normaliseMac } from '../util/ipv4.js';
import type { HostDocument } from './control-client.js';
import type { PortRegistration } from './ports/registry.js';
import { hostIfName, isValidIfName, tableOf } from './dataplane/names.js';

export interface NetworkState {
  uuid: string;
  name: string;
  id: number;
  table: number;
  /** Addresses the host answers for in this network (gateways, DNS addresses). */
  serviceAddresses: string[];
  /** The network's subnets (CIDRs). */
  subnets: string[];
  /** VXLAN network identifier: the configured one, else AUTO_VNI_BASE + the network id. */
  vni: number;
  /** Its policies' rules in order (absent: no policy attached). */
  acl?: AclRule[];
  /** The same rules, a block per policy (the document's objects: an unchanged policy's block stays the same object). */
  aclBlocks?: AclBlockEntry[];
  /** router_external: reachable from outside through the gateways. */
  external?: boolean;
  /** Its workloads reach the outside through the gateways, masqueraded. */
  snat?: boolean;
  /** Underlay addresses of the gateway hosts (external or SNAT networks). */
  gateways?: string[];
}

/** A floating IP of a network this host sees: its back ends here and its back ends' hosts elsewhere. */
export interface FloatingState {
  uuid: string;
  network: string;
  address: string;
  /** Back ends on this host (DNAT to them). */
  local: { port: PortState; address: string }[];
  /** Other hosts with back ends: underlay address → how many. */
  remote: Map<string, number>;
  /** Back ends in all: one is a NAT address (also the source of its connections), several an ECMP service address. */
  backends: number;
}

/** This host as a gateway: the interface towards the outside and the next hop there. */
export interface GatewayConfig {
  interface: string;
  nexthop: string;
}

/** An address of a network that lives on another host: tunnel to it. */
export interface RemoteRoute {
  network: string;
  address: string;
  /** The other host's underlay address. */
  vtep: string;
}

export interface PortState {
  vmiUuid: string;
  network: string;
  hostIf: string;
  mac: string;
  address: string;
  prefixLen: number;
  gateway?: string;
  /** Other sources it may send from (CIDR and MAC). */
  allowedAddressPairs?: { cidr: string; mac: string }[];
  /** false: it may send from any address (port security off). */
  portSecurity?: false;
  /** Its security groups (none: no security-group filtering). */
  securityGroups?: string[];
  /** The registration this port comes from (namespace, interface name, mode). */
  registration: PortRegistration;
}

export interface HostState {
  networks: NetworkState[];
  ports: PortState[];
  /** This host's underlay address (no overlay without one). */
  underlayIp?: string;
  remotes: RemoteRoute[];
  /** Peer networks whose routes are installed in a network's table (a policy lets them talk). */
  leaks: { network: string; peer: string }[];
  /** Registrations whose configuration is incomplete, with the reason (shown in introspect). */
  pending: { vmiUuid: string; reason: string }[];
  /** The security groups of the ports, by uuid. */
  groups?: Map<string, SgEntry>;
  /** Floating IPs of the networks it sees. */
  floatingIps?: FloatingState[];
  /** Set on a gateway host. */
  gateway?: GatewayConfig;
}

/** Who this host is: its name (matched against interface bindings) and underlay address. */
export interface HostIdentity {
  host: string;
  underlayIp?: string;
  gateway?: GatewayConfig;
}

export function computeHostState(doc: HostDocument | undefined, registrations: PortRegistration[], self?: HostIdentity): HostState {
  const entries = splitDocument(doc ?? new Map());
  const networks = new Map<string, NetworkState>();
  const ports: PortState[] = [];
  const pending: HostState['pending'] = [];
  const network = (uuid: string): NetworkState | undefined => {
    let n = networks.get(uuid);
    const e = entries.networks.get(uuid);
    if (!n && e) networks.set(uuid, (n = { ...e, table: tableOf(e.id), ...policyRules(e, entries.acls) }));
    return n;
  };
  for (const reg of registrations) {
    const port = entries.ports.get(reg.vmiUuid);
    if (!port) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: doc ? `not bound to this host in the configuration (virtual_machine_interface_bindings host_id ${self?.host ?? ''}), or no such interface` : 'no configuration from a control node yet' });
      continue;
    }
    if (port.pending || !port.mac || !port.address || port.prefixLen === undefined) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: port.pending ?? 'incomplete configuration' });
      continue;
    }
    const hostIf = reg.hostIf ?? hostIfName(reg.vmiUuid);
    const mac = normaliseMac(port.mac);
    // The control node validated these; the agent checks again because they end up on ip's command line.
    if (!mac || !isIpv4(port.address) || !isValidIfName(hostIf)) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: 'invalid MAC, address or interface name in the configuration' });
      continue;
    }
    if (!network(port.network)) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: 'network has no subnet' });
      continue;
    }
    ports.push({
      vmiUuid: reg.vmiUuid,
      network: port.network,
      hostIf,
      mac,
      address: port.address,
      prefixLen: port.prefixLen,
      ...(port.gateway ? { gateway: port.gateway } : {}),
      ...(port.allowedAddressPairs?.length ? { allowedAddressPairs: port.allowedAddressPairs.map((p) => ({ cidr: p.cidr, mac: normaliseMac(p.mac ?? '') ?? mac })) } : {}),
      ...(port.portSecurity === false ? { portSecurity: false as const } : {}),
      ...(port.securityGroups?.length ? { securityGroups: port.securityGroups } : {}),
      registration: reg,
    });
  }
  // Every network the control node sent: those of interfaces here, those leaked into them,
  // floating IPs' networks of back ends here, external and SNAT networks on a gateway.
  for (const uuid of entries.networks.keys()) network(uuid);
  // Networks leaked into a local one bring their routes (and their VNI for the tunnel).
  const leaks = entries.leaks.filter((l) => networks.has(l.network) && network(l.peer));
  const remotes = self?.underlayIp ? entries.routes.filter((r) => networks.has(r.network) && isIpv4(r.vtep) && isIpv4(r.address)) : [];
  const floatingIps = floating(entries.floating, networks, ports, self?.underlayIp);
  return {
    networks: [...networks.values()],
    ports,
    ...(self?.underlayIp ? { underlayIp: self.underlayIp } : {}),
    remotes,
    leaks,
    pending,
    groups: entries.groups,
    ...(floatingIps.length ? { floatingIps } : {}),
    ...(self?.gateway ? { gateway: self.gateway } : {}),
  };
}

/** Floating IPs of the networks here, with their back ends split into local ports and other hosts. */
function floating(entries: FloatingEntry[], networks: ReadonlyMap<string, NetworkState>, ports: PortState[], underlayIp: string | undefined): FloatingState[] {
  const byVmi = new Map(ports.filter((p) => p.registration.enabled).map((p) => [p.vmiUuid, p]));
  const out: FloatingState[] = [];
  for (const e of entries) {
    if (!networks.has(e.network) || !isIpv4(e.address)) continue;
    const local: FloatingState['local'] = [];
    const remote = new Map<string, number>();
    for (const b of e.backends) {
      const port = byVmi.get(b.vmiUuid);
      if (port && port.network === b.network && isIpv4(b.address)) local.push({ port, address: b.address });
      else if (b.vtep && b.vtep !== underlayIp && isIpv4(b.vtep) && underlayIp) remote.set(b.vtep, (remote.get(b.vtep) ?? 0) + 1);
    }
    out.push({ uuid: e.uuid, network: e.network, address: e.address, local, remote, backends: e.backends.length });
  }
  return out;
}

/**
 * A network's rules from its policies' blocks. A block the document lacks (the control node
 * always sends them together: never expected) stands for its policy denying everything.
 */
function policyRules(e: NetworkEntry, acls: ReadonlyMap<string, AclBlockEntry>): Pick<NetworkState, 'acl' | 'aclBlocks'> {
  if (!e.policies) return {};
  const blocks = e.policies.map((policy) => acls.get(aclKey(e.uuid, policy)) ?? { network: e.uuid, policy, rules: [{ uuid: 'policy rules missing', action: 'deny' as const, src: null, dst: null }] });
  return { acl: blocks.flatMap((b) => b.rules), aclBlocks: blocks };
}

/** The document's entries by kind. */
function splitDocument(doc: HostDocument): { networks: Map<string, NetworkEntry>; ports: Map<string, PortEntry>; routes: RouteEntry[]; leaks: LeakEntry[]; groups: Map<string, SgEntry>; floating: FloatingEntry[]; acls: Map<string, AclBlockEntry> } {
  const out = { networks: new Map<string, NetworkEntry>(), ports: new Map<string, PortEntry>(), routes: [] as RouteEntry[], leaks: [] as LeakEntry[], groups: new Map<string, SgEntry>(), floating: [] as FloatingEntry[], acls: new Map<string, AclBlockEntry>() };
  for (const [key, value] of doc) {
    switch (key[0]) {
      case 'n':
        out.networks.set((value as NetworkEntry).uuid, value as NetworkEntry);
        break;
      case 'p':
        out.ports.set((value as PortEntry).vmiUuid, value as PortEntry);
        break;
      case 'r':
        out.routes.push(value as RouteEntry);
        break;
      case 'l':
        out.leaks.push(value as LeakEntry);
        break;
      case 's':
        out.groups.set((value as SgEntry).uuid, value as SgEntry);
        break;
      case 'f':
        out.floating.push(value as FloatingEntry);
        break;
      case 'a':
        out.acls.set(key, value as AclBlockEntry);
        break;
    }
  }
  return out;
}
