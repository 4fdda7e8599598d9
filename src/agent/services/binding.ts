// What the DHCP server tells an interface's client, from the interface's entry in the
// host's document (its instance-ip, subnet gateway and DHCP additions) and its network's
// (the domain name). Pure.

import type { NetworkEntry, PortEntry } from '../../control/protocol.js';
import { normaliseMac } from '../../util/ipv4.js';
import { WORKLOAD_MTU } from '../dataplane/names.js';
import type { DhcpBinding } from './dhcp-server.js';
import { networkDomain } from './dns-names.js';

/** TF's agent hands out leases of a day unless the subnet's option 51 says otherwise. */
export const DEFAULT_LEASE_SECONDS = 86_400;

/** The binding, or why the interface's client gets no answer. */
export function dhcpBinding(port: PortEntry, network: NetworkEntry | undefined, dnsSuffix: string): DhcpBinding | string {
  const mac = normaliseMac(port.mac ?? '');
  if (port.pending || !mac || !port.address || port.prefixLen === undefined) return port.pending ?? 'incomplete configuration';
  const d = port.dhcp ?? {};
  if (d.disabled) return 'DHCP is disabled on the subnet (enable_dhcp false)';
  const server = port.gateway ?? d.dns;
  if (!server) return 'the subnet has neither gateway nor DNS address to answer from';
  const domainName = d.domainName ?? (network ? networkDomain(network.name, dnsSuffix) : undefined);
  return {
    key: port.vmiUuid,
    mac,
    address: port.address,
    prefixLen: port.prefixLen,
    server,
    ...(port.gateway ? { gateway: port.gateway } : {}),
    dnsServers: d.dnsServers ?? (d.dns ? [d.dns] : []),
    ...(domainName ? { domainName } : {}),
    mtu: d.mtu ?? WORKLOAD_MTU,
    leaseTime: d.leaseTime ?? DEFAULT_LEASE_SECONDS,
    routes: d.routes ?? [],
  };
}
