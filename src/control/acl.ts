// A network's policies compiled into one ordered list of directional rules (first match
// wins), with every address resolved to CIDRs: what an agent needs to enforce them without
// the configuration. OpenContrail's order: the network's policies by their reference's
// `sequence`, each policy's rules by `rule_sequence` (their order where equal); a `<>` rule
// is two rules, one each way. The list is made of blocks, one per attached policy, each
// compiled once and kept while the policy and the networks it names are unchanged: a
// change of one policy of many recompiles (and ships) that policy's block alone.

import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';
import { subnetsOf } from '../ipam/subnets.js';
import { formatCidr, parseCidr } from '../util/ipv4.js';
import type { AclBlockEntry, AclRule } from './protocol.js';

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

/** A network's rules: its blocks' rules in order. */
export function compileAcl(view: ConfigView, net: StoredObject): AclRule[] {
  return new AclCompiler(view).compile(net).blocks.flatMap((b) => b.rules);
}

/** A compiled block and what it was compiled from: valid while the policy object and the CIDRs of the networks it names are the same. */
interface Compiled {
  policy: StoredObject;
  /** Network names the rules use (fq-name, or `local`) → the CIDRs they resolved to. */
  named: Map<string, string[]>;
  block: AclBlockEntry;
}

/** Compiles networks' policies into blocks, reusing the blocks whose inputs did not change. */
export class AclCompiler {
  /** network → policy → its block for that network. */
  private readonly cache = new Map<string, Map<string, Compiled>>();

  constructor(private readonly view: ConfigView) {}

  /**
   * Network `net`'s blocks in order (an unchanged block is the same object as before), and
   * the networks its rules name: by fq-name, and the uuids those names resolved to (what
   * the caller watches for changes).
   */
  compile(net: StoredObject): { blocks: AclBlockEntry[]; names: string[]; uuids: string[] } {
    const refs = [...(net.refs['network_policy_refs'] ?? [])]
      .map((ref, i) => ({ ref, i, seq: ((ref.attr as { sequence?: Sequence } | null)?.sequence ?? {}) as Sequence }))
      .sort((a, b) => bySequence(a.seq, b.seq) || a.i - b.i);
    // A network named by many rules or policies is resolved once per compilation.
    const resolved = new Map<string, { uuid?: string; cidrs: string[] }>();
    const resolve = (name: string) => {
      let r = resolved.get(name);
      if (!r) {
        const uuid = name === 'local' ? net.uuid : this.view.uuidByName('virtual-network', name.split(':'));
        const obj = name === 'local' ? net : this.view.get(uuid ?? '')?.obj;
        resolved.set(name, (r = { ...(obj ? { uuid: obj.uuid } : {}), cidrs: obj ? subnetsOf(obj).map((s) => formatCidr(s.cidr)) : [] }));
      }
      return r.cidrs;
    };
    const before = this.cache.get(net.uuid);
    const now = new Map<string, Compiled>();
    const blocks: AclBlockEntry[] = [];
    for (const { ref } of refs) {
      const policy = this.view.get(ref.uuid)?.obj;
      if (!policy) continue;
      let c = now.get(policy.uuid) ?? before?.get(policy.uuid);
      if (!c || c.policy !== policy || ![...c.named].every(([name, cidrs]) => sameList(resolve(name), cidrs))) {
        const named = new Map<string, string[]>();
        const rules = compilePolicy(policy, (name) => {
          const cidrs = resolve(name);
          named.set(name, cidrs);
          return cidrs;
        });
        c = { policy, named, block: { network: net.uuid, policy: policy.uuid, rules } };
      }
      now.set(policy.uuid, c);
      blocks.push(c.block);
    }
    if (now.size) this.cache.set(net.uuid, now);
    else this.cache.delete(net.uuid);
    const names = [...resolved.keys()].filter((n) => n !== 'local');
    return { blocks, names, uuids: names.map((n) => resolved.get(n)!.uuid).filter((u): u is string => u !== undefined) };
  }

  /** Drops a network's blocks (it went away). */
  forget(network: string): void {
    this.cache.delete(network);
  }
}

/** A policy's rules, in order, as directional rules; `resolve` gives a named network's CIDRs. */
function compilePolicy(policy: StoredObject, resolve: (name: string) => string[]): AclRule[] {
  const rules = ((policy.props['network_policy_entries'] as { policy_rule?: PolicyRule[] } | undefined)?.policy_rule ?? [])
    .map((rule, i) => ({ rule, i }))
    .sort((a, b) => bySequence(a.rule.rule_sequence ?? {}, b.rule.rule_sequence ?? {}) || a.i - b.i);
  return rules.flatMap(({ rule, i }) => directional(rule, rule.rule_uuid ?? `${policy.uuid}:${i}`, resolve));
}

const sameList = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);

function bySequence(a: Sequence, b: Sequence): number {
  return (a.major ?? 0) - (b.major ?? 0) || (a.minor ?? 0) - (b.minor ?? 0);
}

function directional(rule: PolicyRule, uuid: string, resolve: (name: string) => string[]): AclRule[] {
  const action = (rule.action_list?.simple_action ?? 'pass') === 'pass' ? 'pass' : 'deny';
  const proto = protocolNumber(rule.protocol);
  if (proto === null) return []; // an unknown protocol name matches nothing
  const ported = proto === 6 || proto === 17;
  const src = addresses(rule.src_addresses, resolve);
  const dst = addresses(rule.dst_addresses, resolve);
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
function addresses(list: Address[], resolve: (name: string) => string[]): string[] | null {
  // The common side, one subnet (thousands of rules each naming one address): no set, no sort.
  const only = list.length === 1 && !list[0]!.virtual_network && !list[0]!.subnet_list ? list[0]!.subnet : undefined;
  if (only) {
    const c = subnetCidr(only);
    return c ? [c] : [];
  }
  const cidrs = new Set<string>();
  for (const a of list) {
    if (a.virtual_network === 'any') return null;
    if (a.virtual_network) for (const c of resolve(a.virtual_network)) cidrs.add(c);
    for (const s of [...(a.subnet ? [a.subnet] : []), ...(a.subnet_list ?? [])]) {
      const c = subnetCidr(s);
      if (c) cidrs.add(c);
    }
  }
  return [...cidrs].sort();
}

/** A rule's subnet as a CIDR; undefined when it is not one. */
function subnetCidr(s: Subnet): string | undefined {
  const c = parseCidr(`${s.ip_prefix}/${s.ip_prefix_len}`);
  return typeof c === 'string' ? undefined : formatCidr(c);
}

/** Port ranges; undefined when any port matches. */
export function portRanges(list: PortRange[] | undefined): [number, number][] | undefined {
  const ranges = (list ?? []).filter((p) => p.start_port !== -1).map((p): [number, number] => [Math.max(0, p.start_port), p.end_port === -1 ? 65535 : p.end_port]);
  return ranges.length && ranges.length === (list ?? []).length ? ranges : undefined;
}
