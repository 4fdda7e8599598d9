// Subnets of a virtual network: validation and completion of TF's IpamSubnetType
// (subnet uuid, gateway, DNS/service address), and the parsed view used to allocate.

import { randomUUID } from 'node:crypto';
import { BadRequest, Conflict } from '../config/errors.js';
import type { StoredObject, StoredRef } from '../config/object.js';
import {
  type Cidr,
  checkNetworkAddress,
  cidrContains,
  cidrLast,
  cidrsOverlap,
  formatCidr,
  formatIpv4,
  parseIpv4,
} from '../util/ipv4.js';
import { readSubnetDhcp } from './dhcp-options.js';

export interface Range {
  start: number;
  end: number;
}

export interface Subnet {
  uuid: string;
  cidr: Cidr;
  /** Undefined when the subnet has no gateway ("0.0.0.0"). */
  gateway?: number;
  dns?: number;
  /** Where automatic allocation draws from; the whole usable range when no pools are set. */
  pools: Range[];
  addrFromStart: boolean;
  enableDhcp: boolean;
}

type Json = Record<string, unknown>;

const NO_ADDRESS = '0.0.0.0';

/**
 * Validates and completes the subnets carried by a network's network_ipam_refs. Returns
 * new refs with every subnet's uuid, gateway and DNS address filled in.
 */
export function completeIpamRefs(refs: StoredRef[], field: string): StoredRef[] {
  const seen: { cidr: Cidr; path: string }[] = [];
  const uuids = new Set<string>();
  return refs.map((ref, i) => {
    const attr = (ref.attr ?? {}) as Json;
    const subnets = (attr['ipam_subnets'] ?? []) as Json[];
    const completed = subnets.map((s, j) => {
      const path = `${field}[${i}].attr.ipam_subnets[${j}]`;
      const out = completeSubnet(s, path);
      const cidr = parseSubnetField(out['subnet'] as Json, `${path}.subnet`);
      for (const other of seen) {
        if (cidrsOverlap(cidr, other.cidr)) {
          throw new Conflict(`${path}.subnet: ${formatCidr(cidr)} overlaps ${formatCidr(other.cidr)} (${other.path}) in the same network`, `${path}.subnet`);
        }
      }
      seen.push({ cidr, path });
      const uuid = out['subnet_uuid'] as string;
      if (uuids.has(uuid)) throw new BadRequest(`${path}.subnet_uuid: ${uuid} is used twice`, `${path}.subnet_uuid`);
      uuids.add(uuid);
      return out;
    });
    return { uuid: ref.uuid, attr: { ...attr, ipam_subnets: completed } };
  });
}

function parseSubnetField(subnet: Json, path: string): Cidr {
  const prefix = subnet['ip_prefix'] as string;
  const len = subnet['ip_prefix_len'] as number;
  const base = parseIpv4(prefix);
  if (base === undefined) {
    const why = prefix.includes(':') ? 'IPv6 subnets are not supported yet' : `'${prefix}' is not an IPv4 address`;
    throw new BadRequest(`${path}.ip_prefix: ${why}`, `${path}.ip_prefix`);
  }
  const hostBits = checkNetworkAddress(base, len);
  if (hostBits) throw new BadRequest(`${path}: ${hostBits}`, path);
  if (len > 29) throw new BadRequest(`${path}.ip_prefix_len: /${len} is too small (a subnet needs room for gateway, DNS and workloads: /29 at most)`, `${path}.ip_prefix_len`);
  if (len < 8) throw new BadRequest(`${path}.ip_prefix_len: /${len} is too large (/8 at least)`, `${path}.ip_prefix_len`);
  return { base, prefixLen: len };
}

function completeSubnet(s: Json, path: string): Json {
  const cidr = parseSubnetField(s['subnet'] as Json, `${path}.subnet`);
  const fromStart = s['addr_from_start'] === true;
  const last = cidrLast(cidr);
  const gateway = serviceAddress(s['default_gateway'], fromStart ? cidr.base + 1 : last - 1, cidr, `${path}.default_gateway`);
  const dns = serviceAddress(s['dns_server_address'], fromStart ? cidr.base + 2 : last - 2, cidr, `${path}.dns_server_address`);
  if (gateway !== NO_ADDRESS && gateway === dns) {
    throw new BadRequest(`${path}.dns_server_address: ${dns} is also the gateway`, `${path}.dns_server_address`);
  }
  const pools = ((s['allocation_pools'] ?? []) as Json[]).map((p, k) => {
    const at = `${path}.allocation_pools[${k}]`;
    const start = usableAddress(p['start'], cidr, `${at}.start`);
    const end = usableAddress(p['end'], cidr, `${at}.end`);
    if (start > end) throw new BadRequest(`${at}: start ${formatIpv4(start)} is after end ${formatIpv4(end)}`, at);
    return { ...p, start: formatIpv4(start), end: formatIpv4(end) };
  });
  const dhcpError = readSubnetDhcp(s, path).errors[0];
  if (dhcpError) throw new BadRequest(`${dhcpError.field}: ${dhcpError.message}`, dhcpError.field);
  return {
    ...s,
    subnet: { ip_prefix: formatIpv4(cidr.base), ip_prefix_len: cidr.prefixLen },
    subnet_uuid: (s['subnet_uuid'] as string | undefined) ?? randomUUID(),
    default_gateway: gateway,
    dns_server_address: dns,
    enable_dhcp: s['enable_dhcp'] ?? true,
    addr_from_start: fromStart,
    allocation_pools: pools,
  };
}

function serviceAddress(given: unknown, fallback: number, cidr: Cidr, path: string): string {
  if (given === undefined) return formatIpv4(fallback);
  if (given === NO_ADDRESS) return NO_ADDRESS;
  return formatIpv4(usableAddress(given, cidr, path));
}

function usableAddress(given: unknown, cidr: Cidr, path: string): number {
  const ip = typeof given === 'string' ? parseIpv4(given) : undefined;
  if (ip === undefined) throw new BadRequest(`${path}: '${String(given)}' is not an IPv4 address`, path);
  if (!cidrContains(cidr, ip)) throw new BadRequest(`${path}: ${given} is outside ${formatCidr(cidr)}`, path);
  if (ip === cidr.base || ip === cidrLast(cidr)) {
    throw new BadRequest(`${path}: ${given} is the network or broadcast address of ${formatCidr(cidr)}`, path);
  }
  return ip;
}

/** The parsed subnets of a network whose refs were completed by completeIpamRefs. */
export function subnetsOf(network: StoredObject): Subnet[] {
  const out: Subnet[] = [];
  for (const ref of network.refs['network_ipam_refs'] ?? []) {
    for (const s of ((ref.attr as Json | null)?.['ipam_subnets'] ?? []) as Json[]) {
      const sn = s['subnet'] as Json;
      const cidr = { base: parseIpv4(sn['ip_prefix'] as string)!, prefixLen: sn['ip_prefix_len'] as number };
      const gw = s['default_gateway'] as string;
      const dns = s['dns_server_address'] as string;
      const pools = ((s['allocation_pools'] ?? []) as Json[]).map((p) => ({
        start: parseIpv4(p['start'] as string)!,
        end: parseIpv4(p['end'] as string)!,
      }));
      out.push({
        uuid: s['subnet_uuid'] as string,
        cidr,
        ...(gw !== NO_ADDRESS ? { gateway: parseIpv4(gw)! } : {}),
        ...(dns !== NO_ADDRESS ? { dns: parseIpv4(dns)! } : {}),
        pools: pools.length ? pools : [{ start: cidr.base + 1, end: cidrLast(cidr) - 1 }],
        addrFromStart: s['addr_from_start'] === true,
        enableDhcp: s['enable_dhcp'] !== false,
      });
    }
  }
  return out;
}
