// RoutingEngine: configuration → per-host documents, and the incremental deltas that must
// always bring a watcher's copy to what a fresh engine computes from the same configuration.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Keys, type StoredObject, type StoredRef } from '../../src/config/object.js';
import { ConfigView } from '../../src/config/view.js';
import type { AclBlockEntry, Entry, EntryValue, FloatingEntry, NetworkEntry } from '../../src/control/protocol.js';
import { type Delta, RoutingEngine } from '../../src/control/routing.js';
import type { Change } from '../../src/store/store.js';
import { prng } from '../support/prng.js';
import { policyObject } from '../support/config-objects.js';

// ---- builders ----------------------------------------------------------------------

interface NetOpts {
  id: number;
  /** First three octets of the network's /24 (gateway .1, DNS .2); no subnet when absent. */
  prefix?: string;
  vni?: number;
  policies?: string[];
  /** router_external and cirrus_snat. */
  external?: boolean;
  snat?: boolean;
}

function network(uuid: string, name: string, o: NetOpts): StoredObject {
  const props: Record<string, unknown> = { virtual_network_network_id: o.id };
  if (o.vni !== undefined) props['virtual_network_properties'] = { vxlan_network_identifier: o.vni };
  if (o.external) props['router_external'] = true;
  if (o.snat) props['cirrus_snat'] = true;
  const refs: Record<string, StoredRef[]> = {};
  if (o.prefix !== undefined) {
    const subnet = { subnet: { ip_prefix: `${o.prefix}.0`, ip_prefix_len: 24 }, subnet_uuid: `${uuid}-subnet`, default_gateway: `${o.prefix}.1`, dns_server_address: `${o.prefix}.2`, allocation_pools: [] };
    refs['network_ipam_refs'] = [{ uuid: 'ipam', attr: { ipam_subnets: [subnet] } }];
  }
  if (o.policies?.length) refs['network_policy_refs'] = o.policies.map((p, i) => ({ uuid: p, attr: { sequence: { major: i, minor: 0 } } }));
  return { type: 'virtual-network', uuid, fq_name: ['d', 'p', name], parent_type: 'project', parent_uuid: 'proj', props, refs };
}

interface VmiOpts {
  net: string;
  host?: string;
  mac?: string;
  vm?: string;
}

function vmi(uuid: string, o: VmiOpts): StoredObject {
  const props: Record<string, unknown> = { virtual_machine_interface_mac_addresses: { mac_address: [o.mac ?? '02:00:00:00:00:01'] } };
  if (o.host !== undefined) props['virtual_machine_interface_bindings'] = { key_value_pair: [{ key: 'host_id', value: o.host }] };
  const refs: Record<string, StoredRef[]> = { virtual_network_refs: [{ uuid: o.net, attr: null }] };
  if (o.vm !== undefined) refs['virtual_machine_refs'] = [{ uuid: o.vm, attr: null }];
  return { type: 'virtual-machine-interface', uuid, fq_name: ['d', 'p', uuid], parent_type: 'project', parent_uuid: 'proj', props, refs };
}

const iip = (uuid: string, vmiUuid: string, net: string, address: string): StoredObject => ({
  type: 'instance-ip',
  uuid,
  fq_name: [uuid],
  props: { instance_ip_address: address, subnet_uuid: `${net}-subnet` },
  refs: { virtual_network_refs: [{ uuid: net, attr: null }], virtual_machine_interface_refs: [{ uuid: vmiUuid, attr: null }] },
});

const router = (host: string, ip: string, gateway = false): StoredObject => ({
  type: 'virtual-router',
  uuid: `vr-${host}`,
  fq_name: ['default-global-system-config', host],
  parent_type: 'global-system-config',
  parent_uuid: 'gsc',
  props: { virtual_router_ip_address: ip, ...(gateway ? { cirrus_gateway: true } : {}) },
  refs: {},
});

const pool = (uuid: string, net: StoredObject): StoredObject => ({
  type: 'floating-ip-pool',
  uuid,
  fq_name: [...net.fq_name, uuid],
  parent_type: 'virtual-network',
  parent_uuid: net.uuid,
  props: {},
  refs: {},
});

/** A floating IP of `poolObj` with these back ends (interface uuids); `fixed`: floating_ip_fixed_ip_address. */
const fip = (uuid: string, poolObj: StoredObject, address: string, vmis: string[], fixed?: string): StoredObject => ({
  type: 'floating-ip',
  uuid,
  fq_name: [...poolObj.fq_name, uuid],
  parent_type: 'floating-ip-pool',
  parent_uuid: poolObj.uuid,
  props: { floating_ip_address: address, ...(fixed ? { floating_ip_fixed_ip_address: fixed } : {}) },
  refs: { virtual_machine_interface_refs: vmis.map((v) => ({ uuid: v, attr: null })) },
});

type RuleSpec = Parameters<typeof policyObject>[1][number];
/** Policies of these tests pass both ways. */
const policy = (uuid: string, rules: RuleSpec[]): StoredObject => policyObject(uuid, rules.map((r) => ({ direction: '<>', ...r })));

const vm = (uuid: string, name: string): StoredObject => ({ type: 'virtual-machine', uuid, fq_name: [uuid], props: { display_name: name }, refs: {} });




// ---- the store's change feed -------------------------------------------------------

/** The configuration as the store would feed it: object keys plus their name keys. */
class Config {
  readonly view = new ConfigView();
  private readonly kvs = new Map<string, { value: string; createRev: number; modRev: number }>();
  private rev = 0;

  constructor(objs: StoredObject[] = []) {
    this.change(objs);
  }

  /** Writes and deletes objects in one transaction; returns the uuids to give update(). */
  change(put: StoredObject[], del: StoredObject[] = []): string[] {
    const changes: Change[] = [];
    const emit = (key: string, value?: string) => {
      const rev = ++this.rev;
      changes.push(value === undefined ? { rev, key } : { rev, key, value });
      if (value === undefined) this.kvs.delete(key);
      else this.kvs.set(key, { value, createRev: this.kvs.get(key)?.createRev ?? rev, modRev: rev });
    };
    for (const o of put) {
      emit(Keys.object(o.type, o.uuid), JSON.stringify(o));
      emit(Keys.name(o.type, o.fq_name), o.uuid);
    }
    for (const o of del) {
      emit(Keys.object(o.type, o.uuid));
      emit(Keys.name(o.type, o.fq_name));
    }
    this.view.apply(changes);
    return [...put, ...del].map((o) => o.uuid);
  }

  /** A fresh view loaded from the current keys (what a restarted control node reads). */
  snapshot(): ConfigView {
    const v = new ConfigView();
    v.load([...this.kvs].map(([key, k]) => ({ key, ...k })), this.rev);
    return v;
  }
}

// ---- documents ---------------------------------------------------------------------

type Doc = Map<string, EntryValue>;

const byKey = (a: Entry, b: Entry) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
const sorted = (entries: Iterable<Entry>): Entry[] => [...entries].sort(byKey);
const keys = (entries: Iterable<Entry>) => sorted(entries).map(([k]) => k);

/** As the agent applies a delta: deletions first, then sets. */
function applyDelta(doc: Doc, d: Delta): void {
  for (const k of d.del) doc.delete(k);
  for (const [k, v] of d.set) doc.set(k, v);
}

/** Compares serialisations first (fast), and deeply only to report a difference. */
function sameDoc(actual: Entry[], expected: Entry[], message: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) assert.deepEqual(actual, expected, message);
}

// ---- the central property: deltas ≡ recomputation -----------------------------------


/** Enough for several ports per host and network, few enough to keep each step cheap. */
const MAX_INTERFACES = 16;

/** A random walk over the configuration, keeping it as valid as the API would (no dangling refs). */
class World {
  private readonly live = new Map<string, StoredObject>();
  private seq = 0;
  private readonly nextAddr = new Map<string, number>();
  private readonly hosts = ['h1', 'h2', 'h3', 'h4', 'h5'];
  private readonly slots = [0, 1, 2, 3];

  constructor(
    private readonly cfg: Config,
    private readonly rnd: () => number,
    /** Also floating IPs, external and SNAT networks, gateways (off: the original walk, step for step). */
    private readonly floating = false,
  ) {}

  private pick<T>(xs: readonly T[]): T | undefined {
    return xs.length ? xs[Math.floor(this.rnd() * xs.length)] : undefined;
  }
  private chance(p: number): boolean {
    return this.rnd() < p;
  }
  private id(kind: string): string {
    return `${kind}-${++this.seq}`;
  }
  private ofType(type: StoredObject['type']): StoredObject[] {
    return [...this.live.values()].filter((o) => o.type === type);
  }
  private commit(put: StoredObject[], del: StoredObject[] = []): string[] {
    for (const o of put) this.live.set(o.uuid, o);
    for (const o of del) this.live.delete(o.uuid);
    return this.cfg.change(put, del);
  }
  private edit(o: StoredObject, f: (c: StoredObject) => void): StoredObject {
    const c = structuredClone(o);
    f(c);
    return c;
  }
  private slotOf(net: StoredObject): number {
    return Number(net.fq_name[2]!.slice(2));
  }
  private newIip(vmiObj: StoredObject, net: StoredObject): StoredObject {
    const n = (this.nextAddr.get(net.uuid) ?? 10) + 1;
    this.nextAddr.set(net.uuid, n);
    return iip(this.id('iip'), vmiObj.uuid, net.uuid, `10.0.${this.slotOf(net)}.${n}`);
  }
  private referrers(uuid: string, type: StoredObject['type']): StoredObject[] {
    return this.ofType(type).filter((o) => Object.values(o.refs).some((rs) => rs.some((r) => r.uuid === uuid)));
  }
  private randomRule(): RuleSpec {
    const side = () => {
      const s = this.pick(this.slots)!;
      return this.pick(['local', 'any', `d:p:vn${s}`, `d:p:vn${s}`, `10.0.${s}.0/24`, '10.0.0.0/16'])!;
    };
    return { src: side(), dst: side(), action: this.chance(0.2) ? 'deny' : 'pass' };
  }

  /** One random configuration change; returns its name and the changed uuids (none for a no-op). */
  step(): [string, string[]] {
    const ops = this.floating ? [...this.ops, ...this.floatingOps] : this.ops;
    const total = ops.reduce((t, [w]) => t + w, 0);
    let r = this.rnd() * total;
    for (const [w, name, op] of ops) {
      if ((r -= w) < 0) return [name, op() ?? []];
    }
    return ['noop', []];
  }

  private nets = () => this.ofType('virtual-network');
  private vmis = () => this.ofType('virtual-machine-interface');
  private policies = () => this.ofType('network-policy');
  private netOf = (port: StoredObject) => this.live.get(port.refs['virtual_network_refs']![0]!.uuid)!;
  private pools = () => this.ofType('floating-ip-pool');
  private fips = () => this.ofType('floating-ip');
  private fipsOf = (poolObj: StoredObject) => this.fips().filter((f) => f.parent_uuid === poolObj.uuid);
  private poolsOf = (net: StoredObject) => this.pools().filter((p) => p.parent_uuid === net.uuid);
  /** Floating IPs (other than `dying`) without their references to these interfaces, as the API requires before deleting them. */
  private unref = (ports: StoredObject[], dying: StoredObject[] = []): StoredObject[] => {
    const gone = new Set(ports.map((p) => p.uuid));
    const skip = new Set(dying.map((f) => f.uuid));
    return this.fips()
      .filter((f) => !skip.has(f.uuid) && f.refs['virtual_machine_interface_refs']?.some((r) => gone.has(r.uuid)))
      .map((f) => this.edit(f, (c) => (c.refs['virtual_machine_interface_refs'] = c.refs['virtual_machine_interface_refs']!.filter((r) => !gone.has(r.uuid)))));
  };
  private bind = (host: string | undefined) => (c: StoredObject) => {
    if (host === undefined) delete c.props['virtual_machine_interface_bindings'];
    else c.props['virtual_machine_interface_bindings'] = { key_value_pair: [{ key: 'host_id', value: host }] };
  };

  /** [weight, name, change]; a change returns undefined when it does not apply now. */
  private readonly ops: [number, string, () => string[] | undefined][] = [
    [8, 'create network', () => {
      const s = this.pick(this.slots.filter((x) => !this.nets().some((n) => this.slotOf(n) === x)));
      if (s === undefined) return undefined;
      const prefix = this.chance(0.5) ? { prefix: `10.0.${s}` } : {};
      const vni = this.chance(0.3) ? { vni: 100 + s } : {};
      return this.commit([network(this.id('vn'), `vn${s}`, { id: ++this.seq, ...prefix, ...vni, policies: this.policies().filter(() => this.chance(0.4)).map((p) => p.uuid) })]);
    }],
    // The API refuses to delete a network in use: its interfaces and their addresses go in the same transaction.
    [3, 'delete network', () => {
      const net = this.pick(this.nets());
      if (!net) return undefined;
      const ports = this.referrers(net.uuid, 'virtual-machine-interface');
      const pools = this.poolsOf(net);
      const fips = pools.flatMap((p) => this.fipsOf(p));
      return this.commit(this.unref(ports, fips), [...ports.flatMap((p) => this.referrers(p.uuid, 'instance-ip')), ...ports, ...fips, ...pools, net]);
    }],
    [6, 'add subnet', () => {
      const net = this.pick(this.nets().filter((n) => !n.refs['network_ipam_refs']));
      if (!net) return undefined;
      const withSubnet = network(net.uuid, net.fq_name[2]!, { id: 0, prefix: `10.0.${this.slotOf(net)}` });
      return this.commit([this.edit(net, (c) => (c.refs['network_ipam_refs'] = withSubnet.refs['network_ipam_refs']!))]);
    }],
    // Only while no address is in it, as the API requires; leak entries need the peer to have a subnet.
    [5, 'remove subnet', () => {
      const net = this.pick(this.nets().filter((n) => n.refs['network_ipam_refs'] && !this.referrers(n.uuid, 'instance-ip').length && !this.poolsOf(n).some((p) => this.fipsOf(p).length)));
      return net && this.commit([this.edit(net, (c) => delete c.refs['network_ipam_refs'])]);
    }],
    [6, 'change vni', () => {
      const net = this.pick(this.nets());
      if (!net) return undefined;
      const vni = this.chance(0.5) ? 200 + this.slotOf(net) + 10 * Math.floor(this.rnd() * 5) : undefined;
      return this.commit([
        this.edit(net, (c) => {
          if (vni === undefined) delete c.props['virtual_network_properties'];
          else c.props['virtual_network_properties'] = { vxlan_network_identifier: vni };
        }),
      ]);
    }],
    [18, 'create interface', () => {
      const net = this.pick(this.nets());
      if (!net || this.vmis().length >= MAX_INTERFACES) return undefined;
      const host = this.chance(0.9) ? this.pick(this.hosts) : undefined;
      const vmUuid = this.chance(0.5) ? this.pick(this.ofType('virtual-machine'))?.uuid : undefined;
      const n = this.seq + 1;
      const mac = `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`;
      const port = vmi(this.id('vmi'), { net: net.uuid, mac, ...(host ? { host } : {}), ...(vmUuid ? { vm: vmUuid } : {}) });
      return this.commit(net.refs['network_ipam_refs'] && this.chance(0.8) ? [port, this.newIip(port, net)] : [port]);
    }],
    [6, 'add instance-ip', () => {
      const port = this.pick(this.vmis().filter((v) => this.netOf(v).refs['network_ipam_refs']));
      return port && this.commit([this.newIip(port, this.netOf(port))]);
    }],
    [4, 'delete instance-ip', () => {
      const ip = this.pick(this.ofType('instance-ip'));
      return ip && this.commit([], [ip]);
    }],
    [6, 'delete interface', () => {
      const port = this.pick(this.vmis());
      return port && this.commit(this.unref([port]), [...this.referrers(port.uuid, 'instance-ip'), port]);
    }],
    [12, 'move interface', () => {
      const port = this.pick(this.vmis());
      return port && this.commit([this.edit(port, this.bind(this.chance(0.9) ? this.pick(this.hosts) : undefined))]);
    }],
    [8, 'create or change router', () => this.commit([router(this.pick(this.hosts)!, `192.168.0.${Math.floor(this.rnd() * 250) + 1}`, this.floating && this.chance(0.3))])],
    [3, 'delete router', () => {
      const r = this.pick(this.ofType('virtual-router'));
      return r && this.commit([], [r]);
    }],
    [3, 'create policy', () => this.commit([policy(this.id('np'), [this.randomRule(), ...(this.chance(0.5) ? [this.randomRule()] : [])])])],
    [8, 'edit policy', () => {
      const p = this.pick(this.policies());
      return p && this.commit([policy(p.uuid, [this.randomRule(), this.randomRule()])]);
    }],
    [1, 'delete policy', () => {
      const p = this.pick(this.policies().filter((x) => !this.nets().some((n) => n.refs['network_policy_refs']?.some((r) => r.uuid === x.uuid))));
      return p && this.commit([], [p]);
    }],
    [10, 'attach or detach policy', () => {
      const net = this.pick(this.nets());
      const p = this.pick(this.policies());
      if (!net || !p) return undefined;
      const rest = (net.refs['network_policy_refs'] ?? []).filter((x) => x.uuid !== p.uuid);
      const attached = rest.length !== (net.refs['network_policy_refs'] ?? []).length;
      const refs = attached ? rest : [...rest, { uuid: p.uuid, attr: { sequence: { major: rest.length, minor: 0 } } }];
      return this.commit([this.edit(net, (c) => (c.refs['network_policy_refs'] = refs))]);
    }],
    [2, 'create vm', () => this.commit([vm(this.id('vm'), `vm-${this.seq}`)])],
    [4, 'rename vm', () => {
      const v = this.pick(this.ofType('virtual-machine'));
      return v && this.commit([vm(v.uuid, `vm-renamed-${++this.seq}`)]);
    }],
  ];

  /** Floating IPs (back ends: any interfaces, of any network), their pools, external and SNAT networks, gateway hosts. */
  private readonly floatingOps: [number, string, () => string[] | undefined][] = [
    [4, 'create pool', () => {
      const net = this.pick(this.nets());
      return net && this.commit([pool(this.id('pool'), net)]);
    }],
    [2, 'delete pool', () => {
      const p = this.pick(this.pools());
      return p && this.commit([], [...this.fipsOf(p), p]);
    }],
    // The API takes addresses of the pool's network's subnets only.
    [10, 'create floating ip', () => {
      const p = this.pick(this.pools().filter((x) => this.live.get(x.parent_uuid!)!.refs['network_ipam_refs']));
      if (!p) return undefined;
      const net = this.live.get(p.parent_uuid!)!;
      const n = (this.nextAddr.get(`fip:${net.uuid}`) ?? 199) + 1;
      this.nextAddr.set(`fip:${net.uuid}`, n);
      const backends = this.vmis().filter(() => this.chance(0.3)).slice(0, 4).map((v) => v.uuid);
      const fixed = this.chance(0.1) ? `10.0.${this.slotOf(net)}.99` : undefined;
      return this.commit([fip(this.id('fip'), p, `10.0.${this.slotOf(net)}.${n}`, backends, fixed)]);
    }],
    [12, 'add or remove a back end', () => {
      const f = this.pick(this.fips());
      const port = this.pick(this.vmis());
      if (!f || !port) return undefined;
      return this.commit([
        this.edit(f, (c) => {
          const refs = c.refs['virtual_machine_interface_refs'] ?? [];
          c.refs['virtual_machine_interface_refs'] = refs.some((r) => r.uuid === port.uuid) ? refs.filter((r) => r.uuid !== port.uuid) : [...refs, { uuid: port.uuid, attr: null }];
        }),
      ]);
    }],
    [3, 'delete floating ip', () => {
      const f = this.pick(this.fips());
      return f && this.commit([], [f]);
    }],
    [5, 'external or snat on or off', () => {
      const net = this.pick(this.nets());
      const prop = this.chance(0.5) ? 'router_external' : 'cirrus_snat';
      return (
        net &&
        this.commit([
          this.edit(net, (c) => {
            if (c.props[prop]) delete c.props[prop];
            else c.props[prop] = true;
          }),
        ])
      );
    }],
    [4, 'gateway on or off', () => {
      const r = this.pick(this.ofType('virtual-router'));
      return r && this.commit([this.edit(r, (c) => (c.props['cirrus_gateway'] = c.props['cirrus_gateway'] !== true))]);
    }],
  ];
}

interface Coverage {
  route: number;
  leak: number;
  /** Policy blocks in the documents, and in deltas (set or deleted). */
  acl: number;
  aclDeltas: number;
  pending: number;
  deltas: number;
  /** f/ entries, those with several back ends, and n/ entries naming gateways. */
  floating: number;
  ecmp: number;
  gateways: number;
}

const noCoverage = (): Coverage => ({ route: 0, leak: 0, acl: 0, aclDeltas: 0, pending: 0, deltas: 0, floating: 0, ecmp: 0, gateways: 0 });

/** Walks `steps` random changes, checking every watched document after each; returns what it saw. */
function walk(seed: number, steps: number, floating = false): Coverage {
  const cfg = new Config();
  const world = new World(cfg, prng(seed), floating);
  const engine = new RoutingEngine(cfg.view);
  const resetEngine = new RoutingEngine(cfg.snapshot());
  const watched = new Map<string, Doc>();
  const resetDocs = new Map<string, Doc>();
  const watch = (host: string) => {
    watched.set(host, new Map(engine.entries(host)));
    resetDocs.set(host, new Map(resetEngine.entries(host)));
  };
  for (const h of ['h1', 'h2', 'h3']) watch(h);
  const seen = noCoverage();
  for (let i = 0; i < steps; i++) {
    if (i === steps >> 1) watch('h4'); // h5 is never watched: it holds ports but must get no deltas
    const [op, changed] = world.step();
    const where = `seed ${seed} step ${i} (${op})`;
    for (const [host, d] of engine.update(changed)) {
      assert.ok(watched.has(host), `${where}: delta for unwatched host ${host}`);
      assert.ok(d.set.length || d.del.length, `${where}: empty delta for ${host}`);
      applyDelta(watched.get(host)!, d);
      seen.deltas++;
      seen.aclDeltas += [...d.set.map(([k]) => k), ...d.del].filter((k) => k.startsWith('a/')).length;
    }
    const reference = new RoutingEngine(cfg.view);
    for (const [host, doc] of watched) {
      const want = sorted(reference.entries(host));
      sameDoc(sorted(doc), want, `${where}: ${host}'s document after the deltas`);
      sameDoc(sorted(engine.entries(host)), want, `${where}: ${host}'s document in the engine`);
      for (const [k, v] of want) {
        if (k.startsWith('r/')) seen.route++;
        if (k.startsWith('l/')) seen.leak++;
        if (k.startsWith('a/')) seen.acl++;
        if ('pending' in v) seen.pending++;
        if (k.startsWith('f/')) {
          seen.floating++;
          if ((v as FloatingEntry).backends.length > 1) seen.ecmp++;
        }
        if (k.startsWith('n/') && (v as NetworkEntry).gateways?.length) seen.gateways++;
      }
    }
    if (i % 40 === 39) {
      // A restart's snapshot: reset()'s deltas must bring the documents to the same place.
      for (const [host, d] of resetEngine.reset(cfg.snapshot())) applyDelta(resetDocs.get(host)!, d);
      for (const [host, doc] of resetDocs) sameDoc(sorted(doc), sorted(reference.entries(host)), `${where}, reset: ${host}`);
    }
  }
  return seen;
}

test('after any sequence of changes, applying the deltas gives what a fresh engine computes', () => {
  const total = noCoverage();
  // Two fixed seeds, each of which alone catches every incremental-update bug found while
  // writing this (stale VM names, routes to deleted routers, leak entries of peers gaining a subnet).
  for (const seed of [3, 8]) {
    const seen = walk(seed, 200);
    for (const k of Object.keys(total) as (keyof Coverage)[]) total[k] += seen[k];
  }
  // The walks must actually exercise routes, leaks, policy blocks and pending ports, not pass vacuously.
  assert.ok(total.route > 400 && total.leak > 400 && total.acl > 1000 && total.aclDeltas > 150 && total.pending > 300 && total.deltas > 200, `the walks exercised too little: ${JSON.stringify(total)}`);
});

test('with floating IPs, external and SNAT networks and gateways too, applying the deltas gives what a fresh engine computes', () => {
  const total = noCoverage();
  // Seed 14 found a missed update (an interface's new instance-ip did not reach the floating IPs it backs).
  for (const seed of [5, 11, 14]) {
    const seen = walk(seed, 200, true);
    for (const k of Object.keys(total) as (keyof Coverage)[]) total[k] += seen[k];
  }
  assert.ok(total.floating > 300 && total.ecmp > 100 && total.gateways > 100 && total.route > 300, `the walks exercised too little: ${JSON.stringify(total)}`);
});

// ---- specific behaviours -----------------------------------------------------------

const RED = 'net-red';
const BLUE = 'net-blue';
const red = (o: Partial<NetOpts> = {}) => network(RED, 'red', { id: 1, prefix: '10.1.0', ...o });
const blue = (o: Partial<NetOpts> = {}) => network(BLUE, 'blue', { id: 2, prefix: '10.2.0', ...o });

/** An interface with its address, bound to `host`. */
const port = (name: string, net: string, host: string, addr: string): StoredObject[] => [vmi(name, { net, host, mac: '02:00:00:00:00:0a' }), iip(`${name}-ip`, name, net, addr)];

test('a host sees only the networks it has an interface in', () => {
  const cfg = new Config([red(), blue(), router('h1', '192.168.0.1'), ...port('a', RED, 'h1', '10.1.0.10')]);
  const e = new RoutingEngine(cfg.view);
  assert.deepEqual(keys(e.entries('h1')), ['n/net-red', 'p/a']);
  assert.deepEqual(e.entries('h2'), [], 'h2 has no interface: no network at all');
});

test('a port is a p/ entry on its host and a route to its host elsewhere', () => {
  const cfg = new Config([red(), router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('b', RED, 'h2', '10.1.0.11')]);
  const e = new RoutingEngine(cfg.view);
  const h1 = new Map(e.entries('h1'));
  assert.deepEqual(h1.get('p/a'), { vmiUuid: 'a', network: RED, project: 'proj', mac: '02:00:00:00:00:0a', address: '10.1.0.10', prefixLen: 24, gateway: '10.1.0.1', dhcp: { dns: '10.1.0.2' } });
  assert.deepEqual(h1.get('r/net-red/10.1.0.11'), { network: RED, address: '10.1.0.11', vtep: '192.168.0.2' });
  assert.equal(h1.has('r/net-red/10.1.0.10'), false, 'no route to its own port');
  assert.deepEqual(keys(e.entries('h2')), ['n/net-red', 'p/b', 'r/net-red/10.1.0.10']);
  assert.deepEqual(new Map(e.entries('h2')).get('r/net-red/10.1.0.10'), { network: RED, address: '10.1.0.10', vtep: '192.168.0.1' });
});

test("a route names its instance (for the agents' DNS) and follows a rename; a port carries its subnet's DHCP additions", () => {
  const dhcpRed = network(RED, 'red', { id: 1, prefix: '10.1.0' });
  const subnet = (dhcpRed.refs['network_ipam_refs']![0]!.attr as { ipam_subnets: Record<string, unknown>[] }).ipam_subnets[0]!;
  Object.assign(subnet, { enable_dhcp: false, host_routes: { route: [{ prefix: '10.9.0.0/16', next_hop: '10.1.0.1' }] }, dhcp_option_list: { dhcp_option: [{ dhcp_option_name: '51', dhcp_option_value: '600' }, { dhcp_option_name: 'domain-name', dhcp_option_value: 'Lab.Example' }] } });
  const cfg = new Config([dhcpRed, router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), vm('vm-b', 'web-b'), vmi('a', { net: RED, host: 'h1' }), iip('a-ip', 'a', RED, '10.1.0.10'), vmi('b', { net: RED, host: 'h2', vm: 'vm-b' }), iip('b-ip', 'b', RED, '10.1.0.11')]);
  const e = new RoutingEngine(cfg.view);
  const h1 = new Map(e.entries('h1'));
  assert.deepEqual(h1.get('r/net-red/10.1.0.11'), { network: RED, address: '10.1.0.11', vtep: '192.168.0.2', name: 'web-b' });
  assert.deepEqual((h1.get('p/a') as { dhcp?: unknown }).dhcp, { disabled: true, dns: '10.1.0.2', leaseTime: 600, domainName: 'lab.example', routes: [{ prefix: '10.9.0.0/16', nextHop: '10.1.0.1' }] });
  const d = e.update(cfg.change([vm('vm-b', 'api-b')]));
  assert.deepEqual(d.get('h1'), { set: [['r/net-red/10.1.0.11', { network: RED, address: '10.1.0.11', vtep: '192.168.0.2', name: 'api-b' }]], del: [] });
});

test('no route to a host without a virtual-router, until its router appears', () => {
  const cfg = new Config([red(), router('h2', '192.168.0.2'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('b', RED, 'h2', '10.1.0.11')]);
  const e = new RoutingEngine(cfg.view);
  assert.deepEqual(keys(e.entries('h2')), ['n/net-red', 'p/b']);
  assert.deepEqual(e.update(cfg.change([router('h1', 'not-an-address')])), new Map(), 'an invalid address is no tunnel endpoint');
  const d = e.update(cfg.change([router('h1', '192.168.0.1')]));
  assert.deepEqual([...d.keys()], ['h2']);
  assert.deepEqual(d.get('h2'), { set: [['r/net-red/10.1.0.10', { network: RED, address: '10.1.0.10', vtep: '192.168.0.1' }]], del: [] });
});

test('deleting a virtual-router withdraws the routes to its host', () => {
  const cfg = new Config([red(), router('h1', '192.168.0.1'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('b', RED, 'h2', '10.1.0.11')]);
  const e = new RoutingEngine(cfg.view);
  e.watch('h2');
  assert.deepEqual(e.update(cfg.change([], [router('h1', '192.168.0.1')])).get('h2'), { set: [], del: ['r/net-red/10.1.0.10'] });
});

test('the configured VNI is honoured, else 2^23 + the network id', () => {
  const vniOf = (net: StoredObject) => {
    const e = new RoutingEngine(new Config([net, ...port('a', net.uuid, 'h1', '10.1.0.10')]).view);
    const n = new Map(e.entries('h1')).get(`n/${net.uuid}`);
    return n && 'vni' in n ? n.vni : undefined;
  };
  assert.equal(vniOf(red({ id: 7 })), 8_388_615);
  assert.equal(vniOf(red({ id: 7, vni: 4242 })), 4242);
  const cfg = new Config([red({ id: 7 }), ...port('a', RED, 'h1', '10.1.0.10')]);
  const e = new RoutingEngine(cfg.view);
  e.watch('h1');
  const d = e.update(cfg.change([red({ id: 7, vni: 99 })])).get('h1');
  assert.deepEqual(d?.set.map(([k, v]) => [k, 'vni' in v ? v.vni : undefined]), [['n/net-red', 99]]);
});

test('an interface without an instance-ip is pending, and routed once it has one', () => {
  const cfg = new Config([red(), router('h1', '192.168.0.1'), vmi('a', { net: RED, host: 'h1' }), ...port('b', RED, 'h2', '10.1.0.11')]);
  const e = new RoutingEngine(cfg.view);
  assert.deepEqual(new Map(e.entries('h1')).get('p/a'), { vmiUuid: 'a', network: RED, project: 'proj', pending: 'interface has no instance-ip' });
  assert.deepEqual(keys(e.entries('h2')), ['n/net-red', 'p/b'], 'a pending port has no route');
  const d = e.update(cfg.change([iip('a-ip', 'a', RED, '10.1.0.10')]));
  assert.deepEqual(d.get('h2'), { set: [['r/net-red/10.1.0.10', { network: RED, address: '10.1.0.10', vtep: '192.168.0.1' }]], del: [] });
  assert.equal(d.get('h1')?.set[0]?.[0], 'p/a');
  const bare = new RoutingEngine(new Config([blue({ prefix: undefined }), vmi('c', { net: BLUE, host: 'h1' }), iip('c-ip', 'c', BLUE, '10.2.0.10')]).view);
  assert.deepEqual(bare.entries('h1'), [['p/c', { vmiUuid: 'c', network: BLUE, project: 'proj', pending: 'network has no subnet' }]], 'nor a network entry');
});

test('a moved interface changes the vtep of its route and its p/ entry changes host', () => {
  const cfg = new Config([red(), router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), router('h3', '192.168.0.3'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('c', RED, 'h3', '10.1.0.12')]);
  const e = new RoutingEngine(cfg.view);
  for (const h of ['h1', 'h2', 'h3']) e.watch(h);
  const d = e.update(cfg.change([vmi('a', { net: RED, host: 'h2', mac: '02:00:00:00:00:0a' })]));
  assert.deepEqual(d.get('h3'), { set: [['r/net-red/10.1.0.10', { network: RED, address: '10.1.0.10', vtep: '192.168.0.2' }]], del: [] });
  assert.deepEqual(d.get('h1')?.del.sort(), ['n/net-red', 'p/a', 'r/net-red/10.1.0.12'], 'h1 has no interface in red any more');
  assert.deepEqual(keys(d.get('h2')!.set), ['n/net-red', 'p/a', 'r/net-red/10.1.0.12']);
});

test('deleting one of two interfaces of a host patches both documents: its p/ entry there, its route elsewhere', () => {
  const cfg = new Config([red(), router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('b', RED, 'h1', '10.1.0.11'), ...port('c', RED, 'h2', '10.1.0.12')]);
  const e = new RoutingEngine(cfg.view);
  for (const h of ['h1', 'h2']) e.watch(h);
  const d = e.update(cfg.change([], port('b', RED, 'h1', '10.1.0.11')));
  assert.deepEqual(d.get('h1'), { set: [], del: ['p/b'] });
  assert.deepEqual(d.get('h2'), { set: [], del: ['r/net-red/10.1.0.11'] });
  assert.deepEqual(keys(e.entries('h1')), ['n/net-red', 'p/a', 'r/net-red/10.1.0.12']);
});

test('deleting a network removes everything of it, leaks included', () => {
  const pol = policy('np', [{ src: 'local', dst: 'any' }]);
  const cfg = new Config([pol, red({ policies: ['np'] }), blue({ policies: ['np'] }), router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('b', BLUE, 'h2', '10.2.0.10')]);
  const e = new RoutingEngine(cfg.view);
  assert.deepEqual(keys(e.entries('h1')), ['a/net-blue/np', 'a/net-red/np', 'l/net-red/net-blue', 'n/net-blue', 'n/net-red', 'p/a', 'r/net-blue/10.2.0.10']);
  e.watch('h2');
  const d = e.update(cfg.change([], [iip('b-ip', 'b', BLUE, '10.2.0.10'), vmi('b', { net: BLUE }), blue()]));
  assert.deepEqual(d.get('h1')?.set, [], 'h1 keeps red');
  assert.deepEqual(d.get('h1')?.del.sort(), ['a/net-blue/np', 'l/net-red/net-blue', 'n/net-blue', 'r/net-blue/10.2.0.10']);
  assert.deepEqual(d.get('h2')?.del.sort(), ['a/net-blue/np', 'a/net-red/np', 'l/net-blue/net-red', 'n/net-blue', 'n/net-red', 'p/b', 'r/net-red/10.1.0.10']);
  assert.deepEqual(e.entries('h2'), []);
});

test('a leaked network is seen with its routes; without the leak it is not', () => {
  const pol = policy('np', [{ src: 'local', dst: 'any' }]);
  const base = [pol, router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('b', BLUE, 'h2', '10.2.0.10')];
  const cfg = new Config([...base, red({ policies: ['np'] }), blue()]);
  const e = new RoutingEngine(cfg.view);
  assert.deepEqual(keys(e.entries('h1')), ['a/net-red/np', 'n/net-red', 'p/a'], 'only red allows: no leak');
  const d = e.update(cfg.change([blue({ policies: ['np'] })]));
  assert.deepEqual(keys(d.get('h1')!.set), ['a/net-blue/np', 'l/net-red/net-blue', 'n/net-blue', 'r/net-blue/10.2.0.10']);
  assert.deepEqual(new Map(e.entries('h1')).get('l/net-red/net-blue'), { network: RED, peer: BLUE });
  assert.deepEqual(e.update(cfg.change([blue()])).get('h1')!.del.sort(), ['a/net-blue/np', 'l/net-red/net-blue', 'n/net-blue', 'r/net-blue/10.2.0.10'], 'detaching withdraws it');
});

test('editing an attached policy to deny withdraws the leak', () => {
  const cfg = new Config([policy('np', [{ src: 'local', dst: 'any' }]), red({ policies: ['np'] }), blue({ policies: ['np'] }), ...port('a', RED, 'h1', '10.1.0.10'), ...port('b', BLUE, 'h2', '10.2.0.10')]);
  const e = new RoutingEngine(cfg.view);
  assert.ok(new Map(e.entries('h1')).has('l/net-red/net-blue'));
  const d = e.update(cfg.change([policy('np', [{ src: 'local', dst: 'any', action: 'deny' }])]));
  assert.deepEqual(d.get('h1')?.del.sort(), ['a/net-blue/np', 'l/net-red/net-blue', 'n/net-blue']);
  assert.deepEqual(keys(d.get('h1')!.set), ['a/net-red/np'], "red's block of the policy now denies; red's n/ entry is unchanged");
});

test('an interface is plumbed with its first instance-ip; deleting that one falls back to the next', () => {
  const cfg = new Config([red(), router('h1', '192.168.0.1'), ...port('a', RED, 'h1', '10.1.0.10'), iip('a-ip2', 'a', RED, '10.1.0.20'), ...port('b', RED, 'h2', '10.1.0.11')]);
  const e = new RoutingEngine(cfg.view);
  assert.deepEqual(keys(e.entries('h2')), ['n/net-red', 'p/b', 'r/net-red/10.1.0.10']);
  const d = e.update(cfg.change([], [iip('a-ip', 'a', RED, '10.1.0.10')])).get('h2');
  assert.deepEqual(d, { set: [['r/net-red/10.1.0.20', { network: RED, address: '10.1.0.20', vtep: '192.168.0.1' }]], del: ['r/net-red/10.1.0.10'] });
});

test('a leak entry appears once the peer network has a subnet', () => {
  const pol = policy('np', [{ src: 'local', dst: 'any' }]);
  const cfg = new Config([pol, red({ policies: ['np'] }), blue({ policies: ['np'], prefix: undefined }), ...port('a', RED, 'h1', '10.1.0.10'), vmi('b', { net: BLUE, host: 'h2' })]);
  const e = new RoutingEngine(cfg.view);
  assert.deepEqual(keys(e.entries('h1')), ['a/net-red/np', 'n/net-red', 'p/a'], 'no leak entry for a network without a subnet');
  const d = e.update(cfg.change([blue({ policies: ['np'] })]));
  assert.deepEqual(keys(d.get('h1')!.set), ['a/net-blue/np', 'l/net-red/net-blue', 'n/net-blue']);
});

test("renaming an interface's virtual machine updates its p/ entry", () => {
  const cfg = new Config([vm('vm1', 'web'), red(), vmi('a', { net: RED, host: 'h1', vm: 'vm1' }), iip('a-ip', 'a', RED, '10.1.0.10')]);
  const e = new RoutingEngine(cfg.view);
  const vmName = () => {
    const p = new Map(e.entries('h1')).get('p/a');
    return p && 'vmiUuid' in p ? p.vm?.name : undefined;
  };
  assert.equal(vmName(), 'web');
  assert.ok(e.update(cfg.change([vm('vm1', 'db')])).has('h1'));
  assert.equal(vmName(), 'db');
});

test('an unwatched host gets no deltas; unwatch stops them', () => {
  const cfg = new Config([red(), router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), ...port('a', RED, 'h1', '10.1.0.10')]);
  const e = new RoutingEngine(cfg.view);
  e.watch('h1');
  const d = e.update(cfg.change(port('b', RED, 'h2', '10.1.0.11')));
  assert.deepEqual([...d.keys()], ['h1'], 'h2 has a new port but nobody follows it');
  e.unwatch('h1');
  assert.deepEqual(e.update(cfg.change([], [iip('b-ip', 'b', RED, '10.1.0.11')])), new Map());
});

// ---- security groups ----------------------------------------------------------------

const sg = (uuid: string, rules: { dir: 'ingress' | 'egress'; protocol?: string; remote: Record<string, unknown>; port?: number }[]): StoredObject => ({
  type: 'security-group',
  uuid,
  fq_name: ['d', 'p', uuid],
  parent_type: 'project',
  parent_uuid: 'proj',
  props: {
    security_group_entries: {
      policy_rule: rules.map((r, i) => ({
        rule_uuid: `${uuid}-r${i}`,
        direction: '>',
        protocol: r.protocol ?? 'any',
        ethertype: 'IPv4',
        src_addresses: [r.dir === 'ingress' ? r.remote : { security_group: 'local' }],
        dst_addresses: [r.dir === 'ingress' ? { security_group: 'local' } : r.remote],
        dst_ports: [r.port ? { start_port: r.port, end_port: r.port } : { start_port: -1, end_port: -1 }],
      })),
    },
  },
  refs: {},
});
const member = (name: string, net: string, host: string, addr: string, groups: string[]): StoredObject[] => {
  const [v, ip] = port(name, net, host, addr);
  return [{ ...v!, refs: { ...v!.refs, security_group_refs: groups.map((g) => ({ uuid: g, attr: null })) } }, ip!];
};

test('security groups: a port lists its groups, its host gets them with remote groups resolved to members; membership changes follow', () => {
  const web = sg('web', [{ dir: 'ingress', protocol: 'tcp', remote: { subnet: { ip_prefix: '0.0.0.0', ip_prefix_len: 0 } }, port: 80 }, { dir: 'egress', remote: { security_group: 'any' } }]);
  const db = sg('db', [{ dir: 'ingress', protocol: 'tcp', remote: { security_group: 'd:p:web' }, port: 5432 }]);
  const cfg = new Config([red(), web, db, router('h1', '192.168.0.1'), ...member('a', RED, 'h2', '10.1.0.10', ['web']), ...member('b', RED, 'h1', '10.1.0.20', ['db'])]);
  const e = new RoutingEngine(cfg.view);
  const h1 = new Map(e.entries('h1'));
  assert.deepEqual((h1.get('p/b') as { securityGroups?: string[] }).securityGroups, ['db']);
  assert.deepEqual([...h1.keys()].filter((k) => k.startsWith('s/')), ['s/db'], 'only the groups of its own ports');
  assert.deepEqual(h1.get('s/db'), { uuid: 'db', name: 'd:p:db', ingress: [{ uuid: 'db-r0', action: 'pass', protocol: 6, dports: [[5432, 5432]], src: ['10.1.0.10/32'], dst: null }], egress: [] });
  const web2 = new Map(new RoutingEngine(cfg.view).entries('h2')).get('s/web') as { ingress: { src: unknown }[]; egress: { dst: unknown }[] };
  assert.equal(web2.ingress[0]!.src, null, '0.0.0.0/0 is any');
  assert.equal(web2.egress[0]!.dst, null);
  // Another interface joins web: db's rule on h1 gains its address.
  const d = e.update(cfg.change(member('c', RED, 'h2', '10.1.0.11', ['web'])));
  const set = new Map(d.get('h1')!.set);
  assert.deepEqual((set.get('s/db') as { ingress: { src: string[] }[] }).ingress[0]!.src, ['10.1.0.10/32', '10.1.0.11/32']);
  // It leaves the group: its address goes.
  const left = e.update(cfg.change([{ ...vmi('c', { net: RED, host: 'h2', mac: '02:00:00:00:00:0a' }) }]));
  assert.deepEqual((new Map(left.get('h1')!.set).get('s/db') as { ingress: { src: string[] }[] }).ingress[0]!.src, ['10.1.0.10/32']);
  // Port security off: no groups on the port.
  const off = e.update(cfg.change([{ ...member('b', RED, 'h1', '10.1.0.20', ['db'])[0]!, props: { ...member('b', RED, 'h1', '10.1.0.20', ['db'])[0]!.props, port_security_enabled: false } }]));
  assert.deepEqual(off.get('h1')!.del, ['s/db']);
});

// ---- floating IPs and gateways ------------------------------------------------------

const SVC = 'net-svc';
const PUB = 'net-pub';
const svc = (o: Partial<NetOpts> = {}) => network(SVC, 'svc', { id: 3, prefix: '10.96.0', ...o });
const pub = (o: Partial<NetOpts> = {}) => network(PUB, 'pub', { id: 4, prefix: '203.0.113', external: true, ...o });
const svcPool = pool('svc-pool', svc());
const pubPool = pool('pub-pool', pub());
/** The ECMP service address 10.96.0.10 over these back ends. */
const vip = (...backends: string[]) => fip('vip', svcPool, '10.96.0.10', backends);
const routers = () => [router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), router('h3', '192.168.0.3'), router('gw', '192.168.0.9', true)];
/** Red back ends r1..r3 on h1..h3, a blue client on h4 (no router), svc with its pool. */
const floatingBase = () => [
  red(),
  blue(),
  svc(),
  svcPool,
  ...routers(),
  ...port('r1', RED, 'h1', '10.1.0.11'),
  ...port('r2', RED, 'h2', '10.1.0.12'),
  ...port('r3', RED, 'h3', '10.1.0.13'),
  ...port('c4', BLUE, 'h4', '10.2.0.14'),
];
const be = (vmiUuid: string, address: string, vtep?: string) => ({ vmiUuid, address, network: RED, ...(vtep ? { vtep } : {}) });
const R1 = be('r1', '10.1.0.11', '192.168.0.1');
const R2 = be('r2', '10.1.0.12', '192.168.0.2');
const R3 = be('r3', '10.1.0.13', '192.168.0.3');
const entryOf = (e: RoutingEngine, host: string, key: string) => new Map(e.entries(host)).get(key);

test('a floating IP is an f/ entry of its pool network for every host that sees it; the hosts of its back ends see that network', () => {
  const cfg = new Config([...floatingBase(), vip('r3', 'r1', 'r2')]);
  const e = new RoutingEngine(cfg.view);
  const want = { uuid: 'vip', network: SVC, address: '10.96.0.10', backends: [R1, R2, R3] };
  for (const h of ['h1', 'h2', 'h3']) {
    assert.deepEqual(entryOf(e, h, 'f/vip'), want, `${h}: back ends in uuid order, with their address, network and host`);
    assert.ok(entryOf(e, h, 'n/net-svc'), `${h} forwards for svc without an interface in it`);
    assert.deepEqual(keys(e.entries(h)).filter((k) => k.startsWith('p/')), [`p/r${h[1]}`], 'and gets no interface of it');
  }
  assert.deepEqual(keys(e.entries('h4')), ['n/net-blue', 'p/c4'], 'blue without a policy to svc: no svc');
  assert.deepEqual(keys(e.entries('gw')), [], 'svc is neither external nor SNAT: not on the gateway');
  // A policy between blue and svc leaks svc into blue: the client host gets the floating IP.
  const np = policy('np', [{ src: 'local', dst: 'any' }]);
  const d = e.update(cfg.change([np, blue({ policies: ['np'] }), svc({ policies: ['np'] })]));
  assert.deepEqual(new Map(d.get('h4')!.set).get('f/vip'), want);
});

test('a floating IP without a usable back end has none: unbound, deleted router, no address; the fixed address replaces the interface\'s', () => {
  const cases: [string, StoredObject[], unknown[]][] = [
    ['an unbound back end is left out', [vmi('r3', { net: RED, mac: '02:00:00:00:00:0a' })], [R1, R2]],
    ["a back end whose host has no router has no vtep", [router('h3', 'not-an-address')], [R1, R2, be('r3', '10.1.0.13')]],
    ['a back end without an address is left out', [vmi('r4', { net: RED, host: 'h1' }), vip('r1', 'r2', 'r3', 'r4')], [R1, R2, R3]],
    ['floating_ip_fixed_ip_address is the back end address', [fip('vip', svcPool, '10.96.0.10', ['r1'], '10.1.0.99')], [{ ...R1, address: '10.1.0.99' }]],
  ];
  for (const [what, change, backends] of cases) {
    const cfg = new Config([...floatingBase(), vip('r1', 'r2', 'r3')]);
    cfg.change(change);
    const fresh = new RoutingEngine(cfg.view);
    assert.deepEqual((entryOf(fresh, 'h1', 'f/vip') as FloatingEntry).backends, backends, what);
  }
});

test('back ends moved, removed, the floating IP or its pool deleted: every host that sees it gets the change; a host left without a back end loses the network', () => {
  interface Case {
    what: string;
    put?: StoredObject[];
    del?: StoredObject[];
    /** Per host, the back ends of f/vip afterwards (undefined: no f/vip, nor n/net-svc). */
    want: Record<string, unknown[] | undefined>;
  }
  const cases: Case[] = [
    { what: 'r3 moves to h2', put: [vmi('r3', { net: RED, host: 'h2', mac: '02:00:00:00:00:0a' })], want: { h1: [R1, R2, { ...R3, vtep: '192.168.0.2' }], h2: [R1, R2, { ...R3, vtep: '192.168.0.2' }], h3: undefined } },
    { what: 'r3 is removed from the floating IP', put: [vip('r1', 'r2')], want: { h1: [R1, R2], h2: [R1, R2], h3: undefined } },
    { what: 'r3 and its address are deleted', put: [vip('r1', 'r2')], del: port('r3', RED, 'h3', '10.1.0.13'), want: { h1: [R1, R2], h2: [R1, R2], h3: undefined } },
    { what: 'a back end is added', put: [...port('r4', RED, 'h3', '10.1.0.14'), vip('r1', 'r2', 'r3', 'r4')], want: { h1: [R1, R2, R3, be('r4', '10.1.0.14', '192.168.0.3')], h2: [R1, R2, R3, be('r4', '10.1.0.14', '192.168.0.3')], h3: [R1, R2, R3, be('r4', '10.1.0.14', '192.168.0.3')] } },
    { what: "h2's router changes address", put: [router('h2', '192.168.0.22')], want: { h1: [R1, { ...R2, vtep: '192.168.0.22' }, R3], h2: [R1, { ...R2, vtep: '192.168.0.22' }, R3], h3: [R1, { ...R2, vtep: '192.168.0.22' }, R3] } },
    { what: 'the floating IP is deleted', del: [vip()], want: { h1: undefined, h2: undefined, h3: undefined } },
    { what: 'its pool is deleted with it', del: [vip(), svcPool], want: { h1: undefined, h2: undefined, h3: undefined } },
  ];
  for (const c of cases) {
    const cfg = new Config([...floatingBase(), vip('r1', 'r2', 'r3')]);
    const e = new RoutingEngine(cfg.view);
    const docs = new Map(['h1', 'h2', 'h3'].map((h) => [h, new Map(e.entries(h))]));
    for (const [h, d] of e.update(cfg.change(c.put ?? [], c.del ?? []))) applyDelta(docs.get(h)!, d);
    for (const [h, backends] of Object.entries(c.want)) {
      const doc = docs.get(h)!;
      assert.deepEqual((doc.get('f/vip') as FloatingEntry | undefined)?.backends, backends, `${c.what}: ${h}'s f/vip`);
      assert.equal(doc.has('n/net-svc'), backends !== undefined, `${c.what}: ${h} sees svc`);
      sameDoc(sorted(doc), sorted(new RoutingEngine(cfg.view).entries(h)), `${c.what}: ${h} as a fresh engine`);
    }
  }
});

test('moving a back end patches documents: elsewhere only its route and the f/ entry change; its old host, without another back end, loses the network', () => {
  const cfg = new Config([...floatingBase(), ...port('r4', RED, 'h3', '10.1.0.14'), vip('r1', 'r2', 'r3')]);
  const e = new RoutingEngine(cfg.view);
  for (const h of ['h1', 'h2', 'h3']) e.watch(h);
  const d = e.update(cfg.change([vmi('r3', { net: RED, host: 'h2', mac: '02:00:00:00:00:0a' })]));
  const route: Entry = ['r/net-red/10.1.0.13', { network: RED, address: '10.1.0.13', vtep: '192.168.0.2' }];
  const moved: Entry = ['f/vip', { uuid: 'vip', network: SVC, address: '10.96.0.10', backends: [R1, R2, { ...R3, vtep: '192.168.0.2' }] }];
  assert.deepEqual(d.get('h1'), { set: [route, moved], del: [] });
  assert.deepEqual({ set: d.get('h3')!.set, del: d.get('h3')!.del.sort() }, { set: [route], del: ['f/vip', 'n/net-svc', 'p/r3'] }, 'h3 keeps red (r4) but no back end of svc');
  assert.deepEqual({ set: keys(d.get('h2')!.set), del: d.get('h2')!.del }, { set: ['f/vip', 'p/r3'], del: ['r/net-red/10.1.0.13'] });
});

test('external and SNAT networks go to the gateway hosts and name them; gateways come and go', () => {
  const cfg = new Config([...floatingBase(), pub(), pubPool, fip('pub1', pubPool, '203.0.113.11', ['r1'])]);
  const e = new RoutingEngine(cfg.view);
  for (const h of ['h1', 'h2', 'gw']) e.watch(h);
  const gwNet = (h: string, n = PUB) => entryOf(e, h, `n/${n}`) as NetworkEntry | undefined;
  assert.deepEqual(keys(e.entries('gw')), ['f/pub1', 'n/net-pub'], 'the gateway: the external network and its floating IP, no interface');
  assert.deepEqual(gwNet('gw')?.gateways, ['192.168.0.9']);
  assert.equal(gwNet('gw')?.external, true);
  assert.deepEqual(gwNet('h1')?.gateways, ['192.168.0.9'], "the back end's host knows where the outside is");
  assert.equal(gwNet('h2'), undefined, 'h2 has nothing to do with pub');
  assert.equal((entryOf(e, 'h1', 'n/net-red') as NetworkEntry).gateways, undefined, 'a plain network names no gateway');

  // A second gateway: every holder of pub learns it.
  let d = e.update(cfg.change([router('h2', '192.168.0.2', true)]));
  assert.deepEqual((new Map(d.get('h1')!.set).get('n/net-pub') as NetworkEntry).gateways, ['192.168.0.2', '192.168.0.9']);
  assert.deepEqual(keys(d.get('h2')!.set), ['f/pub1', 'n/net-pub'], 'h2 became a gateway: it gets pub');
  // SNAT on red: the gateways get red (its addresses, for the replies), red names them.
  d = e.update(cfg.change([red({ snat: true })]));
  assert.deepEqual(gwNet('gw', RED)?.gateways, ['192.168.0.2', '192.168.0.9']);
  assert.equal(gwNet('gw', RED)?.snat, true);
  assert.ok(new Map(e.entries('gw')).has('r/net-red/10.1.0.11'));
  // The gateway flag goes off, then the other gateway's router goes.
  d = e.update(cfg.change([router('h2', '192.168.0.2')]));
  assert.deepEqual(d.get('h2')!.del.sort(), ['f/pub1', 'n/net-pub']);
  assert.deepEqual(gwNet('h1')?.gateways, ['192.168.0.9']);
  d = e.update(cfg.change([], [router('gw', '192.168.0.9', true)]));
  assert.deepEqual(e.entries('gw'), [], 'without its router the gateway forwards for nothing');
  assert.deepEqual(gwNet('h1')?.gateways, []);
  // External off: pub is a plain network.
  e.update(cfg.change([pub({ external: false })]));
  assert.deepEqual(Object.keys(gwNet('h1')!).sort(), ['id', 'name', 'serviceAddresses', 'subnets', 'uuid', 'vni']);
});

test('a floating IP gains its back end when the back end\'s interface gets its instance-ip', () => {
  const cfg = new Config([...floatingBase(), vmi('r4', { net: RED, host: 'h3' }), vip('r1', 'r4')]);
  const e = new RoutingEngine(cfg.view);
  const docs = new Map(['h1', 'h3'].map((h) => [h, new Map(e.entries(h))]));
  assert.deepEqual((docs.get('h1')!.get('f/vip') as FloatingEntry).backends, [R1], 'r4 has no address yet');
  for (const [h, d] of e.update(cfg.change([iip('r4-ip', 'r4', RED, '10.1.0.14')]))) applyDelta(docs.get(h)!, d);
  for (const h of ['h1', 'h3']) assert.deepEqual((docs.get(h)!.get('f/vip') as FloatingEntry).backends, [R1, be('r4', '10.1.0.14', '192.168.0.3')], h);
});

test("policies travel as blocks: a change of one policy sends that policy's a/ entry alone", () => {
  const pols = ['p1', 'p2', 'p3'].map((u) => policy(u, [{ src: 'local', dst: 'd:p:blue' }]));
  const cfg = new Config([...pols, red({ policies: ['p1', 'p2', 'p3'] }), blue(), router('h1', '192.168.0.1'), ...port('a', RED, 'h1', '10.1.0.10')]);
  const e = new RoutingEngine(cfg.view);
  const doc = new Map(e.entries('h1'));
  assert.deepEqual((doc.get(`n/${RED}`) as NetworkEntry).policies, ['p1', 'p2', 'p3'], 'the n/ entry lists the blocks in order');
  assert.deepEqual((doc.get(`a/${RED}/p2`) as AclBlockEntry).rules.map((r) => [r.src, r.dst]), [[['10.1.0.0/24'], ['10.2.0.0/24']], [['10.2.0.0/24'], ['10.1.0.0/24']]]);
  const d = e.update(cfg.change([policy('p2', [{ src: 'local', dst: 'any', action: 'deny' }])])).get('h1')!;
  assert.deepEqual([keys(d.set), d.del], [[`a/${RED}/p2`], []], "only p2's block; red's n/ entry is unchanged");
  // Attaching one more sends its block and the n/ entry's new list, not the others' rules.
  const p4 = policy('p4', [{ src: 'any', dst: 'any' }]);
  cfg.change([p4]);
  const attach = e.update(cfg.change([red({ policies: ['p4', 'p1', 'p2', 'p3'] })])).get('h1')!;
  assert.deepEqual(keys(attach.set), [`a/${RED}/p4`, `n/${RED}`]);
  const detach = e.update(cfg.change([red({ policies: ['p4', 'p1', 'p3'] })])).get('h1')!;
  assert.deepEqual([keys(detach.set), detach.del], [[`n/${RED}`], [`a/${RED}/p2`]]);
});

test("a network's change recomputes the blocks naming it, and no other network with policies", () => {
  const names = policy('names-blue', [{ src: 'local', dst: 'd:p:blue' }]);
  const other = policy('any', [{ src: 'local', dst: 'any' }]);
  const green = (o: Partial<NetOpts> = {}) => network('net-green', 'green', { id: 3, prefix: '10.3.0', ...o });
  const cfg = new Config([names, other, red({ policies: ['names-blue'] }), green({ policies: ['any'] }), router('h1', '192.168.0.1'), router('h2', '192.168.0.2'), ...port('a', RED, 'h1', '10.1.0.10'), ...port('g', 'net-green', 'h2', '10.3.0.10')]);
  const e = new RoutingEngine(cfg.view);
  e.watch('h2');
  assert.deepEqual((new Map(e.entries('h1')).get(`a/${RED}/names-blue`) as AclBlockEntry).rules[0]!.dst, [], 'blue does not exist yet: its name matches nothing');
  let deltas = e.update(cfg.change([blue()]));
  assert.deepEqual(keys(deltas.get('h1')!.set), [`a/${RED}/names-blue`], 'blue appears: the block naming it');
  assert.deepEqual((new Map(e.entries('h1')).get(`a/${RED}/names-blue`) as AclBlockEntry).rules[0]!.dst, ['10.2.0.0/24']);
  assert.equal(deltas.has('h2'), false, "green's policy does not name blue: nothing for h2");
  deltas = e.update(cfg.change([blue({ prefix: '10.4.0' })]));
  assert.deepEqual((new Map(e.entries('h1')).get(`a/${RED}/names-blue`) as AclBlockEntry).rules[0]!.dst, ['10.4.0.0/24'], 'its subnets changed');
  assert.equal(deltas.has('h2'), false);
  deltas = e.update(cfg.change([], [blue({ prefix: '10.4.0' })]));
  assert.deepEqual((new Map(e.entries('h1')).get(`a/${RED}/names-blue`) as AclBlockEntry).rules[0]!.dst, [], 'deleted');
});
