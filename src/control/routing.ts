// The control node's calculation: configuration → one routing instance per virtual network
// → one document per host (protocol.ts). Pure (no I/O) and incremental: a change marks the
// networks it touches dirty, only those instances are recomputed, and only the hosts that
// see them get a delta. Modelled on Felix's calculation graph.

import type { StoredObject } from '../config/object.js';
import type { ConfigView } from '../config/view.js';
import { singleRef } from '../config/hooks/context.js';
import { subnetsOf } from '../ipam/subnets.js';
import { formatCidr, formatIpv4, isIpv4, normaliseMac, parseCidr } from '../util/ipv4.js';
import { AUTO_VNI_BASE } from '../agent/dataplane/names.js';
import { AclCompiler } from './acl.js';
import { GroupIndex } from './groups.js';
import { bindingHost, primaryIp } from './interfaces.js';
import { type Leaks, computeLeaks } from './leaks.js';
import { type Entry, type EntryValue, type FloatingBackend, type NetworkEntry, type PortEntry, aclKey, entryJson, floatingKey, leakKey, netKey, portKey, routeKey, sgKey } from './protocol.js';
import { dhcpEntry } from './dhcp.js';
import { groupsOf } from './sg.js';

/** An entry with its serialisation (computed once, compared and sent many times). */
interface Rec {
  value: EntryValue;
  json: string;
}

interface Instance {
  info?: Rec;
  /** Interfaces bound to each host. */
  ports: Map<string, [string, Rec][]>;
  /** Addresses (by entry key) with the host they live on ('' for what every host gets: floating IPs, policy blocks). */
  routes: Map<string, { host: string; rec: Rec }>;
  /** Objects (and `host:<name>` markers) whose change may change this instance. */
  contributors: string[];
}

interface HostDoc {
  /** Networks the host sees: its own and the ones leaked into them. */
  interest: Set<string>;
  /** Per network, the entries the host has of it. */
  frags: Map<string, Map<string, Rec>>;
  leaks: Map<string, Rec>;
  /** The security groups of its interfaces. */
  groups: Map<string, Rec>;
}

export interface Delta {
  set: Entry[];
  del: string[];
}

/** What changed in one network's instance: hosts patch their fragments with it instead of rebuilding them. */
interface InstanceChange {
  /** The network appeared or went, or gained or lost its subnets: fragments are rebuilt. */
  full: boolean;
  info: boolean;
  /** Route keys added, removed or changed (value or host). */
  routes: string[];
  /** Per host, its interfaces' entries set and deleted. */
  ports: Map<string, { set: [string, Rec][]; del: string[] }>;
}

const rec = (value: EntryValue): Rec => ({ value, json: entryJson(value) });

/** Contributor marker of every external or SNAT network: a gateway host came or went. */
const GATEWAYS = 'gateways';
/** Contributor marker of the networks whose policies name a network (by fq-name): it may appear. */
const named = (fqName: string) => `vn:${fqName}`;

export class RoutingEngine {
  private readonly instances = new Map<string, Instance>();
  private readonly contributors = new Map<string, Set<string>>();
  /** host → network → bound interfaces in it. */
  private readonly local = new Map<string, Map<string, number>>();
  private leaks: Leaks = new Map();
  private readonly docs = new Map<string, HostDoc>();
  private groups: GroupIndex;
  private acls: AclCompiler;

  constructor(private view: ConfigView) {
    this.groups = new GroupIndex(view);
    this.acls = new AclCompiler(view);
    this.rebuildAll();
  }

  /** Replaces the configuration (a fresh snapshot); returns the watched hosts' deltas. */
  reset(view: ConfigView): Map<string, Delta> {
    const old = new Map([...this.docs].map(([h, d]) => [h, flatten(d)]));
    this.view = view;
    this.groups = new GroupIndex(view);
    this.acls = new AclCompiler(view);
    this.instances.clear();
    this.contributors.clear();
    this.local.clear();
    this.rebuildAll();
    const out = new Map<string, Delta>();
    for (const host of old.keys()) {
      this.docs.delete(host);
      const fresh = flatten(this.watch(host));
      out.set(host, diff(old.get(host)!, fresh));
    }
    return out;
  }

  /** Starts following a host; returns its whole document. */
  watch(host: string): HostDoc {
    let doc = this.docs.get(host);
    if (!doc) {
      doc = { interest: new Set(), frags: new Map(), leaks: new Map(), groups: new Map() };
      this.docs.set(host, doc);
      this.refreshHost(host, doc, new Map(), true);
    }
    return doc;
  }

  unwatch(host: string): void {
    this.docs.delete(host);
  }

  /** A host's whole document as entries. */
  entries(host: string): Entry[] {
    return [...flatten(this.watch(host))].map(([k, r]) => [k, r.value]);
  }

  /** Recomputes what the changed objects touch; returns the deltas of the watched hosts. */
  update(changed: Iterable<string>): Map<string, Delta> {
    const dirty = new Set<string>();
    let leaksDirty = false;
    for (const uuid of changed) {
      for (const n of this.contributors.get(uuid) ?? []) dirty.add(n);
      if (this.instances.has(uuid)) leaksDirty = true; // a network changed or went away
      const obj = this.view.get(uuid)?.obj;
      if (!obj) continue;
      switch (obj.type) {
        case 'virtual-network':
          dirty.add(uuid);
          // Networks whose policies name it by a name that resolved to nothing before.
          for (const n of this.contributors.get(named(obj.fq_name.join(':'))) ?? []) dirty.add(n);
          leaksDirty = true;
          break;
        case 'network-policy':
          leaksDirty = true;
          break;
        case 'instance-ip':
          for (const r of obj.refs['virtual_network_refs'] ?? []) dirty.add(r.uuid);
          this.networkOf(this.view.get(singleRef(obj, 'virtual_machine_interface_refs') ?? '')?.obj, dirty);
          // Floating IPs whose back end is that interface (it was skipped while it had no address).
          for (const r of obj.refs['virtual_machine_interface_refs'] ?? []) for (const n of this.contributors.get(r.uuid) ?? []) dirty.add(n);
          break;
        case 'virtual-machine-interface':
          this.networkOf(obj, dirty);
          break;
        case 'virtual-router':
          for (const n of this.contributors.get(`host:${obj.fq_name[1]}`) ?? []) dirty.add(n);
          for (const n of this.contributors.get(GATEWAYS) ?? []) dirty.add(n);
          break;
        case 'floating-ip-pool':
          if (obj.parent_uuid) dirty.add(obj.parent_uuid);
          break;
        case 'floating-ip':
          if (obj.parent_uuid) dirty.add(this.view.get(obj.parent_uuid)?.obj.parent_uuid ?? '');
          break;
      }
    }
    // Hosts that gained or lost their last interface in a network: their interest changes.
    const hostsTouched = new Set<string>();
    const changes = new Map<string, InstanceChange>();
    for (const n of dirty) {
      const old = this.instances.get(n);
      const fresh = this.compute(n);
      const hosts = new Set([...(old?.ports.keys() ?? []), ...(fresh?.ports.keys() ?? [])]);
      const present = (h: string) => this.local.get(h)?.has(n) ?? false;
      const before = new Map([...hosts].map((h) => [h, present(h)]));
      if (old) this.forget(n, old);
      if (fresh) this.remember(n, fresh);
      else this.acls.forget(n);
      for (const h of hosts) if (present(h) !== before.get(h)) hostsTouched.add(h);
      changes.set(n, instanceChange(old, fresh));
    }
    let leakChanged = new Set<string>();
    if (leaksDirty) {
      const fresh = computeLeaks(this.view);
      leakChanged = changedKeys(this.leaks, fresh);
      this.leaks = fresh;
    }
    const groupsChanged = this.groups.update(changed);
    const out = new Map<string, Delta>();
    for (const [host, doc] of this.docs) {
      const refreshInterest = hostsTouched.has(host) || [...leakChanged].some((n) => this.local.get(host)?.has(n));
      if (!refreshInterest && ![...dirty].some((n) => doc.interest.has(n)) && ![...groupsChanged].some((g) => doc.groups.has(sgKey(g)))) continue;
      const delta = this.refreshHost(host, doc, changes, refreshInterest);
      if (delta.set.length || delta.del.length) out.set(host, delta);
    }
    return out;
  }

  private rebuildAll(): void {
    for (const c of this.view.ofType('virtual-network')) {
      const inst = this.compute(c.obj.uuid);
      if (inst) this.remember(c.obj.uuid, inst);
    }
    this.leaks = computeLeaks(this.view);
  }

  private networkOf(vmi: StoredObject | undefined, into: Set<string>): void {
    if (!vmi) return;
    const n = singleRef(vmi, 'virtual_network_refs');
    if (n) into.add(n);
  }

  private forget(n: string, inst: Instance): void {
    this.instances.delete(n);
    for (const c of inst.contributors) this.contributors.get(c)?.delete(n);
    for (const [host, ports] of inst.ports) {
      const m = this.local.get(host)!;
      const left = m.get(n)! - ports.length;
      if (left > 0) m.set(n, left);
      else m.delete(n);
    }
  }

  private remember(n: string, inst: Instance): void {
    this.instances.set(n, inst);
    for (const c of inst.contributors) {
      let s = this.contributors.get(c);
      if (!s) this.contributors.set(c, (s = new Set()));
      s.add(n);
    }
    for (const [host, ports] of inst.ports) {
      let m = this.local.get(host);
      if (!m) this.local.set(host, (m = new Map()));
      m.set(n, (m.get(n) ?? 0) + ports.length);
    }
  }

  /** Brings a host's document up to date for the changed networks (and its interest, if asked). */
  private refreshHost(host: string, doc: HostDoc, changes: ReadonlyMap<string, InstanceChange>, refreshInterest: boolean): Delta {
    const delta: Delta = { set: [], del: [] };
    const mine = this.local.get(host) ?? new Map<string, number>();
    const interest = refreshInterest ? new Set<string>() : doc.interest;
    if (refreshInterest) {
      for (const n of mine.keys()) {
        interest.add(n);
        for (const peer of this.leaks.get(n) ?? []) interest.add(peer);
      }
      for (const n of doc.interest) {
        if (interest.has(n)) continue;
        for (const key of doc.frags.get(n)!.keys()) delta.del.push(key);
        doc.frags.delete(n);
      }
    }
    for (const n of interest) {
      const change = changes.get(n);
      const frag = doc.interest.has(n) ? doc.frags.get(n) : undefined;
      if (frag && !change) continue;
      if (frag && !change!.full) {
        this.patch(n, host, frag, change!, delta);
        continue;
      }
      const fresh = this.fragment(n, host);
      diffInto(frag ?? new Map(), fresh, delta);
      doc.frags.set(n, fresh);
    }
    doc.interest = interest;
    // Always: a leak entry also depends on its peer having a subnet, which a dirty peer may have gained or lost.
    const leaks = new Map<string, Rec>();
    for (const n of mine.keys()) for (const peer of this.leaks.get(n) ?? []) if (this.instances.get(peer)?.info) leaks.set(leakKey(n, peer), rec({ network: n, peer }));
    diffInto(doc.leaks, leaks, delta);
    doc.leaks = leaks;
    // The groups its interfaces are in (as their p/ entries say).
    const groups = new Map<string, Rec>();
    for (const frag of doc.frags.values()) {
      for (const [key, r] of frag) {
        if (!key.startsWith('p/')) continue;
        for (const g of (r.value as PortEntry).securityGroups ?? []) {
          const entry = this.groups.entry(g);
          if (entry) groups.set(sgKey(g), entry);
        }
      }
    }
    diffInto(doc.groups, groups, delta);
    doc.groups = groups;
    return delta;
  }

  /** Applies an instance's change to a host's fragment of it: O(what changed), not O(the network). */
  private patch(n: string, host: string, frag: Map<string, Rec>, change: InstanceChange, delta: Delta): void {
    const inst = this.instances.get(n)!;
    const put = (key: string, r: Rec | undefined) => {
      const have = frag.get(key);
      if (r && have?.json !== r.json) {
        frag.set(key, r);
        delta.set.push([key, r.value]);
      } else if (!r && have) {
        frag.delete(key);
        delta.del.push(key);
      }
    };
    if (change.info) put(netKey(n), inst.info);
    for (const key of change.routes) {
      const r = inst.routes.get(key);
      put(key, r && r.host !== host ? r.rec : undefined);
    }
    const ports = change.ports.get(host);
    for (const key of ports?.del ?? []) put(key, undefined);
    for (const [key, r] of ports?.set ?? []) put(key, r);
  }

  /** What `host` needs of network `n`: the network, its interfaces bound to the host, the addresses elsewhere. */
  private fragment(n: string, host: string): Map<string, Rec> {
    const out = new Map<string, Rec>();
    const inst = this.instances.get(n);
    if (!inst) return out;
    if (inst.info) out.set(netKey(n), inst.info);
    for (const [key, r] of inst.ports.get(host) ?? []) out.set(key, r);
    if (inst.info) for (const [key, r] of inst.routes) if (r.host !== host) out.set(key, r.rec);
    return out;
  }

  /** Network `n`'s routing instance, from the configuration alone. */
  private compute(n: string): Instance | undefined {
    const net = this.view.get(n)?.obj;
    if (!net || net.type !== 'virtual-network') return undefined;
    const contributors = [n];
    const subnets = subnetsOf(net);
    const external = net.props['router_external'] === true;
    const snat = net.props['cirrus_snat'] === true;
    if (external || snat) contributors.push(GATEWAYS);
    let info: Rec | undefined;
    const routes: Instance['routes'] = new Map();
    if (subnets.length) {
      const id = net.props['virtual_network_network_id'] as number;
      const configured = (net.props['virtual_network_properties'] as { vxlan_network_identifier?: number } | undefined)?.vxlan_network_identifier;
      const service = subnets.flatMap((s) => [s.gateway, s.dns]).filter((a): a is number => a !== undefined).map(formatIpv4);
      const policies = net.refs['network_policy_refs']?.length ? this.policyBlocks(net, contributors, routes) : undefined;
      const value: NetworkEntry = {
        uuid: n,
        name: net.fq_name.join(':'),
        id,
        vni: configured ?? AUTO_VNI_BASE + id,
        subnets: subnets.map((s) => formatCidr(s.cidr)),
        serviceAddresses: [...new Set(service)],
        ...(policies ? { policies } : {}),
        ...(external ? { external } : {}),
        ...(snat ? { snat } : {}),
      };
      info = rec(value);
    } else this.acls.forget(n);
    const ports = new Map<string, [string, Rec][]>();
    const vtep = this.vteps(contributors);
    for (const { from, field } of this.view.referrers(n)) {
      const vmi = from.obj;
      if (vmi.type !== 'virtual-machine-interface' || field !== 'virtual_network_refs') continue;
      contributors.push(vmi.uuid);
      const host = bindingHost(vmi);
      if (!host) continue;
      const iip = primaryIp(this.view, vmi);
      if (iip) contributors.push(iip.uuid);
      const port = this.port(vmi, n, iip, subnets);
      if (port.vm) contributors.push(port.vm.uuid); // its name is in the entry
      let list = ports.get(host);
      if (!list) ports.set(host, (list = []));
      list.push([portKey(vmi.uuid), rec(port)]);
      if (port.pending || !port.address) continue;
      const at = vtep(host);
      if (at) routes.set(routeKey(n, port.address), { host, rec: rec({ network: n, address: port.address, vtep: at, ...(port.vm ? { name: port.vm.name } : {}) }) });
    }
    this.floatingIps(n, contributors, ports, routes, vtep);
    if (info && (external || snat)) {
      // Gateway hosts forward for external and SNAT networks without having interfaces in them.
      const gateways: string[] = [];
      for (const { obj } of this.view.ofType('virtual-router')) {
        if (obj.props['cirrus_gateway'] !== true) continue;
        const host = obj.fq_name[1]!;
        if (!ports.has(host)) ports.set(host, []);
        const at = vtep(host);
        if (at) gateways.push(at);
      }
      info = rec({ ...(info.value as NetworkEntry), gateways: gateways.sort() });
    }
    return { ...(info ? { info } : {}), ports, routes, contributors };
  }


  /**
   * Network `net`'s policy blocks (`a/` entries, for every host that sees it, among `routes`);
   * returns the policies in order. Its policies and the networks they name contribute.
   */
  private policyBlocks(net: StoredObject, contributors: string[], routes: Instance['routes']): string[] {
    const { blocks, names, uuids } = this.acls.compile(net);
    for (const ref of net.refs['network_policy_refs'] ?? []) contributors.push(ref.uuid);
    contributors.push(...uuids, ...names.map(named));
    // An unchanged block is the same object: serialised once (entryJson), compared in no time.
    for (const b of blocks) routes.set(aclKey(net.uuid, b.policy), { host: '', rec: rec(b) });
    return blocks.map((b) => b.policy);
  }

  /** A memoised lookup of hosts' underlay addresses, recording what it read as contributors. */
  private vteps(contributors: string[]): (host: string) => string | undefined {
    const vtepOf = new Map<string, string | undefined>();
    return (host) => {
      if (!vtepOf.has(host)) {
        contributors.push(`host:${host}`);
        const router = this.view.get(this.view.uuidByName('virtual-router', ['default-global-system-config', host]) ?? '')?.obj;
        // By uuid too: a deleted router is no longer in the view to name its host.
        if (router) contributors.push(router.uuid);
        const ip = router?.props['virtual_router_ip_address'] as string | undefined;
        vtepOf.set(host, ip && isIpv4(ip) ? ip : undefined);
      }
      return vtepOf.get(host);
    };
  }

  /**
   * The floating IPs of network `n`'s pools: an `f/` entry each, for every host that sees the
   * network; the hosts of their back ends see it too (they translate).
   */
  private floatingIps(n: string, contributors: string[], ports: Instance['ports'], routes: Instance['routes'], vtep: (host: string) => string | undefined): void {
    for (const pool of this.view.childrenOf(n)) {
      if (pool.obj.type !== 'floating-ip-pool') continue;
      contributors.push(pool.obj.uuid);
      for (const { obj: fip } of this.view.childrenOf(pool.obj.uuid)) {
        if (fip.type !== 'floating-ip') continue;
        contributors.push(fip.uuid);
        const address = fip.props['floating_ip_address'];
        if (typeof address !== 'string' || !isIpv4(address)) continue;
        const backends: FloatingBackend[] = [];
        for (const ref of fip.refs['virtual_machine_interface_refs'] ?? []) {
          contributors.push(ref.uuid);
          const vmi = this.view.get(ref.uuid)?.obj;
          const host = vmi && bindingHost(vmi);
          const network = vmi && singleRef(vmi, 'virtual_network_refs');
          if (!vmi || !host || !network) continue;
          const iip = primaryIp(this.view, vmi);
          if (iip) contributors.push(iip.uuid);
          const fixed = (fip.props['floating_ip_fixed_ip_address'] as string | undefined) ?? (iip?.props['instance_ip_address'] as string | undefined);
          if (!fixed || !isIpv4(fixed)) continue;
          if (!ports.has(host)) ports.set(host, []);
          const at = vtep(host);
          backends.push({ vmiUuid: vmi.uuid, address: fixed, network, ...(at ? { vtep: at } : {}) });
        }
        backends.sort((a, b) => (a.vmiUuid < b.vmiUuid ? -1 : 1));
        routes.set(floatingKey(fip.uuid), { host: '', rec: rec({ uuid: fip.uuid, network: n, address, backends }) });
      }
    }
  }

  private port(vmi: StoredObject, network: string, iip: StoredObject | undefined, subnets: ReturnType<typeof subnetsOf>): PortEntry {
    // The netns script makes the interface a child of its VM rather than referring to it.
    const vmUuid = singleRef(vmi, 'virtual_machine_refs') ?? (vmi.parent_type === 'virtual-machine' ? vmi.parent_uuid : undefined);
    const vm = vmUuid ? this.view.get(vmUuid)?.obj : undefined;
    const project = vmi.parent_type === 'project' ? vmi.parent_uuid : this.view.get(network)?.obj.parent_uuid;
    const base: PortEntry = {
      vmiUuid: vmi.uuid,
      network,
      ...(vm ? { vm: { uuid: vm.uuid, name: (vm.props['display_name'] as string | undefined) ?? vm.fq_name.at(-1)! } } : {}),
      ...(project ? { project } : {}),
    };
    if (!iip) return { ...base, pending: 'interface has no instance-ip' };
    const subnet = subnets.find((s) => s.uuid === iip.props['subnet_uuid']) ?? subnets[0];
    if (!subnet) return { ...base, pending: 'network has no subnet' };
    const mac = normaliseMac(((vmi.props['virtual_machine_interface_mac_addresses'] as { mac_address?: string[] } | undefined)?.mac_address ?? [])[0] ?? '');
    const address = iip.props['instance_ip_address'] as string;
    if (!mac || !isIpv4(address)) return { ...base, pending: 'invalid MAC or address in the configuration' };
    const pairs = allowedPairs(vmi);
    const security = (vmi.props['port_security_enabled'] ?? this.view.get(network)?.obj.props['port_security_enabled']) !== false;
    const groups = security ? groupsOf(vmi) : [];
    const dhcp = dhcpEntry(this.view.get(network)?.obj, subnet);
    return {
      ...base,
      mac,
      address,
      prefixLen: subnet.cidr.prefixLen,
      ...(subnet.gateway !== undefined ? { gateway: formatIpv4(subnet.gateway) } : {}),
      ...(pairs.length ? { allowedAddressPairs: pairs } : {}),
      ...(groups.length ? { securityGroups: groups } : {}),
      ...(security ? {} : { portSecurity: false }),
      ...(dhcp ? { dhcp } : {}),
    };
  }
}

/** allowed_address_pairs as CIDRs with their MAC (invalid ones dropped). */
function allowedPairs(vmi: StoredObject): { cidr: string; mac?: string }[] {
  type Pair = { ip?: { ip_prefix?: string; ip_prefix_len?: number }; mac?: string };
  const list = (vmi.props['virtual_machine_interface_allowed_address_pairs'] as { allowed_address_pair?: Pair[] } | undefined)?.allowed_address_pair ?? [];
  const out: { cidr: string; mac?: string }[] = [];
  for (const p of list) {
    const cidr = parseCidr(`${p.ip?.ip_prefix}/${p.ip?.ip_prefix_len}`);
    const mac = p.mac ? normaliseMac(p.mac) : undefined;
    if (typeof cidr === 'string' || (p.mac && !mac)) continue;
    out.push({ cidr: formatCidr(cidr), ...(mac ? { mac } : {}) });
  }
  return out;
}

function instanceChange(old: Instance | undefined, fresh: Instance | undefined): InstanceChange {
  const change: InstanceChange = { full: !old || !fresh || !old.info !== !fresh.info, info: false, routes: [], ports: new Map() };
  if (change.full) return change;
  change.info = old!.info?.json !== fresh!.info?.json;
  for (const [key, r] of fresh!.routes) {
    const was = old!.routes.get(key);
    if (!was || was.host !== r.host || was.rec.json !== r.rec.json) change.routes.push(key);
  }
  for (const key of old!.routes.keys()) if (!fresh!.routes.has(key)) change.routes.push(key);
  for (const host of new Set([...old!.ports.keys(), ...fresh!.ports.keys()])) {
    const before = new Map(old!.ports.get(host) ?? []);
    const after = new Map(fresh!.ports.get(host) ?? []);
    const set = [...after].filter(([k, r]) => before.get(k)?.json !== r.json);
    const del = [...before.keys()].filter((k) => !after.has(k));
    if (set.length || del.length) change.ports.set(host, { set, del });
  }
  return change;
}

function flatten(doc: HostDoc): Map<string, Rec> {
  const out = new Map<string, Rec>();
  for (const frag of doc.frags.values()) for (const [k, r] of frag) out.set(k, r);
  for (const [k, r] of doc.leaks) out.set(k, r);
  for (const [k, r] of doc.groups) out.set(k, r);
  return out;
}

function diffInto(old: Map<string, Rec>, fresh: Map<string, Rec>, delta: Delta): void {
  for (const [k, r] of fresh) if (old.get(k)?.json !== r.json) delta.set.push([k, r.value]);
  for (const k of old.keys()) if (!fresh.has(k)) delta.del.push(k);
}

function diff(old: Map<string, Rec>, fresh: Map<string, Rec>): Delta {
  const delta: Delta = { set: [], del: [] };
  diffInto(old, fresh, delta);
  return delta;
}

function changedKeys(a: Leaks, b: Leaks): Set<string> {
  const out = new Set<string>();
  const same = (x?: Set<string>, y?: Set<string>) => (x?.size ?? 0) === (y?.size ?? 0) && [...(x ?? [])].every((v) => y!.has(v));
  for (const k of new Set([...a.keys(), ...b.keys()])) if (!same(a.get(k), b.get(k))) out.add(k);
  return out;
}
