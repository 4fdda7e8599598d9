// What one host must forward, computed from configuration and the host's port
// registrations by a pure function (no I/O): the agent reconciles the kernel to it. The
// control node will compute the same structure per host (multi-host routes included).

import { subnetsOf } from '../ipam/subnets.js';
import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';
import { singleRef } from '../config/hooks/context.js';
import { formatCidr, formatIpv4, isIpv4, normaliseMac } from '../util/ipv4.js';
import type { PortRegistration } from './ports/registry.js';
import { AUTO_VNI_BASE, hostIfName, isValidIfName, tableOf } from './dataplane/names.js';

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
  /** The registration this port comes from (namespace, interface name, mode). */
  registration: PortRegistration;
}

export interface HostState {
  networks: NetworkState[];
  ports: PortState[];
  /** This host's underlay address (no overlay without one). */
  underlayIp?: string;
  remotes: RemoteRoute[];
  /** Registrations whose configuration is incomplete, with the reason (shown in introspect). */
  pending: { vmiUuid: string; reason: string }[];
}

/** Who this host is: its name (matched against interface bindings) and underlay address. */
export interface HostIdentity {
  host: string;
  underlayIp?: string;
}

export function computeHostState(view: ConfigView, registrations: PortRegistration[], self?: HostIdentity): HostState {
  const networks = new Map<string, NetworkState>();
  const ports: PortState[] = [];
  const pending: HostState['pending'] = [];
  for (const reg of registrations) {
    const vmi = view.get(reg.vmiUuid)?.obj;
    if (!vmi || vmi.type !== 'virtual-machine-interface') {
      pending.push({ vmiUuid: reg.vmiUuid, reason: 'no such virtual-machine-interface' });
      continue;
    }
    const netUuid = singleRef(vmi, 'virtual_network_refs');
    const net = netUuid ? view.get(netUuid)?.obj : undefined;
    if (!net) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: 'interface has no network' });
      continue;
    }
    const iip = view
      .referrers(vmi.uuid)
      .map((r) => r.from.obj)
      .find((o) => o.type === 'instance-ip' && o.props['instance_ip_address'] !== undefined);
    if (!iip) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: 'interface has no instance-ip' });
      continue;
    }
    const address = iip.props['instance_ip_address'] as string;
    const subnets = subnetsOf(net);
    const subnet = subnets.find((s) => s.uuid === iip.props['subnet_uuid']) ?? subnets[0];
    if (!subnet) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: 'network has no subnet' });
      continue;
    }
    if (!networks.has(net.uuid)) {
      const id = net.props['virtual_network_network_id'] as number;
      const service = subnets.flatMap((s) => [s.gateway, s.dns]).filter((a): a is number => a !== undefined).map(formatIpv4);
      const vni = (net.props['virtual_network_properties'] as { vxlan_network_identifier?: number } | undefined)?.vxlan_network_identifier ?? AUTO_VNI_BASE + id;
      networks.set(net.uuid, { uuid: net.uuid, name: net.fq_name.join(':'), id, table: tableOf(id), serviceAddresses: [...new Set(service)], subnets: subnets.map((x) => formatCidr(x.cidr)), vni });
    }
    const mac = normaliseMac((((vmi.props['virtual_machine_interface_mac_addresses'] as { mac_address?: string[] } | undefined)?.mac_address ?? [])[0]) ?? '');
    // The API validated these; the agent checks again because they end up on ip's command line.
    if (!mac || !isIpv4(address) || !isValidIfName(reg.hostIf ?? hostIfName(vmi.uuid))) {
      pending.push({ vmiUuid: reg.vmiUuid, reason: 'invalid MAC, address or interface name in the configuration' });
      continue;
    }
    ports.push({
      vmiUuid: vmi.uuid,
      network: net.uuid,
      hostIf: reg.hostIf ?? hostIfName(vmi.uuid),
      mac,
      address,
      prefixLen: subnet.cidr.prefixLen,
      ...(subnet.gateway !== undefined ? { gateway: formatIpv4(subnet.gateway) } : {}),
      registration: reg,
    });
  }
  const remotes = self?.underlayIp ? remoteRoutes(view, [...networks.keys()], self.host) : [];
  return { networks: [...networks.values()], ports, ...(self?.underlayIp ? { underlayIp: self.underlayIp } : {}), remotes, pending };
}

/** The addresses of these networks bound to other hosts that have an underlay address. */
function remoteRoutes(view: ConfigView, networks: string[], self: string): RemoteRoute[] {
  const out: RemoteRoute[] = [];
  for (const network of networks) {
    for (const { from } of view.referrers(network)) {
      const iip = from.obj;
      if (iip.type !== 'instance-ip') continue;
      const vmi = view.get(singleRef(iip, 'virtual_machine_interface_refs') ?? '')?.obj;
      const host = vmi && bindingHost(vmi);
      if (!host || host === self) continue;
      const router = view.get(view.uuidByName('virtual-router', ['default-global-system-config', host]) ?? '')?.obj;
      const vtep = router?.props['virtual_router_ip_address'] as string | undefined;
      const address = iip.props['instance_ip_address'] as string;
      if (vtep && isIpv4(vtep) && isIpv4(address)) out.push({ network, address, vtep });
    }
  }
  return out;
}

function bindingHost(vmi: StoredObject): string | undefined {
  const pairs = (vmi.props['virtual_machine_interface_bindings'] as { key_value_pair?: { key: string; value?: string }[] } | undefined)?.key_value_pair ?? [];
  return pairs.find((p) => p.key === 'host_id')?.value;
}
