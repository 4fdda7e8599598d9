// Which networks may talk to which: route leaking between two virtual networks happens
// only where the policies of both allow it (OpenContrail: traffic between networks passes
// only when each side's policies pass it). Whether a port or protocol is allowed is the
// policy enforcer's business; here a network allows a peer when one of its policies has a
// `pass` rule with the network on one side and the peer (or `any`) on the other.

import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';
import { type Cidr, cidrsOverlap, parseCidr } from '../util/ipv4.js';
import { subnetsOf } from '../ipam/subnets.js';

interface Address {
  virtual_network?: string;
  subnet?: { ip_prefix: string; ip_prefix_len: number };
}
interface PolicyRule {
  src_addresses: Address[];
  dst_addresses: Address[];
  action_list?: { simple_action?: string };
}

/** What a network's policies allow: named peers, or every network. */
interface Allowed {
  any: boolean;
  peers: Set<string>;
}

/** network uuid → the networks its routes leak into (symmetric; a network never lists itself). */
export type Leaks = Map<string, Set<string>>;

export function computeLeaks(view: ConfigView): Leaks {
  const networks = [...view.ofType('virtual-network')].map((c) => c.obj);
  // Each network's subnets, parsed once (rules compare their subnets with every network's).
  const subnets = new Map(networks.map((n) => [n.uuid, subnetsOf(n).map((s) => s.cidr)]));
  const allowed = new Map<string, Allowed>();
  for (const net of networks) {
    const a = allowedBy(view, net, networks, subnets);
    if (a.any || a.peers.size) allowed.set(net.uuid, a);
  }
  const leaks: Leaks = new Map();
  const allows = (n: string, peer: string) => {
    const a = allowed.get(n);
    return !!a && (a.any || a.peers.has(peer));
  };
  for (const [n, a] of allowed) {
    const candidates = a.any ? allowed.keys() : a.peers.values();
    for (const peer of candidates) {
      if (peer === n || !allows(peer, n)) continue;
      setOf(leaks, n).add(peer);
      setOf(leaks, peer).add(n);
    }
  }
  return leaks;
}

function allowedBy(view: ConfigView, net: StoredObject, networks: StoredObject[], subnets: ReadonlyMap<string, Cidr[]>): Allowed {
  const out: Allowed = { any: false, peers: new Set() };
  for (const ref of net.refs['network_policy_refs'] ?? []) {
    const policy = view.get(ref.uuid)?.obj;
    const rules = ((policy?.props['network_policy_entries'] as { policy_rule?: PolicyRule[] } | undefined)?.policy_rule ?? []);
    for (const rule of rules) {
      if ((rule.action_list?.simple_action ?? 'pass') !== 'pass') continue;
      // Replies of an allowed connection need the routes back too: any direction leaks both ways.
      for (const [mine, theirs] of [[rule.src_addresses, rule.dst_addresses], [rule.dst_addresses, rule.src_addresses]]) {
        if (!mine!.some((a) => matches(view, a, net, net, subnets))) continue;
        for (const a of theirs!) {
          if (a.virtual_network === 'any') out.any = true;
          else for (const peer of networks) if (matches(view, a, peer, net, subnets)) out.peers.add(peer.uuid);
        }
      }
    }
  }
  return out;
}

/** Whether address `a` (of a rule in a policy attached to `owner`) covers network `net`. */
function matches(view: ConfigView, a: Address, net: StoredObject, owner: StoredObject, subnets: ReadonlyMap<string, Cidr[]>): boolean {
  if (a.virtual_network !== undefined) {
    if (a.virtual_network === 'any') return true;
    if (a.virtual_network === 'local') return net.uuid === owner.uuid;
    return view.uuidByName('virtual-network', a.virtual_network.split(':')) === net.uuid;
  }
  if (a.subnet) {
    const rule = subnetOf(a.subnet);
    return rule !== null && subnets.get(net.uuid)!.some((s) => cidrsOverlap(rule, s));
  }
  return false;
}

/** Rule subnets parsed once per policy version (its objects are replaced, never changed, when it changes). */
const parsed = new WeakMap<NonNullable<Address['subnet']>, Cidr | null>();
function subnetOf(subnet: NonNullable<Address['subnet']>): Cidr | null {
  let c = parsed.get(subnet);
  if (c === undefined) {
    const p = parseCidr(`${subnet.ip_prefix}/${subnet.ip_prefix_len}`);
    parsed.set(subnet, (c = typeof p === 'string' ? null : p));
  }
  return c;
}

function setOf<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  return s;
}
