// `cirrus trace`: what the configuration says of a flow between two interfaces, by the same
// computations the control node and the agents use: the path (hosts, tunnel, VNI, route
// leaking) and each check in the order the data plane applies them (the source network's
// policies, the source's security groups, the destination network's policies, the
// destination's security groups), with the rule that decides each. A floating IP as the
// destination: its network's policy, then each back end's groups.

import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';
import { singleRef } from '../config/hooks/context.js';
import { subnetsOf } from '../ipam/subnets.js';
import { AUTO_VNI_BASE } from '../agent/dataplane/names.js';
import { type Cidr, cidrContains, parseCidr, parseIpv4 } from '../util/ipv4.js';
import { compileAcl } from './acl.js';
import { GroupIndex } from './groups.js';
import { bindingHost, primaryIp } from './interfaces.js';
import { computeLeaks } from './leaks.js';
import type { AclRule } from './protocol.js';
import { groupsOf } from './sg.js';

export interface Flow {
  protocol: number;
  /** Destination port (tcp, udp). */
  port?: number;
}

export interface Endpoint {
  vmi: string;
  name: string;
  network: { uuid: string; name: string; vni: number };
  address: string;
  host?: string;
  vtep?: string;
  groups: string[];
  portSecurity: boolean;
}

export interface Check {
  /** What is checked: "policies of NETWORK (source side)", "security groups of PORT (egress)". */
  what: string;
  verdict: 'pass' | 'drop';
  /** The deciding rule's uuid, or why nothing matched (default). */
  rule: string;
  why: string;
}

export interface Trace {
  src: Endpoint;
  dst: Endpoint;
  path: string[];
  checks: Check[];
  verdict: 'pass' | 'drop';
  /** DST is a floating IP: its back ends (the destination is translated to one of them). */
  nat?: { floatingIp: string; backends: Endpoint[] };
}

/** A floating IP by its address: an endpoint standing for it (in its pool network) and its back ends. */
export function findFloating(view: ConfigView, address: string): { endpoint: Endpoint; backends: Endpoint[] } | string | undefined {
  const fips = [...view.ofType('floating-ip')].map((c) => c.obj).filter((f) => f.props['floating_ip_address'] === address);
  if (!fips.length) return undefined;
  if (fips.length > 1) return `${address} is the address of ${fips.length} floating IPs (in different networks): give a port instead`;
  const fip = fips[0]!;
  const pool = view.get(fip.parent_uuid ?? '')?.obj;
  const net = view.get(pool?.parent_uuid ?? '')?.obj;
  if (!net) return `floating IP ${address} has no pool network`;
  const backends = (fip.refs['virtual_machine_interface_refs'] ?? []).map((r) => findEndpoint(view, r.uuid)).filter((e): e is Endpoint => typeof e !== 'string');
  return {
    endpoint: { vmi: fip.uuid, name: `floating IP ${address}`, network: { uuid: net.uuid, name: net.fq_name.join(':'), vni: vniOf(net) }, address, groups: [], portSecurity: false },
    backends,
  };
}

const vniOf = (net: StoredObject): number =>
  (net.props['virtual_network_properties'] as { vxlan_network_identifier?: number } | undefined)?.vxlan_network_identifier ?? AUTO_VNI_BASE + (net.props['virtual_network_network_id'] as number);

/** An interface by uuid, fq_name (":"-joined) or its VM's name; its primary address must exist. */
export function findEndpoint(view: ConfigView, ref: string): Endpoint | string {
  const vmis = [...view.ofType('virtual-machine-interface')].map((c) => c.obj);
  const vmi =
    vmis.find((v) => v.uuid === ref || v.fq_name.join(':') === ref || v.fq_name.at(-1) === ref) ??
    vmis.find((v) => {
      const vm = singleRef(v, 'virtual_machine_refs') ?? (v.parent_type === 'virtual-machine' ? v.parent_uuid : undefined);
      return vm !== undefined && view.get(vm)?.obj.fq_name.at(-1) === ref;
    });
  if (!vmi) return `no interface or workload '${ref}'`;
  const netUuid = singleRef(vmi, 'virtual_network_refs');
  const net = netUuid ? view.get(netUuid)?.obj : undefined;
  const iip = primaryIp(view, vmi);
  if (!net || !iip) return `interface ${vmi.fq_name.join(':')} has no ${net ? 'address' : 'network'}`;
  const host = bindingHost(vmi);
  const router = host ? view.get(view.uuidByName('virtual-router', ['default-global-system-config', host]) ?? '')?.obj : undefined;
  const vtep = router?.props['virtual_router_ip_address'] as string | undefined;
  const vni = vniOf(net);
  return {
    vmi: vmi.uuid,
    name: vmi.fq_name.join(':'),
    network: { uuid: net.uuid, name: net.fq_name.join(':'), vni },
    address: iip.props['instance_ip_address'] as string,
    ...(host ? { host } : {}),
    ...(vtep ? { vtep } : {}),
    groups: groupsOf(vmi),
    portSecurity: (vmi.props['port_security_enabled'] ?? net.props['port_security_enabled']) !== false,
  };
}

/** Each rule's CIDRs, parsed once (the flow pipeline matches rules for every new flow). */
const ruleCidrs = new WeakMap<AclRule, { src: Cidr[] | null; dst: Cidr[] | null }>();
const parsedCidrs = (cidrs: string[] | null): Cidr[] | null => cidrs && cidrs.flatMap((c) => {
  const parsed = parseCidr(c);
  return typeof parsed === 'string' ? [] : [parsed];
});

/** Whether a compiled rule matches a packet from `src` to `dst` (dotted, or as numbers). */
export function ruleMatches(r: AclRule, src: string | number, dst: string | number, flow: Flow): boolean {
  if (r.protocol !== undefined && r.protocol !== flow.protocol) return false;
  let cidrs = ruleCidrs.get(r);
  if (!cidrs) ruleCidrs.set(r, (cidrs = { src: parsedCidrs(r.src), dst: parsedCidrs(r.dst) }));
  const within = (list: Cidr[] | null, addr: string | number) => {
    if (list === null) return true;
    const ip = typeof addr === 'number' ? addr : parseIpv4(addr)!;
    return list.some((c) => cidrContains(c, ip));
  };
  if (!within(cidrs.src, src) || !within(cidrs.dst, dst)) return false;
  if (r.dports && !(flow.port !== undefined && r.dports.some(([lo, hi]) => flow.port! >= lo && flow.port! <= hi))) return false;
  // Source ports are the client's choice: a rule naming them matches no new connection's known port.
  return !r.sports;
}

export function traceFlow(view: ConfigView, src: Endpoint, dst: Endpoint, flow: Flow, backends?: Endpoint[]): Trace {
  const path: string[] = [];
  const same = src.network.uuid === dst.network.uuid;
  const leaked = !same && (computeLeaks(view).get(src.network.uuid)?.has(dst.network.uuid) ?? false);
  if (!same && !leaked) {
    path.push(`no route: ${src.network.name} and ${dst.network.name} are isolated (no policy of each passes traffic with the other)`);
    return { src, dst, path, checks: [], verdict: 'drop' };
  }
  path.push(same ? `same network ${src.network.name}` : `route leaked from ${dst.network.name} into ${src.network.name} (their policies connect them)`);
  const hop = (to: Endpoint, vni: number) => {
    if (!src.host || !to.host) path.push(`${!src.host ? src.name : to.name} is bound to no host: it is nowhere`);
    else if (src.host === to.host) path.push(`${backends ? `${to.name}: ` : ''}both on host ${src.host}: routed locally`);
    else path.push(`${backends ? `${to.name}: ` : ''}${src.host} → ${to.host}: VXLAN to ${to.vtep ?? '(no underlay address: no tunnel)'} with VNI ${vni}`);
  };
  if (backends) {
    path.push(backends.length > 1 ? `${dst.name} is an ECMP service address: each new connection picks one of ${backends.length} back ends by a hash of its 5-tuple` : backends.length ? `${dst.name} translates to ${backends[0]!.name}` : `${dst.name} has no back end: nothing answers`);
    for (const b of backends) hop(b, dst.network.vni);
  } else hop(dst, dst.network.vni);
  const checks: Check[] = [];
  const policies = (end: Endpoint, side: 'source' | 'destination') => {
    const net = view.get(end.network.uuid)!.obj;
    if (!net.refs['network_policy_refs']?.length) {
      if (same) return;
      checks.push({ what: `policies of ${end.network.name} (${side} side)`, verdict: 'drop', rule: 'default', why: 'no policy attached' });
      return;
    }
    checks.push(policyCheck(net, compileAcl(view, net), src.address, dst.address, flow, side));
  };
  const groups = new GroupIndex(view);
  const sg = (end: Endpoint, direction: 'egress' | 'ingress') => {
    if (!end.portSecurity || !end.groups.length) return;
    const rules = end.groups.flatMap((g) => groups.entry(g)?.value[direction] ?? []);
    const hit = rules.find((r) => ruleMatches(r, src.address, dst.address, flow));
    checks.push({
      what: `security groups of ${end.name} (${direction})`,
      verdict: hit ? 'pass' : 'drop',
      rule: hit?.uuid ?? 'security groups',
      why: hit ? 'a rule allows it' : `no ${direction} rule of ${end.groups.map((g) => view.get(g)?.obj.fq_name.join(':') ?? g).join(', ')} allows it`,
    });
  };
  policies(src, 'source');
  sg(src, 'egress');
  policies(dst, 'destination');
  sg(dst, 'ingress');
  const common = checks.some((c) => c.verdict === 'drop') ? 'drop' : 'pass';
  if (!backends) return { src, dst, path, checks, verdict: common };
  // Through a floating IP: the pool network's policy (above), then each back end's groups.
  let open = 0;
  for (const b of backends) {
    const before = checks.length;
    sg(b, 'ingress');
    if (checks.slice(before).every((c) => c.verdict === 'pass')) open++;
  }
  return { src, dst, path, checks, verdict: common === 'pass' && open > 0 ? 'pass' : 'drop', nat: { floatingIp: dst.address, backends } };
}

function policyCheck(net: StoredObject, acl: AclRule[], src: string, dst: string, flow: Flow, side: 'source' | 'destination'): Check {
  const what = `policies of ${net.fq_name.join(':')} (${side} side)`;
  const hit = acl.find((r) => ruleMatches(r, src, dst, flow));
  if (hit) return { what, verdict: hit.action === 'pass' ? 'pass' : 'drop', rule: hit.uuid, why: `first matching rule: ${hit.action}` };
  const own = subnetsOf(net).some((s) => cidrContains(s.cidr, parseIpv4(side === 'source' ? dst : src)!));
  return { what, verdict: own ? 'pass' : 'drop', rule: 'default', why: own ? 'no rule matches; inside the network traffic passes' : 'no rule matches; between networks traffic is dropped' };
}
