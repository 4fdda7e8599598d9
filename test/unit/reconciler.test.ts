// The reconciler against a fake kernel: what it applies, in which order, and how it
// reports failures (the Felix-style shim makes this testable without root).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchError, Kernel, Translation } from '../../src/agent/dataplane/kernel.js';
import type { WorkloadConfig } from '../../src/agent/dataplane/nsconfig.js';
import { type KernelState, desiredState } from '../../src/agent/dataplane/model.js';
import type { NftTable } from '../../src/agent/dataplane/nft.js';
import { Reconciler } from '../../src/agent/dataplane/reconciler.js';
import type { HostState } from '../../src/agent/host-state.js';

class FakeKernel implements Kernel {
  state: KernelState = { links: new Map(), routes: new Map(), nexthops: new Map(), rules: new Map(), neighs: new Map(), addresses: new Set(), nft: { ip: 'missing', arp: 'missing' } };
  scripts: string[][] = [];
  batches: { lines: string[] }[] = [];
  workloads: WorkloadConfig[] = [];
  sysctls = new Map<string, string>([['net/ipv4/ip_forward', '0'], ['net/ipv4/conf/all/rp_filter', '1'], ['net/ipv4/fwmark_reflect', '0']]);
  failNetns = new Set<string>();
  async read(owns: (n: string) => boolean): Promise<KernelState> {
    return { ...this.state, links: new Map([...this.state.links].filter(([n]) => owns(n))) };
  }
  async configureWorkloads(items: WorkloadConfig[]): Promise<Map<string, string>> {
    this.workloads.push(...items);
    return new Map(items.filter((i) => this.failNetns.has(i.netns)).map((i) => [i.id, `cannot open namespace ${i.netns}`]));
  }
  flushed: number[][] = [];
  async flushConntrack(zones: number[]): Promise<BatchError[]> {
    if (zones.length) this.flushed.push(zones);
    return [];
  }
  forgotten: Translation[][] = [];
  async forgetTranslations(items: Translation[]): Promise<BatchError[]> {
    if (items.length) this.forgotten.push(items);
    return [];
  }
  async nft(lines: string[]): Promise<BatchError[]> {
    if (lines.length) this.scripts.push(lines);
    return [];
  }
  async batch(lines: string[]): Promise<BatchError[]> {
    if (lines.length) this.batches.push({ lines });
    for (const l of lines) if (l.startsWith('link del dev ')) this.state.links.delete(l.slice(13));
    for (const l of lines) {
      const m = /^link add (\S+) /.exec(l);
      if (m) this.state.links.set(m[1]!, { up: false });
    }
    return [];
  }
  readSysctl(path: string): string | undefined {
    return this.sysctls.get(path) ?? (path.includes('/cv-') ? '0' : undefined);
  }
  writeSysctl(path: string, value: string): void {
    this.sysctls.set(path, value);
  }
  close(): void {}
}

const host = (netns: string[]): HostState => ({
  networks: [{ uuid: 'red', name: 'd:p:red', id: 1, table: 1_000_001, serviceAddresses: ['10.0.0.1'], subnets: ['10.0.0.0/24'], vni: 1 }],
  remotes: [],
  ports: netns.map((ns, i) => ({
    vmiUuid: `u${i}`,
    network: 'red',
    hostIf: `cv-${i}`,
    mac: `02:00:00:00:00:0${i}`,
    address: `10.0.0.${i + 3}`,
    prefixLen: 24,
    gateway: '10.0.0.1',
    registration: { vmiUuid: `u${i}`, mode: 'create' as const, netns: ns, ifname: 'eth0', enabled: true, createdAt: '' },
  })),
  leaks: [],
  pending: [],
});

test('new ports: one host batch creates the veths, the namespaces are configured, then routes follow', async () => {
  const k = new FakeKernel();
  const r = await new Reconciler(k).reconcile(host(['w0', 'w1']));
  assert.deepEqual(r.created, ['cv-0', 'cv-1']);
  assert.deepEqual(r.errors, []);
  assert.match(k.batches[0]!.lines[0]!, /^link add cv-0 mtu 1500 type veth peer name eth0 netns w0 address 02:00:00:00:00:00 mtu 1450$/);
  assert.deepEqual(k.workloads, [
    { id: 'u0', netns: 'w0', ifname: 'eth0', mac: '02:00:00:00:00:00', mtu: 1450, address: '10.0.0.3', prefix: 24, gateway: '10.0.0.1' },
    { id: 'u1', netns: 'w1', ifname: 'eth0', mac: '02:00:00:00:00:01', mtu: 1450, address: '10.0.0.4', prefix: 24, gateway: '10.0.0.1' },
  ]);
  assert.ok(k.batches[1]!.lines.includes('rule add pref 10000 fwmark 0xf4241 lookup 1000001'));
  assert.ok(k.scripts[0]!.includes('add element ip cirrus port_marks { "cv-0" : 1000001, "cv-1" : 1000001 }'));
  assert.ok(k.scripts[0]!.includes('add element arp cirrus port_marks { "cv-0" : 1000001, "cv-1" : 1000001 }'));
  assert.equal(k.sysctls.get('net/ipv4/ip_forward'), '1');
  assert.equal(k.sysctls.get('net/ipv4/fwmark_reflect'), '1');
  assert.equal(k.sysctls.get('net/ipv4/conf/all/rp_filter'), '0');
  assert.equal(k.sysctls.get('net/ipv4/conf/cv-1/proxy_arp'), '1');
});

test('a namespace that cannot be configured fails its port only', async () => {
  const k = new FakeKernel();
  k.failNetns.add('bad');
  const r = await new Reconciler(k).reconcile(host(['good', 'bad']));
  assert.deepEqual(r.created, ['cv-0']);
  assert.match(r.failedPorts.get('u1')!, /cannot open namespace bad/);
  const hostLines = k.batches.at(-1)!.lines;
  assert.ok(hostLines.some((l) => l.includes('cv-0')));
  assert.ok(!hostLines.some((l) => l.includes('cv-1')), 'no commands for the failed port');
  assert.ok(k.batches.some((b) => b.lines.includes('link del dev cv-1')), 'the half-made veth is removed');
  k.failNetns.clear();
  const again = await new Reconciler(k).reconcile(host(['good', 'bad']));
  assert.deepEqual(again.created, ['cv-1'], 'and made again once the namespace works');
});

/** The kernel after a pass that applied everything (the fake does not run nft). */
function converge(k: FakeKernel, h: HostState): void {
  const { nft } = desiredState(h);
  const read = (t: NftTable): NftTable => ({ maps: new Map([...t.maps].map(([n, m]) => [n, new Map(m)])), chains: new Map([...t.chains.keys()].map((c) => [c, []])) });
  k.state = { ...k.state, nft: { ip: read(nft.ip), arp: read(nft.arp) } };
}

test('a policy change forgets the connections of its zone, also on the periodic full rewrite and after a restart', async () => {
  const withAcl = (action: 'pass' | 'deny'): HostState => {
    const h = host(['w0']);
    return { ...h, networks: [{ ...h.networks[0]!, acl: [{ uuid: 'r1', action, protocol: 6, src: null, dst: null }] }] };
  };
  const k = new FakeKernel();
  const r = new Reconciler(k);
  await r.reconcile(withAcl('pass'));
  converge(k, withAcl('pass'));
  assert.deepEqual(k.flushed, [], 'a first write forgets nothing');
  await r.reconcile(withAcl('deny'));
  await r.forgotten();
  assert.deepEqual(k.flushed, [[2]], 'the network\'s zone (id 1 → zone 2) is flushed');
  // Up to the pass before the periodic rewrite, then change on it.
  let passes = 2;
  for (; (passes + 1) % 30 !== 0; passes++) await r.reconcile(withAcl('deny'));
  await r.forgotten();
  assert.equal(k.flushed.length, 1, 'no change, no flush');
  await r.reconcile(withAcl('pass'));
  await r.forgotten();
  assert.deepEqual(k.flushed.at(-1), [2], 'a change on the full-rewrite pass still flushes');
  const restarted = new Reconciler(k);
  await restarted.reconcile(withAcl('pass'));
  await restarted.forgotten();
  assert.deepEqual(k.flushed.at(-1), [2], 'after a restart, chains written by the previous agent may differ: flushed');
  assert.equal(k.flushed.length, 3);
});

test("a back end leaving a floating IP: its translated connections are forgotten, the others' kept", async () => {
  const withBackends = (n: number): HostState => {
    const h = host(['w0', 'w1', 'w2']);
    const svc = { uuid: 'svc', name: 'd:p:svc', id: 2, table: 1_000_002, serviceAddresses: ['10.96.0.1'], subnets: ['10.96.0.0/24'], vni: 2 };
    const local = h.ports.slice(0, n).map((port) => ({ port, address: port.address }));
    return { ...h, networks: [...h.networks, svc], floatingIps: [{ uuid: 'vip', network: 'svc', address: '10.96.0.10', local, remote: new Map(), backends: n }] };
  };
  const k = new FakeKernel();
  const r = new Reconciler(k);
  await r.reconcile(withBackends(3));
  await r.reconcile(withBackends(3));
  await r.forgotten();
  assert.deepEqual(k.forgotten, [], 'nothing ended');
  await r.reconcile(withBackends(2));
  await r.forgotten();
  // red (id 1) and svc (id 2) share zone 2: the floating IP's connections start in svc and end in red.
  assert.deepEqual(k.forgotten, [[{ zone: 2, floating: '10.96.0.10', backend: '10.0.0.5' }]]);
  await r.reconcile(withBackends(0));
  await r.forgotten();
  assert.deepEqual(k.forgotten.at(-1), [
    { zone: 2, floating: '10.96.0.10', backend: '10.0.0.3' },
    { zone: 2, floating: '10.96.0.10', backend: '10.0.0.4' },
  ]);
});

test('a pass does not wait for connections to be forgotten; the walks run one at a time, in order, and report when done', async () => {
  const withAcl = (action: 'pass' | 'deny'): HostState => {
    const h = host(['w0']);
    return { ...h, networks: [{ ...h.networks[0]!, acl: [{ uuid: 'r1', action, protocol: 6, src: null, dst: null }] }] };
  };
  const k = new FakeKernel();
  const release: (() => void)[] = [];
  const order: string[] = [];
  k.flushConntrack = async (zones) => {
    order.push(`start ${zones.join()}`);
    await new Promise<void>((r) => release.push(r));
    order.push(`end ${zones.join()}`);
    return [{ line: 0, command: 'conntrack -D -w 2', message: 'boom' }];
  };
  const done: { ms: number; errors: number }[] = [];
  const r = new Reconciler(k, ({ ms, errors }) => done.push({ ms, errors: errors.length }));
  await r.reconcile(withAcl('pass'));
  converge(k, withAcl('pass'));
  const deny = await r.reconcile(withAcl('deny'));
  assert.deepEqual(deny.errors, [], 'the pass is over, its walk still running');
  await r.reconcile(withAcl('pass'));
  assert.deepEqual(order, ['start 2'], 'the second walk waits for the first');
  release.shift()!();
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.deepEqual(order, ['start 2', 'end 2', 'start 2']);
  release.shift()!();
  await r.forgotten();
  assert.deepEqual(done.map((d) => d.errors), [1, 1], 'each walk reported, with what failed');
});
