// A network's policies compiled into one ordered list of directional rules (first match
// wins), with every address resolved to CIDRs: what an agent needs to enforce them without
// the configuration. OpenContrail's order: the network's policies by their reference's
// `sequence`, each policy's rules by `rule_sequence` (their order where equal); a `<>` rule
// is two rules, one each way.

import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';
import { subnetsOf } from '../ipam/subnets.js';
import { formatCidr, parseCidr } from '../util/ipv4.js';
import type { AclRule } from './protocol.js';

interface Subnet {
  ip_prefix: string;
  ip_prefix_len: number;
}
interface Address {
  virtual_network?: string;
  subnet?: Subnet;
  subnet_list?: Subnet[];
}
export interface PortRange {
  start_port: number;
  end_port: number;
}
interface PolicyRule {
  rule_uuid?: string;
  rule_sequence?: { major?: number; minor?: number };
  direction: '>' | '<>' | '<';
  protocol: string;
  src_addresses: Address[];
  dst_addresses: Address[];
  src_ports?: PortRange[];
  dst_ports?: PortRange[];
  action_list?: { simple_action?: string };
}
interface Sequence {
  major?: number;
  minor?: number;
}

const PROTOCOL_NUMBERS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, icmp6: 58 };

export function compileAcl(view: ConfigView, net: StoredObject): AclRule[] {
  const refs = [...(net.refs['network_policy_refs'] ?? [])]
    .map((ref, i) => ({ ref, i, seq: ((ref.attr as { sequence?: Sequence } | null)?.sequence ?? {}) as Sequence }))
    .sort((a, b) => bySequence(a.seq, b.seq) || a.i - b.i);
  const out: AclRule[] = [];
  const named = new Map<string, string[]>();
  for (const { ref } of refs) {
    const policy = view.get(ref.uuid)?.obj;
    if (!policy) continue;
    const rules = ((policy.props['network_policy_entries'] as { policy_rule?: PolicyRule[] } | undefined)?.policy_rule ?? [])
      .map((rule, i) => ({ rule, i }))
      .sort((a, b) => bySequence(a.rule.rule_sequence ?? {}, b.rule.rule_sequence ?? {}) || a.i - b.i);
    for (const { rule, i } of rules) out.push(...directional(view, net, rule, rule.rule_uuid ?? `${policy.uuid}:${i}`, named));
  }
  return out;
}

function bySequence(a: Sequence, b: Sequence): number {
  return (a.major ?? 0) - (b.major ?? 0) || (a.minor ?? 0) - (b.minor ?? 0);
}

function directional(view: ConfigView, owner: StoredObject, rule: PolicyRule, uuid: string, named: Map<string, string[]>): AclRule[] {
  const action = (rule.action_list?.simple_action ?? 'pass') === 'pass' ? 'pass' : 'deny';
  const proto = protocolNumber(rule.protocol);
  if (proto === null) return []; // an unknown protocol name matches nothing
  const ported = proto === 6 || proto === 17;
  const src = addresses(view, owner, rule.src_addresses, named);
  const dst = addresses(view, owner, rule.dst_addresses, named);
  const sports = ported ? portRanges(rule.src_ports) : undefined;
  const dports = ported ? portRanges(rule.dst_ports) : undefined;
  const one = (s: string[] | null, d: string[] | null, sp?: [number, number][], dp?: [number, number][]): AclRule => ({
    uuid,
    action,
    ...(proto !== undefined ? { protocol: proto } : {}),
    src: s,
    dst: d,
    ...(sp ? { sports: sp } : {}),
    ...(dp ? { dports: dp } : {}),
  });
  const forward = one(src, dst, sports, dports);
  const backward = one(dst, src, dports, sports);
  if (rule.direction === '<>') return [forward, backward];
  return rule.direction === '<' ? [backward] : [forward];
}

/** undefined: any protocol; null: not a protocol. */
export function protocolNumber(p: string): number | undefined | null {
  if (p === 'any') return undefined;
  if (p in PROTOCOL_NUMBERS) return PROTOCOL_NUMBERS[p]!;
  return /^\d{1,3}$/.test(p) && Number(p) <= 255 ? Number(p) : null;
}

/** CIDRs of a rule side; null when one of its addresses is `any`. */
function addresses(view: ConfigView, owner: StoredObject, list: Address[], named: Map<string, string[]>): string[] | null {
  const cidrs = new Set<string>();
  for (const a of list) {
    if (a.virtual_network === 'any') return null;
    if (a.virtual_network) {
      // A network named by many rules is resolved once per compilation.
      let own = named.get(a.virtual_network);
      if (!own) {
        const net = a.virtual_network === 'local' ? owner : view.get(view.uuidByName('virtual-network', a.virtual_network.split(':')) ?? '')?.obj;
        named.set(a.virtual_network, (own = net ? subnetsOf(net).map((s) => formatCidr(s.cidr)) : []));
      }
      for (const c of own) cidrs.add(c);
    }
    for (const s of [...(a.subnet ? [a.subnet] : []), ...(a.subnet_list ?? [])]) {
      const c = parseCidr(`${s.ip_prefix}/${s.ip_prefix_len}`);
      if (typeof c !== 'string') cidrs.add(formatCidr(c));
    }
  }
  return [...cidrs].sort();
}

/** Port ranges; undefined when any port matches. */
export function portRanges(list: PortRange[] | undefined): [number, number][] | undefined {
  const ranges = (list ?? []).filter((p) => p.start_port !== -1).map((p): [number, number] => [Math.max(0, p.start_port), p.end_port === -1 ? 65535 : p.end_port]);
  return ranges.length && ranges.length === (list ?? []).length ? ranges : undefined;
}
