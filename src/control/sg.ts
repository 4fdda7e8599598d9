// Security groups compiled for agents: each group's rules split into ingress (the group is
// the destination: `local` on the destination side) and egress (`local` on the source
// side), with the remote side resolved to CIDRs: a subnet, `any`, or another group, whose
// members' addresses it stands for. Security-group rules only allow; what no rule of an
// interface's groups allows is dropped.

import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';
import { formatCidr, isIpv4, parseCidr } from '../util/ipv4.js';
import { type PortRange, portRanges, protocolNumber } from './acl.js';
import type { AclRule, SgEntry } from './protocol.js';

interface Address {
  security_group?: string;
  subnet?: { ip_prefix: string; ip_prefix_len: number };
  virtual_network?: string;
}
interface SgRule {
  rule_uuid?: string;
  protocol: string;
  ethertype?: string;
  src_addresses: Address[];
  dst_addresses: Address[];
  dst_ports?: PortRange[];
}

/** The groups an interface is in (its `security_group_refs`, in order). */
export function groupsOf(vmi: StoredObject): string[] {
  return (vmi.refs['security_group_refs'] ?? []).map((r) => r.uuid);
}

/**
 * One group's entry; `members(group)` gives the addresses of the interfaces in a group
 * (the engine keeps that index).
 */
export function compileGroup(view: ConfigView, sg: StoredObject, members: (group: string) => string[]): SgEntry {
  const ingress: AclRule[] = [];
  const egress: AclRule[] = [];
  const rules = (sg.props['security_group_entries'] as { policy_rule?: SgRule[] } | undefined)?.policy_rule ?? [];
  rules.forEach((rule, i) => {
    if (rule.ethertype === 'IPv6') return;
    const protocol = protocolNumber(rule.protocol);
    if (protocol === null) return;
    const isLocal = (list: Address[]) => list.some((a) => a.security_group === 'local');
    const dports = protocol === 6 || protocol === 17 ? portRanges(rule.dst_ports) : undefined;
    const base = { uuid: rule.rule_uuid ?? `${sg.uuid}:${i}`, action: 'pass' as const, ...(protocol !== undefined ? { protocol } : {}), ...(dports ? { dports } : {}) };
    if (isLocal(rule.dst_addresses)) ingress.push({ ...base, src: remote(view, sg, rule.src_addresses, members), dst: null });
    else if (isLocal(rule.src_addresses)) egress.push({ ...base, src: null, dst: remote(view, sg, rule.dst_addresses, members) });
  });
  return { uuid: sg.uuid, name: sg.fq_name.join(':'), ingress, egress };
}

/** The groups a rule of `sg` names as its remote side (their members' addresses matter to it). */
export function remoteGroups(view: ConfigView, sg: StoredObject): string[] {
  const out = new Set<string>();
  for (const rule of (sg.props['security_group_entries'] as { policy_rule?: SgRule[] } | undefined)?.policy_rule ?? []) {
    for (const a of [...rule.src_addresses, ...rule.dst_addresses]) {
      const g = groupNamed(view, sg, a.security_group);
      if (g) out.add(g);
    }
  }
  return [...out];
}

function groupNamed(view: ConfigView, sg: StoredObject, name: string | undefined): string | undefined {
  if (!name || name === 'local' || name === 'any') return undefined;
  return view.uuidByName('security-group', name.split(':')) ?? (name === sg.fq_name.join(':') ? sg.uuid : undefined);
}

/** CIDRs of the remote side; null: any. */
function remote(view: ConfigView, sg: StoredObject, list: Address[], members: (group: string) => string[]): string[] | null {
  const cidrs = new Set<string>();
  for (const a of list) {
    if (a.security_group === 'any' || a.virtual_network === 'any') return null;
    if (a.subnet) {
      const c = parseCidr(`${a.subnet.ip_prefix}/${a.subnet.ip_prefix_len}`);
      if (typeof c !== 'string') {
        if (c.prefixLen === 0) return null;
        cidrs.add(formatCidr(c));
      }
    }
    const g = groupNamed(view, sg, a.security_group);
    if (g) for (const addr of members(g)) if (isIpv4(addr)) cidrs.add(`${addr}/32`);
  }
  return [...cidrs].sort();
}
