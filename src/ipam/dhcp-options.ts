// What a subnet adds to the agent's DHCP answers: TF's `dhcp_option_list` (the options
// Cirrus serves: lease time 51, DNS servers 6, domain name 15, MTU 26, by number or ISC
// name) and `host_routes` (option 121). The API refuses bad values of these (naming the
// field); other options are stored, not served. Pure.

import { formatCidr, isIpv4, parseCidr } from '../util/ipv4.js';

export interface SubnetDhcp {
  leaseTime?: number;
  dnsServers?: string[];
  domainName?: string;
  mtu?: number;
  routes?: { prefix: string; nextHop: string }[];
}

type Json = Record<string, unknown>;

const OPTION: Record<string, keyof Served> = {
  '51': 'leaseTime',
  'dhcp-lease-time': 'leaseTime',
  '6': 'dnsServers',
  'domain-name-servers': 'dnsServers',
  '15': 'domainName',
  'domain-name': 'domainName',
  '26': 'mtu',
  'interface-mtu': 'mtu',
};

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

type Served = Omit<SubnetDhcp, 'routes'>;

/** Parses one served option's value. */
function optionValue<K extends keyof Served>(kind: K, text: string): { value: Served[K] } | { error: string } {
  const v = text.trim();
  const ok = (value: unknown) => ({ value: value as Served[K] });
  switch (kind) {
    case 'leaseTime': {
      const n = /^\d{1,10}$/.test(v) ? Number(v) : NaN;
      return n >= 1 && n <= 0xffffffff ? ok(n) : { error: `'${text}' is not a lease time in seconds (1-4294967295; 4294967295 is infinite)` };
    }
    case 'mtu': {
      const n = /^\d{1,5}$/.test(v) ? Number(v) : NaN;
      return n >= 68 && n <= 65535 ? ok(n) : { error: `'${text}' is not an MTU (68-65535)` };
    }
    case 'dnsServers': {
      const list = v.split(/[\s,]+/).filter(Boolean);
      return list.length && list.every(isIpv4) ? ok(list) : { error: `'${text}' is not a list of IPv4 addresses` };
    }
    default:
      return DOMAIN.test(v) ? ok(v.toLowerCase()) : { error: `'${text}' is not a domain name` };
  }
}

/** A subnet's DHCP additions, and the errors of its served options and host routes (each with its field path). */
export function readSubnetDhcp(subnet: Json, path: string): { dhcp: SubnetDhcp; errors: { field: string; message: string }[] } {
  const dhcp: SubnetDhcp = {};
  const errors: { field: string; message: string }[] = [];
  const options = ((subnet['dhcp_option_list'] as Json | null | undefined)?.['dhcp_option'] ?? []) as Json[];
  options.forEach((o, i) => {
    const kind = OPTION[String(o['dhcp_option_name']).trim().toLowerCase()];
    if (!kind) return;
    const field = `${path}.dhcp_option_list.dhcp_option[${i}].dhcp_option_value`;
    const parsed = optionValue(kind, String(o['dhcp_option_value'] ?? ''));
    if ('error' in parsed) errors.push({ field, message: parsed.error });
    else Object.assign(dhcp, { [kind]: parsed.value });
  });
  const routes = ((subnet['host_routes'] as Json | null | undefined)?.['route'] ?? []) as Json[];
  routes.forEach((r, i) => {
    const field = `${path}.host_routes.route[${i}]`;
    const prefix = parseCidr(String(r['prefix']));
    const nextHop = String(r['next_hop'] ?? '');
    if (typeof prefix === 'string') errors.push({ field: `${field}.prefix`, message: prefix });
    else if (!isIpv4(nextHop)) errors.push({ field: `${field}.next_hop`, message: `'${nextHop}' is not an IPv4 address` });
    else (dhcp.routes ??= []).push({ prefix: formatCidr(prefix), nextHop });
  });
  return { dhcp, errors };
}
