// network-policy and security-group rules (PolicyRuleType): protocols, addresses, ports;
// rule uuids are assigned; security groups get a numeric id (TF starts at 8000000).

import { randomUUID } from 'node:crypto';
import { checkNetworkAddress, parseIpv4 } from '../../util/ipv4.js';
import { BadRequest } from '../errors.js';
import type { StoredObject } from '../object.js';
import type { TypeHooks } from './context.js';

type Json = Record<string, unknown>;

const PROTOCOL_NAMES = new Set(['any', 'tcp', 'udp', 'icmp', 'icmp6']);
export const SECURITY_GROUP_ID_BASE = 8_000_000;

function validateRules(obj: StoredObject, entriesProp: string): void {
  const entries = obj.props[entriesProp] as Json | undefined;
  const rules = (entries?.['policy_rule'] ?? []) as Json[];
  rules.forEach((rule, i) => {
    const at = `${obj.type}.${entriesProp}.policy_rule[${i}]`;
    const protocol = String(rule['protocol']).toLowerCase();
    const number = /^\d{1,3}$/.test(protocol) ? Number(protocol) : NaN;
    if (!PROTOCOL_NAMES.has(protocol) && !(number >= 0 && number <= 255)) {
      throw new BadRequest(`${at}.protocol: '${String(rule['protocol'])}' is not any, tcp, udp, icmp, icmp6 or a protocol number 0-255`, `${at}.protocol`);
    }
    rule['protocol'] = protocol;
    for (const side of ['src_addresses', 'dst_addresses'] as const) {
      ((rule[side] ?? []) as Json[]).forEach((a, j) => checkAddress(a, `${at}.${side}[${j}]`));
    }
    for (const side of ['src_ports', 'dst_ports'] as const) {
      ((rule[side] ?? []) as Json[]).forEach((p, j) => {
        const start = p['start_port'] as number;
        const end = p['end_port'] as number;
        if ((start === -1) !== (end === -1) || start > end) {
          throw new BadRequest(`${at}.${side}[${j}]: port range ${start}-${end} is invalid (use -1/-1 for any)`, `${at}.${side}[${j}]`);
        }
      });
    }
    rule['rule_uuid'] ??= randomUUID();
  });
}

function checkAddress(a: Json, at: string): void {
  const subnets = [...(a['subnet'] ? [a['subnet'] as Json] : []), ...((a['subnet_list'] ?? []) as Json[])];
  for (const s of subnets) {
    const base = parseIpv4(s['ip_prefix'] as string);
    if (base === undefined) throw new BadRequest(`${at}.subnet.ip_prefix: '${String(s['ip_prefix'])}' is not an IPv4 address`, `${at}.subnet.ip_prefix`);
    const hostBits = checkNetworkAddress(base, s['ip_prefix_len'] as number);
    if (hostBits) throw new BadRequest(`${at}.subnet: ${hostBits}`, `${at}.subnet`);
  }
  const named = ['virtual_network', 'security_group', 'network_policy'].filter((k) => a[k] !== undefined);
  if (named.length + (subnets.length ? 1 : 0) !== 1) {
    throw new BadRequest(`${at}: give exactly one of virtual_network, subnet, security_group or network_policy`, at);
  }
}

export const networkPolicyHooks: TypeHooks = {
  prepare(_ctx, obj) {
    validateRules(obj, 'network_policy_entries');
  },
};

export const securityGroupHooks: TypeHooks = {
  prepare(ctx, obj, old) {
    validateRules(obj, 'security_group_entries');
    const id = old?.props['security_group_id'] as number | undefined;
    if (id !== undefined) {
      obj.props['security_group_id'] = id;
      return;
    }
    const n = ctx.m.nextFreeId('security-group', SECURITY_GROUP_ID_BASE);
    ctx.m.claimId('security-group', n, obj.uuid);
    obj.props['security_group_id'] = n;
  },
  release(ctx, obj) {
    ctx.m.releaseId('security-group', obj.props['security_group_id'] as number);
  },
};
