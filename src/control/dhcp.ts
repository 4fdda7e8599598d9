// The DHCP part of an interface's entry (protocol.ts DhcpEntry): what its subnet says
// beyond address and gateway. Absent when there is nothing to say.

import type { StoredObject } from '../config/object.js';
import { readSubnetDhcp } from '../ipam/dhcp-options.js';
import type { Subnet } from '../ipam/subnets.js';
import { formatIpv4 } from '../util/ipv4.js';
import type { DhcpEntry } from './protocol.js';

export function dhcpEntry(network: StoredObject | undefined, subnet: Subnet): DhcpEntry | undefined {
  const raw = (network?.refs['network_ipam_refs'] ?? [])
    .flatMap((r) => ((r.attr as { ipam_subnets?: Record<string, unknown>[] } | null)?.ipam_subnets ?? []))
    .find((s) => s['subnet_uuid'] === subnet.uuid);
  // Values were checked when written; anything invalid from before is left out.
  const { dhcp } = raw ? readSubnetDhcp(raw, '') : { dhcp: {} };
  const entry: DhcpEntry = {
    ...(subnet.enableDhcp ? {} : { disabled: true as const }),
    ...(subnet.dns !== undefined ? { dns: formatIpv4(subnet.dns) } : {}),
    ...dhcp,
  };
  return Object.keys(entry).length ? entry : undefined;
}
