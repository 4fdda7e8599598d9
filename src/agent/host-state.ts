// What one host must forward, computed from configuration and the host's port
// registrations by a pure function (no I/O): the agent reconciles the kernel to it. The
// control node will compute the same structure per host (multi-host routes included).

import { subnetsOf } from '../ipam/subnets.js';
import type { ConfigView } from '../config/view.js';
import { singleRef } from '../config/hooks/context.js';
import { formatIpv4, isIpv4, normaliseMac } from '../util/ipv4.js';
import type { PortRegistration } from './ports/registry.js';
import { hostIfName, isValidIfName, tableOf } from './dataplane/names.js';

export interface NetworkState {
  uuid: string;
  name: string;
  id: number;
  table: number;
  /** Addresses the host answers for in this network (gateways, DNS addresses). */
  serviceAddresses: string[];
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
  /** Registrations whose configuration is incomplete, with the reason (shown in introspect). */
  pending: { vmiUuid: string; reason: string }[];
}

export function computeHostState(view: ConfigView, registrations: PortRegistration[]): HostState {
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
      networks.set(net.uuid, { uuid: net.uuid, name: net.fq_name.join(':'), id, table: tableOf(id), serviceAddresses: [...new Set(service)] });
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
  return { networks: [...networks.values()], ports, pending };
}
